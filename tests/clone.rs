//! plan/apply clones replicas between real agents on a real sandbox.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{flipover, flipover_bin, TestSandbox};
use flipover::observe::Observed;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

const SHOP: &str = "shop.customers, shop.orders";

fn set_source(sandbox: &TestSandbox, server: &str, source: &str) {
    let path = sandbox.topology();
    let text = std::fs::read_to_string(&path).unwrap();
    let host = &sandbox.host(server).address;
    let from = format!("[servers.{server}]\nhost = \"{host}\"\nsource = \"db1\"\n");
    let to = format!("[servers.{server}]\nhost = \"{host}\"\nsource = \"{source}\"\n");
    assert!(text.contains(&from), "{text}");
    std::fs::write(&path, text.replace(&from, &to)).unwrap();
}

fn observed(sandbox: &TestSandbox) -> Observed {
    let output = flipover(&["status", "-f", &sandbox.topology_arg(), "--json"]);
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_clones_empty_replicas_including_a_chained_one() {
    let sandbox = TestSandbox::up(3);
    set_source(&sandbox, "db3", "db2");

    let plan = flipover(&["plan", "-f", &sandbox.topology_arg()]);
    let text = String::from_utf8(plan.stdout).unwrap();
    assert!(plan.status.success(), "{text}");
    assert!(
        text.contains("Plan: 2 clone, 0 rechain, 0 switchover, 0 failover; 0 destructive."),
        "{text}"
    );
    assert!(text.contains("clone db3 from db2  (after 2)"), "{text}");

    // Without a terminal and without --auto-approve, apply refuses and changes nothing.
    let refused = Command::new(flipover_bin())
        .args(["apply", "-f", &sandbox.topology_arg()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--auto-approve"));
    assert!(observed(&sandbox).servers["db2"]
        .facts()
        .unwrap()
        .replica
        .is_none());

    let apply = flipover(&["apply", "-f", &sandbox.topology_arg(), "--auto-approve"]);
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(apply.status.success(), "apply failed:\n{stderr}");
    assert!(stderr.contains("Apply complete: 4 steps"), "{stderr}");

    // Both replicate as the topology says, with both threads running.
    let state = observed(&sandbox);
    for (replica, source) in [("db2", "db1"), ("db3", "db2")] {
        let facts = state.servers[replica].facts().expect("answers");
        let status = facts.replica.as_ref().expect("replicates");
        assert_eq!(
            status.source_host,
            sandbox.host(source).address,
            "{replica}"
        );
        assert!(
            status.healthy() && status.using_gtid,
            "{replica}: {status:?}"
        );
        assert_eq!(facts.user_schemas, vec!["shop".to_string()]);
    }

    // The copies hold the primary's rows, and new writes flow down the chain.
    let primary = sandbox.checksums("db1", SHOP).await;
    assert_eq!(sandbox.checksums("db2", SHOP).await, primary);
    assert_eq!(sandbox.checksums("db3", SHOP).await, primary);
    let mut conn = sandbox.connect("db1").await;
    conn.execute("INSERT INTO shop.customers VALUES (1001, 'after clone', 'new@example.com')")
        .await
        .unwrap();
    conn.close().await;
    sandbox
        .wait_for_value(
            "db3",
            "SELECT name FROM shop.customers WHERE id = 1001",
            "after clone",
            Duration::from_secs(20),
        )
        .await;

    // The previous datadirs were discarded once replication was proven.
    for target in ["db2", "db3"] {
        let leftovers: Vec<_> = std::fs::read_dir(sandbox.host(target).dir.clone())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .contains("flipover-previous")
            })
            .collect();
        assert!(leftovers.is_empty(), "{target}: {leftovers:?}");
    }

    // Converged: the next plan is empty.
    let again = flipover(&["plan", "-f", &sandbox.topology_arg()]);
    let text = String::from_utf8(again.stdout).unwrap();
    assert!(again.status.success(), "{text}");
    assert!(text.contains("No changes"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_donor_mid_clone_puts_the_target_back() {
    let sandbox = TestSandbox::up(2);
    // Enough data on the donor that the stream takes a moment.
    let mut conn = sandbox.connect("db1").await;
    conn.execute("CREATE TABLE shop.bulk (id INT PRIMARY KEY, pad VARCHAR(1000)) ENGINE=InnoDB")
        .await
        .unwrap();
    conn.execute(
        "INSERT INTO shop.bulk SELECT seq, REPEAT(MD5(seq), 30) FROM shop.seq_1_to_150000",
    )
    .await
    .unwrap();
    conn.close().await;
    // db2 holds something of its own, so the clone is a destructive --replace
    // and there is something to lose.
    let mut conn = sandbox.connect("db2").await;
    conn.execute("CREATE DATABASE keepme").await.unwrap();
    conn.execute("CREATE TABLE keepme.marker (note VARCHAR(50))")
        .await
        .unwrap();
    conn.execute("INSERT INTO keepme.marker VALUES ('still here')")
        .await
        .unwrap();
    conn.close().await;
    let db2_pid_before = sandbox.mysqld_pid("db2");

    let plan = flipover(&["plan", "-f", &sandbox.topology_arg(), "--replace", "db2"]);
    let text = String::from_utf8(plan.stdout).unwrap();
    assert!(
        text.contains("[DESTRUCTIVE]") && text.contains("schemas keepme"),
        "{text}"
    );

    let apply = Command::new(flipover_bin())
        .args([
            "apply",
            "-f",
            &sandbox.topology_arg(),
            "--replace",
            "db2",
            "--auto-approve",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until bytes arrive on the target, then kill the donor's agent and
    // everything it started (its process group: the agent and mariadb-backup).
    let target = sandbox
        .host("db2")
        .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(5))
        .unwrap();
    let started = Instant::now();
    let job = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the clone never started"
        );
        if let Some(job) = target.facts().await.ok().and_then(|f| f.busy_job_id) {
            let status = target.job(&job).await.unwrap();
            if status.bytes > 0 {
                break job;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let donor_agent = common::read_pid(&sandbox.host("db1").agent_pid_file());
    killpg(Pid::from_raw(donor_agent as i32), Signal::SIGKILL).unwrap();

    let output = apply.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("step 1 (clone db2 from db1) failed"),
        "{stderr}"
    );

    // The target's job failed and put everything back.
    let status = target.job(&job).await.unwrap();
    assert_eq!(
        status.state,
        flipover_agent::protocol::JobState::Failed,
        "{status:?}"
    );
    let facts = target.facts().await.unwrap();
    assert!(facts.mysqld_running);
    assert!(facts.busy_job.is_none());
    assert_ne!(
        sandbox.mysqld_pid("db2"),
        db2_pid_before,
        "mysqld was restarted on the old datadir"
    );
    sandbox
        .wait_for_value(
            "db2",
            "SELECT note FROM keepme.marker",
            "still here",
            Duration::from_secs(10),
        )
        .await;
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.host("db2").dir.clone())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("flipover-previous"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let state = observed(&sandbox);
    assert!(state.servers["db2"].facts().unwrap().replica.is_none());
}
