//! `schemas/topology.schema.json` must match the schema generated from the raw
//! serde types, so editors validating topology files never drift from flipover.

use std::path::Path;

#[path = "common/expected.rs"]
mod expected;

const HOW_TO_UPDATE: &str = "UPDATE_EXPECTED=1 cargo test --test topology_schema";

#[test]
fn committed_schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/topology.schema.json");
    let generated = serde_json::to_string_pretty(&flipover::topology::json_schema())
        .expect("a JSON value serializes")
        + "\n";
    if expected::updating("UPDATE_SCHEMAS") {
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
