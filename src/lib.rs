//! flipover: declarative plan/apply for MySQL/MariaDB replication topologies.
//!
//! Two crates make it. `flipover_core` decides and does no I/O: the
//! topology, the observed facts and their views, GTID arithmetic, SQL text
//! and parsers, the planner, the wire documents and the renderers; this crate
//! re-exports its modules under the same names. This crate acts: it reads
//! files and secrets, talks to servers (`db`) and agents (`agents`),
//! observes (`observe`), changes servers (`executor`, driven by `apply`),
//! discovers clusters, runs sandboxes, and holds the command line (`cli`,
//! the only module that writes to the terminal). See `ARCHITECTURE.md`.

pub use flipover_core::{facts, gtid, planner, render, sql, view, wire};

pub mod agents;
pub mod apply;
pub mod certs;
pub mod cli;
pub mod db;
pub mod discover;
pub mod executor;
pub mod exit_codes;
pub mod fuzz_entry;
pub mod legacy;
pub mod observe;
pub mod sandbox;
pub mod secrets;
pub mod topology;
pub mod watch;
