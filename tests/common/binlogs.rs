//! What tests do to servers by hand, as a DBA would: statements kept out
//! of the binary log, and binlogs purged.

use std::time::{Duration, Instant};

use super::TestSandbox;

/// Runs `statements` on `server` with binary logging off for the session:
/// they add no GTID (as `mariadb-install-db`'s own setup, or data loaded
/// outside replication).
pub async fn unlogged(sandbox: &TestSandbox, server: &str, statements: &[&str]) {
    let mut conn = sandbox.connect(server).await;
    conn.execute("SET SESSION sql_log_bin = 0").await.unwrap();
    for statement in statements {
        conn.execute(statement)
            .await
            .unwrap_or_else(|e| panic!("{server}: {statement}: {e}"));
    }
    conn.close().await;
}

/// Writes a row on `server` (a primary holding the sandbox's `shop`),
/// starts a new binlog and purges every older one: what replicas had not
/// read by then is gone from it.
pub async fn purge_early_binlogs(sandbox: &TestSandbox, server: &str, row_id: u32) {
    let mut conn = sandbox.connect(server).await;
    conn.execute(&format!(
        "INSERT INTO shop.customers VALUES ({row_id}, 'before purge', 'p{row_id}@example.com')"
    ))
    .await
    .unwrap();
    conn.execute("FLUSH BINARY LOGS").await.unwrap();
    // MariaDB keeps a binlog until its binlog checkpoint has passed it: try
    // again for a moment.
    let started = Instant::now();
    loop {
        let logs = conn.rows("SHOW BINARY LOGS").await.unwrap();
        if logs.len() == 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{logs:?}");
        let last = logs
            .last()
            .and_then(|row| row.get("Log_name").cloned().flatten())
            .expect("a binlog");
        conn.execute(&format!("PURGE BINARY LOGS TO '{last}'"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.close().await;
}
