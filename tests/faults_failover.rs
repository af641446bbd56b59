//! Fault injection in a failover: the primary's mysqld is SIGKILLed, and
//! flipover SIGKILLs itself at each of the failover's checkpoints
//! (`FLIPOVER_KILL_AT`, src/executor/checkpoint.rs) under a steady writer;
//! the next apply must converge with every acknowledged write on every
//! survivor. Then the dead primary comes back (read-only, as its my.cnf
//! says) and an apply makes it a replica again, so the next case starts
//! from four healthy servers.
//!
//! The primary is fenced and its replicas caught up before it dies: writes
//! only the dead primary had are lost by asynchronous replication whatever
//! flipover does, and these cases measure what flipover does.

mod common;

use std::time::{Duration, Instant};

use common::faults::{apply_killed_at, checksums_agree, conclude_case, converged, writes_found};
use common::reliability::{Outcome, Row};
use common::writer::{app_endpoints, assert_all_acked_present, prepare_app_user, Writer};
use common::TestSandbox;
use flipover::executor::checkpoint;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const ALL: [&str; 4] = ["db1", "db2", "db3", "db4"];

/// Stops writes on `primary` and waits until every other server (but
/// `behind`, held back on purpose) applied them.
async fn quiesce(sandbox: &TestSandbox, primary: &str, behind: Option<&str>) {
    let mut conn = sandbox.connect(primary).await;
    conn.execute("SET GLOBAL read_only = 1").await.unwrap();
    let position = conn
        .first_row("SELECT @@gtid_binlog_pos AS p")
        .await
        .unwrap()
        .and_then(|r| r.get("p").cloned().flatten())
        .unwrap_or_default();
    conn.close().await;
    for replica in ALL.iter().filter(|s| **s != primary && Some(**s) != behind) {
        sandbox
            .wait_for_value(
                replica,
                &format!("SELECT MASTER_GTID_WAIT('{position}', 30)"),
                "0",
                Duration::from_secs(40),
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flipover_killed_at_every_failover_checkpoint_converges_on_the_next_apply() {
    let sandbox = TestSandbox::up(4);
    // A server that restarts comes back read-only, as production servers
    // should: a former primary must not take writes before it rejoins.
    for host in &sandbox.state.hosts {
        let cnf = host.my_cnf();
        let text = std::fs::read_to_string(&cnf).unwrap();
        std::fs::write(&cnf, format!("{text}\n[mysqld]\nread-only = 1\n")).unwrap();
    }
    let (ok, out) = common::apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");
    prepare_app_user(&sandbox, "db1").await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Every checkpoint, and the second replica's repointing too.
    let cases: Vec<String> = checkpoint::FAILOVER
        .iter()
        .map(|c| c.to_string())
        .chain(["failover.repointed:2".to_string()])
        .collect();
    let mut primary = "db1";
    for (i, name) in cases.iter().enumerate() {
        let started = Instant::now();
        let next = ALL[(ALL.iter().position(|s| *s == primary).unwrap() + 1) % ALL.len()];
        // At `caught_up` the candidate misses the primary's last writes (its
        // IO thread stopped), so the failover must first catch it up from
        // another replica: the kill then lands after a real catch-up.
        let behind = (name == "failover.caught_up").then_some(next);
        if let Some(candidate) = behind {
            let mut conn = sandbox.connect(candidate).await;
            conn.execute("STOP SLAVE IO_THREAD").await.unwrap();
            conn.close().await;
            let before = writer.acked_so_far();
            while writer.acked_so_far() < before + 20 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        quiesce(&sandbox, primary, behind).await;
        kill(
            Pid::from_raw(sandbox.mysqld_pid(primary) as i32),
            Signal::SIGKILL,
        )
        .unwrap();
        let path = sandbox.write_topology(&format!("failover-{i}-{next}"), next, &[]);
        let stderr = apply_killed_at(&path, name, &[]);
        if let Some(candidate) = behind {
            assert!(
                stderr.contains(&format!("{candidate} caught up from")),
                "no catch-up before {name}:\n{stderr}"
            );
        }
        let (ok, out) = common::apply(&path, &[]);
        let survivors: Vec<&str> = ALL.iter().copied().filter(|s| *s != primary).collect();
        let mut check = if ok {
            converged(&sandbox, &path, &survivors, next, &[])
        } else {
            Err(format!("the re-apply failed:\n{out}"))
        };

        // The old primary comes back and rejoins.
        if check.is_ok() {
            let agent = sandbox
                .host(primary)
                .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(60))
                .expect("agent client");
            assert!(agent.start_mysqld().await.unwrap().mysqld_running);
            let (ok, out) = common::apply(&path, &[]);
            check = if ok {
                converged(&sandbox, &path, &ALL, next, &[])
            } else {
                Err(format!(
                    "the apply that brings {primary} back failed:\n{out}"
                ))
            };
        }
        let acked = writer.acked_so_far() as u64;
        let found = writes_found(&sandbox, &ALL, acked).await;
        conclude_case(
            Row {
            category: "flipover killed (SIGKILL) mid-operation, then apply again".into(),
            test: "faults_failover".into(),
            fault: format!("SIGKILL mysqld of {primary}, then SIGKILL flipover"),
            operation: format!("failover {primary} -> {next}"),
            checkpoint: name.clone(),
                outcome: Outcome::Failed, // set from `check`
            writes_acknowledged: acked,
            writes_found: found,
            duration: started.elapsed(),
            note:
                "the primary was fenced and its replicas caught up before its mysqld was killed; \
                   it restarted afterwards (read-only) and rejoined as a replica"
                    .into(),
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
