//! The switchover step: fence the old primary, let the candidate apply its
//! last transactions, promote the candidate, make the old primary its
//! replica. Writes are blocked from the fence until the candidate is
//! writable; everything that can be done before the fence is.

use std::future::Future;
use std::time::{Duration, Instant};

use super::replication::{connect, repoint, source_address, value, wait_for_position};
use super::{checkpoint, Context, Event, Failure, StepError};
use crate::db::Connection;
use crate::planner::SwitchoverStep;
use crate::sql::{self, Dialect};

/// How long statements that return at once may take before the server is
/// taken for lost (its host or link down: TCP alone would wait for minutes).
const STATEMENTS_LIMIT: Duration = Duration::from_secs(10);
/// Rejoining includes waiting up to 30 s for the replication threads.
const REJOIN_LIMIT: Duration = Duration::from_secs(45);

/// `work` on `server`, or an error saying it did not answer within `limit`.
async fn within<T>(
    limit: Duration,
    server: &str,
    what: &str,
    work: impl Future<Output = Result<T, StepError>>,
) -> Result<T, StepError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(StepError::new(
            Failure::Timeout,
            format!(
                "{server} did not answer within {} s while {what} (host or link down?)",
                limit.as_secs()
            ),
        )),
    }
}

pub async fn run(context: &Context, number: usize, step: &SwitchoverStep) -> Result<(), StepError> {
    let topology = &context.topology;
    let old = &topology.servers()[&step.old_primary];
    let new = &topology.servers()[&step.new_primary];
    checkpoint::reach(context, number, "switchover.replicas_moved").await;
    let (mut old_conn, mut new_conn) =
        tokio::try_join!(connect(context, old), connect(context, new))?;
    let dialect = old_conn.dialect().await?;
    let new_as_source = source_address(context, new)?;
    let old_as_source = source_address(context, old)?;

    // The plan's limits, checked again now: nothing has changed yet.
    check_candidate(&mut new_conn, dialect, step).await?;
    let age: u64 = value(&mut old_conn, sql::LONGEST_TRANSACTION_QUERY, "age")
        .await?
        .parse()
        .unwrap_or(0);
    if age > step.max_transaction_age {
        return Err(StepError::unchanged(
            Failure::Precheck,
            format!(
                "{} has a transaction open for {age} s (limit {} s); nothing was changed",
                step.old_primary, step.max_transaction_age
            ),
        ));
    }

    let fenced_at = Instant::now();
    let caught_up =
        fence_and_wait(context, number, &mut old_conn, &mut new_conn, dialect, step).await;
    let promoted = match caught_up {
        Ok(()) => {
            checkpoint::reach(context, number, "switchover.caught_up").await;
            within(
                STATEMENTS_LIMIT,
                &step.new_primary,
                "promoting it",
                promote(&mut new_conn, dialect),
            )
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(error) = promoted {
        let (old_back, candidate_back) =
            roll_back(&mut old_conn, &mut new_conn, dialect, &old_as_source).await;
        let restored = old_back.is_ok() && candidate_back.is_ok();
        let old_part = match old_back {
            Ok(()) => format!("{} is writable again", step.old_primary),
            Err(e) => format!(
                "making {} writable again FAILED, check it: {e}",
                step.old_primary
            ),
        };
        let candidate_part = match candidate_back {
            Ok(()) => format!("{} replicates from it", step.new_primary),
            Err(e) => format!(
                "{} could not be put back as its replica: {e}",
                step.new_primary
            ),
        };
        let message = format!("{error}; rolled back: {old_part}; {candidate_part}");
        return Err(if restored {
            error.rolled_back(message)
        } else {
            StepError::new(error.failure, message)
        });
    }
    let write_block = fenced_at.elapsed();
    checkpoint::reach(context, number, "switchover.promoted").await;
    context.events.emit(Event::Note {
        number,
        title: format!("switchover {} -> {}", step.old_primary, step.new_primary),
        text: format!(
            "write-block: {:.1} ms (fence of {} to {} writable)",
            write_block.as_secs_f64() * 1000.0,
            step.old_primary,
            step.new_primary
        ),
    });

    // The new primary takes writes; the old one follows it from here.
    let rejoined = async {
        for statement in dialect.rejoin_as_replica() {
            old_conn.execute(statement).await?;
        }
        repoint(&mut old_conn, dialect, &new_as_source, &step.old_primary).await
    };
    // repoint waits up to 30 s for the threads; a silent host gets no longer.
    let rejoined = within(
        REJOIN_LIMIT,
        &step.old_primary,
        "making it a replica",
        rejoined,
    )
    .await;
    if let Err(error) = rejoined {
        return Err(StepError::new(
            error.failure,
            format!(
                "{} is the primary now, but {} does not replicate from it: {error}",
                step.new_primary, step.old_primary
            ),
        ));
    }
    checkpoint::reach(context, number, "switchover.rejoined").await;
    old_conn.close().await;
    new_conn.close().await;
    Ok(())
}

async fn check_candidate(
    conn: &mut Connection,
    dialect: Dialect,
    step: &SwitchoverStep,
) -> Result<(), StepError> {
    let row = conn
        .first_row(dialect.replica_status_query())
        .await?
        .ok_or_else(|| {
            StepError::unchanged(
                Failure::Precheck,
                format!(
                    "{} does not replicate: nothing was changed",
                    step.new_primary
                ),
            )
        })?;
    let status = dialect.parse_replica_status(&row)?;
    match status.seconds_behind {
        Some(lag) if status.healthy() && lag <= step.max_replica_lag => Ok(()),
        lag => Err(StepError::unchanged(Failure::Precheck, format!(
            "{} is not fit to take over (io {}, sql {}, lag {lag:?} s, limit {} s); nothing was changed",
            step.new_primary,
            status.io_running,
            if status.sql_running { "Yes" } else { "No" },
            step.max_replica_lag
        ))),
    }
}

/// Blocks writes on the old primary and waits until the candidate has
/// applied everything the old primary wrote.
async fn fence_and_wait(
    context: &Context,
    number: usize,
    old_conn: &mut Connection,
    new_conn: &mut Connection,
    dialect: Dialect,
    step: &SwitchoverStep,
) -> Result<(), StepError> {
    within(
        STATEMENTS_LIMIT,
        &step.old_primary,
        "fencing it",
        fence(old_conn, dialect),
    )
    .await?;
    checkpoint::reach(context, number, "switchover.fenced").await;
    let position = within(
        STATEMENTS_LIMIT,
        &step.old_primary,
        "reading its position",
        value(old_conn, dialect.gtid_position_query(), "position"),
    )
    .await?;
    // The server's own wait ends after timeout_seconds; a candidate whose
    // link went down never answers at all, so the client gives up a little
    // later.
    let limit = Duration::from_secs(step.timeout_seconds) + STATEMENTS_LIMIT;
    let caught_up = within(
        limit,
        &step.new_primary,
        "waiting for it to catch up",
        wait_for_position(new_conn, dialect, &position, step.timeout_seconds),
    )
    .await?;
    if !caught_up {
        return Err(StepError::new(
            Failure::CatchUp,
            format!(
                "{} did not apply {}'s last transactions ({position}) within {} s",
                step.new_primary, step.old_primary, step.timeout_seconds
            ),
        ));
    }
    Ok(())
}

/// `read_only` on the old primary, and every client session ended.
async fn fence(old_conn: &mut Connection, dialect: Dialect) -> Result<(), StepError> {
    old_conn.execute(&dialect.set_read_only(true)).await?;
    // read_only does not stop users with SUPER / READ ONLY ADMIN: end their
    // sessions (and every other client's, so no transaction stays open).
    let sessions = old_conn.rows(dialect.sessions_to_kill_query()).await?;
    for id in sessions.iter().filter_map(|row| sql::column(row, "id")) {
        // A session may end by itself meanwhile: that is what we wanted.
        let _ = old_conn
            .execute(&dialect.kill_connection(id.parse::<u64>().unwrap_or(0)))
            .await;
    }
    Ok(())
}

async fn promote(new_conn: &mut Connection, dialect: Dialect) -> Result<(), StepError> {
    new_conn.execute(dialect.stop_replica()).await?;
    new_conn.execute(dialect.reset_replica_all()).await?;
    Ok(new_conn.execute(&dialect.set_read_only(false)).await?)
}

/// Back to the starting state: the old primary takes writes again (first:
/// that ends the write-block), then the candidate replicates from it again.
/// Returns how each part went.
async fn roll_back(
    old_conn: &mut Connection,
    new_conn: &mut Connection,
    dialect: Dialect,
    old_as_source: &sql::SourceAddress,
) -> (Result<(), StepError>, Result<(), StepError>) {
    let old = match tokio::time::timeout(
        STATEMENTS_LIMIT,
        old_conn.execute(&dialect.set_read_only(false)),
    )
    .await
    {
        Ok(result) => result.map_err(StepError::from),
        Err(_) => Err(StepError::new(
            Failure::Timeout,
            format!("no answer within {} s", STATEMENTS_LIMIT.as_secs()),
        )),
    };
    let candidate = async {
        new_conn.execute(&dialect.set_read_only(true)).await?;
        let configured = new_conn
            .first_row(dialect.replica_status_query())
            .await?
            .is_some();
        if !configured {
            new_conn
                .execute(&dialect.change_source(old_as_source))
                .await?;
        }
        Ok::<(), StepError>(new_conn.execute(dialect.start_replica()).await?)
    };
    // A candidate whose host vanished must not hold the report up forever.
    let candidate = match tokio::time::timeout(std::time::Duration::from_secs(10), candidate).await
    {
        Ok(result) => result,
        Err(_) => Err(StepError::new(Failure::Timeout, "no answer within 10 s")),
    };
    (old, candidate)
}
