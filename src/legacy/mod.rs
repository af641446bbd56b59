//! The seed tool's command line (`flipover-cmd`) as a front end on
//! plan/apply: there is no second implementation of any replication change.
//! Each mode discovers the live replication tree from the servers it is
//! pointed at (`discover`), turns it plus the requested change into a desired
//! [`Topology`](crate::topology::Topology) (`change`), and hands that to the
//! same observe → plan → execute path as `flipover apply`.
//!
//! The flags name servers and credentials instead of a topology file;
//! `access` turns them into the `[access]` a topology file would hold.

pub mod access;
pub mod change;

pub use crate::discover::{
    discover, server_name, Address, DiscoverError, DiscoverOptions, Discovered,
};
pub use access::{access, agent_token, AccessError};
pub use change::{clone_options, clone_slave, promote_slave, replace_master, ChangeError};
