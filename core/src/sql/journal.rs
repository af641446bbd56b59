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
}
