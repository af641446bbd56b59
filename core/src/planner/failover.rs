//! Failover: the observed primary is unreachable and the topology names
//! another primary (or `--failover` chose one).

use super::Code;
use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::NodeIndex;

use super::step::{FailoverStep, Step};
use super::Plan;
use crate::facts::{Flavor, MysqlFacts, Observed};
use crate::gtid::{self, MariadbGtid};
use crate::topology::Topology;
use crate::view::{ObservedSource, ObservedTree};

/// How long a failover waits for each replica's relay log to drain (seconds).
pub const DRAIN_TIMEOUT_SECONDS: u64 = 30;

/// The reachable servers whose observed chain of sources leads up to `old`.
pub fn survivors(
    topology: &Topology,
    observed: &Observed,
    tree: &ObservedTree,
    old: &str,
) -> Vec<String> {
    topology
        .servers()
        .keys()
        .filter(|name| {
            name.as_str() != old
                && observed
                    .servers
                    .get(*name)
                    .is_some_and(|s| s.facts().is_some())
        })
        .filter(|name| leads_to(tree, name, old, topology.servers().len()))
        .cloned()
        .collect()
}

fn leads_to(tree: &ObservedTree, start: &str, target: &str, limit: usize) -> bool {
    let mut current = start.to_string();
    for _ in 0..limit {
        match tree.sources.get(&current) {
            Some(ObservedSource::Server(source)) if source == target => return true,
            Some(ObservedSource::Server(source)) => current = source.clone(),
            _ => return false,
        }
    }
    false
}

/// Everything a survivor will hold once its relay log is applied: per
/// domain the later of what it applied and what it received.
pub fn eventual_position(facts: &MysqlFacts) -> String {
    let mut by_domain: BTreeMap<u32, MariadbGtid> = BTreeMap::new();
    let received = facts
        .replica
        .as_ref()
        .and_then(|r| r.gtid_received.as_deref());
    for text in [facts.gtid.current_pos.as_deref(), received]
        .into_iter()
        .flatten()
    {
        for gtid in gtid::parse_list(text) {
            let entry = by_domain.entry(gtid.domain).or_insert(gtid);
            if gtid.seq > entry.seq {
                *entry = gtid;
            }
        }
    }
    by_domain
        .values()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// GTIDs a server wrote itself (its own server_id) that no other server has:
/// writes made on a replica. A server with such GTIDs never becomes primary.
pub fn own_errant(name: &str, facts: &MysqlFacts, observed: &Observed) -> Vec<MariadbGtid> {
    let others: Vec<String> = observed
        .servers
        .values()
        .filter(|s| s.name != name)
        .filter_map(|s| s.facts().map(|f| f.known_gtid_state()))
        .collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    gtid::not_covered_by_any(
        facts.gtid.binlog_state.as_deref().unwrap_or_default(),
        &others,
    )
    .into_iter()
    .filter(|g| g.server_id == facts.server_id)
    .collect()
}

/// Checks a failover from the dead `old` to the desired primary, adds its
/// step, and returns it with the servers it moves under the new primary.
pub fn plan_failover(
    topology: &Topology,
    observed: &Observed,
    tree: &ObservedTree,
    old: &str,
    plan: &mut Plan,
) -> Option<(NodeIndex, BTreeSet<String>)> {
    let new = topology.primary().name.clone();
    let survivors = survivors(topology, observed, tree, old);
    let before = plan.problems.len();
    if !survivors.contains(&new) {
        plan.problem(Code::CandidateNotInTree,
            Some(&new),
            format!("{new} cannot replace {old}: it does not replicate from {old}'s tree, or does not answer"),
            Some(format!("name one of {old}'s reachable replicas as primary, or use --failover to let flipover choose")),
        );
        return None;
    }
    let facts = |name: &str| observed.servers[name].facts().expect("survivors answer");
    let candidate = facts(&new);
    for reason in unfit_reasons(topology, observed, &new) {
        plan.problem(Code::CandidateUnfit, Some(&new), format!("{new} cannot replace {old}: {reason}"), Some(
            "fix it, or choose another candidate (`flipover plan --failover` proposes the best one)".to_string(),
        ));
    }
    // Where the new primary must get to: the most advanced survivor per domain.
    let positions: BTreeMap<&str, String> = survivors
        .iter()
        .map(|s| (s.as_str(), eventual_position(facts(s))))
        .collect();
    let all: Vec<&str> = positions.values().map(String::as_str).collect();
    let lacking = gtid::not_reached(&positions[new.as_str()], &all.join(","));
    let catch_up_from = if lacking.is_empty() {
        None
    } else {
        let full = all.join(",");
        let ahead = survivors
            .iter()
            .find(|s| **s != new && gtid::not_reached(&positions[s.as_str()], &full).is_empty())
            .cloned();
        match ahead {
            Some(ahead) => {
                let ahead_facts = facts(&ahead);
                if !ahead_facts.log_bin || !ahead_facts.log_slave_updates {
                    plan.problem(Code::CatchUpSourceUnfit,
                        Some(&new),
                        format!(
                            "{new} is behind {ahead} (lacks {}) and {ahead} cannot serve it: it needs log_bin and log_slave_updates",
                            super::switchover::join(&lacking)
                        ),
                        Some(format!(
                            "choose {ahead} as primary, or enable {} on {ahead}",
                            crate::sql::Dialect::of_facts(ahead_facts).log_replica_updates_option()
                        )),
                    );
                }
                Some(ahead)
            }
            None => {
                plan.problem(
                    Code::NoCompleteReplica,
                    Some(&new),
                    format!(
                        "no surviving replica holds everything the others received (lacking {})",
                        super::switchover::join(&lacking)
                    ),
                    Some(
                        "replicas ahead in different GTID domains cannot be merged by a failover"
                            .to_string(),
                    ),
                );
                None
            }
        }
    };
    if candidate.flavor != Flavor::Mariadb {
        plan.problem(
            Code::UnsupportedFlavor,
            Some(&new),
            "failover is implemented for MariaDB only in this flipover version".to_string(),
            Some("promote by hand".to_string()),
        );
    }
    if plan.problems.len() > before {
        return None;
    }
    let replicas: Vec<String> = survivors.into_iter().filter(|s| *s != new).collect();
    let moved: BTreeSet<String> = replicas.iter().cloned().collect();
    let node = plan.add_step(Step::Failover(FailoverStep {
        old_primary: old.to_string(),
        new_primary: new,
        replicas,
        catch_up_from,
        drain_timeout_seconds: DRAIN_TIMEOUT_SECONDS,
    }));
    Some((node, moved))
}

/// Why `name` may not become primary (empty when it may).
fn unfit_reasons(topology: &Topology, observed: &Observed, name: &str) -> Vec<String> {
    let Some(facts) = observed.servers.get(name).and_then(|s| s.facts()) else {
        return vec!["it does not answer".to_string()];
    };
    let mut reasons = Vec::new();
    if !topology.servers()[name].promotable {
        reasons.push("it is `promotable = false`".to_string());
    }
    if !facts.log_bin || !facts.log_slave_updates {
        reasons.push("it needs log_bin and log_slave_updates".to_string());
    }
    let errant = own_errant(name, facts, observed);
    if !errant.is_empty() {
        reasons.push(format!(
            "it has transactions of its own no other server has (errant GTIDs: {})",
            super::switchover::join(&errant)
        ));
    }
    if facts
        .replica
        .as_ref()
        .is_some_and(|r| r.last_sql_error.is_some())
    {
        reasons.push("its replication stopped on an SQL error".to_string());
    }
    reasons
}

/// `--failover`: the best candidate to replace the dead primary, and the
/// topology that makes it the primary. Errors say why no server qualifies.
pub fn choose(
    topology: &Topology,
    observed: &Observed,
) -> Result<(Topology, Vec<String>), Vec<String>> {
    let tree = ObservedTree::from_observed(topology, observed);
    let Some(old) = dead_primary(topology, observed, &tree) else {
        return Err(vec![
            "--failover replaces a primary that does not answer, and every server's primary answers; \
             for a planned change of primary, edit the topology (switchover)"
                .to_string(),
        ]);
    };
    let survivors = survivors(topology, observed, &tree, &old);
    let full: String = survivors
        .iter()
        .filter_map(|s| observed.servers[s].facts().map(eventual_position))
        .collect::<Vec<_>>()
        .join(",");
    let mut rejected = Vec::new();
    let mut ranked: Vec<(usize, u64, u64, String)> = Vec::new();
    for name in &survivors {
        let reasons = unfit_reasons(topology, observed, name);
        if !reasons.is_empty() {
            rejected.push(format!("{name}: {}", reasons.join("; ")));
            continue;
        }
        let facts = observed.servers[name].facts().expect("survivors answer");
        let position = eventual_position(facts);
        let missing = gtid::not_reached(&position, &full).len();
        let total: u64 = gtid::parse_list(&position).iter().map(|g| g.seq).sum();
        let lag = facts
            .replica
            .as_ref()
            .and_then(|r| r.seconds_behind)
            .unwrap_or(u64::MAX);
        // Most advanced first (fewest domains behind, highest sequence), then least lag, then name.
        ranked.push((missing, u64::MAX - total, lag, name.clone()));
    }
    ranked.sort();
    let Some((_, _, _, best)) = ranked.into_iter().next() else {
        let mut reasons = vec![format!("no server qualifies to replace {old}")];
        if survivors.is_empty() {
            reasons.push(format!("none of {old}'s replicas answers"));
        }
        reasons.extend(rejected);
        return Err(reasons);
    };
    let position = eventual_position(observed.servers[&best].facts().expect("answers"));
    let mut explanation = vec![format!(
        "{best} replaces {old} as primary: reachable, promotable, the most advanced ({})",
        if position.is_empty() {
            "empty GTID position".to_string()
        } else {
            position
        }
    )];
    explanation.extend(rejected.into_iter().map(|r| format!("not chosen: {r}")));
    let (changed, edits) = with_primary(topology, &old, &best).map_err(|e| vec![e.to_string()])?;
    explanation.extend(edits);
    Ok((changed, explanation))
}

/// The observed primary when it is dead: the unreachable end of the chain
/// of sources of the servers that do answer.
pub fn dead_primary(
    topology: &Topology,
    observed: &Observed,
    tree: &ObservedTree,
) -> Option<String> {
    let mut dead: BTreeSet<String> = BTreeSet::new();
    for name in topology.servers().keys() {
        let mut current = name.clone();
        for _ in 0..topology.servers().len() {
            match tree.sources.get(&current) {
                Some(ObservedSource::Server(source)) => current = source.clone(),
                Some(ObservedSource::Unknown) if current != *name => {
                    dead.insert(current.clone());
                    break;
                }
                _ => break,
            }
        }
    }
    let _ = observed;
    // One dead primary at the top of the tree; anything else is not a failover.
    (dead.len() == 1).then(|| dead.into_iter().next().expect("one"))
}

/// `topology` with `new` as primary in place of `old`: `old`'s direct
/// replicas and `old` itself replicate from `new`. Returns the edits in
/// words. The changed topology is checked by the rules of the file, so the
/// change cannot break one.
pub fn with_primary(
    topology: &Topology,
    old: &str,
    new: &str,
) -> Result<(Topology, Vec<String>), crate::topology::TopologyError> {
    let mut sources = BTreeMap::new();
    let mut edits = Vec::new();
    for server in topology.servers().values() {
        let after = if server.name == new {
            None
        } else if server.name == old || server.source.as_deref() == Some(old) {
            Some(new.to_string())
        } else {
            server.source.clone()
        };
        if after == server.source {
            continue;
        }
        let shown = |source: &Option<String>| {
            source
                .as_ref()
                .map(|s| format!("source = \"{s}\""))
                .unwrap_or_else(|| "(primary)".to_string())
        };
        edits.push(format!(
            "topology change: [servers.{}] {} -> {}",
            server.name,
            shown(&server.source),
            shown(&after),
        ));
        sources.insert(server.name.clone(), after);
    }
    let changed =
        topology.with_sources(&sources, &format!("{new} as primary in place of {old}"))?;
    Ok((changed, edits))
}
