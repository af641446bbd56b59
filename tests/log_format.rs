//! `--log-format text|json` of the `flipover` binary: log lines on stderr,
//! as text or one JSON object per line; data on stdout either way.

use assert_cmd::Command;

/// A topology whose one server refuses connections at once (nothing listens
/// on port 1), so `status -v` logs a debug line about it.
fn unreachable_topology(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("flipover.toml");
    std::fs::write(
        &path,
        "[cluster]\nname = \"logs\"\n\n[servers.db1]\nhost = \"127.0.0.1\"\nport = 1\nagent_port = 2\n",
    )
    .unwrap();
    path
}

fn status(format: &str, topology: &std::path::Path) -> (String, String) {
    let output = Command::cargo_bin("flipover")
        .unwrap()
        .args(["-v", "--log-format", format, "status", "--json", "-f"])
        .arg(topology)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn json_log_lines_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let topology = unreachable_topology(dir.path());
    let (stdout, stderr) = status("json", &topology);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines: {stderr}");
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\nstderr: {stderr}"));
        assert!(value["timestamp"].is_string(), "{line}");
        assert!(value["level"].is_string(), "{line}");
        assert!(value["fields"]["message"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("127.0.0.1:1")),
        "the unreachable server is logged: {stderr}"
    );
    // Data stays on stdout, apart from the logs.
    let observed: serde_json::Value =
        serde_json::from_str(&stdout).expect("status --json on stdout");
    assert_eq!(observed["servers"]["db1"]["mysql"]["reachable"], false);
}

#[test]
fn text_log_lines_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let topology = unreachable_topology(dir.path());
    let (_, stderr) = status("text", &topology);
    let line = stderr
        .lines()
        .find(|l| l.contains("127.0.0.1:1"))
        .unwrap_or_else(|| panic!("the unreachable server is logged: {stderr}"));
    assert!(line.contains("DEBUG"), "{line}");
    assert!(
        serde_json::from_str::<serde_json::Value>(line).is_err(),
        "{line}"
    );
}

#[test]
fn unknown_log_format_is_refused() {
    Command::cargo_bin("flipover")
        .unwrap()
        .args(["--log-format", "xml", "validate"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("invalid value 'xml'"));
}
