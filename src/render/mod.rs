//! Turning plans and topologies into text for people. Pure functions: the
//! CLI decides where the text goes.

pub mod plan_text;
pub mod topology_tree;
