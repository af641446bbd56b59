//! Issue 14, point 2: a start from a server's own position (detached with
//! `RESET SLAVE ALL`, stopped, or holding data but no GTIDs, so asking for
//! everything from the beginning) is checked against what its source's
//! binlogs still hold. A server that holds nothing its donor lacks is
//! recloned (and the plan says nothing is lost); any other is a problem
//! with its hint. A source built from a backup holds no binlogs from before
//! the backup, although its first binlog's Gtid_list is empty.
//!
//! MariaDB only (10.11 and 11.8): MySQL's `gtid_purged` check comes with
//! its GTID sets.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::binlogs::{purge_early_binlogs, unlogged};
use common::{apply, flipover, observe, ServerKind, TestSandbox};

const SHOP: &str = "shop.customers, shop.orders";

/// One test per MariaDB kind.
macro_rules! per_mariadb {
    ($body:ident) => {
        mod $body {
            use crate::common::servers::ServerKind;

            #[tokio::test(flavor = "multi_thread")]
            async fn mariadb_10_11() {
                ServerKind::Mariadb1011.run(super::$body).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn mariadb_11_8() {
                ServerKind::Mariadb118.run(super::$body).await
            }
        }
    };
}

/// `flipover plan -f TOPOLOGY`: exit status and stdout followed by stderr.
fn plan(topology: &std::path::Path) -> (Option<i32>, String) {
    let output = flipover(&["plan", "-f", topology.to_str().unwrap()]);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// The sandbox's topology without the servers named, as `DIR/NAME.toml`.
fn topology_without(sandbox: &TestSandbox, file: &str, left_out: &[&str]) -> PathBuf {
    let mut text = std::fs::read_to_string(sandbox.topology()).unwrap();
    for name in left_out {
        let start = text.find(&format!("[servers.{name}]")).unwrap();
        let end = text[start + 1..]
            .find("[servers.")
            .map_or(text.len(), |i| start + 1 + i);
        text.replace_range(start..end, "");
    }
    let path = sandbox.dir.join(format!("{file}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `replica` replicates from `source` with both threads running.
fn assert_replicates(sandbox: &TestSandbox, topology: &std::path::Path, pairs: &[(&str, &str)]) {
    let state = observe(topology);
    for (replica, source) in pairs {
        let status = state.servers[*replica]
            .facts()
            .and_then(|f| f.replica.clone())
            .unwrap_or_else(|| panic!("{replica} replicates"));
        assert_eq!(
            status.source_host,
            sandbox.host(source).address,
            "{replica}"
        );
        assert!(status.healthy(), "{replica}: {status:?}");
    }
}

async fn servers_behind_purged_binlogs_are_recloned_or_refused(kind: ServerKind) {
    let sandbox = TestSandbox::up_flavor(kind, 4);
    let first = topology_without(&sandbox, "first", &["db4"]);
    let (ok, out) = apply(&first, &[]);
    assert!(ok, "initial clones: {out}");

    // db2 detached, db3 stopped: both hold only what db1 wrote. db4 is
    // fresh but holds a table loaded without binary logging.
    unlogged(&sandbox, "db2", &["STOP SLAVE", "RESET SLAVE ALL"]).await;
    unlogged(&sandbox, "db3", &["STOP SLAVE"]).await;
    unlogged(
        &sandbox,
        "db4",
        &[
            "CREATE DATABASE legacy",
            "CREATE TABLE legacy.notes (id INT PRIMARY KEY, note TEXT)",
            "INSERT INTO legacy.notes VALUES (1, 'only here')",
        ],
    )
    .await;
    // db1 writes on and purges the binlogs they would need.
    purge_early_binlogs(&sandbox, "db1", 8001).await;
    let oldest = observe(&sandbox.topology()).servers["db1"]
        .facts()
        .unwrap()
        .binlog_oldest_gtid
        .clone()
        .unwrap();
    assert!(!oldest.is_empty(), "db1's oldest binlog starts past 0");

    let (code, text) = plan(&sandbox.topology());
    assert_ne!(code, Some(0), "{text}");
    for reclone in ["db2", "db3"] {
        assert!(
            text.contains(&format!("clone {reclone} from db1  [DESTRUCTIVE]")),
            "{reclone}: {text}"
        );
        assert!(
            text.contains(&format!(
                "warning[purged-binlogs-reclone]: {reclone} cannot start replicating where it is: \
                 db1's binlogs start after {oldest}"
            )),
            "{reclone}: {text}"
        );
        assert!(
            text.contains(
                "It holds nothing db1 lacks, so it is recloned from db1 instead and nothing is lost"
            ),
            "{text}"
        );
    }
    assert!(
        text.contains("GTIDs lost for good (not on db1): none (every GTID it has is on db1)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "error[purged-binlogs]: db4 cannot start replicating where it is: db1's binlogs start \
             after {oldest}, db4 needs them from the beginning of domain 0; a clone from db1 would \
             lose schemas legacy (written without GTIDs, so not known to be on db1)"
        )),
        "{text}"
    );
    assert!(
        text.contains("`--replace db4` reclones it from db1"),
        "{text}"
    );
    assert!(!text.contains("start replication on db4"), "{text}");

    // With db4's data given up, as the hint says, everything converges.
    let (ok, out) = apply(&sandbox.topology(), &["--replace", "db4"]);
    assert!(ok, "{out}");
    assert!(out.contains("Apply complete"), "{out}");
    assert_replicates(
        &sandbox,
        &sandbox.topology(),
        &[("db2", "db1"), ("db3", "db1"), ("db4", "db1")],
    );
    let primary = sandbox.checksums("db1", SHOP).await;
    for replica in ["db2", "db3", "db4"] {
        assert_eq!(sandbox.checksums(replica, SHOP).await, primary, "{replica}");
        assert_eq!(
            count(
                &sandbox,
                replica,
                "SELECT COUNT(*) FROM shop.customers WHERE id = 8001"
            )
            .await,
            "1",
            "{replica} has the row written before the purge"
        );
    }
    let mut conn = sandbox.connect("db1").await;
    conn.execute("INSERT INTO shop.customers VALUES (8002, 'after', 'a@example.com')")
        .await
        .unwrap();
    conn.close().await;
    for replica in ["db2", "db3", "db4"] {
        sandbox
            .wait_for_value(
                replica,
                "SELECT COUNT(*) FROM shop.customers WHERE id = 8002",
                "1",
                Duration::from_secs(20),
            )
            .await;
    }
    let (code, text) = plan(&sandbox.topology());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("No changes"), "{text}");
}
per_mariadb!(servers_behind_purged_binlogs_are_recloned_or_refused);

/// A replica built from a backup writes its first binlog with an empty
/// Gtid_list, yet holds nothing from before the backup: a server asking it
/// for everything from the beginning would silently start mid-history.
async fn a_clone_cannot_serve_history_from_before_its_backup(kind: ServerKind) {
    let sandbox = TestSandbox::up_flavor(kind, 3);
    let first = topology_without(&sandbox, "first", &["db3"]);
    let (ok, out) = apply(&first, &[]);
    assert!(ok, "initial clone: {out}");
    let mut conn = sandbox.connect("db1").await;
    conn.execute("INSERT INTO shop.customers VALUES (8101, 'replicated', 'r@example.com')")
        .await
        .unwrap();
    conn.close().await;
    sandbox
        .wait_for_value(
            "db2",
            "SELECT COUNT(*) FROM shop.customers WHERE id = 8101",
            "1",
            Duration::from_secs(20),
        )
        .await;

    // db2 still has its only binlog, yet it begins after the backup.
    let state = observe(&first);
    let db2 = state.servers["db2"].facts().unwrap();
    let backup = db2.gtid.slave_pos.clone().unwrap();
    let start = db2.binlog_oldest_gtid.clone().unwrap();
    assert!(
        !start.is_empty(),
        "db2's binlogs start after the backup: {db2:?}"
    );

    // db3 holds data loaded without GTIDs and is wanted under db2.
    unlogged(
        &sandbox,
        "db3",
        &[
            "CREATE DATABASE legacy",
            "CREATE TABLE legacy.notes (id INT PRIMARY KEY)",
        ],
    )
    .await;
    let chained = sandbox.write_topology("chained", "db1", &[("db3", "db2")]);
    let (code, text) = plan(&chained);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("error[purged-binlogs]: db3 cannot start replicating where it is: db2's binlogs start after"),
        "{text}"
    );
    assert!(!text.contains("start replication on db3"), "{text}");
    eprintln!("db2: backup at {backup}, binlogs from {start}");

    // Empty, db3 is cloned from db2 and replicates from it.
    unlogged(&sandbox, "db3", &["DROP DATABASE legacy"]).await;
    let (ok, out) = apply(&chained, &[]);
    assert!(ok, "{out}");
    assert_replicates(&sandbox, &chained, &[("db2", "db1"), ("db3", "db2")]);
    assert_eq!(
        sandbox.checksums("db3", SHOP).await,
        sandbox.checksums("db1", SHOP).await
    );
}
per_mariadb!(a_clone_cannot_serve_history_from_before_its_backup);

async fn count(sandbox: &TestSandbox, server: &str, query: &str) -> String {
    let mut conn = sandbox.connect(server).await;
    let row = conn.first_row(query).await.unwrap().unwrap();
    conn.close().await;
    row.into_values().next().flatten().unwrap()
}
