//! Wire types shared by the agent and its clients.
//!
//! Every response body is JSON: [`Facts`] on success, [`ErrorBody`] on error.

use serde::{Deserialize, Serialize};

/// Bumped on incompatible changes of the HTTP API; clients refuse to talk to
/// an agent speaking another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Route paths, kept here so the server and the client cannot drift apart.
pub mod routes {
    pub const FACTS: &str = "/v1/facts";
    pub const MYSQLD_START: &str = "/v1/mysqld/start";
    pub const MYSQLD_STOP: &str = "/v1/mysqld/stop";
}

/// What the agent knows about its host and its mysqld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub protocol_version: u32,
    pub agent_version: String,
    pub hostname: String,
    /// The my.cnf given with `-c`.
    pub conf_path: String,
    /// The `-s` service name; None when the agent supervises mysqld itself.
    pub service: Option<String>,
    pub supervised: bool,
    /// Path of mariadbd (preferred) or mysqld.
    pub server_binary: Option<String>,
    /// From `<server_binary> --version`, e.g. "10.11.19-MariaDB-0+deb12u1".
    pub server_version: Option<String>,
    pub mysqld_running: bool,
    pub mysqld_pid: Option<u32>,
    pub datadir: Option<String>,
    /// True when the datadir is missing or empty (no files at all); false when it has files.
    pub datadir_empty: Option<bool>,
    /// Total size in bytes of the files under the datadir (None if unreadable).
    pub datadir_bytes: Option<u64>,
    /// Free bytes on the filesystem holding the datadir (its nearest existing ancestor), via statvfs.
    pub free_disk_bytes: Option<u64>,
    /// Path of mariadb-backup (preferred) or xtrabackup.
    pub backup_tool: Option<String>,
    pub settings: MysqldSettings,
}

/// Replication-relevant server settings, as read from the my.cnf server groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MysqldSettings {
    /// Some("") for a bare `log-bin` flag, Some(basename) when valued,
    /// None when absent or disabled (skip-log-bin).
    pub log_bin: Option<String>,
    pub server_id: Option<u32>,
    pub log_slave_updates: Option<bool>,
    pub report_host: Option<String>,
    pub binlog_format: Option<String>,
    pub port: Option<u16>,
    pub bind_address: Option<String>,
    pub socket: Option<String>,
    pub pid_file: Option<String>,
}

/// Body of every non-2xx response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
