//! The start-replication step: point a replica at its source by GTID, start
//! it, and prove it works (both threads run, it catches up).

use std::time::{Duration, Instant};

use super::{checkpoint, clone, Context, StepError};
use crate::db::{self, Connection, Endpoint};
use crate::planner::{SetReadOnlyStep, StartPosition, StartReplicationStep};
use crate::sql::{self, Dialect, SourceAddress};
use crate::topology::Server;

/// How long both replication threads get to report running.
const THREADS_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn start(
    context: &Context,
    number: usize,
    step: &StartReplicationStep,
) -> Result<(), StepError> {
    let topology = &context.topology;
    let target = &topology.servers[&step.target];
    let source = &topology.servers[&step.source];
    let mut conn = connect(context, target).await?;
    let dialect = Dialect::of(&mut conn).await.map_err(step_error)?;

    let start_gtid = match &step.position {
        StartPosition::FromClone => Some(
            context
                .clones
                .lock()
                .expect("clone results lock")
                .get(&step.target)
                .map(|c| c.gtid.clone())
                .ok_or_else(|| StepError::new(format!("no clone result for {}", step.target)))?,
        ),
        StartPosition::FromRestoredBackup { gtid } => Some(gtid.clone()),
        StartPosition::Configured | StartPosition::FinishClone | StartPosition::OwnPosition => None,
    };
    if step.position == StartPosition::OwnPosition {
        conn.execute(dialect.stop_replica())
            .await
            .map_err(step_error)?;
        conn.execute(dialect.reset_replica_all())
            .await
            .map_err(step_error)?;
        for statement in dialect.start_at_own_position() {
            conn.execute(statement).await.map_err(step_error)?;
        }
        conn.execute(&dialect.change_source(&source_address(context, source)?))
            .await
            .map_err(step_error)?;
    }
    if let Some(gtid) = start_gtid {
        let address = source_address(context, source)?;
        // A backup carries no replica configuration, but a --replace
        // target's stale one must not survive either.
        conn.execute(dialect.stop_replica())
            .await
            .map_err(step_error)?;
        conn.execute(dialect.reset_replica_all())
            .await
            .map_err(step_error)?;
        for statement in dialect.set_start_position(&gtid) {
            conn.execute(&statement).await.map_err(step_error)?;
        }
        conn.execute(&dialect.change_source(&address))
            .await
            .map_err(step_error)?;
    }
    start_as_replica(&mut conn, dialect, &step.target).await?;
    catch_up(context, &mut conn, dialect, step).await?;
    conn.close().await;

    if step.position == StartPosition::FromClone {
        checkpoint::reach(context, number, "clone.replication_started").await;
        clone::confirm(context, &step.target).await?;
        checkpoint::reach(context, number, "clone.confirmed").await;
    }
    if matches!(
        step.position,
        StartPosition::FromRestoredBackup { .. } | StartPosition::FinishClone
    ) {
        clone::confirm_left_over(context, &step.target).await?;
    }
    Ok(())
}

/// Makes a server read-only or writable (the read-only hygiene step).
pub async fn set_read_only(context: &Context, step: &SetReadOnlyStep) -> Result<(), StepError> {
    let server = &context.topology.servers[&step.target];
    let mut conn = connect(context, server).await?;
    let dialect = Dialect::of(&mut conn).await.map_err(step_error)?;
    conn.execute(&dialect.set_read_only(step.read_only))
        .await
        .map_err(step_error)?;
    conn.close().await;
    Ok(())
}

/// The admin account's connection to `server`.
pub(super) async fn connect(context: &Context, server: &Server) -> Result<Connection, StepError> {
    let topology = &context.topology;
    let password = topology
        .resolve_secret(topology.access.password.as_ref())
        .map_err(|e| StepError::new(e.to_string()))?;
    let endpoint = Endpoint {
        host: server.host.clone(),
        port: server.port,
        user: topology.access.user.clone(),
        password,
        socket: None,
    };
    db::connect(&endpoint, context.options.connect_timeout)
        .await
        .map_err(|e| StepError::new(format!("{}: {e}", server.name)))
}

/// Starts a configured replica: read-only (writes belong on the primary),
/// both replication threads running.
pub(super) async fn start_as_replica(
    conn: &mut Connection,
    dialect: Dialect,
    name: &str,
) -> Result<(), StepError> {
    conn.execute(&dialect.set_read_only(true))
        .await
        .map_err(step_error)?;
    conn.execute(dialect.start_replica())
        .await
        .map_err(step_error)?;
    wait_for_threads(conn, dialect, name).await
}

/// Points a stopped replica at `source` by GTID and starts it.
pub(super) async fn repoint(
    conn: &mut Connection,
    dialect: Dialect,
    source: &SourceAddress,
    name: &str,
) -> Result<(), StepError> {
    conn.execute(&dialect.change_source(source))
        .await
        .map_err(step_error)?;
    start_as_replica(conn, dialect, name).await
}

/// Both threads must run; a replication error ends the wait at once.
pub(super) async fn wait_for_threads(
    conn: &mut Connection,
    dialect: Dialect,
    name: &str,
) -> Result<(), StepError> {
    let started = Instant::now();
    loop {
        let row = conn
            .first_row(dialect.replica_status_query())
            .await
            .map_err(step_error)?
            .ok_or_else(|| {
                StepError::new(format!(
                    "{name} has no replication configured after CHANGE MASTER"
                ))
            })?;
        let status = dialect
            .parse_replica_status(&row)
            .map_err(|e| StepError::new(e.to_string()))?;
        if let Some(error) = status
            .last_io_error
            .as_ref()
            .or(status.last_sql_error.as_ref())
        {
            return Err(StepError::new(format!(
                "replication on {name} failed: {error}"
            )));
        }
        if status.healthy() {
            return Ok(());
        }
        if started.elapsed() > THREADS_TIMEOUT {
            return Err(StepError::new(format!(
                "replication threads on {name} not running after {}s (io {}, sql {})",
                THREADS_TIMEOUT.as_secs(),
                status.io_running,
                if status.sql_running { "Yes" } else { "No" }
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the replica has applied what its source had when we asked.
async fn catch_up(
    context: &Context,
    conn: &mut Connection,
    dialect: Dialect,
    step: &StartReplicationStep,
) -> Result<(), StepError> {
    let source = &context.topology.servers[&step.source];
    let mut source_conn = connect(context, source).await?;
    let source_dialect = Dialect::of(&mut source_conn).await.map_err(step_error)?;
    let position = source_conn
        .first_row(source_dialect.gtid_position_query())
        .await
        .map_err(step_error)?
        .and_then(|row| sql::column(&row, "position").map(str::to_string))
        .unwrap_or_default();
    source_conn.close().await;
    if position.is_empty() {
        return Ok(());
    }
    let timeout = context.options.catch_up_timeout.as_secs().max(1);
    let row = conn
        .first_row(&dialect.wait_for_position(&position, timeout))
        .await
        .map_err(step_error)?;
    let result = row.as_ref().and_then(|r| sql::column(r, "result"));
    if dialect.wait_succeeded(result) {
        Ok(())
    } else {
        Err(StepError::new(format!(
            "{} did not catch up with {} (GTID {position}) within {timeout}s",
            step.target, step.source
        )))
    }
}

/// The repl account's address of `source`, for CHANGE MASTER.
pub(super) fn source_address(
    context: &Context,
    source: &Server,
) -> Result<SourceAddress, StepError> {
    let topology = &context.topology;
    let password = topology
        .resolve_secret(topology.access.repl_password.as_ref())
        .map_err(|e| StepError::new(e.to_string()))?;
    Ok(SourceAddress {
        host: source.host.clone(),
        port: source.port,
        user: topology.access.repl_user.clone(),
        password,
    })
}

/// A single-value query's answer (column `name`).
pub(super) async fn value(
    conn: &mut Connection,
    query: &str,
    name: &str,
) -> Result<String, StepError> {
    Ok(conn
        .first_row(query)
        .await
        .map_err(step_error)?
        .and_then(|row| sql::column(&row, name).map(str::to_string))
        .unwrap_or_default())
}

pub(super) fn step_error(error: db::DbError) -> StepError {
    StepError::new(error.to_string())
}
