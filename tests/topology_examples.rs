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

/// `Topology::from_parts`, `with_sources` (`--failover`, saved plans) and
/// `flipover import` write a topology as TOML and parse it back: every key
/// of every example and golden topology must survive that. A new topology
/// key that `topology::to_toml` forgets fails here.
#[test]
fn every_topology_written_back_parses_to_the_same_topology() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["examples/topologies", "tests/topology_cases"] {
        files.extend(
            std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    dir != "tests/topology_cases" || p.to_string_lossy().contains("valid_")
                }),
        );
    }
    for entry in std::fs::read_dir(root.join("tests/golden")).unwrap() {
        files.push(entry.unwrap().path().join("topology.toml"));
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file());
    files.sort();
    assert!(files.len() >= 20, "found only {} topologies", files.len());
    for path in &files {
        let original = topology::load(path).unwrap();
        let written = topology::to_toml(&original);
        let back = topology::parse(&written, path)
            .unwrap_or_else(|e| panic!("{}: {:?}", path.display(), miette::Report::new(e)));
        assert_eq!(back, original, "{} written as:\n{written}", path.display());
    }
}
