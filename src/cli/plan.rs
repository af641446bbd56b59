//! `flipover plan -f FILE`: observe, diff against the topology, show the plan.

use std::collections::BTreeSet;
use std::path::PathBuf;

use flipover::exit_codes;
use flipover::observe::Observed;
use flipover::planner::{self, PlanOptions};
use flipover::render;
use flipover::topology::{self, Topology};

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
        }
    }

    /// With `--failover`, the topology with the chosen replacement as primary
    /// (the choice and the edits it implies printed first); else `topology`.
    pub fn desired(&self, topology: Topology, observed: &Observed) -> miette::Result<Topology> {
        if !self.failover {
            return Ok(topology);
        }
        match planner::failover::choose(&topology, observed) {
            Ok((chosen, explanation)) => {
                for line in explanation {
                    println!("--failover: {line}");
                }
                println!();
                Ok(chosen)
            }
            Err(reasons) => Err(miette::miette!(
                help =
                    "name the new primary in the topology file yourself, or bring the primary back",
                "--failover: {}",
                reasons.join("\n  ")
            )),
        }
    }
}

pub fn run(args: Args) -> miette::Result<i32> {
    let topology = topology::load(&args.topology.file)?;
    let observed = match &args.observed {
        Some(path) => super::read_observed(path, &topology)?,
        None => args.observe.observe(&topology)?,
    };
    let topology = args.replace.desired(topology, &observed)?;
    let plan = planner::plan(&topology, &observed, &args.replace.options());
    print!("{}", render::plan_text::render(&topology, &observed, &plan));
    Ok(if plan.has_problems() {
        exit_codes::ERROR
    } else if args.detailed_exitcode && !plan.is_empty() {
        exit_codes::CHANGES
    } else {
        exit_codes::SUCCESS
    })
}
