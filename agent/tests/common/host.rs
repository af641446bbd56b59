//! Real MariaDB servers in temp dirs, each supervised by its own agent
//! (over mutual TLS with the test CA), and the helpers clone tests share.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flipover_agent::client::{AgentClient, AgentError};
use flipover_agent::protocol::{CloneReceiveRequest, CloneSendRequest, Facts, JobState, JobStatus};

use super::{free_port, write, Agent, TOKEN};

pub const STREAM_TOKEN: &str = "stream-token-5e2d91";

/// A MariaDB server in a temp dir with its supervising agent, both on
/// addresses of 127.44.<block>.0/24. Drop kills the agent and stops mysqld.
pub struct Host {
    pub agent: Option<Agent>,
    pub client: AgentClient,
    pub conf: PathBuf,
    pub datadir: PathBuf,
    pub pid_file: PathBuf,
    /// The server's unix socket; every client the tests run names it.
    pub socket: PathBuf,
    /// mysqld's TCP address.
    pub mysql: SocketAddr,
    pub stream: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Drop for Host {
    fn drop(&mut self) {
        drop(self.agent.take());
        super::stop_mysqld_by_pid_file(&self.pid_file);
    }
}

/// Which option-file group names the server's socket and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketIn {
    /// `[client-server]`: read by the server and by every client tool.
    ClientServer,
    /// `[mysqld]` only, as a host set up by hand often has it: client tools
    /// (mariadb-backup too) fall back to their compiled-in socket unless
    /// told the path.
    MysqldOnly,
}

/// Host `n` (1 or 2) of address block `block`: agent and stream port on
/// 127.44.block.(10n+1), mysqld on 127.44.block.(10n+2). `extra` is
/// appended to the [mysqld] group.
pub fn host(block: u8, n: u8, extra: &str) -> Host {
    host_with(block, n, extra, SocketIn::ClientServer)
}

/// [`host`] with the socket and port named in the group `socket_in`.
pub fn host_with(block: u8, n: u8, extra: &str, socket_in: SocketIn) -> Host {
    let agent_ip = Ipv4Addr::new(127, 44, block, 10 * n + 1);
    let mysql_ip = Ipv4Addr::new(127, 44, block, 10 * n + 2);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let datadir = d.join("data");
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let conf = d.join("my.cnf");
    let socket = d.join("mysqld.sock");
    let mysql = SocketAddr::from((mysql_ip, free_port(mysql_ip)));
    let address = format!("socket={}\nport={}\n", socket.display(), mysql.port());
    let (client_group, mysqld_address) = match socket_in {
        SocketIn::ClientServer => (format!("[client-server]\n{address}\n"), String::new()),
        SocketIn::MysqldOnly => (String::new(), address),
    };
    write(
        &conf,
        &format!(
            "{client_group}[mysqld]\n{mysqld_address}datadir={data}\npid-file={d}/mysqld.pid\n\
             bind-address={mysql_ip}\nuser=root\ntmpdir={d}/tmp\nlog-bin=mysql-bin\nserver-id={n}\n\
             log-error={d}/mysqld.err\ninnodb_buffer_pool_size=32M\ninnodb_log_file_size=16M\n\
             skip-name-resolve\n{extra}\n",
            d = d.display(),
            data = datadir.display(),
        ),
    );
    let output = Command::new("mariadb-install-db")
        .arg(format!("--defaults-file={}", conf.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .output()
        .expect("run mariadb-install-db");
    assert!(
        output.status.success(),
        "mariadb-install-db failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stream = SocketAddr::from((agent_ip, free_port(agent_ip)));
    let agent = start_agent(&conf, stream);
    let client = agent.client(TOKEN);
    Host {
        agent: Some(agent),
        client,
        conf,
        pid_file: d.join("mysqld.pid"),
        socket,
        mysql,
        datadir,
        stream,
        dir,
    }
}

/// The host's supervising agent, its API on the stream address's IP.
fn start_agent(conf: &Path, stream: SocketAddr) -> Agent {
    Agent::start(
        match stream.ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => unreachable!("test hosts are on IPv4 loopback"),
        },
        &[
            "-c",
            conf.to_str().unwrap(),
            "--supervise",
            "--stream-listen",
            &stream.to_string(),
        ],
        Some(TOKEN),
    )
}

impl Host {
    /// Runs SQL with the mariadb client over the socket; the rows as text.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_as("root", sql)
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Runs SQL as `user` (no password) over the socket; the rows as text,
    /// or the client's error.
    pub fn sql_as(&self, user: &str, sql: &str) -> Result<String, String> {
        let output = Command::new("mariadb")
            .arg(format!("--defaults-file={}", self.conf.display()))
            .arg(format!("--socket={}", self.socket.display()))
            .arg(format!("--user={user}"))
            .args(["-N", "-B", "-e", sql])
            .output()
            .expect("run the mariadb client");
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8(output.stdout).unwrap().trim().to_string())
    }

    /// Kills the agent (SIGKILL, as a crash would) and starts a new one on
    /// the same config; mysqld is left as it is.
    pub fn restart_agent(&mut self) {
        drop(self.agent.take());
        let agent = start_agent(&self.conf, self.stream);
        self.client = agent.client(TOKEN);
        self.agent = Some(agent);
    }

    /// The pid of the running mysqld, from its pid file (a zombie, dead
    /// but not yet reaped, is not running).
    pub fn mysqld_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
        (state != "Z").then_some(pid)
    }

    /// Waits until the agent's autostart is over: starting an already
    /// running mysqld succeeds once nothing holds the action lock.
    pub async fn wait_running(&self) -> Facts {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.client.start_mysqld().await {
                Ok(f) if f.mysqld_running => return f,
                Ok(_) | Err(AgentError::Busy { .. }) => {}
                Err(e) => panic!("start: {e}"),
            }
            assert!(Instant::now() < deadline, "mysqld did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn receive_request(&self, expected_bytes: u64, replace: bool) -> CloneReceiveRequest {
        CloneReceiveRequest {
            stream_token: STREAM_TOKEN.to_string(),
            expected_bytes,
            replace,
        }
    }

    pub fn send_request_to(&self, target: &Host) -> CloneSendRequest {
        CloneSendRequest {
            target_host: target.stream.ip().to_string(),
            target_stream_port: target.stream.port(),
            stream_token: STREAM_TOKEN.to_string(),
        }
    }

    /// Entries next to the datadir, e.g. a kept `data.flipover-previous-…`.
    pub fn siblings(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("data"))
            .collect()
    }
}

/// Relative paths of all files under `dir`.
pub fn file_list(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(p) = pending.pop() {
        for entry in std::fs::read_dir(&p).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

/// Polls a job until it leaves Running.
pub async fn finished(client: &AgentClient, id: &str, timeout: Duration) -> JobStatus {
    let deadline = Instant::now() + timeout;
    loop {
        let status = client.job(id).await.unwrap();
        if status.state != JobState::Running {
            return status;
        }
        assert!(Instant::now() < deadline, "job still running: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_phase(client: &AgentClient, id: &str, phase: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.job(id).await.unwrap();
        if status.phase == phase {
            return;
        }
        assert_eq!(status.state, JobState::Running, "{status:?}");
        assert!(
            Instant::now() < deadline,
            "never reached {phase:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn put_shop(host: &Host) {
    host.sql(
        "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20)); \
         INSERT INTO shop.items VALUES (1,'apple'),(2,'pear'),(3,'plum')",
    );
}

pub fn put_marker(host: &Host) {
    host.sql(
        "SET sql_log_bin=0; CREATE DATABASE keep; CREATE TABLE keep.marker (v VARCHAR(20)); \
         INSERT INTO keep.marker VALUES ('still-here')",
    );
}
