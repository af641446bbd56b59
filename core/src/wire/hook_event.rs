//! The event a hook is told about: the JSON on its standard input, also
//! what the journal keeps of a hook that failed, so that a later plan can
//! run it again with the same event.
//!
//! Fields are only ever added within a `format_version`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The hook event format this flipover writes.
pub const HOOK_EVENT_FORMAT_VERSION: u32 = 1;

/// What happened, for a hook: the JSON a `[hooks]` command reads on stdin.
///
/// Fields are only ever added within a `format_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "flipover hook event")]
pub struct HookEventDocument {
    /// Version of this event's format: 1 (`HOOK_EVENT_FORMAT_VERSION`).
    pub format_version: u32,
    /// `pre_switchover`, `post_switchover`, `pre_failover`, `post_failover` or `post_clone`.
    pub hook: String,
    /// `[cluster] name`.
    pub cluster: String,
    /// The step the hook runs for.
    pub step: HookStep,
    /// The primary before the step (switchover, failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_primary: Option<HookServer>,
    /// The primary after the step (switchover, failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_primary: Option<HookServer>,
    /// The server built (clone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<HookServer>,
    /// The server it was copied from (clone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub donor: Option<HookServer>,
    /// `true` when a later apply runs a post hook that failed before.
    #[serde(default)]
    pub rerun: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HookStep {
    /// `switchover`, `failover`, `clone`.
    pub kind: String,
    /// The step's stable id, e.g. `switchover db2`.
    pub id: String,
    /// e.g. `switchover db1 -> db2`.
    pub title: String,
}

/// A server by name and MySQL address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HookServer {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl HookServer {
    /// `host:port`, with IPv6 hosts in brackets.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What the journal records with a hook's entries (`detail`, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookJournalDetail {
    pub event: HookEventDocument,
    /// Why it failed (the end of its stderr included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HookEventDocument {
    /// The environment a hook gets besides flipover's own: `FLIPOVER_*`.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("FLIPOVER_HOOK".to_string(), self.hook.clone()),
            ("FLIPOVER_CLUSTER".to_string(), self.cluster.clone()),
            ("FLIPOVER_STEP".to_string(), self.step.kind.clone()),
            ("FLIPOVER_STEP_ID".to_string(), self.step.id.clone()),
            ("FLIPOVER_STEP_TITLE".to_string(), self.step.title.clone()),
            (
                "FLIPOVER_RERUN".to_string(),
                if self.rerun { "1" } else { "0" }.to_string(),
            ),
        ];
        for (prefix, server) in [
            ("FLIPOVER_OLD_PRIMARY", &self.old_primary),
            ("FLIPOVER_NEW_PRIMARY", &self.new_primary),
            ("FLIPOVER_TARGET", &self.target),
            ("FLIPOVER_DONOR", &self.donor),
        ] {
            if let Some(server) = server {
                env.push((prefix.to_string(), server.name.clone()));
                env.push((format!("{prefix}_HOST"), server.host.clone()));
                env.push((format!("{prefix}_PORT"), server.port.to_string()));
                env.push((format!("{prefix}_ADDR"), server.address()));
            }
        }
        env
    }

    /// The key that tells two runs of the same hook for the same step apart
    /// from other hooks: `post_switchover for switchover db2`.
    pub fn key(&self) -> String {
        format!("{} for {}", self.hook, self.step.id)
    }
}
