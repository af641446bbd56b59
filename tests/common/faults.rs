//! What the fault-injection tests (tests/faults_*.rs) share: an apply that
//! flipover is made to kill itself in (`FLIPOVER_KILL_AT`), and the checks
//! that a cluster converged with every acknowledged write everywhere.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{flipover, flipover_bin, observe, TestSandbox};

/// Tables whose checksums must agree on every server.
pub const SHOP: &str = "shop.writes, shop.customers, shop.orders";

/// `flipover apply` with `FLIPOVER_KILL_AT=<checkpoint>`: asserts that it
/// died of SIGKILL (so it reached the checkpoint) and returns its stderr.
pub fn apply_killed_at(path: &Path, checkpoint: &str, extra: &[&str]) -> String {
    let mut args = vec!["apply", "-f", path.to_str().unwrap(), "--auto-approve"];
    args.extend_from_slice(extra);
    let output: Output = Command::new(flipover_bin())
        .args(&args)
        .env("NO_COLOR", "1")
        .env("FLIPOVER_KILL_AT", checkpoint)
        .output()
        .expect("flipover runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.signal(),
        Some(9),
        "flipover should have killed itself at {checkpoint} ({:?}):\n{stderr}",
        output.status
    );
    stderr
}

/// Exactly one writable server (`primary`), every other server in `servers`
/// replicating from its desired source (`sources`, else `primary`) with
/// both threads, and nothing left to plan for `path`.
pub fn converged(
    sandbox: &TestSandbox,
    path: &Path,
    servers: &[&str],
    primary: &str,
    sources: &[(&str, &str)],
) -> Result<(), String> {
    let state = observe(path);
    let mut wrong = Vec::new();
    for server in servers {
        let Some(facts) = state.servers[*server].facts() else {
            wrong.push(format!("{server} does not answer"));
            continue;
        };
        if facts.read_only != (*server != primary) {
            wrong.push(format!("{server}: read_only = {}", facts.read_only));
        }
        match (&facts.replica, *server == primary) {
            (None, true) => {}
            (Some(_), true) => wrong.push(format!("{server} is the primary but replicates")),
            (None, false) => wrong.push(format!("{server} does not replicate")),
            (Some(replica), false) => {
                let source = sources
                    .iter()
                    .find(|(r, _)| r == server)
                    .map(|(_, s)| *s)
                    .unwrap_or(primary);
                if replica.source_host != sandbox.host(source).address || !replica.healthy() {
                    wrong.push(format!(
                        "{server} should replicate from {source}: {replica:?}"
                    ));
                }
            }
        }
    }
    let plan = flipover(&["plan", "-f", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    if !(plan.status.success() && text.contains("No changes")) {
        wrong.push(format!("the plan is not empty:\n{text}"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n"))
    }
}

/// How many of the writer's first `acked` ids (1..=acked) every one of
/// `servers` holds, after waiting (≤ 30 s) for replication to bring them.
pub async fn writes_found(sandbox: &TestSandbox, servers: &[&str], acked: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut least = u64::MAX;
        for server in servers {
            let mut conn = sandbox.connect(server).await;
            let count: u64 = conn
                .first_row(&format!(
                    "SELECT COUNT(*) AS n FROM shop.writes WHERE id <= {acked}"
                ))
                .await
                .unwrap()
                .and_then(|row| row.get("n").cloned().flatten())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            conn.close().await;
            least = least.min(count);
        }
        if least == acked || Instant::now() > deadline {
            return least;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `CHECKSUM TABLE` of the shop tables agrees on all `servers`
/// within 30 s (call it once writes have stopped).
pub async fn checksums_agree(sandbox: &TestSandbox, servers: &[&str]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut sums = Vec::new();
        for server in servers {
            sums.push(sandbox.checksums(server, SHOP).await);
        }
        if sums.windows(2).all(|pair| pair[0] == pair[1]) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
