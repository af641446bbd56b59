//! Mutual TLS on the agent API and the backup stream, against real agents
//! supervising real MariaDB servers: clients without a certificate of the
//! agent's CA are refused on both ports and nothing changes; a valid
//! certificate still needs the right token; --insecure is explicit.

mod common;
#[allow(dead_code)]
#[path = "../../tests/common/reliability.rs"]
mod reliability;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::host::{file_list, finished, host, put_shop, wait_phase, Host, STREAM_TOKEN};
use common::{pki, tls_connect, Agent, Pki, TOKEN};
use flipover_agent::client::{AgentClient, AgentError};
use flipover_agent::pki::Role;
use flipover_agent::protocol::JobState;
use flipover_agent::tls::{self, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The clients an agent must refuse: no certificate, a certificate of
/// another CA, and plain HTTP.
fn intruders(agent_url: &str) -> Vec<(&'static str, AgentClient)> {
    let other = Pki::generate("another CA");
    let no_cert = Transport::Tls(Arc::new(
        tls::client_config_without_certificate(tls::read_roots(&pki().ca).unwrap()).unwrap(),
    ));
    let other_ca = Transport::from_files(&pki().ca, &other.client_cert, &other.client_key).unwrap();
    let timeout = Duration::from_secs(10);
    vec![
        (
            "no client certificate",
            AgentClient::over(&no_cert, agent_url, TOKEN, timeout).unwrap(),
        ),
        (
            "a certificate of another CA",
            AgentClient::over(&other_ca, agent_url, TOKEN, timeout).unwrap(),
        ),
        (
            "plain HTTP",
            AgentClient::new(
                &agent_url.replacen("https://", "http://", 1),
                TOKEN,
                timeout,
            ),
        ),
    ]
}

/// A row of RELIABILITY.md: `who` was refused at `port` and nothing changed.
fn record_refusal(who: &str, operation: &str, port: &str, started: std::time::Instant) {
    let note = if port.contains("836") {
        "checked after: mysqld has the same pid, no job started, the datadir's files are the same"
    } else {
        "checked after: the receive job still waits for its donor with 0 bytes; the real donor then succeeds"
    };
    reliability::record(&reliability::Row {
        category: "unauthorised clients (mutual TLS and tokens)".into(),
        test: "agent tls".into(),
        fault: who.into(),
        operation: operation.into(),
        checkpoint: port.into(),
        outcome: reliability::Outcome::Refused,
        writes_acknowledged: 0,
        writes_found: 0,
        duration: started.elapsed(),
        note: note.into(),
    });
}

/// mysqld runs with the same pid, no job, the same files, no stream listener.
async fn assert_unchanged(target: &Host, pid: u32, files: &BTreeSet<String>) {
    let facts = target.client.facts().await.unwrap();
    assert_eq!(facts.mysqld_pid, Some(pid));
    assert!(facts.busy_job.is_none(), "{:?}", facts.busy_job);
    assert_eq!(&file_list(&target.datadir), files);
    assert!(std::net::TcpStream::connect(target.stream).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_clients_without_a_certificate_of_the_ca() {
    let target = host(8, 1, "");
    let pid = target.wait_running().await.mysqld_pid.unwrap();
    let files = file_list(&target.datadir);
    let url = target.client.base_url().to_string();
    for (who, client) in intruders(&url) {
        let started = std::time::Instant::now();
        let stop = client.stop_mysqld().await.unwrap_err();
        assert!(
            matches!(stop, AgentError::Unreachable { .. }),
            "{who}: {stop}"
        );
        // The message says where to look.
        assert!(stop.to_string().contains("TLS"), "{who}: {stop}");
        let receive = client
            .clone_receive(&target.receive_request(10 << 20, true))
            .await
            .unwrap_err();
        assert!(
            matches!(receive, AgentError::Unreachable { .. }),
            "{who}: {receive}"
        );
        assert!(client.facts().await.is_err(), "{who}");
        assert_unchanged(&target, pid, &files).await;
        record_refusal(
            who,
            "stop mysqld, start a clone receive, read facts",
            "agent API (836)",
            started,
        );
    }

    // A valid certificate with a wrong token is refused by the token check.
    let started = std::time::Instant::now();
    let wrong_token = target.agent.as_ref().unwrap().client("not-the-token");
    let err = wrong_token.stop_mysqld().await.unwrap_err();
    assert!(matches!(err, AgentError::Unauthorized { .. }), "{err}");
    let err = wrong_token
        .clone_receive(&target.receive_request(10 << 20, true))
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Unauthorized { .. }), "{err}");
    assert_unchanged(&target, pid, &files).await;
    record_refusal(
        "a valid certificate with a wrong bearer token (401)",
        "stop mysqld, start a clone receive",
        "agent API (836)",
        started,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_refuses_donors_without_a_certificate_or_the_token() {
    let (donor, target) = (host(9, 1, ""), host(9, 2, ""));
    donor.wait_running().await;
    target.wait_running().await;
    put_shop(&donor);
    let receive = target
        .client
        .clone_receive(&target.receive_request(10 << 20, false))
        .await
        .unwrap();
    wait_phase(&target.client, &receive.id, "waiting for the donor").await;

    let other = Pki::generate("another CA");
    let (other_cert, other_key) = other.issue("stranger", "127.44.9.99", Role::Host);
    let (cert, key) = pki().issue("wrong-token-donor", "127.44.9.98", Role::Host);
    let attempts = [
        ("no client certificate", None, STREAM_TOKEN),
        (
            "a certificate of another CA",
            Some((other_cert.as_path(), other_key.as_path())),
            STREAM_TOKEN,
        ),
        (
            "a valid certificate with a wrong token",
            Some((cert.as_path(), key.as_path())),
            "not-the-stream-token",
        ),
    ];
    for (who, identity, token) in attempts {
        let started = std::time::Instant::now();
        // TLS 1.3 lets the client finish its side before the server has
        // checked the certificate: the refusal shows on the next read.
        if let Ok(mut conn) = tls_connect(target.stream, identity, &pki().ca).await {
            let _ = conn
                .write_all(format!("FLIPOVER-STREAM 1 {token}\n").as_bytes())
                .await;
            let _ = conn.flush().await;
            let mut buf = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(15), conn.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{who}: the target kept the connection open"));
            assert!(matches!(read, Ok(0) | Err(_)), "{who}: {read:?}");
        }
        let status = target.client.job(&receive.id).await.unwrap();
        assert_eq!(
            (status.state, status.phase.as_str(), status.bytes),
            (JobState::Running, "waiting for the donor", 0),
            "{who}"
        );
        record_refusal(who, "send a backup stream", "backup stream (837)", started);
    }
    // Plain TCP speaking the stream protocol is no TLS client at all.
    let started = std::time::Instant::now();
    let mut plain = tokio::net::TcpStream::connect(target.stream).await.unwrap();
    let _ = plain
        .write_all(format!("FLIPOVER-STREAM 1 {STREAM_TOKEN}\n").as_bytes())
        .await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut sink))
        .await
        .expect("the target kept a plaintext connection open");
    let status = target.client.job(&receive.id).await.unwrap();
    assert_eq!(status.bytes, 0, "{status:?}");
    record_refusal(
        "plain TCP with the right stream token",
        "send a backup stream",
        "backup stream (837)",
        started,
    );

    // The real donor (host certificate of the CA, right token) still gets in.
    let send = donor
        .client
        .clone_send(&donor.send_request_to(&target))
        .await
        .unwrap();
    let received = finished(&target.client, &receive.id, Duration::from_secs(50)).await;
    assert_eq!(received.state, JobState::Succeeded, "{received:?}");
    let sent = finished(&donor.client, &send.id, Duration::from_secs(10)).await;
    assert_eq!(sent.state, JobState::Succeeded, "{sent:?}");
    assert_eq!(target.sql("SELECT COUNT(*) FROM shop.items"), "3");
}

const IP: Ipv4Addr = Ipv4Addr::new(127, 43, 0, 2);

fn conf(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("my.cnf");
    common::write(
        &path,
        &format!("[mysqld]\ndatadir={d}/data\n", d = dir.display()),
    );
    path
}

#[test]
fn refuses_to_start_without_tls_or_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flipover-agent"))
            .args(["-c", conf.to_str().unwrap(), "--listen", "127.43.0.2:0"])
            .args(args)
            .env("FLIPOVER_AGENT_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let output = run(&[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no TLS settings") && stderr.contains("--insecure"),
        "{stderr}"
    );
    // The three TLS flags go together, and exclude --insecure.
    let ca = pki().ca.to_str().unwrap();
    for args in [
        &["--tls-cert", ca][..],
        &[
            "--tls-cert",
            ca,
            "--tls-key",
            ca,
            "--client-ca",
            ca,
            "--insecure",
        ],
    ] {
        let output = run(args);
        assert!(!output.status.success(), "{args:?}");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
    // A certificate file without a key is reported by name.
    let output = run(&["--tls-cert", ca, "--tls-key", ca, "--client-ca", ca]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("private key") && stderr.contains(ca),
        "{stderr}"
    );
}

#[tokio::test]
async fn insecure_agent_serves_plaintext_only() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path());
    let agent = Agent::start(
        IP,
        &["-c", conf.to_str().unwrap(), "--insecure"],
        Some(TOKEN),
    );
    assert!(agent.url.starts_with("http://"), "{}", agent.url);
    agent.client(TOKEN).facts().await.unwrap();
    // A TLS client gets no answer from a plaintext agent.
    let tls_url = agent.url.replacen("http://", "https://", 1);
    let client =
        AgentClient::over(&pki().transport(), &tls_url, TOKEN, Duration::from_secs(5)).unwrap();
    let err = client.facts().await.unwrap_err();
    assert!(matches!(err, AgentError::Unreachable { .. }), "{err}");
}
