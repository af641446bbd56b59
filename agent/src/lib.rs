//! flipover's host agent library.
//!
//! The agent binary (see `main.rs` and `server/`) runs on each database host
//! and controls mysqld over HTTP/JSON. This library holds what both sides of
//! that wire need: the wire types ([`protocol`]), a typed client
//! ([`client::AgentClient`]) used by the `flipover` CLI, and the my.cnf parser
//! ([`mycnf`]) the agent uses to learn where mysqld keeps its files, the
//! `--log-format` choice both binaries share ([`logging`]), the TLS
//! configurations of both sides ([`tls`]) and a small CA ([`pki`]) for
//! users without one.

pub mod client;
pub mod fuzz_entry;
pub mod logging;
pub mod mycnf;
pub mod pki;
/// The wire types live in a crate of their own (`protocol/`), so that
/// flipover's I/O-free core can use them without the client's dependencies.
pub use flipover_protocol as protocol;
pub mod tls;
