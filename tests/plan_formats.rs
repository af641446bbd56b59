//! The plan as a document: its JSON Schema, `flipover show` of saved plans
//! (round trip, refusals), and `flipover graph`. The golden JSON and Markdown
//! of every planner case are checked by tests/golden.rs.

mod common;

use std::path::{Path, PathBuf};

use common::flipover;
use flipover::observe::Observed;
use flipover::planner::{self, PlanOptions};
use flipover::render::{plan_json, plan_text};
use flipover::wire::{PlanDocument, PlanOptionsDocument};

const HOW_TO_UPDATE: &str = "UPDATE_EXPECTED=1 cargo test --test plan_formats";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn golden(case: &str) -> PathBuf {
    root().join("tests/golden").join(case)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The error report as one line: miette wraps it to the terminal's width.
fn report(output: &std::process::Output) -> String {
    stderr(output)
        .split_whitespace()
        .filter(|word| *word != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// A golden case planned through the library, as `plan --json` does.
fn document_of(case: &str) -> (String, PlanDocument) {
    let dir = golden(case);
    let text = std::fs::read_to_string(dir.join("topology.toml")).unwrap();
    let topology = flipover::topology::parse(&text, Path::new("topology.toml")).unwrap();
    let observed: Observed =
        serde_json::from_str(&std::fs::read_to_string(dir.join("observed.json")).unwrap()).unwrap();
    let plan = planner::plan(&topology, &observed, &PlanOptions::default());
    let document = plan_json::document(
        &topology,
        &text,
        "topology.toml",
        &observed,
        &plan,
        &PlanOptionsDocument::default(),
    );
    (plan_text::render(&topology, &observed, &plan), document)
}

fn saved(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn committed_plan_schema_is_up_to_date() {
    let path = root().join("schemas/plan.schema.json");
    let generated = serde_json::to_string_pretty(&flipover::wire::plan_json_schema())
        .expect("a JSON value serializes")
        + "\n";
    if common::expected::updating("UPDATE_SCHEMAS") {
        std::fs::write(&path, &generated).expect("schemas/ is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale or missing; regenerate it with `{HOW_TO_UPDATE}` and commit the result",
        path.display()
    );
}

#[test]
fn committed_hook_event_schema_is_up_to_date() {
    let path = root().join("schemas/hook-event.schema.json");
    let generated = serde_json::to_string_pretty(&flipover::wire::hook_event_json_schema())
        .expect("a JSON value serializes")
        + "\n";
    if common::expected::updating("UPDATE_SCHEMAS") {
        std::fs::write(&path, &generated).expect("schemas/ is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale or missing; regenerate it with `{HOW_TO_UPDATE}` and commit the result",
        path.display()
    );
}

#[test]
fn show_round_trips_a_document_written_with_the_library() {
    let dir = tempfile::tempdir().unwrap();
    for case in ["switchover", "replace-unknown-and-primary", "chained-clone"] {
        let (text, document) = document_of(case);
        let file = saved(&dir, &format!("{case}.json"), &document.to_json());

        let json = flipover(&["show", &file, "--json"]);
        assert_eq!(json.status.code(), Some(0), "{case}: {}", stderr(&json));
        assert_eq!(stdout(&json), document.to_json(), "{case}: show --json");
        let read_back: PlanDocument = serde_json::from_str(&stdout(&json)).unwrap();
        assert_eq!(read_back, document, "{case}");

        let shown = flipover(&["show", &file]);
        assert_eq!(shown.status.code(), Some(0), "{case}: {}", stderr(&shown));
        assert_eq!(
            stdout(&shown),
            text,
            "{case}: show prints what plan printed"
        );
    }
}

/// Every recorded golden document shows as its case's recorded plan.txt
/// (without the `--failover:` choice, which `plan` prints before the plan)
/// and plan.md.
#[test]
fn show_prints_every_golden_document_as_recorded() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("plan.json").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "golden documents: {}", cases.len());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let file = case.join("plan.json").display().to_string();
        // The document keeps `--failover`'s choice: `show` prints it as `plan` did.
        let expected_text = std::fs::read_to_string(case.join("plan.txt")).unwrap();
        let text = flipover(&["show", &file]);
        assert_eq!(text.status.code(), Some(0), "{name}: {}", stderr(&text));
        assert_eq!(stdout(&text), expected_text, "{name}: show");

        let markdown = flipover(&["show", &file, "--format", "markdown"]);
        assert_eq!(markdown.status.code(), Some(0), "{name}");
        assert_eq!(
            stdout(&markdown),
            std::fs::read_to_string(case.join("plan.md")).unwrap(),
            "{name}: show --format markdown"
        );
    }
}

#[test]
fn show_refuses_another_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let (_, document) = document_of("switchover");
    let mut value = serde_json::to_value(&document).unwrap();
    value["format_version"] = serde_json::json!(2);
    let file = saved(&dir, "v2.json", &value.to_string());
    let output = flipover(&["show", &file]);
    assert_eq!(output.status.code(), Some(5));
    assert!(stdout(&output).is_empty());
    let message = report(&output);
    assert!(
        message.contains("format version 2; this flipover reads format version 1"),
        "{message}"
    );
    assert!(message.contains("make the plan again"), "{message}");
}

#[test]
fn show_refuses_garbage_truncated_foreign_and_edited_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_, document) = document_of("switchover");
    let json = document.to_json();
    let mut edited = serde_json::to_value(&document).unwrap();
    edited["topology"]["text"] = serde_json::json!("[cluster]\nname = \"other\"\n");
    let mut forged = serde_json::to_value(&document).unwrap();
    forged["fingerprint"]["servers"]["db1"]["reachable"] = serde_json::json!(false);
    let mut reshaped = serde_json::to_value(&document).unwrap();
    reshaped["steps"] = serde_json::json!("none");
    let observed = golden("switchover").join("observed.json");
    let cases = [
        (saved(&dir, "garbage.json", "this is no plan\n"), "not JSON"),
        (
            saved(&dir, "truncated.json", &json[..json.len() / 2]),
            "the plan file is cut short",
        ),
        (
            observed.display().to_string(),
            "this is not a flipover plan: it has no steps or no fingerprint",
        ),
        (
            saved(&dir, "edited.json", &edited.to_string()),
            "the plan file was edited: the topology text does not match its sha256",
        ),
        (
            saved(&dir, "forged.json", &forged.to_string()),
            "the plan file was edited: the fingerprint's facts do not match its sha256",
        ),
        (
            saved(&dir, "reshaped.json", &reshaped.to_string()),
            "does not match plan format version 1",
        ),
        (
            dir.path().join("missing.json").display().to_string(),
            "cannot read the plan file",
        ),
    ];
    for (file, expected) in cases {
        let output = flipover(&["show", &file]);
        let message = report(&output);
        assert_eq!(output.status.code(), Some(5), "{file}: {message}");
        assert!(stdout(&output).is_empty(), "{file}");
        assert!(message.contains(expected), "{file}: {message}");
    }
}

#[test]
fn graph_draws_an_example_topology() {
    let file = root().join("examples/topologies/chained.toml");
    let file = file.to_str().unwrap();
    let mermaid = flipover(&["graph", "-f", file]);
    assert_eq!(mermaid.status.code(), Some(0), "{}", stderr(&mermaid));
    common::expected::insta_follows();
    insta::assert_snapshot!("graph_chained_mermaid", stdout(&mermaid));
    let dot = flipover(&["graph", "-f", file, "--format", "dot"]);
    assert_eq!(dot.status.code(), Some(0), "{}", stderr(&dot));
    insta::assert_snapshot!("graph_chained_dot", stdout(&dot));
}

#[test]
fn graph_draws_a_plan_step_graph() {
    let case = golden("switchover");
    let topology = case.join("topology.toml");
    let observed = case.join("observed.json");
    let args = [
        "graph",
        "-f",
        topology.to_str().unwrap(),
        "--plan",
        "--observed",
        observed.to_str().unwrap(),
    ];
    let mermaid = flipover(&args);
    assert_eq!(mermaid.status.code(), Some(0), "{}", stderr(&mermaid));
    common::expected::insta_follows();
    insta::assert_snapshot!("graph_switchover_plan_mermaid", stdout(&mermaid));
    let mut dot_args = args.to_vec();
    dot_args.extend(["--format", "dot"]);
    let dot = flipover(&dot_args);
    assert_eq!(dot.status.code(), Some(0), "{}", stderr(&dot));
    insta::assert_snapshot!("graph_switchover_plan_dot", stdout(&dot));

    // --observed plans; without --plan there is nothing to plan.
    let refused = flipover(&[
        "graph",
        "-f",
        topology.to_str().unwrap(),
        "--observed",
        observed.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
}
