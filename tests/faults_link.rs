//! A host's link goes down in the middle of a switchover, at a known point:
//! flipover pauses at a checkpoint (`FLIPOVER_PAUSE_AT`), the candidate's
//! loopback address starts dropping every TCP packet (an iptables rule: the
//! sandbox runs every host on one machine, so this stands in for a link or
//! a network namespace going down), and flipover goes on. The switchover
//! must end within its timeouts with the old primary writable again and the
//! moved replica back under it; once the link is back, the next apply
//! converges, with every acknowledged write everywhere.

mod common;

use std::time::{Duration, Instant};

use common::faults::{checksums_agree, converged, writes_found, LinkDown, PausedApply};
use common::reliability::{self, Outcome, Row};
use common::writer::{app_endpoints, assert_all_acked_present, prepare_app_user, Writer};
use common::TestSandbox;

const ALL: [&str; 3] = ["db1", "db2", "db3"];

#[tokio::test(flavor = "multi_thread")]
async fn the_candidates_link_down_after_the_fence_rolls_the_switchover_back_in_time() {
    let sandbox = TestSandbox::up(3);
    let (ok, out) = common::apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");
    prepare_app_user(&sandbox, "db1").await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // db3 moves under db2 before the switchover; a short wait for the candidate.
    let path = sandbox.write_topology("to-db2", "db2", &[]);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("[cluster]\n", "[cluster]\nswitchover_timeout = 3\n", 1),
    )
    .unwrap();

    let started = Instant::now();
    let paused = PausedApply::start(&sandbox, &path, "switchover.fenced");
    let link = LinkDown::new(&sandbox.host("db2").address);
    let resumed = Instant::now();
    let (code, stderr) = paused.resume();
    let took = resumed.elapsed();

    // Ended, failed, rolled back: db1 writable, db3 back under db1.
    let mut check = Ok(());
    if code != Some(1) || !stderr.contains("rolled back: db1 is writable again") {
        check = Err(format!("exit {code:?}:\n{stderr}"));
    } else if !stderr.contains("db3 is back under db1") {
        check = Err(format!("db3 was not moved back:\n{stderr}"));
    } else if took > Duration::from_secs(60) {
        check = Err(format!("the apply took {took:?} after the link went down"));
    }
    let acked_during = writer.acked_so_far() as u64;
    let found_during = writes_found(&sandbox, &["db1", "db3"], acked_during).await;
    if check.is_ok() {
        check =
            converged(&sandbox, &sandbox.topology(), &["db1", "db3"], "db1", &[]).or_else(|e| {
                // db2 cannot be observed: only the plan's complaint about it may remain.
                if e.contains("does not answer") || e.contains("plan is not empty") {
                    Ok(())
                } else {
                    Err(e)
                }
            });
    }
    // db1 and db3 checked by hand, db2 is out of reach.
    for (server, read_only) in [("db1", "0"), ("db3", "1")] {
        let mut conn = sandbox.connect(server).await;
        let value = conn
            .first_row("SELECT @@read_only AS ro")
            .await
            .unwrap()
            .and_then(|r| r.get("ro").cloned().flatten());
        conn.close().await;
        if value.as_deref() != Some(read_only) && check.is_ok() {
            check = Err(format!("{server}: read_only = {value:?}"));
        }
    }
    reliability::record(&Row {
        category: "link down mid-switchover (iptables DROP on the host's address)".into(),
        test: "faults_link".into(),
        fault: "db2 (candidate) drops every TCP packet".into(),
        operation: "switchover db1 -> db2".into(),
        checkpoint: "switchover.fenced".into(),
        outcome: if check.is_ok() {
            Outcome::RolledBack
        } else {
            Outcome::Failed
        },
        writes_acknowledged: acked_during,
        writes_found: found_during,
        duration: took,
        note: format!(
            "the apply ended {:.1} s after the link went down (switchover_timeout = 3 s); \
             db1 writable again, db3 back under db1; writes checked on db1 and db3",
            took.as_secs_f64()
        ),
    });
    if let Err(e) = check {
        panic!("{e}");
    }
    assert_eq!(found_during, acked_during, "acknowledged writes missing");

    // The link comes back; the same change then goes through.
    drop(link);
    let again = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (ok, out) = loop {
        let (ok, out) = common::apply(&path, &[]);
        // db2's replication may still be reconnecting: the plan says so.
        if ok || Instant::now() > deadline {
            break (ok, out);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let check = if ok {
        converged(&sandbox, &path, &ALL, "db2", &[])
    } else {
        Err(format!("the apply after the link came back failed:\n{out}"))
    };
    let acked = writer.acked_so_far() as u64;
    let found = writes_found(&sandbox, &ALL, acked).await;
    reliability::record(&Row {
        category: "link down mid-switchover (iptables DROP on the host's address)".into(),
        test: "faults_link".into(),
        fault: "db2's link back up".into(),
        operation: "switchover db1 -> db2 (again)".into(),
        checkpoint: "-".into(),
        outcome: if check.is_ok() {
            Outcome::Converged
        } else {
            Outcome::Failed
        },
        writes_acknowledged: acked,
        writes_found: found,
        duration: again.elapsed(),
        note: String::new(),
    });
    if let Err(e) = check {
        panic!("{e}");
    }
    assert_eq!(found, acked);
    let report = writer.stop().await;
    assert_all_acked_present(&sandbox, &ALL, &report).await;
    assert!(checksums_agree(&sandbox, &ALL).await);
    let _ = started;
}
