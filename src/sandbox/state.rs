//! `DIR/sandbox.json`: what `sandbox up` created, so `down` and `status` can
//! find it again. Only the sandbox module reads or writes it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flipover_agent::client::{AgentClient, AgentError};
use flipover_agent::tls::{TlsError, Transport};
use serde::{Deserialize, Serialize};

use super::root::Confinement;
use crate::certs;
use crate::observe::Flavor;

/// The sandbox's certificates (`flipover certs init` of its addresses).
pub const TLS_DIR: &str = "tls";

pub const STATE_FILE: &str = "sandbox.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxState {
    /// The address block `127.77.<slot>.0/24` this sandbox owns.
    pub slot: u8,
    /// The servers' flavor (MariaDB in files written before it was recorded).
    #[serde(default = "mariadb")]
    pub flavor: Flavor,
    /// The servers' version as `mysqld --version` reported it at `up`.
    #[serde(default)]
    pub version: String,
    /// The Debian root the servers and agents run chrooted into; None: the
    /// host's own server.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// The mount points `up` created inside the root, which `down` removes
    /// again (only while empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_mount_points: Vec<PathBuf>,
    /// The agent binary the hosts run (with a root, a copy in the sandbox
    /// directory, so that it is visible inside the root).
    #[serde(default)]
    pub agent_binary: Option<PathBuf>,
    /// The agents' backup account (`--backup-user`); None: root by socket.
    #[serde(default)]
    pub backup_user: Option<String>,
    pub hosts: Vec<HostState>,
}

fn mariadb() -> Flavor {
    Flavor::Mariadb
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostState {
    pub name: String,
    /// Loopback address of its own, e.g. `127.77.3.2`.
    pub address: String,
    pub mysql_port: u16,
    pub agent_port: u16,
    pub stream_port: u16,
    /// The host's directory: my.cnf, data/, tmp/, logs, pid files.
    pub dir: PathBuf,
    /// Whether its agent serves mutual TLS with the certificates of
    /// `DIR/tls/` (false with `sandbox up --insecure`).
    #[serde(default)]
    pub tls: bool,
}

impl HostState {
    pub fn my_cnf(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }
    pub fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }
    pub fn mysqld_pid_file(&self) -> PathBuf {
        self.dir.join("mysqld.pid")
    }
    pub fn agent_pid_file(&self) -> PathBuf {
        self.dir.join("agent.pid")
    }
    pub fn agent_log(&self) -> PathBuf {
        self.dir.join("agent.log")
    }
    /// The sandbox's certificate directory.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.parent().unwrap_or(Path::new(".")).join(TLS_DIR)
    }
    /// How flipover reaches this host's agent: flipover's client
    /// certificate of the sandbox CA, or plaintext.
    pub fn transport(&self) -> Result<Transport, TlsError> {
        if !self.tls {
            return Ok(Transport::Plaintext);
        }
        let dir = self.tls_dir();
        Transport::from_files(
            &dir.join(certs::CA_CERT),
            &dir.join(certs::CLIENT_CERT),
            &dir.join(certs::CLIENT_KEY),
        )
    }
    pub fn agent_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.address, self.agent_port)
    }
    /// A client of this host's agent, as flipover reaches it.
    pub fn agent_client(&self, token: &str, timeout: Duration) -> Result<AgentClient, AgentError> {
        let transport = self.transport().map_err(|e| AgentError::Tls {
            message: e.to_string(),
        })?;
        AgentClient::over(&transport, &self.agent_url(), token, timeout)
    }
}

impl SandboxState {
    /// How the sandbox in `dir` runs its programs in its root, if it has one.
    pub fn confinement(&self, dir: &Path) -> Option<Confinement> {
        self.root
            .as_deref()
            .map(|root| Confinement::new(root, &[dir]))
    }

    pub fn load(dir: &Path) -> std::io::Result<SandboxState> {
        let text = std::fs::read_to_string(dir.join(STATE_FILE))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(STATE_FILE), text + "\n")
    }
}
