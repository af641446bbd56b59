//! The apply journal's SQL: `flipover.journal`, kept on every server the
//! apply holds the cluster lock on, written with binary logging off for the
//! session so that it adds no GTIDs, and read back by every observation.

use super::quote_literal;

/// The apply journal: kept on every server, never binlogged (`sql_log_bin=0`),
/// so it adds no GTIDs and survives the machine that ran flipover.
pub const SETUP: &[&str] = &[
    "SET SESSION sql_log_bin = 0",
    "CREATE DATABASE IF NOT EXISTS flipover",
    "CREATE TABLE IF NOT EXISTS flipover.journal (\
       apply_id VARCHAR(40) NOT NULL, seq INT NOT NULL, step VARCHAR(255) NOT NULL, \
       state VARCHAR(16) NOT NULL, detail TEXT, \
       at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
       operator VARCHAR(255) NOT NULL, PRIMARY KEY (apply_id, seq)) ENGINE=InnoDB",
];

/// The rows of the latest apply recorded on a server, in order.
pub const LATEST: &str = "SELECT apply_id, seq, step, state, detail, \
     DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s') AS at, operator FROM flipover.journal \
     WHERE apply_id = (SELECT apply_id FROM flipover.journal ORDER BY at DESC, seq DESC LIMIT 1) \
     ORDER BY seq";

/// How many old rows one apply deletes at most: the journal shrinks to its
/// limit over a few applies rather than in one long statement.
pub const PRUNE_BATCH_ROWS: u32 = 10_000;

/// Deletes the rows of the applies older than the latest `keep` (an apply
/// is as old as its first row), oldest first, at most [`PRUNE_BATCH_ROWS`].
/// Run on a journal connection, whose binary logging is off. With fewer
/// applies than `keep`, the subquery finds no row and nothing is deleted.
pub fn prune(keep: u32) -> String {
    format!(
        "DELETE FROM flipover.journal WHERE at < (SELECT started FROM \
         (SELECT MIN(at) AS started FROM flipover.journal GROUP BY apply_id \
         ORDER BY started DESC LIMIT 1 OFFSET {offset}) AS kept) \
         ORDER BY at LIMIT {PRUNE_BATCH_ROWS}",
        offset = keep.max(1) - 1
    )
}

/// The step of the journal entry that records the topology an apply
/// leaves; its state is the apply's outcome, its detail the topology as TOML.
macro_rules! topology_step {
    () => {
        "topology"
    };
}
pub const TOPOLOGY_STEP: &str = topology_step!();

/// The latest topology recorded in a server's journal, with when and by
/// which apply (`at` with microseconds, so that servers' records compare).
pub const LATEST_TOPOLOGY: &str = concat!(
    "SELECT apply_id, state, detail, DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f') AS at \
     FROM flipover.journal WHERE step = '",
    topology_step!(),
    "' ORDER BY at DESC, seq DESC LIMIT 1"
);

/// Records one event of an apply.
pub fn insert(
    apply_id: &str,
    seq: u32,
    step: &str,
    state: &str,
    detail: Option<&str>,
    operator: &str,
) -> String {
    format!(
        "INSERT INTO flipover.journal (apply_id, seq, step, state, detail, operator) \
         VALUES ({}, {seq}, {}, {}, {}, {})",
        quote_literal(apply_id),
        quote_literal(step),
        quote_literal(state),
        detail
            .map(quote_literal)
            .unwrap_or_else(|| "NULL".to_string()),
        quote_literal(operator)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_quoted() {
        assert_eq!(
            insert(
                "1-ab",
                3,
                "clone db2 from db1",
                "failed",
                Some("it's gone"),
                "me@h pid 1"
            ),
            "INSERT INTO flipover.journal (apply_id, seq, step, state, detail, operator) \
             VALUES ('1-ab', 3, 'clone db2 from db1', 'failed', 'it''s gone', 'me@h pid 1')"
        );
        assert!(insert("a", 0, "apply", "started", None, "o").contains(", NULL, "));
    }

    #[test]
    fn pruning_keeps_at_least_the_latest_apply() {
        assert!(prune(100).contains("LIMIT 1 OFFSET 99)"));
        assert!(prune(1).contains("LIMIT 1 OFFSET 0)"));
        assert!(prune(0).contains("LIMIT 1 OFFSET 0)"));
    }
}
