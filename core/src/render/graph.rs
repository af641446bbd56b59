//! Topologies and plans drawn as graphs, in Mermaid (which code hosts render
//! in Markdown) or Graphviz DOT. Each drawing is first built as a small
//! neutral graph, then written in the chosen language, so both languages
//! always show the same nodes and edges.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::topology::Topology;
use crate::wire::{Fingerprint, StepDocument};

/// The language of a drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

/// The desired topology of a topology file: an edge from each source to
/// its replicas.
pub fn topology(topology: &Topology, format: GraphFormat) -> String {
    let sources: BTreeMap<String, Option<String>> = topology
        .servers()
        .values()
        .map(|s| (s.name.clone(), s.source.clone()))
        .collect();
    desired(&sources, format)
}

/// A desired topology given as each server's source (`None`: the primary).
pub fn desired(sources: &BTreeMap<String, Option<String>>, format: GraphFormat) -> String {
    let mut graph = Graph::default();
    for name in sources.keys() {
        graph.node(name, name, Style::Plain);
    }
    for (name, source) in sources {
        if let Some(source) = source {
            graph.node(source, source, Style::Plain);
            graph.edge(source, name);
        }
    }
    graph.write("topology", format)
}

/// The observed topology recorded in a fingerprint: unreachable servers are
/// labelled and drawn dashed, sources outside the topology get a node of
/// their own.
pub fn observed(fingerprint: &Fingerprint, format: GraphFormat) -> String {
    let mut graph = Graph::default();
    for (name, facts) in &fingerprint.servers {
        if facts.reachable {
            graph.node(name, name, Style::Plain);
        } else {
            graph.node(name, &format!("{name} (unreachable)"), Style::Unreachable);
        }
    }
    for (name, facts) in &fingerprint.servers {
        let Some(source) = facts.source.as_deref().filter(|_| facts.reachable) else {
            continue;
        };
        if !fingerprint.servers.contains_key(source) {
            graph.node(
                source,
                &format!("{source} (not in the topology)"),
                Style::Foreign,
            );
        }
        graph.edge(source, name);
    }
    graph.write("observed", format)
}

/// A plan's steps: an edge from each step to the steps that wait for it.
pub fn steps(steps: &[StepDocument], format: GraphFormat) -> String {
    let mut graph = Graph::default();
    for step in steps {
        let mut label = format!("{}. {}", step.number, step.title);
        let style = if step.destructive {
            label.push_str(" [DESTRUCTIVE]");
            Style::Destructive
        } else {
            Style::Plain
        };
        let style = if step.blocks_writes {
            label.push_str(" [BLOCKS WRITES]");
            if style == Style::Plain {
                Style::BlocksWrites
            } else {
                style
            }
        } else {
            style
        };
        graph.node(&step.number.to_string(), &label, style);
    }
    for step in steps {
        for earlier in &step.depends_on {
            graph.edge(&earlier.to_string(), &step.number.to_string());
        }
    }
    graph.write("plan", format)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Unreachable,
    Foreign,
    Destructive,
    BlocksWrites,
}

impl Style {
    fn class(self) -> Option<(&'static str, &'static str, &'static str)> {
        // (Mermaid class, its style, DOT attributes)
        match self {
            Style::Plain => None,
            Style::Unreachable => Some((
                "unreachable",
                "stroke-dasharray: 5 5,color:#888",
                "style=dashed, fontcolor=gray40",
            )),
            Style::Foreign => Some((
                "foreign",
                "stroke-dasharray: 2 2,fill:#eee",
                "style=\"dotted,filled\", fillcolor=gray93",
            )),
            Style::Destructive => Some((
                "destructive",
                "stroke:#c00,stroke-width:2px",
                "color=red3, penwidth=2",
            )),
            Style::BlocksWrites => Some((
                "blocks_writes",
                "stroke:#d80,stroke-width:2px",
                "color=orange3, penwidth=2",
            )),
        }
    }
}

/// Nodes in the order first added; ids `n0`, `n1`, … (server names may hold
/// `.` and `-`, which Mermaid ids do not take).
#[derive(Default)]
struct Graph {
    nodes: Vec<(String, String, Style)>,
    edges: Vec<(usize, usize)>,
}

impl Graph {
    fn node(&mut self, key: &str, label: &str, style: Style) {
        if self.index(key).is_none() {
            self.nodes.push((key.to_string(), label.to_string(), style));
        }
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.nodes.iter().position(|(k, _, _)| k == key)
    }

    fn edge(&mut self, from: &str, to: &str) {
        if let (Some(from), Some(to)) = (self.index(from), self.index(to)) {
            self.edges.push((from, to));
        }
    }

    fn write(&self, name: &str, format: GraphFormat) -> String {
        match format {
            GraphFormat::Mermaid => self.mermaid(),
            GraphFormat::Dot => self.dot(name),
        }
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("graph TD\n");
        for (i, (_, label, _)) in self.nodes.iter().enumerate() {
            let label = label.replace('"', "#quot;");
            writeln!(out, "    n{i}[\"{label}\"]").unwrap();
        }
        for (from, to) in &self.edges {
            writeln!(out, "    n{from} --> n{to}").unwrap();
        }
        let mut defined = Vec::new();
        for (i, (_, _, style)) in self.nodes.iter().enumerate() {
            if let Some((class, css, _)) = style.class() {
                if !defined.contains(&class) {
                    writeln!(out, "    classDef {class} {css}").unwrap();
                    defined.push(class);
                }
                writeln!(out, "    class n{i} {class}").unwrap();
            }
        }
        out
    }

    fn dot(&self, name: &str) -> String {
        let mut out = format!("digraph {name} {{\n    rankdir=TB;\n    node [shape=box];\n");
        for (i, (_, label, style)) in self.nodes.iter().enumerate() {
            let label = label.replace('\\', "\\\\").replace('"', "\\\"");
            match style.class() {
                Some((_, _, attributes)) => {
                    writeln!(out, "    n{i} [label=\"{label}\", {attributes}];").unwrap()
                }
                None => writeln!(out, "    n{i} [label=\"{label}\"];").unwrap(),
            }
        }
        for (from, to) in &self.edges {
            writeln!(out, "    n{from} -> n{to};").unwrap();
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::StructuralFacts;

    fn facts(reachable: bool, source: Option<&str>) -> StructuralFacts {
        StructuralFacts {
            reachable,
            flavor: reachable.then(|| "mariadb".to_string()),
            server_id: None,
            source: source.map(str::to_string),
            read_only: None,
            holds_data: None,
        }
    }

    #[test]
    fn observed_marks_unreachable_and_foreign_sources() {
        let fingerprint = Fingerprint::from_servers(BTreeMap::from([
            ("db1".to_string(), facts(true, None)),
            ("db2".to_string(), facts(true, Some("db1"))),
            ("db3".to_string(), facts(false, None)),
            ("db4".to_string(), facts(true, Some("10.0.0.9:3306"))),
        ]));
        assert_eq!(
            observed(&fingerprint, GraphFormat::Mermaid),
            "graph TD\n    n0[\"db1\"]\n    n1[\"db2\"]\n    n2[\"db3 (unreachable)\"]\n    n3[\"db4\"]\n    n4[\"10.0.0.9:3306 (not in the topology)\"]\n    n0 --> n1\n    n4 --> n3\n    classDef unreachable stroke-dasharray: 5 5,color:#888\n    class n2 unreachable\n    classDef foreign stroke-dasharray: 2 2,fill:#eee\n    class n4 foreign\n"
        );
        let dot = observed(&fingerprint, GraphFormat::Dot);
        assert!(dot.starts_with("digraph observed {\n"));
        assert!(dot.contains("n2 [label=\"db3 (unreachable)\", style=dashed, fontcolor=gray40];"));
        assert!(dot.contains("n4 -> n3;"));
    }

    #[test]
    fn labels_are_escaped() {
        let sources = BTreeMap::from([("a\"b".to_string(), None)]);
        assert!(desired(&sources, GraphFormat::Mermaid).contains("n0[\"a#quot;b\"]"));
        assert!(desired(&sources, GraphFormat::Dot).contains("n0 [label=\"a\\\"b\"];"));
    }
}
