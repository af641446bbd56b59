//! Durability: what an acknowledged write survives (`[cluster] durability`).
//!
//! With `semi-sync`, the desired primary waits for a replica's
//! acknowledgement at the AFTER_SYNC point (lossless: nobody sees a commit no
//! replica has), every other server acknowledges as a replica, and nobody
//! else waits as a primary. One `set-durability` step fixes what differs,
//! after every other step, so that it configures the tree as the plan leaves
//! it (the new primary after a switchover or failover).
//!
//! With `async`, flipover changes nothing, but says what a failover could
//! lose now, and warns when a server still waits for semi-sync replicas.

use super::Code;
use std::collections::{BTreeMap, BTreeSet};

use super::plan::DurabilityReport;
use super::step::{SemiSyncStep, Step};
use super::Plan;
use crate::facts::{Flavor, MysqlFacts, Observed, SemiSync};
use crate::gtid;
use crate::topology::{Durability, Topology};
use crate::view::ObservedTree;

/// The wait point that loses nothing: the primary's engine commits (and
/// others see the write) only after a replica has received it.
pub const LOSSLESS_WAIT_POINT: &str = "AFTER_SYNC";

/// Adds the `set-durability` step when semi-sync is asked for and the
/// servers differ; with async, warns about servers still set up for semi-sync.
pub fn plan_durability(topology: &Topology, observed: &Observed, plan: &mut Plan) {
    match topology.cluster().durability {
        Durability::SemiSync => plan_semi_sync(topology, observed, plan),
        Durability::Async => warn_leftover_semi_sync(topology, observed, plan),
    }
}

fn plan_semi_sync(topology: &Topology, observed: &Observed, plan: &mut Plan) {
    let primary = topology.primary();
    let timeout_ms = topology.cluster().semi_sync_timeout * 1000;
    // Servers another step builds or moves: configured after it, even if
    // they do not answer now (a clone target's mysqld may be stopped).
    let stepped: BTreeSet<String> = plan
        .graph
        .node_weights()
        .flat_map(|step| step.servers().into_iter().map(str::to_string))
        .collect();
    let troubled: BTreeSet<String> = plan
        .problems
        .iter()
        .filter_map(|p| p.server.clone())
        .collect();
    // The primary waits only with a replica that can acknowledge: one that
    // answers, or that another step of this plan builds or moves under it.
    // Without one, every commit would stall for the timeout, then go async.
    let live_replicas: Vec<&str> = topology
        .servers()
        .values()
        .filter(|s| s.source.as_deref() == Some(primary.name.as_str()))
        .filter(|s| {
            stepped.contains(&s.name)
                || observed
                    .servers
                    .get(&s.name)
                    .and_then(|o| o.facts())
                    .is_some()
        })
        .map(|s| s.name.as_str())
        .collect();
    let enable_primary = !live_replicas.is_empty();
    if !enable_primary && topology.servers().len() > 1 {
        plan.warning(Code::SemiSyncNoReplica,
            Some(&primary.name),
            format!(
                "semi-sync: {} has no replica that answers, so it cannot wait for one",
                primary.name
            ),
            Some("its commits stay asynchronous until a replica is back; the next plan then turns semi-sync on".to_string()),
        );
    }
    let mut reasons: Vec<(String, String)> = Vec::new();
    let mut replicas = Vec::new();
    let mut primary_side_off = Vec::new();
    for server in topology.servers().values() {
        if troubled.contains(&server.name) {
            continue;
        }
        let facts = observed.servers.get(&server.name).and_then(|s| s.facts());
        let semi_sync = match facts {
            None if stepped.contains(&server.name) => Some(SemiSync::default()),
            // A dead server (a failed primary) is left alone.
            None => continue,
            Some(facts) => match &facts.semi_sync {
                Some(semi_sync) => Some(semi_sync.clone()),
                None => {
                    plan.problem(
                        Code::SemiSyncUnavailable,
                        Some(&server.name),
                        format!("{} has no semi-synchronous replication", server.name),
                        Some(no_semi_sync_hint(facts)),
                    );
                    None
                }
            },
        };
        let Some(semi_sync) = semi_sync else { continue };
        let mut differs = Vec::new();
        if server.name == primary.name {
            if enable_primary {
                differs = primary_differences(&semi_sync, timeout_ms, facts, &stepped, topology);
            }
        } else {
            if !semi_sync.slave_enabled {
                differs.push("replica side off".to_string());
            } else if !semi_sync.slave_status && replicating(facts) {
                differs.push(
                    "replica side on but not in effect (its IO thread started before)".to_string(),
                );
            }
            // Every replica is re-checked when the step runs.
            replicas.push(server.name.clone());
            if semi_sync.master_enabled {
                differs.push("primary side on".to_string());
                primary_side_off.push(server.name.clone());
            }
        }
        if facts.is_none() && (server.name != primary.name || enable_primary) {
            differs = vec!["to be configured once it runs".to_string()];
        }
        reasons.extend(differs.into_iter().map(|d| (server.name.clone(), d)));
    }
    if reasons.is_empty() {
        return;
    }
    // After every other step: depending on those nothing else waits for is enough.
    let last: Vec<_> = plan
        .graph
        .node_indices()
        .filter(|n| {
            plan.graph
                .neighbors_directed(*n, petgraph::Direction::Outgoing)
                .next()
                .is_none()
        })
        .collect();
    let node = plan.add_step(Step::SetDurability(SemiSyncStep {
        primary: primary.name.clone(),
        replicas,
        primary_side_off,
        enable_primary,
        timeout_ms,
        reasons,
    }));
    for other in last {
        plan.depends_on(node, other);
    }
}

/// What keeps the primary from waiting, losslessly, for a replica.
fn primary_differences(
    semi_sync: &SemiSync,
    timeout_ms: u64,
    facts: Option<&MysqlFacts>,
    stepped: &BTreeSet<String>,
    topology: &Topology,
) -> Vec<String> {
    let mut differs = Vec::new();
    if !semi_sync.master_enabled {
        differs.push("primary side off".to_string());
    }
    match semi_sync.master_wait_point.as_deref() {
        Some(LOSSLESS_WAIT_POINT) => {}
        Some(other) => differs.push(format!(
            "wait point {other}, not {LOSSLESS_WAIT_POINT} (lossless)"
        )),
        None => differs.push(format!("wait point unknown, not {LOSSLESS_WAIT_POINT}")),
    }
    if semi_sync.master_timeout_ms != Some(timeout_ms) {
        differs.push(format!(
            "timeout {} ms, not {timeout_ms} ms",
            semi_sync
                .master_timeout_ms
                .map_or("unknown".to_string(), |t| t.to_string())
        ));
    }
    if semi_sync.master_wait_no_slave != Some(true) {
        differs.push("does not wait when no replica is connected".to_string());
    }
    // Degraded: on, but not waiting (timed out, or no replica acknowledges;
    // it is only asked to wait when a replica can). A primary being set up
    // by another step is judged after that step.
    if semi_sync.master_enabled && facts.is_some() && !stepped.contains(&topology.primary().name) {
        if !semi_sync.master_status {
            differs
                .push("fallen back to async (no acknowledgement within the timeout)".to_string());
        } else if semi_sync.master_clients == 0 {
            differs.push("no semi-sync replica connected".to_string());
        }
    }
    differs
}

/// Whether the server's IO thread runs (its replica side applies then).
fn replicating(facts: Option<&MysqlFacts>) -> bool {
    facts
        .and_then(|f| f.replica.as_ref())
        .is_some_and(|r| r.io_running())
}

fn no_semi_sync_hint(facts: &MysqlFacts) -> String {
    match facts.flavor {
        Flavor::Mysql => "install the plugins (`INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'` and `INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'`), or set `durability = \"async\"`".to_string(),
        // MariaDB 10.3+ always has it: the observation predates flipover reading it.
        Flavor::Mariadb => "MariaDB has semi-sync built in (10.3+): observe again with this flipover (`flipover observe`); an observation recorded by an older one lacks it".to_string(),
    }
}

fn warn_leftover_semi_sync(topology: &Topology, observed: &Observed, plan: &mut Plan) {
    for server in topology.servers().values() {
        let Some(semi_sync) = observed
            .servers
            .get(&server.name)
            .and_then(|s| s.facts())
            .and_then(|f| f.semi_sync.as_ref())
        else {
            continue;
        };
        if semi_sync.master_enabled {
            let off = crate::sql::semi_sync::set_primary_side(
                super::dialect_of(observed, &server.name),
                false,
            );
            plan.warning(Code::SemiSyncUnmanaged,
                Some(&server.name),
                format!(
                    "{} has semi-sync's primary side on, but the topology's durability is async",
                    server.name
                ),
                Some(format!(
                    "set `durability = \"semi-sync\"` in [cluster] to have flipover keep it, or turn it off: `{off}` on {} (and in its my.cnf)",
                    server.name
                )),
            );
        }
    }
}

/// The plan's durability line for the topology and what was observed: the
/// mode, and what it means for the primary as it is now.
pub fn report(topology: &Topology, observed: &Observed) -> DurabilityReport {
    let current = current_primary(topology, observed);
    let text = match topology.cluster().durability {
        Durability::SemiSync => format!(
            "semi-sync — the primary acknowledges a commit only once a replica has received it \
             ({LOSSLESS_WAIT_POINT}; after {} s without an acknowledgement it falls back to async, \
             and a failover may then lose writes); now: {}",
            topology.cluster().semi_sync_timeout,
            match current {
                Some((name, facts)) => semi_sync_now(name, facts),
                None => "no primary answers".to_string(),
            }
        ),
        Durability::Async => match current {
            Some((name, facts)) => format!(
                "async — a failover may lose transactions acknowledged by {name} that no \
                 replica has received ({})",
                async_exposure(topology, observed, name, facts)
            ),
            None => "async — a failover may lose transactions the primary acknowledged that no \
                     replica has received (no primary answers now)"
                .to_string(),
        },
    };
    DurabilityReport {
        mode: topology.cluster().durability,
        text,
    }
}

/// The server at the top of the observed tree that answers: the primary now.
fn current_primary<'o>(
    topology: &Topology,
    observed: &'o Observed,
) -> Option<(&'o str, &'o MysqlFacts)> {
    let tree = ObservedTree::from_observed(topology, observed);
    tree.roots().into_iter().find_map(|root| {
        let server = observed.servers.get(root)?;
        Some((server.name.as_str(), server.facts()?))
    })
}

fn semi_sync_now(name: &str, facts: &MysqlFacts) -> String {
    match &facts.semi_sync {
        None => format!("{name} has no semi-sync"),
        Some(s) if !s.master_enabled => format!("{name} does not wait for replicas"),
        Some(s) if !s.master_status => format!("{name} has fallen back to async"),
        Some(s) => format!(
            "{name} waits for a replica, {} semi-sync replica{} connected",
            s.master_clients,
            if s.master_clients == 1 { "" } else { "s" }
        ),
    }
}

/// How far the most advanced direct replica of the current primary is
/// behind it, in transactions: what a failover now would lose.
fn async_exposure(
    topology: &Topology,
    observed: &Observed,
    current: &str,
    primary: &MysqlFacts,
) -> String {
    let Some(position) = primary.gtid.binlog_pos.as_deref() else {
        return "not measured: no MariaDB GTID position".to_string();
    };
    let tree = ObservedTree::from_observed(topology, observed);
    let behind: BTreeMap<&str, u64> = tree
        .children(current)
        .into_iter()
        .filter_map(|child| {
            let facts = observed.servers.get(child)?.facts()?;
            let received = facts
                .replica
                .as_ref()
                .and_then(|r| r.gtid_received.clone())
                .or_else(|| facts.gtid.current_pos.clone())
                .unwrap_or_default();
            Some((child, transactions_behind(position, &received)))
        })
        .collect();
    match behind.iter().min_by_key(|(_, n)| **n) {
        None => format!("now: no replica receives {current}'s writes"),
        Some((name, 0)) => format!("none now: {name} has received everything"),
        Some((name, n)) => format!(
            "now: {name}, the most advanced replica, lacks {n} transaction{}",
            if *n == 1 { "" } else { "s" }
        ),
    }
}

/// Transactions in `position` (a MariaDB GTID position) beyond `received`,
/// counted per domain by sequence number.
fn transactions_behind(position: &str, received: &str) -> u64 {
    let mut reached: BTreeMap<u32, u64> = BTreeMap::new();
    for g in gtid::parse_list(received) {
        let seq = reached.entry(g.domain).or_default();
        *seq = (*seq).max(g.seq);
    }
    gtid::parse_list(position)
        .into_iter()
        .map(|g| {
            g.seq
                .saturating_sub(reached.get(&g.domain).copied().unwrap_or(0))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_transactions_behind_per_domain() {
        assert_eq!(transactions_behind("0-1-10", "0-1-10"), 0);
        assert_eq!(transactions_behind("0-1-10", "0-1-7"), 3);
        assert_eq!(transactions_behind("0-1-10,1-1-5", "0-1-10"), 5);
        assert_eq!(transactions_behind("0-1-10", ""), 10);
        // A replica ahead in a domain is not "negative" behind.
        assert_eq!(transactions_behind("0-1-10", "0-2-12"), 0);
    }
}
