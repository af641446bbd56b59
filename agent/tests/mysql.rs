//! The probes and fences against a real MySQL 9.7 (Debian sid's, in the
//! debootstrapped root `$FLIPOVER_ROOTS/mysql-9.7` that `scripts/install-deps`
//! builds (default `/var/cache/flipover/roots`), or
//! `$FLIPOVER_MYSQL_ROOT`): the agent runs inside the root (chroot, in a
//! mount namespace of its own that has /proc), supervising mysqld there.
//! On MySQL `super_read_only` stops SUPER users too, and a fenced start
//! passes `--super-read-only`.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, pki, write, TOKEN};
use flipover_agent::client::{AgentClient, AgentError};
use flipover_agent::pki::Role;
use flipover_agent::protocol::{FenceMode, FenceRequest, LocalSummary, ProbeErrorKind};
use mysql_async::prelude::Queryable;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Where `scripts/install-deps` builds the MySQL root by default.
const DEFAULT_ROOTS: &str = "/var/cache/flipover/roots";
const AGENT_IP: Ipv4Addr = Ipv4Addr::new(127, 44, 14, 11);
const MYSQL_IP: Ipv4Addr = Ipv4Addr::new(127, 44, 14, 12);

/// A MySQL server and its agent inside the root; Drop kills the agent and
/// stops mysqld.
struct MysqlHost {
    root: PathBuf,
    /// The host's directory as seen from inside the root.
    inside: PathBuf,
    agent: Child,
    client: AgentClient,
    _dir: tempfile::TempDir,
}

impl Drop for MysqlHost {
    fn drop(&mut self) {
        // mysqld first, while its agent is there to reap it.
        let pid_file = self.outside(&self.inside.join("mysqld.pid"));
        let _ = kill_pid_file(&pid_file, Signal::SIGCONT);
        common::stop_mysqld_by_pid_file(&pid_file);
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

fn kill_pid_file(pid_file: &Path, signal: Signal) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    kill(Pid::from_raw(pid as i32), signal).ok()?;
    Some(pid)
}

impl MysqlHost {
    fn start() -> MysqlHost {
        let root = PathBuf::from(std::env::var_os("FLIPOVER_MYSQL_ROOT").unwrap_or_else(|| {
            std::path::Path::new(
                &std::env::var_os("FLIPOVER_ROOTS").unwrap_or_else(|| DEFAULT_ROOTS.into()),
            )
            .join("mysql-9.7")
            .into_os_string()
        }));
        assert!(
            root.join("usr/sbin/mysqld").is_file(),
            "no MySQL root at {} (`FLIPOVER_SERVERS=mysql-9.7 scripts/install-deps` builds it; \
             or set FLIPOVER_MYSQL_ROOT)",
            root.display(),
        );
        let dir = tempfile::Builder::new()
            .prefix("flipover-agent-test-")
            .tempdir_in(root.join("tmp"))
            .unwrap();
        let inside = Path::new("/").join(dir.path().strip_prefix(&root).unwrap());
        let d = inside.display();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        write(
            &dir.path().join("my.cnf"),
            &format!(
                "[mysqld]\ndatadir={d}/data\nsocket={d}/mysqld.sock\npid-file={d}/mysqld.pid\n\
                 port={port}\nbind-address={MYSQL_IP}\nuser=root\ntmpdir={d}/tmp\n\
                 log-error={d}/mysqld.err\nserver-id=1\nlog-bin=mysql-bin\nsecure-file-priv=\n\
                 innodb_buffer_pool_size=32M\nskip-name-resolve\nmysqlx=OFF\n",
                port = free_port(MYSQL_IP),
            ),
        );
        let output = Command::new("chroot")
            .arg(&root)
            .arg("/usr/sbin/mysqld")
            .arg(format!("--defaults-file={d}/my.cnf"))
            .arg("--initialize-insecure")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "mysqld --initialize-insecure failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The agent, its certificate and the CA inside the root.
        std::fs::copy(
            env!("CARGO_BIN_EXE_flipover-agent"),
            dir.path().join("flipover-agent"),
        )
        .unwrap();
        let (cert, key) = pki().issue("mysql-agent", &AGENT_IP.to_string(), Role::Host);
        std::fs::copy(cert, dir.path().join("agent.pem")).unwrap();
        std::fs::copy(key, dir.path().join("agent-key.pem")).unwrap();
        std::fs::copy(&pki().ca, dir.path().join("ca.pem")).unwrap();
        let port = free_port(AGENT_IP);
        let script = format!(
            "mount -t proc proc {root}/proc && exec chroot {root} {d}/flipover-agent \
             -c {d}/my.cnf --supervise --listen {AGENT_IP}:{port} \
             --stream-listen {AGENT_IP}:{stream} --tls-cert {d}/agent.pem \
             --tls-key {d}/agent-key.pem --client-ca {d}/ca.pem",
            root = root.display(),
            stream = free_port(AGENT_IP),
        );
        // A private mount namespace: the root's /proc vanishes with it.
        let mut agent = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("FLIPOVER_AGENT_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((AGENT_IP, port)).is_err() {
            if let Ok(Some(status)) = agent.try_wait() {
                panic!("the agent in the root exited: {status}");
            }
            assert!(Instant::now() < deadline, "the agent did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let transport = pki().transport();
        let client = AgentClient::over(
            &transport,
            &transport.agent_url(&AGENT_IP.to_string(), port),
            TOKEN,
            Duration::from_secs(90),
        )
        .unwrap();
        MysqlHost {
            root,
            inside,
            agent,
            client,
            _dir: dir,
        }
    }

    fn outside(&self, inside: &Path) -> PathBuf {
        self.root.join(inside.strip_prefix("/").unwrap())
    }

    fn socket(&self) -> PathBuf {
        self.outside(&self.inside.join("mysqld.sock"))
    }

    /// The `mysql` client of the root, over the socket, as `user`.
    fn sql_as(&self, user: &str, sql: &str) -> Result<String, String> {
        let output = Command::new("chroot")
            .arg(&self.root)
            .arg("mysql")
            .arg(format!(
                "--socket={}",
                self.inside.join("mysqld.sock").display()
            ))
            .arg(format!("--user={user}"))
            .args(["-N", "-B", "-e", sql])
            .output()
            .unwrap();
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8(output.stdout).unwrap().trim().to_string())
    }

    fn sql(&self, sql: &str) -> String {
        self.sql_as("root", sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn wait_running(&self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.client.start_mysqld().await {
                Ok(f) if f.mysqld_running => return f.mysqld_pid.unwrap(),
                Ok(_) | Err(AgentError::Busy { .. }) => {}
                Err(e) => panic!("start: {e}"),
            }
            assert!(Instant::now() < deadline, "mysqld did not come up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn fence(mode: FenceMode, deadline_ms: u64) -> FenceRequest {
    FenceRequest {
        mode,
        deadline_ms,
        requested_by: Some("mysql test".to_string()),
        reason: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_fences_on_mysql_9() {
    let started = Instant::now();
    let host = MysqlHost::start();
    let pid = host.wait_running().await;
    host.sql(
        "SET sql_log_bin=0; CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY); \
         CREATE USER app@localhost; GRANT SELECT, INSERT ON shop.* TO app@localhost",
    );
    eprintln!("MySQL up in {} ms", started.elapsed().as_millis());

    let probe = host
        .client
        .probe_local(Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(probe.summary, LocalSummary::Answering, "{probe:?}");
    assert!(
        probe
            .socket
            .server_version
            .as_deref()
            .unwrap()
            .starts_with("9."),
        "{probe:?}"
    );
    assert!(probe.query.answered, "{probe:?}");

    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    // Every thread of mysqld stops, not all at once: wait until /proc says so.
    common::wait_state(pid, 'T').await;
    let probe = host.client.probe_local(Duration::from_millis(1000)).await;
    kill(Pid::from_raw(pid as i32), Signal::SIGCONT).unwrap();
    let probe = probe.unwrap();
    assert_eq!(probe.summary, LocalSummary::Hung, "{probe:?}");
    assert_eq!(probe.process.state.as_deref(), Some("T"), "{probe:?}");
    assert_eq!(probe.socket.error_kind, Some(ProbeErrorKind::Timeout));

    // Read-only: super_read_only stops even root, and the session in a
    // transaction is killed.
    let opts = mysql_async::OptsBuilder::default()
        .user(Some("root"))
        .socket(Some(host.socket().display().to_string()));
    let mut root = mysql_async::Conn::new(opts).await.unwrap();
    let root_id: u64 = root
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    root.query_drop("BEGIN").await.unwrap();
    root.query_drop("INSERT INTO shop.items VALUES (1)")
        .await
        .unwrap();
    let outcome = host
        .client
        .fence(&fence(FenceMode::ReadOnly, 3000))
        .await
        .unwrap();
    assert!(outcome.holds, "{outcome:?}");
    assert_eq!(outcome.flavor.as_deref(), Some("mysql"));
    assert_eq!(
        (outcome.read_only, outcome.super_read_only),
        (Some(true), Some(true))
    );
    assert!(outcome.killed_sessions.contains(&root_id), "{outcome:?}");
    assert!(
        outcome
            .actions
            .iter()
            .any(|a| a == "ran SET GLOBAL super_read_only = 1"),
        "{outcome:?}"
    );
    assert!(root.query_drop("COMMIT").await.is_err());
    assert_eq!(host.sql("SELECT COUNT(*) FROM shop.items"), "0");
    // root passes read_only but not super_read_only.
    for (user, option) in [("root", "--super-read-only"), ("app", "--read-only")] {
        let refused = host
            .sql_as(user, "INSERT INTO shop.items VALUES (2)")
            .unwrap_err();
        assert!(refused.contains(option), "{user}: {refused}");
    }

    // Stopped, then started while fenced: super_read_only from the start.
    let outcome = host
        .client
        .fence(&fence(FenceMode::Stop, 8000))
        .await
        .unwrap();
    assert!(outcome.holds && !outcome.running_after, "{outcome:?}");
    let facts = host.client.start_mysqld().await.unwrap();
    assert!(facts.mysqld_running && facts.fenced.is_some());
    assert_eq!(host.sql("SELECT @@read_only, @@super_read_only"), "1\t1");
    eprintln!("test took {} ms", started.elapsed().as_millis());
}
