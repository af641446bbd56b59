//! Helpers shared by the integration tests: free loopback ports and a
//! running agent binary that is killed when dropped.

#![allow(dead_code)] // each test file uses a different subset

pub mod host;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flipover_agent::client::AgentClient;
use flipover_agent::pki::{Authority, Role};
use flipover_agent::tls::Transport;

pub const TOKEN: &str = "test-token-7f3a";

/// A port free on `ip` right now: bind port 0, note the port, release it.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test run's certificate authority (made once per test binary) and
/// the files it issued: agents get a host certificate for their IP,
/// clients the `flipover` client certificate.
pub struct Pki {
    dir: tempfile::TempDir,
    authority: Authority,
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::generate("flipover test CA"))
}

impl Pki {
    /// A new CA in its own temp dir, with a client certificate.
    pub fn generate(name: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::generate(name).unwrap();
        let ca = dir.path().join("ca.pem");
        write(&ca, authority.cert_pem());
        let client = authority.issue("flipover", &[], Role::Client).unwrap();
        let (client_cert, client_key) = (
            dir.path().join("flipover.pem"),
            dir.path().join("flipover-key.pem"),
        );
        write(&client_cert, &client.cert_pem);
        write(&client_key, &client.key_pem);
        Pki {
            dir,
            authority,
            ca,
            client_cert,
            client_key,
        }
    }

    /// A certificate and key for `name` (an IP or host name) with `role`,
    /// written under `file_stem` in the CA's directory.
    pub fn issue(&self, file_stem: &str, name: &str, role: Role) -> (PathBuf, PathBuf) {
        let issued = self
            .authority
            .issue(name, &[name.to_string()], role)
            .unwrap();
        let cert = self.dir.path().join(format!("{file_stem}.pem"));
        let key = self.dir.path().join(format!("{file_stem}-key.pem"));
        write(&cert, &issued.cert_pem);
        write(&key, &issued.key_pem);
        (cert, key)
    }

    /// How flipover reaches agents of this CA: its client certificate.
    pub fn transport(&self) -> Transport {
        Transport::from_files(&self.ca, &self.client_cert, &self.client_key).unwrap()
    }
}

/// A plain reqwest client with the test CA's client certificate, for
/// requests the library client cannot make (no token, unknown routes).
pub fn raw_http() -> reqwest::Client {
    let Transport::Tls(config) = pki().transport() else {
        unreachable!()
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(&config))
        .build()
        .unwrap()
}

/// The agent binary, killed on drop so a failing test leaves nothing behind.
pub struct Agent {
    pub child: Child,
    pub url: String,
    pub transport: Transport,
}

impl Agent {
    /// Starts `flipover-agent` on `ip` with `args`, the token in
    /// FLIPOVER_AGENT_TOKEN, and waits until it accepts connections. The
    /// agent gets a host certificate of the test CA for `ip` unless `args`
    /// has `--insecure` or its own `--tls-cert`.
    pub fn start(ip: Ipv4Addr, args: &[&str], token: Option<&str>) -> Agent {
        let port = free_port(ip);
        let mut command = Command::new(env!("CARGO_BIN_EXE_flipover-agent"));
        command
            .args(args)
            .arg("--listen")
            .arg(format!("{ip}:{port}"))
            .env_remove("FLIPOVER_AGENT_TOKEN")
            .stdin(Stdio::null());
        let own_tls = args
            .iter()
            .any(|a| *a == "--insecure" || *a == "--tls-cert");
        let transport = if args.contains(&"--insecure") {
            Transport::Plaintext
        } else {
            pki().transport()
        };
        if !own_tls {
            let (cert, key) =
                pki().issue(&format!("agent-{ip}-{port}"), &ip.to_string(), Role::Host);
            command
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key)
                .arg("--client-ca")
                .arg(&pki().ca);
        }
        if let Some(token) = token {
            command.env("FLIPOVER_AGENT_TOKEN", token);
        }
        let mut child = command.spawn().expect("spawn flipover-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((ip, port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("flipover-agent exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "flipover-agent did not listen within 10s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Agent {
            child,
            url: transport.agent_url(&ip.to_string(), port),
            transport,
        }
    }

    pub fn client(&self, token: &str) -> AgentClient {
        AgentClient::over(&self.transport, &self.url, token, Duration::from_secs(90)).unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `text` to `path`.
pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A TLS connection to an agent's stream port as a donor would open it:
/// checking the agent against `ca` and presenting `identity` (certificate
/// and key files), or no certificate at all.
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    identity: Option<(&Path, &Path)>,
    ca: &Path,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use flipover_agent::tls::{
        client_config, client_config_without_certificate, read_roots, Identity,
    };
    let roots = read_roots(ca).unwrap();
    let config = match identity {
        Some((cert, key)) => client_config(Identity::from_files(cert, key).unwrap(), roots),
        None => client_config_without_certificate(roots),
    }
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::from(addr.ip());
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
}

/// SIGTERMs the mysqld whose pid `pid_file` holds and waits (up to 30 s)
/// for it to go, so a failed assertion never leaves a server running.
pub fn stop_mysqld_by_pid_file(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
        let deadline = Instant::now() + Duration::from_secs(30);
        while runs(pid.as_raw()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// True while the process exists and has not exited: once its agent is
/// gone, a mysqld's exit leaves a zombie nobody may reap (PID 1 of a
/// container need not).
fn runs(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Waits until /proc says the process is in state `want` (`T`: stopped).
pub async fn wait_state(pid: u32, want: char) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat.rsplit_once(')').unwrap().1.split_whitespace().next();
        if state == Some(&want.to_string()) {
            return;
        }
        assert!(Instant::now() < deadline, "{pid} never reached {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
