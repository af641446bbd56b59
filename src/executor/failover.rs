//! The failover step: the primary is gone. Drain every replica, bring the
//! new primary up to the most advanced of them, promote it, point the
//! others at it. Nothing is promoted before every received transaction is
//! applied somewhere the new primary can get it from.

use std::time::Instant;

use futures::future::{join_all, try_join_all};

use super::replication::{connect, repoint, source_address, value, wait_for_position};
use super::{checkpoint, Context, Event, Failure, StepError};
use crate::db::{self, Connection, Endpoint};
use crate::gtid;
use crate::planner::FailoverStep;
use crate::sql::Dialect;

pub async fn run(context: &Context, number: usize, step: &FailoverStep) -> Result<(), StepError> {
    let started = Instant::now();
    let topology = &context.topology;
    ensure_still_dead(context, &step.old_primary).await?;

    let names: Vec<&String> = std::iter::once(&step.new_primary)
        .chain(&step.replicas)
        .collect();
    let mut conns = try_join_all(
        names
            .iter()
            .map(|n| connect(context, &topology.servers()[n.as_str()])),
    )
    .await?;
    let dialect = conns[0].dialect().await?;

    // 1. Nothing more arrives from the old primary, should it be half alive.
    try_join_all(
        conns
            .iter_mut()
            .map(|c| async move { c.execute(dialect.stop_io_thread()).await }),
    )
    .await?;
    checkpoint::reach(context, number, "failover.io_stopped").await;

    // 2. Every replica applies what it received.
    let drained = try_join_all(
        conns
            .iter_mut()
            .zip(&names)
            .map(|(c, name)| drain(c, dialect, name, step.drain_timeout_seconds)),
    )
    .await;
    if let Err(error) = drained {
        restart_io_threads(&mut conns, dialect).await;
        let message = format!("{error}; nothing was changed (IO threads restarted)");
        return Err(error.rolled_back(message));
    }

    checkpoint::reach(context, number, "failover.drained").await;

    // 3. The new primary must hold what the most advanced replica holds.
    let mut positions = Vec::new();
    for conn in conns.iter_mut() {
        positions.push(value(conn, dialect.current_position_query(), "position").await?);
    }
    let everything = positions.join(",");
    let lacking = gtid::not_reached(&positions[0], &everything);
    if !lacking.is_empty() {
        let ahead =
            (1..names.len()).find(|i| gtid::not_reached(&positions[*i], &everything).is_empty());
        let Some(ahead) = ahead else {
            restart_io_threads(&mut conns, dialect).await;
            return Err(StepError::restored(
                Failure::Precheck,
                "no replica holds everything the others received; nothing was changed (IO threads restarted)",
            ));
        };
        let target = positions[ahead].clone();
        let ahead_server = &topology.servers()[names[ahead].as_str()];
        let caught_up = catch_up(
            context,
            &mut conns[0],
            dialect,
            ahead_server,
            &target,
            step.drain_timeout_seconds,
        )
        .await;
        if let Err(error) = caught_up {
            restart_io_threads(&mut conns, dialect).await;
            // Its source is `ahead` now: nothing was promoted, but not
            // everything is as it was.
            let message = format!(
                "{} could not catch up from {}: {error}; nothing was promoted (IO threads restarted)",
                step.new_primary, names[ahead]
            );
            return Err(StepError::new(error.failure, message));
        }
        context.events.emit(Event::Note {
            number,
            title: format!("failover {} -> {}", step.old_primary, step.new_primary),
            text: format!(
                "{} caught up from {} ({})",
                step.new_primary, names[ahead], target
            ),
        });
    }

    checkpoint::reach(context, number, "failover.caught_up").await;

    // 4. Promote.
    let primary = &mut conns[0];
    primary.execute(dialect.stop_replica()).await?;
    primary.execute(dialect.reset_replica_all()).await?;
    primary.execute(&dialect.set_read_only(false)).await?;
    context.events.emit(Event::Note {
        number,
        title: format!("failover {} -> {}", step.old_primary, step.new_primary),
        text: format!(
            "new primary writable after {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        ),
    });

    checkpoint::reach(context, number, "failover.promoted").await;

    // 5. Everyone else follows the new primary.
    let new_source = source_address(context, &topology.servers()[&step.new_primary])?;
    let results = join_all(conns.iter_mut().zip(&names).skip(1).map(|(conn, name)| {
        let new_source = new_source.clone();
        async move {
            let moved = async {
                conn.execute(dialect.stop_replica()).await?;
                repoint(conn, dialect, &new_source, name).await
            }
            .await;
            if moved.is_ok() {
                checkpoint::reach(context, number, "failover.repointed").await;
            }
            moved.map_err(|e| format!("{name}: {e}"))
        }
    }))
    .await;
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    for conn in conns {
        conn.close().await;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StepError::new(
            Failure::Replication,
            format!(
                "{} is the primary now, but not every replica follows it: {}",
                step.new_primary,
                failed.join("; ")
            ),
        ))
    }
}

/// A primary that answers again must not be failed over: that would fork
/// the data. Checked with the connect timeout, right before acting.
async fn ensure_still_dead(context: &Context, old: &str) -> Result<(), StepError> {
    let topology = &context.topology;
    let server = &topology.servers()[old];
    let endpoint = Endpoint {
        host: server.host.clone(),
        port: server.port,
        user: topology.access().user.clone(),
        password: crate::secrets::resolve(topology, topology.access().password.as_ref())?,
        socket: None,
    };
    match db::connect(&endpoint, context.options.probe_timeout).await {
        Ok(conn) => {
            conn.close().await;
            Err(StepError::unchanged(
                Failure::Precheck,
                format!(
                    "{old} answers again: a failover now would fork the data; nothing was changed (plan again)"
                ),
            ))
        }
        Err(_) => Ok(()),
    }
}

/// Waits until the replica has applied everything its IO thread received.
async fn drain(
    conn: &mut Connection,
    dialect: Dialect,
    name: &str,
    timeout: u64,
) -> Result<(), StepError> {
    let row = conn
        .first_row(dialect.replica_status_query())
        .await?
        .ok_or_else(|| {
            StepError::new(Failure::Replication, format!("{name} does not replicate"))
        })?;
    let status = dialect.parse_replica_status(&row)?;
    if let Some(error) = status.last_sql_error {
        return Err(StepError::new(
            Failure::Replication,
            format!("{name}'s replication stopped on an error: {error}"),
        ));
    }
    let Some(received) = status.gtid_received.filter(|r| !r.is_empty()) else {
        return Ok(());
    };
    if wait_for_position(conn, dialect, &received, timeout).await? {
        Ok(())
    } else {
        Err(StepError::new(
            Failure::CatchUp,
            format!("{name} did not apply its relay log ({received}) within {timeout} s"),
        ))
    }
}

/// Temporarily replicates the new primary from a more advanced replica
/// until it holds `target`, then stops.
async fn catch_up(
    context: &Context,
    conn: &mut Connection,
    dialect: Dialect,
    ahead: &crate::topology::Server,
    target: &str,
    timeout: u64,
) -> Result<(), StepError> {
    conn.execute(dialect.stop_replica()).await?;
    conn.execute(&dialect.change_source(&source_address(context, ahead)?))
        .await?;
    conn.execute(dialect.start_replica()).await?;
    let reached = wait_for_position(conn, dialect, target, timeout).await?;
    conn.execute(dialect.stop_replica()).await?;
    if reached {
        Ok(())
    } else {
        Err(StepError::new(
            Failure::CatchUp,
            format!("did not reach {target} within {timeout} s"),
        ))
    }
}

/// Undoes step 1 when the failover stops before promoting anyone.
async fn restart_io_threads(conns: &mut [Connection], dialect: Dialect) {
    for conn in conns.iter_mut() {
        let _ = conn.execute(dialect.start_io_thread()).await;
    }
}
