//! Every topology in `examples/topologies/` is valid, so the examples users copy work.

use std::path::Path;

use flipover::topology;

#[test]
fn every_example_topology_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/topologies exists") {
        let path = entry.expect("readable directory entry").path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        if let Err(error) = topology::load(&path) {
            panic!(
                "{} is invalid: {:?}",
                path.display(),
                miette::Report::new(error)
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "expected at least 3 examples, found {checked}"
    );
}
