//! The apply journal: each step's start and end, written on every server the
//! apply holds the cluster lock on (through those same connections), with
//! binary logging off for the session so it adds no GTIDs. It survives the
//! machine that runs flipover; the next observation reads it back, and a
//! plan reports an apply that never recorded its end. Each apply ends by
//! recording the topology it leaves, which discovery reads back to find a
//! dead primary's replicas, and by pruning the journal to the latest applies.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::join_all;

use rand::distr::{Alphanumeric, SampleString};
use tokio::sync::Mutex;

use super::lock::{ClusterLock, SILENT_SERVER_LIMIT};
use crate::db::{self, Connection, Endpoint};
use crate::sql;

/// How long deleting a server's old journal rows may take.
const PRUNE_LIMIT: Duration = Duration::from_secs(10);

pub struct Journal {
    apply_id: String,
    operator: String,
    seq: AtomicU32,
    connections: Mutex<Vec<Connection>>,
}

impl Journal {
    /// Prepares the journal table on every locked server and records the
    /// apply's start. A server where that fails is simply not journaled.
    pub async fn begin(lock: ClusterLock, summary: &str) -> Journal {
        let mut connections = Vec::new();
        for mut conn in lock.into_connections() {
            let mut ready = true;
            for statement in sql::journal::SETUP {
                if conn.execute(statement).await.is_err() {
                    ready = false;
                    break;
                }
            }
            if ready {
                connections.push(conn);
            } else {
                tracing::debug!(
                    "{}: no journal (cannot create flipover.journal)",
                    conn.address
                );
                connections.push(conn);
            }
        }
        let journal = Journal {
            apply_id: format!(
                "{}-{}",
                std::process::id(),
                Alphanumeric.sample_string(&mut rand::rng(), 12)
            ),
            operator: operator(),
            seq: AtomicU32::new(0),
            connections: Mutex::new(connections),
        };
        journal.record("apply", "started", Some(summary)).await;
        journal
    }

    /// Records a step event everywhere it can; failures are not fatal (a
    /// clone target restarts, for one).
    pub async fn record(&self, step: &str, state: &str, detail: Option<&str>) {
        let statement = self.entry(step, state, detail);
        self.write(&statement).await;
    }

    /// The next entry's INSERT.
    fn entry(&self, step: &str, state: &str, detail: Option<&str>) -> String {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        sql::journal::insert(&self.apply_id, seq, step, state, detail, &self.operator)
    }

    /// Runs `statement` on every journal connection; returns the addresses
    /// where it was written.
    async fn write(&self, statement: &str) -> BTreeSet<String> {
        let mut written = BTreeSet::new();
        let mut connections = self.connections.lock().await;
        let mut silent = Vec::new();
        for (i, conn) in connections.iter_mut().enumerate() {
            match tokio::time::timeout(SILENT_SERVER_LIMIT, conn.execute(statement)).await {
                Ok(Ok(())) => {
                    written.insert(conn.address.clone());
                }
                Ok(Err(e)) => tracing::debug!("journal on {}: {e}", conn.address),
                Err(_) => {
                    tracing::warn!(
                        "journal on {}: no answer within {SILENT_SERVER_LIMIT:?}; not journaling there any more",
                        conn.address
                    );
                    silent.push(i);
                }
            }
        }
        // A server that stopped answering would hold every later record up.
        for i in silent.into_iter().rev() {
            drop(connections.remove(i));
        }
        written
    }

    /// Records the topology the apply leaves (`topology`, as the journal
    /// remembers it: see `topology::to_memory_toml`) and the end, prunes
    /// the journal to the latest `keep_applies` applies, and gives the lock
    /// back. Servers in `rejoin` whose journal connection broke during the
    /// apply (a clone target restarts its mysqld) get the last two entries
    /// over a new connection: a new replica remembers the topology it is
    /// part of. Pruning comes last: a server slow to delete costs nothing
    /// else.
    pub async fn finish(self, end: JournalEnd<'_>) -> ClusterLock {
        let topology = self.entry(sql::journal::TOPOLOGY_STEP, end.outcome, Some(end.topology));
        let finished = self.entry("apply", "finished", Some(end.outcome));
        let written = self.write(&topology).await;
        self.write(&finished).await;
        let missing: Vec<&Endpoint> = end
            .rejoin
            .iter()
            .filter(|e| !written.contains(&e.address()))
            .collect();
        let rejoined = join_all(
            missing
                .iter()
                .map(|e| write_anew(e, end.connect_timeout, [&topology, &finished])),
        )
        .await;
        let prune = sql::journal::prune(end.keep_applies);
        let mut connections = self.connections.into_inner();
        for conn in &mut connections {
            if let Err(e) = conn.execute_within(&prune, PRUNE_LIMIT).await {
                tracing::warn!("journal on {}: not pruned: {e}", conn.address);
            }
        }
        for mut conn in rejoined.into_iter().flatten() {
            if let Err(e) = conn.execute_within(&prune, PRUNE_LIMIT).await {
                tracing::warn!("journal on {}: not pruned: {e}", conn.address);
            }
            conn.close().await;
        }
        ClusterLock::from_connections(connections)
    }
}

/// How an apply ends, for [`Journal::finish`].
pub struct JournalEnd<'a> {
    /// `complete` or `failed`.
    pub outcome: &'a str,
    /// The topology the apply leaves, as the journal remembers it.
    pub topology: &'a str,
    /// `[journal] keep_applies`.
    pub keep_applies: u32,
    /// The servers to write the end on over a new connection when their
    /// journal connection broke (those that answered at observation).
    pub rejoin: Vec<Endpoint>,
    pub connect_timeout: Duration,
}

/// Writes `entries` on `endpoint` over a new connection, binary logging
/// off; the connection, to prune through, when that worked.
async fn write_anew(
    endpoint: &Endpoint,
    timeout: Duration,
    entries: [&str; 2],
) -> Option<Connection> {
    let mut conn = db::connect(endpoint, timeout).await.ok()?;
    conn.set_statement_timeout(SILENT_SERVER_LIMIT);
    for statement in sql::journal::SETUP.iter().copied().chain(entries) {
        if let Err(e) = conn.execute(statement).await {
            tracing::debug!("journal on {}: {e}", conn.address);
            conn.close().await;
            return None;
        }
    }
    Some(conn)
}

/// `user@host pid N`, to tell operators apart in the journal.
fn operator() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| "unknown".to_string())
        });
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string());
    format!("{user}@{host} pid {}", std::process::id())
}
