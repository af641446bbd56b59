//! Golden planner cases: each directory of `tests/golden/` holds a
//! topology.toml, an observed.json (what `flipover status --json` prints) and
//! optionally `args` (extra plan flags); `plan.txt` is the expected output of
//! `flipover plan --observed`, `plan.json` the plan document and `plan.md`
//! its Markdown (none for a case refused before planning).
//! `UPDATE_EXPECTED=1 cargo test --test golden` rewrites the expectations;
//! review the diff before committing it.

mod common;

use std::path::{Path, PathBuf};

use common::flipover;
use flipover::observe::Observed;
use flipover::planner::{self, PlanOptions};
use flipover::render::{plan_json, plan_markdown};
use flipover::wire::PlanOptionsDocument;

#[test]
fn every_golden_case_plans_as_recorded() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = common::expected::updating("UPDATE_GOLDEN");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("topology.toml").is_file())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 8,
        "at least 8 golden cases, found {}",
        cases.len()
    );

    let mut mismatches = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let topology = case.join("topology.toml");
        let observed = case.join("observed.json");
        let mut args = vec![
            "plan".to_string(),
            "-f".to_string(),
            topology.display().to_string(),
            "--observed".to_string(),
            observed.display().to_string(),
        ];
        if let Ok(extra) = std::fs::read_to_string(case.join("args")) {
            args.extend(extra.split_whitespace().map(str::to_string));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = flipover(&args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let stdout = String::from_utf8(output.stdout).unwrap();
        // A refusal before any plan (--failover finding no candidate) is
        // recorded as its diagnostic.
        let refused = stdout.trim().is_empty();
        let stdout = if refused { stderr.clone() } else { stdout };
        assert!(!stdout.is_empty(), "{name}: nothing printed");

        // A plan with problems, or a refusal, exits 1; a plan without exits 0.
        let has_problems = stdout.contains("\nProblems (") || refused;
        assert_eq!(
            output.status.code(),
            Some(if has_problems { 1 } else { 0 }),
            "{name}: exit code; stderr:\n{stderr}"
        );

        // The same inputs give the same plan, byte for byte.
        let again = flipover(&args);
        let again = if refused {
            String::from_utf8_lossy(&again.stderr).into_owned()
        } else {
            String::from_utf8(again.stdout).unwrap()
        };
        assert_eq!(stdout, again, "{name}: planning is not deterministic");

        let expected_file = case.join("plan.txt");
        if update {
            std::fs::write(&expected_file, &stdout).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_file).unwrap_or_default();
        if expected != stdout {
            let diff = similar::TextDiff::from_lines(&expected, &stdout)
                .unified_diff()
                .header("expected", "actual")
                .to_string();
            mismatches.push(format!("{name}:\n{diff}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden plans differ (UPDATE_EXPECTED=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

fn golden_cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("topology.toml").is_file())
        .collect();
    cases.sort();
    cases
}

/// The plan document and its Markdown for a case, made in-process through
/// the library as `plan --json` makes them.
fn formats(case: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(case.join("topology.toml")).unwrap();
    // The file name as a user would give it, so the bytes do not depend on
    // where the repository is checked out.
    let topology = flipover::topology::parse(&text, Path::new("topology.toml")).unwrap();
    let observed: Observed =
        serde_json::from_str(&std::fs::read_to_string(case.join("observed.json")).unwrap())
            .unwrap();
    let args = std::fs::read_to_string(case.join("args")).unwrap_or_default();
    let args: Vec<&str> = args.split_whitespace().collect();
    let replace: Vec<String> = args
        .windows(2)
        .filter(|pair| pair[0] == "--replace")
        .map(|pair| pair[1].to_string())
        .collect();
    let failover = args.contains(&"--failover");
    let options = PlanOptions {
        replace: replace.iter().cloned().collect(),
        failover,
    };
    let plan = planner::plan(&topology, &observed, &options);
    let document = plan_json::document(
        &topology,
        &text,
        "topology.toml",
        &observed,
        &plan,
        &PlanOptionsDocument::new(replace, failover),
    );
    Some((document.to_json(), plan_markdown::render(&document)))
}

#[test]
fn every_golden_case_has_its_json_and_markdown_as_recorded() {
    let update = common::expected::updating("UPDATE_GOLDEN");
    let mut mismatches = Vec::new();
    for case in golden_cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let Some((json, markdown)) = formats(&case) else {
            assert!(
                !case.join("plan.json").exists(),
                "{name}: refused before planning, yet a plan.json is recorded"
            );
            continue;
        };
        assert_eq!(
            formats(&case),
            Some((json.clone(), markdown.clone())),
            "{name}: the plan document is not deterministic"
        );
        for (file, actual) in [("plan.json", &json), ("plan.md", &markdown)] {
            let path = case.join(file);
            if update {
                std::fs::write(&path, actual).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if &expected != actual {
                let diff = similar::TextDiff::from_lines(&expected, actual)
                    .unified_diff()
                    .header("expected", "actual")
                    .to_string();
                mismatches.push(format!("{name}/{file}:\n{diff}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden plan documents differ (UPDATE_EXPECTED=1 to accept):\n{}",
        mismatches.join("\n")
    );
}
