//! Desired state: the topology file, its validation and its diagnostics.
//!
//! Architecture Invariant: the only way to get a [`Topology`] from text is
//! [`parse`], which enforces the whole file contract and reports every problem
//! as a miette diagnostic pointing at the offending span.
//!
//! The pipeline, one module per stage: TOML syntax (the `toml` parser), the
//! file's shape (`shape`: known keys, value types), the raw serde types
//! (`raw`), then the resolved model with every cross-value rule (`validate`).
//! A stage runs only when the previous one found nothing, so a typo is not
//! also reported as the missing key it causes.

mod diagnostics;
mod model;
mod raw;
mod shape;
mod suggest;
mod validate;
mod write;

use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

pub use diagnostics::{InvalidTopology, Problem, ProblemKind, TopologyError};
pub use model::*;
pub use write::{to_memory_toml, to_toml};

/// Validates `text`, the content of the topology file at `path`. `path` names
/// the file in diagnostics, and its directory becomes [`Topology::base_dir`].
pub fn parse(text: &str, path: &Path) -> Result<Topology, TopologyError> {
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => ".".into(),
    };
    parse_in(text, &path.display().to_string(), base_dir)
}

/// [`parse`] of a text named `origin` in diagnostics, whose relative paths
/// are read against `base_dir`.
pub(crate) fn parse_in(
    text: &str,
    origin: &str,
    base_dir: std::path::PathBuf,
) -> Result<Topology, TopologyError> {
    let invalid = |problems: Vec<Problem>| {
        TopologyError::Invalid(InvalidTopology::new(origin.to_string(), text, problems))
    };

    // Only the first syntax error: after one, the parser's guesses tend to
    // produce follow-up errors that are not real.
    let document = DeTable::parse(text).map_err(|error| invalid(vec![syntax_problem(&error)]))?;

    if document.get_ref().is_empty() {
        return Err(invalid(vec![empty_file_problem()]));
    }
    let problems = shape::check(document.get_ref());
    if !problems.is_empty() {
        return Err(invalid(problems));
    }

    let raw = raw::RawTopology::deserialize(toml::de::Deserializer::from(document))
        .map_err(|error| invalid(vec![unexpected_problem(&error)]))?;
    validate::resolve(raw, base_dir).map_err(invalid)
}

/// The JSON Schema of the topology file, generated from the raw serde types.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(raw::RawTopology).to_value()
}

fn syntax_problem(error: &toml::de::Error) -> Problem {
    let message = error.message().trim_end();
    let help = if message.contains("duplicate key") {
        "a table or key may appear only once in a file: merge the two or rename one"
    } else {
        "fix the TOML syntax at the marked place; see https://toml.io for the rules"
    };
    Problem::new(ProblemKind::Syntax, "invalid TOML")
        .label(error.span().unwrap_or(0..0), message)
        .help(help)
}

/// Reported alone: "no cluster" and "no servers" would say the same thing twice.
fn empty_file_problem() -> Problem {
    Problem::new(ProblemKind::EmptyFile, "the topology file describes nothing")
        .label(0..0, "no tables or keys in this file")
        .help("start from a minimal topology: `[cluster]` with `name = \"shop\"`, then `[servers.db1]` with `host = \"10.0.0.1\"`; see examples/topologies/")
}

/// A serde error after the shape check passed: a rule `shape` should know about.
fn unexpected_problem(error: &toml::de::Error) -> Problem {
    Problem::new(ProblemKind::InvalidValue, "invalid value")
        .label(error.span().unwrap_or(0..0), error.message().trim_end())
        .help("compare the file with schemas/topology.schema.json")
}
