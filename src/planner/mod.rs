//! The planner: a pure function from (Topology, Observed) to a Plan.
//!
//! Architecture Invariant: no I/O, no clock, no randomness. The same inputs
//! give the same plan, byte for byte. It arrives with the clone issue; for now
//! only the observed replication tree, which `status` and later plans share,
//! is derived here.

pub mod tree;
