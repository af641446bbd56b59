//! Command-line front end: one module per subcommand. Only this layer prints
//! to the terminal; it turns library errors into miette reports with hints.

pub mod apply;
mod certs;
mod completions;
pub mod error;
mod graph;
mod import;
mod observe;
pub mod plan;
mod sandbox;
mod show;
pub mod status;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::observe::{ObserveOptions, Observed};
use crate::topology::Topology;
use clap::{Parser, Subcommand};
use flipover_agent::logging::LogFormat;
use miette::{Context, IntoDiagnostic};

/// Declarative plan/apply for MySQL/MariaDB replication topologies.
#[derive(Debug, Parser)]
#[command(
    name = "flipover",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Log lines on stderr as text, or as JSON objects one per line.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a topology file and report every problem in it.
    Validate(validate::Args),
    /// Show the observed replication tree of the servers in a topology file.
    Status(status::Args),
    /// Discover a running cluster and write its topology file.
    Import(import::Args),
    /// Record the observed state as JSON (what `plan --observed` reads).
    Observe(observe::Args),
    /// Show what `apply` would change: the steps from the observed servers to the topology.
    Plan(plan::Args),
    /// Plan, confirm, and carry out the plan.
    Apply(apply::Args),
    /// Print a saved plan (JSON) as text, Markdown or JSON.
    Show(show::Args),
    /// Draw the desired topology, or with --plan the plan's steps, as Mermaid or DOT.
    Graph(graph::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Write man pages (flipover.1 and one per subcommand) into a directory.
    Man(completions::ManArgs),
    /// Run a local playground of real MariaDB servers, each with its agent.
    #[command(subcommand)]
    Sandbox(sandbox::Command),
    /// Make the certificates for TLS between flipover and its agents.
    #[command(subcommand)]
    Certs(certs::Command),
}

/// The `-f/--file` option shared by the commands that read a topology.
#[derive(Debug, Clone, clap::Args)]
pub struct TopologyFileArg {
    /// Topology file.
    #[arg(short = 'f', long = "file", default_value = "flipover.toml")]
    pub file: PathBuf,
}

/// How to reach the servers, shared by every command that observes them.
#[derive(Debug, Clone, clap::Args)]
pub struct ObserveArgs {
    /// Give up on a server or agent that has not answered after this many seconds.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub connect_timeout: f64,
}

impl ObserveArgs {
    pub fn options(&self) -> ObserveOptions {
        ObserveOptions {
            connect_timeout: Duration::from_secs_f64(self.connect_timeout),
            ..ObserveOptions::default()
        }
    }

    /// Observes every server of `topology` (unreachable ones are facts, not errors).
    pub fn observe(&self, topology: &Topology) -> miette::Result<Observed> {
        tokio::runtime::Runtime::new()
            .into_diagnostic()?
            .block_on(crate::observe::observe(topology, &self.options()))
            .into_diagnostic()
            .wrap_err("cannot observe the servers")
    }
}

/// Reads a recorded observation and checks it describes this topology's servers.
pub fn read_observed(path: &Path, topology: &Topology) -> miette::Result<Observed> {
    let text = std::fs::read_to_string(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let observed: Observed = serde_json::from_str(&text)
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "{} is not an observed state (`flipover status --json`)",
                path.display()
            )
        })?;
    let missing: Vec<&str> = topology
        .servers()
        .keys()
        .filter(|name| !observed.servers.contains_key(*name))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(miette::miette!(
            help = "record it again with `flipover observe -f TOPOLOGY > observed.json`",
            "{} does not match the topology: no observation of {}",
            path.display(),
            missing.join(", ")
        ));
    }
    Ok(observed)
}

pub fn run(cli: Cli) -> error::CommandResult {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Status(args) => status::run(args),
        Command::Import(args) => import::run(args),
        Command::Observe(args) => observe::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Sandbox(command) => sandbox::run(command),
        Command::Certs(command) => certs::run(command),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
        Command::Show(args) => show::run(args),
        Command::Graph(args) => graph::run(args),
    }
}

/// Logs go to stderr; data goes to stdout.
pub fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "flipover=info",
        1 => "flipover=debug,flipover_agent=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(colors_enabled_stderr())
            .with_target(false)
            .without_time()
            .init(),
        // For log collectors: every field, with time and target.
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// Colour only on a terminal, and never when NO_COLOR is set.
pub fn colors_enabled_stderr() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}
