//! Every file in `tests/topology_cases/` through `topology::parse`: an invalid
//! file snapshots its rendered diagnostic, a valid one (named `valid_*`) the
//! resolved topology. Review changes with `cargo insta review` or
//! `INSTA_UPDATE=always cargo test --test topology_diagnostics`.

#[path = "common/expected.rs"]
mod expected;

use std::path::{Path, PathBuf};

use flipover::topology;

/// Renders like the CLI, minus colour and terminal width, so snapshots are stable.
fn render(error: &topology::TopologyError) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut rendered = String::new();
    handler
        .render_report(&mut rendered, error)
        .expect("rendering into a String cannot fail");
    rendered
}

/// The case files, sorted so that runs are deterministic.
fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/topology_cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/topology_cases exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

fn check_case(path: &Path) {
    let text = std::fs::read_to_string(path).expect("readable case");
    let file_name = path.file_name().expect("a file name");
    let stem = path.file_stem().expect("a file stem").to_string_lossy();
    let is_valid_case = stem.starts_with("valid_");
    // Only the file name, so that snapshots do not depend on the checkout's location.
    match topology::parse(&text, Path::new(file_name)) {
        Ok(topology) => {
            assert!(is_valid_case, "{} should be invalid", path.display());
            expected::insta_follows();
            insta::assert_json_snapshot!(stem.as_ref(), topology);
        }
        Err(error) => {
            assert!(
                !is_valid_case,
                "{} should be valid:\n{}",
                path.display(),
                render(&error)
            );
            assert!(
                error
                    .problems()
                    .iter()
                    .all(|problem| problem.kind() != topology::ProblemKind::InvalidValue),
                "{}: the shape check let through a value serde rejects",
                path.display()
            );
            expected::insta_follows();
            insta::assert_snapshot!(stem.as_ref(), render(&error));
        }
    }
}

#[test]
fn topology_cases() {
    let files = case_files();
    let invalid = files
        .iter()
        .filter(|path| {
            !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("valid_")
        })
        .count();
    assert!(invalid >= 15, "at least 15 invalid cases, found {invalid}");
    // Check every case before failing, so that one run shows every changed snapshot.
    let failed: Vec<String> = files
        .iter()
        .filter(|path| std::panic::catch_unwind(|| check_case(path)).is_err())
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}
