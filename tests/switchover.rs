//! Rechain and planned switchover on a real sandbox of 4 servers, under a
//! steady writer.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::writer::{app_endpoints, assert_all_acked_present, prepare_app_user, Writer};
use common::{flipover, flipover_bin, TestSandbox};
use flipover::observe::Observed;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const ALL: [&str; 4] = ["db1", "db2", "db3", "db4"];

fn topology(sandbox: &TestSandbox, name: &str, primary: &str, sources: &[(&str, &str)]) -> PathBuf {
    sandbox.write_topology(name, primary, sources)
}

fn apply(path: &Path) -> (bool, String) {
    common::apply(path, &[])
}

fn observed(path: &Path) -> Observed {
    common::observe(path)
}

/// Exactly one writable server (the primary), every replica replicating from
/// its desired source with both threads, and nothing left to plan.
fn assert_converged(sandbox: &TestSandbox, path: &Path, primary: &str, sources: &[(&str, &str)]) {
    let state = observed(path);
    for server in ALL {
        let facts = state.servers[server]
            .facts()
            .unwrap_or_else(|| panic!("{server} answers"));
        assert_eq!(facts.read_only, server != primary, "{server}: read_only");
        match &facts.replica {
            None => assert_eq!(server, primary, "{server} should replicate"),
            Some(replica) => {
                let source = sources
                    .iter()
                    .find(|(r, _)| *r == server)
                    .map(|(_, s)| *s)
                    .unwrap_or(primary);
                assert_eq!(
                    replica.source_host,
                    sandbox.host(source).address,
                    "{server}'s source"
                );
                assert!(replica.healthy(), "{server}: {replica:?}");
            }
        }
    }
    let plan = flipover(&["plan", "-f", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success() && text.contains("No changes"),
        "{text}"
    );
}

async fn cloned_sandbox() -> TestSandbox {
    let sandbox = TestSandbox::up(4);
    let (ok, stderr) = apply(&sandbox.topology());
    assert!(ok, "initial clones: {stderr}");
    prepare_app_user(&sandbox, "db1").await;
    sandbox
}

#[tokio::test(flavor = "multi_thread")]
async fn switchover_there_and_back_and_a_rechain_lose_no_acknowledged_write() {
    let sandbox = cloned_sandbox().await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // db1 -> db2: db3 and db4 move under db2 first, db1 becomes its replica.
    let to_db2 = topology(&sandbox, "to-db2", "db2", &[]);
    let (ok, stderr) = apply(&to_db2);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("switchover db1 -> db2: write-block: "),
        "{stderr}"
    );
    assert_converged(&sandbox, &to_db2, "db2", &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // And back to db1.
    let to_db1 = topology(&sandbox, "to-db1", "db1", &[]);
    let (ok, stderr) = apply(&to_db1);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("switchover db2 -> db1: write-block: "),
        "{stderr}"
    );
    assert_converged(&sandbox, &to_db1, "db1", &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // db4 from db1 to db3 (a chained replica).
    let chained = topology(&sandbox, "chained", "db1", &[("db4", "db3")]);
    let (ok, stderr) = apply(&chained);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("rechain db4 from db1 to db3: done"),
        "{stderr}"
    );
    assert_converged(&sandbox, &chained, "db1", &[("db4", "db3")]);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let report = writer.stop().await;
    assert!(
        report.acked.len() > 50,
        "the writer kept writing: {report:?}"
    );
    assert!(report.per_server.contains_key("db2") && report.per_server.contains_key("db1"));
    assert_all_acked_present(&sandbox, &ALL, &report).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_candidate_during_the_wait_rolls_everything_back() {
    let sandbox = cloned_sandbox().await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Hold the candidate's SQL thread on a table lock: it receives the
    // writer's inserts but cannot apply them, so the switchover's wait lasts.
    let mut blocker = sandbox.connect("db2").await;
    blocker
        .execute("LOCK TABLES shop.writes WRITE")
        .await
        .unwrap();

    // db3 and db4 stay under db1 (which becomes db2's replica): moving them
    // under db2 first would wait on db2 as well.
    let to_db2 = topology(
        &sandbox,
        "to-db2-keep",
        "db2",
        &[("db3", "db1"), ("db4", "db1")],
    );
    // The blocked candidate's lag grows by the second; on a loaded machine
    // the default limit (5 s) could refuse the switchover before it starts.
    let text = std::fs::read_to_string(&to_db2).unwrap();
    std::fs::write(
        &to_db2,
        text.replacen("[cluster]\n", "[cluster]\nmax_replica_lag = 120\n", 1),
    )
    .unwrap();
    let mut apply = Command::new(flipover_bin())
        .args(["apply", "-f", to_db2.to_str().unwrap(), "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Once db1 is fenced the switchover is waiting on db2: kill db2's mysqld.
    let started = Instant::now();
    loop {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = apply.kill();
            let output = apply.wait_with_output().unwrap();
            panic!(
                "the switchover never fenced db1:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // The fence kills every client session on db1, this probe's too
        // when it lands at that moment: that only means "look again".
        let read_only =
            match flipover::db::connect(&sandbox.admin("db1"), Duration::from_secs(5)).await {
                Ok(mut conn) => {
                    let row = conn
                        .first_row("SELECT @@read_only AS ro")
                        .await
                        .ok()
                        .flatten();
                    conn.close().await;
                    row.and_then(|r| r.get("ro").cloned().flatten())
                }
                Err(_) => None,
            };
        if read_only.as_deref() == Some("1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db2") as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    drop(blocker);

    let output = apply.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("rolled back: db1 is writable again"),
        "{stderr}"
    );
    assert!(stderr.contains("db2 could not be put back"), "{stderr}");

    // db1 takes writes again and the other replicas follow it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = observed(&sandbox.topology());
    assert!(!state.servers["db1"].facts().unwrap().read_only);
    assert!(!state.servers["db2"].mysql.reachable);
    for replica in ["db3", "db4"] {
        let status = state.servers[replica]
            .facts()
            .unwrap()
            .replica
            .clone()
            .unwrap();
        assert_eq!(status.source_host, sandbox.host("db1").address, "{replica}");
        assert!(status.healthy(), "{replica}: {status:?}");
    }
    let report = writer.stop().await;
    assert!(report.per_server.get("db1").copied().unwrap_or(0) > 0);
    assert!(
        !report.per_server.contains_key("db2"),
        "nothing was written on the candidate"
    );
    assert_all_acked_present(&sandbox, &["db1", "db3", "db4"], &report).await;
}
