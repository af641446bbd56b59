//! The command line as users see it: `--help` of every subcommand
//! (snapshots), shell completions and man pages.

mod common;

use std::process::Command;

use common::flipover_bin;

const SUBCOMMANDS: &[&[&str]] = &[
    &[],
    &["validate"],
    &["status"],
    &["observe"],
    &["plan"],
    &["apply"],
    &["show"],
    &["graph"],
    &["import"],
    &["completions"],
    &["man"],
    &["sandbox"],
    &["sandbox", "up"],
    &["sandbox", "down"],
    &["sandbox", "status"],
    &["certs"],
    &["certs", "init"],
];

fn help(subcommand: &[&str]) -> String {
    let output = Command::new(flipover_bin())
        .args(subcommand)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{subcommand:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_subcommand_has_its_help_as_recorded() {
    for subcommand in SUBCOMMANDS {
        let name = if subcommand.is_empty() {
            "flipover".to_string()
        } else {
            format!("flipover {}", subcommand.join(" "))
        };
        common::expected::insta_follows();
        insta::assert_snapshot!(name.replace(' ', "_"), help(subcommand), &name);
    }
}

#[test]
fn completions_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(flipover_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        for subcommand in ["validate", "plan", "apply", "import", "sandbox"] {
            assert!(
                script.contains(subcommand),
                "{shell} completions lack {subcommand}"
            );
        }
    }
}

#[test]
fn man_pages_are_written_for_the_command_and_its_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(flipover_bin())
        .args(["man", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success());
    for page in [
        "flipover.1",
        "flipover-plan.1",
        "flipover-apply.1",
        "flipover-sandbox-up.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_default();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text:.80}"
        );
    }
}
