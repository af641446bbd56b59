//! The agent binary's HTTP surface without a database: token checks, 404s,
//! facts from a my.cnf, and refusing to start without a token.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::{write, Agent, TOKEN};
use flipover_agent::client::AgentError;
use flipover_agent::protocol::{ErrorBody, PROTOCOL_VERSION};

const IP: Ipv4Addr = Ipv4Addr::new(127, 43, 0, 1);

/// A my.cnf for a server that is not installed in this temp dir.
fn conf(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("my.cnf");
    write(
        &path,
        &format!(
            "[mysqld]\ndatadir={d}/data\npid-file={d}/mysqld.pid\nsocket={d}/mysqld.sock\n\
             log-bin=mysql-bin\nserver-id=7\nport=3399\n[client]\nport=1\n",
            d = dir.display()
        ),
    );
    path
}

#[tokio::test]
async fn missing_token_gets_401() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path());
    let agent = Agent::start(IP, &["-c", conf.to_str().unwrap()], Some(TOKEN));
    // The library client always sends a token, so use reqwest directly.
    let response = common::raw_http()
        .get(format!("{}/v1/facts", agent.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: ErrorBody = response.json().await.unwrap();
    assert!(body.error.contains("missing"), "{}", body.error);
    // Actions are refused the same way.
    let response = common::raw_http()
        .post(format!("{}/v1/mysqld/start", agent.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn wrong_token_gets_unauthorized() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path());
    let agent = Agent::start(IP, &["-c", conf.to_str().unwrap()], Some(TOKEN));
    for token in ["wrong", "", &TOKEN[..TOKEN.len() - 1], &format!("{TOKEN}x")] {
        let err = agent.client(token).facts().await.unwrap_err();
        assert!(
            matches!(err, AgentError::Unauthorized { .. }),
            "{token:?}: {err}"
        );
        assert!(err.to_string().contains("refused the token (401)"), "{err}");
        assert!(err.to_string().contains(&agent.url), "{err}");
    }
}

#[tokio::test]
async fn right_token_gets_facts() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path());
    let agent = Agent::start(
        IP,
        &["-c", conf.to_str().unwrap(), "-s", "mariadb-test"],
        Some(TOKEN),
    );
    let client = agent.client(TOKEN);
    assert_eq!(client.base_url(), agent.url);
    let facts = client.facts().await.unwrap();
    assert_eq!(facts.protocol_version, PROTOCOL_VERSION);
    assert_eq!(facts.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(facts.conf_path, conf.display().to_string());
    assert_eq!(facts.service.as_deref(), Some("mariadb-test"));
    assert!(!facts.supervised);
    assert!(!facts.mysqld_running);
    assert_eq!(facts.mysqld_pid, None);
    assert_eq!(
        facts.datadir,
        Some(format!("{}/data", dir.path().display()))
    );
    assert_eq!(facts.datadir_empty, Some(true));
    assert_eq!(facts.datadir_bytes, Some(0));
    assert!(facts.free_disk_bytes.is_some_and(|b| b > 0));
    assert!(facts
        .server_binary
        .is_some_and(|b| b.ends_with("mariadbd") || b.ends_with("mysqld")));
    assert!(facts.server_version.is_some());
    let s = facts.settings;
    assert_eq!(s.log_bin.as_deref(), Some("mysql-bin"));
    assert_eq!(s.server_id, Some(7));
    assert_eq!(s.port, Some(3399));
    assert_eq!(
        s.pid_file,
        Some(format!("{}/mysqld.pid", dir.path().display()))
    );
}

#[tokio::test]
async fn unknown_route_is_404_and_token_file_works() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path());
    let token_file = dir.path().join("token");
    write(&token_file, "from-file\n");
    let agent = Agent::start(
        IP,
        &[
            "-c",
            conf.to_str().unwrap(),
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        Some("env-token-is-ignored"),
    );
    agent.client("from-file").facts().await.unwrap();
    let response = common::raw_http()
        .get(format!("{}/v1/nope", agent.url))
        .bearer_auth("from-file")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: ErrorBody = response.json().await.unwrap();
    assert!(body.error.contains("/v1/nope"), "{}", body.error);
}

#[tokio::test]
async fn unreachable_agent_is_reported_as_such() {
    let port = common::free_port(IP);
    let client = flipover_agent::client::AgentClient::new(
        &format!("http://{IP}:{port}"),
        TOKEN,
        std::time::Duration::from_secs(5),
    );
    let err = client.facts().await.unwrap_err();
    assert!(matches!(err, AgentError::Unreachable { .. }), "{err}");
}

#[test]
fn refuses_to_start_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-token");
    write(&empty, "\n");
    let cases: [(&[&str], &str); 2] = [
        (&[], "no token given"),
        (&["--token-file", empty.to_str().unwrap()], "is empty"),
    ];
    for (args, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_flipover-agent"))
            .args(args)
            .args(["--listen", "127.43.0.1:0"])
            .env_remove("FLIPOVER_AGENT_TOKEN")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[tokio::test]
async fn service_mode_reports_the_command_failure() {
    // A service name no init system knows: the real `service`/`systemctl`
    // fails without touching anything, and its complaint reaches the caller.
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path());
    let agent = Agent::start(
        IP,
        &[
            "-c",
            conf.to_str().unwrap(),
            "-s",
            "flipover-no-such-service",
        ],
        Some(TOKEN),
    );
    let err = agent.client(TOKEN).start_mysqld().await.unwrap_err();
    let AgentError::Failed {
        status, message, ..
    } = &err
    else {
        panic!("expected Failed, got {err}");
    };
    assert_eq!(*status, 500);
    assert!(
        message.contains("flipover-no-such-service start"),
        "{message}"
    );
    assert!(message.contains("failed (exit status"), "{message}");
}
