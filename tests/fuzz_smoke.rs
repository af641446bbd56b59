//! The fuzz smoke test: every input of the committed fuzz corpora
//! (`fuzz/corpus/<target>/`) goes through the same entry function as the
//! fuzz target (`flipover::fuzz_entry`), without a panic. Needs no nightly
//! and no libFuzzer; the long runs are recorded in `fuzz/RUNS.md`.

use std::path::{Path, PathBuf};

use flipover::fuzz_entry;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
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
fn topology_corpus_parses_without_panicking() {
    let (mut accepted, mut total) = (0, 0);
    for (_path, data) in corpus("topology") {
        accepted += usize::from(fuzz_entry::topology(&data));
        total += 1;
    }
    // The corpus holds inputs the code accepts and inputs it refuses.
    assert!(
        0 < accepted && accepted < total,
        "{accepted} of {total} accepted"
    );
}

#[test]
fn plan_file_corpus_reads_without_panicking() {
    let (mut accepted, mut total) = (0, 0);
    for (_path, data) in corpus("plan_file") {
        accepted += usize::from(fuzz_entry::plan_file(&data));
        total += 1;
    }
    // The corpus holds inputs the code accepts and inputs it refuses.
    assert!(
        0 < accepted && accepted < total,
        "{accepted} of {total} accepted"
    );
}
