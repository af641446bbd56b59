//! A real etcd cluster for tests: Debian's `etcd` (3.4) members on loopback
//! addresses of their own, each with its data directory in a tempdir,
//! started as the sandbox starts MariaDB and killed when the guard drops.
//!
//! Each cluster owns the block `127.78.<slot>.0/24` (member `i` listens on
//! `127.78.<slot>.<i>`, client port 2379, peer port 2380). A slot is taken by
//! creating `/tmp/flipover-etcd-slots/slot-<N>` exclusively; the file holds
//! the owning test process's pid, so a slot whose owner died is reused.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

/// How long a (re)started cluster may take to elect a leader.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// Overrides where slots are recorded (default `/tmp/flipover-etcd-slots`).
pub const REGISTRY_ENV: &str = "FLIPOVER_ETCD_SLOTS";

fn registry_dir() -> PathBuf {
    std::env::var_os(REGISTRY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("flipover-etcd-slots"))
}

struct Member {
    name: String,
    address: Ipv4Addr,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Whether the member was SIGSTOPped (and not continued since).
    stopped: bool,
}

impl Member {
    fn client_url(&self) -> String {
        format!("http://{}:{CLIENT_PORT}", self.address)
    }

    fn peer_url(&self) -> String {
        format!("http://{}:{PEER_PORT}", self.address)
    }
}

pub struct EtcdCluster {
    /// Keeps the data directories alive for the test's duration.
    _tmp: tempfile::TempDir,
    slot: u8,
    slot_file: PathBuf,
    token: String,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts a cluster of `size` members and waits until it is healthy.
    pub fn start(size: usize) -> EtcdCluster {
        assert!((1..=9).contains(&size), "1 to 9 members");
        let (slot, slot_file) = acquire_slot(size);
        let tmp = tempfile::Builder::new()
            .prefix("fo-etcd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let members = (1..=size)
            .map(|i| Member {
                name: format!("m{i}"),
                address: Ipv4Addr::new(127, 78, slot, i as u8),
                data_dir: tmp.path().join(format!("m{i}.etcd")),
                log: tmp.path().join(format!("m{i}.log")),
                child: None,
                stopped: false,
            })
            .collect();
        let mut cluster = EtcdCluster {
            token: format!("flipover-test-{slot}-{}", std::process::id()),
            _tmp: tmp,
            slot,
            slot_file,
            members,
        };
        for i in 0..size {
            cluster.spawn(i);
        }
        cluster.wait_healthy(HEALTHY_WITHIN);
        cluster
    }

    pub fn slot(&self) -> u8 {
        self.slot
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    pub fn endpoint(&self, index: usize) -> String {
        self.members[index].client_url()
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, index: usize) {
        let initial_cluster = self.initial_cluster();
        let member = &mut self.members[index];
        assert!(member.child.is_none(), "{} already runs", member.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .expect("member log");
        // `--initial-cluster-state new` only matters for an empty data
        // directory: a restarted member rejoins from the one it has.
        let child = Command::new("etcd")
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&member.data_dir)
            .arg("--listen-client-urls")
            .arg(member.client_url())
            .arg("--advertise-client-urls")
            .arg(member.client_url())
            .arg("--listen-peer-urls")
            .arg(member.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(member.peer_url())
            .arg("--initial-cluster")
            .arg(&initial_cluster)
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .arg("--initial-cluster-state")
            .arg("new")
            // etcd's defaults, spelled out: the figures the tests print
            // depend on them.
            .arg("--heartbeat-interval")
            .arg("100")
            .arg("--election-timeout")
            .arg("1000")
            .arg("--logger")
            .arg("zap")
            .arg("--log-outputs")
            .arg("stderr")
            .env_remove("ETCD_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("etcd runs (Debian's etcd-server: scripts/install-deps)");
        member.child = Some(child);
        member.stopped = false;
    }

    /// SIGKILLs member `index` and reaps it.
    pub fn kill(&mut self, index: usize) {
        let member = &mut self.members[index];
        if let Some(mut child) = member.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        member.stopped = false;
    }

    /// SIGSTOPs member `index`: it keeps its sockets but answers nothing.
    pub fn pause(&mut self, index: usize) {
        self.signal(index, Signal::SIGSTOP);
        self.members[index].stopped = true;
    }

    /// SIGCONTs a member `pause` stopped.
    pub fn resume(&mut self, index: usize) {
        self.signal(index, Signal::SIGCONT);
        self.members[index].stopped = false;
    }

    fn signal(&self, index: usize, signal: Signal) {
        let child = self.members[index]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("{} does not run", self.members[index].name));
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal the member");
    }

    /// Starts a killed member again on its data directory (it rejoins).
    pub fn restart(&mut self, index: usize) {
        self.kill(index);
        self.spawn(index);
    }

    /// Whether member `index`'s process runs (stopped counts as running).
    pub fn running(&mut self, index: usize) -> bool {
        match self.members[index].child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Kills two of three members (every member but `keep`): the one left
    /// cannot reach a quorum. Returns the members killed, for `restore`.
    pub fn lose_quorum(&mut self, keep: usize) -> Vec<usize> {
        let killed: Vec<usize> = (0..self.members.len()).filter(|i| *i != keep).collect();
        for i in &killed {
            self.kill(*i);
        }
        killed
    }

    /// Restarts the given members and waits until the cluster is healthy.
    pub fn restore(&mut self, members: &[usize]) {
        for i in members {
            self.restart(*i);
        }
        self.wait_healthy(HEALTHY_WITHIN);
    }

    /// Whether member `index` says it is healthy (`GET /health`: it has a
    /// leader and answers a quorum read).
    pub fn member_healthy(&self, index: usize) -> bool {
        let member = &self.members[index];
        if member.stopped {
            return false;
        }
        http_get(SocketAddrV4::new(member.address, CLIENT_PORT), "/health")
            .is_some_and(|body| body.contains("\"health\":\"true\""))
    }

    /// The member that is etcd's Raft leader now, if one is (its
    /// `etcd_server_is_leader` metric).
    pub fn raft_leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|i| {
            let member = &self.members[*i];
            !member.stopped
                && http_get(SocketAddrV4::new(member.address, CLIENT_PORT), "/metrics")
                    .is_some_and(|m| m.lines().any(|l| l.trim() == "etcd_server_is_leader 1"))
        })
    }

    /// Waits until every running member is healthy, or panics with their
    /// logs' tails after `timeout`.
    pub fn wait_healthy(&mut self, timeout: Duration) {
        let started = Instant::now();
        loop {
            let running: Vec<usize> = (0..self.members.len())
                .filter(|i| self.running(*i) && !self.members[*i].stopped)
                .collect();
            if !running.is_empty() && running.iter().all(|i| self.member_healthy(*i)) {
                return;
            }
            if started.elapsed() > timeout {
                panic!(
                    "etcd cluster in slot {} not healthy within {timeout:?}\n{}",
                    self.slot,
                    self.log_tails()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of every member's log, for failure messages.
    pub fn log_tails(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let text = std::fs::read_to_string(&m.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                format!("--- {} ({}):\n{tail}", m.name, m.log.display())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            // A stopped process takes SIGKILL too; continue it anyway so
            // nothing lingers in the stopped state.
            if self.members[i].stopped {
                self.resume(i);
            }
            self.kill(i);
        }
        let _ = std::fs::remove_file(&self.slot_file);
    }
}

/// Takes a free slot by exclusive file creation, skipping slots whose
/// addresses something already listens on.
fn acquire_slot(size: usize) -> (u8, PathBuf) {
    let registry = registry_dir();
    std::fs::create_dir_all(&registry).expect("etcd slot registry");
    for slot in 1..=254u8 {
        let file = registry.join(format!("slot-{slot}"));
        if file.exists() && !stale(&file) {
            continue;
        }
        if file.exists() {
            let _ = std::fs::remove_file(&file);
        }
        match OpenOptions::new().write(true).create_new(true).open(&file) {
            Ok(mut f) => {
                let taken = (1..=size).any(|i| {
                    let address = Ipv4Addr::new(127, 78, slot, i as u8);
                    [CLIENT_PORT, PEER_PORT]
                        .iter()
                        .any(|port| TcpListener::bind(SocketAddrV4::new(address, *port)).is_err())
                });
                if taken {
                    drop(f);
                    let _ = std::fs::remove_file(&file);
                    continue;
                }
                f.write_all(std::process::id().to_string().as_bytes())
                    .expect("write the slot file");
                return (slot, file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("{}: {e}", file.display()),
        }
    }
    panic!("no free etcd slot in {}", registry.display());
}

/// A slot file is stale when the process it names is gone (or, when it
/// names none, once it has been empty for a minute).
fn stale(file: &Path) -> bool {
    let Ok(owner) = std::fs::read_to_string(file) else {
        return false;
    };
    match owner.trim().parse::<i32>() {
        Ok(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => std::fs::metadata(file)
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
            .unwrap_or(false),
    }
}

/// A plain HTTP/1.0 GET with short timeouts; the body, if anything answered.
fn http_get(address: SocketAddrV4, path: &str) -> Option<String> {
    let timeout = Duration::from_millis(500);
    let mut stream = TcpStream::connect_timeout(&address.into(), timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}
