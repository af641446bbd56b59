//! `flipover sandbox up|down|status`: the local playground of real MariaDB or
//! MySQL servers.

use std::path::PathBuf;

use crate::exit_codes;
use crate::observe::Flavor;
use crate::sandbox::{self, state::SandboxState};
use miette::IntoDiagnostic;

use super::error::CommandResult;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create and start N MariaDB or MySQL servers, each on its own loopback address with its
    /// agent.
    Up {
        /// How many servers (db1 is the primary with sample data; the others start empty).
        #[arg(long, short = 'n', default_value_t = 3)]
        servers: usize,
        /// The server: found on PATH as on a real host, else in a root of that flavor in
        /// $FLIPOVER_ROOTS (default /var/cache/flipover/roots). Default: the --server-root's
        /// flavor, or mariadb.
        #[arg(long, value_enum)]
        flavor: Option<FlavorArg>,
        /// A Debian root holding the server (a directory, or the name of a root in
        /// $FLIPOVER_ROOTS such as mariadb-11.8 or mysql-9.7, which scripts/install-deps
        /// builds): mysqld and the agents run chrooted into it.
        #[arg(long, value_name = "DIR|NAME")]
        server_root: Option<String>,
        /// Run the agents in plaintext (--insecure) instead of mutual TLS with certificates
        /// made in DIR/tls/.
        #[arg(long)]
        insecure: bool,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        accounts: AccountArgs,
    },
    /// Stop every process the sandbox started (data and logs stay).
    Down {
        #[command(flatten)]
        dir: DirArg,
    },
    /// List the sandbox's hosts and what runs on them.
    Status {
        #[command(flatten)]
        dir: DirArg,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FlavorArg {
    Mariadb,
    Mysql,
}

#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// The sandbox directory.
    #[arg(long, default_value = "flipover-sandbox")]
    pub dir: PathBuf,
}

/// The accounts the sandbox creates (defaults: flipover's usual names).
/// Odd names and passwords are for testing how flipover quotes them.
#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    /// Name of flipover's admin account.
    #[arg(long, value_name = "NAME", default_value = "flipover")]
    pub admin_user: String,
    /// Name of the replication account.
    #[arg(long, value_name = "NAME", default_value = "repl")]
    pub repl_user: String,
    /// Give the agents this backup account (password in
    /// secrets/backup.password) instead of root over the unix socket.
    #[arg(long, value_name = "NAME")]
    pub backup_user: Option<String>,
    /// Text put in front of every generated password.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub password_prefix: String,
}

pub fn run(command: Command) -> CommandResult {
    let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
    match command {
        Command::Up {
            servers,
            flavor,
            server_root,
            insecure,
            dir,
            accounts,
        } => {
            let options = sandbox::UpOptions {
                servers,
                accounts: sandbox::Accounts {
                    admin_user: accounts.admin_user,
                    repl_user: accounts.repl_user,
                    backup_user: accounts.backup_user,
                    password_prefix: accounts.password_prefix,
                },
                insecure,
                flavor: flavor.map(|f| match f {
                    FlavorArg::Mariadb => Flavor::Mariadb,
                    FlavorArg::Mysql => Flavor::Mysql,
                }),
                server_root,
            };
            let sandbox = runtime.block_on(sandbox::up(&dir.dir, &options))?;
            println!("{}", server_line(&sandbox.state));
            for host in &sandbox.state.hosts {
                println!(
                    "{}  mysql {}:{}  agent {}:{}  {}",
                    host.name,
                    host.address,
                    host.mysql_port,
                    host.address,
                    host.agent_port,
                    host.dir.display()
                );
            }
            println!("topology: {}", sandbox.topology_file.display());
            eprintln!(
                "hint: run `flipover status -f {}` to see it",
                sandbox.topology_file.display()
            );
        }
        Command::Down { dir } => {
            let state = runtime.block_on(sandbox::down(&dir.dir))?;
            eprintln!(
                "stopped {} hosts in {}",
                state.hosts.len(),
                dir.dir.display()
            );
        }
        Command::Status { dir } => {
            let status = sandbox::status(&dir.dir)?;
            println!("{}", server_line(&status.state));
            for status in status.hosts {
                let word = |running: bool| if running { "running" } else { "stopped" };
                println!(
                    "{}  {}:{}  agent {}  mysqld {}",
                    status.host.name,
                    status.host.address,
                    status.host.mysql_port,
                    word(status.agent_running),
                    word(status.mysqld_running)
                );
            }
        }
    }
    Ok(exit_codes::SUCCESS)
}

/// "server: MySQL 9.7.4-2 (chrooted into /var/cache/flipover/roots/mysql-9.7)".
fn server_line(state: &SandboxState) -> String {
    let name = sandbox::server::name(state.flavor);
    match &state.root {
        Some(root) => format!(
            "server: {name} {} (chrooted into {})",
            state.version,
            root.display()
        ),
        None => format!("server: {name} {}", state.version),
    }
}
