//! Issue 14, point 3: a fresh server whose only user schema is empty (the
//! `test` schema `mariadb-install-db` creates) holds no data. It is cloned
//! like any fresh server, here from a source that purged its early binlogs
//! (so starting it from its own, empty position would fail), and the clone
//! replaces the empty schema. A schema that holds only a routine is data.

mod common;

use std::time::Duration;

use common::binlogs::{purge_early_binlogs, unlogged};
use common::{flipover, observe, ServerKind, TestSandbox};
use flipover::observe::Flavor;

const SHOP: &str = "shop.customers, shop.orders";

/// `flipover plan`: exit status and stdout followed by stderr.
fn plan(sandbox: &TestSandbox) -> (Option<i32>, String) {
    let output = flipover(&["plan", "-f", &sandbox.topology_arg()]);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

async fn fresh_server_with_an_empty_test_schema_is_cloned(kind: ServerKind) {
    let sandbox = TestSandbox::up_flavor(kind, 2);
    unlogged(&sandbox, "db2", &["CREATE DATABASE test"]).await;
    if kind.flavor() == Flavor::Mariadb {
        purge_early_binlogs(&sandbox, "db1", 7001).await;
    }

    // Observation counts what each user schema holds.
    let state = observe(&sandbox.topology());
    let db2 = state.servers["db2"].facts().unwrap();
    assert_eq!(db2.user_schemas, ["test"]);
    let counted = db2.schema_objects.as_ref().expect("schemas counted");
    assert!(counted["test"].is_empty(), "{counted:?}");
    let db1 = state.servers["db1"].facts().unwrap();
    let shop = db1.schema_objects.as_ref().unwrap()["shop"];
    assert_eq!((shop.tables, shop.views), (2, 0), "{shop:?}");

    // A routine is data: db2 is not overwritten unasked.
    unlogged(
        &sandbox,
        "db2",
        &["CREATE PROCEDURE test.hello() SELECT 'hello'"],
    )
    .await;
    let state = observe(&sandbox.topology());
    assert_eq!(
        state.servers["db2"]
            .facts()
            .unwrap()
            .schema_objects
            .as_ref()
            .unwrap()["test"]
            .routines,
        1
    );
    let (code, text) = plan(&sandbox);
    assert_ne!(code, Some(0), "{text}");
    assert!(!text.contains("clone db2 from db1"), "{text}");
    assert!(text.contains("schemas test"), "{text}");

    // Empty again: a clone like onto any fresh server, not destructive.
    unlogged(&sandbox, "db2", &["DROP PROCEDURE test.hello"]).await;
    let (code, text) = plan(&sandbox);
    if kind.flavor() == Flavor::Mysql {
        // MySQL clones arrive with the clone plugin (another helper's
        // brief): here the plan only has to treat db2 as empty, a server
        // to clone onto.
        assert!(
            text.contains("clone db2 from db1") || text.contains("cannot clone db2"),
            "{text}"
        );
        assert!(!text.contains("DESTRUCTIVE"), "{text}");
        assert!(!text.contains("data-without-replication"), "{text}");
        return;
    }
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("Plan: 1 clone, 0 rechain, 0 switchover, 0 failover; 0 destructive."),
        "{text}"
    );
    assert!(
        text.contains("replaces db2's empty schema test (no tables, views, routines or events: nothing is lost"),
        "{text}"
    );

    let (ok, out) = common::apply(&sandbox.topology(), &[]);
    assert!(ok, "{out}");
    let state = observe(&sandbox.topology());
    let db2 = state.servers["db2"].facts().unwrap();
    let status = db2.replica.as_ref().expect("db2 replicates");
    assert_eq!(status.source_host, sandbox.host("db1").address);
    assert!(status.healthy(), "{status:?}");
    assert_eq!(db2.user_schemas, ["shop"], "the copy replaced `test`");
    assert_eq!(
        sandbox.checksums("db2", SHOP).await,
        sandbox.checksums("db1", SHOP).await
    );
    let mut conn = sandbox.connect("db1").await;
    conn.execute("INSERT INTO shop.customers VALUES (7002, 'after', 'a@example.com')")
        .await
        .unwrap();
    conn.close().await;
    sandbox
        .wait_for_value(
            "db2",
            "SELECT COUNT(*) FROM shop.customers WHERE id = 7002",
            "1",
            Duration::from_secs(20),
        )
        .await;
    let (code, text) = plan(&sandbox);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("No changes"), "{text}");
}
crate::per_server!(fresh_server_with_an_empty_test_schema_is_cloned);

/// A clone over a schema the plan saw empty checks again when it runs:
/// a table created there since is not overwritten, and nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_schema_that_fills_up_after_the_plan_is_not_cloned_over() {
    let sandbox = TestSandbox::up(3);
    unlogged(&sandbox, "db3", &["CREATE DATABASE test"]).await;
    // db3 is copied from db2, itself cloned first in the same apply.
    let text = std::fs::read_to_string(sandbox.topology()).unwrap();
    let db3 = format!(
        "[servers.db3]\nhost = \"{}\"\nsource = \"db1\"\n",
        sandbox.host("db3").address
    );
    assert!(text.contains(&db3), "{text}");
    let file = sandbox.dir.join("chained-clone.toml");
    std::fs::write(
        &file,
        text.replace(&db3, &format!("{db3}clone_from = \"db2\"\n")),
    )
    .unwrap();

    let paused = common::faults::PausedApply::start(&sandbox, &file, "clone.replication_started");
    unlogged(
        &sandbox,
        "db3",
        &[
            "CREATE TABLE test.notes (id INT PRIMARY KEY)",
            "INSERT INTO test.notes VALUES (1)",
        ],
    )
    .await;
    let (code, stderr) = paused.resume();
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("db3 holds data since it was planned (test): not cloned over; plan again"),
        "{stderr}"
    );
    let state = observe(&file);
    let db3 = state.servers["db3"].facts().unwrap();
    assert_eq!(db3.user_schemas, ["test"], "db3 is as it was");
    assert!(db3.replica.is_none());
    assert_eq!(
        db3.schema_objects.as_ref().unwrap()["test"].tables,
        1,
        "{db3:?}"
    );
    assert!(state.servers["db2"]
        .facts()
        .unwrap()
        .replica
        .as_ref()
        .unwrap()
        .healthy());
}
