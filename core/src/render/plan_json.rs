//! The plan as a [`PlanDocument`]: the versioned wire form of a plan, for
//! `plan --json`, saved plans and `show`.

use crate::facts::Observed;
use crate::planner::{Plan, Problem, Step};
use crate::topology::Topology;
use crate::wire::{
    sha256_hex, DurabilityDocument, Fingerprint, HookDocument, Note, PlanDocument,
    PlanOptionsDocument, StepDocument, SummaryDocument, TopologySource, PLAN_FORMAT_VERSION,
};

/// The plan document of `plan`, made for `topology` (whose file text is
/// `topology_text`, named `file_name`) from `observed`. Deterministic: the
/// same inputs give the same document, and so the same JSON bytes.
pub fn document(
    topology: &Topology,
    topology_text: &str,
    file_name: &str,
    observed: &Observed,
    plan: &Plan,
    options: &PlanOptionsDocument,
) -> PlanDocument {
    // With `--failover`, the plan leads to the topology flipover chose.
    let topology = plan.desired(topology);
    let order = plan.ordered();
    let number_of = |node| {
        order
            .iter()
            .position(|n| *n == node)
            .map(|i| i + 1)
            .unwrap_or(0)
    };
    let steps = order
        .iter()
        .map(|node| {
            let step = &plan.graph[*node];
            StepDocument {
                number: number_of(*node),
                id: step.id(),
                kind: step.kind().as_str().to_string(),
                target: step.target().to_string(),
                servers: step.servers().into_iter().map(str::to_string).collect(),
                title: step.title(),
                // The same order as the text's "(after …)".
                depends_on: plan
                    .dependencies(*node)
                    .into_iter()
                    .map(number_of)
                    .collect(),
                destructive: step.destructive(),
                blocks_writes: step.blocks_writes(),
                write_block_estimate_ms: write_block_estimate_ms(step),
                gtids_at_risk: gtids_at_risk(step),
                details: super::plan_text::details(topology, observed, step),
                hooks: hooks(topology, step),
            }
        })
        .collect();
    let summary = plan.summary();
    PlanDocument {
        format_version: PLAN_FORMAT_VERSION,
        flipover_version: env!("CARGO_PKG_VERSION").to_string(),
        cluster: topology.cluster().name.clone(),
        topology: TopologySource {
            file_name: file_name.to_string(),
            text: topology_text.to_string(),
            sha256: sha256_hex(topology_text.as_bytes()),
        },
        desired: topology
            .servers()
            .values()
            .map(|s| (s.name.clone(), s.source.clone()))
            .collect(),
        fingerprint: Fingerprint::of(topology, observed),
        options: options.clone(),
        steps,
        problems: notes(&plan.problems),
        warnings: notes(&plan.warnings),
        summary: SummaryDocument {
            clone: summary.clone,
            rechain: summary.rechain,
            switchover: summary.switchover,
            failover: summary.failover,
            start_replication: summary.start_replication,
            set_read_only: summary.set_read_only,
            set_durability: summary.set_durability,
            run_hook: summary.run_hook,
            destructive: summary.destructive,
            line: summary.line(),
        },
        durability: plan.durability.as_ref().map(|d| DurabilityDocument {
            mode: d.mode.as_str().to_string(),
            text: d.text.clone(),
        }),
        changes: !plan.is_empty(),
        failover_choice: plan
            .failover_choice
            .as_ref()
            .map(|c| c.explanation.clone())
            .unwrap_or_default(),
        document_sha256: String::new(),
    }
    .seal()
}

/// A switchover blocks writes for tens of milliseconds plus the time the
/// candidate needs to apply its lag; a failover's primary is already gone,
/// so there is nothing to estimate; nothing else blocks writes.
fn write_block_estimate_ms(step: &Step) -> Option<u64> {
    match step {
        Step::Switchover(switch) => switch.candidate_lag_seconds.map(|lag| 50 + 1000 * lag),
        Step::Failover(_) => None,
        _ => Some(0),
    }
}

/// What only the target holds and the step throws away. A switchover waits
/// for the candidate to have everything, and a failover keeps whatever any
/// replica received (its details say what the dead primary alone had).
fn gtids_at_risk(step: &Step) -> Vec<String> {
    match step {
        Step::Clone(clone) => clone
            .data_at_risk
            .as_ref()
            .map(|risk| risk.gtids.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The hook commands around a step, in the order they run.
fn hooks(topology: &Topology, step: &Step) -> Vec<HookDocument> {
    let (pre, post) = match step {
        Step::RunHook(again) => (None, Some(again.hook)),
        other => crate::planner::hooks::events_of(other),
    };
    [pre, post]
        .into_iter()
        .flatten()
        .flat_map(|event| {
            topology
                .hooks()
                .for_event(event)
                .iter()
                .map(move |command| HookDocument {
                    hook: event.as_str().to_string(),
                    command: command.argv.clone(),
                    timeout_seconds: command.timeout_seconds,
                })
        })
        .collect()
}

/// The plan's problems or warnings as the documents carry them.
pub fn notes(problems: &[Problem]) -> Vec<Note> {
    problems
        .iter()
        .map(|p| Note {
            code: p.code.as_str().to_string(),
            server: p.server.clone(),
            message: p.message.clone(),
            hint: p.hint.clone(),
        })
        .collect()
}
