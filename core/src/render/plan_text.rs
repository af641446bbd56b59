//! The plan as text: observed vs desired tree (a diff), the steps in order
//! with what each will do, the problems, and the summary line.

use minijinja::{context, Environment};
use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use super::topology_tree;
use crate::facts::Observed;
use crate::planner::{Plan, Problem, StartPosition, Step};
use crate::topology::Topology;
use crate::view::{ObservedSource, ObservedTree};
use crate::wire::{Fingerprint, Note, PlanDocument};

const TEMPLATE: &str = include_str!("templates/plan.txt.j2");

#[derive(Serialize)]
struct DiffLine {
    sign: &'static str,
    text: String,
}

#[derive(Serialize)]
struct StepView {
    number: usize,
    title: String,
    destructive: bool,
    blocks_writes: bool,
    after: Vec<usize>,
    details: Vec<String>,
}

/// A problem or a warning.
#[derive(Serialize)]
struct NoteView {
    code: String,
    message: String,
    hint: Option<String>,
}

/// Renders `plan` for people. Deterministic: same inputs, same text.
pub fn render(topology: &Topology, observed: &Observed, plan: &Plan) -> String {
    // With `--failover`, the plan leads to the topology flipover chose.
    let topology = plan.desired(topology);
    let tree = ObservedTree::from_observed(topology, observed);
    let diff = diff_lines(
        &topology_tree::observed_lines(&tree),
        &topology_tree::desired_lines(topology),
    );

    let order = plan.ordered();
    let number_of = |node| {
        order
            .iter()
            .position(|n| *n == node)
            .map(|i| i + 1)
            .unwrap_or(0)
    };
    let steps: Vec<StepView> = order
        .iter()
        .map(|node| {
            let step = &plan.graph[*node];
            StepView {
                number: number_of(*node),
                title: step.title(),
                destructive: step.destructive(),
                blocks_writes: step.blocks_writes(),
                after: plan
                    .dependencies(*node)
                    .into_iter()
                    .map(number_of)
                    .collect(),
                details: details(topology, observed, step),
            }
        })
        .collect();
    let notes = |notes: &[Problem]| -> Vec<NoteView> {
        notes
            .iter()
            .map(|p| NoteView {
                code: p.code.as_str().to_string(),
                message: p.message.clone(),
                hint: p.hint.clone(),
            })
            .collect()
    };
    let text = render_view(
        diff,
        steps,
        notes(&plan.problems),
        notes(&plan.warnings),
        plan.durability.as_ref().map(|d| d.text.clone()),
        plan.summary().line(),
    );
    match &plan.failover_choice {
        Some(choice) => format!("{}\n{text}", failover_lines(&choice.explanation)),
        None => text,
    }
}

/// `--failover`'s choice, one `--failover: …` line each.
pub fn failover_lines(explanation: &[String]) -> String {
    explanation
        .iter()
        .map(|line| format!("--failover: {line}\n"))
        .collect()
}

/// Renders a saved plan document as `plan` printed it: the document holds
/// the observed tree (in its fingerprint), the desired one, and every
/// step's lines, so no server and no planner is needed.
pub fn render_document(document: &PlanDocument) -> String {
    let tree = observed_tree(&document.fingerprint);
    let diff = diff_lines(
        &topology_tree::observed_lines(&tree),
        &topology_tree::desired_lines_from_sources(&document.desired),
    );
    let steps = document
        .steps
        .iter()
        .map(|step| StepView {
            number: step.number,
            title: step.title.clone(),
            destructive: step.destructive,
            blocks_writes: step.blocks_writes,
            after: step.depends_on.clone(),
            details: step.details.clone(),
        })
        .collect();
    let notes = |notes: &[Note]| -> Vec<NoteView> {
        notes
            .iter()
            .map(|n| NoteView {
                code: n.code.clone(),
                message: n.message.clone(),
                hint: n.hint.clone(),
            })
            .collect()
    };
    let text = render_view(
        diff,
        steps,
        notes(&document.problems),
        notes(&document.warnings),
        document.durability.as_ref().map(|d| d.text.clone()),
        document.summary.line.clone(),
    );
    if document.failover_choice.is_empty() {
        text
    } else {
        format!("{}\n{text}", failover_lines(&document.failover_choice))
    }
}

/// The observed tree as a fingerprint records it: a source that names no
/// server of the fingerprint is an address outside the topology.
pub(crate) fn observed_tree(fingerprint: &Fingerprint) -> ObservedTree {
    let sources = fingerprint
        .servers
        .iter()
        .map(|(name, facts)| {
            let source = match &facts.source {
                _ if !facts.reachable => ObservedSource::Unknown,
                None => ObservedSource::None,
                Some(source) if fingerprint.servers.contains_key(source) => {
                    ObservedSource::Server(source.clone())
                }
                Some(address) => ObservedSource::Foreign(address.clone()),
            };
            (name.clone(), source)
        })
        .collect();
    ObservedTree { sources }
}

fn diff_lines(observed: &[String], desired: &[String]) -> Vec<DiffLine> {
    let observed_text = lines_text(observed);
    let desired_text = lines_text(desired);
    TextDiff::from_lines(&observed_text, &desired_text)
        .iter_all_changes()
        .map(|change| DiffLine {
            sign: match change.tag() {
                ChangeTag::Equal => " ",
                ChangeTag::Delete => "-",
                ChangeTag::Insert => "+",
            },
            text: change.value().trim_end_matches('\n').to_string(),
        })
        .collect()
}

fn render_view(
    diff: Vec<DiffLine>,
    steps: Vec<StepView>,
    problems: Vec<NoteView>,
    warnings: Vec<NoteView>,
    durability: Option<String>,
    summary: String,
) -> String {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template("plan", TEMPLATE)
        .expect("the plan template parses");
    env.get_template("plan")
        .expect("registered above")
        .render(context! { diff, durability, steps, problems, warnings, summary })
        .expect("the plan template renders")
}

fn switchover_details(observed: &Observed, switch: &crate::planner::SwitchoverStep) -> Vec<String> {
    let (old, new) = (&switch.old_primary, &switch.new_primary);
    let lag = switch
        .candidate_lag_seconds
        .map(|l| format!("{l} s"))
        .unwrap_or_else(|| "unknown".to_string());
    let facts = |name: &str| observed.servers.get(name).and_then(|s| s.facts());
    let old_position = facts(old)
        .and_then(|f| f.gtid.binlog_pos.clone())
        .unwrap_or_default();
    let new_position = facts(new)
        .and_then(|f| f.gtid.current_pos.clone())
        .unwrap_or_default();
    let lacking = crate::gtid::not_reached(&new_position, &old_position);
    let lacking = if lacking.is_empty() {
        "nothing".to_string()
    } else {
        lacking
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        format!(
            "check again: {new}'s lag <= {} s (now {lag}), no transaction on {old} older than {} s",
            switch.max_replica_lag, switch.max_transaction_age
        ),
        format!("fence {old}: read_only = ON, kill client connections (not replication, not flipover's)  <- writes blocked"),
        format!(
            "wait (at most {} s) until {new} has applied {old}'s last GTID; on timeout or error roll back: {old} writable again",
            switch.timeout_seconds
        ),
        format!("promote {new}: stop and reset its replication, read_only = OFF  <- writes resume"),
        format!("point {old} at {new} by GTID and start it (it stays read-only)"),
        format!("expected write-block: tens of milliseconds, plus the time {new} needs to apply its lag ({lag} now)"),
        format!("GTIDs lost if applied now: none ({new} still lacks {lacking} of {old}'s, and the switch waits for it)"),
    ]
}

fn failover_details(observed: &Observed, step: &crate::planner::FailoverStep) -> Vec<String> {
    use crate::gtid;
    use crate::planner::failover;
    let (old, new) = (&step.old_primary, &step.new_primary);
    let everyone: Vec<&String> = std::iter::once(new).chain(&step.replicas).collect();
    let positions: Vec<(String, String)> = everyone
        .iter()
        .map(|name| {
            let position = observed.servers[name.as_str()]
                .facts()
                .map(failover::eventual_position)
                .unwrap_or_default();
            (name.to_string(), position)
        })
        .collect();
    let full = positions
        .iter()
        .map(|(_, p)| p.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut lines = vec![format!(
        "{old} is unreachable: left alone (it rejoins, or is recloned, once it is back)"
    )];
    lines.push(format!(
        "stop the IO thread of {}; wait (at most {} s each) until each has applied what it received",
        everyone.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        step.drain_timeout_seconds
    ));
    for (name, position) in &positions {
        let lacks = gtid::not_reached(position, &full);
        let lacks = if lacks.is_empty() {
            "has everything the others received".to_string()
        } else {
            format!(
                "lacks {}",
                lacks
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        lines.push(format!(
            "  {name}: will hold {}; {lacks}",
            if position.is_empty() {
                "nothing"
            } else {
                position
            }
        ));
    }
    if let Some(ahead) = &step.catch_up_from {
        lines.push(format!(
            "{new} first catches up from {ahead} (temporary replication, then stopped)"
        ));
    }
    lines.push(format!(
        "promote {new}: stop and reset its replication, read_only = OFF  <- writes resume"
    ));
    if !step.replicas.is_empty() {
        lines.push(format!(
            "point {} at {new} by GTID, start, make read-only, verify threads",
            step.replicas.join(", ")
        ));
    }
    lines.push(format!(
        "GTIDs lost: none of what the replicas received; writes {old} committed that no replica received are lost, and show up as errant if {old} comes back"
    ));
    lines
}

fn lines_text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// What a step will do, in the order it does it, its hooks included (also
/// the plan JSON's `details`, so text and JSON never disagree).
pub(crate) fn details(topology: &Topology, observed: &Observed, step: &Step) -> Vec<String> {
    let (pre, post) = crate::planner::hooks::events_of(step);
    let hook_lines = |event: Option<crate::topology::HookEvent>, consequence: &str| {
        let Some(event) = event else {
            return Vec::new();
        };
        topology
            .hooks()
            .for_event(event)
            .iter()
            .map(|command| {
                format!(
                    "{event} hook: {} (timeout {} s); {consequence}",
                    command.display(),
                    command.timeout_seconds
                )
            })
            .collect()
    };
    let mut lines = hook_lines(pre, "if it fails, nothing is changed and the step fails");
    lines.extend(step_details(topology, observed, step));
    lines.extend(hook_lines(
        post,
        "if it fails, apply fails and the next plan runs it again",
    ));
    lines
}

fn step_details(topology: &Topology, observed: &Observed, step: &Step) -> Vec<String> {
    match step {
        Step::Clone(clone) => {
            let target = &topology.servers()[&clone.target];
            let size = clone
                .estimated_bytes
                .map(|b| format!(", about {}", crate::planner::human_bytes(b)))
                .unwrap_or_default();
            let mut lines = Vec::new();
            if let Some(risk) = &clone.data_at_risk {
                let schemas = if risk.schemas.is_empty() {
                    "no user schemas".to_string()
                } else {
                    format!("schemas {}", risk.schemas.join(", "))
                };
                let gtids = if risk.gtids.is_empty() {
                    format!("none (every GTID it has is on {})", clone.donor)
                } else {
                    risk.gtids.join(", ")
                };
                lines.push(format!("overwrites {}'s data: {schemas}", clone.target));
                lines.push(format!(
                    "GTIDs lost for good (not on {}): {gtids}",
                    clone.donor
                ));
            }
            if !clone.empty_schemas.is_empty() {
                lines.push(format!(
                    "replaces {}'s empty {} {} (no tables, views, routines or events: nothing is lost; checked again first)",
                    clone.target,
                    if clone.empty_schemas.len() == 1 { "schema" } else { "schemas" },
                    clone.empty_schemas.join(", ")
                ));
            }
            lines.push(format!(
                "stop mysqld on {}, move its datadir aside (kept until the copy is proven)",
                clone.target
            ));
            lines.push(format!(
                "{}'s agent streams a physical backup (mariadb-backup{size}) to {}:{}",
                clone.donor, target.host, target.stream_port
            ));
            lines.push(format!("prepare it and start mysqld on {}", clone.target));
            lines
        }
        Step::StartReplication(start) => {
            let source = &topology.servers()[&start.source];
            let from = match &start.position {
                StartPosition::FromClone => "from the backup's GTID position".to_string(),
                StartPosition::FromRestoredBackup { gtid } => format!(
                    "from {gtid}, the position of the backup it was restored from (an earlier clone whose replication never started)"
                ),
                StartPosition::Configured => "where its stopped replication left off".to_string(),
                StartPosition::FinishClone => "where it is (it runs from an earlier clone that was never confirmed: once it catches up, its agent discards the previous datadir)".to_string(),
                StartPosition::OwnPosition => format!(
                    "after everything it holds (it has nothing {} lacks)",
                    start.source
                ),
            };
            vec![
                format!(
                    "replicate from {} ({}) as {} by GTID, {from}",
                    start.source,
                    source.mysql_address(),
                    topology.access().repl_user
                ),
                format!(
                    "make {} read-only; verify both replication threads run and it catches up with {}",
                    start.target, start.source
                ),
            ]
        }
        Step::Rechain(rechain) => {
            let to = &topology.servers()[&rechain.to];
            vec![
                format!(
                    "stop replication on {}; wait until {} has applied all {} has",
                    rechain.target, rechain.to, rechain.target
                ),
                format!(
                    "point it at {} ({}) by GTID and start it; make it read-only",
                    rechain.to,
                    to.mysql_address()
                ),
                "verify both replication threads run (on failure it goes back to its old source)"
                    .to_string(),
            ]
        }
        Step::Switchover(switch) => switchover_details(observed, switch),
        Step::Failover(failover) => failover_details(observed, failover),
        Step::SetReadOnly(set) => vec![match observed
            .servers
            .get(&set.target)
            .and_then(|s| s.facts())
        {
            Some(facts) => crate::sql::Dialect::of_facts(facts).set_read_only(set.read_only),
            None => format!("read_only = {}", if set.read_only { "ON" } else { "OFF" }),
        }],
        Step::SetDurability(semi_sync) => semi_sync_details(semi_sync),
        Step::RunHook(again) => {
            let error = again.last_error.as_deref().unwrap_or("no reason recorded");
            let mut error_lines = error.lines();
            let mut lines = vec![format!(
                "last run, as the journal of the last apply has it: {}",
                error_lines.next().unwrap_or_default()
            )];
            lines.extend(error_lines.map(|line| format!("  | {line}")));
            let commands = topology.hooks().for_event(again.hook);
            if commands.is_empty() {
                lines.push(format!(
                    "no {} hook is configured now: nothing runs, the entry is cleared",
                    again.hook
                ));
            }
            lines.extend(commands.iter().map(|command| {
                format!(
                    "{} hook: {} (timeout {} s), with the original event (FLIPOVER_RERUN=1)",
                    again.hook,
                    command.display(),
                    command.timeout_seconds
                )
            }));
            lines
        }
    }
}

fn semi_sync_details(step: &crate::planner::SemiSyncStep) -> Vec<String> {
    let mut lines: Vec<String> = step
        .reasons
        .iter()
        .map(|(server, reason)| format!("now: {server}: {reason}"))
        .collect();
    if !step.replicas.is_empty() {
        lines.push(format!(
            "on {}: rpl_semi_sync_slave_enabled = ON, IO thread restarted where it ran without it",
            step.replicas.join(", ")
        ));
    }
    if !step.primary_side_off.is_empty() {
        lines.push(format!(
            "on {}: rpl_semi_sync_master_enabled = OFF",
            step.primary_side_off.join(", ")
        ));
    }
    if !step.enable_primary {
        lines.push(format!(
            "{} stays as it is: no replica of it answers to acknowledge",
            step.primary
        ));
        lines.push(
            "settings made with SET GLOBAL do not survive a restart: put the same settings in each server's my.cnf"
                .to_string(),
        );
        return lines;
    }
    lines.push(format!(
        "on {}: rpl_semi_sync_master_wait_point = AFTER_SYNC, rpl_semi_sync_master_timeout = {}, rpl_semi_sync_master_wait_no_slave = ON, rpl_semi_sync_master_enabled = ON",
        step.primary, step.timeout_ms
    ));
    lines.push(format!(
        "verify: {} reports Rpl_semi_sync_master_status = ON with Rpl_semi_sync_master_clients >= 1 (else its primary side goes back as it was)",
        step.primary
    ));
    lines.push(
        "settings made with SET GLOBAL do not survive a restart: put the same settings in each server's my.cnf"
            .to_string(),
    );
    lines
}
