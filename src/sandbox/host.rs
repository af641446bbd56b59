//! One sandbox host: its my.cnf, `mariadb-install-db`, its agent, and the
//! accounts flipover uses.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process;
use super::state::HostState;
use super::SandboxError;
use crate::db::{self, quote_literal, Endpoint};

/// What every host needs to know to be set up.
pub struct HostSetup<'a> {
    pub host: &'a HostState,
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
    for (key, value) in [
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
        ("log-slave-updates", "ON".to_string()),
        ("binlog-format", "ROW".to_string()),
        ("gtid-strict-mode", "ON".to_string()),
        ("report-host", h.address.clone()),
        ("report-port", h.mysql_port.to_string()),
        // As Debian's packaged config has it. A replica's IO thread logs in
        // with the server's character set: under the compiled-in latin1 a
        // non-ASCII replication user name never matches its account.
        ("character-set-server", "utf8mb4".to_string()),
        ("innodb-buffer-pool-size", "64M".to_string()),
        ("innodb-log-file-size", "48M".to_string()),
        ("performance-schema", "OFF".to_string()),
        ("max-connections", "200".to_string()),
    ] {
        let _ = writeln!(cnf, "{key} = {value}");
    }
    let _ = writeln!(cnf, "skip-name-resolve");
    cnf
}

/// Creates the directories, the my.cnf and the system tables.
pub fn initialise(setup: &HostSetup<'_>) -> Result<(), SandboxError> {
    let h = setup.host;
    for dir in [h.dir.clone(), h.datadir(), h.dir.join("tmp")] {
        std::fs::create_dir_all(&dir)
            .map_err(|e| SandboxError::io(format!("creating {}", dir.display()), e))?;
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
    let mut command = Command::new("mariadb-install-db");
    command
        .arg(format!("--defaults-file={}", cnf.display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .stdin(Stdio::null())
        .stdout(
            log_file
                .try_clone()
                .map_err(|e| SandboxError::io("log file", e))?,
        )
        .stderr(log_file);
    if setup.run_as_root {
        command.arg("--user=root");
    }
    let status = command
        .status()
        .map_err(|e| SandboxError::io("running mariadb-install-db", e))?;
    if !status.success() {
        return Err(SandboxError::Command {
            what: format!("mariadb-install-db for {}", h.name),
            log_tail: process::tail(&log, 20),
        });
    }
    Ok(())
}

/// Starts the host's agent in its own process group, so it outlives this
/// command; with `--supervise` it starts mysqld on the initialised datadir.
pub fn start_agent(setup: &HostSetup<'_>) -> Result<u32, SandboxError> {
    let h = setup.host;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(h.agent_log())
        .map_err(|e| SandboxError::io(format!("opening {}", h.agent_log().display()), e))?;
    let mut command = Command::new(setup.agent_binary);
    command
        .arg("--conf")
        .arg(h.my_cnf())
        .arg("--supervise")
        .arg("--listen")
        .arg(format!("{}:{}", h.address, h.agent_port))
        .arg("--stream-listen")
        .arg(format!("{}:{}", h.address, h.stream_port))
        .arg("--token-file")
        .arg(setup.token_file)
        .args(setup.backup.iter().flat_map(|b| {
            [
                OsStr::new("--backup-user"),
                OsStr::new(&b.user),
                OsStr::new("--backup-password-file"),
                b.password_file.as_os_str(),
            ]
        }));
    match setup.tls_dir {
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
    let child = process::spawn_detached(&mut command, log)
        .map_err(|e| SandboxError::io(format!("starting {}", setup.agent_binary.display()), e))?;
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
        // What mariadb-backup 10.11 needs for --backup (and --slave-info).
        statements.push(format!(
            "CREATE USER {}@'%' IDENTIFIED BY {}",
            quote_literal(&backup.user),
            quote_literal(&backup.password)
        ));
        statements.push(format!(
            "GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR ON *.* TO {}@'%'",
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
