//! `flipover graph -f FILE [--format mermaid|dot] [--plan]`: draw the
//! desired topology (no server access), or with `--plan` the plan's step
//! graph, on stdout.

use std::path::PathBuf;

use crate::exit_codes;
use crate::planner::{self, PlanOptions};
use crate::render::graph::{self, GraphFormat};
use crate::render::plan_json;
use crate::topology;
use crate::wire::PlanOptionsDocument;
use miette::{Context, IntoDiagnostic};

use super::error::CommandResult;
use super::{ObserveArgs, TopologyFileArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub topology: TopologyFileArg,

    /// The drawing's language: `mermaid` (rendered by code hosts in
    /// Markdown) or `dot` (Graphviz).
    #[arg(long, value_enum, default_value_t = GraphFormatArg::Mermaid)]
    pub format: GraphFormatArg,

    /// Draw the plan's steps and what each waits for, instead of the
    /// topology (observes the servers, as `plan` does).
    #[arg(long)]
    pub plan: bool,

    #[command(flatten)]
    pub observe: ObserveArgs,

    /// With --plan: plan from a recorded observation instead of the live servers.
    #[arg(long, value_name = "FILE", requires = "plan")]
    pub observed: Option<PathBuf>,

    /// With --plan: rebuild NAME by cloning even though it holds data. Repeatable.
    #[arg(long = "replace", value_name = "NAME", requires = "plan")]
    pub replace: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormatArg {
    Mermaid,
    Dot,
}

pub fn run(args: Args) -> CommandResult {
    let format = match args.format {
        GraphFormatArg::Mermaid => GraphFormat::Mermaid,
        GraphFormatArg::Dot => GraphFormat::Dot,
    };
    let path = &args.topology.file;
    let text = std::fs::read_to_string(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let topology = topology::parse(&text, path)?;
    if !args.plan {
        print!("{}", graph::topology(&topology, format));
        return Ok(exit_codes::SUCCESS);
    }
    let observed = match &args.observed {
        Some(observed) => super::read_observed(observed, &topology)?,
        None => args.observe.observe(&topology)?,
    };
    let options = PlanOptions {
        replace: args.replace.iter().cloned().collect(),
        failover: false,
    };
    let plan = planner::plan(&topology, &observed, &options);
    let document = plan_json::document(
        &topology,
        &text,
        &path.display().to_string(),
        &observed,
        &plan,
        &PlanOptionsDocument::new(args.replace.iter().cloned(), false),
    );
    print!("{}", graph::steps(&document.steps, format));
    Ok(exit_codes::SUCCESS)
}
