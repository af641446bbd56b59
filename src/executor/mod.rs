//! The executor: runs a Plan's steps against servers and agents.
//!
//! Architecture Invariant: only the executor (and the agent it drives) changes
//! anything on a server. Today it holds the one change flipover makes outside
//! a plan: starting and stopping mysqld through an agent.

pub mod agents;
