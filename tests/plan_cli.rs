//! `flipover plan` exit codes for CI gates, on recorded observations.

mod common;

use std::path::Path;

use common::flipover;

fn plan(case: &str, extra: &[&str]) -> Option<i32> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case);
    let topology = dir.join("topology.toml");
    let observed = dir.join("observed.json");
    let mut args = vec![
        "plan",
        "-f",
        topology.to_str().unwrap(),
        "--observed",
        observed.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    flipover(&args).status.code()
}

#[test]
fn detailed_exitcode_tells_no_changes_changes_and_errors_apart() {
    let detailed = ["--detailed-exitcode"];
    assert_eq!(plan("no-changes", &detailed), Some(0));
    assert_eq!(plan("clone-empty-replicas", &detailed), Some(2));
    assert_eq!(plan("switchover", &detailed), Some(2));
    assert_eq!(plan("data-without-replace", &detailed), Some(1));
    // Without the flag a plan with changes is a success.
    assert_eq!(plan("clone-empty-replicas", &[]), Some(0));
}

#[test]
fn an_observation_that_does_not_match_the_topology_is_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let output = flipover(&[
        "plan",
        "-f",
        dir.join("switchover/topology.toml").to_str().unwrap(),
        "--observed",
        dir.join("no-changes/observed.json").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no observation of db4"), "{stderr}");
}
