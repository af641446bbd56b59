//! Read-only hygiene: the primary writable, every replica read-only. Servers
//! that another step already sets up are left to that step.

use std::collections::BTreeSet;

use super::step::{SetReadOnlyStep, Step};
use super::Plan;
use crate::facts::Observed;
use crate::topology::Topology;

pub fn plan_read_only(
    topology: &Topology,
    observed: &Observed,
    outgoing_primary: Option<&str>,
    plan: &mut Plan,
) {
    let touched: BTreeSet<String> = plan
        .graph
        .node_weights()
        .flat_map(|step| step.servers().into_iter().map(str::to_string))
        .collect();
    // Servers with problems stay as they are: the problem comes first.
    let troubled: BTreeSet<String> = plan
        .problems
        .iter()
        .filter_map(|p| p.server.clone())
        .collect();
    for server in topology.servers().values() {
        if touched.contains(&server.name)
            || troubled.contains(&server.name)
            || outgoing_primary == Some(server.name.as_str())
        {
            continue;
        }
        let Some(facts) = observed.servers.get(&server.name).and_then(|s| s.facts()) else {
            continue;
        };
        let want_read_only = server.source.is_some();
        if facts.read_only != want_read_only {
            plan.add_step(Step::SetReadOnly(SetReadOnlyStep {
                target: server.name.clone(),
                read_only: want_read_only,
            }));
        }
    }
}
