//! `flipover observe -f FILE > observed.json`: record the observed state,
//! for `plan --observed` on machines that cannot reach the servers.

use crate::{exit_codes, topology};
use miette::IntoDiagnostic;

use super::error::CommandResult;
use super::{ObserveArgs, TopologyFileArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub topology: TopologyFileArg,

    #[command(flatten)]
    pub observe: ObserveArgs,
}

pub fn run(args: Args) -> CommandResult {
    let topology = topology::load(&args.topology.file)?;
    let observed = args.observe.observe(&topology)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&observed).into_diagnostic()?
    );
    Ok(exit_codes::SUCCESS)
}
