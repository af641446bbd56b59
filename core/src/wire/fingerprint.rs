//! A fingerprint of the observed *structural* facts a plan was made from:
//! who answers, what each server is, who replicates from whom, read_only,
//! whether it holds data. GTID positions, lag and binlog coordinates are left
//! out on purpose: they move with traffic, and a plan must not go stale
//! because the primary took writes. A saved plan is applied only while the
//! live servers still have its fingerprint (Atlas's "from" hash).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::facts::{Flavor, Observed};
use crate::topology::Topology;
use crate::view::{data_state, DataState};
use crate::view::{ObservedSource, ObservedTree};

/// The structural facts of every server of the topology, and their hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Fingerprint {
    /// SHA-256 (hex) of the compact JSON of `servers`.
    pub sha256: String,
    /// Per server of the topology, by name.
    pub servers: BTreeMap<String, StructuralFacts>,
}

/// What a server is, as far as a plan depends on it. Every fact but
/// `reachable` is `null` when the server did not answer over MySQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StructuralFacts {
    /// The server answered over the MySQL protocol (with its facts).
    pub reachable: bool,
    /// `mariadb` or `mysql`.
    pub flavor: Option<String>,
    pub server_id: Option<u32>,
    /// Where it replicates from: a server of the topology by name, an
    /// address outside the topology as `host:port`, or `null` (none, or
    /// unknown when unreachable).
    pub source: Option<String>,
    pub read_only: Option<bool>,
    /// User schemas or GTIDs of its own (from its agent when mysqld is
    /// stopped over an empty datadir); `null` when unknown.
    pub holds_data: Option<bool>,
}

impl Fingerprint {
    /// The fingerprint of `observed`, for the servers of `topology`.
    pub fn of(topology: &Topology, observed: &Observed) -> Fingerprint {
        let tree = ObservedTree::from_observed(topology, observed);
        let servers = topology
            .servers()
            .keys()
            .map(|name| {
                let server = observed.servers.get(name);
                let facts = server.and_then(|s| s.facts());
                let source = match tree.sources.get(name) {
                    Some(ObservedSource::Server(source)) => Some(source.clone()),
                    Some(ObservedSource::Foreign(address)) => Some(address.clone()),
                    _ => None,
                };
                let holds_data = server.and_then(|s| match data_state(s) {
                    DataState::Empty => Some(false),
                    DataState::HasData { .. } => Some(true),
                    DataState::StoppedWithFiles | DataState::Unknown => None,
                });
                let structural = StructuralFacts {
                    reachable: facts.is_some(),
                    flavor: facts.map(|f| flavor_name(f.flavor).to_string()),
                    server_id: facts.map(|f| f.server_id),
                    source,
                    read_only: facts.map(|f| f.read_only),
                    holds_data,
                };
                (name.clone(), structural)
            })
            .collect();
        Fingerprint::from_servers(servers)
    }

    /// A fingerprint of these facts, with its hash.
    pub fn from_servers(servers: BTreeMap<String, StructuralFacts>) -> Fingerprint {
        Fingerprint {
            sha256: hash(&servers),
            servers,
        }
    }

    /// Whether `sha256` is the hash of `servers` (a hand-edited file is not).
    pub fn is_consistent(&self) -> bool {
        self.sha256 == hash(&self.servers)
    }

    /// Every fact that differs from `self` (the plan's) to `other` (now),
    /// in words: `db2: source db1 -> db3`, `db3: reachable true -> false`.
    /// Facts of a server that did not answer on one side are unknown there,
    /// so only its reachability is compared.
    pub fn differences(&self, other: &Fingerprint) -> Vec<String> {
        let mut names: Vec<&String> = self.servers.keys().chain(other.servers.keys()).collect();
        names.sort();
        names.dedup();
        let mut changes = Vec::new();
        for name in names {
            let (before, after) = match (self.servers.get(name), other.servers.get(name)) {
                (Some(before), Some(after)) => (before, after),
                (Some(_), None) => {
                    changes.push(format!("{name}: in the plan, no longer in the topology"));
                    continue;
                }
                (None, _) => {
                    changes.push(format!("{name}: not in the plan, now in the topology"));
                    continue;
                }
            };
            let mut change = |fact: &str, was: String, now: String| {
                if was != now {
                    changes.push(format!("{name}: {fact} {was} -> {now}"));
                }
            };
            change(
                "reachable",
                before.reachable.to_string(),
                after.reachable.to_string(),
            );
            if before.reachable && after.reachable {
                change("flavor", shown(&before.flavor), shown(&after.flavor));
                change(
                    "server_id",
                    shown(&before.server_id),
                    shown(&after.server_id),
                );
                change(
                    "source",
                    shown_source(&before.source),
                    shown_source(&after.source),
                );
                change(
                    "read_only",
                    shown(&before.read_only),
                    shown(&after.read_only),
                );
            }
            // Known from the agent too: compared whenever both sides know it.
            if let (Some(was), Some(now)) = (before.holds_data, after.holds_data) {
                change("holds data", was.to_string(), now.to_string());
            }
        }
        changes
    }
}

fn flavor_name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Mariadb => "mariadb",
        Flavor::Mysql => "mysql",
    }
}

fn hash(servers: &BTreeMap<String, StructuralFacts>) -> String {
    // A BTreeMap of plain structs serializes the same way every time.
    let json = serde_json::to_vec(servers).expect("structural facts serialize");
    super::sha256_hex(&json)
}

fn shown<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "unknown".to_string())
}

fn shown_source(source: &Option<String>) -> String {
    source.clone().unwrap_or_else(|| "none".to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const TOPOLOGY: &str = include_str!("../../../tests/golden/switchover/topology.toml");
    const OBSERVED: &str = include_str!("../../../tests/golden/switchover/observed.json");

    fn inputs() -> (Topology, Observed) {
        let topology = crate::topology::parse(TOPOLOGY, Path::new("topology.toml")).unwrap();
        let observed: Observed = serde_json::from_str(OBSERVED).unwrap();
        (topology, observed)
    }

    fn facts_mut<'a>(observed: &'a mut Observed, name: &str) -> &'a mut crate::facts::MysqlFacts {
        observed
            .servers
            .get_mut(name)
            .unwrap()
            .mysql
            .facts
            .as_mut()
            .unwrap()
    }

    #[test]
    fn same_structure_same_fingerprint_whatever_the_traffic() {
        let (topology, observed) = inputs();
        let before = Fingerprint::of(&topology, &observed);
        let mut moved = observed.clone();
        for server in moved.servers.values_mut() {
            if let Some(facts) = server.mysql.facts.as_mut() {
                facts.gtid.binlog_pos = Some("0-1-999999".to_string());
                facts.binlog = None;
                if let Some(replica) = facts.replica.as_mut() {
                    replica.seconds_behind = Some(42);
                }
            }
        }
        let after = Fingerprint::of(&topology, &moved);
        assert_eq!(before, after);
        assert!(before.differences(&after).is_empty());
        assert!(before.is_consistent());
        assert_eq!(before.sha256.len(), 64);
    }

    #[test]
    fn a_changed_source_and_read_only_are_named() {
        let (topology, observed) = inputs();
        let before = Fingerprint::of(&topology, &observed);
        let mut changed = observed.clone();
        // db3 replicates from db1 in this case; move it outside the topology.
        let replica = facts_mut(&mut changed, "db3").replica.as_mut().unwrap();
        replica.source_host = "10.9.9.9".to_string();
        replica.source_port = 3307;
        facts_mut(&mut changed, "db2").read_only = false;
        let after = Fingerprint::of(&topology, &changed);
        assert_ne!(before.sha256, after.sha256);
        assert_eq!(
            before.differences(&after),
            vec![
                "db2: read_only true -> false".to_string(),
                format!(
                    "db3: source {} -> 10.9.9.9:3307",
                    before.servers["db3"].source.as_deref().unwrap()
                ),
            ]
        );
    }

    #[test]
    fn an_unreachable_server_is_only_unreachable() {
        let (topology, observed) = inputs();
        let before = Fingerprint::of(&topology, &observed);
        let mut changed = observed.clone();
        let db3 = changed.servers.get_mut("db3").unwrap();
        db3.mysql.reachable = false;
        db3.mysql.facts = None;
        db3.mysql.error = Some("connection refused".to_string());
        db3.agent.facts = None;
        let after = Fingerprint::of(&topology, &changed);
        assert_eq!(
            before.differences(&after),
            vec!["db3: reachable true -> false".to_string()]
        );
        assert_eq!(
            after.differences(&before),
            vec!["db3: reachable false -> true".to_string()]
        );
    }

    #[test]
    fn identity_flavor_data_and_membership_changes_are_named() {
        let (topology, observed) = inputs();
        let before = Fingerprint::of(&topology, &observed);
        let mut after = before.clone();
        let db2 = after.servers.get_mut("db2").unwrap();
        db2.server_id = Some(77);
        db2.flavor = Some("mysql".to_string());
        db2.holds_data = Some(!before.servers["db2"].holds_data.unwrap());
        after.servers.remove("db1");
        let after = Fingerprint::from_servers(after.servers);
        let differences = before.differences(&after);
        assert_eq!(
            differences[0],
            "db1: in the plan, no longer in the topology"
        );
        assert!(differences.contains(&"db2: flavor mariadb -> mysql".to_string()));
        assert!(differences
            .iter()
            .any(|d| d.starts_with("db2: server_id ") && d.ends_with(" -> 77")));
        assert!(differences
            .iter()
            .any(|d| d.starts_with("db2: holds data ")));
        assert_eq!(differences.len(), 4);
    }

    #[test]
    fn an_edited_fingerprint_is_inconsistent() {
        let (topology, observed) = inputs();
        let mut fingerprint = Fingerprint::of(&topology, &observed);
        fingerprint.servers.get_mut("db1").unwrap().read_only = Some(true);
        assert!(!fingerprint.is_consistent());
    }
}
