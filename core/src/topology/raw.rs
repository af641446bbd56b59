//! The topology file as written: plain serde types that keep the span of every
//! value, so that the semantic checks in `validate` can point at it.
//!
//! These types are the file's wire format and the source of its JSON Schema;
//! the rest of flipover never sees them. They stay plain structs on purpose:
//! spans are lost inside `flatten` and untagged enums, which is why a secret is
//! read as a spanned `toml::Value` and converted by hand.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A flipover topology file: the desired replication topology of one cluster.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "flipover topology file", transform = absent_not_null)]
pub struct RawTopology {
    /// The cluster this file describes.
    #[schemars(with = "RawCluster")]
    pub cluster: Option<Spanned<RawCluster>>,
    /// How flipover reaches servers and agents.
    #[serde(default)]
    pub access: RawAccess,
    /// Defaults for per-server keys.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// The servers, by name (`[servers.NAME]`). Exactly one has no `source`: the primary.
    #[schemars(
        with = "BTreeMap<String, RawServer>",
        extend("minProperties" = 1, "propertyNames" = { "pattern": "^[A-Za-z0-9_.-]+$" })
    )]
    pub servers: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawServer>>>>,
    /// Commands run before and after switchovers and failovers, and after clones.
    #[serde(default)]
    pub hooks: RawHooks,
    /// The apply journal flipover keeps on every server.
    #[serde(default)]
    pub journal: RawJournal,
}

/// `[journal]`: how much of the apply journal (`flipover.journal`, on every
/// server) is kept.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Journal", transform = absent_not_null)]
pub struct RawJournal {
    /// How many applies each server keeps in its journal, the latest ones
    /// (default 100, at least 1). Older ones are deleted, without binary
    /// logging, when an apply starts.
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1))]
    pub keep_applies: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Cluster", transform = absent_not_null)]
pub struct RawCluster {
    /// Name of the cluster, shown in plans and status output.
    #[schemars(with = "String", length(min = 1))]
    pub name: Option<Spanned<String>>,
    /// Switchover refuses a candidate lagging more than this many seconds (default 5).
    #[serde(default)]
    #[schemars(with = "u64")]
    pub max_replica_lag: Option<Spanned<u64>>,
    /// Switchover refuses while the old primary has a transaction open longer
    /// than this many seconds (default 10).
    #[serde(default)]
    #[schemars(with = "u64")]
    pub max_transaction_age: Option<Spanned<u64>>,
    /// How long a switchover waits, writes blocked, for the candidate to
    /// apply the old primary's last transactions before rolling back (seconds, default 10).
    #[serde(default)]
    #[schemars(with = "u64", range(min = 1))]
    pub switchover_timeout: Option<Spanned<u64>>,
    /// What a write's acknowledgement promises: `async` (default; a failover
    /// may lose writes no replica received) or `semi-sync` (MariaDB's
    /// semi-synchronous replication, AFTER_SYNC: the primary acknowledges a
    /// commit only once a replica has it, so a failover loses none).
    #[serde(default)]
    #[schemars(with = "DurabilitySchema")]
    pub durability: Option<Spanned<String>>,
    /// With `durability = "semi-sync"`: how long the primary waits for a
    /// replica's acknowledgement before it falls back to async (seconds,
    /// default 10). Raise it to block writes rather than lose durability.
    #[serde(default)]
    #[schemars(with = "u64", range(min = 1))]
    pub semi_sync_timeout: Option<Spanned<u64>>,
}

/// The JSON Schema of `durability`: one of the modes.
pub struct DurabilitySchema;

impl JsonSchema for DurabilitySchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Durability".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": super::model::DURABILITY_MODES,
            "default": "async"
        })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Access", transform = absent_not_null)]
pub struct RawAccess {
    /// Admin account used over the MySQL protocol (default `flipover`).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1))]
    pub user: Option<Spanned<String>>,
    /// Password of `user`.
    #[serde(default)]
    #[schemars(with = "SecretSchema")]
    pub password: Option<Spanned<toml::Value>>,
    /// Replication account (default `repl`).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1))]
    pub repl_user: Option<Spanned<String>>,
    /// Password of `repl_user`.
    #[serde(default)]
    #[schemars(with = "SecretSchema")]
    pub repl_password: Option<Spanned<toml::Value>>,
    /// Bearer token of the agents' HTTP API.
    #[serde(default)]
    #[schemars(with = "SecretSchema")]
    pub agent_token: Option<Spanned<toml::Value>>,
    /// CA certificate (PEM file, relative to the topology file) the agents'
    /// certificates must chain to. With `client_cert` and `client_key`,
    /// flipover talks to the agents over mutual TLS.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1))]
    pub ca: Option<Spanned<String>>,
    /// flipover's client certificate for the agents (PEM file, relative to
    /// the topology file), issued by the agents' client CA.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1))]
    pub client_cert: Option<Spanned<String>>,
    /// The private key of `client_cert` (PEM file, relative to the topology file).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1))]
    pub client_key: Option<Spanned<String>>,
    /// Talk to the agents in plaintext HTTP (agents started with
    /// `--insecure`). Only for trusted networks; `plan` warns about it.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub insecure: Option<Spanned<bool>>,
}

/// Defaults for every per-server key that has one.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults", transform = absent_not_null)]
pub struct RawDefaults {
    /// MySQL port (default 3306).
    #[serde(default)]
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub port: Option<Spanned<i64>>,
    /// Port of the flipover agent's HTTP API (default 836).
    #[serde(default)]
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub agent_port: Option<Spanned<i64>>,
    /// Port on which the agent receives a backup stream (default 837).
    #[serde(default)]
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub stream_port: Option<Spanned<i64>>,
    /// Whether servers may be made primary (default true).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub promotable: Option<Spanned<bool>>,
}

/// One server (`[servers.NAME]`, NAME matching `[A-Za-z0-9_.-]+`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Server", transform = absent_not_null)]
pub struct RawServer {
    /// Host name or IP address.
    #[schemars(with = "String", length(min = 1))]
    pub host: Option<Spanned<String>>,
    /// MySQL port (default: `[defaults]`, else 3306).
    #[serde(default)]
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub port: Option<Spanned<i64>>,
    /// Port of this server's agent (default: `[defaults]`, else 836).
    #[serde(default)]
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub agent_port: Option<Spanned<i64>>,
    /// Port on which this server's agent receives a backup stream (default: `[defaults]`, else 837).
    #[serde(default)]
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub stream_port: Option<Spanned<i64>>,
    /// The server this one replicates from. Absent for the primary.
    #[serde(default)]
    #[schemars(with = "String")]
    pub source: Option<Spanned<String>>,
    /// Donor when this server must be built (default: `source`).
    #[serde(default)]
    #[schemars(with = "String")]
    pub clone_from: Option<Spanned<String>>,
    /// Whether this server may ever be made primary (default: `[defaults]`, else true).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub promotable: Option<Spanned<bool>>,
}

/// `[hooks]`: each event a list of commands, each command an argv array
/// (run without a shell) or `{ command = [...], timeout = N }`.
///
/// The lists are read as spanned `toml::Value`s and converted by hand in
/// `validate`, like secrets: an untagged enum would lose the spans.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Hooks", transform = absent_not_null)]
pub struct RawHooks {
    /// Seconds a hook command may run before it is killed (default 30).
    #[serde(default)]
    #[schemars(with = "u64", range(min = 1))]
    pub timeout: Option<Spanned<u64>>,
    /// Before a switchover fences the old primary; a failure aborts the switchover.
    #[serde(default)]
    #[schemars(with = "HookListSchema")]
    pub pre_switchover: Option<Spanned<toml::Value>>,
    /// After a switchover's new primary is writable (e.g. repoint a proxy).
    #[serde(default)]
    #[schemars(with = "HookListSchema")]
    pub post_switchover: Option<Spanned<toml::Value>>,
    /// Before a failover changes anything; a failure aborts the failover.
    #[serde(default)]
    #[schemars(with = "HookListSchema")]
    pub pre_failover: Option<Spanned<toml::Value>>,
    /// After a failover's new primary is writable.
    #[serde(default)]
    #[schemars(with = "HookListSchema")]
    pub post_failover: Option<Spanned<toml::Value>>,
    /// After a clone's target replicates.
    #[serde(default)]
    #[schemars(with = "HookListSchema")]
    pub post_clone: Option<Spanned<toml::Value>>,
}

impl RawHooks {
    /// Each event's list as written, in a fixed order.
    pub fn lists(&self) -> [(&'static str, Option<&Spanned<toml::Value>>); 5] {
        [
            ("pre_switchover", self.pre_switchover.as_ref()),
            ("post_switchover", self.post_switchover.as_ref()),
            ("pre_failover", self.pre_failover.as_ref()),
            ("post_failover", self.post_failover.as_ref()),
            ("post_clone", self.post_clone.as_ref()),
        ]
    }
}

/// The JSON Schema of a hook list; its values are read by hand in `validate`.
pub struct HookListSchema;

impl JsonSchema for HookListSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HookList".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let argv = serde_json::json!({
            "type": "array",
            "description": "The program and its arguments, run without a shell.",
            "items": { "type": "string" },
            "minItems": 1
        });
        schemars::json_schema!({
            "description": "Commands run in order; the first that fails (non-zero exit, timeout, cannot start) stops the rest.",
            "type": "array",
            "items": {
                "oneOf": [
                    argv,
                    {
                        "type": "object",
                        "description": "A command with its own timeout.",
                        "properties": {
                            "command": argv,
                            "timeout": { "type": "integer", "minimum": 1, "description": "Seconds (default: `[hooks] timeout`)." }
                        },
                        "required": ["command"],
                        "additionalProperties": false
                    }
                ]
            }
        })
    }
}

/// TOML has no null: an optional key is simply absent. `serde(default)` on an
/// `Option` would otherwise advertise `"default": null`.
fn absent_not_null(schema: &mut schemars::Schema) {
    let Some(properties) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    for property in properties.values_mut() {
        if let Some(property) = property.as_object_mut() {
            if property.get("default") == Some(&serde_json::Value::Null) {
                property.remove("default");
            }
        }
    }
}

/// The JSON Schema of a secret; its values are read by hand in `validate`.
pub struct SecretSchema;

impl JsonSchema for SecretSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A secret: a literal string, `{ env = \"VAR\" }` or `{ file = \"path\" }` (relative to the topology file).",
            "oneOf": [
                { "type": "string", "description": "The secret itself." },
                {
                    "type": "object",
                    "description": "Read from an environment variable.",
                    "properties": { "env": { "type": "string", "minLength": 1 } },
                    "required": ["env"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "description": "Read from a file; one trailing newline is dropped.",
                    "properties": { "file": { "type": "string", "minLength": 1 } },
                    "required": ["file"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
