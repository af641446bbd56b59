//! The change each `flipover-cmd` mode asks for, as a desired topology: the
//! discovered tree plus that change. Planning and applying it is the
//! planner's and executor's business, exactly as for a topology file.

use std::collections::BTreeSet;

use crate::discover::{server_name, Address, Discovered};
use crate::observe::Observed;
use crate::planner::failover::with_primary;
use crate::planner::PlanOptions;
use crate::topology::{Server, Topology, DEFAULT_AGENT_PORT, DEFAULT_STREAM_PORT};
use crate::view::{data_state, DataState};

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{0} is not part of the replication tree that was discovered")]
    NotInTree(Address),
    #[error("{target} is the master: clone-slave builds slaves (make another server the master first with promote-slave)")]
    CloneOntoMaster { target: String },
    #[error("{0} would be cloned from itself: give the source with -N and the new slave with -n")]
    CloneFromItself(String),
    #[error("{master} (the master) does not answer: use replace-master -n SLAVE to replace it")]
    MasterDead { master: String },
    #[error("{master} (the master) answers: replace-master replaces a master that is not available; use promote-slave -n {slave} for a planned switchover")]
    MasterAlive { master: String, slave: String },
    #[error("-N names {given}, but the master of this tree is {master}: check the addresses, or leave -N out")]
    NotTheMaster { given: Address, master: String },
    #[error("{0} does not replicate from anybody: it is the master already")]
    AlreadyMaster(String),
    #[error("{first} and {second} are on one host: flipover-cmd reaches each server's agent on the default ports (836, 837), one server per host; for several servers per host write a topology file with their agent ports and use `flipover apply`")]
    SharedHost { first: String, second: String },
    #[error("the changed topology breaks a rule: {0}")]
    Invalid(#[from] crate::topology::TopologyError),
}

/// clone-slave: `target` rebuilt from `donor` (its data streamed afresh) and
/// replicating from the current master, which is `donor` itself or the root
/// of the tree `donor` is in. Returns the desired topology and the target's name.
pub fn clone_slave(
    discovered: &Discovered,
    donor: &Address,
    target: &Address,
) -> Result<(Topology, String), ChangeError> {
    let mut parts = discovered.topology.to_parts();
    let donor = discovered
        .name_of(donor)
        .ok_or_else(|| ChangeError::NotInTree(donor.clone()))?
        .to_string();
    let master = discovered.topology.primary().name.clone();
    let name = match discovered.name_of(target) {
        Some(name) => name.to_string(),
        None => {
            let name = server_name(target);
            parts.servers.insert(
                name.clone(),
                Server {
                    name: name.clone(),
                    host: target.host.clone(),
                    port: target.port,
                    agent_port: DEFAULT_AGENT_PORT,
                    stream_port: DEFAULT_STREAM_PORT,
                    source: None,
                    clone_from: None,
                    promotable: true,
                },
            );
            name
        }
    };
    if name == master {
        return Err(ChangeError::CloneOntoMaster { target: name });
    }
    if name == donor {
        return Err(ChangeError::CloneFromItself(name));
    }
    let server = parts.servers.get_mut(&name).expect("inserted above");
    server.source = Some(master.clone());
    server.clone_from = (donor != master).then_some(donor);
    check_hosts(&parts.servers)?;
    let topology = Topology::from_parts(parts, "the cluster with the new slave")?;
    Ok((topology, name))
}

/// clone-slave always streams a fresh backup: a target that holds data is
/// replaced (the plan shows it as destructive, with the GTIDs at risk).
pub fn clone_options(observed: &Observed, target: &str) -> PlanOptions {
    let holds_data = observed
        .servers
        .get(target)
        .is_some_and(|s| data_state(s) != DataState::Empty);
    PlanOptions {
        replace: if holds_data {
            BTreeSet::from([target.to_string()])
        } else {
            BTreeSet::new()
        },
        failover: false,
    }
}

/// promote-slave: `slave` becomes the master (a planned switchover); the
/// master's other slaves and the master itself replicate from it.
pub fn promote_slave(
    discovered: &Discovered,
    master: Option<&Address>,
    slave: &Address,
) -> Result<(Topology, Vec<String>), ChangeError> {
    let slave = discovered
        .name_of(slave)
        .ok_or_else(|| ChangeError::NotInTree(slave.clone()))?;
    let master = the_master(discovered, master)?;
    if discovered.unreachable.contains(&master) {
        return Err(ChangeError::MasterDead { master });
    }
    if slave == master {
        return Err(ChangeError::AlreadyMaster(master));
    }
    Ok(with_primary(&discovered.topology, &master, slave)?)
}

/// replace-master: the master does not answer; `slave` replaces it (a
/// failover) and the master's other slaves replicate from it.
pub fn replace_master(
    discovered: &Discovered,
    master: Option<&Address>,
    slave: &Address,
) -> Result<(Topology, Vec<String>), ChangeError> {
    let slave = discovered
        .name_of(slave)
        .ok_or_else(|| ChangeError::NotInTree(slave.clone()))?;
    let master = the_master(discovered, master)?;
    if slave == master {
        return Err(ChangeError::AlreadyMaster(master));
    }
    if !discovered.unreachable.contains(&master) {
        return Err(ChangeError::MasterAlive {
            master,
            slave: slave.to_string(),
        });
    }
    Ok(with_primary(&discovered.topology, &master, slave)?)
}

/// The root of the discovered tree, checked against the master the command
/// line names (scripts written for the seed pass -N): acting on another
/// tree than the one meant would be worse than stopping.
fn the_master(discovered: &Discovered, given: Option<&Address>) -> Result<String, ChangeError> {
    let master = discovered.topology.primary().name.clone();
    match given {
        Some(given) if discovered.name_of(given) != Some(master.as_str()) => {
            Err(ChangeError::NotTheMaster {
                given: given.clone(),
                master,
            })
        }
        _ => Ok(master),
    }
}

/// Every server needs an agent of its own, and without a topology file all
/// agents are on the default ports. (Discovery refuses such a tree already;
/// this names the new slave's host when it is one of the tree's.)
fn check_hosts(servers: &std::collections::BTreeMap<String, Server>) -> Result<(), ChangeError> {
    let mut seen: Vec<&Server> = Vec::new();
    for server in servers.values() {
        if let Some(first) = seen
            .iter()
            .find(|s| s.host.eq_ignore_ascii_case(&server.host))
        {
            return Err(ChangeError::SharedHost {
                first: first.name.clone(),
                second: server.name.clone(),
            });
        }
        seen.push(server);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::topology::{Access, Cluster, TopologyParts};

    /// a (master) ← b ← c: c is a slave of the slave b.
    fn discovered(dead: &[&str]) -> Discovered {
        let server = |name: &str, source: Option<&str>| Server {
            name: name.into(),
            host: name.into(),
            port: 3306,
            agent_port: DEFAULT_AGENT_PORT,
            stream_port: DEFAULT_STREAM_PORT,
            source: source.map(str::to_string),
            clone_from: None,
            promotable: true,
        };
        let servers: BTreeMap<String, Server> = [
            server("a", None),
            server("b", Some("a")),
            server("c", Some("b")),
        ]
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
        Discovered {
            names: servers
                .keys()
                .map(|n| (Address::new(n, 3306), n.clone()))
                .collect(),
            topology: Topology::from_parts(
                TopologyParts {
                    cluster: Cluster {
                        name: "a".into(),
                        max_replica_lag: 5,
                        max_transaction_age: 10,
                        switchover_timeout: 10,
                        durability: crate::topology::Durability::Async,
                        semi_sync_timeout: 10,
                    },
                    access: Access {
                        user: "flipover".into(),
                        password: None,
                        repl_user: "repl".into(),
                        repl_password: None,
                        agent_token: None,
                        agent_tls: crate::topology::AgentTls::Unset,
                    },
                    servers,
                    hooks: Default::default(),
                    journal: Default::default(),
                    base_dir: PathBuf::from("."),
                },
                "test",
            )
            .unwrap(),
            unreachable: dead.iter().map(|s| s.to_string()).collect(),
            notes: Vec::new(),
            memory: None,
        }
    }

    fn at(host: &str) -> Address {
        Address::new(host, 3306)
    }

    #[test]
    fn clone_slave_replicates_from_the_master_and_copies_the_source() {
        let found = discovered(&[]);
        let (topology, target) = clone_slave(&found, &at("b"), &at("d")).unwrap();
        assert_eq!(target, "d");
        assert_eq!(topology.servers()["d"].source.as_deref(), Some("a"));
        assert_eq!(topology.servers()["d"].clone_from.as_deref(), Some("b"));
        // An existing slave moves under the master; from the master, no clone_from.
        let (topology, _) = clone_slave(&found, &at("a"), &at("c")).unwrap();
        assert_eq!(topology.servers()["c"].source.as_deref(), Some("a"));
        assert_eq!(topology.servers()["c"].clone_from, None);
        assert!(matches!(
            clone_slave(&found, &at("b"), &at("a")),
            Err(ChangeError::CloneOntoMaster { .. })
        ));
        assert!(matches!(
            clone_slave(&found, &at("b"), &at("b")),
            Err(ChangeError::CloneFromItself(_))
        ));
        assert!(matches!(
            clone_slave(&found, &at("x"), &at("d")),
            Err(ChangeError::NotInTree(_))
        ));
    }

    #[test]
    fn promote_needs_a_live_master_and_replace_a_dead_one() {
        let (topology, _) = promote_slave(&discovered(&[]), Some(&at("a")), &at("b")).unwrap();
        assert_eq!(topology.primary().name, "b");
        assert_eq!(topology.servers()["a"].source.as_deref(), Some("b"));
        assert!(matches!(
            promote_slave(&discovered(&[]), Some(&at("b")), &at("c")),
            Err(ChangeError::NotTheMaster { .. })
        ));
        assert!(matches!(
            promote_slave(&discovered(&["a"]), None, &at("b")),
            Err(ChangeError::MasterDead { .. })
        ));
        assert!(matches!(
            replace_master(&discovered(&[]), None, &at("b")),
            Err(ChangeError::MasterAlive { .. })
        ));
        let (topology, _) = replace_master(&discovered(&["a"]), None, &at("b")).unwrap();
        assert_eq!(topology.primary().name, "b");
    }

    #[test]
    fn one_server_per_host() {
        // A new slave on the host of a server of the tree would share its agent.
        let found = discovered(&[]);
        assert!(matches!(
            clone_slave(&found, &at("b"), &Address::new("a", 3307)),
            Err(ChangeError::SharedHost { .. })
        ));
        // And a topology with two servers on one host and the default agent
        // ports breaks a rule of the file: no Topology can hold it.
        let mut parts = found.topology.to_parts();
        let c = parts.servers.get_mut("c").unwrap();
        (c.host, c.port) = ("a".into(), 3307);
        assert!(Topology::from_parts(parts, "test").is_err());
    }
}
