//! The apply report: what `flipover apply --json` prints when it ends, for
//! scripts and CI. Versioned like the plan document: fields are only ever
//! added within a `format_version`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Note;

/// The apply report format this flipover writes.
pub const APPLY_REPORT_FORMAT_VERSION: u32 = 1;

/// How an apply ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApplyReportDocument {
    /// Version of this document's format: 1 (`APPLY_REPORT_FORMAT_VERSION`).
    pub format_version: u32,
    /// The flipover that applied the plan.
    pub flipover_version: String,
    pub cluster: String,
    /// `succeeded` (every step and hook did its job), `failed` (a step or a
    /// post hook failed: see `steps`), `refused` (nothing was run: see
    /// `refusal`), or `no-changes`.
    pub outcome: String,
    /// Why nothing was run, when `outcome` is `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<RefusalDocument>,
    /// The plan's summary line.
    pub summary: String,
    /// Every step, in plan order.
    pub steps: Vec<ApplyStepDocument>,
    /// From the start of the first step to the end of the last.
    pub elapsed_ms: u64,
}

/// Why an apply ran nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefusalDocument {
    /// `plan-has-problems`, `stale-plan`, `lock-held`, `invalid-plan-file`,
    /// `not-confirmed`.
    pub code: String,
    pub message: String,
    /// The plan's problems, when they are the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Note>,
}

/// One step and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApplyStepDocument {
    /// 1-based position in the plan's order.
    pub number: usize,
    /// The step's id, as in the plan document: `clone db2`.
    pub id: String,
    pub kind: String,
    pub title: String,
    /// `succeeded`, `failed`, or `skipped` (not started: a step it depends
    /// on failed).
    pub outcome: String,
    /// How long it took, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApplyErrorDocument>,
    /// A post hook that failed after the step succeeded (the next plan runs
    /// it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_error: Option<String>,
}

/// A failed step's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApplyErrorDocument {
    /// What went wrong: `precheck`, `hook-veto`, `unreachable`,
    /// `statement`, `timeout`, `agent`, `clone`, `replication`, `catch-up`,
    /// `hook`, `access`.
    pub code: String,
    /// The state the step left its servers in: `unchanged`, `rolled-back`
    /// (it put back what it had changed) or `changed`.
    pub servers_left: String,
    pub message: String,
}

impl ApplyReportDocument {
    pub fn new(
        cluster: &str,
        outcome: &str,
        summary: String,
        steps: Vec<ApplyStepDocument>,
        elapsed_ms: u64,
    ) -> ApplyReportDocument {
        ApplyReportDocument {
            format_version: APPLY_REPORT_FORMAT_VERSION,
            flipover_version: env!("CARGO_PKG_VERSION").to_string(),
            cluster: cluster.to_string(),
            outcome: outcome.to_string(),
            refusal: None,
            summary,
            steps,
            elapsed_ms,
        }
    }

    /// A report of an apply that ran nothing.
    pub fn refused(
        cluster: &str,
        summary: String,
        refusal: RefusalDocument,
    ) -> ApplyReportDocument {
        ApplyReportDocument {
            refusal: Some(refusal),
            ..ApplyReportDocument::new(cluster, "refused", summary, Vec::new(), 0)
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an apply report serializes") + "\n"
    }
}
