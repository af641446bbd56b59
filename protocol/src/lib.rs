//! Wire types shared by the agent and its clients.
//!
//! Every response body is JSON: [`Facts`], [`JobStatus`], a probe's or a
//! fence's result on success, [`ErrorBody`] on error.

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
    /// POST [`super::LocalProbeRequest`] → [`super::LocalProbe`]: this
    /// host's mysqld, seen from the host itself.
    pub const PROBE_LOCAL: &str = "/v1/probe/local";
    /// POST [`super::RemoteProbeRequest`] → [`super::RemoteProbe`]: a MySQL
    /// port, seen from this host (connect and handshake, no login).
    pub const PROBE_REMOTE: &str = "/v1/probe/remote";
    /// POST [`super::FenceRequest`] → [`super::FenceOutcome`].
    pub const FENCE: &str = "/v1/fence";
    /// POST [`super::LiftFenceRequest`] → [`super::Facts`].
    pub const FENCE_LIFT: &str = "/v1/fence/lift";
}

/// The longest deadline a probe or a fence may be given; the agent answers
/// 400 to a longer one (or to none at all).
pub const MAX_DEADLINE_MS: u64 = 10_000;

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
    /// The fence in force on this host, if any (see [`FenceRequest`]):
    /// the agent does not start mysqld at its own startup, and starts it
    /// read-only until the fence is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fenced: Option<FenceRecord>,
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

/// Body of `POST /v1/mysqld/start`; the route also takes no body at all
/// (which is `lift_fence: false`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    /// Lift the fence first, so mysqld starts writable. Without it a fenced
    /// host's mysqld starts read-only.
    #[serde(default)]
    pub lift_fence: bool,
    /// Who asks, for the agent's log (lifting a fence is logged as a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// Asks how this host's mysqld is, from the host itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalProbeRequest {
    /// The agent answers within this (1 to [`MAX_DEADLINE_MS`]).
    pub deadline_ms: u64,
}

/// One word for a [`LocalProbe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocalSummary {
    /// `SELECT 1` answered, or the server answered the login with an error
    /// (a server that says "access denied" is alive and answering).
    Answering,
    /// A process is there (or something accepts on the socket) but nothing
    /// answered within the deadline: stopped, stuck, or still starting.
    Hung,
    /// No mysqld process, and nothing accepts on the socket.
    Down,
}

/// This host's mysqld as its agent sees it: each observation with its
/// timing and error text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalProbe {
    pub summary: LocalSummary,
    pub process: ProcessObservation,
    /// A connection to the server's unix socket and its initial handshake.
    pub socket: SocketObservation,
    /// `SELECT 1` over the socket, logged in as the agent's backup account.
    pub query: QueryObservation,
    pub deadline_ms: u64,
    pub elapsed_ms: u64,
}

/// The mysqld process named by the pid file, from /proc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessObservation {
    pub pid_file: String,
    /// The pid the file holds (None: no file or no pid in it).
    pub pid: Option<u32>,
    /// True when that pid is a live (not zombie) mariadbd/mysqld.
    pub alive: bool,
    /// The process state letter of /proc/PID/stat: `R` running, `S`
    /// sleeping, `D` in uninterruptible I/O, `T` stopped (SIGSTOP), `t`
    /// stopped by a tracer, `Z` zombie.
    pub state: Option<String>,
    pub elapsed_ms: u64,
    pub error: Option<String>,
}

/// A connection to a server that reads its initial handshake (no login).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketObservation {
    /// The socket's path.
    pub path: String,
    pub connected: bool,
    /// The server sent its handshake packet (protocol version 10).
    pub handshake: bool,
    /// As the handshake gives it (MariaDB may prefix `5.5.5-`).
    pub server_version: Option<String>,
    pub elapsed_ms: u64,
    pub error_kind: Option<ProbeErrorKind>,
    pub error: Option<String>,
}

/// A query over the local socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryObservation {
    /// The account it logged in as.
    pub user: String,
    /// The query returned its row.
    pub answered: bool,
    /// The server itself answered with an error (login refused, …): it is
    /// alive even though the query did not run.
    pub server_error: bool,
    pub elapsed_ms: u64,
    pub error: Option<String>,
}

/// Why a probe did not get its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeErrorKind {
    /// Nothing listens there (connection refused).
    Refused,
    /// No answer within the deadline (to the connection, or, once
    /// connected, no handshake: a stopped server's kernel still accepts).
    Timeout,
    /// The connection was reset.
    Reset,
    /// The peer closed the connection before its handshake.
    Closed,
    /// No route to the host or its network.
    Unreachable,
    /// The host name does not resolve.
    Resolve,
    /// The socket file does not exist.
    Missing,
    /// Something answered that is not a MySQL handshake.
    BadHandshake,
    /// The server answered with an error packet instead of a handshake
    /// (e.g. too many connections, host blocked): it is alive.
    ServerError,
    /// Any other failure (also what a newer agent's unknown kinds read as).
    #[serde(other)]
    Other,
}

/// Asks whether a MySQL port answers, seen from this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteProbeRequest {
    /// A host name or IP address.
    pub host: String,
    pub port: u16,
    /// The agent answers within this (1 to [`MAX_DEADLINE_MS`]).
    pub deadline_ms: u64,
}

/// A TCP connection to a MySQL port and its initial handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteProbe {
    /// `host:port` as asked.
    pub target: String,
    /// The address the connection went to, once resolved and connected.
    pub address: Option<String>,
    pub connected: bool,
    /// Milliseconds until the TCP connection was established.
    pub connect_ms: Option<u64>,
    pub handshake: bool,
    pub server_version: Option<String>,
    /// Milliseconds until the handshake arrived or the probe gave up.
    pub elapsed_ms: u64,
    pub error_kind: Option<ProbeErrorKind>,
    pub error: Option<String>,
}

/// How to fence this host's mysqld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FenceMode {
    /// Over the local socket: `read_only` (MariaDB, and every client
    /// session killed, as `read_only` does not stop privileged users) or
    /// `super_read_only` (MySQL).
    ReadOnly,
    /// Stop mysqld (SIGTERM, or the service manager's stop); SIGKILL it
    /// when it has not stopped by the deadline less the time kept for the
    /// kill (2 s, at most half the deadline), or at once when it is
    /// stopped (SIGSTOP) and cannot act on SIGTERM.
    Stop,
}

/// Fences this host's mysqld, before a failover promotes another server.
/// The fence is recorded on the host and outlives an agent restart until
/// it is lifted ([`LiftFenceRequest`], or [`StartRequest::lift_fence`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRequest {
    pub mode: FenceMode,
    /// The agent answers within this (1 to [`MAX_DEADLINE_MS`]).
    pub deadline_ms: u64,
    /// Who asks, for the agent's log and the record (e.g. "flipover apply
    /// by alice on ops1").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Why, e.g. "failover db1 -> db2".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A fence in force, as recorded on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    pub mode: FenceMode,
    /// When it was requested, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The address the request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Where the record is kept on the host.
    pub marker: String,
}

/// What a fence did and the state it left, so the caller can tell whether
/// the fence holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceOutcome {
    pub mode: FenceMode,
    /// True when the server is confirmed fenced now (read-only read back,
    /// or no mysqld running) and the record was written.
    pub holds: bool,
    /// What was done, in order, in words.
    pub actions: Vec<String>,
    /// The running mysqld's pid when the fence began.
    pub pid_before: Option<u32>,
    /// Whether a mysqld runs once the fence is done, and its pid.
    pub running_after: bool,
    pub pid_after: Option<u32>,
    /// `mariadb` or `mysql` (read-only mode, once connected).
    pub flavor: Option<String>,
    /// `@@read_only` and `@@super_read_only` read back after the fence.
    pub read_only: Option<bool>,
    pub super_read_only: Option<bool>,
    /// Client sessions killed (read-only mode).
    pub killed_sessions: Vec<u64>,
    /// The stop needed SIGKILL.
    pub sigkilled: bool,
    /// The record written (None when writing it failed: see `error`).
    pub record: Option<FenceRecord>,
    pub elapsed_ms: u64,
    /// What failed, when something did.
    pub error: Option<String>,
}

/// Lifts a fence: deletes its record, so the agent starts mysqld writable
/// again and autostarts it. A running server's read-only setting is left
/// as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiftFenceRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}
