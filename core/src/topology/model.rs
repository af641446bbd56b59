//! The validated, resolved desired topology: what the rest of flipover uses.
//!
//! Produced only by [`crate::topology::parse`] (which checks every rule of the
//! file contract), so code that holds a `Topology` may rely on: exactly one
//! primary, every `source`/`clone_from` names a server, no cycles, unique
//! `host:port` pairs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

/// Default MySQL port.
pub const DEFAULT_PORT: u16 = 3306;
/// Default port of the flipover agent's HTTP API.
pub const DEFAULT_AGENT_PORT: u16 = 836;
/// Default port on which an agent receives a backup stream.
pub const DEFAULT_STREAM_PORT: u16 = 837;

/// The desired replication topology of one cluster.
///
/// Its fields are private: a `Topology` comes only from [`super::parse`]
/// (a file) or from [`Topology::from_parts`] / [`Topology::with_sources`],
/// which write the parts as a topology file and parse that, so every
/// topology obeys every rule of the file contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub(super) cluster: Cluster,
    pub(super) access: Access,
    /// Servers by name, sorted so that everything derived from them is deterministic.
    pub(super) servers: BTreeMap<String, Server>,
    /// Commands run around switchovers, failovers and clones (`[hooks]`).
    #[serde(skip_serializing_if = "Hooks::is_empty")]
    pub(super) hooks: Hooks,
    /// How much of the apply journal each server keeps (`[journal]`).
    pub(super) journal: Journal,
    /// Directory that relative `{ file = … }` secrets are resolved against
    /// (the topology file's own directory).
    #[serde(skip)]
    pub(super) base_dir: PathBuf,
}

/// The parts of a topology built outside a file (discovery, the seed's
/// command line), before [`Topology::from_parts`] checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyParts {
    pub cluster: Cluster,
    pub access: Access,
    pub servers: BTreeMap<String, Server>,
    pub hooks: Hooks,
    pub journal: Journal,
    pub base_dir: PathBuf,
}

/// `[journal]`: how much of the apply journal each server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Journal {
    /// The latest applies kept on each server (at least 1); older ones are
    /// deleted as an apply starts.
    pub keep_applies: u32,
}

/// Applies each server's journal keeps unless `[journal] keep_applies` says.
pub const DEFAULT_JOURNAL_KEEP_APPLIES: u32 = 100;

impl Default for Journal {
    fn default() -> Self {
        Journal {
            keep_applies: DEFAULT_JOURNAL_KEEP_APPLIES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    pub name: String,
    /// Switchover refuses a candidate lagging more (seconds).
    pub max_replica_lag: u64,
    /// Switchover refuses while a transaction on the old primary is older (seconds).
    pub max_transaction_age: u64,
    /// How long writes stay blocked waiting for the candidate before a
    /// switchover rolls back (seconds).
    pub switchover_timeout: u64,
    /// What an acknowledged write survives.
    pub durability: Durability,
    /// With semi-sync: how long the primary waits for a replica's
    /// acknowledgement before it falls back to async (seconds).
    pub semi_sync_timeout: u64,
}

/// What an acknowledged write survives (`[cluster] durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Replication is asynchronous: a failover may lose writes the primary
    /// acknowledged and no replica had received.
    Async,
    /// MariaDB's semi-synchronous replication with the AFTER_SYNC wait point:
    /// a commit is acknowledged only once a replica has received it.
    SemiSync,
}

/// The spellings of [`Durability`] in the file, in its order.
pub const DURABILITY_MODES: &[&str] = &["async", "semi-sync"];

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Async => "async",
            Durability::SemiSync => "semi-sync",
        }
    }

    pub fn parse(text: &str) -> Option<Durability> {
        match text {
            "async" => Some(Durability::Async),
            "semi-sync" => Some(Durability::SemiSync),
            _ => None,
        }
    }
}

/// Defaults of the `[cluster]` limits.
pub const DEFAULT_MAX_REPLICA_LAG: u64 = 5;
pub const DEFAULT_MAX_TRANSACTION_AGE: u64 = 10;
pub const DEFAULT_SWITCHOVER_TIMEOUT: u64 = 10;
/// The server's own default of `rpl_semi_sync_master_timeout` (10 000 ms).
pub const DEFAULT_SEMI_SYNC_TIMEOUT: u64 = 10;

/// How flipover reaches servers and agents. Every field is optional in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// Admin account used over the MySQL protocol (default `flipover`).
    pub user: String,
    pub password: Option<Secret>,
    /// Replication account (default `repl`).
    pub repl_user: String,
    pub repl_password: Option<Secret>,
    pub agent_token: Option<Secret>,
    /// How flipover reaches the agents.
    pub agent_tls: AgentTls,
}

/// How flipover talks to the agents (`[access]` ca/client_cert/client_key
/// or `insecure`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentTls {
    /// Mutual TLS; relative paths against the topology file's directory.
    Files {
        ca: PathBuf,
        client_cert: PathBuf,
        client_key: PathBuf,
    },
    /// Plaintext HTTP, asked for explicitly (`insecure = true`).
    Insecure,
    /// Neither: flipover refuses to talk to agents.
    #[default]
    Unset,
}

/// When a hook runs: before or after a step of some kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    PreSwitchover,
    PostSwitchover,
    PreFailover,
    PostFailover,
    PostClone,
}

impl HookEvent {
    pub const ALL: [HookEvent; 5] = [
        HookEvent::PreSwitchover,
        HookEvent::PostSwitchover,
        HookEvent::PreFailover,
        HookEvent::PostFailover,
        HookEvent::PostClone,
    ];

    /// The key in `[hooks]`, also `FLIPOVER_HOOK`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::PreSwitchover => "pre_switchover",
            HookEvent::PostSwitchover => "post_switchover",
            HookEvent::PreFailover => "pre_failover",
            HookEvent::PostFailover => "post_failover",
            HookEvent::PostClone => "post_clone",
        }
    }

    pub fn from_name(name: &str) -> Option<HookEvent> {
        HookEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// A `pre_*` hook runs before anything changes and can veto the step.
    pub fn is_pre(self) -> bool {
        matches!(self, HookEvent::PreSwitchover | HookEvent::PreFailover)
    }
}

impl std::fmt::Display for HookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One hook command: a program and its arguments, run without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookCommand {
    /// `argv[0]` is the program: found on `PATH` when it has no `/`, else a
    /// path (relative ones from the topology file's directory).
    pub argv: Vec<String>,
    /// Killed (with everything it started) after this many seconds.
    pub timeout_seconds: u64,
}

impl HookCommand {
    /// The command as people read it: arguments with spaces quoted.
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|arg| {
                if arg.is_empty()
                    || arg.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c))
                {
                    format!("'{}'", arg.replace('\'', "'\\''"))
                } else {
                    arg.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The `[hooks]` table: commands per event, run in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hooks {
    pub commands: BTreeMap<HookEvent, Vec<HookCommand>>,
}

/// Default hook timeout (seconds).
pub const DEFAULT_HOOK_TIMEOUT: u64 = 30;

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.commands.values().all(Vec::is_empty)
    }

    /// The commands of `event`, in the order they run (none when not set).
    pub fn for_event(&self, event: HookEvent) -> &[HookCommand] {
        self.commands.get(&event).map_or(&[], Vec::as_slice)
    }
}

/// A secret value as written in the topology file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Secret {
    /// `"literal"`
    Literal(String),
    /// `{ env = "VAR" }`
    Env(String),
    /// `{ file = "path" }`, relative paths against the topology file's directory.
    File(PathBuf),
}

/// One server of the desired topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub agent_port: u16,
    pub stream_port: u16,
    /// The server this one replicates from; `None` for the primary.
    pub source: Option<String>,
    /// Donor when this server must be built (default: `source`).
    pub clone_from: Option<String>,
    /// Whether this server may ever be made primary.
    pub promotable: bool,
}

impl Topology {
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Every server, by name (sorted: everything derived from them is
    /// deterministic).
    pub fn servers(&self) -> &BTreeMap<String, Server> {
        &self.servers
    }

    /// The server called `name`.
    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.get(name)
    }

    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    pub fn journal(&self) -> Journal {
        self.journal
    }

    /// The directory relative paths of the file are read against.
    pub fn base_dir(&self) -> &std::path::Path {
        &self.base_dir
    }

    /// The parts of this topology, to change and check again with
    /// [`Topology::from_parts`].
    pub fn to_parts(&self) -> TopologyParts {
        TopologyParts {
            cluster: self.cluster.clone(),
            access: self.access.clone(),
            servers: self.servers.clone(),
            hooks: self.hooks.clone(),
            journal: self.journal,
            base_dir: self.base_dir.clone(),
        }
    }

    /// A topology from parts built outside a file, checked by every rule of
    /// the file contract: the parts are written as a topology file
    /// ([`super::to_toml`]) and parsed back, so no rule has a second
    /// implementation. `origin` names the text in diagnostics.
    pub fn from_parts(
        parts: TopologyParts,
        origin: &str,
    ) -> Result<Topology, super::TopologyError> {
        let text = super::write::parts_to_toml(&parts);
        super::parse_in(&text, origin, parts.base_dir)
    }

    /// This topology with other sources (`None`: the primary) for the named
    /// servers, checked by the same rules as a file: a change of primary
    /// chosen by `--failover`, the desired tree a saved plan recorded.
    pub fn with_sources(
        &self,
        sources: &BTreeMap<String, Option<String>>,
        origin: &str,
    ) -> Result<Topology, super::TopologyError> {
        let mut parts = self.to_parts();
        for (name, source) in sources {
            match parts.servers.get_mut(name) {
                Some(server) => server.source = source.clone(),
                None => {
                    return Err(super::TopologyError::UnknownServer {
                        origin: origin.to_string(),
                        name: name.clone(),
                    })
                }
            }
        }
        Topology::from_parts(parts, origin)
    }

    /// The one server without a `source`.
    pub fn primary(&self) -> &Server {
        self.servers
            .values()
            .find(|s| s.source.is_none())
            .expect("a validated topology has exactly one primary")
    }

    /// Finds the server listening on `host:port`, if it is part of the topology.
    pub fn server_at(&self, host: &str, port: u16) -> Option<&Server> {
        self.servers
            .values()
            .find(|s| s.port == port && s.host.eq_ignore_ascii_case(host))
    }
}

impl Server {
    /// `host:port` of the MySQL server.
    pub fn mysql_address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Base URL of this server's agent (an IPv6 address in brackets).
    pub fn agent_url(&self) -> String {
        if self.host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("http://[{}]:{}", self.host, self.agent_port)
        } else {
            format!("http://{}:{}", self.host, self.agent_port)
        }
    }

    /// The server to copy data from when this one must be built: `clone_from`,
    /// else `source`; `None` for a primary without `clone_from`.
    pub fn donor(&self) -> Option<&str> {
        self.clone_from.as_deref().or(self.source.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_urls_put_ipv6_addresses_in_brackets() {
        let server = |host: &str| Server {
            name: "db1".into(),
            host: host.into(),
            port: 3306,
            agent_port: 836,
            stream_port: 837,
            source: None,
            clone_from: None,
            promotable: true,
        };
        assert_eq!(server("10.0.0.1").agent_url(), "http://10.0.0.1:836");
        assert_eq!(server("db1.example").agent_url(), "http://db1.example:836");
        assert_eq!(server("fd00::1").agent_url(), "http://[fd00::1]:836");
    }
}
