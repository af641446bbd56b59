//! Saved plans: `plan --out`, `show`, `apply PLANFILE` and the stale-plan
//! refusal, on real sandboxes.

mod common;

use common::{flipover, observe, TestSandbox};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_shown_and_applied_without_a_prompt() {
    let sandbox = TestSandbox::up(2);
    let file = sandbox.dir.join("plan.json");
    let plan = flipover(&[
        "plan",
        "-f",
        &sandbox.topology_arg(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );

    let json = flipover(&["plan", "-f", &sandbox.topology_arg(), "--json"]);
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["steps"][0]["kind"], "clone");
    let markdown = flipover(&[
        "plan",
        "-f",
        &sandbox.topology_arg(),
        "--format",
        "markdown",
    ]);
    assert!(String::from_utf8_lossy(&markdown.stdout).contains("**Plan: 1 clone"));

    let shown = flipover(&["show", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success() && text.contains("clone db2 from db1"),
        "{text}"
    );

    // No --auto-approve and no terminal: a saved plan still runs.
    let applied = flipover(&["apply", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{stderr}");
    assert!(observe(&sandbox.topology()).servers["db2"]
        .facts()
        .unwrap()
        .replica
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_plan_is_refused_with_the_facts_that_changed() {
    let sandbox = TestSandbox::up(3);
    let file = sandbox.dir.join("plan.json");
    assert!(flipover(&[
        "plan",
        "-f",
        &sandbox.topology_arg(),
        "--out",
        file.to_str().unwrap()
    ])
    .status
    .success());

    // Meanwhile db3's mysqld dies.
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db3") as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let applied = flipover(&["apply", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&applied.stderr);
    assert_eq!(applied.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("is stale") && stderr.contains("db3"),
        "{stderr}"
    );
    // Nothing was applied.
    assert!(observe(&sandbox.topology()).servers["db2"]
        .facts()
        .unwrap()
        .replica
        .is_none());
}

#[test]
fn a_foreign_or_truncated_plan_file_is_refused_with_its_own_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"format_version\": 1, \"steps\": [").unwrap();
    let output = flipover(&["apply", garbage.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every field of a saved plan is covered by its `document_sha256`: a plan
/// whose desired tree, steps or options were edited is refused with exit
/// code 5 before any server is contacted (the golden documents name
/// loopback addresses nobody listens on).
#[test]
fn an_edited_desired_tree_steps_or_options_is_refused_with_exit_code_5() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/failover-choose-candidate/plan.json");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    assert!(original["document_sha256"].as_str().unwrap().len() == 64);
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 5] = [
        ("desired", |plan| {
            plan["desired"]["db2"] = serde_json::json!(null)
        }),
        ("a step's title", |plan| {
            plan["steps"][0]["title"] = serde_json::json!("failover db1 -> db2")
        }),
        ("a step's target", |plan| {
            plan["steps"][0]["target"] = serde_json::json!("db2")
        }),
        ("the options", |plan| {
            plan["options"]["replace"] = serde_json::json!(["db4"])
        }),
        ("the seal removed", |plan| {
            plan.as_object_mut().unwrap().remove("document_sha256");
        }),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, edit) in edits {
        let mut plan = original.clone();
        edit(&mut plan);
        let path = dir.path().join("plan.json");
        std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
        let output = flipover(&["apply", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(5), "{what}: {stderr}");
        assert!(stderr.contains("edited"), "{what}: {stderr}");
        assert!(
            stderr.contains("hint: plan files must not be edited"),
            "{what}: {stderr}"
        );
        // `show` refuses it the same way.
        let shown = flipover(&["show", path.to_str().unwrap()]);
        assert_eq!(shown.status.code(), Some(5), "{what}");
    }
    // The unedited document is read (and shown) as it was written.
    let shown = flipover(&["show", golden.to_str().unwrap()]);
    assert_eq!(shown.status.code(), Some(0));
}
