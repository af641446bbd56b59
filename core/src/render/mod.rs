//! Turning plans and topologies into text for people. Pure functions: the
//! CLI decides where the text goes.

pub mod graph;
pub mod plan_json;
pub mod plan_markdown;
pub mod plan_text;
pub mod topology_tree;
