//! `flipover-agent --config FILE` and `--log-format`: the binary started
//! from a TOML file of its flags, logging JSON or text lines on stderr.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, write, TOKEN};
use flipover_agent::client::AgentClient;

const IP: Ipv4Addr = Ipv4Addr::new(127, 43, 0, 3);

/// A my.cnf for a server that is not installed in `dir`, and the token file.
fn host_files(dir: &Path) {
    write(
        &dir.join("my.cnf"),
        &format!(
            "[mysqld]\ndatadir={d}/data\npid-file={d}/mysqld.pid\nsocket={d}/mysqld.sock\n",
            d = dir.display()
        ),
    );
    write(&dir.join("token"), &format!("{TOKEN}\n"));
}

/// Runs the agent with `args` (stderr into a file: a closed pipe would make
/// its logging fail), waits for its "listening" line, checks the API answers
/// with the token, and returns the log lines up to that one.
async fn run_until_listening(args: &[&str], url: &str) -> Vec<String> {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flipover-agent"))
        .args(args)
        .env_remove("FLIPOVER_AGENT_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(log.path()).unwrap();
        if let Some(end) = text.lines().position(|l| l.contains("listening")) {
            break text
                .lines()
                .take(end + 1)
                .map(str::to_string)
                .collect::<Vec<_>>();
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("flipover-agent did not start listening:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let facts = AgentClient::new(url, TOKEN, Duration::from_secs(10))
        .facts()
        .await;
    let _ = child.kill();
    let _ = child.wait();
    let facts = facts.unwrap_or_else(|e| panic!("agent from config answers: {e}\n{lines:#?}"));
    assert!(!facts.supervised);
    lines
}

#[tokio::test]
async fn agent_runs_from_its_config_file_and_logs_json() {
    let dir = tempfile::tempdir().unwrap();
    host_files(dir.path());
    let port = free_port(IP);
    let config = dir.path().join("agent.toml");
    write(
        &config,
        &format!(
            "listen = \"{IP}:{port}\"\ntoken_file = \"{d}/token\"\nconf = \"{d}/my.cnf\"\n\
             stream-listen = \"{IP}:0\"\nlog_format = \"json\"\nsupervise = false\ninsecure = true\n",
            d = dir.path().display()
        ),
    );
    let lines = run_until_listening(
        &["--config", config.to_str().unwrap()],
        &format!("http://{IP}:{port}"),
    )
    .await;
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(value["timestamp"].is_string(), "{line}");
        assert_eq!(value["target"], "flipover_agent::server", "{line}");
    }
    let listening = lines.last().unwrap();
    let value: serde_json::Value = serde_json::from_str(listening).unwrap();
    assert_eq!(value["fields"]["addr"], format!("{IP}:{port}"));
}

#[tokio::test]
async fn command_line_flags_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    host_files(dir.path());
    let port = free_port(IP);
    let config = dir.path().join("agent.toml");
    // The file's address is taken by nobody but must not be used.
    write(
        &config,
        &format!(
            "listen = \"{IP}:1\"\ntoken-file = \"{d}/token\"\nconf = \"{d}/my.cnf\"\nlog-format = \"json\"\n\
             insecure = true\n",
            d = dir.path().display()
        ),
    );
    let listen = format!("{IP}:{port}");
    let lines = run_until_listening(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &listen,
            "--stream-listen",
            &format!("{IP}:0"),
            "--log-format=text",
        ],
        &format!("http://{listen}"),
    )
    .await;
    let last = lines.last().unwrap();
    assert!(
        last.contains("listening") && last.contains(&listen),
        "{last}"
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(last).is_err(),
        "text, not JSON: {last}"
    );
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    write(
        &config,
        "listen = \"127.0.0.1:836\"\ntls_cretificate = \"x.pem\"\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_flipover-agent"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: unknown key `tls_cretificate`",
            config.display()
        )),
        "{stderr}"
    );
}

#[test]
fn bad_value_from_the_file_is_refused_pointing_at_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    write(&config, "listen = \"nowhere\"\n");
    let output = Command::new(env!("CARGO_BIN_EXE_flipover-agent"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid value 'nowhere' for '--listen"),
        "{stderr}"
    );
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
}
