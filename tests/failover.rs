//! Failover on a real sandbox: kill -9 the primary under a writer, let
//! flipover replace it, then bring the old primary back with writes of its
//! own and let the plan reclone it.

mod common;

use std::time::Duration;

use common::writer::{app_endpoints, ids_on, prepare_app_user, Writer};
use common::{apply, flipover, observe, TestSandbox};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const ALL: [&str; 4] = ["db1", "db2", "db3", "db4"];
const SHOP: &str = "shop.writes, shop.customers, shop.orders";

#[tokio::test(flavor = "multi_thread")]
async fn failover_keeps_every_received_write_and_the_old_primary_is_recloned() {
    let sandbox = TestSandbox::up(4);
    let (ok, out) = apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");
    prepare_app_user(&sandbox, "db1").await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The primary dies.
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db1") as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let plan = flipover(&["plan", "-f", &sandbox.topology_arg()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(1), "{text}");
    assert!(
        text.contains("db1 is unreachable") && text.contains("--failover"),
        "{text}"
    );

    let (ok, out) = apply(&sandbox.topology(), &["--failover"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("--failover: ") && out.contains("replaces db1 as primary"),
        "{out}"
    );
    assert!(out.contains("new primary writable after"), "{out}");

    // Exactly one writable server; every other survivor replicates from it.
    let state = observe(&sandbox.topology());
    let writable: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|s| state.servers[*s].facts().is_some_and(|f| !f.read_only))
        .collect();
    assert_eq!(writable.len(), 1, "{writable:?}");
    let primary = writable[0];
    assert_ne!(primary, "db1");
    let survivors: Vec<&str> = ALL.iter().copied().filter(|s| *s != "db1").collect();
    for replica in survivors.iter().filter(|s| **s != primary) {
        let status = state.servers[*replica]
            .facts()
            .unwrap()
            .replica
            .clone()
            .unwrap();
        assert_eq!(
            status.source_host,
            sandbox.host(primary).address,
            "{replica}"
        );
        assert!(status.healthy(), "{replica}: {status:?}");
    }

    // The writer found the new primary and went on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = writer.stop().await;
    assert!(
        report.per_server.get(primary).copied().unwrap_or(0) > 0,
        "{report:?}"
    );

    // Nothing any survivor received is missing on the new primary, and every
    // acknowledged write either reached the survivors or was acknowledged by
    // db1 alone (asynchronous replication: the only writes a failover can lose).
    let on_primary = ids_on(&sandbox, primary).await;
    let mut lost = 0;
    for survivor in &survivors {
        sandbox
            .wait_for_value(
                survivor,
                "SELECT COUNT(*) FROM shop.writes",
                &on_primary.len().to_string(),
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(ids_on(&sandbox, survivor).await, on_primary, "{survivor}");
    }
    for ack in &report.acks {
        if !on_primary.contains(&ack.id) {
            assert_eq!(
                ack.server, "db1",
                "write {} acknowledged by {} is lost",
                ack.id, ack.server
            );
            lost += 1;
        }
    }
    eprintln!(
        "{} acknowledged writes, {lost} acknowledged only by the dead primary",
        report.acks.len()
    );

    // db1 comes back, and takes a write nobody else has.
    let agent = sandbox
        .host("db1")
        .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(60))
        .unwrap();
    assert!(agent.start_mysqld().await.unwrap().mysqld_running);
    let mut conn = sandbox.connect("db1").await;
    conn.execute("INSERT INTO shop.customers VALUES (9001, 'stray', 'stray@example.com')")
        .await
        .unwrap();
    conn.close().await;

    let after = sandbox.write_topology("after-failover", primary, &[]);
    let plan = flipover(&["plan", "-f", after.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{text}");
    assert!(
        text.contains(&format!("clone db1 from {primary}  [DESTRUCTIVE]")),
        "{text}"
    );
    assert!(
        text.contains("db1 holds writes it made as primary that never reached"),
        "{text}"
    );
    assert!(text.contains("errant GTIDs: 0-1-"), "{text}");

    let (ok, out) = apply(&after, &[]);
    assert!(ok, "{out}");
    let state = observe(&after);
    let db1 = state.servers["db1"].facts().unwrap();
    assert!(db1.read_only);
    let status = db1.replica.as_ref().unwrap();
    assert_eq!(status.source_host, sandbox.host(primary).address);
    assert!(status.healthy());
    let again = flipover(&["plan", "-f", after.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("No changes"));

    let reference = sandbox.checksums(primary, SHOP).await;
    for server in ALL {
        sandbox
            .wait_for_value(
                server,
                "SELECT COUNT(*) FROM shop.writes",
                &on_primary.len().to_string(),
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(sandbox.checksums(server, SHOP).await, reference, "{server}");
    }
}
