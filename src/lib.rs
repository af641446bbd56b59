//! flipover: declarative plan/apply for MySQL/MariaDB replication topologies.
//!
//! The library holds everything but terminal handling, which lives in `cli`
//! (compiled into the `flipover` binary). See `ARCHITECTURE.md` for the map.

pub mod certs;
pub mod db;
pub mod discover;
pub mod executor;
pub mod exit_codes;
pub mod fuzz_entry;
pub mod legacy;
pub mod observe;
pub mod planner;
pub mod render;
pub mod sandbox;
pub mod sql;
pub mod topology;
pub mod watch;
pub mod wire;
