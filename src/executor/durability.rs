//! The set-durability step: semi-synchronous replication as the topology
//! asks. Replicas first (replica side on, IO thread restarted so that it takes
//! effect; primary side off), then the primary (AFTER_SYNC, the timeout,
//! waiting even without replicas, on), then proof: the primary reports
//! semi-sync ON with at least one semi-sync replica connected.
//!
//! Everything is `SET GLOBAL`: a restarted mysqld forgets it (the next plan
//! shows the drift and puts it back; the README asks users to put the same
//! settings in my.cnf).

use std::time::{Duration, Instant};

use super::replication::connect;
use super::{Context, Event, Failure, StepError};
use crate::db::Connection;
use crate::observe::SemiSync;
use crate::planner::SemiSyncStep;
use crate::sql::{semi_sync, Dialect};

/// How long the primary may take to see its replicas acknowledge.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Once one replica acknowledges, how long to wait for the others.
const ALL_REPLICAS_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

pub async fn run(context: &Context, number: usize, step: &SemiSyncStep) -> Result<(), StepError> {
    let topology = &context.topology;
    let title = format!("set-durability {}", step.primary);
    let note = |text: String| {
        context.events.emit(Event::Note {
            number,
            title: title.clone(),
            text,
        })
    };

    // 0. The primary is still the primary: it replicates from nobody.
    let server = &topology.servers()[&step.primary];
    let mut conn = connect(context, server).await?;
    let dialect = conn.dialect().await?;
    if let Some(row) = conn.first_row(dialect.replica_status_query()).await? {
        let source = dialect
            .parse_replica_status(&row)
            .map(|r| format!("{}:{}", r.source_host, r.source_port))
            .unwrap_or_else(|_| "a source".to_string());
        conn.close().await;
        return Err(StepError::unchanged(
            Failure::Precheck,
            format!(
                "{} replicates from {source}: it is not the primary; nothing was changed",
                step.primary
            ),
        ));
    }

    // 1. Replicas acknowledge; nobody but the primary waits.
    for name in &step.replicas {
        let mut conn = connect(context, &topology.servers()[name]).await?;
        let dialect = conn.dialect().await?;
        let before = read_state(&mut conn, name).await?;
        if before.master_enabled {
            execute(&mut conn, &semi_sync::set_primary_side(dialect, false)).await?;
            note(format!("{name}: primary side off"));
        }
        if !before.slave_enabled {
            execute(&mut conn, &semi_sync::set_replica_side(dialect, true)).await?;
        }
        // The IO thread reads the setting when it starts.
        if io_running(&mut conn, dialect).await? && (!before.slave_enabled || !before.slave_status)
        {
            execute(&mut conn, dialect.stop_io_thread()).await?;
            if let Err(error) = execute(&mut conn, dialect.start_io_thread()).await {
                return Err(StepError::new(
                    Failure::Replication,
                    format!(
                    "{name}: restarting its IO thread failed, replication is stopped there: {error}"
                ),
                ));
            }
            note(format!("{name}: replica side on (IO thread restarted)"));
        } else if !before.slave_enabled {
            note(format!("{name}: replica side on"));
        }
        conn.close().await;
    }

    if !step.enable_primary {
        conn.close().await;
        return Ok(());
    }

    // 2. The primary waits for them, losslessly.
    let before = read_state(&mut conn, &step.primary).await?;
    for statement in semi_sync::enable_primary(dialect, step.timeout_ms) {
        execute(&mut conn, &statement).await?;
    }

    // 3. Proof: ON, with a replica acknowledging. Replicas reconnect one by
    // one after their IO thread restart: wait a little for all of them, but
    // one acknowledging replica is what semi-sync needs.
    let direct = step
        .replicas
        .iter()
        .filter(|r| topology.servers()[r.as_str()].source.as_deref() == Some(step.primary.as_str()))
        .count() as u64;
    let started = Instant::now();
    let mut first_seen: Option<Instant> = None;
    loop {
        let now = read_state(&mut conn, &step.primary).await?;
        let proven = now.master_status && (now.master_clients >= 1 || direct == 0);
        if proven && first_seen.is_none() {
            first_seen = Some(Instant::now());
        }
        let all_in = now.master_clients >= direct;
        if proven && (all_in || first_seen.is_some_and(|t| t.elapsed() > ALL_REPLICAS_GRACE)) {
            note(format!(
                "{}: semi-sync ON, {} semi-sync replica{} connected{}",
                step.primary,
                now.master_clients,
                if now.master_clients == 1 { "" } else { "s" },
                if all_in {
                    String::new()
                } else {
                    format!(" (of {direct} replicas)")
                }
            ));
            conn.close().await;
            return Ok(());
        }
        if started.elapsed() > VERIFY_TIMEOUT {
            // Leave the primary as it was: a primary side left on without a
            // replica would stall every commit for the timeout.
            let mut undo = String::new();
            if !before.master_enabled {
                match conn
                    .execute(&semi_sync::set_primary_side(dialect, false))
                    .await
                {
                    Ok(()) => undo = format!("; {}'s primary side is off again", step.primary),
                    Err(e) => {
                        undo = format!("; turning {}'s primary side off failed: {e}", step.primary)
                    }
                }
            }
            conn.close().await;
            return Err(StepError::new(
                Failure::Replication,
                format!(
                    "{} did not report semi-sync ON with a semi-sync replica within {} s \
                 (status {}, {} clients){undo}",
                    step.primary,
                    VERIFY_TIMEOUT.as_secs(),
                    if now.master_status { "ON" } else { "OFF" },
                    now.master_clients
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn read_state(conn: &mut Connection, name: &str) -> Result<SemiSync, StepError> {
    let variables = conn.rows(semi_sync::VARIABLES).await?;
    let status = conn.rows(semi_sync::STATUS).await?;
    semi_sync::parse(&variables, &status)
        .map_err(|e| StepError::from(e).context(name))?
        .ok_or_else(|| {
            StepError::unchanged(
                Failure::Precheck,
                format!(
                "{name} has no semi-synchronous replication (MySQL: install the semi-sync plugins)"
            ),
            )
        })
}

async fn io_running(conn: &mut Connection, dialect: Dialect) -> Result<bool, StepError> {
    let Some(row) = conn.first_row(dialect.replica_status_query()).await? else {
        return Ok(false);
    };
    let status = dialect.parse_replica_status(&row)?;
    Ok(status.io_running() || status.io_running.eq_ignore_ascii_case("connecting"))
}

async fn execute(conn: &mut Connection, statement: &str) -> Result<(), StepError> {
    Ok(conn.execute(statement).await?)
}
