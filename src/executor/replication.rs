//! The start-replication step: point a replica at its source by GTID, start
//! it, and prove it works (both threads run, it catches up).

use std::time::{Duration, Instant};

use super::{checkpoint, clone, Context, Failure, StepError};
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
    let target = &topology.servers()[&step.target];
    let source = &topology.servers()[&step.source];
    let mut conn = connect(context, target).await?;
    let dialect = conn.dialect().await?;

    let start_gtid = match &step.position {
        StartPosition::FromClone => Some(
            context
                .clones
                .lock()
                .expect("clone results lock")
                .get(&step.target)
                .map(|c| c.gtid.clone())
                .ok_or_else(|| {
                    StepError::unchanged(
                        Failure::Clone,
                        format!("no clone result for {}", step.target),
                    )
                })?,
        ),
        StartPosition::FromRestoredBackup { gtid } => Some(gtid.clone()),
        StartPosition::Configured | StartPosition::FinishClone | StartPosition::OwnPosition => None,
    };
    if step.position == StartPosition::OwnPosition {
        conn.execute(dialect.stop_replica()).await?;
        conn.execute(dialect.reset_replica_all()).await?;
        for statement in dialect.start_at_own_position() {
            conn.execute(statement).await?;
        }
        conn.execute(&dialect.change_source(&source_address(context, source)?))
            .await?;
    }
    if let Some(gtid) = start_gtid {
        let address = source_address(context, source)?;
        // A backup carries no replica configuration, but a --replace
        // target's stale one must not survive either.
        conn.execute(dialect.stop_replica()).await?;
        conn.execute(dialect.reset_replica_all()).await?;
        for statement in dialect.set_start_position(&gtid) {
            conn.execute(&statement).await?;
        }
        conn.execute(&dialect.change_source(&address)).await?;
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
    let server = &context.topology.servers()[&step.target];
    let mut conn = connect(context, server).await?;
    let dialect = conn.dialect().await?;
    conn.execute(&dialect.set_read_only(step.read_only)).await?;
    conn.close().await;
    Ok(())
}

/// The admin account's connection to `server`.
pub(super) async fn connect(context: &Context, server: &Server) -> Result<Connection, StepError> {
    let topology = &context.topology;
    let password = crate::secrets::resolve(topology, topology.access().password.as_ref())?;
    let endpoint = Endpoint {
        host: server.host.clone(),
        port: server.port,
        user: topology.access().user.clone(),
        password,
        socket: None,
    };
    db::connect(&endpoint, context.options.connect_timeout)
        .await
        .map_err(|e| StepError::from(e).context(&server.name))
}

/// Starts a configured replica: read-only (writes belong on the primary),
/// both replication threads running.
pub(super) async fn start_as_replica(
    conn: &mut Connection,
    dialect: Dialect,
    name: &str,
) -> Result<(), StepError> {
    conn.execute(&dialect.set_read_only(true)).await?;
    conn.execute(dialect.start_replica()).await?;
    wait_for_threads(conn, dialect, name).await
}

/// Points a stopped replica at `source` by GTID and starts it.
pub(super) async fn repoint(
    conn: &mut Connection,
    dialect: Dialect,
    source: &SourceAddress,
    name: &str,
) -> Result<(), StepError> {
    conn.execute(&dialect.change_source(source)).await?;
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
            .await?
            .ok_or_else(|| {
                StepError::new(
                    Failure::Replication,
                    format!("{name} has no replication configured after pointing it at its source"),
                )
            })?;
        let status = dialect.parse_replica_status(&row)?;
        if let Some(error) = status
            .last_io_error
            .as_ref()
            .or(status.last_sql_error.as_ref())
        {
            return Err(StepError::new(
                Failure::Replication,
                format!("replication on {name} failed: {error}"),
            ));
        }
        if status.healthy() {
            return Ok(());
        }
        if started.elapsed() > THREADS_TIMEOUT {
            return Err(StepError::new(
                Failure::Replication,
                format!(
                    "replication threads on {name} not running after {}s (io {}, sql {})",
                    THREADS_TIMEOUT.as_secs(),
                    status.io_running,
                    if status.sql_running { "Yes" } else { "No" }
                ),
            ));
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
    let source = &context.topology.servers()[&step.source];
    let mut source_conn = connect(context, source).await?;
    let source_dialect = source_conn.dialect().await?;
    let position = source_conn
        .first_row(source_dialect.gtid_position_query())
        .await?
        .and_then(|row| sql::column(&row, "position").map(str::to_string))
        .unwrap_or_default();
    source_conn.close().await;
    if position.is_empty() {
        return Ok(());
    }
    let timeout = context.options.catch_up_timeout.as_secs().max(1);
    if wait_for_position(conn, dialect, &position, timeout).await? {
        Ok(())
    } else {
        Err(StepError::new(
            Failure::CatchUp,
            format!(
                "{} did not catch up with {} (GTID {position}) within {timeout}s",
                step.target, step.source
            ),
        ))
    }
}

/// The repl account's address of `source`, for CHANGE MASTER.
pub(super) fn source_address(
    context: &Context,
    source: &Server,
) -> Result<SourceAddress, StepError> {
    let topology = &context.topology;
    let password = crate::secrets::resolve(topology, topology.access().repl_password.as_ref())?;
    Ok(SourceAddress {
        host: source.host.clone(),
        port: source.port,
        user: topology.access().repl_user.clone(),
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
        .await?
        .and_then(|row| sql::column(&row, name).map(str::to_string))
        .unwrap_or_default())
}

/// Waits until the server has applied `gtid` (at most `timeout_seconds` on
/// the server's side, and a little more on the client's, for a server that
/// went silent): whether it did.
pub(super) async fn wait_for_position(
    conn: &mut Connection,
    dialect: Dialect,
    gtid: &str,
    timeout_seconds: u64,
) -> Result<bool, StepError> {
    let limit = Duration::from_secs(timeout_seconds) + WAIT_MARGIN;
    let row = conn
        .first_row_within(&dialect.wait_for_position(gtid, timeout_seconds), limit)
        .await?;
    Ok(dialect.wait_succeeded(row.as_ref().and_then(|r| sql::column(r, "result"))))
}

/// How much longer than a server-side wait the client waits for its answer.
const WAIT_MARGIN: Duration = Duration::from_secs(10);
