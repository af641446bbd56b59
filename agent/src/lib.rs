//! flipover's host agent library.
//!
//! The agent binary (see `main.rs` and `server/`) runs on each database host
//! and controls mysqld over HTTP/JSON. This library holds what both sides of
//! that wire need: the wire types ([`protocol`]), a typed client
//! ([`client::AgentClient`]) used by the `flipover` CLI, and the my.cnf parser
//! ([`mycnf`]) the agent uses to learn where mysqld keeps its files.

pub mod client;
pub mod fuzz_entry;
pub mod mycnf;
pub mod protocol;
