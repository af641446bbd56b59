//! `flipover validate`: exit code 0 and a summary on stdout for a valid file;
//! exit code 1 and the diagnostic on stderr for an invalid one.

use assert_cmd::Command;
use predicates::prelude::*;

fn flipover() -> Command {
    let mut command = Command::cargo_bin("flipover").expect("the flipover binary is built");
    command.env("NO_COLOR", "1");
    command
}

#[test]
fn valid_file_exits_0_with_a_summary() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("flipover.toml");
    std::fs::write(
        &path,
        "[cluster]\nname = \"shop\"\n\n[servers.db1]\nhost = \"10.0.0.1\"\n\n[servers.db2]\nhost = \"10.0.0.2\"\nsource = \"db1\"\n",
    )
    .expect("writable temporary file");
    flipover()
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "valid: cluster shop, 2 servers, primary db1",
        ));
}

#[test]
fn the_summary_counts_hook_commands() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/hooks.toml");
    flipover()
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "primary db1, hooks post_switchover (1), post_failover (2)",
        ));
}

#[test]
fn invalid_file_exits_1_with_the_diagnostic_on_stderr() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[cluster]\nname = \"shop\"\n\n[servers.db1]\nhost = \"10.0.0.1\"\nsoruce = \"db2\"\n",
    )
    .expect("writable temporary file");
    flipover()
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(
            predicate::str::contains("flipover::topology::unknown_key")
                .and(predicate::str::contains("unknown key `soruce`"))
                .and(predicate::str::contains("did you mean `source`?"))
                .and(predicate::str::contains("bad.toml:6:1")),
        );
}

#[test]
fn missing_file_exits_1() {
    flipover()
        .args(["validate", "-f", "/nonexistent/flipover.toml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read topology file"));
}
