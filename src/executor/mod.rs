//! The executor: runs a Plan's steps against servers and agents.
//!
//! Architecture Invariant: only the executor (and the agents it drives)
//! changes anything on a server, and each step re-checks what it depends on
//! when it runs, not when it was planned. Steps run as soon as the steps they
//! depend on have succeeded, concurrently where the DAG allows. A failed step
//! skips the steps that depend on it; independent branches still finish, so
//! a clone that worked is not left without its replication.

pub mod checkpoint;
mod clone;
mod durability;
mod error;
mod events;
mod failover;
mod hooks;
pub mod journal;
pub mod lock;
mod rechain;
mod replication;
mod switchover;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use tokio::task::JoinSet;

use crate::planner::{Plan, Step};
use crate::topology::Topology;
pub use error::{Failure, ServersLeft, StepError};
pub use events::{Event, EventSink};
pub use hooks::HookError;

/// Limits for applying a plan.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Connecting to a server or an agent.
    pub connect_timeout: Duration,
    /// Checking that a server is (still) unreachable: the timeout observation
    /// used to find it unreachable, so a silent host costs no more than that.
    pub probe_timeout: Duration,
    /// How long a new replica may take to catch up with its source.
    pub catch_up_timeout: Duration,
    /// How long a clone may take from start to mysqld running on the copy.
    pub clone_timeout: Duration,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            connect_timeout: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(2),
            catch_up_timeout: Duration::from_secs(600),
            clone_timeout: Duration::from_secs(24 * 3600),
        }
    }
}

/// What happened to each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded {
        elapsed: Duration,
    },
    Failed {
        error: StepError,
    },
    /// Not started: a step it depends on failed.
    Skipped,
}

#[derive(Debug, Clone)]
pub struct ApplyReport {
    /// Per step, in plan order: its number (1-based), title and outcome.
    pub steps: Vec<(usize, String, Outcome)>,
    /// Post hooks that failed after their step succeeded, by step number:
    /// the servers changed, but what the hook does (a proxy repoint) did not
    /// happen. The next plan runs them again.
    pub hook_failures: Vec<(usize, String, HookError)>,
    pub elapsed: Duration,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.hook_failures.is_empty()
            && self
                .steps
                .iter()
                .all(|(_, _, o)| matches!(o, Outcome::Succeeded { .. }))
    }
}

/// What steps share while a plan runs.
pub(crate) struct Context {
    pub topology: Topology,
    pub options: ExecutorOptions,
    pub events: EventSink,
    /// Results of finished clones, by target, for the replication step after.
    pub clones: Mutex<BTreeMap<String, clone::CloneOutcome>>,
    /// Where step starts and ends are recorded, when the apply holds the lock.
    pub journal: Option<Arc<journal::Journal>>,
    /// One backup at a time per donor: a server runs one backup stage at a
    /// time, and two streams would only share its disk and network.
    pub donors: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Post hooks that failed, by step number.
    pub hook_failures: Mutex<Vec<(usize, String, HookError)>>,
}

/// Runs every step of `plan`. Never panics on a failed step: the report says
/// what happened to each.
pub async fn apply(
    topology: &Topology,
    plan: &Plan,
    options: &ExecutorOptions,
    events: EventSink,
    journal: Option<Arc<journal::Journal>>,
) -> ApplyReport {
    let started = Instant::now();
    let order = plan.ordered();
    let number = |node: NodeIndex| order.iter().position(|n| *n == node).unwrap() + 1;
    let context = Arc::new(Context {
        topology: topology.clone(),
        options: options.clone(),
        events,
        clones: Mutex::new(BTreeMap::new()),
        journal,
        donors: Mutex::new(BTreeMap::new()),
        hook_failures: Mutex::new(Vec::new()),
    });

    let mut outcomes: BTreeMap<NodeIndex, Outcome> = BTreeMap::new();
    let mut running: JoinSet<(NodeIndex, Result<Duration, StepError>)> = JoinSet::new();
    let mut started_nodes = std::collections::BTreeSet::new();
    loop {
        for node in &order {
            let ready = !started_nodes.contains(node)
                && plan
                    .dependencies(*node)
                    .iter()
                    .all(|d| matches!(outcomes.get(d), Some(Outcome::Succeeded { .. })));
            if ready {
                started_nodes.insert(*node);
                let step = plan.graph[*node].clone();
                let context = Arc::clone(&context);
                let node = *node;
                let step_number = number(node);
                context.events.emit(Event::StepStarted {
                    number: step_number,
                    total: order.len(),
                    title: step.title(),
                });
                running.spawn(async move {
                    let begun = Instant::now();
                    let result = run_with_hooks(&context, step_number, &step).await;
                    (node, result.map(|()| begun.elapsed()))
                });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (node, result) = joined.expect("step tasks do not panic");
        let title = plan.graph[node].title();
        let outcome = match result {
            Ok(elapsed) => {
                context.events.emit(Event::StepSucceeded {
                    number: number(node),
                    title,
                    elapsed,
                });
                Outcome::Succeeded { elapsed }
            }
            Err(mut error) => {
                if let Step::Switchover(_) = &plan.graph[node] {
                    let undone = undo_rechains_before(&context, plan, node, &outcomes).await;
                    error = error.and(undone);
                }
                context.events.emit(Event::StepFailed {
                    number: number(node),
                    title,
                    error: error.message.clone(),
                });
                Outcome::Failed { error }
            }
        };
        outcomes.insert(node, outcome);
    }

    let steps = order
        .iter()
        .map(|node| {
            let outcome = outcomes.remove(node).unwrap_or(Outcome::Skipped);
            (number(*node), plan.graph[*node].title(), outcome)
        })
        .collect();
    let mut hook_failures =
        std::mem::take(&mut *context.hook_failures.lock().expect("hook failures lock"));
    hook_failures.sort_by_key(|(number, _, _)| *number);
    ApplyReport {
        steps,
        hook_failures,
        elapsed: started.elapsed(),
    }
}

/// One step, journaled, between its hooks: a failing pre hook fails the
/// step before it changes anything; a failing post hook leaves the step
/// succeeded (the servers did change, and the steps after it still run) but
/// fails the apply, and its journal entry makes the next plan run it again.
async fn run_with_hooks(context: &Context, number: usize, step: &Step) -> Result<(), StepError> {
    let title = step.title();
    if let Some(journal) = &context.journal {
        journal.record(&title, "started", None).await;
    }
    let (pre, post) = crate::planner::hooks::events_of(step);
    let mut result = Ok(());
    if let Some(pre) = pre {
        let event = crate::planner::hooks::event_document(&context.topology, step, pre);
        if let Err(error) = hooks::run(
            context,
            number,
            &event,
            context.topology.hooks().for_event(pre),
        )
        .await
        {
            result = Err(StepError::unchanged(
                Failure::HookVeto,
                format!("{error}\nnothing was changed: the {pre} hook vetoes the step"),
            ));
        }
    }
    if result.is_ok() {
        result = run_step(context, number, step).await;
    }
    if let Some(journal) = &context.journal {
        match &result {
            Ok(()) => journal.record(&title, "succeeded", None).await,
            Err(e) => journal.record(&title, "failed", Some(&e.message)).await,
        }
    }
    if let (Ok(()), Some(post)) = (&result, post) {
        let event = crate::planner::hooks::event_document(&context.topology, step, post);
        if let Err(error) = hooks::run(
            context,
            number,
            &event,
            context.topology.hooks().for_event(post),
        )
        .await
        {
            context.events.emit(Event::HookFailed {
                number,
                title: title.clone(),
                error: error.to_string(),
            });
            context
                .hook_failures
                .lock()
                .expect("hook failures lock")
                .push((number, title, error));
        }
    }
    result
}

/// A switchover that rolled back leaves the old primary in charge: the
/// replicas moved under the candidate for it go back where they were, so the
/// cluster is as the plan found it. Returns what happened, for the error.
async fn undo_rechains_before(
    context: &Context,
    plan: &Plan,
    switchover: NodeIndex,
    outcomes: &BTreeMap<NodeIndex, Outcome>,
) -> String {
    let mut report = String::new();
    for dependency in plan.dependencies(switchover) {
        let Step::Rechain(done) = &plan.graph[dependency] else {
            continue;
        };
        if !matches!(outcomes.get(&dependency), Some(Outcome::Succeeded { .. })) {
            continue;
        }
        let back = crate::planner::RechainStep {
            target: done.target.clone(),
            from: done.to.clone(),
            to: done.from.clone(),
        };
        match rechain::run(context, 0, &back).await {
            Ok(()) => report.push_str(&format!("; {} is back under {}", back.target, back.to)),
            Err(e) => report.push_str(&format!(
                "; moving {} back under {} failed: {e}",
                back.target, back.to
            )),
        }
    }
    report
}

async fn run_step(context: &Context, number: usize, step: &Step) -> Result<(), StepError> {
    match step {
        Step::Clone(clone_step) => clone::run(context, number, clone_step).await,
        Step::StartReplication(start) => replication::start(context, number, start).await,
        Step::Rechain(rechain) => rechain::run(context, number, rechain).await,
        Step::Switchover(switch) => switchover::run(context, number, switch).await,
        Step::Failover(failover) => failover::run(context, number, failover).await,
        Step::SetReadOnly(set) => replication::set_read_only(context, set).await,
        Step::SetDurability(semi_sync) => durability::run(context, number, semi_sync).await,
        Step::RunHook(again) => hooks::run(
            context,
            number,
            &again.event,
            context.topology.hooks().for_event(again.hook),
        )
        .await
        .map_err(|e| StepError::new(Failure::Hook, e.to_string())),
    }
}
