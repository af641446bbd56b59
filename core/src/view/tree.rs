//! The observed replication tree: who replicates from whom, as the servers
//! report it, expressed with the topology's server names.

use std::collections::BTreeMap;

use crate::facts::Observed;
use crate::topology::Topology;

/// Where an observed server gets its data from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedSource {
    /// Not replicating (a primary, or a standalone server).
    None,
    /// Replicating from a server of the topology.
    Server(String),
    /// Replicating from an address that is no server of the topology.
    Foreign(String),
    /// Unknown: the server did not answer.
    Unknown,
}

/// The tree as observed: every server of the topology exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTree {
    pub sources: BTreeMap<String, ObservedSource>,
}

impl ObservedTree {
    pub fn from_observed(topology: &Topology, observed: &Observed) -> ObservedTree {
        let sources = observed
            .servers
            .values()
            .map(|server| {
                let source = match &server.mysql.facts {
                    None => ObservedSource::Unknown,
                    Some(facts) => match &facts.replica {
                        None => ObservedSource::None,
                        Some(replica) => {
                            match topology.server_at(&replica.source_host, replica.source_port) {
                                Some(source) => ObservedSource::Server(source.name.clone()),
                                None => ObservedSource::Foreign(format!(
                                    "{}:{}",
                                    replica.source_host, replica.source_port
                                )),
                            }
                        }
                    },
                };
                (server.name.clone(), source)
            })
            .collect();
        ObservedTree { sources }
    }

    /// Servers that replicate from no server of the topology, in name order.
    pub fn roots(&self) -> Vec<&str> {
        self.sources
            .iter()
            .filter(|(name, source)| match source {
                ObservedSource::Server(parent) => {
                    // A replication cycle has no root; show its members at the top.
                    parent == *name || self.in_cycle(name)
                }
                _ => true,
            })
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Servers replicating directly from `name`, in name order.
    pub fn children(&self, name: &str) -> Vec<&str> {
        self.sources
            .iter()
            .filter(|(child, source)| {
                matches!(source, ObservedSource::Server(parent) if parent == name && child.as_str() != name)
                    && !self.in_cycle(child)
            })
            .map(|(child, _)| child.as_str())
            .collect()
    }

    fn in_cycle(&self, start: &str) -> bool {
        let mut current = start;
        for _ in 0..self.sources.len() {
            match self.sources.get(current) {
                Some(ObservedSource::Server(parent)) => {
                    if parent == start {
                        return true;
                    }
                    current = parent;
                }
                _ => return false,
            }
        }
        false
    }
}
