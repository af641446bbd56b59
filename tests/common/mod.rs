//! Shared test support: a real sandbox of MariaDB or MySQL servers (of a
//! [`ServerKind`]) started through the real `flipover` binary, stopped again
//! when the guard drops.

#![allow(dead_code)]

pub mod binlogs;
pub mod etcd;
pub mod expected;
pub mod faults;
pub mod reliability;
pub mod servers;
pub mod writer;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use flipover::db::{self, Connection, Endpoint};
use flipover::observe::Flavor;
use flipover::sandbox::state::{HostState, SandboxState};
pub use servers::ServerKind;

pub fn flipover_bin() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_flipover") {
        return PathBuf::from(path);
    }
    // A bench built without it runs as target/<profile>/deps/NAME-HASH:
    // take the binary of the same profile, else release, else debug.
    let exe = std::env::current_exe().expect("current executable");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let target = profile.parent().expect("target/");
    [
        profile.join("flipover"),
        target.join("release/flipover"),
        target.join("debug/flipover"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .expect("no flipover binary: run `cargo build --release --workspace --bins` first")
}

/// Runs `flipover ARGS…` and returns its output.
pub fn flipover(args: &[&str]) -> Output {
    Command::new(flipover_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("flipover runs")
}

/// `flipover apply -f PATH --auto-approve [EXTRA…]`: success, and stdout
/// followed by stderr.
pub fn apply(path: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["apply", "-f", path.to_str().unwrap(), "--auto-approve"];
    args.extend_from_slice(extra);
    let output = flipover(&args);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `flipover status -f PATH --json`, parsed.
pub fn observe(path: &Path) -> flipover::observe::Observed {
    let output = flipover(&["status", "-f", path.to_str().unwrap(), "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

pub struct TestSandbox {
    /// Keeps the directory alive for the test's duration.
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub state: SandboxState,
    /// The admin account's name (`--admin-user`).
    pub admin_user: String,
    /// The servers it runs.
    pub kind: ServerKind,
    /// How long `flipover sandbox up` took.
    pub up_time: Duration,
    /// Set once [`TestSandbox::down`] stopped it.
    stopped: bool,
}

impl TestSandbox {
    /// `flipover sandbox up --servers N` in a fresh temporary directory, on
    /// the host's MariaDB.
    pub fn up(servers: usize) -> TestSandbox {
        Self::up_with(servers, &[])
    }

    /// `flipover sandbox up --servers N EXTRA…` in a fresh temporary
    /// directory, on the host's MariaDB.
    pub fn up_with(servers: usize, extra: &[&str]) -> TestSandbox {
        Self::start(ServerKind::Mariadb1011, servers, &[], extra)
    }

    /// A sandbox of N servers of `kind` (see [`ServerKind::run`] for tests
    /// that skip a kind whose root is missing).
    pub fn up_flavor(kind: ServerKind, servers: usize) -> TestSandbox {
        Self::up_flavor_with(kind, servers, &[])
    }

    /// A sandbox of N servers of `kind`, with `flipover sandbox up EXTRA…`.
    pub fn up_flavor_with(kind: ServerKind, servers: usize, extra: &[&str]) -> TestSandbox {
        if let Some(root) = kind.root() {
            assert!(
                root.is_dir(),
                "{}: the server root {} is missing: build it with scripts/install-deps",
                kind.name(),
                root.display()
            );
        }
        Self::start(kind, servers, &kind.sandbox_args(), extra)
    }

    fn start(
        kind: ServerKind,
        servers: usize,
        kind_args: &[String],
        extra: &[&str],
    ) -> TestSandbox {
        let tmp = tempfile::Builder::new()
            .prefix("fo-sb")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let dir = tmp.path().join("sb");
        let started = Instant::now();
        let output = flipover(
            &[
                "sandbox",
                "up",
                "--servers",
                &servers.to_string(),
                "--dir",
                dir.to_str().unwrap(),
            ]
            .into_iter()
            .chain(kind_args.iter().map(String::as_str))
            .chain(extra.iter().copied())
            .collect::<Vec<_>>(),
        );
        let up_time = started.elapsed();
        assert!(
            output.status.success(),
            "sandbox up failed:\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let dir = dir.canonicalize().unwrap();
        let state = SandboxState::load(&dir).expect("sandbox.json");
        let admin_user = extra
            .iter()
            .position(|arg| *arg == "--admin-user")
            .map_or("flipover", |i| extra[i + 1])
            .to_string();
        TestSandbox {
            _tmp: tmp,
            dir,
            state,
            admin_user,
            kind,
            up_time,
            stopped: false,
        }
    }

    pub fn flavor(&self) -> Flavor {
        self.kind.flavor()
    }

    /// `flipover sandbox down`, checked; the guard then has nothing left to do.
    pub fn down(&mut self) {
        let output = flipover(&["sandbox", "down", "--dir", self.dir.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "sandbox down failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.stopped = true;
    }

    /// Starts `name`'s agent again as the sandbox started it (chrooted
    /// into the server root, if any) after a test killed it; returns its pid.
    pub fn start_agent_again(&self, name: &str) -> u32 {
        flipover::sandbox::restart_agent(&self.dir, name).expect("agent starts")
    }

    pub fn topology(&self) -> PathBuf {
        self.dir.join("topology.toml")
    }

    pub fn topology_arg(&self) -> String {
        self.topology().display().to_string()
    }

    pub fn host(&self, name: &str) -> &HostState {
        self.state
            .hosts
            .iter()
            .find(|h| h.name == name)
            .expect("host exists")
    }

    pub fn secret(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("secrets").join(name))
            .expect("secret file")
            .trim()
            .to_string()
    }

    /// The admin account over TCP, as flipover itself connects.
    pub fn admin(&self, name: &str) -> Endpoint {
        let host = self.host(name);
        Endpoint {
            host: host.address.clone(),
            port: host.mysql_port,
            user: self.admin_user.clone(),
            password: self.secret("admin.password"),
            socket: None,
        }
    }

    pub async fn connect(&self, name: &str) -> Connection {
        db::connect(&self.admin(name), Duration::from_secs(5))
            .await
            .expect("connect")
    }

    /// Points `replica` at `source` by GTID, by hand, as a DBA would.
    pub async fn replicate(&self, replica: &str, source: &str) {
        let src = self.host(source);
        let address = db::quote_literal(&src.address);
        let password = db::quote_literal(&self.secret("repl.password"));
        let (change, start) = match self.flavor() {
            Flavor::Mariadb => (
                format!(
                    "CHANGE MASTER TO MASTER_HOST={address}, MASTER_PORT={}, MASTER_USER='repl', \
                     MASTER_PASSWORD={password}, MASTER_USE_GTID=slave_pos",
                    src.mysql_port
                ),
                "START SLAVE",
            ),
            // caching_sha2_password over plain TCP: the replica asks for
            // the source's RSA key.
            Flavor::Mysql => (
                format!(
                    "CHANGE REPLICATION SOURCE TO SOURCE_HOST={address}, SOURCE_PORT={}, \
                     SOURCE_USER='repl', SOURCE_PASSWORD={password}, SOURCE_AUTO_POSITION=1, \
                     GET_SOURCE_PUBLIC_KEY=1",
                    src.mysql_port
                ),
                "START REPLICA",
            ),
        };
        let mut conn = self.connect(replica).await;
        conn.execute(&change).await.unwrap();
        conn.execute(start).await.unwrap();
        conn.close().await;
    }

    /// Polls `query` on `server` until it returns `expected`, or panics after `timeout`.
    pub async fn wait_for_value(
        &self,
        server: &str,
        query: &str,
        expected: &str,
        timeout: Duration,
    ) {
        let started = Instant::now();
        loop {
            let mut conn = self.connect(server).await;
            let value = conn
                .first_row(query)
                .await
                .ok()
                .flatten()
                .and_then(|row| row.into_values().next().flatten());
            conn.close().await;
            if value.as_deref() == Some(expected) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{server}: `{query}` gave {value:?}, expected {expected} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes `DIR/NAME.toml`: the sandbox's topology with `primary` and the
    /// given `(replica, source)` pairs; every other server under `primary`.
    pub fn write_topology(&self, name: &str, primary: &str, sources: &[(&str, &str)]) -> PathBuf {
        let original = std::fs::read_to_string(self.topology()).unwrap();
        let mut text = original[..original.find("[servers.").unwrap()].to_string();
        for host in &self.state.hosts {
            text.push_str(&format!(
                "[servers.{}]\nhost = \"{}\"\n",
                host.name, host.address
            ));
            if host.name != primary {
                let source = sources
                    .iter()
                    .find(|(replica, _)| *replica == host.name)
                    .map(|(_, source)| *source)
                    .unwrap_or(primary);
                text.push_str(&format!("source = \"{source}\"\n"));
            }
            text.push('\n');
        }
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `CHECKSUM TABLE tables` on `server`, as `table=checksum` entries:
    /// equal lists mean equal data.
    pub async fn checksums(&self, server: &str, tables: &str) -> Vec<String> {
        let mut conn = self.connect(server).await;
        let rows = conn
            .rows(&format!("CHECKSUM TABLE {tables}"))
            .await
            .unwrap();
        conn.close().await;
        rows.into_iter()
            .map(|r| format!("{:?}={:?}", r.get("Table"), r.get("Checksum")))
            .collect()
    }

    pub fn mysqld_pid(&self, name: &str) -> u32 {
        read_pid(&self.host(name).mysqld_pid_file())
    }
}

pub fn read_pid(file: &Path) -> u32 {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let output = flipover(&["sandbox", "down", "--dir", self.dir.to_str().unwrap()]);
        if !output.status.success() {
            eprintln!(
                "sandbox down failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
