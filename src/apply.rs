//! The apply lifecycle: take the cluster lock, open the journal, run the
//! plan's steps, record the end, give the lock back. `flipover apply`,
//! `flipover-cmd` and (later) the watch daemon all go through here, so none
//! of them can forget a stage.

use std::sync::Arc;
use std::time::Duration;

use crate::db::Endpoint;
use crate::executor::journal::{Journal, JournalEnd};
use crate::executor::lock::{self, LockError};
use crate::executor::{self, ApplyReport, EventSink, ExecutorOptions, Outcome};
use crate::facts::Observed;
use crate::planner::{Plan, Step};
use crate::topology::Topology;
use crate::wire::{ApplyErrorDocument, ApplyReportDocument, ApplyStepDocument};

/// Why an apply did not run its steps.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Another apply holds the cluster lock: nothing was done.
    #[error("another apply is running on cluster {cluster}: its lock on {server} is held by {holder}; nothing was applied")]
    LockHeld {
        cluster: String,
        server: String,
        holder: String,
    },
    /// The lock could not be taken for another reason (credentials, a
    /// server that failed a statement).
    #[error("cannot take the cluster lock: {0}")]
    Lock(LockError),
}

/// Runs `plan` (already reviewed) on the servers: lock, journal, steps,
/// journal end, unlock. The report says what happened to each step.
pub async fn apply(
    topology: &Topology,
    observed: &Observed,
    plan: &Plan,
    options: &ExecutorOptions,
    events: EventSink,
) -> Result<ApplyReport, ApplyError> {
    let lock = match lock::acquire(topology, observed, options.connect_timeout).await {
        Ok(lock) => lock,
        Err(LockError::Held {
            cluster,
            server,
            holder,
        }) => {
            return Err(ApplyError::LockHeld {
                cluster,
                server,
                holder,
            })
        }
        Err(other) => return Err(ApplyError::Lock(other)),
    };
    let journal = Arc::new(Journal::begin(lock, &plan.summary().line()).await);
    let report = executor::apply(topology, plan, options, events, Some(journal.clone())).await;
    let outcome = if report.succeeded() {
        "complete"
    } else {
        "failed"
    };
    // The steps are done: the executor dropped its handles on the journal.
    if let Ok(journal) = Arc::try_unwrap(journal) {
        let left = crate::topology::to_memory_toml(topology);
        let end = JournalEnd {
            outcome,
            topology: &left,
            keep_applies: topology.journal().keep_applies,
            rejoin: reachable_endpoints(topology, observed),
            connect_timeout: options.connect_timeout,
        };
        journal.finish(end).await.release().await;
    }
    Ok(report)
}

/// The admin account's endpoints of the servers that answered at
/// observation (none when the password cannot be read: the lock could not
/// have been taken either).
fn reachable_endpoints(topology: &Topology, observed: &Observed) -> Vec<Endpoint> {
    let Ok(password) = crate::secrets::resolve(topology, topology.access().password.as_ref())
    else {
        return Vec::new();
    };
    topology
        .servers()
        .values()
        .filter(|s| {
            observed
                .servers
                .get(&s.name)
                .is_some_and(|o| o.mysql.reachable)
        })
        .map(|s| Endpoint {
            host: s.host.clone(),
            port: s.port,
            user: topology.access().user.clone(),
            password: password.clone(),
            socket: None,
        })
        .collect()
}

/// The executor's limits for an apply whose observation used
/// `connect_timeout`.
pub fn executor_options(connect_timeout: Duration, catch_up_timeout: Duration) -> ExecutorOptions {
    ExecutorOptions {
        connect_timeout: connect_timeout.max(Duration::from_secs(5)),
        probe_timeout: connect_timeout,
        catch_up_timeout,
        ..ExecutorOptions::default()
    }
}

/// The report as the versioned JSON document `apply --json` prints.
pub fn report_document(
    topology: &Topology,
    plan: &Plan,
    report: &ApplyReport,
) -> ApplyReportDocument {
    let order = plan.ordered();
    let steps = report
        .steps
        .iter()
        .zip(&order)
        .map(|((number, title, outcome), node)| {
            let step: &Step = &plan.graph[*node];
            let (state, elapsed_ms, error) = match outcome {
                Outcome::Succeeded { elapsed } => ("succeeded", Some(millis(*elapsed)), None),
                Outcome::Failed { error } => (
                    "failed",
                    None,
                    Some(ApplyErrorDocument {
                        code: error.failure.code().to_string(),
                        servers_left: error.left.code().to_string(),
                        message: error.message.clone(),
                    }),
                ),
                Outcome::Skipped => ("skipped", None, None),
            };
            let hook_error = report
                .hook_failures
                .iter()
                .find(|(n, _, _)| n == number)
                .map(|(_, _, e)| e.to_string());
            ApplyStepDocument {
                number: *number,
                id: step.id(),
                kind: step.kind().as_str().to_string(),
                title: title.clone(),
                outcome: state.to_string(),
                elapsed_ms,
                error,
                hook_error,
            }
        })
        .collect();
    ApplyReportDocument::new(
        &topology.cluster().name,
        if report.succeeded() {
            "succeeded"
        } else {
            "failed"
        },
        plan.summary().line(),
        steps,
        millis(report.elapsed),
    )
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
