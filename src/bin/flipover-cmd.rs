//! `flipover-cmd`: the seed tool's command line, kept for the scripts that
//! use it, as a thin front end on flipover's planner and executor. Each mode
//! discovers the tree (`flipover::legacy`), builds the desired topology,
//! prints the plan and applies it as `flipover apply` does.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use flipover::cli::{
    self,
    error::{CommandError, CommandResult},
};
use flipover::exit_codes;
use flipover::legacy::{self, access::Flags, Address, DiscoverOptions, Discovered};
use flipover::planner;
use flipover::render;
use miette::{Context, IntoDiagnostic};

/// How long a new replica may take to catch up with its source (as `flipover apply`).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(600);

/// Flipover MySQL HA Manager
#[derive(Debug, Parser)]
#[command(
    name = "flipover-cmd",
    version,
    max_term_width = 100,
    override_usage = USAGE,
    after_long_help = AFTER_HELP
)]
struct Args {
    /// Master host (clone-slave: the server to copy, the master or a slave of it)
    #[arg(
        short = 'N',
        long = "node",
        value_name = "HOST",
        default_value = "localhost"
    )]
    node: String,

    /// Master (clone-slave: copied server) port
    #[arg(
        short = 'P',
        long = "port",
        value_name = "PORT",
        default_value_t = 3306
    )]
    port: u16,

    /// Admin user, for every server [default: '']
    #[arg(
        short = 'U',
        long = "user",
        value_name = "USER",
        default_value = "",
        hide_default_value = true
    )]
    user: String,

    /// Admin user's password [default: '']
    #[arg(
        short = 'S',
        long = "secret",
        value_name = "PASSWD",
        default_value = "",
        hide_default_value = true
    )]
    secret: String,

    /// Slave host
    #[arg(
        short = 'n',
        long = "slavenode",
        value_name = "SLAVEHOST",
        default_value = "localhost"
    )]
    slave_node: String,

    /// Slave port
    #[arg(
        short = 'p',
        long = "slaveport",
        value_name = "SLAVEPORT",
        default_value_t = 3306
    )]
    slave_port: u16,

    /// Slave user; if given, it must be the admin user (-U): flipover uses one admin account for
    /// every server
    #[arg(
        short = 'u',
        long = "slaveuser",
        value_name = "SLAVEUSER",
        default_value = "root"
    )]
    slave_user: String,

    /// Slave password; if given, it must be the admin password (-S) [default: '']
    #[arg(
        short = 's',
        long = "slavesecret",
        value_name = "SLAVEPASSWD",
        default_value = "",
        hide_default_value = true
    )]
    slave_secret: String,

    /// Replication user
    #[arg(
        short = 'r',
        long = "repluser",
        value_name = "REPL_USER",
        default_value = "repl"
    )]
    repl_user: String,

    /// Replication user's password [default: '']
    #[arg(
        short = 'c',
        long = "replpass",
        value_name = "REPL_PASS",
        default_value = "",
        hide_default_value = true
    )]
    repl_pass: String,

    /// What to do
    #[arg(short = 'm', long = "mode", value_name = "MODE", value_enum, default_value_t = Mode::ShowStatus)]
    mode: Mode,

    /// replace-master: another slave of the dead master (HOST or HOST:PORT), repeatable. A dead
    /// master cannot list its slaves; flipover finds them in its journal of the last apply, so this
    /// is for clusters flipover never applied to: the slaves not found keep replicating from it
    #[arg(long = "replica", value_name = "HOST[:PORT]", value_parser = parse_address)]
    replicas: Vec<Address>,

    /// Print the plan only; change nothing
    #[arg(long)]
    dry_run: bool,

    /// Apply without asking (on a terminal it asks for "yes"; without one it applies, as the
    /// seed did)
    #[arg(long)]
    yes: bool,

    /// File holding the agents' bearer token [default: $FLIPOVER_AGENT_TOKEN]
    #[arg(long, value_name = "FILE")]
    agent_token_file: Option<PathBuf>,

    /// CA certificate (PEM) the agents' certificates chain to; with --agent-cert and
    /// --agent-key the agents are reached over mutual TLS. Without the three, in plaintext
    /// (agents started with --insecure), as the seed did
    #[arg(
        long,
        value_name = "FILE",
        env = "FLIPOVER_AGENT_CA",
        requires_all = ["agent_cert", "agent_key"]
    )]
    agent_ca: Option<PathBuf>,

    /// flipover's client certificate (PEM) for the agents
    #[arg(
        long,
        value_name = "FILE",
        env = "FLIPOVER_AGENT_CERT",
        requires = "agent_ca"
    )]
    agent_cert: Option<PathBuf>,

    /// The private key (PEM) of --agent-cert
    #[arg(
        long,
        value_name = "FILE",
        env = "FLIPOVER_AGENT_KEY",
        requires = "agent_ca"
    )]
    agent_key: Option<PathBuf>,

    #[command(flatten)]
    observe: cli::ObserveArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Master and slave binlog file names and positions, and GTIDs
    ShowStatus,
    /// Stream a fresh backup from -N to -n, which then replicates from the current master
    CloneSlave,
    /// Planned switchover to the slave -n; the master's slaves and the master follow it
    PromoteSlave,
    /// Failover: the slave -n replaces a master that is not available
    ReplaceMaster,
}

const USAGE: &str = "\
flipover-cmd [-h] [-N HOST] [-P PORT] [-U USER] [-S PASSWD]
                    [-n SLAVEHOST] [-p SLAVEPORT] [-u SLAVEUSER] [-s SLAVEPASSWD]
                    [-r REPL_USER] [-c REPL_PASS]
                    [-m {show-status,clone-slave,promote-slave,replace-master}]
                    [--replica HOST[:PORT]]... [--dry-run] [--yes]
                    [--agent-token-file FILE] [--connect-timeout SECONDS]";

const AFTER_HELP: &str = "\
Examples (PW: the admin password, RPW: the replication password):
  flipover-cmd -m show-status -N 10.10.10.1 -U flipover -S PW
  flipover-cmd -m clone-slave -N 10.10.10.1 -n 10.10.10.2 -U flipover -S PW -c RPW
      streams a fresh backup from 10.10.10.1 to 10.10.10.2 (whose data is replaced), which then
      replicates from the current master: 10.10.10.1, or the master 10.10.10.1 replicates from
  flipover-cmd -m promote-slave -n 10.10.10.2 -U flipover -S PW -c RPW
  flipover-cmd -m replace-master -n 10.10.10.2 --replica 10.10.10.3 -U flipover -S PW -c RPW

Each mode discovers the replication tree from the servers, prints the plan, and applies it as
`flipover apply` does. Every host runs flipover-agent on ports 836 (API) and 837 (stream).
Exit status: 0 success, 1 error, 4 another apply holds the cluster's lock.";

fn parse_address(text: &str) -> Result<Address, String> {
    Address::parse(text)
}

fn main() -> ExitCode {
    let matches = match Args::command().try_get_matches() {
        Ok(matches) => matches,
        Err(error) => {
            // --help and --version are not errors; a bad command line is 1.
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                exit_codes::ERROR as u8
            } else {
                exit_codes::SUCCESS as u8
            });
        }
    };
    let args = Args::from_arg_matches(&matches).expect("matches come from Args");
    cli::init_logging(0, flipover_agent::logging::LogFormat::Text);
    let code = match run(&args, &matches) {
        Ok(code) => code,
        Err(error) => {
            eprint!("{}", error.render(cli::colors_enabled_stderr()));
            error.exit_code
        }
    };
    ExitCode::from(code as u8)
}

fn given(matches: &ArgMatches, id: &str) -> bool {
    matches.value_source(id) == Some(ValueSource::CommandLine)
}

fn run(args: &Args, matches: &ArgMatches) -> CommandResult {
    if !args.replicas.is_empty() && args.mode != Mode::ReplaceMaster {
        return Err(CommandError::failed(
            "--replica names the slaves of a dead master: it is for -m replace-master only",
        ));
    }
    let flags = Flags {
        user: args.user.clone(),
        password: args.secret.clone(),
        slave_user: given(matches, "slave_user").then(|| args.slave_user.clone()),
        slave_password: given(matches, "slave_secret").then(|| args.slave_secret.clone()),
        repl_user: args.repl_user.clone(),
        repl_password: args.repl_pass.clone(),
        agent_tls: legacy::access::agent_tls(
            args.agent_ca.as_deref(),
            args.agent_cert.as_deref(),
            args.agent_key.as_deref(),
        ),
    };
    let token = legacy::agent_token(
        args.agent_token_file.as_deref(),
        std::env::var(legacy::access::AGENT_TOKEN_ENV).ok(),
    )
    .into_diagnostic()?;
    let access = legacy::access(&flags, token).into_diagnostic()?;
    let node = Address::new(&args.node, args.port);
    let slave = Address::new(&args.slave_node, args.slave_port);

    // Where discovery starts: the server the mode is about, which must answer.
    let seeds: Vec<Address> = match args.mode {
        Mode::ShowStatus => std::iter::once(node.clone())
            .chain(given(matches, "slave_node").then(|| slave.clone()))
            .collect(),
        Mode::CloneSlave => vec![node.clone()],
        Mode::PromoteSlave => vec![slave.clone()],
        // The master is dead: its slaves cannot be listed from it.
        Mode::ReplaceMaster => std::iter::once(slave.clone())
            .chain(args.replicas.iter().cloned())
            .collect(),
    };
    let options = DiscoverOptions {
        connect_timeout: args.observe.options().connect_timeout,
        cluster: None,
    };
    let discovered = tokio::runtime::Runtime::new()
        .into_diagnostic()?
        .block_on(legacy::discover(&access, &seeds, &options))
        .into_diagnostic()
        .wrap_err("cannot discover the replication tree")?;
    for note in &discovered.notes {
        eprintln!("note: {note}");
    }

    // -N is the master for these modes; checked when given.
    let master = given(matches, "node").then_some(&node);
    // clone-slave names its target: replaced if it holds data.
    let (desired, clone_target) = match args.mode {
        Mode::ShowStatus => {
            let observed = args.observe.observe(&discovered.topology)?;
            print!("{}", cli::status::render(&discovered.topology, &observed));
            return Ok(exit_codes::SUCCESS);
        }
        Mode::CloneSlave => {
            let (desired, target) =
                legacy::clone_slave(&discovered, &node, &slave).into_diagnostic()?;
            (desired, Some(target))
        }
        Mode::PromoteSlave => {
            let (desired, edits) =
                legacy::promote_slave(&discovered, master, &slave).into_diagnostic()?;
            explain(&edits);
            (desired, None)
        }
        Mode::ReplaceMaster => {
            warn_undiscovered_siblings(&discovered, args);
            let (desired, edits) =
                legacy::replace_master(&discovered, master, &slave).into_diagnostic()?;
            explain(&edits);
            (desired, None)
        }
    };
    let observed = args.observe.observe(&desired)?;
    let options = clone_target
        .map(|target| legacy::clone_options(&observed, &target))
        .unwrap_or_default();
    let plan = planner::plan(&desired, &observed, &options);
    print!("{}", render::plan_text::render(&desired, &observed, &plan));
    std::io::stdout().flush().into_diagnostic()?;

    if plan.has_problems() {
        return Err(cli::plan::problems_error(&plan));
    }
    if args.dry_run || plan.is_empty() {
        return Ok(exit_codes::SUCCESS);
    }
    if !args.yes {
        if std::io::stdin().is_terminal() {
            if !cli::apply::confirmed()? {
                return Err(CommandError::failed("apply cancelled: nothing was applied"));
            }
        } else {
            // The seed applied without asking; scripts rely on it.
            eprintln!("Standard input is not a terminal: applying (use --dry-run to only plan).");
        }
    }
    cli::apply::execute(
        &desired,
        &observed,
        &plan,
        &cli::apply::Execution {
            connect_timeout: args.observe.options().connect_timeout,
            catch_up_timeout: CATCH_UP_TIMEOUT,
            json: false,
        },
    )
}

/// The topology change a mode makes, in the words `flipover plan --failover` uses.
fn explain(edits: &[String]) {
    for edit in edits {
        println!("{edit}");
    }
    if !edits.is_empty() {
        println!();
    }
}

/// A dead master cannot list its slaves: say which ones were found and
/// how (the journal's memory of the last apply, or only what the servers
/// named say), so a forgotten `--replica` shows.
fn warn_undiscovered_siblings(discovered: &Discovered, args: &Args) {
    let master = &discovered.topology.primary().name;
    let found: Vec<&str> = discovered
        .topology
        .servers()
        .values()
        .filter(|s| s.source.as_deref() == Some(master))
        .map(|s| s.name.as_str())
        .collect();
    match &discovered.memory {
        Some(memory) => eprintln!(
            "note: slaves of {master} found: {} (with the servers of the topology flipover's \
             apply of {} left, journal on {})",
            found.join(", "),
            memory.at,
            memory.read_from
        ),
        None if args.replicas.is_empty() => eprintln!(
            "note: slaves of {master} found: {}; no server remembers a flipover apply, so name \
             any other with --replica HOST[:PORT], or it keeps replicating from {master}",
            found.join(", ")
        ),
        None => {}
    }
}
