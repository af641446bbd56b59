//! Planned switchover: flipover's figures beside the bare SQL sequence's,
//! measured in the same run on the same 4-server sandbox under a steady writer.
//!
//!     cargo build --release --workspace --bins && cargo bench --bench switchover
//!
//! Rounds alternate: the bare sequence db1 -> db2 by hand, then
//! `flipover apply` with the sandbox's own topology (db1 the primary), which
//! must plan the switchover db2 -> db1. Targets (from the issue): write-block
//! (fence -> new primary writable) <= 50 ms, the writer's longest gap <= 100 ms,
//! the whole apply <= 0.3 s.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::writer::{
    app_endpoints, assert_all_acked_present, make_replicas_read_only, prepare_app_user, Writer,
};
use common::{flipover, flipover_bin, TestSandbox};
use flipover::db::{quote_literal, Connection};
use support::{median, settle, wait_for_tree};

const ROUNDS: usize = 3;
const SERVERS: [&str; 4] = ["db1", "db2", "db3", "db4"];
const TARGET_WRITE_BLOCK_MS: f64 = 50.0;
const TARGET_GAP_MS: f64 = 100.0;
const TARGET_APPLY_S: f64 = 0.3;

struct Bare {
    write_block: Duration,
    gap: Duration,
    total: Duration,
}

struct Flip {
    write_block: Option<f64>,
    gap: Duration,
    wall: Duration,
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
    eprintln!("starting a sandbox of 4 and cloning db2..db4 from db1 …");
    let sandbox = TestSandbox::up(4);
    let apply = flipover(&["apply", "-f", &sandbox.topology_arg(), "--auto-approve"]);
    assert!(
        apply.status.success(),
        "initial apply failed:\n{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    make_replicas_read_only(&sandbox, "db1").await;
    prepare_app_user(&sandbox, "db1").await;
    let writer = Writer::start(app_endpoints(&sandbox, &SERVERS));
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("writer running: {} inserts in 1 s", writer.acked_so_far());

    let mut bares = Vec::new();
    let mut flips = Vec::new();
    let mut failure: Option<String> = None;
    for round in 1..=ROUNDS {
        let bare = bare_switchover(&sandbox, &writer, "db1", "db2").await;
        println!(
            "round {round} bare db1 -> db2:     write-block {:6.1} ms, writer gap {:6.1} ms, total {:6.1} ms",
            ms(bare.write_block),
            ms(bare.gap),
            ms(bare.total)
        );
        bares.push(bare);

        match flipover_switchover(&sandbox, &writer).await {
            Ok(flip) => {
                println!(
                    "round {round} flipover db2 -> db1: write-block {}, writer gap {:6.1} ms, apply wall {:5.3} s",
                    flip.write_block
                        .map(|w| format!("{w:6.1} ms"))
                        .unwrap_or_else(|| "(not printed)".into()),
                    ms(flip.gap),
                    flip.wall.as_secs_f64()
                );
                flips.push(flip);
            }
            Err(error) => {
                if failure.is_some() {
                    // The full output is above; the first problem is enough now.
                    let first = error.lines().find(|l| l.contains("error:")).unwrap_or("");
                    println!(
                        "round {round} flipover db2 -> db1: FAILED again: {}",
                        first.trim()
                    );
                } else {
                    println!("round {round} flipover db2 -> db1: FAILED\n{error}");
                }
                failure.get_or_insert(error);
                // Put db1 back by hand so the next round starts where it should.
                let back = bare_switchover(&sandbox, &writer, "db2", "db1").await;
                println!(
                    "round {round} bare db2 -> db1:     write-block {:6.1} ms, writer gap {:6.1} ms, total {:6.1} ms (instead of flipover)",
                    ms(back.write_block),
                    ms(back.gap),
                    ms(back.total)
                );
                bares.push(back);
            }
        }
    }

    let report = writer.stop().await;
    assert_all_acked_present(&sandbox, &SERVERS, &report).await;
    println!(
        "writer: {} inserts acknowledged, all on all 4 servers (checksums equal); {} errors; per server {:?}",
        report.acked.len(),
        report.errors,
        report.per_server
    );

    println!(
        "bare SQL sequence: write-block median {:.1} ms, writer longest gap median {:.0} ms, total {:.0} ms",
        median(bares.iter().map(|b| ms(b.write_block))),
        median(bares.iter().map(|b| ms(b.gap))),
        median(bares.iter().map(|b| ms(b.total)))
    );
    if !flips.is_empty() {
        let blocks: Vec<f64> = flips.iter().filter_map(|f| f.write_block).collect();
        let write_block = if blocks.is_empty() {
            "not printed by apply".to_string()
        } else {
            format!("{:.1} ms", median(blocks.into_iter()))
        };
        println!(
            "flipover apply:    write-block median {write_block} (target <= {TARGET_WRITE_BLOCK_MS}), writer longest gap median {:.0} ms (target <= {TARGET_GAP_MS}), apply wall time median {:.2} s (target <= {TARGET_APPLY_S})",
            median(flips.iter().map(|f| ms(f.gap))),
            median(flips.iter().map(|f| f.wall.as_secs_f64()))
        );
    }
    match failure {
        None => ExitCode::SUCCESS,
        Some(_) => {
            println!("FAILED: flipover apply did not switch db2 -> db1 (see above)");
            ExitCode::FAILURE
        }
    }
}

/// The sequence a DBA would type, with connections opened beforehand:
/// fence `from`, kill its clients, wait for `to` to catch up, promote `to`,
/// then point every other server (and `from`) at `to`.
async fn bare_switchover(sandbox: &TestSandbox, writer: &Writer, from: &str, to: &str) -> Bare {
    let mut conns: BTreeMap<&str, Connection> = BTreeMap::new();
    for name in SERVERS {
        conns.insert(name, sandbox.connect(name).await);
    }
    let started = Instant::now();

    let old = conns.get_mut(from).unwrap();
    old.execute("SET GLOBAL read_only = 1").await.unwrap();
    // read_only stops new writes, not sessions: kill every client but
    // replication dumps, system threads and ourselves.
    let clients = old
        .rows(
            "SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() \
             AND command NOT LIKE 'Binlog Dump%' AND command <> 'Daemon' \
             AND user NOT IN ('system user', 'event_scheduler')",
        )
        .await
        .unwrap();
    for row in clients {
        let id = row["id"].clone().unwrap();
        // Gone already (it ended by itself) is fine.
        let _ = old.execute(&format!("KILL CONNECTION {id}")).await;
    }
    let position = old
        .first_row("SELECT @@gtid_binlog_pos AS pos")
        .await
        .unwrap()
        .and_then(|row| row["pos"].clone())
        .unwrap();

    let new = conns.get_mut(to).unwrap();
    let waited = new
        .first_row(&format!(
            "SELECT MASTER_GTID_WAIT({}, 10) AS w",
            quote_literal(&position)
        ))
        .await
        .unwrap()
        .and_then(|row| row["w"].clone());
    assert_eq!(
        waited.as_deref(),
        Some("0"),
        "{to} never reached {position}"
    );
    for statement in ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"] {
        new.execute(statement).await.unwrap();
    }
    let write_block = started.elapsed();

    let target = sandbox.host(to);
    let change_master = format!(
        "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos",
        quote_literal(&target.address),
        target.mysql_port,
        quote_literal(&sandbox.secret("repl.password"))
    );
    // The repoints are independent: run them side by side.
    let repoints = conns
        .iter_mut()
        .filter(|(name, _)| **name != to)
        .map(|(name, conn)| {
            let statements = if *name == from {
                // The old primary has never replicated: its own binlog is
                // where it stands.
                vec![
                    "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos",
                    change_master.as_str(),
                    "START SLAVE",
                ]
            } else {
                vec!["STOP SLAVE", change_master.as_str(), "START SLAVE"]
            };
            async move {
                for statement in statements {
                    conn.execute(statement).await.unwrap();
                }
            }
        });
    futures::future::join_all(repoints).await;
    let total = started.elapsed();
    let ended = Instant::now();
    for (_, conn) in conns {
        conn.close().await;
    }

    wait_for_tree(sandbox, &SERVERS, to)
        .await
        .expect("the switched tree");
    // The gap that started in the window ends with the writer's next ack.
    settle(writer, Duration::from_millis(500))
        .await
        .expect("the writer settles");
    let (gap, _) = writer.longest_gap_between(started, ended);
    Bare {
        write_block,
        gap,
        total,
    }
}

/// `flipover apply` of the sandbox's topology (db1 the primary) while db2 is:
/// a switchover db2 -> db1 and rechains.
async fn flipover_switchover(sandbox: &TestSandbox, writer: &Writer) -> Result<Flip, String> {
    let started = Instant::now();
    let output = tokio::process::Command::new(flipover_bin())
        .args(["apply", "-f", &sandbox.topology_arg(), "--auto-approve"])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("flipover runs");
    let wall = started.elapsed();
    let ended = Instant::now();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "`flipover apply` exited with {}:\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            stdout.trim_end(),
            stderr.trim_end()
        ));
    }
    wait_for_tree(sandbox, &SERVERS, "db1")
        .await
        .expect("the switched tree");
    settle(writer, Duration::from_millis(500))
        .await
        .expect("the writer settles");
    let (gap, _) = writer.longest_gap_between(started, ended);
    Ok(Flip {
        write_block: parse_write_block(&stderr).or_else(|| parse_write_block(&stdout)),
        gap,
        wall,
    })
}

/// `write-block: <N> ms` anywhere in apply's output (stderr, where progress goes).
fn parse_write_block(stderr: &str) -> Option<f64> {
    stderr.lines().find_map(|line| {
        let rest = &line[line.find("write-block: ")? + "write-block: ".len()..];
        rest.strip_suffix(" ms")
            .or_else(|| rest.split(" ms").next())?
            .trim()
            .parse()
            .ok()
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
