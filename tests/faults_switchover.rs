//! Fault injection in a planned switchover: flipover SIGKILLs itself at each
//! of the switchover's checkpoints (`FLIPOVER_KILL_AT`, see
//! src/executor/checkpoint.rs) under a steady writer; the next apply must
//! converge to the desired topology with every acknowledged write on every
//! server. One sandbox for every checkpoint: each case switches the primary
//! over to the other of db1/db2, so the next case starts from a converged
//! cluster the other way round.

mod common;

use std::time::{Duration, Instant};

use common::faults::{apply_killed_at, checksums_agree, conclude_case, converged, writes_found};
use common::reliability::{Outcome, Row};
use common::writer::{app_endpoints, assert_all_acked_present, prepare_app_user, Writer};
use common::TestSandbox;
use flipover::executor::checkpoint;

const ALL: [&str; 4] = ["db1", "db2", "db3", "db4"];

#[tokio::test(flavor = "multi_thread")]
async fn flipover_killed_at_every_switchover_checkpoint_converges_on_the_next_apply() {
    let sandbox = TestSandbox::up(4);
    let (ok, out) = common::apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");
    prepare_app_user(&sandbox, "db1").await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut primary = "db1";
    for name in checkpoint::SWITCHOVER {
        let started = Instant::now();
        let next = if primary == "db1" { "db2" } else { "db1" };
        // Every replica under the new primary: db3 and db4 are rechained
        // before the switchover step (the `replicas_moved` checkpoint).
        let path = sandbox.write_topology(&format!("to-{next}"), next, &[]);
        apply_killed_at(&path, name, &[]);
        let (ok, out) = common::apply(&path, &[]);
        let check = if ok {
            converged(&sandbox, &path, &ALL, next, &[])
        } else {
            Err(format!("the re-apply failed:\n{out}"))
        };
        let acked = writer.acked_so_far() as u64;
        let found = writes_found(&sandbox, &ALL, acked).await;
        conclude_case(
            Row {
                category: "flipover killed (SIGKILL) mid-operation, then apply again".into(),
                test: "faults_switchover".into(),
                fault: "SIGKILL flipover".into(),
                operation: format!("switchover {primary} -> {next}"),
                checkpoint: name.to_string(),
                outcome: Outcome::Failed, // set from `check`
                writes_acknowledged: acked,
                writes_found: found,
                duration: started.elapsed(),
                note: String::new(),
            },
            check,
        );
        primary = next;
    }

    let report = writer.stop().await;
    assert!(
        report.acked.len() > 50,
        "the writer kept writing: {report:?}"
    );
    assert_all_acked_present(&sandbox, &ALL, &report).await;
    assert!(checksums_agree(&sandbox, &ALL).await);
}
