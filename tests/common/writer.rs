//! A steady application writer for switchover tests and benches: inserts
//! ids 1, 2, 3, … one at a time as an unprivileged user, follows the writable
//! server when the current one fences or drops it, and records when and where
//! each insert was acknowledged, so a test can measure the write gap and
//! prove that no acknowledged write was lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flipover::db::{self, Connection, DbError, Endpoint};
use rand::distr::{Alphanumeric, SampleString};

use super::TestSandbox;

pub const APP_USER: &str = "app";
/// Stops the writer even if nobody does (a panicking test, a stuck bench).
const SAFETY_LIMIT: Duration = Duration::from_secs(600);
/// Probing for the writable server must be quick: it is inside the gap we measure.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// An insert stuck longer than this (a lock held by a fence) is given up and retried.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_SLEEP: Duration = Duration::from_millis(1);
/// MariaDB/MySQL ER_DUP_ENTRY.
const DUPLICATE_KEY: u16 = 1062;

/// Creates `shop.writes` and the `app` user on `primary` (binlogged, so they
/// reach every replica), and waits until the primary's replicas have both.
///
/// `app` gets only INSERT and SELECT on `shop`: no SUPER / READ ONLY ADMIN, so
/// `read_only=1` really stops it (root-like users still write under it).
pub async fn prepare_app_user(sandbox: &TestSandbox, primary: &str) {
    let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
    std::fs::write(
        sandbox.dir.join("secrets").join("app.password"),
        format!("{password}\n"),
    )
    .expect("writing secrets/app.password");
    let mut conn = sandbox.connect(primary).await;
    for statement in [
        "CREATE TABLE IF NOT EXISTS shop.writes (id BIGINT PRIMARY KEY, \
         writer_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
            .to_string(),
        format!(
            "CREATE OR REPLACE USER {APP_USER}@'%' IDENTIFIED BY {}",
            db::quote_literal(&password)
        ),
        format!("GRANT INSERT, SELECT ON shop.* TO {APP_USER}@'%'"),
    ] {
        conn.execute(&statement).await.unwrap();
    }
    conn.close().await;

    // The writer probes every server as `app`: wait until replication brought
    // the table and the account everywhere it replicates to.
    for host in &sandbox.state.hosts {
        let mut conn = sandbox.connect(&host.name).await;
        let replicates = !conn.rows("SHOW SLAVE STATUS").await.unwrap().is_empty();
        conn.close().await;
        if replicates || host.name == primary {
            sandbox
                .wait_for_value(
                    &host.name,
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = 'shop' AND table_name = 'writes'",
                    "1",
                    Duration::from_secs(20),
                )
                .await;
            sandbox
                .wait_for_value(
                    &host.name,
                    "SELECT COUNT(*) FROM mysql.user WHERE user = 'app'",
                    "1",
                    Duration::from_secs(20),
                )
                .await;
        }
    }
}

/// `SET GLOBAL read_only=1` on every server but `primary`, as production
/// replicas run: a clone leaves replicas writable (read_only=0), and the
/// writer would then take a replica for the primary.
pub async fn make_replicas_read_only(sandbox: &TestSandbox, primary: &str) {
    for host in sandbox.state.hosts.iter().filter(|h| h.name != primary) {
        let mut conn = sandbox.connect(&host.name).await;
        conn.execute("SET GLOBAL read_only = 1").await.unwrap();
        conn.close().await;
    }
}

/// The `app` account's endpoints for `servers` (after [`prepare_app_user`]).
pub fn app_endpoints(sandbox: &TestSandbox, servers: &[&str]) -> Vec<(String, Endpoint)> {
    let password = sandbox.secret("app.password");
    servers
        .iter()
        .map(|name| {
            let host = sandbox.host(name);
            let endpoint = Endpoint {
                host: host.address.clone(),
                port: host.mysql_port,
                user: APP_USER.into(),
                password: password.clone(),
                socket: None,
            };
            (name.to_string(), endpoint)
        })
        .collect()
}

/// One acknowledged insert.
#[derive(Debug, Clone)]
pub struct Ack {
    pub id: u64,
    pub at: Instant,
    pub server: String,
}

#[derive(Debug, Default)]
struct Progress {
    acks: Vec<Ack>,
    errors: usize,
    last_error: Option<String>,
}

pub struct Writer {
    stop: Arc<AtomicBool>,
    progress: Arc<Mutex<Progress>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
pub struct WriterReport {
    /// Acknowledged ids in order (1..=n: an id is retried until acknowledged).
    pub acked: Vec<u64>,
    /// Largest time between two consecutive acknowledgements.
    pub longest_gap: Duration,
    /// The id acknowledged just before that gap.
    pub longest_gap_at: u64,
    /// Acknowledgements per server name.
    pub per_server: BTreeMap<String, usize>,
    /// Failed inserts (not counting duplicate keys) and probe rounds that
    /// found no writable server.
    pub errors: usize,
    pub last_error: Option<String>,
    /// Every acknowledgement, for gaps within a time window.
    pub acks: Vec<Ack>,
}

impl Writer {
    /// Starts inserting on the writable server among `endpoints` (name, app endpoint).
    pub fn start(endpoints: Vec<(String, Endpoint)>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new(Progress::default()));
        let task = tokio::spawn(run(endpoints, stop.clone(), progress.clone()));
        Writer {
            stop,
            progress,
            task,
        }
    }

    /// The longest gap between consecutive acknowledgements that overlaps
    /// `from..=to`, and the id acknowledged before it; the writer keeps going.
    pub fn longest_gap_between(&self, from: Instant, to: Instant) -> (Duration, u64) {
        longest_gap(&self.progress.lock().unwrap().acks, from, to)
    }

    pub fn acked_so_far(&self) -> usize {
        self.progress.lock().unwrap().acks.len()
    }

    /// Stops after the insert in flight and reports.
    pub async fn stop(self) -> WriterReport {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("writer task panicked");
        let progress = std::mem::take(&mut *self.progress.lock().unwrap());
        let mut per_server = BTreeMap::new();
        for ack in &progress.acks {
            *per_server.entry(ack.server.clone()).or_insert(0) += 1;
        }
        let far = Instant::now() + SAFETY_LIMIT;
        let (gap, gap_at) = match progress.acks.first() {
            Some(first) => longest_gap(&progress.acks, first.at, far),
            None => (Duration::ZERO, 0),
        };
        WriterReport {
            acked: progress.acks.iter().map(|a| a.id).collect(),
            longest_gap: gap,
            longest_gap_at: gap_at,
            per_server,
            errors: progress.errors,
            last_error: progress.last_error,
            acks: progress.acks,
        }
    }
}

impl WriterReport {
    pub fn longest_gap_between(&self, from: Instant, to: Instant) -> (Duration, u64) {
        longest_gap(&self.acks, from, to)
    }
}

fn longest_gap(acks: &[Ack], from: Instant, to: Instant) -> (Duration, u64) {
    acks.windows(2)
        .filter(|pair| pair[1].at >= from && pair[0].at <= to)
        .map(|pair| (pair[1].at - pair[0].at, pair[0].id))
        .max()
        .unwrap_or((Duration::ZERO, 0))
}

async fn run(
    endpoints: Vec<(String, Endpoint)>,
    stop: Arc<AtomicBool>,
    progress: Arc<Mutex<Progress>>,
) {
    let deadline = Instant::now() + SAFETY_LIMIT;
    let mut current: Option<(String, Connection)> = None;
    let mut next: u64 = 1;
    let failed = |message: String| {
        let mut p = progress.lock().unwrap();
        p.errors += 1;
        p.last_error = Some(message);
    };
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        if current.is_none() {
            current = find_writable(&endpoints).await;
            if current.is_none() {
                failed("no writable server".into());
                tokio::time::sleep(RETRY_SLEEP).await;
                continue;
            }
        }
        let (server, conn) = current.as_mut().expect("connected above");
        let insert = format!("INSERT INTO shop.writes (id) VALUES ({next})");
        let outcome = tokio::time::timeout(STATEMENT_TIMEOUT, conn.execute(&insert)).await;
        let acknowledged = match outcome {
            Ok(Ok(())) => true,
            // The previous attempt committed before its connection died.
            Ok(Err(error)) if is_duplicate_key(&error) => true,
            Ok(Err(error)) => {
                failed(format!("{server}: {error}"));
                false
            }
            Err(_) => {
                failed(format!("{server}: insert {next} timed out"));
                false
            }
        };
        if acknowledged {
            let ack = Ack {
                id: next,
                at: Instant::now(),
                server: server.clone(),
            };
            progress.lock().unwrap().acks.push(ack);
            next += 1;
        } else {
            // Whatever the error, the server may no longer be the primary:
            // drop the connection and look again.
            current = None;
            tokio::time::sleep(RETRY_SLEEP).await;
        }
    }
    if let Some((_, conn)) = current {
        conn.close().await;
    }
}

fn is_duplicate_key(error: &DbError) -> bool {
    matches!(error, DbError::Query { source: mysql_async::Error::Server(e), .. } if e.code == DUPLICATE_KEY)
}

/// Probes every endpoint at once and keeps a connection to the first (in
/// endpoint order) that answers `@@read_only = 0`.
async fn find_writable(endpoints: &[(String, Endpoint)]) -> Option<(String, Connection)> {
    let probes = endpoints.iter().map(|(name, endpoint)| async move {
        let mut conn = db::connect(endpoint, PROBE_TIMEOUT).await.ok()?;
        let answer =
            tokio::time::timeout(PROBE_TIMEOUT, conn.first_row("SELECT @@read_only AS ro")).await;
        match answer {
            Ok(Ok(Some(row))) if row.get("ro") == Some(&Some("0".to_string())) => {
                Some((name.clone(), conn))
            }
            _ => {
                tokio::spawn(conn.close());
                None
            }
        }
    });
    let mut found = None;
    for (name, conn) in futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
    {
        if found.is_none() {
            found = Some((name, conn));
        } else {
            tokio::spawn(conn.close());
        }
    }
    found
}

/// Waits (≤ 30 s) until every server in `servers` holds every acknowledged
/// id, then until `CHECKSUM TABLE` of shop's tables agrees on all of them.
/// Every id the writer's table holds on `server`.
pub async fn ids_on(sandbox: &TestSandbox, server: &str) -> std::collections::BTreeSet<u64> {
    let mut conn = sandbox.connect(server).await;
    let rows = conn.rows("SELECT id FROM shop.writes").await.unwrap();
    conn.close().await;
    rows.iter()
        .filter_map(|r| r.get("id").cloned().flatten()?.parse().ok())
        .collect()
}

pub async fn assert_all_acked_present(
    sandbox: &TestSandbox,
    servers: &[&str],
    report: &WriterReport,
) {
    let expected: BTreeSet<u64> = report.acked.iter().copied().collect();
    let max = expected.iter().next_back().copied().unwrap_or(0);
    assert_eq!(
        expected.len() as u64,
        max,
        "the writer acknowledges ids in order without holes"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut behind = Vec::new();
        for server in servers {
            let mut conn = sandbox.connect(server).await;
            let count: u64 = conn
                .first_row(&format!(
                    "SELECT COUNT(*) AS n FROM shop.writes WHERE id <= {max}"
                ))
                .await
                .unwrap()
                .and_then(|row| row.get("n").cloned().flatten())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if count != expected.len() as u64 {
                let present: BTreeSet<u64> = conn
                    .rows(&format!("SELECT id FROM shop.writes WHERE id <= {max}"))
                    .await
                    .unwrap()
                    .into_iter()
                    .filter_map(|row| row.get("id").cloned().flatten()?.parse().ok())
                    .collect();
                let missing: Vec<u64> = expected.difference(&present).copied().collect();
                behind.push(format!(
                    "{server}: {count} of {} acknowledged rows; missing {} ids, first {:?}",
                    expected.len(),
                    missing.len(),
                    &missing[..missing.len().min(20)]
                ));
            }
            conn.close().await;
        }
        if behind.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged writes missing after 30 s:\n{}",
            behind.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Rows the writer never saw acknowledged may still be on their way:
    // poll until the checksums agree.
    loop {
        let mut sums = Vec::new();
        for server in servers {
            let sum = sandbox
                .checksums(server, "shop.writes, shop.customers, shop.orders")
                .await;
            sums.push((server.to_string(), sum));
        }
        if sums.windows(2).all(|pair| pair[0].1 == pair[1].1) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "checksums differ after 30 s: {sums:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
