//! `[cluster] durability = "semi-sync"` on a real sandbox: what the plan says
//! with async, flipover turning semi-sync on and proving it, a switchover
//! moving it to the new primary, and a failover after kill -9 of the primary
//! under a steady writer losing no acknowledged write.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::writer::{app_endpoints, ids_on, prepare_app_user, Writer};
use common::{apply, flipover, observe, TestSandbox};
use flipover::observe::{Observed, SemiSync};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const ALL: [&str; 3] = ["db1", "db2", "db3"];

/// `topology` with `durability = "semi-sync"`, written beside it as `NAME.toml`.
fn with_semi_sync(sandbox: &TestSandbox, topology: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(topology).unwrap();
    let text = text.replacen("[cluster]\n", "[cluster]\ndurability = \"semi-sync\"\n", 1);
    assert!(text.contains("durability"), "{text}");
    let path = sandbox.dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn semi_sync_of<'o>(state: &'o Observed, server: &str) -> &'o SemiSync {
    state.servers[server]
        .facts()
        .and_then(|f| f.semi_sync.as_ref())
        .unwrap_or_else(|| panic!("{server} reports semi-sync"))
}

#[tokio::test(flavor = "multi_thread")]
async fn semi_sync_is_proven_moves_with_a_switchover_and_a_failover_loses_no_acknowledged_write() {
    let sandbox = TestSandbox::up(3);
    let (ok, out) = apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");

    // Async (the default): the plan says what a failover could lose.
    let plan = flipover(&["plan", "-f", &sandbox.topology_arg()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{text}");
    assert!(
        text.contains("Durability: async — a failover may lose transactions acknowledged by db1 that no replica has received (none now: "),
        "{text}"
    );
    let json = flipover(&["plan", "-f", &sandbox.topology_arg(), "--json"]);
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["durability"]["mode"], "async", "{document}");

    // Semi-sync: one step configures it and proves it.
    let topology = with_semi_sync(&sandbox, &sandbox.topology(), "semi-sync");
    let plan = flipover(&["plan", "-f", topology.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("1. make db1's commits wait for a replica (semi-sync, AFTER_SYNC)")
            && text.contains("now: db2: replica side off")
            && text.contains("now: db1: wait point AFTER_COMMIT, not AFTER_SYNC"),
        "{text}"
    );
    let (ok, out) = apply(&topology, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("db1: semi-sync ON, 2 semi-sync replicas connected"),
        "{out}"
    );
    let state = observe(&topology);
    let primary = semi_sync_of(&state, "db1");
    assert!(
        primary.master_enabled && primary.master_status,
        "{primary:?}"
    );
    assert_eq!(primary.master_clients, 2, "{primary:?}");
    assert_eq!(primary.master_wait_point.as_deref(), Some("AFTER_SYNC"));
    assert_eq!(primary.master_timeout_ms, Some(10_000));
    for replica in ["db2", "db3"] {
        let semi_sync = semi_sync_of(&state, replica);
        assert!(
            semi_sync.slave_enabled && semi_sync.slave_status && !semi_sync.master_enabled,
            "{replica}: {semi_sync:?}"
        );
    }
    let status = flipover(&["status", "-f", topology.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("semi-sync: primary side ON (status ON, 2 clients, wait point AFTER_SYNC, timeout 10000 ms)")
            && text.contains("semi-sync: replica side ON (status ON)"),
        "{text}"
    );
    let again = flipover(&["plan", "-f", topology.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("No changes")
            && text.contains("now: db1 waits for a replica, 2 semi-sync replicas connected"),
        "{text}"
    );

    // A switchover moves semi-sync with the primary: db2 waits, db1 no longer.
    let switched = with_semi_sync(
        &sandbox,
        &sandbox.write_topology("switched-async", "db2", &[]),
        "switched",
    );
    let (ok, out) = apply(&switched, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("db1: primary side off")
            && out.contains("db2: semi-sync ON, 2 semi-sync replicas connected"),
        "{out}"
    );
    let state = observe(&switched);
    let primary = semi_sync_of(&state, "db2");
    assert!(
        primary.master_enabled && primary.master_status && primary.master_clients == 2,
        "{primary:?}"
    );
    for replica in ["db1", "db3"] {
        let semi_sync = semi_sync_of(&state, replica);
        assert!(
            semi_sync.slave_enabled && semi_sync.slave_status && !semi_sync.master_enabled,
            "{replica}: {semi_sync:?}"
        );
    }

    // The primary dies under a steady writer.
    prepare_app_user(&sandbox, "db2").await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(700)).await;
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db2") as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (ok, out) = apply(&switched, &["--failover"]);
    assert!(ok, "{out}");
    let state = observe(&switched);
    let new_primary = ["db1", "db3"]
        .into_iter()
        .find(|s| state.servers[*s].facts().is_some_and(|f| !f.read_only))
        .expect("a writable survivor");
    let survivor = if new_primary == "db1" { "db3" } else { "db1" };
    assert!(
        out.contains(&format!(
            "{new_primary}: semi-sync ON, 1 semi-sync replica connected"
        )),
        "{out}"
    );

    // The writer went on on the new primary.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = writer.stop().await;
    let before_kill = report.per_server.get("db2").copied().unwrap_or(0);
    assert!(before_kill > 0, "{report:?}");
    assert!(
        report.per_server.get(new_primary).copied().unwrap_or(0) > 0,
        "{report:?}"
    );

    // Zero acknowledged writes lost: every insert db2 acknowledged had
    // reached a replica (AFTER_SYNC), and the failover kept it.
    let on_primary = ids_on(&sandbox, new_primary).await;
    let lost: Vec<u64> = report
        .acks
        .iter()
        .filter(|ack| !on_primary.contains(&ack.id))
        .map(|ack| ack.id)
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged writes lost: {lost:?} of {}",
        report.acks.len()
    );
    eprintln!(
        "{} acknowledged writes ({before_kill} by db2 before it died), none lost",
        report.acks.len()
    );

    // The new primary waits for the surviving replica.
    let state = observe(&switched);
    let primary = semi_sync_of(&state, new_primary);
    assert!(
        primary.master_enabled && primary.master_status && primary.master_clients == 1,
        "{new_primary}: {primary:?}"
    );
    let replica = semi_sync_of(&state, survivor);
    assert!(
        replica.slave_enabled && replica.slave_status && !replica.master_enabled,
        "{survivor}: {replica:?}"
    );
    let status = state.servers[survivor]
        .facts()
        .unwrap()
        .replica
        .clone()
        .unwrap();
    assert_eq!(status.source_host, sandbox.host(new_primary).address);
    assert!(status.healthy(), "{status:?}");

    // SET GLOBAL does not survive a restart: the next plan shows the drift
    // and puts it back.
    let agent = sandbox
        .host(survivor)
        .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(60))
        .expect("agent client");
    assert!(!agent.stop_mysqld().await.unwrap().mysqld_running);
    assert!(agent.start_mysqld().await.unwrap().mysqld_running);
    let after = with_semi_sync(
        &sandbox,
        &sandbox.write_topology("after-failover-async", new_primary, &[]),
        "after-failover",
    );
    let plan = flipover(&["plan", "-f", after.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains(&format!("now: {survivor}: replica side off")),
        "{text}"
    );
    let (ok, out) = apply(&after, &[]);
    assert!(ok, "{out}");
    let state = observe(&after);
    let primary = semi_sync_of(&state, new_primary);
    assert!(
        primary.master_status && primary.master_clients == 1,
        "{new_primary}: {primary:?}"
    );
    assert!(semi_sync_of(&state, survivor).slave_status);
}
