//! Observation of 30 real sandbox servers: the wall time of the whole
//! `flipover status -f TOPOLOGY --json` process, beside the same command on
//! a topology of one of those servers, measured in the same run.
//!
//!     cargo build --release --workspace --bins && cargo bench --bench observation
//!
//! Target (plans-as-artefacts issue): observing 30 servers <= 1 s.
//!
//! Setup (not timed): a 30-server sandbox; db2..db30 are pointed at db1 by
//! GTID by hand (CHANGE MASTER + START SLAVE: quicker than 29 clones, and
//! each replica then answers SHOW SLAVE STATUS like a real one). Then rounds
//! alternate: `status` on the 1-server topology (baseline: one MySQL
//! connection and one agent request, plus process start, topology parsing
//! and output), then on the 30-server topology (the fan-out). The sandbox
//! stops when the bench ends (TestSandbox's Drop).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{flipover_bin, TestSandbox};
use flipover::observe::Observed;

const SERVERS: usize = 30;
const ROUNDS: usize = 7;
const TARGET_S: f64 = 1.0;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench());
}

async fn bench() {
    eprintln!("flipover: {}", flipover_bin().display());
    eprintln!("starting a sandbox of {SERVERS} servers (not timed) …");
    let setup = Instant::now();
    let sandbox = TestSandbox::up(SERVERS);
    eprintln!("sandbox up in {:.1} s", setup.elapsed().as_secs_f64());

    let replicate = Instant::now();
    for i in 2..=SERVERS {
        sandbox.replicate(&format!("db{i}"), "db1").await;
    }
    eprintln!(
        "db2..db{SERVERS} replicate from db1 ({:.1} s)",
        replicate.elapsed().as_secs_f64()
    );

    let all = sandbox.topology();
    let one = one_server_topology(&all);

    // Both must observe every server as reachable, or the figures mean nothing.
    let observed = status(&all).1;
    let replicating = observed
        .servers
        .values()
        .filter(|s| s.facts().and_then(|f| f.replica.as_ref()).is_some())
        .count();
    assert!(
        observed
            .servers
            .values()
            .all(|s| s.mysql.reachable && s.agent.reachable),
        "a server or agent did not answer: {}",
        serde_json::to_string_pretty(&observed).unwrap()
    );
    eprintln!(
        "status sees {} servers, {} of them replicating; all servers and agents answer",
        observed.servers.len(),
        replicating
    );
    assert_eq!(status(&one).1.servers.len(), 1);

    let mut singles = Vec::new();
    let mut fans = Vec::new();
    for round in 1..=ROUNDS {
        let (single, _) = status(&one);
        let (fan, _) = status(&all);
        println!(
            "round {round}: status of 1 server {:6.1} ms, of {SERVERS} servers {:6.1} ms",
            ms(single),
            ms(fan)
        );
        singles.push(ms(single));
        fans.push(ms(fan));
    }
    let single = median(&mut singles);
    let fan = median(&mut fans);
    println!(
        "baseline: `flipover status --json` of 1 server:  median {single:.1} ms (whole process)"
    );
    println!(
        "flipover: `flipover status --json` of {SERVERS} servers: median {fan:.1} ms (whole process), {:.1}x the single server (target <= {TARGET_S} s: {})",
        fan / single,
        if fan / 1000.0 <= TARGET_S { "met" } else { "NOT met" }
    );
    drop(sandbox);
}

/// The sandbox's topology with db1 alone.
fn one_server_topology(all: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(all).unwrap();
    let start = text.find("[servers.db1]").expect("db1 in the topology");
    let end = text[start + 1..]
        .find("[servers.")
        .map(|e| start + 1 + e)
        .unwrap_or(text.len());
    let one = format!(
        "{}{}",
        &text[..text.find("[servers.").unwrap()],
        &text[start..end]
    );
    let one = one.replace("\nsource = \"db1\"", "");
    let path = all.with_file_name("one.toml");
    std::fs::write(&path, one).unwrap();
    path
}

/// Runs `flipover status -f TOPOLOGY --json`: its wall time and what it saw.
fn status(topology: &Path) -> (Duration, Observed) {
    let started = Instant::now();
    let output = Command::new(flipover_bin())
        .args(["status", "-f", topology.to_str().unwrap(), "--json"])
        .env("NO_COLOR", "1")
        .output()
        .expect("flipover runs");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "flipover status failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        elapsed,
        serde_json::from_slice(&output.stdout).expect("status --json"),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}
