//! `flipover import`: a running cluster adopted by discovery; planning the
//! written file shows nothing to do. A cluster flipover applied to before
//! is imported with the names, ports and servers its journal remembers,
//! also when its primary is dead.

mod common;

use std::process::{Command, Output};

use common::{apply, flipover_bin, TestSandbox};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `flipover import --from SERVER --agent-token-file … --out FILE [EXTRA…]`
/// with the sandbox's credentials in the environment.
fn import(sandbox: &TestSandbox, from: &str, file: &std::path::Path, extra: &[&str]) -> Output {
    let host = sandbox.host(from);
    let token = sandbox.dir.join("secrets/agent.token");
    let from = format!("{}:{}", host.address, host.mysql_port);
    let mut args = vec![
        "import",
        "--from",
        &from,
        "--agent-token-file",
        token.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Command::new(flipover_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env("FLIPOVER_PASSWORD", sandbox.secret("admin.password"))
        .env("FLIPOVER_REPL_PASSWORD", sandbox.secret("repl.password"))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_imported_cluster_plans_no_changes() {
    let sandbox = TestSandbox::up(3);
    let (ok, out) = apply(&sandbox.topology(), &[]);
    assert!(ok, "{out}");

    let file = sandbox.dir.join("imported.toml");
    let db2 = sandbox.host("db2");
    let run = |args: &[&str]| {
        Command::new(flipover_bin())
            .args(args)
            .env("NO_COLOR", "1")
            .env("FLIPOVER_PASSWORD", sandbox.secret("admin.password"))
            .env("FLIPOVER_REPL_PASSWORD", sandbox.secret("repl.password"))
            .output()
            .unwrap()
    };
    let token = sandbox.dir.join("secrets/agent.token");
    let import = run(&[
        "import",
        "--from",
        &format!("{}:{}", db2.address, db2.mysql_port),
        "--agent-token-file",
        token.to_str().unwrap(),
        "--cluster",
        "adopted",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("name = \"adopted\""), "{text}");
    assert!(
        text.contains("password = { env = \"FLIPOVER_PASSWORD\" }"),
        "{text}"
    );
    assert_eq!(text.matches("[servers.").count(), 3, "{text}");
    // The names the sandbox's file gave them, as the journal remembers.
    for name in ["db1", "db2", "db3"] {
        assert!(text.contains(&format!("[servers.{name}]\n")), "{text}");
    }
    assert_eq!(text.matches("source = ").count(), 2, "{text}");

    let validate = run(&["validate", "-f", file.to_str().unwrap()]);
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    let plan = run(&["plan", "-f", file.to_str().unwrap(), "--detailed-exitcode"]);
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(stdout.contains("No changes"), "{stdout}");
}

#[test]
fn a_cluster_whose_primary_died_is_imported_from_the_journals_memory() {
    let sandbox = TestSandbox::up(3);
    let (ok, out) = apply(&sandbox.topology(), &[]);
    assert!(ok, "{out}");
    // A switchover journals the topology it leaves on all three servers.
    let promoted = sandbox.write_topology("promoted", "db2", &[]);
    let (ok, out) = apply(&promoted, &[]);
    assert!(ok, "{out}");
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db2") as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));

    // From db3, whose dead source cannot list db1.
    let file = sandbox.dir.join("imported.toml");
    let output = import(&sandbox, "db3", &file, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "note: names, agent ports and settings from the topology flipover's apply of"
        ),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let imported = flipover::topology::load(&file).unwrap();
    assert_eq!(imported.cluster().name, "sb", "{text}");
    assert_eq!(imported.primary().name, "db2", "{text}");
    for replica in ["db1", "db3"] {
        let server = &imported.servers()[replica];
        assert_eq!(server.source.as_deref(), Some("db2"), "{text}");
        assert_eq!(server.host, sandbox.host(replica).address);
    }
    assert_eq!(imported.servers().len(), 3, "{text}");
    assert!(stderr.contains("does not answer"), "{stderr}");
}

#[test]
fn importing_from_a_server_that_does_not_answer_is_a_clear_error() {
    let output = Command::new(flipover_bin())
        .args([
            "import",
            "--from",
            "127.77.254.254:3306",
            "--connect-timeout",
            "0.5",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not answer"), "{stderr}");
}
