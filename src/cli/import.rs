//! `flipover import --from HOST[:PORT]`: discover a running cluster and write
//! its topology file, so that it can be managed from then on (`plan` on the
//! result shows no changes to the replication tree). A cluster flipover
//! applied to before gets back the names, agent ports and settings its
//! journal remembers (the topology the latest apply left).

use std::path::PathBuf;
use std::time::Duration;

use crate::discover::{self, Address, DiscoverOptions};
use crate::exit_codes;
use crate::topology::{self, Access, AgentTls, Secret, Topology};
use miette::{Context, IntoDiagnostic};

use super::error::CommandResult;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A server of the cluster to start from (any: discovery walks up and down).
    #[arg(long = "from", value_name = "HOST[:PORT]")]
    pub from: String,

    /// Admin account flipover will use.
    #[arg(long, default_value = "flipover")]
    pub user: String,

    /// Environment variable holding its password (read now to connect, and
    /// written into the file as `{ env = … }`: no secret lands in the file).
    #[arg(long, default_value = "FLIPOVER_PASSWORD", value_name = "VAR")]
    pub password_env: String,

    /// Replication account written into the file.
    #[arg(long, default_value = "repl")]
    pub repl_user: String,

    /// Environment variable of the replication password, written as `{ env = … }`.
    #[arg(long, default_value = "FLIPOVER_REPL_PASSWORD", value_name = "VAR")]
    pub repl_password_env: String,

    /// File holding the agents' token, written as `{ file = … }`.
    #[arg(long, value_name = "FILE")]
    pub agent_token_file: Option<PathBuf>,

    /// The cluster's name (default: the primary's).
    #[arg(long)]
    pub cluster: Option<String>,

    /// Write the topology here instead of stdout.
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Give up on a server that has not answered after this many seconds.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub connect_timeout: f64,
}

pub fn run(args: Args) -> CommandResult {
    let seed =
        Address::parse(&args.from).map_err(|e| miette::miette!("--from {}: {e}", args.from))?;
    let password = std::env::var(&args.password_env).unwrap_or_default();
    // Discovery connects with the resolved password; the file keeps the reference.
    let connect_access = Access {
        user: args.user.clone(),
        password: Some(Secret::Literal(password)),
        repl_user: args.repl_user.clone(),
        repl_password: None,
        agent_token: None,
        agent_tls: AgentTls::Unset,
    };
    let options = DiscoverOptions {
        connect_timeout: Duration::from_secs_f64(args.connect_timeout),
        cluster: args.cluster.clone(),
    };
    let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
    let discovered = runtime
        .block_on(discover::discover(&connect_access, &[seed], &options))
        .into_diagnostic()
        .wrap_err("cannot import the cluster")?;
    for note in &discovered.notes {
        eprintln!("note: {note}");
    }
    for server in &discovered.unreachable {
        eprintln!("warning: {server} does not answer: imported from what its neighbours say");
    }
    // Names, agent ports and settings as flipover's latest apply left
    // them, when a server remembers it; the tree as the servers say.
    let mut parts = discovered.parts_with_memory();
    if let Some(name) = &args.cluster {
        parts.cluster.name = name.clone();
    }
    if let Some(memory) = &discovered.memory {
        eprintln!(
            "note: names, agent ports and settings from the topology flipover's apply of {} left (journal on {})",
            memory.at, memory.read_from
        );
    }
    parts.access = Access {
        user: args.user,
        password: Some(Secret::Env(args.password_env)),
        repl_user: args.repl_user,
        repl_password: Some(Secret::Env(args.repl_password_env)),
        agent_token: args
            .agent_token_file
            .map(|path| Secret::File(std::path::absolute(&path).unwrap_or(path))),
        // The operator adds the agents' TLS files (or `insecure = true`).
        agent_tls: AgentTls::Unset,
    };
    let topology = Topology::from_parts(parts, "the imported cluster")?;
    let text = format!(
        "# Imported by `flipover import` from {}: the replication tree as the servers describe it.\n\n{}",
        args.from,
        topology::to_toml(&topology)
    );
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {} ({} servers); check it with `flipover plan -f {}`",
                path.display(),
                discovered.topology.servers().len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(exit_codes::SUCCESS)
}
