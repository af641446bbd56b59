//! Failover of a dead primary: flipover's figures beside the bare SQL
//! sequence's, measured in the same run, each on a fresh 4-server sandbox
//! under a steady writer.
//!
//!     cargo build --release --workspace --bins && cargo bench --bench failover
//!
//! Each round runs the bare sequence by hand, then `flipover apply --failover`,
//! each on its own sandbox (db1 the primary, db2..db4 cloned from it): a
//! failover leaves the dead primary with transactions nobody else has, so a
//! fresh sandbox is the honest starting point. The clock starts once db1's
//! mysqld is SIGKILLed and its port refuses. Target (from the issue): apply
//! start -> new primary writable and every replica rechained <= 0.5 s.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::writer::{
    app_endpoints, make_replicas_read_only, prepare_app_user, Writer, WriterReport,
};
use common::{flipover, flipover_bin, TestSandbox};
use flipover::db::{quote_literal, Connection};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{median, settle, wait_for_tree};

const ROUNDS: usize = 3;
const SERVERS: [&str; 4] = ["db1", "db2", "db3", "db4"];
const DEAD: &str = "db1";
const TARGET_APPLY_S: f64 = 0.5;

/// What one failover (bare or flipover) measured and left behind.
struct Outcome {
    /// Clock start -> new primary writable: measured by the bare sequence
    /// itself, or the figure flipover's step prints (from the step's start).
    writable: Option<Duration>,
    /// Clock start -> the writer's first acknowledgement on the new primary.
    writer_resumed: Option<Duration>,
    /// Clock start -> every replica rechained (bare: threads running;
    /// flipover: the apply process exited).
    total: Duration,
    /// The writer's longest gap around the failover.
    gap: Duration,
    data: DataCheck,
}

struct DataCheck {
    acked: usize,
    /// Acknowledged by the dead primary only: no survivor ever received them.
    lost: Vec<u64>,
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench())
}

async fn bench() -> ExitCode {
    eprintln!("flipover: {}", flipover_bin().display());
    let mut bares = Vec::new();
    let mut flips = Vec::new();
    let mut failures = Vec::new();
    for round in 1..=ROUNDS {
        match run_phase(round, Phase::Bare).await {
            Ok(outcome) => bares.push(outcome),
            Err(error) => {
                println!("round {round} bare: FAILED\n{error}");
                failures.push(format!("round {round} bare"));
            }
        }
        match run_phase(round, Phase::Flipover).await {
            Ok(outcome) => flips.push(outcome),
            Err(error) => {
                if failures.iter().any(|f| f.contains("flipover")) {
                    // The full output is above; the first error line is enough now.
                    let first = error.lines().find(|l| l.contains("error")).unwrap_or("");
                    println!("round {round} flipover: FAILED again: {}", first.trim());
                } else {
                    println!("round {round} flipover: FAILED\n{error}");
                }
                failures.push(format!("round {round} flipover"));
            }
        }
    }

    println!();
    if !bares.is_empty() {
        println!(
            "bare SQL sequence: new primary writable median {:.3} s, all rechained median {:.3} s, writer resumed median {:.3} s",
            median(bares.iter().filter_map(|b| b.writable).map(secs)),
            median(bares.iter().map(|b| secs(b.total))),
            median(bares.iter().filter_map(|b| b.writer_resumed).map(secs)),
        );
        print_writer("bare", &bares);
    }
    if !flips.is_empty() {
        let wall = median(flips.iter().map(|f| secs(f.total)));
        let printed: Vec<f64> = flips.iter().filter_map(|f| f.writable).map(secs).collect();
        let writable = if printed.is_empty() {
            "(not printed by apply)".to_string()
        } else {
            format!("{:.3} s", median(printed.into_iter()))
        };
        println!(
            "flipover apply --failover: new primary writable median {writable} (step's own figure), writer resumed median {:.3} s after apply start, apply wall time median {wall:.3} s (target <= {TARGET_APPLY_S}: {})",
            median(flips.iter().filter_map(|f| f.writer_resumed).map(secs)),
            if wall <= TARGET_APPLY_S { "met" } else { "MISSED" }
        );
        print_writer("flipover", &flips);
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("FAILED: {}", failures.join(", "));
        if flips.is_empty() {
            println!("FAILED: `flipover apply --failover` never completed a failover (see its output above)");
        }
        ExitCode::FAILURE
    }
}

fn print_writer(label: &str, outcomes: &[Outcome]) {
    println!(
        "writer ({label}): {} acked, {} lost (acked only by the dead primary), longest gap median {:.3} s",
        outcomes.iter().map(|o| o.data.acked).sum::<usize>(),
        outcomes.iter().map(|o| o.data.lost.len()).sum::<usize>(),
        median(outcomes.iter().map(|o| secs(o.gap)))
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Bare,
    Flipover,
}

/// A fresh sandbox under a writer, db1 killed, one failover, then the checks.
async fn run_phase(round: usize, phase: Phase) -> Result<Outcome, String> {
    let label = match phase {
        Phase::Bare => "bare",
        Phase::Flipover => "flipover",
    };
    eprintln!("round {round} {label}: starting a sandbox of 4, cloning db2..db4 from db1 …");
    let sandbox = TestSandbox::up(4);
    let apply = flipover(&["apply", "-f", &sandbox.topology_arg(), "--auto-approve"]);
    if !apply.status.success() {
        return Err(format!(
            "initial apply failed:\n{}",
            String::from_utf8_lossy(&apply.stderr)
        ));
    }
    make_replicas_read_only(&sandbox, DEAD).await;
    prepare_app_user(&sandbox, DEAD).await;
    let writer = Writer::start(app_endpoints(&sandbox, &SERVERS));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let survivors: Vec<&str> = SERVERS.iter().copied().filter(|s| *s != DEAD).collect();

    // The bare sequence's connections are opened beforehand, as a DBA's
    // terminals would be; flipover opens its own inside the measured time.
    let mut conns = BTreeMap::new();
    if phase == Phase::Bare {
        for name in &survivors {
            conns.insert(*name, sandbox.connect(name).await);
        }
    }

    let killed = kill_mysqld(&sandbox, DEAD).await?;
    let started = Instant::now();
    let result = match phase {
        Phase::Bare => bare_failover(&sandbox, conns).await,
        Phase::Flipover => flipover_failover(&sandbox, &survivors).await,
    };
    let ended = Instant::now();
    let (new_primary, writable) = match result {
        Ok(done) => done,
        Err(error) => {
            writer.stop().await;
            return Err(error);
        }
    };
    let total = ended - started;

    wait_for_tree(&sandbox, &survivors, &new_primary).await?;
    settle(&writer, Duration::from_millis(300)).await?;
    let report = writer.stop().await;
    let (gap, _) = report.longest_gap_between(killed, ended);
    let writer_resumed = report
        .acks
        .iter()
        .find(|a| a.at >= killed && a.server == new_primary)
        .map(|a| a.at.saturating_duration_since(started));
    let data = check_data(&sandbox, &survivors, &report).await?;

    println!(
        "round {round} {label:8} db1 -> {new_primary}: writable {}, writer resumed {}, {} {:5.3} s, writer gap {:5.3} s, {} acked, {} lost {:?}",
        writable
            .map(|w| format!("{:5.3} s", secs(w)))
            .unwrap_or_else(|| "(not printed)".into()),
        writer_resumed
            .map(|w| format!("{:5.3} s", secs(w)))
            .unwrap_or_else(|| "never".into()),
        if phase == Phase::Bare { "all rechained" } else { "apply wall" },
        secs(total),
        secs(gap),
        data.acked,
        data.lost.len(),
        data.lost
    );
    Ok(Outcome {
        writable,
        writer_resumed,
        total,
        gap,
        data,
    })
}

/// SIGKILLs `name`'s mysqld (its agent stays up) and returns once its port
/// refuses connections, so both phases start from the same dead primary.
async fn kill_mysqld(sandbox: &TestSandbox, name: &str) -> Result<Instant, String> {
    let pid = sandbox.mysqld_pid(name);
    let killed = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).map_err(|e| format!("kill {pid}: {e}"))?;
    let host = sandbox.host(name);
    let address = format!("{}:{}", host.address, host.mysql_port);
    let deadline = killed + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        if Instant::now() > deadline {
            return Err(format!("{name}'s mysqld still answers 5 s after SIGKILL"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(killed)
}

/// What a DBA would type, one server after another: stop every IO thread,
/// let each replica apply what it received, promote the most advanced one,
/// point the others at it. Returns the new primary and when it became writable.
async fn bare_failover(
    sandbox: &TestSandbox,
    mut conns: BTreeMap<&str, Connection>,
) -> Result<(String, Option<Duration>), String> {
    let started = Instant::now();
    for conn in conns.values_mut() {
        conn.execute("STOP SLAVE IO_THREAD")
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut positions = Vec::new();
    for (name, conn) in conns.iter_mut() {
        let io_pos = field(conn, "SHOW SLAVE STATUS", "Gtid_IO_Pos").await?;
        if !io_pos.is_empty() {
            let waited = field(
                conn,
                &format!(
                    "SELECT MASTER_GTID_WAIT({}, 10) AS w",
                    quote_literal(&io_pos)
                ),
                "w",
            )
            .await?;
            if waited != "0" {
                return Err(format!("{name} did not apply its relay log up to {io_pos}"));
            }
        }
        let current = field(conn, "SELECT @@gtid_current_pos AS p", "p").await?;
        positions.push((name.to_string(), parse_gtid_pos(&current)));
    }
    // Most advanced: highest sequence number per domain (one domain here);
    // the earlier name wins a tie.
    let (new_primary, _) = positions
        .iter()
        .rev()
        .max_by_key(|(_, pos)| pos.values().sum::<u64>())
        .cloned()
        .ok_or("no replica")?;

    let promoted = conns.get_mut(new_primary.as_str()).unwrap();
    for statement in ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"] {
        promoted
            .execute(statement)
            .await
            .map_err(|e| e.to_string())?;
    }
    let writable = started.elapsed();

    let target = sandbox.host(&new_primary);
    let change_master = format!(
        "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos",
        quote_literal(&target.address),
        target.mysql_port,
        quote_literal(&sandbox.secret("repl.password"))
    );
    for (name, conn) in conns.iter_mut() {
        if *name == new_primary {
            continue;
        }
        for statement in ["STOP SLAVE", change_master.as_str(), "START SLAVE"] {
            conn.execute(statement)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
        }
    }
    // Rechained means both threads run on every replica.
    let deadline = Instant::now() + Duration::from_secs(10);
    for (name, conn) in conns.iter_mut() {
        if *name == new_primary {
            continue;
        }
        loop {
            let status = conn
                .first_row("SHOW SLAVE STATUS")
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let get = |key: &str| status.get(key).cloned().flatten().unwrap_or_default();
            if get("Slave_IO_Running") == "Yes" && get("Slave_SQL_Running") == "Yes" {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{name}: replication threads not running 10 s after START SLAVE: {} {}",
                    get("Last_IO_Error"),
                    get("Last_SQL_Error")
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for (_, conn) in conns {
        conn.close().await;
    }
    Ok((new_primary, Some(writable)))
}

/// `flipover apply --failover` of the sandbox's own topology (which still
/// names db1 the primary: with `--failover` flipover chooses).
async fn flipover_failover(
    sandbox: &TestSandbox,
    survivors: &[&str],
) -> Result<(String, Option<Duration>), String> {
    let output = tokio::process::Command::new(flipover_bin())
        .args([
            "apply",
            "-f",
            &sandbox.topology_arg(),
            "--failover",
            "--auto-approve",
        ])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("flipover runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "`flipover apply --failover` exited with {} (is failover implemented in this build?):\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            stdout.trim_end(),
            stderr.trim_end()
        ));
    }
    let writable = parse_writable_ms(&stderr).map(|ms| Duration::from_secs_f64(ms / 1000.0));
    let new_primary = match parse_new_primary(&stderr) {
        Some(name) => name,
        // No `failover db1 -> dbX: done` line: find the writable survivor.
        None => {
            eprintln!("apply printed no `failover {DEAD} -> …: done` line:\n{stderr}");
            let mut writable_ones = Vec::new();
            for name in survivors {
                let mut conn = sandbox.connect(name).await;
                if field(&mut conn, "SELECT @@read_only AS ro", "ro").await? == "0" {
                    writable_ones.push(name.to_string());
                }
                conn.close().await;
            }
            match writable_ones.as_slice() {
                [one] => one.clone(),
                other => return Err(format!("after apply, writable survivors: {other:?}")),
            }
        }
    };
    Ok((new_primary, writable))
}

/// `dbX` from `[N] failover db1 -> dbX: done in <secs>s`.
fn parse_new_primary(stderr: &str) -> Option<String> {
    let prefix = format!("failover {DEAD} -> ");
    stderr.lines().find_map(|line| {
        if !line.contains(": done in ") {
            return None;
        }
        let rest = &line[line.find(&prefix)? + prefix.len()..];
        Some(rest[..rest.find(':')?].trim().to_string())
    })
}

/// `<ms>` from `… new primary writable after <ms> ms`.
fn parse_writable_ms(stderr: &str) -> Option<f64> {
    const KEY: &str = "new primary writable after ";
    stderr.lines().find_map(|line| {
        let rest = &line[line.find(KEY)? + KEY.len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `0-1-120,1-2-7` -> {0: 120, 1: 7}.
fn parse_gtid_pos(text: &str) -> BTreeMap<u32, u64> {
    text.split(',')
        .filter_map(|gtid| {
            let mut parts = gtid.trim().split('-');
            let domain = parts.next()?.parse().ok()?;
            let _server = parts.next()?;
            let seq = parts.next()?.parse().ok()?;
            Some((domain, seq))
        })
        .collect()
}

async fn field(conn: &mut Connection, query: &str, key: &str) -> Result<String, String> {
    Ok(conn
        .first_row(query)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|row| row.get(key).cloned().flatten())
        .unwrap_or_default())
}

/// Every survivor ends with the same rows (so the new primary holds every
/// write any survivor received), and each acknowledged write missing from
/// them was acknowledged by the dead primary, among its last ones: those
/// never left it, which asynchronous replication allows.
async fn check_data(
    sandbox: &TestSandbox,
    survivors: &[&str],
    report: &WriterReport,
) -> Result<DataCheck, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let mut sets: Vec<(String, BTreeSet<u64>, String)> = Vec::new();
        for name in survivors {
            let mut conn = sandbox.connect(name).await;
            let ids = conn
                .rows("SELECT id FROM shop.writes")
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter_map(|row| row.get("id").cloned().flatten()?.parse().ok())
                .collect();
            let sums = conn
                .rows("CHECKSUM TABLE shop.writes, shop.customers, shop.orders")
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|r| format!("{:?}", r.get("Checksum")))
                .collect::<Vec<_>>()
                .join(",");
            conn.close().await;
            sets.push((name.to_string(), ids, sums));
        }
        if sets
            .windows(2)
            .all(|pair| pair[0].1 == pair[1].1 && pair[0].2 == pair[1].2)
        {
            break sets.swap_remove(0).1;
        }
        if Instant::now() > deadline {
            let union: BTreeSet<u64> = sets.iter().flat_map(|s| s.1.iter().copied()).collect();
            let details: Vec<String> = sets
                .iter()
                .map(|(name, ids, _)| {
                    let missing: Vec<u64> = union.difference(ids).copied().take(20).collect();
                    format!("{name}: {} rows, lacks {missing:?}", ids.len())
                })
                .collect();
            return Err(format!(
                "survivors still differ after 30 s (a write one received is not on the new primary?):\n{}",
                details.join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let lost: Vec<u64> = report
        .acked
        .iter()
        .copied()
        .filter(|id| !rows.contains(id))
        .collect();
    let acked_by: BTreeMap<u64, &str> = report
        .acks
        .iter()
        .map(|a| (a.id, a.server.as_str()))
        .collect();
    if let Some(id) = lost.iter().find(|id| acked_by[id] != DEAD) {
        return Err(format!(
            "acknowledged write {id} (by {}) is missing on the survivors",
            acked_by[id]
        ));
    }
    // The writer inserts in order, so what never left the dead primary is
    // its tail: a lost id below a kept one is a hole, not a lag.
    let kept_from_dead = report
        .acks
        .iter()
        .filter(|a| a.server == DEAD && rows.contains(&a.id))
        .map(|a| a.id)
        .max()
        .unwrap_or(0);
    if let Some(id) = lost.iter().find(|id| **id < kept_from_dead) {
        return Err(format!(
            "acknowledged write {id} is lost although the later {kept_from_dead} survived"
        ));
    }
    Ok(DataCheck {
        acked: report.acked.len(),
        lost,
    })
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}
