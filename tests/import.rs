//! `flipover import`: a running cluster adopted by discovery; planning the
//! written file shows nothing to do.

mod common;

use std::process::Command;

use common::{apply, flipover_bin, TestSandbox};

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
