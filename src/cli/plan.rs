//! `flipover plan -f FILE`: observe, diff against the topology, show the plan.

use std::collections::BTreeSet;
use std::path::PathBuf;

use flipover::exit_codes;
use flipover::planner::{self, PlanOptions};
use flipover::render;
use flipover::topology;

use super::{ObserveArgs, TopologyFileArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub topology: TopologyFileArg,

    #[command(flatten)]
    pub observe: ObserveArgs,

    #[command(flatten)]
    pub replace: ReplaceArg,

    /// Plan from a recorded observation (`flipover status --json`) instead of
    /// the live servers: no database access at all.
    #[arg(long, value_name = "FILE")]
    pub observed: Option<PathBuf>,
}

/// `--replace NAME`, shared by plan and apply.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplaceArg {
    /// Rebuild NAME by cloning even though it holds data (destructive). Repeatable.
    #[arg(long = "replace", value_name = "NAME")]
    pub names: Vec<String>,
}

impl ReplaceArg {
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            replace: self.names.iter().cloned().collect::<BTreeSet<_>>(),
        }
    }
}

pub fn run(args: Args) -> miette::Result<i32> {
    let topology = topology::load(&args.topology.file)?;
    let observed = match &args.observed {
        Some(path) => super::read_observed(path, &topology)?,
        None => args.observe.observe(&topology)?,
    };
    let plan = planner::plan(&topology, &observed, &args.replace.options());
    print!("{}", render::plan_text::render(&topology, &observed, &plan));
    Ok(if plan.has_problems() {
        exit_codes::ERROR
    } else {
        exit_codes::SUCCESS
    })
}
