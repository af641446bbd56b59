//! The agent's probes against a real MariaDB server: the local probe of an
//! answering, a SIGSTOP'd (hung) and a stopped mysqld, and the remote probe
//! of a live port, a closed one, a SIGSTOP'd server's (the kernel accepts,
//! no handshake comes) and something that is not MySQL. Each within its
//! deadline, and neither waits for the action lock.

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use common::host::{host, Host};
use common::TOKEN;
use flipover_agent::client::AgentError;
use flipover_agent::protocol::{routes, LocalSummary, ProbeErrorKind};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Slack over a deadline for scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(700);

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal).unwrap();
}

/// Continues a stopped mysqld on drop, so a failing test can stop it.
struct Continue(u32);

impl Drop for Continue {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0 as i32), Signal::SIGCONT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_probe_of_an_answering_a_hung_and_a_stopped_mysqld() {
    let started = Instant::now();
    let target = host(9, 1, "");
    let pid = target.wait_running().await.mysqld_pid.unwrap();

    // Answering.
    let probe = target
        .client
        .probe_local(Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(probe.summary, LocalSummary::Answering, "{probe:?}");
    assert_eq!(probe.process.pid, Some(pid));
    assert!(probe.process.alive);
    assert!(
        matches!(probe.process.state.as_deref(), Some("S" | "R")),
        "{probe:?}"
    );
    assert!(
        probe.socket.connected && probe.socket.handshake,
        "{probe:?}"
    );
    assert!(
        probe
            .socket
            .server_version
            .as_deref()
            .unwrap()
            .contains("MariaDB"),
        "{probe:?}"
    );
    assert_eq!(probe.socket.path, target.socket.display().to_string());
    assert!(probe.query.answered, "{probe:?}");
    assert_eq!(probe.query.user, "root");
    assert!(probe.elapsed_ms < 2000, "{probe:?}");
    eprintln!(
        "answering: socket {} ms, SELECT 1 {} ms",
        probe.socket.elapsed_ms, probe.query.elapsed_ms
    );

    // Hung: SIGSTOP'd. A stop then holds the action lock (SIGTERM cannot
    // reach a stopped process), and the probe answers all the same.
    signal(pid, Signal::SIGSTOP);
    let _continue = Continue(pid);
    common::wait_state(pid, 'T').await;
    let stopping = {
        let client = target.client.clone();
        tokio::spawn(async move { client.stop_mysqld().await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match target.client.start_mysqld().await {
            Err(AgentError::Busy { .. }) => break,
            other => assert!(Instant::now() < deadline, "no stop under way: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = Instant::now();
    let probe = target
        .client
        .probe_local(Duration::from_millis(1000))
        .await
        .unwrap();
    let took = asked.elapsed();
    assert_eq!(probe.summary, LocalSummary::Hung, "{probe:?}");
    assert_eq!(probe.process.state.as_deref(), Some("T"), "{probe:?}");
    assert!(probe.process.alive, "{probe:?}");
    // The kernel accepts on the socket; mysqld never greets.
    assert!(
        probe.socket.connected && !probe.socket.handshake,
        "{probe:?}"
    );
    assert_eq!(probe.socket.error_kind, Some(ProbeErrorKind::Timeout));
    assert!(
        !probe.query.answered && !probe.query.server_error,
        "{probe:?}"
    );
    assert!(
        probe
            .query
            .error
            .as_deref()
            .unwrap()
            .contains("no answer within"),
        "{probe:?}"
    );
    assert!(
        (1000..1000 + SLACK.as_millis() as u64).contains(&probe.elapsed_ms),
        "{probe:?}"
    );
    assert!(took < Duration::from_millis(1000) + SLACK, "{took:?}");
    eprintln!("hung: answered in {took:?}");

    // Continued, it takes the pending SIGTERM and the stop completes.
    signal(pid, Signal::SIGCONT);
    let facts = stopping.await.unwrap().unwrap();
    assert!(!facts.mysqld_running);
    let probe = target
        .client
        .probe_local(Duration::from_millis(1000))
        .await
        .unwrap();
    assert_eq!(probe.summary, LocalSummary::Down, "{probe:?}");
    assert!(
        !probe.process.alive && probe.process.error.is_some(),
        "{probe:?}"
    );
    assert!(!probe.socket.connected, "{probe:?}");
    assert!(
        matches!(
            probe.socket.error_kind,
            Some(ProbeErrorKind::Missing | ProbeErrorKind::Refused)
        ),
        "{probe:?}"
    );
    assert!(probe.elapsed_ms < 1000, "{probe:?}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    eprintln!("test took {} ms", started.elapsed().as_millis());
}

/// A listener that answers every connection with an HTTP error, as a
/// stranger on a MySQL port would.
fn not_mysql(ip: Ipv4Addr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_probe_of_a_live_a_closed_a_stopped_and_a_foreign_port() {
    let (server, observer) = (host(10, 1, ""), host(10, 2, ""));
    let pid = server.wait_running().await.mysqld_pid.unwrap();
    let ip = server.mysql.ip().to_string();
    let port = server.mysql.port();
    let probe = |host: String, port: u16, ms: u64| {
        let client = observer.client.clone();
        async move {
            client
                .probe_remote(&host, port, Duration::from_millis(ms))
                .await
                .unwrap()
        }
    };

    let live = probe(ip.clone(), port, 2000).await;
    assert!(live.connected && live.handshake, "{live:?}");
    assert!(
        live.server_version.as_deref().unwrap().contains("MariaDB"),
        "{live:?}"
    );
    assert_eq!(live.address, Some(server.mysql.to_string()));
    assert_eq!(live.target, server.mysql.to_string());
    assert_eq!(live.error_kind, None);
    assert!(live.elapsed_ms < 2000, "{live:?}");

    let closed_port = common::free_port(server.mysql.ip().to_string().parse().unwrap());
    let closed = probe(ip.clone(), closed_port, 2000).await;
    assert!(!closed.connected && !closed.handshake, "{closed:?}");
    assert_eq!(
        closed.error_kind,
        Some(ProbeErrorKind::Refused),
        "{closed:?}"
    );
    assert!(closed.elapsed_ms < 500, "{closed:?}");

    let stranger = not_mysql(server.mysql.ip().to_string().parse().unwrap());
    let foreign = probe(ip.clone(), stranger, 2000).await;
    assert!(foreign.connected && !foreign.handshake, "{foreign:?}");
    assert_eq!(
        foreign.error_kind,
        Some(ProbeErrorKind::BadHandshake),
        "{foreign:?}"
    );

    // SIGSTOP'd: the kernel completes the TCP handshake, mysqld never
    // sends its greeting.
    signal(pid, Signal::SIGSTOP);
    let _continue = Continue(pid);
    common::wait_state(pid, 'T').await;
    let asked = Instant::now();
    let stopped = probe(ip.clone(), port, 1500).await;
    let took = asked.elapsed();
    assert!(stopped.connected && !stopped.handshake, "{stopped:?}");
    assert_eq!(
        stopped.error_kind,
        Some(ProbeErrorKind::Timeout),
        "{stopped:?}"
    );
    assert!(stopped.connect_ms.unwrap() < 500, "{stopped:?}");
    assert!(
        (1500..1500 + SLACK.as_millis() as u64).contains(&stopped.elapsed_ms),
        "{stopped:?}"
    );
    assert!(took < Duration::from_millis(1500) + SLACK, "{took:?}");
    signal(pid, Signal::SIGCONT);
    let again = probe(ip.clone(), port, 2000).await;
    assert!(again.handshake, "{again:?}");

    // A name that does not resolve, and deadlines out of bounds.
    let unresolved = probe("no-such-host.invalid".to_string(), port, 2000).await;
    assert_eq!(
        unresolved.error_kind,
        Some(ProbeErrorKind::Resolve),
        "{unresolved:?}"
    );
    for ms in [0, 10_001] {
        let err = observer
            .client
            .probe_remote(&ip, port, Duration::from_millis(ms))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AgentError::Failed { status: 400, message, .. } if message.contains("deadline_ms")),
            "{err}"
        );
    }
    probes_need_the_token(&observer).await;
}

/// The probe routes are authenticated like every other.
async fn probes_need_the_token(host: &Host) {
    let url = host.agent.as_ref().unwrap().url.clone();
    for (route, body) in [
        (routes::PROBE_LOCAL, r#"{"deadline_ms":100}"#),
        (
            routes::PROBE_REMOTE,
            r#"{"host":"127.0.0.1","port":1,"deadline_ms":100}"#,
        ),
    ] {
        let response = common::raw_http()
            .post(format!("{url}{route}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{route}");
        let response = common::raw_http()
            .post(format!("{url}{route}"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{route}");
    }
}
