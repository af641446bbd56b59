//! `DIR/sandbox.json`: what `sandbox up` created, so `down` and `status` can
//! find it again. Only the sandbox module reads or writes it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "sandbox.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxState {
    /// The address block `127.77.<slot>.0/24` this sandbox owns.
    pub slot: u8,
    pub hosts: Vec<HostState>,
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
    pub fn agent_url(&self) -> String {
        format!("http://{}:{}", self.address, self.agent_port)
    }
}

impl SandboxState {
    pub fn load(dir: &Path) -> std::io::Result<SandboxState> {
        let text = std::fs::read_to_string(dir.join(STATE_FILE))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(STATE_FILE), text + "\n")
    }
}
