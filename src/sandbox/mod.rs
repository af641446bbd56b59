//! The sandbox: real MariaDB or MySQL servers on loopback addresses of their
//! own, each with its own `flipover-agent --supervise`. The playground for
//! users and the lab for every integration test. A server the host lacks
//! runs from a Debian root (`server.rs`), chrooted with its agent (`root.rs`).
//!
//! Architecture Invariant: the sandbox only touches its own directory, its
//! own `127.77.<slot>.0/24` addresses, the processes it started and, with a
//! root, the mount points it creates in it. `down` stops the processes,
//! removes those (empty) mount points and nothing else.

mod host;
pub mod process;
pub mod root;
pub mod server;
mod slots;
pub mod state;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};

use crate::db::DbError;
use crate::observe::Flavor;
use crate::topology::{DEFAULT_AGENT_PORT, DEFAULT_PORT, DEFAULT_STREAM_PORT};
pub use host::local_root;
use host::{AgentLaunch, HostSetup};
pub use server::{Server, DEFAULT_ROOTS_DIR, ROOTS_ENV};
pub use slots::REGISTRY_ENV;
use state::{HostState, SandboxState};

/// The topology file `up` writes into the sandbox directory.
pub const TOPOLOGY_FILE: &str = "topology.toml";
/// The accounts `up` creates on every server and writes into the topology.
/// Unusual names and passwords (quotes, backslashes, spaces, non-ASCII) let
/// tests prove that everything reaching SQL or argv is quoted right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    pub admin_user: String,
    pub repl_user: String,
    /// The account donors' agents give mariadb-backup (with a password);
    /// None: root over the unix socket, as on a Debian host.
    pub backup_user: Option<String>,
    /// Put in front of every generated password (admin, replication, backup).
    pub password_prefix: String,
}

impl Default for Accounts {
    fn default() -> Accounts {
        Accounts {
            admin_user: "flipover".to_string(),
            repl_user: "repl".to_string(),
            backup_user: None,
            password_prefix: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SandboxError {
    #[error("`{tool}` is not installed")]
    #[diagnostic(
        code(flipover::sandbox::missing_tool),
        help("install it with: sudo apt-get install -y {package}")
    )]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },

    #[error("no {flavor} server is installed here, and no {flavor} root is in {roots}")]
    #[diagnostic(
        code(flipover::sandbox::no_server),
        help("install one, or build the roots with `scripts/install-deps` (where: FLIPOVER_ROOTS), or name one with --server-root DIR")
    )]
    NoServer { flavor: &'static str, roots: String },

    #[error("the server root {root} does not exist")]
    #[diagnostic(
        code(flipover::sandbox::no_root),
        help("build it with `scripts/install-deps`, or give the path of a Debian root holding the server")
    )]
    NoRoot { root: String },

    #[error("the server root {root} has no `{tool}`")]
    #[diagnostic(
        code(flipover::sandbox::root_lacks),
        help("rebuild it: remove it and run `scripts/install-deps`")
    )]
    RootLacks { root: String, tool: String },

    #[error("the server root {root} holds {found}, not {wanted}")]
    #[diagnostic(
        code(flipover::sandbox::flavor_mismatch),
        help("leave out --flavor, or pick a root of that flavor")
    )]
    FlavorMismatch {
        root: String,
        wanted: &'static str,
        found: String,
    },

    #[error("running servers from the root {root} needs root privileges (chroot and mounts)")]
    #[diagnostic(code(flipover::sandbox::root_needs_root), help("run it as root"))]
    RootNeedsRoot { root: String },

    #[error("{dir} has no host named {name}")]
    #[diagnostic(code(flipover::sandbox::no_host))]
    NoHost { dir: String, name: String },

    #[error("cannot find the flipover-agent binary")]
    #[diagnostic(
        code(flipover::sandbox::no_agent),
        help("build it with `cargo build -p flipover-agent` (it is looked for next to flipover, on PATH, or in FLIPOVER_AGENT_BIN)")
    )]
    NoAgentBinary,

    #[error("{dir} already holds a sandbox")]
    #[diagnostic(
        code(flipover::sandbox::exists),
        help("use it (`flipover status -f {dir}/topology.toml`), stop it with `flipover sandbox down --dir {dir}`, or pick another --dir")
    )]
    AlreadyExists { dir: String },

    #[error("{dir} holds no sandbox (no sandbox.json)")]
    #[diagnostic(
        code(flipover::sandbox::not_found),
        help("start one with `flipover sandbox up --dir {dir}`")
    )]
    NotFound { dir: String },

    #[error("a sandbox has 1 to 250 servers, not {0}")]
    #[diagnostic(code(flipover::sandbox::size))]
    BadSize(usize),

    #[error("cannot make the sandbox's certificates: {0}")]
    #[diagnostic(code(flipover::sandbox::certs))]
    Certs(String),

    #[error("no free address block 127.77.N.0/24 is left")]
    #[diagnostic(
        code(flipover::sandbox::no_slot),
        help("stop sandboxes you no longer need with `flipover sandbox down --dir DIR`")
    )]
    NoSlot,

    #[error("socket path {path} is too long for a unix socket")]
    #[diagnostic(code(flipover::sandbox::path_too_long), help("use a shorter --dir"))]
    PathTooLong { path: PathBuf },

    #[error("{what} failed:\n{log_tail}")]
    #[diagnostic(code(flipover::sandbox::command_failed))]
    Command { what: String, log_tail: String },

    #[error("the agent of {host} did not start mysqld:\n{log_tail}")]
    #[diagnostic(code(flipover::sandbox::agent_start))]
    AgentStart { host: String, log_tail: String },

    #[error("{context}: {source}")]
    #[diagnostic(code(flipover::sandbox::io))]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(code(flipover::sandbox::sql))]
    Db(#[from] DbError),
}

impl SandboxError {
    fn io(context: impl Into<String>, source: std::io::Error) -> SandboxError {
        SandboxError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A running sandbox, as `up` leaves it.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub dir: PathBuf,
    pub topology_file: PathBuf,
    pub state: SandboxState,
}

/// Ports every host uses: the standard ones as root (privileged ports are
/// allowed), else high ones for the agent and stream.
fn host_ports() -> (u16, u16, u16) {
    if nix::unistd::geteuid().is_root() {
        (DEFAULT_PORT, DEFAULT_AGENT_PORT, DEFAULT_STREAM_PORT)
    } else {
        (DEFAULT_PORT, 8836, 8837)
    }
}

/// What `up` builds.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// How many hosts: the first is the primary with a sample database, the
    /// others are empty.
    pub servers: usize,
    pub accounts: Accounts,
    /// Agents in plaintext instead of mutual TLS.
    pub insecure: bool,
    /// The server flavor; None: the server root's, or MariaDB.
    pub flavor: Option<Flavor>,
    /// A Debian root holding the server (a directory, or a root's name in
    /// `$FLIPOVER_ROOTS`); None: the host's server, else a root of the flavor.
    pub server_root: Option<String>,
}

impl Default for UpOptions {
    fn default() -> UpOptions {
        UpOptions {
            servers: 3,
            accounts: Accounts::default(),
            insecure: false,
            flavor: None,
            server_root: None,
        }
    }
}

/// Creates and starts a sandbox in `dir`.
pub async fn up(dir: &Path, options: &UpOptions) -> Result<Sandbox, SandboxError> {
    let servers = options.servers;
    if !(1..=250).contains(&servers) {
        return Err(SandboxError::BadSize(servers));
    }
    let server = Server::find(options.flavor, options.server_root.as_deref())?;
    server.check_tools()?;
    let agent_binary = host::find_agent_binary().ok_or(SandboxError::NoAgentBinary)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| SandboxError::io(format!("creating {}", dir.display()), e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| SandboxError::io(format!("resolving {}", dir.display()), e))?;
    if dir.join(state::STATE_FILE).exists() {
        return Err(SandboxError::AlreadyExists {
            dir: dir.display().to_string(),
        });
    }

    let (mysql_port, agent_port, stream_port) = host_ports();
    let slot = slots::acquire(&dir, servers, &[mysql_port, agent_port, stream_port])
        .map_err(|e| SandboxError::io("taking an address block", e))?
        .ok_or(SandboxError::NoSlot)?;
    let hosts: Vec<HostState> = (1..=servers)
        .map(|i| HostState {
            name: format!("db{i}"),
            address: slots::address(slot, i).to_string(),
            mysql_port,
            agent_port,
            stream_port,
            dir: dir.join(format!("db{i}")),
            tls: !options.insecure,
        })
        .collect();
    let mut state = SandboxState {
        slot,
        flavor: server.flavor,
        version: server.version.clone(),
        root: server.root.clone(),
        root_mount_points: Vec::new(),
        agent_binary: Some(agent_binary.clone()),
        backup_user: options.accounts.backup_user.clone(),
        hosts,
    };
    let prepared = prepare_root(&dir, &mut state, &agent_binary);
    let saved = prepared.and_then(|()| {
        state
            .save(&dir)
            .map_err(|e| SandboxError::io("writing sandbox.json", e))
    });
    let started = match saved {
        Ok(()) => start_hosts(&dir, &state, &server, &options.accounts).await,
        Err(err) => Err(err),
    };
    match started {
        Ok(topology_file) => Ok(Sandbox {
            dir,
            topology_file,
            state,
        }),
        Err(err) => {
            // Leave nothing running behind a failed `up`; the files stay for
            // inspection and the slot is freed.
            stop_hosts(&state).await;
            root::remove_mount_points(&state.root_mount_points);
            let _ = std::fs::remove_file(dir.join(state::STATE_FILE));
            slots::release(slot, &dir);
            Err(err)
        }
    }
}

/// With a server root: the mount points the sandbox directory needs in it,
/// and the agent binary inside the sandbox directory (the only host
/// directory the agents see).
fn prepare_root(
    dir: &Path,
    state: &mut SandboxState,
    agent_binary: &Path,
) -> Result<(), SandboxError> {
    let Some(confinement) = state.confinement(dir) else {
        return Ok(());
    };
    state.root_mount_points = confinement
        .create_mount_points()
        .map_err(|e| SandboxError::io("creating the mount points in the server root", e))?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| SandboxError::io("creating bin/", e))?;
    let copy = bin.join("flipover-agent");
    // A hard link when on the same filesystem: the agent is large.
    if std::fs::hard_link(agent_binary, &copy).is_err() {
        std::fs::copy(agent_binary, &copy)
            .map_err(|e| SandboxError::io(format!("copying {}", agent_binary.display()), e))?;
    }
    state.agent_binary = Some(copy);
    Ok(())
}

async fn start_hosts(
    dir: &Path,
    state: &SandboxState,
    server: &Server,
    accounts: &Accounts,
) -> Result<PathBuf, SandboxError> {
    let agent_binary = state
        .agent_binary
        .as_deref()
        .ok_or(SandboxError::NoAgentBinary)?;
    let confinement = state.confinement(dir);
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).map_err(|e| SandboxError::io("creating secrets/", e))?;
    let token = write_secret(&secrets.join("agent.token"), "")?;
    let prefix = &accounts.password_prefix;
    let admin_password = write_secret(&secrets.join("admin.password"), prefix)?;
    let repl_password = write_secret(&secrets.join("repl.password"), prefix)?;
    let token_file = secrets.join("agent.token");
    let backup = match &accounts.backup_user {
        Some(user) => {
            let file = secrets.join("backup.password");
            let password = write_secret(&file, prefix)?;
            Some(host::BackupAccount {
                user: user.clone(),
                password,
                password_file: file,
            })
        }
        None => None,
    };
    let run_as_root = nix::unistd::geteuid().is_root();
    // Mutual TLS unless --insecure: what `flipover certs init` makes, for
    // the sandbox's addresses.
    let tls_dir = dir.join(state::TLS_DIR);
    let tls = state.hosts.first().is_some_and(|h| h.tls);
    if tls {
        let addresses: Vec<String> = state.hosts.iter().map(|h| h.address.clone()).collect();
        crate::certs::init(&tls_dir, &addresses, true)
            .map_err(|e| SandboxError::Certs(e.to_string()))?;
    }

    let setups: Vec<HostSetup> = state
        .hosts
        .iter()
        .enumerate()
        .map(|(i, host)| HostSetup {
            host,
            server,
            confinement: confinement.as_ref(),
            server_id: i as u32 + 1,
            agent_binary,
            token_file: &token_file,
            token: &token,
            admin_user: &accounts.admin_user,
            admin_password: &admin_password,
            repl_user: &accounts.repl_user,
            repl_password: &repl_password,
            backup: backup.as_ref(),
            run_as_root,
            tls_dir: tls.then_some(tls_dir.as_path()),
        })
        .collect();

    // Initialising is CPU bound: run the hosts side by side.
    tracing::info!(
        "initialising {} {} datadirs in {}",
        setups.len(),
        server.describe(),
        dir.display()
    );
    std::thread::scope(|scope| {
        let handles: Vec<_> = setups
            .iter()
            .map(|setup| scope.spawn(|| host::initialise(setup)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("initialise thread panicked"))
            .collect::<Result<Vec<()>, SandboxError>>()
    })?;

    tracing::info!("starting agents (each starts its mysqld)");
    let mut pids = Vec::new();
    for setup in &setups {
        pids.push(host::start_agent(&setup.agent_launch())?);
    }
    let ready = setups
        .iter()
        .zip(&pids)
        .map(|(setup, pid)| host::wait_until_ready(setup, *pid, Duration::from_secs(90)));
    futures::future::try_join_all(ready).await?;
    futures::future::try_join_all(setups.iter().map(host::create_accounts)).await?;
    host::load_sample_data(&state.hosts[0]).await?;

    let topology_file = dir.join(TOPOLOGY_FILE);
    std::fs::write(&topology_file, render_topology(dir, state, accounts))
        .map_err(|e| SandboxError::io("writing topology.toml", e))?;
    Ok(topology_file)
}

/// Writes `prefix` and 32 random alphanumerics to `path` (mode 0600).
fn write_secret(path: &Path, prefix: &str) -> Result<String, SandboxError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let value = format!(
        "{prefix}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 32)
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| SandboxError::io(format!("writing {}", path.display()), e))?;
    writeln!(file, "{value}")
        .map_err(|e| SandboxError::io(format!("writing {}", path.display()), e))?;
    Ok(value)
}

/// The desired layout: every host replicating from the first.
pub fn render_topology(dir: &Path, state: &SandboxState, accounts: &Accounts) -> String {
    let mut text = String::new();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sandbox".to_string());
    let version = match state.version.split("-MariaDB").next() {
        Some(version) if !version.is_empty() => format!(" {version}"),
        _ => String::new(),
    };
    let _ = writeln!(
        text,
        "# Written by `flipover sandbox up`: {} {}{version} servers on 127.77.{}.0/24.",
        state.hosts.len(),
        server::name(state.flavor),
        state.slot
    );
    let _ = writeln!(
        text,
        "# db1 is the primary; the others are to replicate from it.\n"
    );
    let _ = writeln!(text, "[cluster]\nname = {}\n", toml_string(&name));
    let _ = writeln!(text, "[access]");
    let _ = writeln!(text, "user = {}", toml_string(&accounts.admin_user));
    let _ = writeln!(text, "password = {{ file = \"secrets/admin.password\" }}");
    let _ = writeln!(text, "repl_user = {}", toml_string(&accounts.repl_user));
    let _ = writeln!(
        text,
        "repl_password = {{ file = \"secrets/repl.password\" }}"
    );
    let _ = writeln!(text, "agent_token = {{ file = \"secrets/agent.token\" }}");
    if state.hosts.first().is_some_and(|h| h.tls) {
        let tls = state::TLS_DIR;
        let _ = writeln!(text, "ca = \"{tls}/{}\"", crate::certs::CA_CERT);
        let _ = writeln!(
            text,
            "client_cert = \"{tls}/{}\"",
            crate::certs::CLIENT_CERT
        );
        let _ = writeln!(
            text,
            "client_key = \"{tls}/{}\"\n",
            crate::certs::CLIENT_KEY
        );
    } else {
        let _ = writeln!(text, "insecure = true\n");
    }
    if let Some(first) = state.hosts.first() {
        let _ = writeln!(text, "[defaults]");
        let _ = writeln!(text, "port = {}", first.mysql_port);
        let _ = writeln!(text, "agent_port = {}", first.agent_port);
        let _ = writeln!(text, "stream_port = {}\n", first.stream_port);
    }
    for (i, host) in state.hosts.iter().enumerate() {
        let _ = writeln!(text, "[servers.{}]", host.name);
        let _ = writeln!(text, "host = \"{}\"", host.address);
        if i > 0 {
            let _ = writeln!(text, "source = \"{}\"", state.hosts[0].name);
        }
        text.push('\n');
    }
    text
}

fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// Stops every process of the sandbox in `dir` and frees its addresses.
/// Data and logs stay.
pub async fn down(dir: &Path) -> Result<SandboxState, SandboxError> {
    let dir = dir.canonicalize().map_err(|_| SandboxError::NotFound {
        dir: dir.display().to_string(),
    })?;
    let state = SandboxState::load(&dir).map_err(|_| SandboxError::NotFound {
        dir: dir.display().to_string(),
    })?;
    stop_hosts(&state).await;
    // Every process that had the sandbox directory mounted is gone.
    root::remove_mount_points(&state.root_mount_points);
    slots::release(state.slot, &dir);
    let _ = std::fs::remove_file(dir.join(state::STATE_FILE));
    Ok(state)
}

/// Starts the agent of host `name` of the sandbox in `dir` again, as `up`
/// started it (chrooted into the server root if the sandbox has one), and
/// returns its pid. For tests that kill an agent, as a service manager
/// restarts one.
pub fn restart_agent(dir: &Path, name: &str) -> Result<u32, SandboxError> {
    let not_found = || SandboxError::NotFound {
        dir: dir.display().to_string(),
    };
    let dir = dir.canonicalize().map_err(|_| not_found())?;
    let state = SandboxState::load(&dir).map_err(|_| not_found())?;
    let host = state
        .hosts
        .iter()
        .find(|h| h.name == name)
        .ok_or_else(|| SandboxError::NoHost {
            dir: dir.display().to_string(),
            name: name.to_string(),
        })?;
    let agent_binary = match &state.agent_binary {
        Some(binary) => binary.clone(),
        None => host::find_agent_binary().ok_or(SandboxError::NoAgentBinary)?,
    };
    let token_file = dir.join("secrets/agent.token");
    let backup_password = dir.join("secrets/backup.password");
    let tls_dir = host.tls_dir();
    let confinement = state.confinement(&dir);
    host::start_agent(&AgentLaunch {
        host,
        agent_binary: &agent_binary,
        token_file: &token_file,
        backup: state
            .backup_user
            .as_deref()
            .map(|user| (user, backup_password.as_path())),
        tls_dir: host.tls.then_some(tls_dir.as_path()),
        confinement: confinement.as_ref(),
    })
}

/// Asks each agent to stop its mysqld (a clean InnoDB shutdown), falls back to
/// signals, then stops the agents.
async fn stop_hosts(state: &SandboxState) {
    let token = state
        .hosts
        .first()
        .and_then(|h| std::fs::read_to_string(h.dir.parent()?.join("secrets/agent.token")).ok())
        .unwrap_or_default();
    let stops = state.hosts.iter().map(|host| {
        let client = host.agent_client(token.trim(), Duration::from_secs(120));
        async move {
            let stopped = match client {
                Ok(client) => client.stop_mysqld().await,
                Err(err) => Err(err),
            };
            if let Err(err) = stopped {
                tracing::debug!(
                    "{}: agent could not stop mysqld ({err}); signalling it",
                    host.name
                );
            }
        }
    });
    futures::future::join_all(stops).await;
    for host in &state.hosts {
        // An agent in the middle of a clone puts the previous datadir back
        // (and restarts mysqld) before it exits: give it time, then stop
        // whatever mysqld is left.
        if let Some(pid) = process::read_pid(&host.agent_pid_file()) {
            if process::runs(pid, "flipover-agent") {
                process::terminate(pid, Duration::from_secs(60));
            }
        }
        if let Some(pid) = process::read_pid(&host.mysqld_pid_file()) {
            if process::runs(pid, "mariadbd") || process::runs(pid, "mysqld") {
                process::terminate(pid, Duration::from_secs(60));
            }
        }
    }
}

/// One line per host: what runs.
#[derive(Debug, Clone)]
pub struct HostStatus {
    pub host: HostState,
    pub agent_running: bool,
    pub mysqld_running: bool,
}

/// The sandbox as recorded, and what runs on each host.
#[derive(Debug, Clone)]
pub struct SandboxStatus {
    pub state: SandboxState,
    pub hosts: Vec<HostStatus>,
}

pub fn status(dir: &Path) -> Result<SandboxStatus, SandboxError> {
    let dir = dir.canonicalize().map_err(|_| SandboxError::NotFound {
        dir: dir.display().to_string(),
    })?;
    let state = SandboxState::load(&dir).map_err(|_| SandboxError::NotFound {
        dir: dir.display().to_string(),
    })?;
    let hosts = state
        .hosts
        .iter()
        .cloned()
        .map(|host| {
            let running = |file: PathBuf, name: &str| {
                process::read_pid(&file).is_some_and(|pid| process::runs(pid, name))
            };
            HostStatus {
                agent_running: running(host.agent_pid_file(), "flipover-agent"),
                mysqld_running: running(host.mysqld_pid_file(), "mariadbd")
                    || running(host.mysqld_pid_file(), "mysqld"),
                host,
            }
        })
        .collect();
    Ok(SandboxStatus { state, hosts })
}
