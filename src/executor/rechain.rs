//! The rechain step: move a running replica to another source by GTID.

use super::replication::{connect, repoint, source_address, value, wait_for_position};
use super::{checkpoint, Context, Failure, StepError};
use crate::planner::RechainStep;

/// `number` is the step's (0 when a switchover's rollback moves a replica back).
pub async fn run(context: &Context, number: usize, step: &RechainStep) -> Result<(), StepError> {
    let topology = &context.topology;
    let target = &topology.servers()[&step.target];
    let new_source = &topology.servers()[&step.to];
    let old_source = &topology.servers()[&step.from];
    let mut conn = connect(context, target).await?;
    let dialect = conn.dialect().await?;

    conn.execute(dialect.stop_replica()).await?;
    checkpoint::reach(context, number, "rechain.stopped").await;
    let result = async {
        // A sibling that lags behind the replica could not serve it: let it
        // reach the replica's position first. A primary has everything.
        let mut source_conn = connect(context, new_source).await?;
        let source_is_replica = source_conn
            .first_row(dialect.replica_status_query())
            .await?
            .is_some();
        if source_is_replica {
            let position = value(&mut conn, dialect.replica_position_query(), "position").await?;
            if !position.is_empty() {
                let timeout = context.options.catch_up_timeout.as_secs().max(1);
                if !wait_for_position(&mut source_conn, dialect, &position, timeout).await? {
                    return Err(StepError::new(
                        Failure::CatchUp,
                        format!(
                            "{} did not reach {}'s position {position} within {timeout}s",
                            step.to, step.target
                        ),
                    ));
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
            conn.execute(dialect.stop_replica()).await?;
            conn.execute(&dialect.change_source(&source_address(context, old_source)?))
                .await?;
            Ok::<(), StepError>(conn.execute(dialect.start_replica()).await?)
        }
        .await;
        return Err(match restored {
            Ok(()) => {
                let message = format!(
                    "{error}; {} replicates from {} again",
                    step.target, step.from
                );
                error.rolled_back(message)
            }
            Err(e) => error.and(format!(
                "; putting it back under {} failed too: {e}",
                step.from
            )),
        });
    }
    checkpoint::reach(context, number, "rechain.repointed").await;
    conn.close().await;
    Ok(())
}
