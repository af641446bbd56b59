//! The rechain step: move a running replica to another source by GTID.

use super::replication::{connect, repoint, source_address, step_error, value};
use super::{checkpoint, Context, StepError};
use crate::planner::RechainStep;
use crate::sql::Dialect;

/// `number` is the step's (0 when a switchover's rollback moves a replica back).
pub async fn run(context: &Context, number: usize, step: &RechainStep) -> Result<(), StepError> {
    let topology = &context.topology;
    let target = &topology.servers[&step.target];
    let new_source = &topology.servers[&step.to];
    let old_source = &topology.servers[&step.from];
    let mut conn = connect(context, target).await?;
    let dialect = Dialect::of(&mut conn).await.map_err(step_error)?;

    conn.execute(dialect.stop_replica())
        .await
        .map_err(step_error)?;
    checkpoint::reach(context, number, "rechain.stopped").await;
    let result = async {
        // A sibling that lags behind the replica could not serve it: let it
        // reach the replica's position first. A primary has everything.
        let mut source_conn = connect(context, new_source).await?;
        let source_is_replica = source_conn
            .first_row(dialect.replica_status_query())
            .await
            .map_err(step_error)?
            .is_some();
        if source_is_replica {
            let position = value(&mut conn, dialect.replica_position_query(), "position").await?;
            if !position.is_empty() {
                let timeout = context.options.catch_up_timeout.as_secs().max(1);
                let waited = value(
                    &mut source_conn,
                    &dialect.wait_for_position(&position, timeout),
                    "result",
                )
                .await?;
                if !dialect.wait_succeeded(Some(&waited)) {
                    return Err(StepError::new(format!(
                        "{} did not reach {}'s position {position} within {timeout}s",
                        step.to, step.target
                    )));
                }
            }
        }
        source_conn.close().await;
        repoint(
            &mut conn,
            dialect,
            &source_address(context, new_source)?,
            &step.target,
        )
        .await
    }
    .await;

    if let Err(error) = result {
        // Put the replica back under its old source, as it was.
        let restored = async {
            conn.execute(dialect.stop_replica())
                .await
                .map_err(step_error)?;
            conn.execute(&dialect.change_source(&source_address(context, old_source)?))
                .await
                .map_err(step_error)?;
            conn.execute(dialect.start_replica())
                .await
                .map_err(step_error)
        }
        .await;
        let outcome = match restored {
            Ok(()) => format!("; {} replicates from {} again", step.target, step.from),
            Err(e) => format!("; putting it back under {} failed too: {e}", step.from),
        };
        return Err(StepError::new(format!("{error}{outcome}")));
    }
    checkpoint::reach(context, number, "rechain.repointed").await;
    conn.close().await;
    Ok(())
}
