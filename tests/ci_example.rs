//! examples/ci/: the pull-request gate runs the same commands here as in the
//! workflow — `plan --observed --detailed-exitcode --format markdown --out`
//! and a look at the saved plan's destructive count — on recorded observations.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Gate {
    code: i32,
    verdict: String,
    markdown: String,
    stderr: String,
}

/// Runs `examples/ci/plan-gate TOPOLOGY OBSERVED OUTDIR` with this build's flipover.
fn gate(topology: &Path, observed: &Path, allow_destructive: bool) -> Gate {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(example("examples/ci/plan-gate"))
        .arg(topology)
        .arg(observed)
        .arg(out.path())
        .env("FLIPOVER", common::flipover_bin())
        .env("ALLOW_DESTRUCTIVE", if allow_destructive { "1" } else { "0" })
        .output()
        .expect("plan-gate runs");
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap_or_default();
    Gate {
        code: output.status.code().expect("exit code"),
        verdict: read("verdict"),
        markdown: read("plan.md"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn unchanged_topology_passes_with_no_changes() {
    let g = gate(
        &example("examples/ci/recorded/topology.toml"),
        &example("examples/ci/recorded/observed.json"),
        false,
    );
    assert_eq!(g.code, 0, "{}", g.stderr);
    assert_eq!(g.verdict.trim(), "no changes");
    assert!(g.markdown.contains("Plan: 0 clone"), "{}", g.markdown);
}

#[test]
fn a_switchover_pull_request_passes_and_posts_its_plan() {
    // The pull request makes db2 the primary.
    let g = gate(
        &example("tests/golden/switchover/topology.toml"),
        &example("examples/ci/recorded/observed.json"),
        false,
    );
    assert_eq!(g.code, 0, "{}", g.stderr);
    assert!(g.verdict.starts_with("ok: Plan: 0 clone, 2 rechain, 1 switchover"));
    assert!(g.markdown.contains("blocks writes"), "{}", g.markdown);
}

#[test]
fn destructive_plans_need_the_approval_label() {
    let case = example("tests/golden/old-primary-back-with-errant-writes");
    let topology = case.join("topology.toml");
    let observed = case.join("observed.json");

    let blocked = gate(&topology, &observed, false);
    assert_eq!(blocked.code, 3, "{}", blocked.stderr);
    assert!(blocked.verdict.starts_with("blocked:"), "{}", blocked.verdict);
    assert!(blocked.markdown.contains("destructive"), "{}", blocked.markdown);

    let approved = gate(&topology, &observed, true);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert!(approved.verdict.contains("1 destructive"));
}

#[test]
fn a_plan_with_problems_fails_the_gate() {
    let case = example("tests/golden/switchover-lag-refused");
    let g = gate(&case.join("topology.toml"), &case.join("observed.json"), true);
    assert_eq!(g.code, 1, "{}", g.stderr);
    assert!(g.verdict.starts_with("plan failed"));
    // The comment still explains why.
    assert!(g.markdown.to_lowercase().contains("lag"), "{}", g.markdown);
}

#[test]
fn the_workflow_runs_the_gate_and_posts_its_markdown() {
    let workflow = std::fs::read_to_string(example("examples/ci/github-workflow.yml")).unwrap();
    assert!(workflow.contains("examples/ci/plan-gate topology.toml recorded/observed.json out"));
    assert!(workflow.contains("--body-file out/plan.md"));
    assert!(workflow.contains("flipover:approve-destructive"));
}
