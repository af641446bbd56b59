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
//! Reused by every `flipover-cmd` mode, and meant for importing a running
//! cluster into a topology file.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::{self, Connection, DbError, Endpoint};
use crate::sql::ReplicaHost;
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
}

impl Discovered {
    /// The name of the server at `address`, under any address it was seen by.
    pub fn name_of(&self, address: &Address) -> Option<&str> {
        self.names.get(address).map(String::as_str)
    }
}

/// What one server says about itself.
struct Probe {
    server_id: u32,
    /// Its source as its replica status names it, with the source's server_id (0: unknown).
    source: Option<(Address, u32)>,
    replicas: Vec<ReplicaHost>,
    notes: Vec<String>,
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
    let mut queue: VecDeque<Address> = seeds.iter().cloned().collect();
    while let Some(address) = queue.pop_front() {
        if walk.index.contains_key(&address) {
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
                    queue.push_back(source.clone());
                }
                for replica in &probe.replicas {
                    match walk.ids.get(&replica.server_id) {
                        Some(_) => {}
                        None if replica.host.is_empty() => walk.notes.push(format!(
                            "{address} has a replica (server_id {}) that sets no report_host: \
                             it cannot be found from {address}",
                            replica.server_id
                        )),
                        None => queue.push_back(Address::new(&replica.host, replica.port)),
                    }
                }
                walk.notes.extend(probe.notes);
                walk.add(Node {
                    address,
                    referenced_as: None,
                    server_id: Some(probe.server_id),
                    error: None,
                    reported_source: probe.source,
                    replicas: probe.replicas,
                });
            }
            Err(error) => {
                if walk.nodes.is_empty() {
                    return Err(DiscoverError::SeedUnreachable {
                        address,
                        error: error.to_string(),
                    });
                }
                walk.add(Node {
                    address,
                    referenced_as: None,
                    server_id: None,
                    error: Some(error.to_string()),
                    reported_source: None,
                    replicas: Vec::new(),
                });
            }
        }
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
    Ok(Probe {
        server_id,
        source,
        replicas,
        notes,
    })
}

#[derive(Default)]
struct Walk {
    nodes: Vec<Node>,
    /// Every address seen for a node → the node.
    index: HashMap<Address, usize>,
    ids: HashMap<u32, usize>,
    notes: Vec<String>,
}

impl Walk {
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
        })
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
