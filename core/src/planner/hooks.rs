//! Hooks in the plan: which `[hooks]` run around each step, the event they
//! are told about, and the post hooks a previous apply left failed (read
//! from the journal in the observed state), planned as `run-hook` steps.
//!
//! Pure like the rest of the planner: the journal is part of `Observed`.

use super::Code;
use std::collections::BTreeMap;

use super::plan::Plan;
use super::step::{RunHookStep, Step};
use crate::facts::{JournalApply, Observed};
use crate::topology::{HookEvent, Topology};
use crate::wire::{
    HookEventDocument, HookJournalDetail, HookServer, HookStep, HOOK_EVENT_FORMAT_VERSION,
};

/// The prefix of a hook's entries in the journal: `hook post_switchover for switchover db2`.
pub const JOURNAL_PREFIX: &str = "hook ";

/// The hooks around a step: the one before it (which can veto it) and the
/// one after it.
pub fn events_of(step: &Step) -> (Option<HookEvent>, Option<HookEvent>) {
    match step {
        Step::Switchover(_) => (
            Some(HookEvent::PreSwitchover),
            Some(HookEvent::PostSwitchover),
        ),
        Step::Failover(_) => (Some(HookEvent::PreFailover), Some(HookEvent::PostFailover)),
        Step::Clone(_) => (None, Some(HookEvent::PostClone)),
        _ => (None, None),
    }
}

/// The event a hook of `step` is told about (its stdin JSON and environment).
pub fn event_document(topology: &Topology, step: &Step, hook: HookEvent) -> HookEventDocument {
    let server = |name: &str| -> Option<HookServer> {
        let server = topology.servers().get(name)?;
        Some(HookServer {
            name: server.name.clone(),
            host: server.host.clone(),
            port: server.port,
        })
    };
    let (mut old_primary, mut new_primary, mut target, mut donor) = (None, None, None, None);
    match step {
        Step::Switchover(s) => {
            old_primary = server(&s.old_primary);
            new_primary = server(&s.new_primary);
        }
        Step::Failover(s) => {
            old_primary = server(&s.old_primary);
            new_primary = server(&s.new_primary);
        }
        Step::Clone(s) => {
            target = server(&s.target);
            donor = server(&s.donor);
        }
        _ => target = server(step.target()),
    }
    HookEventDocument {
        format_version: HOOK_EVENT_FORMAT_VERSION,
        hook: hook.as_str().to_string(),
        cluster: topology.cluster().name.clone(),
        step: HookStep {
            kind: step.kind().as_str().to_string(),
            id: step.id(),
            title: step.title(),
        },
        old_primary,
        new_primary,
        target,
        donor,
        rerun: false,
    }
}

/// Post hooks that failed (or never ended) in the latest apply: each becomes
/// a `run-hook` step, so a failed repoint is never forgotten. Pre hooks are
/// not carried over: their step failed before changing anything and is
/// planned again with its hook.
///
/// A failed `post_switchover`/`post_failover` is about a primary: it runs
/// again only while that server is still the primary wanted and no other
/// change of primary is planned. Otherwise running it would point clients
/// at a server that no longer is (or soon will not be) the primary; the
/// plan says so in a warning instead, and the new change's own post hook
/// does the job.
pub(super) fn plan_pending_hooks(topology: &Topology, observed: &Observed, plan: &mut Plan) {
    // Every server journals the same apply; a server that was down during a
    // later one still shows an older one, so the latest apply wins. A clone
    // target holds a copy of its donor's journal from mid-apply: of the
    // copies of one apply, the longest is the whole story.
    let Some(latest) = observed
        .servers
        .values()
        .filter_map(|s| s.facts()?.last_apply.as_ref())
        .max_by(|a, b| {
            (&a.started_at, &a.apply_id, a.entries.len()).cmp(&(
                &b.started_at,
                &b.apply_id,
                b.entries.len(),
            ))
        })
    else {
        return;
    };
    for (event, error) in pending(latest).into_values() {
        let Some(hook) = HookEvent::from_name(&event.hook).filter(|h| !h.is_pre()) else {
            continue;
        };
        if let Some(new_primary) = &event.new_primary {
            let desired = &topology.primary().name;
            let moving = plan.graph.node_weights().find_map(|step| match step {
                Step::Switchover(s) => Some(s.new_primary.clone()),
                Step::Failover(s) => Some(s.new_primary.clone()),
                _ => None,
            });
            let superseded = match &moving {
                Some(next) => Some(format!("this plan makes {next} the primary")),
                None if &new_primary.name != desired => {
                    Some(format!("the topology now wants {desired} as the primary"))
                }
                None => None,
            };
            if let Some(why) = superseded {
                plan.warning(Code::PostHookSuperseded,
                    Some(&new_primary.name),
                    format!(
                        "the {} hook of the last apply failed (after {}), and is not run again: {why}",
                        event.hook, event.step.title
                    ),
                    Some(
                        "make sure clients reach the right primary: the failed hook never did its job"
                            .to_string(),
                    ),
                );
                continue;
            }
        }
        let target = [&event.new_primary, &event.target]
            .into_iter()
            .flatten()
            .next()
            .map_or_else(|| event.cluster.clone(), |s| s.name.clone());
        plan.add_step(Step::RunHook(RunHookStep {
            hook,
            target,
            event: Box::new(HookEventDocument {
                rerun: true,
                ..event
            }),
            last_error: error,
        }));
    }
}

/// Per hook (event and step), its last journal state when that is not
/// `succeeded`, with the event and the error.
fn pending(apply: &JournalApply) -> BTreeMap<String, (HookEventDocument, Option<String>)> {
    let mut last: BTreeMap<String, (String, HookEventDocument, Option<String>)> = BTreeMap::new();
    for entry in &apply.entries {
        if !entry.step.starts_with(JOURNAL_PREFIX) {
            continue;
        }
        let Some(detail) = entry
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<HookJournalDetail>(d).ok())
        else {
            continue;
        };
        last.insert(
            detail.event.key(),
            (entry.state.clone(), detail.event, detail.error),
        );
    }
    last.into_iter()
        .filter(|(_, (state, _, _))| state != "succeeded")
        .map(|(key, (state, event, error))| {
            let error = error.or_else(|| {
                (state == "started").then(|| "the apply ended before the hook did".to_string())
            });
            (key, (event, error))
        })
        .collect()
}
