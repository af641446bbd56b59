//! One sandbox host: its my.cnf, its initialised datadir
//! (`mariadb-install-db`, or `mysqld --initialize-insecure`), its agent, and
//! the accounts flipover uses.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process;
use super::root::Confinement;
use super::server::Server;
use super::state::HostState;
use super::SandboxError;
use crate::db::{self, quote_literal, Endpoint};
use crate::observe::Flavor;

/// What every host needs to know to be set up.
pub struct HostSetup<'a> {
    pub host: &'a HostState,
    pub server: &'a Server,
    /// How programs run in the server's root; None: on the host.
    pub confinement: Option<&'a Confinement>,
    pub server_id: u32,
    pub agent_binary: &'a Path,
    pub token_file: &'a Path,
    pub token: &'a str,
    pub admin_user: &'a str,
    pub admin_password: &'a str,
    pub repl_user: &'a str,
    pub repl_password: &'a str,
    /// The account the agent gives mariadb-backup; None: root by socket.
    pub backup: Option<&'a BackupAccount>,
    pub run_as_root: bool,
    /// The sandbox's certificates; `None` runs the agent with --insecure.
    pub tls_dir: Option<&'a Path>,
}

/// A backup account of its own, for the agents of donors.
pub struct BackupAccount {
    pub user: String,
    pub password: String,
    /// Where the agent reads the password (`--backup-password-file`).
    pub password_file: PathBuf,
}

/// The settings replication needs, and small memory so a handful fit anywhere.
pub fn render_my_cnf(setup: &HostSetup<'_>) -> String {
    let h = setup.host;
    let mut cnf = String::new();
    let _ = writeln!(
        cnf,
        "# flipover sandbox host {} ({}), written by `flipover sandbox up`.",
        h.name, h.address
    );
    let _ = writeln!(cnf, "[mysqld]");
    if setup.run_as_root {
        let _ = writeln!(cnf, "user = root");
    }
    let mut settings = vec![
        ("datadir", h.datadir().display().to_string()),
        ("socket", h.socket().display().to_string()),
        ("pid-file", h.mysqld_pid_file().display().to_string()),
        ("log-error", h.dir.join("mysqld.err").display().to_string()),
        // Its own tmpdir: mariadb-install-db runs sharing /tmp abort at random.
        ("tmpdir", h.dir.join("tmp").display().to_string()),
        ("bind-address", h.address.clone()),
        ("port", h.mysql_port.to_string()),
        ("server-id", setup.server_id.to_string()),
        ("log-bin", "mysql-bin".to_string()),
        ("report-host", h.address.clone()),
        ("report-port", h.mysql_port.to_string()),
        // As Debian's packaged config has it. A replica's IO thread logs in
        // with the server's character set: under the compiled-in latin1 a
        // non-ASCII replication user name never matches its account.
        ("character-set-server", "utf8mb4".to_string()),
        ("innodb-buffer-pool-size", "64M".to_string()),
        ("max-connections", "200".to_string()),
    ];
    match setup.server.flavor {
        Flavor::Mariadb => settings.extend([
            ("log-slave-updates", "ON".to_string()),
            ("binlog-format", "ROW".to_string()),
            ("gtid-strict-mode", "ON".to_string()),
            ("innodb-log-file-size", "48M".to_string()),
            ("performance-schema", "OFF".to_string()),
        ]),
        Flavor::Mysql => settings.extend([
            ("log-replica-updates", "ON".to_string()),
            ("gtid-mode", "ON".to_string()),
            ("enforce-gtid-consistency", "ON".to_string()),
            ("innodb-redo-log-capacity", "64M".to_string()),
            // LOAD DATA / SELECT INTO OUTFILE only here (mysqld refuses to
            // start when its default, /var/lib/mysql-files, is missing).
            (
                "secure-file-priv",
                h.dir.join("files").display().to_string(),
            ),
            // The X Protocol listens on port 33060 of every address: servers
            // sharing a host would fight over it.
            ("mysqlx", "OFF".to_string()),
            // The clone plugin copies replicas; the semi-sync plugins make
            // `[cluster] durability = "semi-sync"` possible (loaded, off).
            // Clone reports progress in performance_schema, so it stays on.
            ("plugin-load-add", "mysql_clone.so".to_string()),
            ("plugin-load-add", "semisync_source.so".to_string()),
            ("plugin-load-add", "semisync_replica.so".to_string()),
        ]),
    }
    for (key, value) in settings {
        let _ = writeln!(cnf, "{key} = {value}");
    }
    let _ = writeln!(cnf, "skip-name-resolve");
    cnf
}

/// Creates the directories, the my.cnf and the system tables.
pub fn initialise(setup: &HostSetup<'_>) -> Result<(), SandboxError> {
    let h = setup.host;
    let mut dirs = vec![h.dir.clone(), h.datadir(), h.dir.join("tmp")];
    if setup.server.flavor == Flavor::Mysql {
        dirs.push(h.dir.join("files"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir)
            .map_err(|e| SandboxError::io(format!("creating {}", dir.display()), e))?;
    }
    if setup.server.flavor == Flavor::Mysql {
        // mysqld warns about a secure-file-priv directory others can read.
        use std::os::unix::fs::PermissionsExt;
        let files = h.dir.join("files");
        std::fs::set_permissions(&files, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| SandboxError::io(format!("restricting {}", files.display()), e))?;
    }
    if h.socket().as_os_str().len() > 100 {
        return Err(SandboxError::PathTooLong { path: h.socket() });
    }
    let cnf = h.my_cnf();
    std::fs::write(&cnf, render_my_cnf(setup))
        .map_err(|e| SandboxError::io(format!("writing {}", cnf.display()), e))?;

    let log = h.dir.join("install-db.log");
    let log_file = std::fs::File::create(&log)
        .map_err(|e| SandboxError::io(format!("creating {}", log.display()), e))?;
    let defaults = format!("--defaults-file={}", cnf.display());
    let (tool, mut command) =
        match setup.server.flavor {
            Flavor::Mariadb => {
                let tool = setup.server.program("mariadb-install-db").ok_or(
                    SandboxError::MissingTool {
                        tool: "mariadb-install-db",
                        package: "mariadb-server",
                    },
                )?;
                let mut command = Command::new(&tool);
                command
                    .arg(defaults)
                    .arg("--auth-root-authentication-method=normal")
                    .arg("--skip-test-db");
                if setup.run_as_root {
                    command.arg("--user=root");
                }
                (tool, command)
            }
            Flavor::Mysql => {
                // root@localhost without a password, reachable only through the
                // socket in the host's directory; binary logging of the
                // bootstrap leaves no GTIDs.
                let mut command = Command::new(&setup.server.binary);
                command.arg(defaults).arg("--initialize-insecure");
                (setup.server.binary.clone(), command)
            }
        };
    command.stdin(Stdio::null()).stdout(
        log_file
            .try_clone()
            .map_err(|e| SandboxError::io("log file", e))?,
    );
    command.stderr(log_file);
    if let Some(confinement) = setup.confinement {
        confinement
            .apply(&mut command)
            .map_err(|e| SandboxError::io("confining to the server root", e))?;
    }
    let status = command
        .status()
        .map_err(|e| SandboxError::io(format!("running {}", tool.display()), e))?;
    if !status.success() {
        let mut log_tail = process::tail(&log, 20);
        // mysqld --initialize writes to its log-error file.
        log_tail.push_str(&process::tail(&h.dir.join("mysqld.err"), 20));
        return Err(SandboxError::Command {
            what: format!("{} for {}", tool.display(), h.name),
            log_tail,
        });
    }
    Ok(())
}

/// How a host's agent is started: by `up`, and again by [`super::restart_agent`].
pub struct AgentLaunch<'a> {
    pub host: &'a HostState,
    pub agent_binary: &'a Path,
    pub token_file: &'a Path,
    /// The backup account's name and password file.
    pub backup: Option<(&'a str, &'a Path)>,
    /// The sandbox's certificates; `None` runs the agent with --insecure.
    pub tls_dir: Option<&'a Path>,
    pub confinement: Option<&'a Confinement>,
}

impl<'a> HostSetup<'a> {
    pub fn agent_launch(&self) -> AgentLaunch<'a> {
        AgentLaunch {
            host: self.host,
            agent_binary: self.agent_binary,
            token_file: self.token_file,
            backup: self
                .backup
                .map(|b| (b.user.as_str(), b.password_file.as_path())),
            tls_dir: self.tls_dir,
            confinement: self.confinement,
        }
    }
}

/// Starts the host's agent in its own process group, so it outlives this
/// command; with `--supervise` it starts mysqld on the initialised datadir.
/// With a server root the agent runs chrooted into it (and so does the
/// mysqld it starts).
pub fn start_agent(launch: &AgentLaunch<'_>) -> Result<u32, SandboxError> {
    let h = launch.host;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(h.agent_log())
        .map_err(|e| SandboxError::io(format!("opening {}", h.agent_log().display()), e))?;
    let mut command = Command::new(launch.agent_binary);
    command
        .arg("--conf")
        .arg(h.my_cnf())
        .arg("--supervise")
        .arg("--listen")
        .arg(format!("{}:{}", h.address, h.agent_port))
        .arg("--stream-listen")
        .arg(format!("{}:{}", h.address, h.stream_port))
        .arg("--token-file")
        .arg(launch.token_file)
        .args(launch.backup.iter().flat_map(|(user, password_file)| {
            [
                OsStr::new("--backup-user"),
                OsStr::new(*user),
                OsStr::new("--backup-password-file"),
                password_file.as_os_str(),
            ]
        }));
    match launch.tls_dir {
        Some(dir) => {
            let files = crate::certs::host_files(dir, &h.address);
            command
                .arg("--tls-cert")
                .arg(files.cert)
                .arg("--tls-key")
                .arg(files.key)
                .arg("--client-ca")
                .arg(dir.join(crate::certs::CA_CERT));
        }
        None => {
            command.arg("--insecure");
        }
    }
    if let Some(confinement) = launch.confinement {
        confinement
            .apply(&mut command)
            .map_err(|e| SandboxError::io("confining to the server root", e))?;
    }
    let child = process::spawn_detached(&mut command, log)
        .map_err(|e| SandboxError::io(format!("starting {}", launch.agent_binary.display()), e))?;
    std::fs::write(h.agent_pid_file(), format!("{child}\n"))
        .map_err(|e| SandboxError::io("writing agent.pid", e))?;
    Ok(child)
}

/// Waits until the agent answers, has finished starting mysqld, and reports it running.
pub async fn wait_until_ready(
    setup: &HostSetup<'_>,
    agent_pid: u32,
    timeout: Duration,
) -> Result<(), SandboxError> {
    let h = setup.host;
    let client = h
        .agent_client(setup.token, Duration::from_secs(2))
        .map_err(|e| SandboxError::Certs(e.to_string()))?;
    let started = Instant::now();
    loop {
        if !process::alive(agent_pid) {
            return Err(SandboxError::AgentStart {
                host: h.name.clone(),
                log_tail: process::tail(&h.agent_log(), 20),
            });
        }
        // The agent starts mysqld itself at startup; asking it to start
        // mysqld too answers "busy" until that start is complete, then
        // succeeds at once (starting a running mysqld is a no-op).
        if let Ok(facts) = client.start_mysqld().await {
            if facts.mysqld_running {
                return Ok(());
            }
        }
        if started.elapsed() > timeout {
            let mut log_tail = process::tail(&h.agent_log(), 10);
            log_tail.push_str(&process::tail(&h.dir.join("mysqld.err"), 10));
            return Err(SandboxError::AgentStart {
                host: h.name.clone(),
                log_tail,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates flipover's admin and replication accounts without binary logging,
/// so that an empty host stays empty (no GTIDs of its own).
pub async fn create_accounts(setup: &HostSetup<'_>) -> Result<(), SandboxError> {
    let mut conn = db::connect(&local_root(setup.host), Duration::from_secs(10)).await?;
    let statements = [
        "SET SESSION sql_log_bin = 0".to_string(),
        format!(
            "CREATE USER {}@'%' IDENTIFIED BY {}",
            quote_literal(setup.admin_user),
            quote_literal(setup.admin_password)
        ),
        format!(
            "GRANT ALL PRIVILEGES ON *.* TO {}@'%' WITH GRANT OPTION",
            quote_literal(setup.admin_user)
        ),
        format!(
            "CREATE USER {}@'%' IDENTIFIED BY {}",
            quote_literal(setup.repl_user),
            quote_literal(setup.repl_password)
        ),
        format!(
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {}@'%'",
            quote_literal(setup.repl_user)
        ),
    ];
    let mut statements = statements.to_vec();
    if let Some(backup) = setup.backup {
        statements.push(format!(
            "CREATE USER {}@'%' IDENTIFIED BY {}",
            quote_literal(&backup.user),
            quote_literal(&backup.password)
        ));
        let privileges = match setup.server.flavor {
            // What mariadb-backup 10.11 needs for --backup (and --slave-info).
            Flavor::Mariadb => "RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR",
            // The clone plugin's (donor and recipient), and xtrabackup's.
            Flavor::Mysql => {
                "BACKUP_ADMIN, CLONE_ADMIN, RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT"
            }
        };
        statements.push(format!(
            "GRANT {privileges} ON *.* TO {}@'%'",
            quote_literal(&backup.user)
        ));
    }
    for statement in &statements {
        conn.execute(statement).await?;
    }
    conn.close().await;
    Ok(())
}

/// Fills the primary with a small sample database (binlogged: these are the
/// primary's GTIDs that replicas will need).
pub async fn load_sample_data(host: &HostState) -> Result<(), SandboxError> {
    let mut conn = db::connect(&local_root(host), Duration::from_secs(10)).await?;
    let mut statements = vec![
        "CREATE DATABASE shop".to_string(),
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, \
         email VARCHAR(200) NOT NULL) ENGINE=InnoDB"
            .to_string(),
        "CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, \
         amount_cents INT NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
         KEY (customer_id)) ENGINE=InnoDB"
            .to_string(),
    ];
    let customers: Vec<String> = (1..=100)
        .map(|i| format!("({i}, 'customer {i}', 'customer{i}@example.com')"))
        .collect();
    statements.push(format!(
        "INSERT INTO shop.customers VALUES {}",
        customers.join(", ")
    ));
    let orders: Vec<String> = (1..=500)
        .map(|i| format!("({}, {})", i % 100 + 1, (i * 137) % 10_000 + 100))
        .collect();
    statements.push(format!(
        "INSERT INTO shop.orders (customer_id, amount_cents) VALUES {}",
        orders.join(", ")
    ));
    for statement in &statements {
        conn.execute(statement).await?;
    }
    conn.close().await;
    Ok(())
}

/// root over the host's unix socket (the sandbox initialises root without a
/// password, reachable only through the socket file in the host's directory).
pub fn local_root(host: &HostState) -> Endpoint {
    Endpoint {
        host: String::new(),
        port: 0,
        user: "root".to_string(),
        password: String::new(),
        socket: Some(host.socket().display().to_string()),
    }
}

/// Where the agent binary is: `FLIPOVER_AGENT_BIN`, next to this executable, or on PATH.
pub fn find_agent_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FLIPOVER_AGENT_BIN") {
        return Some(PathBuf::from(path));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("flipover-agent")));
    if let Some(path) = beside.filter(|p| p.is_file()) {
        return Some(path);
    }
    process::which("flipover-agent")
}
