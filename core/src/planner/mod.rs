//! The planner: a pure function from (Topology, Observed) to a [`Plan`].
//!
//! Architecture Invariant: no I/O, no clock, no randomness. The same inputs
//! give the same plan, byte for byte; steps are added in server-name order
//! and ordered deterministically (`Plan::ordered`).

mod codes;
mod durability;
pub mod failover;
pub mod hooks;
mod plan;
mod read_only;
mod replicas;
mod switchover;
pub use replicas::human_bytes;
pub mod step;

use std::collections::BTreeSet;

use crate::facts::Observed;
use crate::gtid;
use crate::topology::Topology;
use crate::view::{data_state, DataState, ObservedTree};
pub use codes::Code;
pub use plan::{DurabilityReport, FailoverChoice, Plan, Problem, Summary};
use replicas::{Transition, TransitionKind};
pub use step::{
    CloneStep, DataAtRisk, FailoverStep, RechainStep, RunHookStep, SemiSyncStep, SetReadOnlyStep,
    StartPosition, StartReplicationStep, Step, StepKind, SwitchoverStep,
};
use switchover::CurrentPrimary;

/// What the user asked for beyond the topology file.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Servers to rebuild by cloning even though they hold data (`--replace`).
    pub replace: BTreeSet<String>,
    /// The primary does not answer: flipover chooses its replacement (the
    /// most advanced promotable replica) instead of the topology file
    /// (`--failover`). The plan records the choice and the topology it
    /// implies.
    pub failover: bool,
}

/// Diffs the observed state against the topology into a plan.
pub fn plan(topology: &Topology, observed: &Observed, options: &PlanOptions) -> Plan {
    if !options.failover {
        return plan_towards(topology, observed, options);
    }
    match failover::choose(topology, observed) {
        Ok((chosen, explanation)) => {
            let mut plan = plan_towards(&chosen, observed, options);
            plan.failover_choice = Some(FailoverChoice {
                topology: chosen,
                explanation,
            });
            plan
        }
        Err(reasons) => {
            let mut plan = plan_towards(topology, observed, &PlanOptions::default());
            // What would have been planned without a replacement says
            // nothing useful: the refusal is the plan.
            plan.graph.clear();
            let mut reasons = reasons.into_iter();
            let first = reasons.next().unwrap_or_default();
            let rest: Vec<String> = reasons.collect();
            plan.problem(
                Code::NoFailoverCandidate,
                None,
                if rest.is_empty() {
                    format!("--failover: {first}")
                } else {
                    format!("--failover: {first}\n  {}", rest.join("\n  "))
                },
                Some(
                    "name the new primary in the topology file yourself, or bring the primary back"
                        .to_string(),
                ),
            );
            plan
        }
    }
}

/// The plan from the observed servers to `topology`.
fn plan_towards(topology: &Topology, observed: &Observed, options: &PlanOptions) -> Plan {
    let mut plan = Plan::default();
    let tree = ObservedTree::from_observed(topology, observed);
    report_unfinished_applies(observed, &mut plan);
    warn_plaintext_agents(topology, &mut plan);
    check_options(topology, options, &mut plan);
    let current = switchover::current_primary(topology, observed, &tree, &mut plan);
    // A primary being replaced is the switchover's or failover's business,
    // planned or refused.
    let outgoing_primary = match &current {
        CurrentPrimary::Upstream(old) | CurrentPrimary::Dead(old) => Some(old.clone()),
        _ => None,
    };
    let transition = match current {
        CurrentPrimary::Itself if !primary_holds_the_data(topology, observed, &mut plan) => None,
        CurrentPrimary::Itself if another_primary_is_ahead(topology, observed, &mut plan) => None,
        CurrentPrimary::Itself => Some(None),
        CurrentPrimary::Upstream(old) => {
            switchover::plan_switchover(topology, observed, &old, &mut plan).map(|node| {
                Some(Transition {
                    kind: TransitionKind::Switchover,
                    old,
                    node,
                    moved: Default::default(),
                })
            })
        }
        CurrentPrimary::Dead(old) => failover::plan_failover(
            topology, observed, &tree, &old, &mut plan,
        )
        .map(|(node, moved)| {
            Some(Transition {
                kind: TransitionKind::Failover,
                old,
                node,
                moved,
            })
        }),
        CurrentPrimary::Unknown => None,
    };
    // Without a usable primary (or with a refused change of primary) the
    // problems above say why; planning replicas around it would only repeat them.
    if let Some(transition) = transition {
        replicas::plan_replicas(topology, observed, &tree, options, transition, &mut plan);
        read_only::plan_read_only(topology, observed, outgoing_primary.as_deref(), &mut plan);
        durability::plan_durability(topology, observed, &mut plan);
    }
    plan.durability = Some(durability::report(topology, observed));
    // Last: whether a failed repoint is still worth running depends on the
    // change of primary planned above.
    hooks::plan_pending_hooks(topology, observed, &mut plan);
    plan
}

/// The SQL dialect of `name`, for the statements hints quote: from its own
/// facts, else from any server that answered (a cluster has one flavor).
pub(crate) fn dialect_of(observed: &Observed, name: &str) -> crate::sql::Dialect {
    observed
        .servers
        .get(name)
        .and_then(|s| s.facts())
        .or_else(|| observed.servers.values().find_map(|s| s.facts()))
        .map(crate::sql::Dialect::of_facts)
        .unwrap_or(crate::sql::Dialect::Mariadb)
}

/// Agents in plaintext can be driven by anyone who sees the token go by,
/// and a clone's stream carries every row: say so in every plan.
fn warn_plaintext_agents(topology: &Topology, plan: &mut Plan) {
    if topology.access().agent_tls == crate::topology::AgentTls::Insecure {
        plan.warning(Code::PlaintextAgents,
            None,
            "the agents are reached in plaintext (`insecure = true` in [access]): their API and \
             backup streams travel unencrypted and unauthenticated but for the token"
                .to_string(),
            Some(
                "make certificates with `flipover certs init`, start the agents with \
                 --tls-cert/--tls-key/--client-ca and set ca, client_cert and client_key in [access]"
                    .to_string(),
            ),
        );
    }
}

/// An apply whose journal never recorded its end was interrupted (killed,
/// or its machine lost). The plan starts from the servers as they are, so
/// finished steps are not redone; this says what happened.
fn report_unfinished_applies(observed: &Observed, plan: &mut Plan) {
    let latest: Vec<(&str, &crate::facts::JournalApply)> = observed
        .servers
        .values()
        .filter_map(|s| Some((s.name.as_str(), s.facts()?.last_apply.as_ref()?)))
        .collect();
    // A clone copies its donor's journal mid-apply: an apply counts as
    // finished when any server recorded its end.
    let finished: std::collections::BTreeSet<&str> = latest
        .iter()
        .filter(|(_, a)| a.finished)
        .map(|(_, a)| a.apply_id.as_str())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for (server, apply) in latest {
        if finished.contains(apply.apply_id.as_str()) || !seen.insert(apply.apply_id.clone()) {
            continue;
        }
        let done: Vec<&str> = apply
            .entries
            .iter()
            .filter(|e| e.state == "succeeded")
            .map(|e| e.step.as_str())
            .collect();
        let open: Vec<&str> = apply
            .entries
            .iter()
            .filter(|e| e.state == "started" && e.step != "apply")
            .filter(|e| {
                !apply
                    .entries
                    .iter()
                    .any(|f| f.step == e.step && f.state != "started")
            })
            .map(|e| e.step.as_str())
            .collect();
        plan.warning(Code::InterruptedApply,
            None,
            format!(
                "an apply by {} started {} did not finish (journal on {}): done: {}; interrupted: {}",
                apply.operator,
                apply.started_at,
                server,
                if done.is_empty() { "nothing".to_string() } else { done.join(", ") },
                if open.is_empty() { "between steps".to_string() } else { open.join(", ") }
            ),
            Some("this plan starts from the servers as they are now: what was done is not redone".to_string()),
        );
    }
}

/// A desired primary that is empty while another server holds data would
/// have the cluster rebuilt from nothing: refused.
fn primary_holds_the_data(topology: &Topology, observed: &Observed, plan: &mut Plan) -> bool {
    let primary = &topology.primary().name;
    if observed.servers.get(primary).map(data_state) != Some(DataState::Empty) {
        return true;
    }
    let with_data: Vec<&str> = observed
        .servers
        .values()
        .filter(|s| matches!(data_state(s), DataState::HasData { .. }))
        .map(|s| s.name.as_str())
        .collect();
    if with_data.is_empty() {
        return true;
    }
    plan.problem(Code::EmptyPrimary,
        Some(primary),
        format!(
            "{primary} is to be the primary but holds no data, while {} do",
            with_data.join(", ")
        ),
        Some(format!(
            "make {primary} a replica first (it is then cloned), and switch over to it in a second change"
        )),
    );
    false
}

/// A switchover interrupted after the promotion (or a promotion by hand)
/// leaves another server writable, replicating from nobody, with writes the
/// desired primary lacks. Making the desired primary writable then would
/// fork the data, and recloning the other would lose those writes: refused,
/// with the way forward.
fn another_primary_is_ahead(topology: &Topology, observed: &Observed, plan: &mut Plan) -> bool {
    let primary = &topology.primary().name;
    let Some(desired) = observed.servers.get(primary).and_then(|s| s.facts()) else {
        return false;
    };
    // A writable desired primary took over already (a former primary that
    // came back with writes of its own is the replicas' business).
    if !desired.read_only {
        return false;
    }
    let known = desired.known_gtid_state();
    let mut found = false;
    for server in observed.servers.values().filter(|s| s.name != *primary) {
        let Some(facts) = server.facts() else {
            continue;
        };
        if facts.read_only || facts.replica.is_some() || facts.flavor != desired.flavor {
            continue;
        }
        let ahead = gtid::not_covered_by(
            facts.gtid.binlog_state.as_deref().unwrap_or_default(),
            &known,
        );
        if ahead.is_empty() {
            continue;
        }
        let other = &server.name;
        plan.problem(Code::AnotherPrimaryAhead,
            Some(primary),
            format!(
                "{other} takes writes and holds transactions {primary} lacks ({}): it was promoted \
                 (an interrupted switchover?), so {primary} is not the primary any more",
                switchover::join(&ahead)
            ),
            Some(format!(
                "name {other} as primary in the topology (the next plan makes {primary} its replica), \
                 then switch over to {primary} in a second change"
            )),
        );
        found = true;
    }
    found
}

fn check_options(topology: &Topology, options: &PlanOptions, plan: &mut Plan) {
    for name in &options.replace {
        if !topology.servers().contains_key(name) {
            plan.problem(
                Code::UnknownServer,
                None,
                format!("--replace {name}: no server of that name in the topology"),
                Some(format!(
                    "the servers are: {}",
                    topology
                        .servers()
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        } else if topology.servers()[name].source.is_none() {
            plan.problem(
                Code::ReplacePrimary,
                Some(name),
                format!("--replace {name}: {name} is the primary; a clone only builds replicas"),
                Some("make another server the primary first".to_string()),
            );
        }
    }
}
