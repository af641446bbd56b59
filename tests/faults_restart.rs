//! A server's mysqld restarts in the middle of a rechain (through its
//! agent, as an operator or a crash-restart would), at a known point: flipover
//! pauses after stopping the moving replica's replication
//! (`FLIPOVER_PAUSE_AT=rechain.stopped`). The apply must end with the
//! cluster consistent (one writable primary, every replica replicating,
//! nothing lost) and the next apply must converge.

mod common;

use std::time::{Duration, Instant};

use common::faults::{checksums_agree, converged, writes_found, PausedApply};
use common::reliability::{self, Outcome, Row};
use common::writer::{app_endpoints, assert_all_acked_present, prepare_app_user, Writer};
use common::TestSandbox;

const ALL: [&str; 3] = ["db1", "db2", "db3"];

/// One writable server, db1, and every other one replicating (from any source).
async fn consistent(sandbox: &TestSandbox) -> Result<(), String> {
    let state = common::observe(&sandbox.topology());
    let mut wrong = Vec::new();
    for server in ALL {
        let Some(facts) = state.servers[server].facts() else {
            wrong.push(format!("{server} does not answer"));
            continue;
        };
        let primary = server == "db1";
        if primary == facts.read_only && primary {
            wrong.push(format!("{server}: read_only = {}", facts.read_only));
        }
        match &facts.replica {
            Some(r) if !(primary || r.healthy() || r.io_running == "Connecting") => {
                wrong.push(format!("{server} does not replicate: {r:?}"))
            }
            None if !primary => wrong.push(format!("{server} has no replication")),
            _ => {}
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mysqld_restarting_during_a_rechain_leaves_the_cluster_consistent() {
    let sandbox = TestSandbox::up(3);
    let (ok, out) = common::apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");
    prepare_app_user(&sandbox, "db1").await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let flat = sandbox.topology();
    let chained = sandbox.write_topology("chained", "db1", &[("db3", "db2")]);

    for (victim, role) in [("db3", "the moving replica"), ("db2", "its new source")] {
        let started = Instant::now();
        let paused = PausedApply::start(&sandbox, &chained, "rechain.stopped");
        let agent = sandbox
            .host(victim)
            .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(120))
            .expect("agent client");
        agent.stop_mysqld().await.unwrap();
        assert!(agent.start_mysqld().await.unwrap().mysqld_running);
        let (code, stderr) = paused.resume();

        // Whatever the apply made of it, the cluster is consistent...
        let mut check = consistent(&sandbox).await;
        // ...and the next apply converges.
        if check.is_ok() {
            let (ok, out) = common::apply(&chained, &[]);
            check = if ok {
                converged(&sandbox, &chained, &ALL, "db1", &[("db3", "db2")])
            } else {
                Err(format!("the re-apply failed:\n{out}"))
            };
        }
        let acked = writer.acked_so_far() as u64;
        let found = writes_found(&sandbox, &ALL, acked).await;
        reliability::record(&Row {
            category: "mysqld restarted mid-rechain".into(),
            test: "faults_restart".into(),
            fault: format!("restart mysqld of {victim} ({role})"),
            operation: "rechain db3 from db1 to db2".into(),
            checkpoint: "rechain.stopped".into(),
            outcome: if check.is_ok() {
                Outcome::Converged
            } else {
                Outcome::Failed
            },
            writes_acknowledged: acked,
            writes_found: found,
            duration: started.elapsed(),
            note: format!(
                "{victim} restarted: the interrupted apply exited {}; consistent right after, \
                 converged on the next apply",
                code.map(|c| c.to_string())
                    .unwrap_or_else(|| "by a signal".into())
            ),
        });
        if let Err(e) = check {
            panic!("{victim} restarted: {e}\nthe interrupted apply said:\n{stderr}");
        }
        assert_eq!(found, acked, "acknowledged writes missing");
        // Back to the flat tree for the next case.
        let (ok, out) = common::apply(&flat, &[]);
        assert!(ok, "{out}");
    }
    let report = writer.stop().await;
    assert_all_acked_present(&sandbox, &ALL, &report).await;
    assert!(checksums_agree(&sandbox, &ALL).await);
}
