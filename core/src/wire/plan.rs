//! The plan document: what `plan --json` prints and `plan -out` saves, and
//! what `show` and `apply PLANFILE` read back.
//!
//! Versioning: `format_version` is [`PLAN_FORMAT_VERSION`]. Within a version,
//! fields are only ever added (readers ignore fields they do not know);
//! removing, renaming or changing the meaning of one bumps the version, and
//! a reader refuses a version it was not built for.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Fingerprint;

/// The plan document format this flipover writes and reads.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// A plan, as a self-contained document: the topology it was made for, the
/// fingerprint of what was observed, the steps and the verdict.
///
/// Fields are only ever added within a `format_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanDocument {
    /// Version of this document's format: 1 (`PLAN_FORMAT_VERSION`).
    pub format_version: u32,
    /// The flipover that made the plan (`flipover --version`).
    pub flipover_version: String,
    /// `[cluster] name` of the topology.
    pub cluster: String,
    /// The topology file the plan was made from, verbatim.
    pub topology: TopologySource,
    /// Each server's desired source (`null`: the primary), as planned: with
    /// `--failover`, after flipover's choice of the new primary.
    pub desired: BTreeMap<String, Option<String>>,
    /// The observed structural facts the plan depends on.
    pub fingerprint: Fingerprint,
    pub options: PlanOptionsDocument,
    /// The steps, in an order that respects every dependency.
    pub steps: Vec<StepDocument>,
    /// What the planner could not plan: a plan with problems is never applied.
    pub problems: Vec<Note>,
    /// Worth knowing, but no reason to refuse the plan.
    pub warnings: Vec<Note>,
    pub summary: SummaryDocument,
    /// What an acknowledged write survives (`[cluster] durability`) and what
    /// that means now; absent from plans made before flipover reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<DurabilityDocument>,
    /// Whether the plan has any step (`--detailed-exitcode`'s "changes").
    pub changes: bool,
    /// With `--failover`: the replacement flipover chose and the topology
    /// changes that implies, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_choice: Vec<String>,
    /// SHA-256 (hex) of this document's compact JSON with this field empty:
    /// every field is covered, so an edited plan file is refused. Empty in
    /// plans made before flipover sealed them (those are refused too).
    #[serde(default)]
    pub document_sha256: String,
}

/// The topology file, with its SHA-256 so that an edit is noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TopologySource {
    /// The file's name as given on the command line.
    pub file_name: String,
    /// Its full text.
    pub text: String,
    /// SHA-256 (hex) of `text`.
    pub sha256: String,
}

/// What the user asked for beyond the topology file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanOptionsDocument {
    /// `--replace` names, sorted.
    pub replace: Vec<String>,
    /// `--failover`: flipover chose the new primary.
    pub failover: bool,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepDocument {
    /// 1-based position in the plan's order.
    pub number: usize,
    /// A short stable name: `clone db2`.
    pub id: String,
    /// `clone`, `start-replication`, `rechain`, `switchover`, `failover`,
    /// `set-read-only` or `set-durability`.
    pub kind: String,
    /// The server the step changes (the new primary for a switchover or failover).
    pub target: String,
    /// Every server the step changes.
    pub servers: Vec<String>,
    /// One line saying what it does.
    pub title: String,
    /// Numbers of the steps this one waits for.
    pub depends_on: Vec<usize>,
    /// It overwrites data (a `--replace` clone).
    pub destructive: bool,
    /// It stops writes to the cluster for a moment (a switchover).
    pub blocks_writes: bool,
    /// How long writes stay blocked, in milliseconds: 0 for steps that never
    /// block them; `null` when unknown (a failover: writes already stopped
    /// with the primary).
    pub write_block_estimate_ms: Option<u64>,
    /// GTIDs lost for good if the step runs (only the target has them).
    pub gtids_at_risk: Vec<String>,
    /// What the step will do, in order (the lines `plan` prints under it).
    pub details: Vec<String>,
    /// The `[hooks]` commands that run before and after it (for a
    /// `run-hook` step: the hook it runs again).
    #[serde(default)]
    pub hooks: Vec<HookDocument>,
}

/// One hook command of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HookDocument {
    /// `pre_switchover`, `post_switchover`, `pre_failover`, `post_failover` or `post_clone`.
    pub hook: String,
    /// Program and arguments, run without a shell.
    pub command: Vec<String>,
    pub timeout_seconds: u64,
}

/// The plan's durability line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DurabilityDocument {
    /// `async` or `semi-sync`.
    pub mode: String,
    /// What it means now, in words: with async, what a failover could lose;
    /// with semi-sync, the timeout and the primary's semi-sync state.
    pub text: String,
}

/// A problem or warning of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Note {
    /// Its stable code (`docs/problem-codes.md`), what CI gates match on;
    /// empty in plans made before flipover had codes.
    #[serde(default)]
    pub code: String,
    /// The server concerned; `null` for the plan as a whole.
    pub server: Option<String>,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

/// Step counts, and the summary line `plan` ends with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SummaryDocument {
    pub clone: usize,
    pub rechain: usize,
    pub switchover: usize,
    pub failover: usize,
    /// start-replication steps that do not just finish a clone.
    pub start_replication: usize,
    pub set_read_only: usize,
    /// set-durability steps (semi-sync configured).
    #[serde(default)]
    pub set_durability: usize,
    /// Post hooks of an earlier apply that run again.
    #[serde(default)]
    pub run_hook: usize,
    pub destructive: usize,
    /// `Plan: 2 clone, 0 rechain, 0 switchover, 0 failover; 0 destructive.`
    pub line: String,
}

/// Why a file is not a plan this flipover can use.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("the plan file is cut short (it ends at line {line}, column {column})")]
    Truncated { line: usize, column: usize },
    #[error("the plan file is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("this is not a flipover plan: {0}")]
    NotAPlan(String),
    #[error(
        "the plan file has format version {found}; this flipover reads format version {supported}"
    )]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("the plan file does not match plan format version {version}: {source}")]
    Invalid {
        version: u32,
        source: serde_json::Error,
    },
    #[error("the plan file was edited: {0}")]
    Edited(String),
}

impl PlanDocument {
    /// Pretty JSON with a final newline: the bytes `plan --json` prints.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan document serializes") + "\n"
    }

    /// Reads a plan document, refusing other format versions, foreign or
    /// cut-short files, and files whose topology or fingerprint no longer
    /// match their hashes.
    pub fn from_json(text: &str) -> Result<PlanDocument, PlanFileError> {
        // The version is checked before the shape, so that a future format is
        // refused as such rather than as a malformed file; other flipover
        // documents (an observed.json) have a format_version but no steps.
        let value: serde_json::Value = serde_json::from_str(text).map_err(|error| {
            if error.is_eof() {
                PlanFileError::Truncated {
                    line: error.line(),
                    column: error.column(),
                }
            } else {
                PlanFileError::NotJson(error)
            }
        })?;
        let Some(object) = value.as_object() else {
            return Err(PlanFileError::NotAPlan(
                "it is JSON, but not an object".to_string(),
            ));
        };
        let version = match object.get("format_version") {
            Some(version) => version.as_u64().ok_or_else(|| {
                PlanFileError::NotAPlan(format!("format_version is {version}, not a number"))
            })?,
            None => {
                return Err(PlanFileError::NotAPlan(
                    "it has no format_version".to_string(),
                ))
            }
        };
        if version != u64::from(PLAN_FORMAT_VERSION) {
            return Err(PlanFileError::UnsupportedVersion {
                found: version,
                supported: PLAN_FORMAT_VERSION,
            });
        }
        if !object.contains_key("steps") || !object.contains_key("fingerprint") {
            return Err(PlanFileError::NotAPlan(
                "it has no steps or no fingerprint".to_string(),
            ));
        }
        let document: PlanDocument =
            serde_json::from_value(value).map_err(|source| PlanFileError::Invalid {
                version: PLAN_FORMAT_VERSION,
                source,
            })?;
        if super::sha256_hex(document.topology.text.as_bytes()) != document.topology.sha256 {
            return Err(PlanFileError::Edited(
                "the topology text does not match its sha256".to_string(),
            ));
        }
        if !document.fingerprint.is_consistent() {
            return Err(PlanFileError::Edited(
                "the fingerprint's facts do not match its sha256".to_string(),
            ));
        }
        if document.document_sha256.is_empty() {
            return Err(PlanFileError::Edited(
                "it has no document_sha256 (made by an older flipover, or stripped)".to_string(),
            ));
        }
        if document.document_sha256 != document.seal_hash() {
            return Err(PlanFileError::Edited(
                "its fields do not match its document_sha256".to_string(),
            ));
        }
        Ok(document)
    }

    /// Sets `document_sha256` to the hash of everything else.
    pub fn seal(mut self) -> PlanDocument {
        self.document_sha256 = self.seal_hash();
        self
    }

    /// The hash of the document with `document_sha256` empty.
    fn seal_hash(&self) -> String {
        let unsealed = PlanDocument {
            document_sha256: String::new(),
            ..self.clone()
        };
        let json = serde_json::to_vec(&unsealed).expect("a plan document serializes");
        super::sha256_hex(&json)
    }
}

impl PlanOptionsDocument {
    /// The options with `replace` sorted and without repeats.
    pub fn new(replace: impl IntoIterator<Item = String>, failover: bool) -> PlanOptionsDocument {
        let mut replace: Vec<String> = replace.into_iter().collect();
        replace.sort();
        replace.dedup();
        PlanOptionsDocument { replace, failover }
    }
}
