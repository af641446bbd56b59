//! `flipover show PLANFILE [--json | --format text|markdown]`: print a saved
//! plan document. It renders from the document alone (the planner would
//! need the servers), so a plan reviewed yesterday reads the same today.

use std::path::{Path, PathBuf};

use crate::exit_codes;
use crate::render::{plan_markdown, plan_text};
use crate::wire::{PlanDocument, PlanFileError};

use super::error::{CommandError, CommandResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved as JSON (`flipover plan --json > PLANFILE`).
    #[arg(value_name = "PLANFILE")]
    pub plan_file: PathBuf,

    /// Print the plan document as JSON (format_version 1, schemas/plan.schema.json).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// How to print it: `text` as `plan` does, or `markdown` for a pull-request comment.
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Text,
    Markdown,
}

pub fn run(args: Args) -> CommandResult {
    let document = read_plan(&args.plan_file)?;
    if args.json {
        print!("{}", document.to_json());
    } else {
        match args.format {
            ShowFormat::Text => print!("{}", plan_text::render_document(&document)),
            ShowFormat::Markdown => print!("{}", plan_markdown::render(&document)),
        }
    }
    Ok(exit_codes::SUCCESS)
}

/// Reads and checks a saved plan: another format version, a cut-short,
/// foreign or edited file are each an error (exit code 5) saying what to do.
pub fn read_plan(path: &Path) -> Result<PlanDocument, CommandError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CommandError::new(
            exit_codes::INVALID_PLAN_FILE,
            format!("cannot read the plan file {}: {error}", path.display()),
        )
    })?;
    PlanDocument::from_json(&text).map_err(|error| {
        let help = match &error {
            PlanFileError::UnsupportedVersion { .. } => {
                "make the plan again with this flipover (`flipover plan --json`), or use the flipover that wrote it"
            }
            PlanFileError::Truncated { .. } | PlanFileError::Edited(_) => {
                "plan files must not be edited; make the plan again with `flipover plan --json`"
            }
            PlanFileError::NotJson(_)
            | PlanFileError::NotAPlan(_)
            | PlanFileError::Invalid { .. } => {
                "give a file written by `flipover plan --json`"
            }
        };
        CommandError::new(
            exit_codes::INVALID_PLAN_FILE,
            format!("{}: {error}", path.display()),
        )
        .hint(help)
    })
}
