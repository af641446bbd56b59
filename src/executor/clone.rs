//! The clone step: the donor's agent streams a physical backup straight to
//! the target's agent (the data never passes through this machine); the
//! target prepares it and starts mysqld on it. flipover only hands both a
//! one-time stream token and watches the two jobs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flipover_agent::client::{AgentClient, AgentError};
use flipover_agent::protocol::{CloneReceiveRequest, CloneSendRequest, JobState, JobStatus};
use rand::distr::{Alphanumeric, SampleString};

use super::{checkpoint, Context, Event, Failure, StepError};
use crate::agents;
use crate::db::{Connection, DbError};
use crate::facts::SchemaObjects;
use crate::planner::CloneStep;
use crate::sql;

/// How often both jobs are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long an agent may stay unreachable while its job runs.
const AGENT_SILENCE_LIMIT: Duration = Duration::from_secs(30);

/// Checks, before a clone replaces them, that the schemas the plan saw
/// empty still hold nothing and that no other schema and no GTID arrived
/// since: the plan promised that nothing is lost.
async fn still_empty(context: &Context, step: &CloneStep) -> Result<(), StepError> {
    let server = &context.topology.servers()[&step.target];
    let mut conn = super::replication::connect(context, server).await?;
    let result = read_contents(&mut conn).await;
    conn.close().await;
    let (schemas, objects, gtids) =
        result.map_err(|e| StepError::from(e).nothing_changed().context(&step.target))?;
    let mut held: Vec<String> = schemas
        .iter()
        .filter(|name| {
            !step.empty_schemas.contains(name) || objects.get(*name).is_none_or(|o| !o.is_empty())
        })
        .cloned()
        .collect();
    if !gtids.trim().is_empty() {
        held.push(format!("GTIDs {gtids}"));
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(StepError::unchanged(
        Failure::Precheck,
        format!(
            "{} holds data since it was planned ({}): not cloned over; plan again",
            step.target,
            held.join(", ")
        ),
    ))
}

/// A server's user schemas, what each holds, and its GTID position.
async fn read_contents(
    conn: &mut Connection,
) -> Result<(Vec<String>, BTreeMap<String, SchemaObjects>, String), DbError> {
    let dialect = conn.dialect().await?;
    let schemas: Vec<String> = conn
        .rows(sql::USER_SCHEMAS_QUERY)
        .await?
        .iter()
        .filter_map(|row| sql::column(row, "name").map(str::to_string))
        .collect();
    let objects = crate::observe::schema_objects(conn, &schemas).await?;
    let gtids = conn
        .first_row(dialect.current_position_query())
        .await?
        .and_then(|row| sql::column(&row, "position").map(str::to_string))
        .unwrap_or_default();
    Ok((schemas, objects, gtids))
}

/// What a finished clone leaves for the replication step after it.
#[derive(Debug, Clone)]
pub struct CloneOutcome {
    /// GTID position of the backup: where replication starts.
    pub gtid: String,
    /// The target's receive job, to confirm once replication is proven (the
    /// agent then deletes the previous datadir it kept).
    pub receive_job: String,
}

pub async fn run(context: &Context, number: usize, step: &CloneStep) -> Result<(), StepError> {
    let topology = &context.topology;
    let target_server = &topology.servers()[&step.target];
    let donor_server = &topology.servers()[&step.donor];
    let timeout = context.options.connect_timeout;
    let target = agents::client_for(topology, target_server, timeout)?;
    let donor = agents::client_for(topology, donor_server, timeout)?;

    let donor_lock = Arc::clone(
        context
            .donors
            .lock()
            .expect("donor locks")
            .entry(step.donor.clone())
            .or_default(),
    );
    let _donor_turn = donor_lock.lock().await;

    // Sized now, not at plan time: the donor's datadir may have grown.
    let donor_facts = donor.facts().await.map_err(|e| {
        StepError::from(e)
            .nothing_changed()
            .context(format!("donor {}", step.donor))
    })?;
    let expected_bytes = donor_facts
        .datadir_bytes
        .or(step.estimated_bytes)
        .unwrap_or(0);

    // The agent refuses to overwrite any schema unless told to: a clone
    // over schemas the plan saw empty tells it, once they are seen empty
    // again.
    let over_empty_schemas = !step.destructive && !step.empty_schemas.is_empty();
    if over_empty_schemas {
        still_empty(context, step).await?;
    }
    let stream_token = Alphanumeric.sample_string(&mut rand::rng(), 40);
    let receive = target
        .clone_receive(&CloneReceiveRequest {
            stream_token: stream_token.clone(),
            expected_bytes,
            replace: step.destructive || over_empty_schemas,
        })
        .await
        .map_err(|e| {
            StepError::unchanged(
                Failure::Agent,
                format!("target {} refused the clone: {e}", step.target),
            )
        })?;
    let send = donor
        .clone_send(&CloneSendRequest {
            target_host: target_server.host.clone(),
            target_stream_port: target_server.stream_port,
            stream_token,
        })
        .await;
    let send = match send {
        Ok(job) => job,
        Err(e) => {
            // The target waits for a donor that will not come; it gives up
            // and restores its datadir by itself. Wait for that, so the step
            // ends with the target as it was.
            let restored =
                wait_for_end(&target, &receive.id, context, number, expected_bytes).await;
            let message = format!(
                "donor {} refused to stream: {e}{}",
                step.donor,
                describe_restore(&restored)
            );
            return Err(match restored {
                // The target put its datadir back: as the plan found it.
                Ok(job) if job.state == JobState::Failed => {
                    StepError::restored(Failure::Agent, message)
                }
                _ => StepError::new(Failure::Agent, message),
            });
        }
    };

    let finished = wait_for_end(&target, &receive.id, context, number, expected_bytes).await;
    match finished {
        Ok(job) if job.state == JobState::Succeeded => {
            let result = job.result.ok_or_else(|| {
                StepError::new(
                    Failure::Clone,
                    format!(
                        "{}'s agent reported success without the backup's position",
                        step.target
                    ),
                )
            })?;
            context.clones.lock().expect("clone results lock").insert(
                step.target.clone(),
                CloneOutcome {
                    gtid: result.gtid,
                    receive_job: receive.id,
                },
            );
            Ok(())
        }
        Ok(job) => {
            let donor_error = donor
                .job(&send.id)
                .await
                .ok()
                .and_then(|d| d.error)
                .map(|e| format!("\ndonor {}: {e}", step.donor))
                .unwrap_or_default();
            // A failed receive job puts the previous datadir back and
            // restarts mysqld if it ran (the agent's invariant).
            Err(StepError::restored(
                Failure::Clone,
                format!(
                    "target {}: {}{donor_error}",
                    step.target,
                    job.error.unwrap_or_else(|| "failed".to_string())
                ),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Polls the target's receive job until it ends, reporting progress.
async fn wait_for_end(
    target: &AgentClient,
    job_id: &str,
    context: &Context,
    number: usize,
    expected_bytes: u64,
) -> Result<JobStatus, StepError> {
    let started = Instant::now();
    let mut last_heard = Instant::now();
    let mut passed = 0;
    loop {
        match target.job(job_id).await {
            Ok(job) => {
                last_heard = Instant::now();
                // Checkpoints the agent's job went past since the last poll.
                let now_past = if job.state == JobState::Succeeded {
                    CLONE_PHASES.len()
                } else if job.state == JobState::Running {
                    phases_past(&job.phase)
                } else {
                    passed
                };
                while passed < now_past {
                    checkpoint::reach(context, number, CLONE_PHASES[passed]).await;
                    passed += 1;
                }
                if job.state != JobState::Running {
                    return Ok(job);
                }
                context.events.emit(Event::Progress {
                    number,
                    phase: job.phase.clone(),
                    bytes: job.bytes,
                    total_bytes: (expected_bytes > 0).then_some(expected_bytes),
                });
            }
            // The agent answers but forgot the job: it restarted, and its
            // startup put the previous datadir back.
            Err(AgentError::Failed { status: 404, .. }) => {
                return Err(StepError::restored(
                    Failure::Clone,
                    "the target's agent restarted during the clone and forgot it; \
                     at startup it puts the previous datadir back: plan again",
                ));
            }
            Err(e) if last_heard.elapsed() > AGENT_SILENCE_LIMIT => {
                return Err(StepError::new(
                    Failure::Agent,
                    format!(
                        "lost the target's agent for {}s while cloning: {e}; check the target before retrying",
                        AGENT_SILENCE_LIMIT.as_secs()
                    ),
                ));
            }
            Err(_) => {}
        }
        if started.elapsed() > context.options.clone_timeout {
            return Err(StepError::new(
                Failure::Timeout,
                format!(
                    "the clone did not finish within {:?}",
                    context.options.clone_timeout
                ),
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The checkpoints of the target's receive job, as flipover sees it poll.
const CLONE_PHASES: [&str; 3] = ["clone.streamed", "clone.prepared", "clone.started"];

/// How many of [`CLONE_PHASES`] a running job's phase is past (the agent's
/// phase names, `receive.rs`).
fn phases_past(phase: &str) -> usize {
    match phase {
        "preparing" => 1,
        "fixing file ownership" | "starting mysqld" => 2,
        _ => 0,
    }
}

fn describe_restore(restored: &Result<JobStatus, StepError>) -> String {
    match restored {
        Ok(job) if job.state == JobState::Failed => {
            "; the target restored its previous datadir".to_string()
        }
        Ok(job) => format!("; the target's job ended as {:?}", job.state),
        Err(e) => format!("; and the target's state is unknown: {e}"),
    }
}

/// Tells the target its copy is proven, so it may delete the old datadir.
pub async fn confirm(context: &Context, target: &str) -> Result<(), StepError> {
    let outcome = context
        .clones
        .lock()
        .expect("clone results lock")
        .get(target)
        .cloned();
    let Some(outcome) = outcome else {
        return Ok(());
    };
    let server = &context.topology.servers()[target];
    let client = agents::client_for(&context.topology, server, context.options.connect_timeout)?;
    client
        .confirm_clone(&outcome.receive_job)
        .await
        .map_err(|e| {
            StepError::new(
                Failure::Agent,
                format!("{target}: could not discard the previous datadir: {e}"),
            )
        })?;
    Ok(())
}

/// Confirms a copy an earlier, interrupted apply left unconfirmed on
/// `target` (the agent reports its receive job), now that its replication is
/// proven: without this its previous datadir would stay on disk, and an
/// agent restart would put it back in place of the working copy.
pub async fn confirm_left_over(context: &Context, target: &str) -> Result<(), StepError> {
    let server = &context.topology.servers()[target];
    let client = agents::client_for(&context.topology, server, context.options.connect_timeout)?;
    let facts = client.facts().await.map_err(|e| {
        StepError::new(
            Failure::Agent,
            format!(
                "{target} replicates, but its agent did not say whether a clone awaits confirmation: {e}"
            ),
        )
    })?;
    let Some(job) = facts.unconfirmed_clone_job else {
        return Ok(());
    };
    client.confirm_clone(&job).await.map_err(|e| {
        StepError::new(
            Failure::Agent,
            format!("{target} replicates, but its previous datadir could not be discarded: {e}"),
        )
    })?;
    Ok(())
}
