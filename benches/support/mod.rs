//! What the switchover and failover benches share: waiting for the tree a
//! change of primary must leave, letting the writer settle on the new
//! primary, and medians. Included with `#[path]`; each bench also declares
//! `mod common` (tests/common) at its root, which this module uses.

use std::time::{Duration, Instant};

use super::common::writer::Writer;
use super::common::TestSandbox;

/// Waits (<= 20 s) until `primary` is writable and replicates from nobody,
/// and every other server of `servers` is read-only with both threads
/// running from it.
pub async fn wait_for_tree(
    sandbox: &TestSandbox,
    servers: &[&str],
    primary: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let address = &sandbox.host(primary).address;
    loop {
        let mut wrong = Vec::new();
        for name in servers {
            let mut conn = sandbox.connect(name).await;
            let read_only = conn
                .first_row("SELECT @@read_only AS ro")
                .await
                .map_err(|e| e.to_string())?
                .and_then(|row| row.get("ro").cloned().flatten())
                .unwrap_or_default();
            let status = conn
                .first_row("SHOW SLAVE STATUS")
                .await
                .map_err(|e| e.to_string())?;
            conn.close().await;
            let get = |key: &str| {
                status
                    .as_ref()
                    .and_then(|row| row.get(key).cloned().flatten())
                    .unwrap_or_default()
            };
            let ok = if *name == primary {
                read_only == "0" && status.is_none()
            } else {
                read_only == "1"
                    && get("Master_Host") == *address
                    && get("Slave_IO_Running") == "Yes"
                    && get("Slave_SQL_Running") == "Yes"
            };
            if !ok {
                wrong.push(format!(
                    "{name}: read_only={read_only} master={:?} io={:?} sql={:?} error={:?}",
                    get("Master_Host"),
                    get("Slave_IO_Running"),
                    get("Slave_SQL_Running"),
                    get("Last_Error") + &get("Last_IO_Error")
                ));
            }
        }
        if wrong.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{primary} is not the only writable server with every other one under it after 20 s:\n{}",
                wrong.join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lets the writer acknowledge 100 inserts on the new primary, then `pause`.
pub async fn settle(writer: &Writer, pause: Duration) -> Result<(), String> {
    let before = writer.acked_so_far();
    let deadline = Instant::now() + Duration::from_secs(10);
    while writer.acked_so_far() < before + 100 {
        if Instant::now() > deadline {
            return Err("the writer does not write on the new primary".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(pause).await;
    Ok(())
}

/// The median (the mean of the middle two for an even count; NaN when empty).
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}
