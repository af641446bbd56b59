//! Discovery: the replication tree as the servers themselves describe it,
//! starting from the servers one names, as a [`Topology`].
//!
//! From each server it walks up through its replica status (`Master_Host`,
//! `Master_Port`) and down through the replicas registered with it
//! (`SHOW SLAVE HOSTS` / `SHOW REPLICAS`), breadth-first, each address once.
//! A server that does not answer is still recorded, with what its neighbours
//! say about it (a dead master named by its replicas' status, a stopped
//! replica still registered with its source). Nothing is written.
//!
//! A dead master cannot list its replicas, so discovery also reads the
//! topology flipover's latest apply left, which every server it journaled
//! remembers (`flipover.journal`): the servers named there are walked too,
//! and those that do not answer or do not join the tree are left out, with
//! a note. A cluster flipover never applied to has no such memory.
//!
//! Reused by every `flipover-cmd` mode, and meant for importing a running
//! cluster into a topology file.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::{self, Connection, DbError, Endpoint};
use crate::sql::{self, ReplicaHost};
use crate::topology::{
    Access, Cluster, Durability, Server, Topology, TopologyParts, DEFAULT_AGENT_PORT,
    DEFAULT_MAX_REPLICA_LAG, DEFAULT_MAX_TRANSACTION_AGE, DEFAULT_PORT, DEFAULT_SEMI_SYNC_TIMEOUT,
    DEFAULT_STREAM_PORT, DEFAULT_SWITCHOVER_TIMEOUT,
};

/// A MySQL server's `host:port`, hosts compared without case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl Address {
    pub fn new(host: &str, port: u16) -> Address {
        Address {
            host: host.trim().to_ascii_lowercase(),
            port,
        }
    }

    /// `HOST` or `HOST:PORT` (port 3306 when absent).
    pub fn parse(text: &str) -> Result<Address, String> {
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && !host.contains(':') => port
                .parse()
                .map(|port| Address::new(host, port))
                .map_err(|_| format!("`{port}` is not a port number")),
            _ if !text.trim().is_empty() => Ok(Address::new(text, DEFAULT_PORT)),
            _ => Err("empty address".to_string()),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A server's name in the discovered topology: the host, or `host-port`
/// when the port is not 3306 (several servers on one host).
pub fn server_name(address: &Address) -> String {
    if address.port == DEFAULT_PORT {
        address.host.clone()
    } else {
        format!("{}-{}", address.host, address.port)
    }
}

#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    pub connect_timeout: Duration,
    /// The cluster's name; default: the primary's name.
    pub cluster: Option<String>,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        DiscoverOptions {
            connect_timeout: Duration::from_secs(2),
            cluster: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot read the credentials: {0}")]
    Secret(#[from] crate::secrets::SecretError),
    #[error("{address} does not answer, so nothing can be discovered from it: {error}")]
    SeedUnreachable { address: Address, error: String },
    #[error(
        "the servers form {} separate replication trees (primaries: {}); flipover \
         manages one tree",
        roots.len(),
        roots.join(", ")
    )]
    SeveralTrees { roots: Vec<String> },
    #[error(
        "{} replicate from each other in a circle; flipover manages trees with one \
         primary (stop replication on the one meant to be the primary first)",
        servers.join(", ")
    )]
    Cycle { servers: Vec<String> },
    #[error(
        "{first} and {second} are on one host: flipover reaches each server's agent on the \
         default ports (836, 837), one server per host; for several servers per host write a \
         topology file with their agent ports"
    )]
    SharedHost { first: String, second: String },
    /// The tree found breaks a rule of the topology file (two servers on
    /// one address, say): flipover cannot manage it as it is.
    #[error("the discovered tree is not a valid topology: {0}")]
    Invalid(#[from] crate::topology::TopologyError),
}

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The tree as observed: every server found, each `source` as the server
    /// (or, when it does not answer, its source) says. Default agent ports.
    pub topology: Topology,
    /// Servers that did not answer.
    pub unreachable: BTreeSet<String>,
    /// Every address a server was seen under, to its name.
    pub names: BTreeMap<Address, String>,
    /// What discovery could not see, in words (for stderr).
    pub notes: Vec<String>,
    /// The topology flipover's latest apply left, when a server walked
    /// remembers one: its servers were walked too.
    pub memory: Option<Remembered>,
}

/// The topology an apply left, as a server's journal remembers it.
#[derive(Debug, Clone)]
pub struct Remembered {
    /// The server whose journal it was read from.
    pub read_from: Address,
    pub apply_id: String,
    /// When it was recorded (the server's clock, with microseconds).
    pub at: String,
    /// The apply's outcome: `complete`, or `failed` (then it is the
    /// topology that apply aimed for).
    pub outcome: String,
    pub topology: Topology,
}

impl Discovered {
    /// The name of the server at `address`, under any address it was seen by.
    pub fn name_of(&self, address: &Address) -> Option<&str> {
        self.names.get(address).map(String::as_str)
    }

    /// The discovered topology with what only the memory knows: each
    /// server's name, agent and stream ports, `clone_from` and `promotable`
    /// as the remembered topology has them (matched by address), and the
    /// cluster's settings and `[journal]`. Sources stay as the servers say.
    /// Without a memory (or when a remembered name would clash with a
    /// server it does not know), the discovered topology's parts.
    pub fn parts_with_memory(&self) -> TopologyParts {
        let mut parts = self.topology.to_parts();
        let Some(memory) = &self.memory else {
            return parts;
        };
        let remembered: BTreeMap<&str, &Server> = parts
            .servers
            .values()
            .filter_map(|s| Some((s.name.as_str(), memory.topology.server_at(&s.host, s.port)?)))
            .collect();
        let rename = |name: &str| {
            remembered
                .get(name)
                .map_or(name, |r| r.name.as_str())
                .to_string()
        };
        let mut servers = BTreeMap::new();
        for server in parts.servers.values() {
            let mut renamed = server.clone();
            if let Some(r) = remembered.get(server.name.as_str()) {
                renamed.name = r.name.clone();
                renamed.agent_port = r.agent_port;
                renamed.stream_port = r.stream_port;
                renamed.promotable = r.promotable;
                renamed.clone_from = r
                    .clone_from
                    .clone()
                    .filter(|donor| remembered.values().any(|m| m.name == *donor));
            }
            renamed.source = server.source.as_deref().map(rename);
            servers.insert(renamed.name.clone(), renamed);
        }
        if servers.len() == parts.servers.len() {
            parts.servers = servers;
        }
        parts.cluster = memory.topology.cluster().clone();
        parts.journal = memory.topology.journal();
        parts
    }
}

/// What one server says about itself.
struct Probe {
    server_id: u32,
    /// Its source as its replica status names it, with the source's server_id (0: unknown).
    source: Option<(Address, u32)>,
    replicas: Vec<ReplicaHost>,
    notes: Vec<String>,
    memory: Option<Remembered>,
}

/// One server found, under the address it was first found by.
struct Node {
    address: Address,
    /// The address its replicas' status uses, preferred as its name (the
    /// planner matches replicas to sources by that address).
    referenced_as: Option<Address>,
    server_id: Option<u32>,
    error: Option<String>,
    reported_source: Option<(Address, u32)>,
    replicas: Vec<ReplicaHost>,
    /// Found only through the journal's memory (or below such a server):
    /// left out unless it joins the tree of the servers named.
    via_memory: bool,
}

/// Discovers the tree from `seeds` (the first must answer).
pub async fn discover(
    access: &Access,
    seeds: &[Address],
    options: &DiscoverOptions,
) -> Result<Discovered, DiscoverError> {
    let password = match &access.password {
        Some(secret) => crate::secrets::resolve_in(secret, std::path::Path::new("."))?,
        None => String::new(),
    };
    let mut walk = Walk::default();
    let mut queue: VecDeque<(Address, bool)> = seeds.iter().map(|a| (a.clone(), false)).collect();
    loop {
        while let Some((address, via_memory)) = queue.pop_front() {
            if walk.index.contains_key(&address) || walk.left_out.contains(&address) {
                continue;
            }
            let endpoint = Endpoint {
                host: address.host.clone(),
                port: address.port,
                user: access.user.clone(),
                password: password.clone(),
                socket: None,
            };
            match probe(&endpoint, options.connect_timeout).await {
                Ok(probe) => {
                    if let Some(&known) = walk.ids.get(&probe.server_id) {
                        // The same server under another name (a hostname and its IP).
                        walk.index.insert(address, known);
                        continue;
                    }
                    if let Some((source, _)) = &probe.source {
                        queue.push_back((source.clone(), via_memory));
                    }
                    for replica in &probe.replicas {
                        match walk.ids.get(&replica.server_id) {
                            Some(_) => {}
                            None if replica.host.is_empty() => walk.notes.push(format!(
                                "{address} has a replica (server_id {}) that sets no report_host: \
                                 it cannot be found from {address}",
                                replica.server_id
                            )),
                            None => queue
                                .push_back((Address::new(&replica.host, replica.port), via_memory)),
                        }
                    }
                    walk.notes.extend(probe.notes);
                    walk.remember(probe.memory);
                    walk.add(Node {
                        address,
                        referenced_as: None,
                        server_id: Some(probe.server_id),
                        error: None,
                        reported_source: probe.source,
                        replicas: probe.replicas,
                        via_memory,
                    });
                }
                Err(error) => {
                    if walk.nodes.is_empty() {
                        return Err(DiscoverError::SeedUnreachable {
                            address,
                            error: error.to_string(),
                        });
                    }
                    if via_memory {
                        // Only the memory names it: nothing says it is
                        // still part of the tree.
                        walk.notes.push(format!(
                            "{address}, in the topology {}, does not answer: left out ({error})",
                            walk.memory_origin()
                        ));
                        walk.left_out.insert(address);
                        continue;
                    }
                    walk.add(Node {
                        address,
                        referenced_as: None,
                        server_id: None,
                        error: Some(error.to_string()),
                        reported_source: None,
                        replicas: Vec::new(),
                        via_memory,
                    });
                }
            }
        }
        // Then the servers the latest remembered topology names that the
        // walk has not met (a dead master's other replicas), until the
        // memory names nobody new.
        let Some(memory) = &walk.memory else {
            break;
        };
        let unmet: Vec<Address> = memory
            .topology
            .servers()
            .values()
            .map(|s| Address::new(&s.host, s.port))
            .filter(|a| !walk.index.contains_key(a) && !walk.left_out.contains(a))
            .collect();
        if unmet.is_empty() {
            break;
        }
        queue.extend(unmet.into_iter().map(|a| (a, true)));
    }
    walk.finish(access, options)
}

async fn probe(endpoint: &Endpoint, timeout: Duration) -> Result<Probe, DbError> {
    let mut conn = db::connect(endpoint, timeout).await?;
    let result = read(&mut conn).await;
    conn.close().await;
    result
}

async fn read(conn: &mut Connection) -> Result<Probe, DbError> {
    let dialect = conn.dialect().await?;
    let mut notes = Vec::new();
    let row = conn
        .first_row(dialect.variables_query())
        .await?
        .unwrap_or_default();
    let server_id = dialect
        .parse_variables(&row)
        .map(|v| v.server_id)
        .unwrap_or_else(|e| {
            notes.push(format!("{}: {e}", conn.address));
            0
        });
    let source = match conn.first_row(dialect.replica_status_query()).await? {
        None => None,
        Some(row) => match dialect.parse_replica_status(&row) {
            Ok(status) if !status.source_host.trim().is_empty() => Some((
                Address::new(&status.source_host, status.source_port),
                status.source_server_id,
            )),
            Ok(_) => None,
            Err(e) => {
                notes.push(format!("{}: {e}", conn.address));
                None
            }
        },
    };
    // Without the privilege to list replicas the walk still goes up; say so.
    let replicas = match conn.rows(dialect.replica_hosts_query()).await {
        Ok(rows) => rows
            .iter()
            .filter_map(|row| match dialect.parse_replica_host(row) {
                Ok(host) => Some(host),
                Err(e) => {
                    notes.push(format!("{}: {e}", conn.address));
                    None
                }
            })
            .collect(),
        Err(e) => {
            notes.push(format!("cannot list the replicas of {}: {e}", conn.address));
            Vec::new()
        }
    };
    let memory = remembered(conn).await;
    Ok(Probe {
        server_id,
        source,
        replicas,
        notes,
        memory,
    })
}

/// The latest topology this server's journal remembers; none when it has
/// no journal, or no apply recorded one.
async fn remembered(conn: &mut Connection) -> Option<Remembered> {
    let row = match conn.first_row(sql::journal::LATEST_TOPOLOGY).await {
        Ok(row) => row?,
        Err(e) => {
            tracing::debug!("{}: no journal to remember from: {e}", conn.address);
            return None;
        }
    };
    let column = |name| sql::column(&row, name).map(str::to_string);
    let origin = format!("the journal on {}", conn.address);
    let topology = match crate::topology::parse(&column("detail")?, std::path::Path::new(&origin)) {
        Ok(topology) => topology,
        Err(e) => {
            tracing::warn!("{origin}: the topology recorded there does not parse: {e}");
            return None;
        }
    };
    Some(Remembered {
        read_from: Address::parse(&conn.address).ok()?,
        apply_id: column("apply_id").unwrap_or_default(),
        at: column("at").unwrap_or_default(),
        outcome: column("state").unwrap_or_default(),
        topology,
    })
}

#[derive(Default)]
struct Walk {
    nodes: Vec<Node>,
    /// Every address seen for a node → the node.
    index: HashMap<Address, usize>,
    ids: HashMap<u32, usize>,
    notes: Vec<String>,
    /// The latest topology a walked server remembers.
    memory: Option<Remembered>,
    /// Addresses only the memory named that did not answer.
    left_out: BTreeSet<Address>,
}

impl Walk {
    /// Keeps the latest of the remembered topologies seen.
    fn remember(&mut self, memory: Option<Remembered>) {
        let Some(memory) = memory else { return };
        let newer = self
            .memory
            .as_ref()
            .is_none_or(|m| (&memory.at, &memory.apply_id) > (&m.at, &m.apply_id));
        if newer {
            self.memory = Some(memory);
        }
    }

    /// The memory in words, for notes.
    fn memory_origin(&self) -> String {
        match &self.memory {
            Some(m) => format!(
                "flipover's apply of {} left (journal on {})",
                m.at, m.read_from
            ),
            None => "flipover's journal remembers".to_string(),
        }
    }

    fn add(&mut self, node: Node) {
        let i = self.nodes.len();
        self.index.insert(node.address.clone(), i);
        if let Some(id) = node.server_id.filter(|id| *id != 0) {
            self.ids.insert(id, i);
        }
        self.nodes.push(node);
    }

    /// The node an address or server_id refers to.
    fn find(&self, address: &Address, server_id: u32) -> Option<usize> {
        self.index
            .get(address)
            .or_else(|| self.ids.get(&server_id).filter(|_| server_id != 0))
            .copied()
    }

    fn finish(
        mut self,
        access: &Access,
        options: &DiscoverOptions,
    ) -> Result<Discovered, DiscoverError> {
        // Sources: a server that answers says itself; of one that does not,
        // the server it is registered with.
        let mut sources: Vec<Option<usize>> = Vec::with_capacity(self.nodes.len());
        for i in 0..self.nodes.len() {
            let reported = self.nodes[i].reported_source.clone();
            let source = reported.and_then(|(address, id)| {
                let s = self.find(&address, id)?;
                self.nodes[s].referenced_as.get_or_insert(address);
                Some(s)
            });
            sources.push(source);
        }
        for i in 0..self.nodes.len() {
            for replica in self.nodes[i].replicas.clone() {
                let address = Address::new(&replica.host, replica.port);
                // A source lists a replica for a while after it left (until
                // its dump thread notices), so a listing never overrides what
                // the servers say of themselves, nor closes a circle.
                if let Some(r) = self.find(&address, replica.server_id) {
                    if self.nodes[r].error.is_some()
                        && sources[r].is_none()
                        && !leads_to(&sources, i, r)
                    {
                        sources[r] = Some(i);
                    }
                }
            }
        }

        let sources = self.leave_out_strays(sources);

        let names: Vec<String> = self
            .nodes
            .iter()
            .map(|n| server_name(n.referenced_as.as_ref().unwrap_or(&n.address)))
            .collect();
        check_shape(&sources, &names)?;

        let mut servers = BTreeMap::new();
        let mut unreachable = BTreeSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let address = node.referenced_as.as_ref().unwrap_or(&node.address);
            if let Some(error) = &node.error {
                self.notes
                    .push(format!("{} does not answer: {error}", names[i]));
                unreachable.insert(names[i].clone());
            }
            servers.insert(
                names[i].clone(),
                Server {
                    name: names[i].clone(),
                    host: address.host.clone(),
                    port: address.port,
                    agent_port: DEFAULT_AGENT_PORT,
                    stream_port: DEFAULT_STREAM_PORT,
                    source: sources[i].map(|s| names[s].clone()),
                    clone_from: None,
                    promotable: true,
                },
            );
        }
        shared_hosts(&servers)?;
        let primary = sources
            .iter()
            .position(Option::is_none)
            .map(|i| names[i].clone())
            .expect("check_shape found one root");
        let names_by_address = self
            .index
            .iter()
            .map(|(address, i)| (address.clone(), names[*i].clone()))
            .chain(
                self.nodes
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| Some((n.referenced_as.clone()?, names[i].clone()))),
            )
            .collect();
        Ok(Discovered {
            topology: Topology::from_parts(
                TopologyParts {
                    cluster: Cluster {
                        name: options.cluster.clone().unwrap_or(primary),
                        max_replica_lag: DEFAULT_MAX_REPLICA_LAG,
                        max_transaction_age: DEFAULT_MAX_TRANSACTION_AGE,
                        switchover_timeout: DEFAULT_SWITCHOVER_TIMEOUT,
                        durability: Durability::Async,
                        semi_sync_timeout: DEFAULT_SEMI_SYNC_TIMEOUT,
                    },
                    access: access.clone(),
                    servers,
                    hooks: Default::default(),
                    journal: Default::default(),
                    base_dir: PathBuf::from("."),
                },
                "the discovered tree",
            )?,
            unreachable,
            names: names_by_address,
            notes: self.notes,
            memory: self.memory,
        })
    }
}

impl Walk {
    /// Leaves out the servers found only through the memory that are not in
    /// the tree of the first server named (one removed from the cluster
    /// since, say), with a note; returns the sources of those kept.
    fn leave_out_strays(&mut self, sources: Vec<Option<usize>>) -> Vec<Option<usize>> {
        let root = |start: usize| -> Option<usize> {
            let mut current = start;
            for _ in 0..=sources.len() {
                match sources[current] {
                    Some(next) => current = next,
                    None => return Some(current),
                }
            }
            // A circle: check_shape reports it.
            None
        };
        let tree = root(0);
        let keep: Vec<bool> = (0..self.nodes.len())
            .map(|i| !self.nodes[i].via_memory || tree.is_none() || root(i) == tree)
            .collect();
        if keep.iter().all(|k| *k) {
            return sources;
        }
        let origin = self.memory_origin();
        let mut renumbered = vec![None; self.nodes.len()];
        let mut nodes = Vec::new();
        for (i, node) in std::mem::take(&mut self.nodes).into_iter().enumerate() {
            if keep[i] {
                renumbered[i] = Some(nodes.len());
                nodes.push(node);
            } else {
                self.notes.push(format!(
                    "{}, in the topology {origin}, is not part of this replication tree: left out",
                    node.address
                ));
            }
        }
        self.nodes = nodes;
        self.index = std::mem::take(&mut self.index)
            .into_iter()
            .filter_map(|(address, i)| Some((address, renumbered[i]?)))
            .collect();
        self.ids = std::mem::take(&mut self.ids)
            .into_iter()
            .filter_map(|(id, i)| Some((id, renumbered[i]?)))
            .collect();
        sources
            .iter()
            .enumerate()
            .filter(|(i, _)| keep[*i])
            .map(|(_, source)| source.and_then(|s| renumbered[s]))
            .collect()
    }
}

/// Discovered servers get the default agent ports, so two of them on one
/// host would share one agent.
fn shared_hosts(servers: &BTreeMap<String, Server>) -> Result<(), DiscoverError> {
    let mut seen: Vec<&Server> = Vec::new();
    for server in servers.values() {
        if let Some(first) = seen
            .iter()
            .find(|s| s.host.eq_ignore_ascii_case(&server.host))
        {
            return Err(DiscoverError::SharedHost {
                first: first.name.clone(),
                second: server.name.clone(),
            });
        }
        seen.push(server);
    }
    Ok(())
}

/// Whether `start` is `target` or replicates, directly or not, from it.
fn leads_to(sources: &[Option<usize>], start: usize, target: usize) -> bool {
    let mut current = Some(start);
    for _ in 0..=sources.len() {
        match current {
            Some(c) if c == target => return true,
            Some(c) => current = sources[c],
            None => return false,
        }
    }
    // A circle among the others: check_shape reports it.
    false
}

/// What a topology must be: one tree (one server without a source, and
/// every chain of sources ends there).
fn check_shape(sources: &[Option<usize>], names: &[String]) -> Result<(), DiscoverError> {
    for start in 0..sources.len() {
        let mut seen = vec![start];
        let mut current = start;
        while let Some(next) = sources[current] {
            if let Some(at) = seen.iter().position(|s| *s == next) {
                let mut servers: Vec<String> =
                    seen[at..].iter().map(|i| names[*i].clone()).collect();
                servers.sort();
                return Err(DiscoverError::Cycle { servers });
            }
            seen.push(next);
            current = next;
        }
    }
    let roots: Vec<String> = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| names[i].clone())
        .collect();
    if roots.len() != 1 {
        return Err(DiscoverError::SeveralTrees { roots });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names() {
        assert_eq!(
            Address::parse("DB3.example.com").unwrap(),
            Address::new("db3.example.com", 3306)
        );
        assert_eq!(
            Address::parse("10.0.0.3:3307").unwrap(),
            Address::new("10.0.0.3", 3307)
        );
        assert!(Address::parse("10.0.0.3:x").is_err());
        assert!(Address::parse("").is_err());
        assert_eq!(server_name(&Address::new("10.0.0.3", 3306)), "10.0.0.3");
        assert_eq!(server_name(&Address::new("db3", 3307)), "db3-3307");
    }

    fn node(host: &str, server_id: Option<u32>, source: Option<(&str, u32)>) -> Node {
        Node {
            address: Address::new(host, 3306),
            referenced_as: None,
            server_id,
            error: server_id.is_none().then(|| "refused".to_string()),
            reported_source: source.map(|(h, id)| (Address::new(h, 3306), id)),
            replicas: Vec::new(),
            via_memory: false,
        }
    }

    fn access() -> Access {
        Access {
            user: "flipover".into(),
            password: None,
            repl_user: "repl".into(),
            repl_password: None,
            agent_token: None,
            agent_tls: crate::topology::AgentTls::Unset,
        }
    }

    #[test]
    fn a_dead_master_named_by_its_slaves_is_the_root_despite_a_stale_listing() {
        // b was promoted over a and then died; a still lists b from when b
        // replicated from a.
        let mut walk = Walk::default();
        let mut a = node("a", Some(1), Some(("b", 2)));
        a.replicas.push(ReplicaHost {
            server_id: 2,
            host: "b".into(),
            port: 3306,
        });
        walk.add(a);
        walk.add(node("b", None, None));
        walk.add(node("c", Some(3), Some(("B", 0))));
        let found = walk.finish(&access(), &DiscoverOptions::default()).unwrap();
        let servers = &found.topology.servers();
        assert_eq!(found.topology.primary().name, "b");
        assert_eq!(servers["a"].source.as_deref(), Some("b"));
        assert_eq!(servers["c"].source.as_deref(), Some("b"));
        assert_eq!(found.unreachable, BTreeSet::from(["b".to_string()]));
        assert_eq!(found.topology.cluster().name, "b");
    }

    #[test]
    fn a_stopped_slave_hangs_under_the_source_it_is_registered_with() {
        let mut walk = Walk::default();
        let mut a = node("a", Some(1), None);
        a.replicas.push(ReplicaHost {
            server_id: 4,
            host: "d".into(),
            port: 3307,
        });
        walk.add(a);
        let mut d = node("d", None, None);
        d.address = Address::new("d", 3307);
        walk.add(d);
        let found = walk.finish(&access(), &DiscoverOptions::default()).unwrap();
        assert_eq!(
            found.topology.servers()["d-3307"].source.as_deref(),
            Some("a")
        );
        assert_eq!(found.name_of(&Address::new("D", 3307)), Some("d-3307"));
    }

    /// What a journal remembers, as flipover records it.
    fn memory(text: &str) -> Remembered {
        Remembered {
            read_from: Address::new("c", 3306),
            apply_id: "1-x".into(),
            at: "2026-01-01 00:00:00.000000".into(),
            outcome: "complete".into(),
            topology: crate::topology::parse(text, std::path::Path::new("journal")).unwrap(),
        }
    }

    #[test]
    fn servers_only_the_memory_names_stay_out_unless_they_join_the_tree() {
        // b (the master) is dead; c was named; a is in the memory and
        // replicates from b; d is in the memory but a primary of its own now.
        let mut walk = Walk::default();
        walk.add(node("c", Some(3), Some(("b", 2))));
        walk.add(node("b", None, None));
        let mut a = node("a", Some(1), Some(("b", 2)));
        a.via_memory = true;
        walk.add(a);
        let mut d = node("d", Some(4), None);
        d.via_memory = true;
        walk.add(d);
        let found = walk.finish(&access(), &DiscoverOptions::default()).unwrap();
        let servers = found.topology.servers();
        assert_eq!(servers.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(servers["a"].source.as_deref(), Some("b"));
        assert!(found.name_of(&Address::new("d", 3306)).is_none());
        assert!(
            found
                .notes
                .iter()
                .any(|n| n.contains("d:3306") && n.contains("left out")),
            "{:?}",
            found.notes
        );
    }

    #[test]
    fn the_memory_gives_back_names_ports_and_settings() {
        let mut walk = Walk::default();
        walk.add(node("a", Some(1), None));
        walk.add(node("b", Some(2), Some(("a", 1))));
        walk.add(node("e", Some(5), Some(("b", 2))));
        walk.memory = Some(memory(
            r#"
            [cluster]
            name = "shop"
            max_replica_lag = 3
            [journal]
            keep_applies = 9
            [servers.db1]
            host = "A"
            agent_port = 9836
            [servers.db2]
            host = "b"
            source = "db1"
            promotable = false
            [servers.db3]
            host = "c"
            source = "db1"
            clone_from = "db2"
            "#,
        ));
        let found = walk.finish(&access(), &DiscoverOptions::default()).unwrap();
        // Discovery itself names servers by address.
        assert_eq!(found.topology.primary().name, "a");
        let parts = found.parts_with_memory();
        assert_eq!(parts.cluster.name, "shop");
        assert_eq!(parts.cluster.max_replica_lag, 3);
        assert_eq!(parts.journal.keep_applies, 9);
        let servers = &parts.servers;
        assert_eq!(servers.keys().collect::<Vec<_>>(), ["db1", "db2", "e"]);
        assert_eq!(servers["db1"].agent_port, 9836);
        assert_eq!(servers["db2"].source.as_deref(), Some("db1"));
        assert!(!servers["db2"].promotable);
        // A server the memory does not know keeps its address name, under
        // its source's remembered one.
        assert_eq!(servers["e"].source.as_deref(), Some("db2"));
        Topology::from_parts(parts, "test").unwrap();
    }

    #[test]
    fn one_tree_only() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert!(check_shape(&[None, Some(0), Some(1)], &names).is_ok());
        assert!(matches!(
            check_shape(&[None, Some(0), None], &names),
            Err(DiscoverError::SeveralTrees { roots }) if roots == ["a", "c"]
        ));
        assert!(matches!(
            check_shape(&[Some(1), Some(0), Some(0)], &names),
            Err(DiscoverError::Cycle { servers }) if servers == ["a", "b"]
        ));
    }
}
