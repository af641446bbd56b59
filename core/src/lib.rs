//! flipover's core: everything that decides, and nothing that acts.
//!
//! This crate does no I/O: no sockets, no files, no clock, no processes.
//! It holds, from the bottom up (each layer uses only those below it):
//!
//! - [`topology`]: the desired state, parsed and validated from its file;
//!   [`facts`]: the observed state, per server, as flipover saw it;
//!   [`gtid`]: GTID arithmetic.
//! - [`sql`]: the text of every statement flipover runs and the parsing of
//!   every result, per flavor (plain functions over rows, so that unit tests
//!   can feed them); [`view`]: pure views of topology + facts (the observed
//!   tree in the topology's names, whether a server holds data).
//! - [`wire`]: the versioned documents flipover writes (plan file, hook
//!   event, fingerprint).
//! - [`planner`]: `(Topology, Observed, PlanOptions) -> Plan`.
//! - [`render`]: plans and topologies as text, Markdown, JSON, graphs.
//!
//! The `flipover` crate above it talks to servers and agents (observe,
//! executor) and holds the command line. See `ARCHITECTURE.md`.

pub mod facts;
pub mod gtid;
pub mod planner;
pub mod render;
pub mod sql;
pub mod topology;
pub mod view;
pub mod wire;
