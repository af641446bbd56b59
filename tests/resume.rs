//! An apply killed mid-way: the next plan reports it from the journal on
//! the servers, and the next apply finishes the job without redoing it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{apply, flipover, flipover_bin, observe, TestSandbox};
use flipover_agent::client::AgentClient;
use flipover_agent::protocol::JobState;

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_apply_is_reported_and_the_next_one_finishes_it() {
    let sandbox = TestSandbox::up(3);
    let mut child = Command::new(flipover_bin())
        .args(["apply", "-f", &sandbox.topology_arg(), "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Kill flipover once the first clone runs on its target's agent.
    let agents: Vec<AgentClient> = ["db2", "db3"]
        .iter()
        .map(|n| {
            sandbox
                .host(n)
                .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(5))
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    let (agent, job) = 'found: loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no clone started"
        );
        for agent in &agents {
            if let Some(job) = agent.facts().await.ok().and_then(|f| f.busy_job_id) {
                break 'found (agent, job);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // The agent finishes its job on its own.
    loop {
        if agent.job(&job).await.unwrap().state != JobState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let plan = flipover(&["plan", "-f", &sandbox.topology_arg()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{text}");
    assert!(text.contains("did not finish"), "{text}");
    assert!(text.contains("interrupted: clone db"), "{text}");

    let (ok, out) = apply(&sandbox.topology(), &[]);
    assert!(ok, "{out}");
    let state = observe(&sandbox.topology());
    for replica in ["db2", "db3"] {
        let status = state.servers[replica]
            .facts()
            .unwrap()
            .replica
            .clone()
            .unwrap();
        assert!(status.healthy(), "{replica}: {status:?}");
    }
    let again = flipover(&["plan", "-f", &sandbox.topology_arg()]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("No changes") && !text.contains("did not finish"),
        "{text}"
    );
}
