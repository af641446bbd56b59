//! `flipover validate -f FILE`: check a topology file.

use flipover::exit_codes;
use flipover::topology;

use super::TopologyFileArg;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub topology: TopologyFileArg,
}

pub fn run(args: Args) -> miette::Result<i32> {
    let topology = topology::load(&args.topology.file)?;
    println!(
        "{}: valid: cluster {}, {} servers, primary {}",
        args.topology.file.display(),
        topology.cluster.name,
        topology.servers.len(),
        topology.primary().name
    );
    Ok(exit_codes::SUCCESS)
}
