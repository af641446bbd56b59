//! The fuzz smoke test: every input of the agent's committed fuzz corpora
//! (`fuzz/corpus/<target>/`) goes through the same entry function as the
//! fuzz target, without a panic. Needs no nightly and no libFuzzer; the
//! long runs are recorded in `fuzz/RUNS.md`. (The stream framing's smoke is
//! a unit test beside it, in the agent binary's `server/clone/stream.rs`.)

use std::path::{Path, PathBuf};

use flipover_agent::fuzz_entry;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files.sort();
    files
}

#[test]
fn mycnf_corpus_parses_without_panicking() {
    let (mut accepted, mut total) = (0, 0);
    for (_path, data) in corpus("mycnf") {
        accepted += usize::from(fuzz_entry::mycnf(&data));
        total += 1;
    }
    // The corpus holds inputs the code accepts and inputs it refuses.
    assert!(
        0 < accepted && accepted < total,
        "{accepted} of {total} accepted"
    );
}

#[test]
fn agent_request_corpus_decodes_without_panicking() {
    let (mut accepted, mut total) = (0, 0);
    for (_path, data) in corpus("agent_requests") {
        accepted += usize::from(fuzz_entry::requests(&data));
        total += 1;
    }
    // The corpus holds inputs the code accepts and inputs it refuses.
    assert!(
        0 < accepted && accepted < total,
        "{accepted} of {total} accepted"
    );
}
