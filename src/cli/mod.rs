//! Command-line front end: one module per subcommand. Only this layer prints
//! to the terminal; it turns library errors into miette reports with hints.

mod sandbox;
mod status;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Declarative plan/apply for MySQL/MariaDB replication topologies.
#[derive(Debug, Parser)]
#[command(name = "flipover", version, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a topology file and report every problem in it.
    Validate(validate::Args),
    /// Show the observed replication tree of the servers in a topology file.
    Status(status::Args),
    /// Run a local playground of real MariaDB servers, each with its agent.
    #[command(subcommand)]
    Sandbox(sandbox::Command),
}

/// The `-f/--file` option shared by the commands that read a topology.
#[derive(Debug, Clone, clap::Args)]
pub struct TopologyFileArg {
    /// Topology file.
    #[arg(short = 'f', long = "file", default_value = "flipover.toml")]
    pub file: PathBuf,
}

pub fn run(cli: Cli) -> miette::Result<i32> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Status(args) => status::run(args),
        Command::Sandbox(command) => sandbox::run(command),
    }
}

/// Logs go to stderr; data goes to stdout.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "flipover=info",
        1 => "flipover=debug,flipover_agent=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colors_enabled_stderr())
        .with_target(false)
        .without_time()
        .init();
}

/// Colour only on a terminal, and never when NO_COLOR is set.
pub fn colors_enabled_stderr() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}
