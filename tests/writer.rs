//! The steady writer (tests/common/writer.rs) against a real sandbox: it
//! rides out a read-only window on the primary, counts the gap, and every
//! write it acknowledged is on both servers.

mod common;

use std::time::{Duration, Instant};

use common::writer::{
    app_endpoints, assert_all_acked_present, make_replicas_read_only, prepare_app_user, Writer,
};
use common::{flipover, TestSandbox};

#[tokio::test(flavor = "multi_thread")]
async fn writer_waits_out_a_read_only_primary_and_loses_nothing() {
    let sandbox = TestSandbox::up(2);
    let apply = flipover(&["apply", "-f", &sandbox.topology_arg(), "--auto-approve"]);
    assert!(
        apply.status.success(),
        "apply failed:\n{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    make_replicas_read_only(&sandbox, "db1").await;
    prepare_app_user(&sandbox, "db1").await;

    let writer = Writer::start(app_endpoints(&sandbox, &["db1", "db2"]));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(writer.acked_so_far() > 0, "the writer writes");

    // Fence db1 by hand for ~200 ms: `app` has no READ ONLY ADMIN, so its
    // inserts fail, and db2 (read-only) is no refuge.
    let mut admin = sandbox.connect("db1").await;
    admin.execute("SET GLOBAL read_only = 1").await.unwrap();
    let fenced = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin.execute("SET GLOBAL read_only = 0").await.unwrap();
    let unfenced = Instant::now();
    admin.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = writer.stop().await;
    eprintln!(
        "writer: {} acked, longest gap {:?} after id {}, {} errors (last: {:?}), per server {:?}",
        report.acked.len(),
        report.longest_gap,
        report.longest_gap_at,
        report.errors,
        report.last_error,
        report.per_server
    );

    assert!(
        report.longest_gap >= Duration::from_millis(150),
        "{:?} after id {}",
        report.longest_gap,
        report.longest_gap_at
    );
    assert_eq!(
        report.longest_gap_between(fenced, unfenced).0,
        report.longest_gap,
        "the longest gap is the fenced window"
    );
    assert!(report.errors > 0, "no failed insert recorded");
    assert_eq!(
        report.per_server.keys().collect::<Vec<_>>(),
        vec!["db1"],
        "only the primary is written: {:?}",
        report.per_server
    );
    assert_all_acked_present(&sandbox, &["db1", "db2"], &report).await;
}
