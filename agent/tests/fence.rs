//! Fencing a real MariaDB server through its agent: read-only on a live
//! server (privileged sessions killed, writes refused), stop on a
//! SIGSTOP'd one (SIGKILL within the deadline, without the action lock),
//! and the fence's record surviving an agent restart: no autostart, and a
//! later start comes up read-only until the fence is lifted.

mod common;

use std::time::{Duration, Instant};

use common::host::{host, Host};
use flipover_agent::client::AgentError;
use flipover_agent::protocol::{FenceMode, FenceRequest, LiftFenceRequest, StartRequest};
use mysql_async::prelude::Queryable;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Slack over a deadline for scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(700);

fn request(mode: FenceMode, deadline_ms: u64) -> FenceRequest {
    FenceRequest {
        mode,
        deadline_ms,
        requested_by: Some("fence test".to_string()),
        reason: Some("failover db1 -> db2".to_string()),
    }
}

/// An account without privileges beyond its schema: read_only stops it.
fn add_app_user(host: &Host) {
    host.sql(
        "SET sql_log_bin=0; CREATE USER app@localhost; \
         GRANT SELECT, INSERT ON shop.* TO app@localhost",
    );
}

fn app_insert(host: &Host, id: u32) -> Result<String, String> {
    host.sql_as(
        "app",
        &format!("INSERT INTO shop.items VALUES ({id}, 'fig')"),
    )
}

async fn root_session(host: &Host) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .user(Some("root"))
        .socket(Some(host.socket.display().to_string()));
    mysql_async::Conn::new(opts).await.unwrap()
}

fn record_path(host: &Host) -> std::path::PathBuf {
    host.datadir.with_file_name("data.flipover-fence")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_fence_kills_sessions_and_refuses_writes() {
    let target = host(11, 1, "");
    let pid = target.wait_running().await.mysqld_pid.unwrap();
    common::host::put_shop(&target);
    add_app_user(&target);
    app_insert(&target, 10).unwrap();

    // A privileged session in the middle of a transaction: read_only alone
    // would not stop it on MariaDB.
    let mut root = root_session(&target).await;
    let root_id: u64 = root
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    root.query_drop("BEGIN").await.unwrap();
    root.query_drop("INSERT INTO shop.items VALUES (20, 'uncommitted')")
        .await
        .unwrap();

    let outcome = target
        .client
        .fence(&request(FenceMode::ReadOnly, 3000))
        .await
        .unwrap();
    assert!(outcome.holds, "{outcome:?}");
    assert_eq!(outcome.mode, FenceMode::ReadOnly);
    assert_eq!(outcome.flavor.as_deref(), Some("mariadb"));
    assert_eq!(outcome.read_only, Some(true), "{outcome:?}");
    assert!(outcome.killed_sessions.contains(&root_id), "{outcome:?}");
    assert_eq!(
        (outcome.pid_before, outcome.pid_after, outcome.running_after),
        (Some(pid), Some(pid), true)
    );
    assert!(!outcome.sigkilled && outcome.error.is_none(), "{outcome:?}");
    assert!(
        outcome
            .actions
            .iter()
            .any(|a| a == "ran SET GLOBAL read_only = 1"),
        "{outcome:?}"
    );
    assert!(outcome.elapsed_ms < 3000, "{outcome:?}");
    eprintln!(
        "read-only fence: {} ms, {:?}",
        outcome.elapsed_ms, outcome.actions
    );

    // The killed session's transaction is gone, and it cannot go on.
    assert!(root.query_drop("COMMIT").await.is_err());
    assert_eq!(
        target.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.items"),
        "1,2,3,10"
    );
    assert_eq!(target.sql("SELECT @@read_only"), "1");
    let refused = app_insert(&target, 11).unwrap_err();
    assert!(refused.contains("read-only"), "{refused}");

    // The record, in the facts too.
    let record = outcome.record.clone().unwrap();
    assert_eq!(record.marker, record_path(&target).display().to_string());
    assert!(record_path(&target).is_file());
    let facts = target.client.facts().await.unwrap();
    let fenced = facts.fenced.unwrap();
    assert_eq!(fenced.mode, FenceMode::ReadOnly);
    assert_eq!(fenced.requested_by.as_deref(), Some("fence test"));
    assert_eq!(fenced.reason.as_deref(), Some("failover db1 -> db2"));
    assert!(fenced.peer.is_some());
    assert_eq!(fenced, record);

    // Lifting removes the record; the running server stays read-only
    // (making it writable is flipover's business).
    let facts = target
        .client
        .lift_fence(&LiftFenceRequest {
            requested_by: Some("fence test".to_string()),
        })
        .await
        .unwrap();
    assert_eq!(facts.fenced, None);
    assert!(!record_path(&target).exists());
    assert_eq!(target.sql("SELECT @@read_only"), "1");

    // A stop fence on a live server: SIGTERM, and it is gone within the
    // deadline. Then read-only on the stopped server holds as it is.
    let outcome = target
        .client
        .fence(&request(FenceMode::Stop, 8000))
        .await
        .unwrap();
    assert!(outcome.holds, "{outcome:?}");
    assert!(!outcome.running_after && outcome.pid_after.is_none());
    assert!(
        outcome
            .actions
            .iter()
            .any(|a| a == &format!("sent SIGTERM to mysqld {pid}")),
        "{outcome:?}"
    );
    assert!(target.mysqld_pid().is_none(), "mysqld {pid} still there");
    eprintln!(
        "stop fence on a live server: {} ms, sigkilled: {}",
        outcome.elapsed_ms, outcome.sigkilled
    );
    let outcome = target
        .client
        .fence(&request(FenceMode::ReadOnly, 1000))
        .await
        .unwrap();
    assert!(outcome.holds && !outcome.running_after, "{outcome:?}");
    assert_eq!(outcome.pid_before, None);
    assert!(
        outcome
            .actions
            .iter()
            .any(|a| a.starts_with("mysqld is not running")),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_fence_kills_a_stopped_mysqld_and_survives_an_agent_restart() {
    let started = Instant::now();
    let mut target = host(12, 1, "");
    let pid = target.wait_running().await.mysqld_pid.unwrap();
    common::host::put_shop(&target);
    add_app_user(&target);

    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap()
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .next()
        != Some("T")
    {
        assert!(Instant::now() < deadline, "mysqld never stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A plain stop hangs holding the action lock (SIGTERM waits).
    let stopping = {
        let client = target.client.clone();
        tokio::spawn(async move { client.stop_mysqld().await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(
        target.client.start_mysqld().await,
        Err(AgentError::Busy { .. })
    ) {
        assert!(Instant::now() < deadline, "no stop under way");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Read-only cannot reach a hung server: it says so within its deadline.
    let outcome = target
        .client
        .fence(&request(FenceMode::ReadOnly, 1000))
        .await
        .unwrap();
    assert!(!outcome.holds, "{outcome:?}");
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("within the deadline"),
        "{outcome:?}"
    );
    assert!(
        outcome.running_after && outcome.record.is_some(),
        "{outcome:?}"
    );
    assert!(
        outcome.elapsed_ms < 1000 + SLACK.as_millis() as u64,
        "{outcome:?}"
    );

    // Stop: SIGTERM cannot reach it, SIGKILL does, within the deadline.
    let asked = Instant::now();
    let outcome = target
        .client
        .fence(&request(FenceMode::Stop, 3000))
        .await
        .unwrap();
    let took = asked.elapsed();
    assert!(outcome.holds, "{outcome:?}");
    assert!(outcome.sigkilled, "{outcome:?}");
    assert_eq!(outcome.pid_before, Some(pid));
    assert!(!outcome.running_after && outcome.pid_after.is_none());
    assert!(took < Duration::from_millis(3000) + SLACK, "{took:?}");
    assert!(
        outcome
            .actions
            .iter()
            .any(|a| a.starts_with(&format!("sent SIGKILL to mysqld {pid}"))),
        "{outcome:?}"
    );
    assert!(target.mysqld_pid().is_none(), "mysqld {pid} still there");
    eprintln!(
        "stop fence on a stopped mysqld: {took:?}, {:?}",
        outcome.actions
    );
    // The hanging stop ends with it.
    let facts = stopping.await.unwrap().unwrap();
    assert!(!facts.mysqld_running);
    assert_eq!(facts.fenced.unwrap().mode, FenceMode::Stop);

    // A new agent (the old one killed as a crash would): it reads the
    // record and leaves mysqld down.
    target.restart_agent();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Busy while the startup decision holds the action lock.
        match target.client.stop_mysqld().await {
            Ok(facts) => {
                assert!(!facts.mysqld_running);
                break;
            }
            Err(AgentError::Busy { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "the agent stays busy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let facts = target.client.facts().await.unwrap();
    assert!(!facts.mysqld_running, "{facts:?}");
    assert_eq!(facts.fenced.as_ref().unwrap().mode, FenceMode::Stop);
    assert!(target.mysqld_pid().is_none());

    // Started while fenced: read-only, and the app's writes are refused.
    let facts = target.client.start_mysqld().await.unwrap();
    assert!(facts.mysqld_running && facts.fenced.is_some());
    assert_eq!(target.sql("SELECT @@read_only"), "1");
    assert_eq!(target.sql("SELECT COUNT(*) FROM shop.items"), "3");
    let refused = app_insert(&target, 12).unwrap_err();
    assert!(refused.contains("read-only"), "{refused}");

    // Lifting with a start removes the record (a running server is left
    // as it is); the next start is writable.
    let facts = target
        .client
        .start_mysqld_with(&StartRequest {
            lift_fence: true,
            requested_by: Some("fence test".to_string()),
        })
        .await
        .unwrap();
    assert!(facts.mysqld_running && facts.fenced.is_none(), "{facts:?}");
    assert!(!record_path(&target).exists());
    target.client.stop_mysqld().await.unwrap();
    target.client.start_mysqld().await.unwrap();
    assert_eq!(target.sql("SELECT @@read_only"), "0");
    app_insert(&target, 12).unwrap();
    eprintln!("test took {} ms", started.elapsed().as_millis());
}

#[tokio::test]
async fn fence_requests_are_checked() {
    let target = host(13, 1, "");
    target.wait_running().await;
    for ms in [0, 10_001] {
        let err = target
            .client
            .fence(&request(FenceMode::Stop, ms))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AgentError::Failed { status: 400, message, .. } if message.contains("deadline_ms")),
            "{err}"
        );
    }
    // Refused before anything happened: no record, mysqld runs.
    let facts = target.client.facts().await.unwrap();
    assert!(facts.mysqld_running && facts.fenced.is_none());
    let url = target.agent.as_ref().unwrap().url.clone();
    let response = common::raw_http()
        .post(format!("{url}{}", flipover_agent::protocol::routes::FENCE))
        .header("content-type", "application/json")
        .body(r#"{"mode":"stop","deadline_ms":1000}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(target.client.facts().await.unwrap().mysqld_running);
    assert!(!record_path(&target).exists());
}
