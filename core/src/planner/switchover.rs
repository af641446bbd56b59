//! Planned switchover: when the desired primary is not the observed one and
//! the observed one is alive.

use super::step::{Step, SwitchoverStep};
use super::Code;
use super::Plan;
use crate::facts::{Flavor, Observed};
use crate::gtid;
use crate::topology::Topology;
use crate::view::{ObservedSource, ObservedTree};

/// Where the desired primary gets its data from now.
pub enum CurrentPrimary {
    /// It is the primary already.
    Itself,
    /// It replicates (directly or down a chain) from this server, the
    /// observed primary.
    Upstream(String),
    /// It replicates from this server, which does not answer: a failover.
    Dead(String),
    /// The chain up from it cannot be followed: the problem is recorded.
    Unknown,
}

/// Follows the desired primary's observed sources up to the observed primary.
pub fn current_primary(
    topology: &Topology,
    observed: &Observed,
    tree: &ObservedTree,
    plan: &mut Plan,
) -> CurrentPrimary {
    let desired = &topology.primary().name;
    let mut current = desired.clone();
    for _ in 0..=topology.servers().len() {
        match tree.sources.get(&current) {
            Some(ObservedSource::None) if current == *desired => return CurrentPrimary::Itself,
            Some(ObservedSource::None) => return CurrentPrimary::Upstream(current),
            Some(ObservedSource::Server(source)) => current = source.clone(),
            Some(ObservedSource::Foreign(address)) => {
                plan.problem(
                    Code::ForeignSource,
                    Some(&current),
                    format!("{current} replicates from {address}, which is not in the topology"),
                    Some(
                        "add that server to the topology, or stop that replication by hand"
                            .to_string(),
                    ),
                );
                return CurrentPrimary::Unknown;
            }
            Some(ObservedSource::Unknown) | None if current != *desired => {
                return CurrentPrimary::Dead(current);
            }
            Some(ObservedSource::Unknown) | None => {
                let error = observed
                    .servers
                    .get(&current)
                    .and_then(|s| s.mysql.error.clone())
                    .unwrap_or_else(|| "no answer".to_string());
                let hint = format!(
                    "bring {current} back, or name another primary in the topology \
                     (`flipover plan --failover` proposes the best replacement)"
                );
                plan.problem(
                    Code::PrimaryUnreachable,
                    Some(&current),
                    format!("{current} is unreachable: {error}"),
                    Some(hint),
                );
                return CurrentPrimary::Unknown;
            }
        }
    }
    plan.problem(
        Code::ReplicationCycle,
        Some(desired),
        format!("{desired} replicates in a cycle: no server of the cycle is a primary"),
        Some(format!(
            "break the cycle by hand (`{}` on one of them)",
            super::dialect_of(observed, desired).reset_replica_all()
        )),
    );
    CurrentPrimary::Unknown
}

/// Checks a switchover from `old` to the desired primary and adds its step.
/// Returns the step, or `None` (with problems recorded) when it cannot run.
pub fn plan_switchover(
    topology: &Topology,
    observed: &Observed,
    old: &str,
    plan: &mut Plan,
) -> Option<petgraph::graph::NodeIndex> {
    let new = &topology.primary().name;
    let cluster = &topology.cluster();
    let before = plan.problems.len();
    let candidate = observed.servers[new.as_str()].facts();
    let old_facts = observed.servers[old].facts();
    let (Some(candidate), Some(old_facts)) = (candidate, old_facts) else {
        // Unreachable servers were reported while finding the primary.
        return None;
    };
    let dialect = crate::sql::Dialect::of_facts(candidate);
    let mut problem = |code: Code, message: String, hint: &str| {
        plan.problem(code, Some(new), message, Some(hint.to_string()));
    };
    if !topology.servers()[new.as_str()].promotable {
        problem(
            Code::CandidateNotPromotable,
            format!("{new} is `promotable = false`: it is never made primary"),
            "choose a promotable server as primary, or change its `promotable` setting",
        );
    }
    if !candidate.log_bin || !candidate.log_slave_updates {
        problem(
Code::CandidateWithoutBinlog,
            format!(
                "candidate {new} needs binary logging and log_slave_updates (log_bin {}, log_slave_updates {})",
                on_off(candidate.log_bin),
                on_off(candidate.log_slave_updates)
            ),
            &format!(
                "enable log-bin and {} in its my.cnf (restart needed)",
                dialect.log_replica_updates_option()
            ),
        );
    }
    if candidate.flavor != old_facts.flavor {
        problem(
            Code::MixedFlavors,
            format!("{new} and {old} run different flavors"),
            "flipover switches over between servers of one flavor only",
        );
    }
    match candidate.replica.as_ref() {
        Some(replica) if replica.healthy() => match replica.seconds_behind {
            Some(lag) if lag <= cluster.max_replica_lag => {}
            Some(lag) => problem(
                Code::CandidateLagging,
                format!(
                    "candidate {new} lags {lag} s behind its source (limit {} s)",
                    cluster.max_replica_lag
                ),
                "wait until it catches up, or raise `max_replica_lag` in [cluster]",
            ),
            None => problem(
                Code::CandidateLagUnknown,
                format!("candidate {new}'s lag is unknown"),
                &format!(
                    "check its replication (`{}`)",
                    dialect.replica_status_query()
                ),
            ),
        },
        _ => problem(
            Code::CandidateReplicationStopped,
            format!("candidate {new}'s replication threads are not both running"),
            "fix its replication first: it must be able to catch up with the old primary",
        ),
    }
    if old_facts.longest_transaction_seconds > cluster.max_transaction_age {
        problem(
Code::LongTransaction,
            format!(
                "{old} has a transaction open for {} s (limit {} s): a switchover would wait for it with writes blocked",
                old_facts.longest_transaction_seconds, cluster.max_transaction_age
            ),
            "let it finish or kill it, or raise `max_transaction_age` in [cluster]",
        );
    }
    if candidate.flavor == Flavor::Mariadb {
        // GTIDs the old primary wrote itself are not errant, even if the
        // candidate was observed after the old primary wrote more.
        let errant: Vec<_> = gtid::not_covered_by(
            candidate.gtid.binlog_state.as_deref().unwrap_or_default(),
            &old_facts.known_gtid_state(),
        )
        .into_iter()
        .filter(|g| g.server_id != old_facts.server_id)
        .collect();
        if !errant.is_empty() {
            problem(
Code::ErrantGtid,
                format!(
                    "candidate {new} has transactions {old} never had (errant GTIDs: {})",
                    join(&errant)
                ),
                "these writes were made on the replica directly; promoting it would impose them on everyone. \
                 Reclone it (`--replace`) or choose another candidate",
            );
        }
    }
    let old_has_replicas = topology
        .servers()
        .values()
        .any(|s| s.source.as_deref() == Some(old));
    if old_has_replicas && !old_facts.log_slave_updates {
        problem(
Code::OldPrimaryWithoutLogReplicaUpdates,
            format!("{old} keeps replicas under it but has log_slave_updates off: they would stop receiving writes"),
            &format!(
                "enable {} on it, or move its replicas in the topology",
                dialect.log_replica_updates_option()
            ),
        );
    }
    if plan.problems.len() > before {
        return None;
    }
    let step = plan.add_step(Step::Switchover(SwitchoverStep {
        old_primary: old.to_string(),
        new_primary: new.clone(),
        candidate_lag_seconds: candidate.replica.as_ref().and_then(|r| r.seconds_behind),
        max_replica_lag: cluster.max_replica_lag,
        max_transaction_age: cluster.max_transaction_age,
        timeout_seconds: cluster.switchover_timeout,
    }));
    Some(step)
}

fn on_off(value: bool) -> &'static str {
    if value {
        "on"
    } else {
        "off"
    }
}

pub fn join(gtids: &[gtid::MariadbGtid]) -> String {
    gtids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
