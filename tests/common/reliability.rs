//! Evidence for RELIABILITY.md: a test that injects a fault records one
//! [`Row`] per case with [`record`]; `scripts/reliability-report` (run by
//! `scripts/test` after the suite) turns every recorded row into the tables
//! of RELIABILITY.md. Nothing here is written by hand.
//!
//! ```ignore
//! reliability::record(&Row {
//!     category: "flipover killed (SIGKILL)".into(),
//!     test: "faults_switchover".into(),
//!     fault: "SIGKILL flipover".into(),
//!     operation: "switchover db1 -> db2".into(),
//!     checkpoint: "switchover.fenced".into(),
//!     outcome: Outcome::Converged,
//!     writes_acknowledged: 812,
//!     writes_found: 812,
//!     duration: started.elapsed(),
//!     note: String::new(),
//! });
//! ```
//!
//! Rows go to `target/reliability/<test>-<case>.json` (or
//! `$FLIPOVER_RELIABILITY_DIR`), one file per case, so a re-run replaces
//! its own rows and tests running in parallel never share a file.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The desired topology was reached (after a re-apply where the fault
    /// interrupted one).
    Converged,
    /// The operation refused or undid itself: the servers are as they were.
    RolledBack,
    /// Bad input or an unauthorised client was turned away before anything
    /// changed (the test checks the servers afterwards).
    Refused,
    /// Neither: the test fails too.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// The table this row belongs to in RELIABILITY.md.
    pub category: String,
    /// The test (file) that recorded it.
    pub test: String,
    /// What was done to the system.
    pub fault: String,
    /// What flipover was doing.
    pub operation: String,
    /// Where the fault hit (a checkpoint name, or a phase in words).
    pub checkpoint: String,
    pub outcome: Outcome,
    /// Inserts the writer saw acknowledged since the test started, up to the
    /// end of this case (0 when no writer ran).
    pub writes_acknowledged: u64,
    /// Of those, how many every server holds after this case.
    pub writes_found: u64,
    #[serde(with = "millis")]
    pub duration: Duration,
    /// Anything a reader should know about this case.
    pub note: String,
}

impl Row {
    pub fn lost(&self) -> u64 {
        self.writes_acknowledged.saturating_sub(self.writes_found)
    }
}

/// Where rows are written.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLIPOVER_RELIABILITY_DIR") {
        return PathBuf::from(dir);
    }
    // CARGO_TARGET_TMPDIR is target/tmp for integration tests; the report
    // generator (an example, run from the repository root) has none.
    match option_env!("CARGO_TARGET_TMPDIR") {
        Some(tmp) => PathBuf::from(tmp)
            .parent()
            .expect("target/")
            .join("reliability"),
        None => PathBuf::from("target/reliability"),
    }
}

/// Writes `row` as `<dir>/<test>-<fault>-<operation>-<checkpoint>.json`
/// (made file-safe): one file per case.
pub fn record(row: &Row) {
    let dir = dir();
    std::fs::create_dir_all(&dir).expect("creating the reliability directory");
    let case: String = format!(
        "{}-{}-{}-{}",
        row.test, row.fault, row.operation, row.checkpoint
    )
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || c == '.' {
            c
        } else {
            '_'
        }
    })
    .collect();
    let path = dir.join(format!("{case}.json"));
    let text = serde_json::to_string_pretty(row).expect("a row serializes");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
