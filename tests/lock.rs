//! Two applies on one cluster: the second one is refused at once.

mod common;

use common::{apply, observe, TestSandbox};

#[tokio::test(flavor = "multi_thread")]
async fn a_held_cluster_lock_refuses_the_apply_and_names_the_holder() {
    let sandbox = TestSandbox::up(2);
    // Someone else's apply holds the lock on db1 (same name flipover uses).
    let mut other = sandbox.connect("db1").await;
    let got = other
        .first_row("SELECT GET_LOCK('flipover:sb', 0) AS got")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.get("got").cloned().flatten().as_deref(), Some("1"));

    let output = common::flipover(&["apply", "-f", &sandbox.topology_arg(), "--auto-approve"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("another apply is running on cluster sb"),
        "{stderr}"
    );
    assert!(
        stderr.contains("held by connection") && stderr.contains("flipover@"),
        "{stderr}"
    );
    // Nothing was applied: db2 is still an empty standalone server.
    let state = observe(&sandbox.topology());
    assert!(state.servers["db2"].facts().unwrap().replica.is_none());

    // Once the other apply is gone, this one runs.
    other.close().await;
    let (ok, out) = apply(&sandbox.topology(), &[]);
    assert!(ok, "{out}");
    assert!(observe(&sandbox.topology()).servers["db2"]
        .facts()
        .unwrap()
        .replica
        .is_some());
}
