//! `flipover validate -f FILE`: check a topology file.

use crate::exit_codes;
use crate::topology;

use super::error::CommandResult;
use super::TopologyFileArg;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub topology: TopologyFileArg,
}

pub fn run(args: Args) -> CommandResult {
    let topology = topology::load(&args.topology.file)?;
    let hooks: Vec<String> = topology
        .hooks()
        .commands
        .iter()
        .filter(|(_, commands)| !commands.is_empty())
        .map(|(event, commands)| format!("{event} ({})", commands.len()))
        .collect();
    println!(
        "{}: valid: cluster {}, {} servers, primary {}{}",
        args.topology.file.display(),
        topology.cluster().name,
        topology.servers().len(),
        topology.primary().name,
        if hooks.is_empty() {
            String::new()
        } else {
            format!(", hooks {}", hooks.join(", "))
        }
    );
    Ok(exit_codes::SUCCESS)
}
