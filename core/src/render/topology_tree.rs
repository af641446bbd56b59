//! Topologies drawn as indented trees, one server per line, so that the
//! observed and the desired tree can be diffed line by line.

use std::collections::BTreeMap;

use crate::topology::Topology;
use crate::view::{ObservedSource, ObservedTree};

/// The desired tree, from the topology file.
pub fn desired_lines(topology: &Topology) -> Vec<String> {
    let sources: BTreeMap<String, Option<String>> = topology
        .servers()
        .values()
        .map(|s| (s.name.clone(), s.source.clone()))
        .collect();
    desired_lines_from_sources(&sources)
}

/// The desired tree from each server's desired source (`None`: the primary),
/// as a saved plan records it.
pub fn desired_lines_from_sources(sources: &BTreeMap<String, Option<String>>) -> Vec<String> {
    let mut lines = Vec::new();
    for (root, _) in sources.iter().filter(|(_, source)| source.is_none()) {
        draw(
            root,
            &|name: &str| {
                sources
                    .iter()
                    .filter(|(_, source)| source.as_deref() == Some(name))
                    .map(|(child, _)| child.clone())
                    .collect()
            },
            &|name| name.to_string(),
            "",
            None,
            &mut lines,
        );
    }
    lines
}

/// The observed tree; servers that did not answer or replicate from outside
/// the topology say so.
pub fn observed_lines(tree: &ObservedTree) -> Vec<String> {
    let mut lines = Vec::new();
    let label = |name: &str| match tree.sources.get(name) {
        Some(ObservedSource::Unknown) => format!("{name} (unreachable)"),
        Some(ObservedSource::Foreign(address)) => {
            format!("{name} (replicates from {address}, not in the topology)")
        }
        _ => name.to_string(),
    };
    for root in tree.roots() {
        draw(
            root,
            &|name: &str| {
                tree.children(name)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            },
            &label,
            "",
            None,
            &mut lines,
        );
    }
    lines
}

fn draw(
    name: &str,
    children: &dyn Fn(&str) -> Vec<String>,
    label: &dyn Fn(&str) -> String,
    prefix: &str,
    last: Option<bool>,
    lines: &mut Vec<String>,
) {
    let (connector, continuation) = match last {
        None => ("", ""),
        Some(false) => ("├─ ", "│  "),
        Some(true) => ("└─ ", "   "),
    };
    lines.push(format!("{prefix}{connector}{}", label(name)));
    let below = children(name);
    let child_prefix = format!("{prefix}{continuation}");
    for (i, child) in below.iter().enumerate() {
        draw(
            child,
            children,
            label,
            &child_prefix,
            Some(i + 1 == below.len()),
            lines,
        );
    }
}
