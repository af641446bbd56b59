//! `flipover plan -f FILE`: observe, diff against the topology, show the plan.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::exit_codes;
use crate::planner::{self, PlanOptions};
use crate::render;
use crate::topology::{self, Topology};
use crate::wire::PlanOptionsDocument;
use miette::{Context, IntoDiagnostic};

use super::error::{CommandError, CommandResult};

use super::{ObserveArgs, TopologyFileArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub topology: TopologyFileArg,

    #[command(flatten)]
    pub observe: ObserveArgs,

    #[command(flatten)]
    pub replace: ReplaceArg,

    /// Plan from a recorded observation (`flipover observe`) instead of the
    /// live servers: no database access at all.
    #[arg(long, value_name = "FILE")]
    pub observed: Option<PathBuf>,

    /// Exit 0 when there is nothing to do, 2 when the plan has changes, 1 on
    /// errors (for CI gates).
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Output format: text for people, markdown for pull-request comments,
    /// json (the versioned plan document, `schemas/plan.schema.json`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Also save the plan to FILE, for `flipover apply FILE` (which refuses it
    /// if the servers changed meanwhile) and `flipover show FILE`.
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// Options that change what is planned, shared by plan and apply.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplaceArg {
    /// Rebuild NAME by cloning even though it holds data (destructive). Repeatable.
    #[arg(long = "replace", value_name = "NAME")]
    pub names: Vec<String>,

    /// The primary does not answer: let flipover choose its replacement (the
    /// most advanced promotable replica) instead of the topology file, and
    /// print the topology change that implies.
    #[arg(long)]
    pub failover: bool,
}

impl ReplaceArg {
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            replace: self.names.iter().cloned().collect::<BTreeSet<_>>(),
            failover: self.failover,
        }
    }

    pub fn document(&self) -> PlanOptionsDocument {
        PlanOptionsDocument::new(self.names.iter().cloned(), self.failover)
    }
}

pub fn run(args: Args) -> CommandResult {
    let (topology, text) = load_with_text(&args.topology.file)?;
    let observed = match &args.observed {
        Some(path) => super::read_observed(path, &topology)?,
        None => args.observe.observe(&topology)?,
    };
    let format = if args.json { Format::Json } else { args.format };
    let plan = planner::plan(&topology, &observed, &args.replace.options());
    // The text form starts with `--failover`'s choice; the others keep
    // stdout for their document.
    if let (Some(choice), false) = (&plan.failover_choice, format == Format::Text) {
        eprint!("{}", render::plan_text::failover_lines(&choice.explanation));
    }
    let document = || {
        render::plan_json::document(
            &topology,
            &text,
            &args.topology.file.display().to_string(),
            &observed,
            &plan,
            &args.replace.document(),
        )
    };
    match format {
        Format::Text => print!("{}", render::plan_text::render(&topology, &observed, &plan)),
        Format::Markdown => print!("{}", render::plan_markdown::render(&document())),
        Format::Json => print!("{}", document().to_json()),
    }
    if let Some(out) = &args.out {
        std::fs::write(out, document().to_json())
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write the plan to {}", out.display()))?;
        eprintln!(
            "plan saved to {}: apply it with `flipover apply {}`",
            out.display(),
            out.display()
        );
    }
    if plan.has_problems() {
        return Err(problems_error(&plan));
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        exit_codes::CHANGES
    } else {
        exit_codes::SUCCESS
    })
}

/// The error of a plan with problems (the plan itself says what they are).
pub fn problems_error(plan: &planner::Plan) -> CommandError {
    let count = plan.problems.len();
    CommandError::failed(format!(
        "the plan has {count} problem{}: nothing was applied",
        if count == 1 { "" } else { "s" }
    ))
}

/// Reads and validates a topology file, keeping its text (a saved plan
/// carries it).
pub fn load_with_text(path: &Path) -> miette::Result<(Topology, String)> {
    let text = std::fs::read_to_string(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", path.display()))?;
    Ok((topology::parse(&text, path)?, text))
}
