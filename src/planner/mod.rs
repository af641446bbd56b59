//! The planner: a pure function from (Topology, Observed) to a [`Plan`].
//!
//! Architecture Invariant: no I/O, no clock, no randomness. The same inputs
//! give the same plan, byte for byte; steps are added in server-name order
//! and ordered deterministically (`Plan::ordered`).

mod data;
pub mod gtid;
mod plan;
mod replicas;
pub use replicas::human_bytes;
pub mod step;
pub mod tree;

use std::collections::BTreeSet;

use crate::observe::Observed;
use crate::topology::Topology;
pub use data::{data_state, DataState};
pub use plan::{Plan, Problem, Summary};
pub use step::{CloneStep, DataAtRisk, StartPosition, StartReplicationStep, Step, StepKind};
use tree::{ObservedSource, ObservedTree};

/// What the user asked for beyond the topology file.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Servers to rebuild by cloning even though they hold data (`--replace`).
    pub replace: BTreeSet<String>,
}

/// Diffs the observed state against the topology into a plan.
pub fn plan(topology: &Topology, observed: &Observed, options: &PlanOptions) -> Plan {
    let mut plan = Plan::default();
    let tree = ObservedTree::from_observed(topology, observed);
    check_options(topology, options, &mut plan);
    let primary_usable = check_primary(topology, observed, &tree, &mut plan);
    replicas::plan_replicas(
        topology,
        observed,
        &tree,
        options,
        primary_usable,
        &mut plan,
    );
    plan
}

fn check_options(topology: &Topology, options: &PlanOptions, plan: &mut Plan) {
    for name in &options.replace {
        if !topology.servers.contains_key(name) {
            plan.problem(
                None,
                format!("--replace {name}: no server of that name in the topology"),
                Some(format!(
                    "the servers are: {}",
                    topology
                        .servers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        } else if topology.servers[name].source.is_none() {
            plan.problem(
                Some(name),
                format!("--replace {name}: {name} is the primary; a clone only builds replicas"),
                Some("make another server the primary first".to_string()),
            );
        }
    }
}

/// The desired primary must be up and not replicating; switchover and
/// failover, which change that, arrive with later issues. Returns whether
/// replicas can be built from it.
fn check_primary(
    topology: &Topology,
    observed: &Observed,
    tree: &ObservedTree,
    plan: &mut Plan,
) -> bool {
    let primary = topology.primary();
    let Some(server) = observed.servers.get(&primary.name) else {
        plan.problem(
            Some(&primary.name),
            format!("{} is not in the observed state", primary.name),
            Some("observe again with the same topology file".to_string()),
        );
        return false;
    };
    let problem = match tree.sources.get(&primary.name) {
        Some(ObservedSource::None) => return true,
        Some(ObservedSource::Server(source)) => (
            format!("{} is to be the primary but replicates from {source}", primary.name),
            "planned switchover is not supported by this flipover version yet; make the topology name the current primary",
        ),
        Some(ObservedSource::Foreign(address)) => (
            format!(
                "{} is to be the primary but replicates from {address}, which is not in the topology",
                primary.name
            ),
            "stop that replication by hand or add the source to the topology",
        ),
        Some(ObservedSource::Unknown) | None => (
            format!(
                "primary {} is unreachable: {}",
                primary.name,
                server.mysql.error.as_deref().unwrap_or("no answer")
            ),
            "failover is not supported by this flipover version yet; bring the primary back",
        ),
    };
    plan.problem(Some(&primary.name), problem.0, Some(problem.1.to_string()));
    // A primary that answers can still be a donor and source for replicas.
    server.mysql.facts.is_some()
}
