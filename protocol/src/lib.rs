//! Wire types shared by the agent and its clients.
//!
//! Every response body is JSON: [`Facts`] or [`JobStatus`] on success,
//! [`ErrorBody`] on error.

use serde::{Deserialize, Serialize};

/// Bumped on incompatible changes of the HTTP API; clients refuse to talk to
/// an agent speaking another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Route paths, kept here so the server and the client cannot drift apart.
pub mod routes {
    pub const FACTS: &str = "/v1/facts";
    pub const MYSQLD_START: &str = "/v1/mysqld/start";
    pub const MYSQLD_STOP: &str = "/v1/mysqld/stop";
    /// POST [`super::CloneReceiveRequest`] → [`super::JobStatus`].
    pub const CLONE_RECEIVE: &str = "/v1/clone/receive";
    /// POST [`super::CloneSendRequest`] → [`super::JobStatus`].
    pub const CLONE_SEND: &str = "/v1/clone/send";
    /// POST [`super::ConfirmCloneRequest`] → [`super::JobStatus`].
    pub const CLONE_CONFIRM: &str = "/v1/clone/confirm";
    /// GET → [`super::JobStatus`]; the server's route pattern.
    pub const JOB: &str = "/v1/jobs/{id}";
    /// Prefix of [`JOB`] for building a job's URL.
    pub const JOBS_PREFIX: &str = "/v1/jobs/";
    /// GET → Prometheus/OpenMetrics text (not JSON); also served alone,
    /// without the token, on the agent's `--metrics-listen` address.
    pub const METRICS: &str = "/metrics";
}

/// First line a donor sends on the target's stream port, followed by a
/// space, the one-time stream token and `\n`.
pub const STREAM_MAGIC: &str = "FLIPOVER-STREAM 1";

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
    /// Where receive jobs listen for the donor's stream (`--stream-listen`).
    #[serde(default)]
    pub stream_listen: Option<String>,
    /// The running clone job ("<id> (clone_receive)"), if any.
    #[serde(default)]
    pub busy_job: Option<String>,
    /// The id of that job, for `GET /v1/jobs/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_job_id: Option<String>,
    /// The position of the physical backup this datadir was restored from
    /// (its `mariadb_backup_binlog_info`), when it was: lets flipover finish
    /// a clone whose replication was never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_backup: Option<BackupPosition>,
    /// A succeeded receive job whose previous datadir is still kept: the
    /// copy runs but was never confirmed (flipover stopped before proving
    /// its replication). Confirming it once replication runs finishes it;
    /// an agent restart before that puts the previous datadir back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconfirmed_clone_job: Option<String>,
}

/// Binlog coordinates and GTID position a backup was taken at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPosition {
    pub binlog_file: String,
    pub binlog_position: u64,
    /// "" when the backup recorded no GTID.
    pub gtid: String,
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

/// Asks the target agent to receive a physical clone (destructive: the
/// current datadir is moved aside and replaced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneReceiveRequest {
    /// One-time token the donor must present on the stream port.
    pub stream_token: String,
    /// Size of the donor's datadir, for the free-space check.
    pub expected_bytes: u64,
    /// True: the plan said --replace; false: refuse if the target datadir
    /// holds user data.
    pub replace: bool,
}

/// Asks the donor agent to stream a backup to a target's stream port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneSendRequest {
    pub target_host: String,
    pub target_stream_port: u16,
    pub stream_token: String,
}

/// Deletes the previous datadir kept by a succeeded receive job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmCloneRequest {
    pub job_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    CloneReceive,
    CloneSend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// A background job as the agent sees it right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: String,
    pub kind: JobKind,
    pub state: JobState,
    /// Human words: "waiting for the donor", "receiving", "preparing", …
    pub phase: String,
    /// Bytes sent (donor) / received (target) so far.
    pub bytes: u64,
    pub elapsed_ms: u64,
    /// On Failed: what went wrong, with the tool's stderr tail.
    pub error: Option<String>,
    /// On Succeeded, receive jobs only.
    pub result: Option<CloneResult>,
}

/// What a succeeded receive produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneResult {
    /// From mariadb_backup_binlog_info / xtrabackup_binlog_info ("" when
    /// the donor had no binary log).
    pub binlog_file: String,
    pub binlog_position: u64,
    /// The GTID position of the backup ("" when none).
    pub gtid: String,
    /// Where the old datadir was moved (kept until confirmed; None once
    /// confirmed or when there was none).
    pub previous_datadir: Option<String>,
    pub bytes: u64,
}
