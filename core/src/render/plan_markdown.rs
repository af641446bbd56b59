//! The plan as Markdown for pull-request comments: the summary line first,
//! a warning when a step is destructive or blocks writes, the problems and
//! warnings, each step collapsible, and the observed and desired topologies
//! as Mermaid diagrams (code hosts draw them). Rendered from the plan
//! document alone, so a saved plan renders the same as a fresh one.

use std::fmt::Write as _;

use super::graph::{self, GraphFormat};
use crate::wire::{Note, PlanDocument};

/// Renders `document` as Markdown. Deterministic: same document, same text.
pub fn render(document: &PlanDocument) -> String {
    let mut out = String::new();
    writeln!(out, "**{}**", escape(&document.summary.line)).unwrap();
    out.push('\n');

    let destructive = document.steps.iter().filter(|s| s.destructive).count();
    let blocking = document.steps.iter().filter(|s| s.blocks_writes).count();
    if destructive + blocking > 0 {
        let mut what = Vec::new();
        if destructive > 0 {
            what.push(format!(
                "{destructive} destructive step{} (data overwritten for good)",
                plural(destructive)
            ));
        }
        if blocking > 0 {
            what.push(format!(
                "{blocking} step{} that block{} writes",
                plural(blocking),
                if blocking == 1 { "s" } else { "" }
            ));
        }
        writeln!(out, "**:warning: This plan has {}.**\n", what.join(" and ")).unwrap();
    }

    if let Some(durability) = &document.durability {
        writeln!(out, "Durability: {}\n", escape(&durability.text)).unwrap();
    }

    if !document.problems.is_empty() {
        writeln!(
            out,
            "**{} problem{}: apply refuses this plan until {} solved.**\n",
            document.problems.len(),
            plural(document.problems.len()),
            if document.problems.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        )
        .unwrap();
        notes(&mut out, "Problems", &document.problems);
    }
    if !document.warnings.is_empty() {
        notes(&mut out, "Warnings", &document.warnings);
    }

    if document.steps.is_empty() {
        if document.problems.is_empty() {
            out.push_str("No changes: the servers match the topology.\n\n");
        }
    } else {
        out.push_str("### Steps\n\n");
        for step in &document.steps {
            let mut summary = format!("{}. {}", step.number, escape_html(&step.title));
            if step.destructive {
                summary.push_str(" <b>[DESTRUCTIVE]</b>");
            }
            if step.blocks_writes {
                summary.push_str(" <b>[BLOCKS WRITES]</b>");
            }
            if !step.depends_on.is_empty() {
                let after: Vec<String> = step.depends_on.iter().map(usize::to_string).collect();
                write!(summary, " (after {})", after.join(", ")).unwrap();
            }
            writeln!(out, "<details><summary>{summary}</summary>\n").unwrap();
            for line in &step.details {
                // Indented lines (a failover's per-replica positions) nest.
                let depth = (line.len() - line.trim_start().len()) / 2;
                writeln!(out, "{}- {}", "  ".repeat(depth), escape(line.trim())).unwrap();
            }
            out.push_str("\n</details>\n\n");
        }
    }

    out.push_str("### Topology\n\nObserved:\n\n```mermaid\n");
    out.push_str(&graph::observed(
        &document.fingerprint,
        GraphFormat::Mermaid,
    ));
    out.push_str("```\n\nDesired:\n\n```mermaid\n");
    out.push_str(&graph::desired(&document.desired, GraphFormat::Mermaid));
    out.push_str("```\n");
    out
}

fn notes(out: &mut String, heading: &str, notes: &[Note]) {
    writeln!(out, "### {heading}\n").unwrap();
    for note in notes {
        // Messages name their server, as in the text form.
        if note.code.is_empty() {
            writeln!(out, "- {}", escape(&note.message)).unwrap();
        } else {
            writeln!(out, "- `{}` {}", note.code, escape(&note.message)).unwrap();
        }
        if let Some(hint) = &note.hint {
            writeln!(out, "  - hint: {}", escape(hint)).unwrap();
        }
    }
    out.push('\n');
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Text that must stay text inside HTML (a `<summary>`), where Markdown is
/// not interpreted.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text that must stay text in Markdown. `_` is left alone: GitHub does not
/// emphasise inside words (`read_only`), and escaping it would clutter the
/// source of the comment; backticks too, as flipover's hints quote commands
/// with them.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '*' | '[' | ']' | '|' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            _ => escaped.push(c),
        }
    }
    escaped
}
