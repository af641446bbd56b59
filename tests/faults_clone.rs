//! Fault injection in a clone, under a steady writer: flipover SIGKILLs
//! itself at each clone checkpoint (`FLIPOVER_KILL_AT`), and the agents are
//! SIGKILLed mid-clone (the target mid-receive, then the donor mid-stream).
//! Each time the next apply must converge, with nothing lost and no
//! previous datadir left behind.

mod common;

use std::time::{Duration, Instant};

use common::faults::{
    agent_command_line, apply_killed_at, checksums_agree, conclude_case, converged, kill_agent,
    previous_datadirs, restart_agent, writes_found,
};
use common::reliability::{self, Outcome, Row};
use common::writer::{app_endpoints, assert_all_acked_present, prepare_app_user, Writer};
use common::TestSandbox;
use flipover::executor::checkpoint;
use flipover_agent::client::AgentClient;

const ALL: [&str; 3] = ["db1", "db2", "db3"];

fn agent(sandbox: &TestSandbox, name: &str) -> AgentClient {
    sandbox
        .host(name)
        .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(5))
        .expect("agent client")
}

/// Waits until `name`'s agent runs no job (a clone carries on without flipover).
async fn wait_idle(sandbox: &TestSandbox, name: &str) {
    let agent = agent(sandbox, name);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if agent.facts().await.is_ok_and(|f| f.busy_job_id.is_none()) {
            return;
        }
        assert!(Instant::now() < deadline, "{name}'s job never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cloned_sandbox_with_writer() -> (TestSandbox, Writer) {
    let sandbox = TestSandbox::up(3);
    let (ok, out) = common::apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");
    prepare_app_user(&sandbox, "db1").await;
    let writer = Writer::start(app_endpoints(&sandbox, &ALL));
    tokio::time::sleep(Duration::from_millis(300)).await;
    (sandbox, writer)
}

#[tokio::test(flavor = "multi_thread")]
async fn flipover_killed_at_every_clone_checkpoint_converges_on_the_next_apply() {
    let (sandbox, writer) = cloned_sandbox_with_writer().await;
    let path = sandbox.topology();
    for name in checkpoint::CLONE {
        let started = Instant::now();
        // Rebuild db3 from scratch: a clone of a server that holds data.
        apply_killed_at(&path, name, &["--replace", "db3"]);
        wait_idle(&sandbox, "db3").await;
        let (ok, out) = common::apply(&path, &[]);
        let mut check = if ok {
            converged(&sandbox, &path, &ALL, "db1", &[])
        } else {
            Err(format!("the re-apply failed:\n{out}"))
        };
        let left = previous_datadirs(&sandbox, "db3");
        if check.is_ok() && !left.is_empty() {
            check = Err(format!("left on db3's host: {left:?}"));
        }
        let acked = writer.acked_so_far() as u64;
        let found = writes_found(&sandbox, &ALL, acked).await;
        conclude_case(
            Row {
                category: "flipover killed (SIGKILL) mid-operation, then apply again".into(),
                test: "faults_clone".into(),
                fault: "SIGKILL flipover".into(),
                operation: "clone db3 (--replace)".into(),
                checkpoint: name.to_string(),
                outcome: Outcome::Failed, // set from `check`
                writes_acknowledged: acked,
                writes_found: found,
                duration: started.elapsed(),
                note: "no previous datadir left behind".into(),
            },
            check,
        );
    }
    let report = writer.stop().await;
    assert_all_acked_present(&sandbox, &ALL, &report).await;
    assert!(checksums_agree(&sandbox, &ALL).await);
}

/// A database only db3 has (not binlogged): present again means db3 has
/// its own previous datadir back.
async fn mark(sandbox: &TestSandbox, name: &str) {
    let mut conn = sandbox.connect(name).await;
    for statement in [
        "SET SESSION sql_log_bin = 0",
        "CREATE DATABASE IF NOT EXISTS marker",
        "CREATE TABLE IF NOT EXISTS marker.here (id INT PRIMARY KEY)",
        "INSERT IGNORE INTO marker.here VALUES (1)",
    ] {
        conn.execute(statement).await.unwrap();
    }
    conn.close().await;
}

async fn has_mark(sandbox: &TestSandbox, name: &str) -> bool {
    let mut conn = sandbox.connect(name).await;
    let found = conn
        .first_row("SELECT COUNT(*) AS n FROM marker.here")
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get("n").cloned().flatten())
        == Some("1".to_string());
    conn.close().await;
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_killed_mid_clone_leave_the_target_as_it_was() {
    let (sandbox, writer) = cloned_sandbox_with_writer().await;
    let path = sandbox.topology();
    for victim in ["target", "donor"] {
        let started = Instant::now();
        mark(&sandbox, "db3").await;
        let apply = std::process::Command::new(common::flipover_bin())
            .args(["apply", "-f", path.to_str().unwrap(), "--auto-approve"])
            .args(["--replace", "db3"])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();

        // The moment the target receives, kill the chosen agent.
        let target = agent(&sandbox, "db3");
        let deadline = Instant::now() + Duration::from_secs(60);
        let phase = loop {
            assert!(
                Instant::now() < deadline,
                "the clone never started receiving"
            );
            if let Some(job) = target.facts().await.ok().and_then(|f| f.busy_job_id) {
                if let Ok(status) = target.job(&job).await {
                    if status.phase == "receiving" && status.bytes > 0 {
                        break status.phase;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let killed = match victim {
            "target" => "db3".to_string(),
            _ => {
                let mut donor = None;
                for name in ["db1", "db2"] {
                    if agent(&sandbox, name)
                        .facts()
                        .await
                        .is_ok_and(|f| f.busy_job_id.is_some())
                    {
                        donor = Some(name.to_string());
                    }
                }
                donor.expect("a donor streams")
            }
        };
        let command_line = agent_command_line(&sandbox, &killed);
        kill_agent(&sandbox, &killed);
        // Restarted at once, as a service manager would.
        restart_agent(&sandbox, &killed, &command_line).await;
        let output = apply.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        if victim == "donor" {
            // The target gives up on the cut stream and restores by itself.
            wait_idle(&sandbox, "db3").await;
        }
        let restored = has_mark(&sandbox, "db3").await;
        if victim == "target" {
            let log = std::fs::read_to_string(sandbox.host("db3").agent_log()).unwrap();
            assert!(
                log.contains("putting the previous datadir back"),
                "the restarted agent's startup recovery did not run:\n{log}"
            );
        }
        let left = previous_datadirs(&sandbox, "db3");
        let (ok, out) = common::apply(&path, &[]);
        let mut check = if ok {
            converged(&sandbox, &path, &ALL, "db1", &[])
        } else {
            Err(format!("the re-apply failed:\n{out}"))
        };
        if !restored {
            check = Err(format!(
                "db3 lost its previous data; the failed apply said:\n{stderr}"
            ));
        } else if !left.is_empty() {
            check = Err(format!("left on db3's host: {left:?}"));
        }
        let acked = writer.acked_so_far() as u64;
        let found = writes_found(&sandbox, &ALL, acked).await;
        reliability::record(&Row {
            category: "agent killed (SIGKILL) mid-clone".into(),
            test: "faults_clone".into(),
            fault: format!("SIGKILL the {victim} agent ({killed}), then restart it"),
            operation: "clone db3 (--replace)".into(),
            checkpoint: format!("target {phase}"),
            outcome: if check.is_ok() {
                Outcome::RolledBack
            } else {
                Outcome::Failed
            },
            writes_acknowledged: acked,
            writes_found: found,
            duration: started.elapsed(),
            note: "db3 has its previous datadir back (marker present); the next apply converges"
                .into(),
        });
        if let Err(e) = check {
            panic!("{victim} agent killed: {e}");
        }
        assert_eq!(found, acked, "acknowledged writes missing");
    }
    let report = writer.stop().await;
    assert_all_acked_present(&sandbox, &ALL, &report).await;
    assert!(checksums_agree(&sandbox, &ALL).await);
}
