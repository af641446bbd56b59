//! `flipover apply --json` on a real sandbox: the report says what happened
//! to each step, with a typed error code and the state a failed step left
//! the servers in, and it matches `schemas/apply-report.schema.json`.

mod common;

use std::path::Path;

use common::{flipover, TestSandbox};
use flipover::wire::ApplyReportDocument;

/// `apply --json ARGS…`: the exit code, the report on stdout, stderr.
fn apply_json(path: &Path, extra: &[&str]) -> (Option<i32>, ApplyReportDocument, String) {
    let mut args = vec![
        "apply",
        "-f",
        path.to_str().unwrap(),
        "--auto-approve",
        "--json",
    ];
    args.extend_from_slice(extra);
    let output = flipover(&args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not an apply report ({e}):\n{stderr}"));
    (output.status.code(), report, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_json_reports_typed_outcomes() {
    let sandbox = TestSandbox::up(2);
    let topology = sandbox.topology();

    // Two empty replicas' worth of work on one: a clone, then replication.
    let (code, report, stderr) = apply_json(&topology, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report.format_version, 1);
    assert_eq!(report.outcome, "succeeded", "{stderr}");
    let ids: Vec<&str> = report.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["clone db2", "start-replication db2"], "{stderr}");
    for step in &report.steps {
        assert_eq!(step.outcome, "succeeded");
        assert!(
            step.elapsed_ms.is_some() && step.error.is_none(),
            "{step:?}"
        );
    }
    // The plan went to stderr, for people; stdout held only the report.
    assert!(stderr.contains("clone db2 from db1"), "{stderr}");

    // Nothing left: a report of no changes.
    let (code, report, stderr) = apply_json(&topology, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report.outcome, "no-changes");
    assert!(report.steps.is_empty());

    // A switchover a pre hook vetoes: failed, typed, nothing changed.
    let switch = sandbox.write_topology("switch", "db2", &[]);
    let mut text = std::fs::read_to_string(&switch).unwrap();
    text.push_str(
        "\n[hooks]\npre_switchover = [[\"/bin/sh\", \"-c\", \"echo 'maintenance window closed' >&2; exit 1\"]]\n",
    );
    std::fs::write(&switch, text).unwrap();
    let (code, report, stderr) = apply_json(&switch, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report.outcome, "failed");
    let failed = report
        .steps
        .iter()
        .find(|s| s.outcome == "failed")
        .expect("a failed step");
    assert_eq!(failed.kind, "switchover");
    let error = failed.error.as_ref().unwrap();
    assert_eq!(error.code, "hook-veto", "{error:?}");
    assert_eq!(error.servers_left, "unchanged", "{error:?}");
    assert!(
        error.message.contains("maintenance window closed"),
        "{error:?}"
    );
    // And it was so: db1 is still the writable primary, db2 its replica.
    let observed = common::observe(&switch);
    assert!(!observed.servers["db1"].facts().unwrap().read_only);
    assert!(observed.servers["db2"].facts().unwrap().replica.is_some());
    // The error line says the same codes, and the hint is spelled hint:.
    assert!(
        stderr.contains("[hook-veto; servers unchanged]"),
        "{stderr}"
    );

    // A plan with problems is refused, with the problems in the report.
    let (code, report, stderr) = apply_json(&topology, &["--replace", "nosuch"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report.outcome, "refused");
    let refusal = report.refusal.unwrap();
    assert_eq!(refusal.code, "plan-has-problems");
    assert_eq!(refusal.problems[0].code, "unknown-server");
}

/// `schemas/apply-report.schema.json` is generated from the report type;
/// `UPDATE_EXPECTED=1` rewrites it.
#[test]
fn committed_apply_report_schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/apply-report.schema.json");
    let generated =
        serde_json::to_string_pretty(&flipover::wire::apply_report_json_schema()).unwrap() + "\n";
    if common::expected::updating("UPDATE_SCHEMAS") {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/apply-report.schema.json is stale: UPDATE_EXPECTED=1 cargo test --test apply_report"
    );
}
