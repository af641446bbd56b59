//! `flipover sandbox` and `flipover status` against real MariaDB servers.

mod common;

use std::time::Duration;

use common::{flipover, TestSandbox};
use flipover::observe::Observed;
use flipover_agent::client::{AgentClient, AgentError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn status_json(sandbox: &TestSandbox) -> Observed {
    let output = flipover(&["status", "-f", &sandbox.topology_arg(), "--json"]);
    assert!(
        output.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("status --json prints the observed state")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_a_replica_set_up_by_hand() {
    let sandbox = TestSandbox::up(3);
    let db1 = sandbox.host("db1").clone();

    // Fresh sandbox: db1 holds the sample data, db2 and db3 are empty and not replicating.
    let observed = status_json(&sandbox);
    assert_eq!(observed.servers.len(), 3);
    let primary = observed.servers["db1"].facts().expect("db1 answers");
    assert_eq!(primary.user_schemas, vec!["shop".to_string()]);
    assert!(primary.log_bin && primary.log_slave_updates);
    assert_eq!(primary.binlog_format, "ROW");
    let primary_gtid = primary.gtid.binlog_pos.clone().expect("gtid_binlog_pos");
    assert!(
        primary_gtid.starts_with("0-1-"),
        "db1's own GTIDs: {primary_gtid}"
    );
    for empty in ["db2", "db3"] {
        let facts = observed.servers[empty].facts().expect("answers");
        assert!(facts.user_schemas.is_empty(), "{empty} starts empty");
        assert_eq!(
            facts.gtid.binlog_pos.as_deref(),
            Some(""),
            "{empty} has no GTIDs of its own"
        );
        assert!(facts.replica.is_none());
        let agent = observed.servers[empty]
            .agent
            .facts
            .as_ref()
            .expect("agent answers");
        assert!(agent.mysqld_running && agent.supervised);
    }

    // `observe` records the same state for `plan --observed`.
    let recorded = flipover(&["observe", "-f", &sandbox.topology_arg()]);
    assert!(recorded.status.success());
    let recorded: Observed = serde_json::from_slice(&recorded.stdout).unwrap();
    assert_eq!(
        recorded.servers.keys().collect::<Vec<_>>(),
        observed.servers.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        recorded.servers["db1"].facts().unwrap().user_schemas,
        vec!["shop".to_string()]
    );

    sandbox.replicate("db2", "db1").await;
    sandbox
        .wait_for_value(
            "db2",
            "SELECT COUNT(*) FROM shop.orders",
            "500",
            Duration::from_secs(30),
        )
        .await;

    let observed = status_json(&sandbox);
    let replica = observed.servers["db2"].facts().expect("db2 answers");
    let status = replica.replica.as_ref().expect("db2 replicates");
    assert_eq!(status.source_host, db1.address);
    assert_eq!(status.source_port, db1.mysql_port);
    assert_eq!(status.source_user, "repl");
    assert!(status.healthy(), "both threads run: {status:?}");
    assert!(status.using_gtid);
    assert_eq!(status.gtid_received.as_deref(), Some(primary_gtid.as_str()));
    assert_eq!(
        replica.gtid.slave_pos.as_deref(),
        Some(primary_gtid.as_str())
    );
    assert_eq!(
        replica.gtid.current_pos.as_deref(),
        Some(primary_gtid.as_str())
    );
    assert_eq!(replica.user_schemas, vec!["shop".to_string()]);
    assert!(observed.servers["db3"].facts().unwrap().replica.is_none());

    // The human view draws db2 under db1 and db3 on its own.
    let output = flipover(&["status", "-f", &sandbox.topology_arg()]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let db1_line = lines
        .iter()
        .position(|l| l.starts_with("db1 "))
        .expect(&text);
    let db2_line = lines
        .iter()
        .position(|l| l.starts_with("└─ db2 "))
        .expect(&text);
    let db3_line = lines
        .iter()
        .position(|l| l.starts_with("db3 "))
        .expect(&text);
    assert!(db1_line < db2_line && db2_line < db3_line, "{text}");
    assert!(lines[db2_line].contains("replica"), "{text}");
    assert!(text.contains("io Yes  sql Yes"), "{text}");
    assert!(text.contains(&format!("gtid {primary_gtid}")), "{text}");
    assert!(lines[db1_line].contains("writable"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_agent_token_is_refused_and_mysqld_keeps_running() {
    let sandbox = TestSandbox::up(1);
    let host = sandbox.host("db1");
    let intruder = host
        .agent_client("not-the-token", Duration::from_secs(5))
        .unwrap();
    match intruder.stop_mysqld().await {
        Err(AgentError::Unauthorized { .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    let empty = host.agent_client("", Duration::from_secs(5)).unwrap();
    assert!(matches!(
        empty.facts().await,
        Err(AgentError::Unauthorized { .. })
    ));
    // The sandbox's agents speak mutual TLS: plain HTTP, even with the
    // right token, gets no answer.
    assert!(host.agent_url().starts_with("https://"));
    let plain = AgentClient::new(
        &host.agent_url().replacen("https://", "http://", 1),
        &sandbox.secret("agent.token"),
        Duration::from_secs(5),
    );
    match plain.stop_mysqld().await {
        Err(AgentError::Unreachable { .. }) => {}
        other => panic!("expected no answer, got {other:?}"),
    }

    let agent = host
        .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(5))
        .unwrap();
    let facts = agent.facts().await.expect("the right token is accepted");
    assert!(facts.mysqld_running);
    assert_eq!(facts.settings.server_id, Some(1));
    assert_eq!(facts.settings.log_bin.as_deref(), Some("mysql-bin"));
    // And the server still takes queries.
    sandbox
        .wait_for_value(
            "db1",
            "SELECT COUNT(*) FROM shop.customers",
            "100",
            Duration::from_secs(5),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_mysqld_is_reported_unreachable_and_the_rest_intact() {
    let sandbox = TestSandbox::up(3);
    let pid = sandbox.mysqld_pid("db3");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    for _ in 0..100 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let output = flipover(&["status", "-f", &sandbox.topology_arg(), "--json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "an unreachable server is a fact, not an error"
    );
    let observed: Observed = serde_json::from_slice(&output.stdout).unwrap();
    let db3 = &observed.servers["db3"];
    assert!(!db3.mysql.reachable);
    assert!(db3.mysql.error.is_some());
    assert!(db3.facts().is_none());
    let agent = db3.agent.facts.as_ref().expect("db3's agent still answers");
    assert!(!agent.mysqld_running);
    for up in ["db1", "db2"] {
        assert!(observed.servers[up].mysql.reachable, "{up} intact");
        assert!(observed.servers[up].facts().is_some());
    }

    let output = flipover(&["status", "-f", &sandbox.topology_arg()]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("cluster sb: 3 servers, 2 reachable"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("db3 ") && l.contains("UNREACHABLE")),
        "{text}"
    );
    assert!(text.contains("agent: mysqld stopped"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_sandbox_works_in_plaintext_and_plan_warns() {
    let sandbox = TestSandbox::up_with(2, &["--insecure"]);
    let topology = std::fs::read_to_string(sandbox.topology()).unwrap();
    assert!(topology.contains("insecure = true"), "{topology}");
    assert!(!topology.contains("client_cert"), "{topology}");
    assert!(!sandbox.dir.join("tls").exists());

    let host = sandbox.host("db1");
    assert!(host.agent_url().starts_with("http://"));
    let facts = host
        .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(5))
        .unwrap()
        .facts()
        .await
        .unwrap();
    assert!(facts.mysqld_running);

    // flipover reaches the agents in plaintext (db2's agent reports an
    // empty datadir, so the clone is planned) and warns about it.
    let output = flipover(&["plan", "-f", &sandbox.topology_arg()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning[plaintext-agents]: the agents are reached in plaintext"),
        "{stdout}"
    );
    assert!(stdout.contains("clone db2 from db1"), "{stdout}");

    // The TLS sandbox's plan has no such warning.
    let secure = TestSandbox::up(1);
    let output = flipover(&["plan", "-f", &secure.topology_arg()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains("plaintext"), "{stdout}");
}
