//! Wire types: the documents flipover writes for other programs and for
//! later runs (the saved plan, its JSON). The planner's own types do not
//! derive `Serialize`; this module is the edge that does, with a version.
//!
//! API boundary: `PlanDocument` and `schemas/plan.schema.json`; the hook
//! event (`HookEventDocument`, `schemas/hook-event.schema.json`). Within a
//! `format_version`, fields are only ever added.

pub mod apply_report;
pub mod fingerprint;
pub mod hook_event;
pub mod plan;

use sha2::{Digest, Sha256};

pub use apply_report::{
    ApplyErrorDocument, ApplyReportDocument, ApplyStepDocument, RefusalDocument,
    APPLY_REPORT_FORMAT_VERSION,
};
pub use fingerprint::{Fingerprint, StructuralFacts};
pub use hook_event::{
    HookEventDocument, HookJournalDetail, HookServer, HookStep, HOOK_EVENT_FORMAT_VERSION,
};
pub use plan::{
    DurabilityDocument, HookDocument, Note, PlanDocument, PlanFileError, PlanOptionsDocument,
    StepDocument, SummaryDocument, TopologySource, PLAN_FORMAT_VERSION,
};

/// The JSON Schema of the plan document (`schemas/plan.schema.json`).
pub fn plan_json_schema() -> serde_json::Value {
    schemars::schema_for!(PlanDocument).to_value()
}

/// The JSON Schema of the event hooks read on stdin (`schemas/hook-event.schema.json`).
pub fn hook_event_json_schema() -> serde_json::Value {
    schemars::schema_for!(HookEventDocument).to_value()
}

/// The JSON Schema of the apply report (`schemas/apply-report.schema.json`).
pub fn apply_report_json_schema() -> serde_json::Value {
    schemars::schema_for!(ApplyReportDocument).to_value()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
