//! Issue 14, point 6: each server keeps the latest `[journal] keep_applies`
//! applies in its journal; older ones are deleted as an apply ends, with
//! binary logging off (no GTID), and each apply records the topology it
//! leaves, without secrets.

mod common;

use std::collections::BTreeSet;

use common::{apply, observe, ServerKind, TestSandbox};
use flipover::observe::Flavor;

/// The sandbox's topology with db1 alone and `[journal] keep_applies = 3`.
fn topology(sandbox: &TestSandbox) -> std::path::PathBuf {
    let text = std::fs::read_to_string(sandbox.topology()).unwrap();
    let servers = text.find("[servers.").unwrap();
    let path = sandbox.dir.join("kept.toml");
    std::fs::write(
        &path,
        format!(
            "{}[journal]\nkeep_applies = 3\n\n[servers.db1]\nhost = \"{}\"\n",
            &text[..servers],
            sandbox.host("db1").address
        ),
    )
    .unwrap();
    path
}

/// The rows of `query` on db1, each as the values of `columns`.
async fn query(sandbox: &TestSandbox, query: &str, columns: &[&str]) -> Vec<Vec<String>> {
    let mut conn = sandbox.connect("db1").await;
    let rows = conn.rows(query).await.unwrap();
    conn.close().await;
    rows.into_iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.get(*c).cloned().flatten().unwrap_or_default())
                .collect()
        })
        .collect()
}

async fn the_journal_keeps_the_latest_applies(kind: ServerKind) {
    let sandbox = TestSandbox::up_flavor(kind, 1);
    let file = topology(&sandbox);
    let gtid = |state: &flipover::observe::Observed| {
        let facts = state.servers["db1"].facts().unwrap();
        match kind.flavor() {
            Flavor::Mariadb => facts.gtid.binlog_state.clone(),
            Flavor::Mysql => facts.gtid.executed.clone(),
        }
    };
    let before = gtid(&observe(&file));

    // Each apply makes db1 writable again after it was made read-only by hand.
    let mut applies = Vec::new();
    for _ in 0..5 {
        let mut conn = sandbox.connect("db1").await;
        conn.execute("SET GLOBAL read_only = 1").await.unwrap();
        conn.close().await;
        let (ok, out) = apply(&file, &[]);
        assert!(ok, "{out}");
        assert!(out.contains("make db1 writable: done"), "{out}");
        let state = observe(&file);
        let last = state.servers["db1"]
            .facts()
            .unwrap()
            .last_apply
            .clone()
            .unwrap();
        assert!(last.finished, "{last:?}");
        applies.push(last.apply_id);
    }

    let kept: BTreeSet<String> = query(
        &sandbox,
        "SELECT DISTINCT apply_id FROM flipover.journal",
        &["apply_id"],
    )
    .await
    .into_iter()
    .map(|row| row[0].clone())
    .collect();
    assert_eq!(
        kept,
        applies[2..].iter().cloned().collect(),
        "the latest 3 of {applies:?}"
    );
    // Pruning and journaling added no GTID.
    assert_eq!(gtid(&observe(&file)), before);

    // Every apply kept recorded the topology it left, without secrets.
    let records = query(
        &sandbox,
        "SELECT apply_id, state, detail FROM flipover.journal WHERE step = 'topology' ORDER BY at",
        &["apply_id", "state", "detail"],
    )
    .await;
    assert_eq!(records.len(), 3, "{records:?}");
    for record in &records {
        assert_eq!(record[1], "complete");
        let remembered =
            flipover::topology::parse(&record[2], std::path::Path::new("journal")).unwrap();
        assert_eq!(remembered.primary().host, sandbox.host("db1").address);
        assert_eq!(remembered.journal().keep_applies, 3);
        assert!(remembered.access().password.is_none(), "{}", record[2]);
        assert!(!record[2].contains("secrets/"), "{}", record[2]);
    }
}
crate::per_server!(the_journal_keeps_the_latest_applies);
