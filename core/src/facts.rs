//! What flipover saw: facts per server. This is also the JSON that
//! `flipover status --json` prints and that `plan --observed` will read, so the
//! fields only ever grow.

use std::collections::BTreeMap;

use flipover_protocol::Facts as AgentFacts;
use serde::{Deserialize, Serialize};

/// Version of the observed-state JSON. Fields are only added within a version.
pub const OBSERVED_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub format_version: u32,
    pub cluster: String,
    /// One entry per server of the topology, by name.
    pub servers: BTreeMap<String, ServerObservation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerObservation {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub mysql: MysqlObservation,
    pub agent: AgentObservation,
}

/// The server over the MySQL protocol: facts, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MysqlObservation {
    pub reachable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<MysqlFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentObservation {
    pub reachable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<AgentFacts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Mariadb,
    Mysql,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MysqlFacts {
    pub flavor: Flavor,
    /// `@@version`, e.g. `10.11.19-MariaDB-0+deb12u1`.
    pub version: String,
    pub server_id: u32,
    /// MySQL's `@@server_uuid` (GTIDs name it); `None` on MariaDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_uuid: Option<String>,
    pub read_only: bool,
    /// MySQL's `super_read_only`; `None` on MariaDB, which has no such thing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_read_only: Option<bool>,
    pub log_bin: bool,
    pub log_slave_updates: bool,
    pub binlog_format: String,
    /// Current binary log file and position (`None` without binary logging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<BinlogCoordinates>,
    pub gtid: GtidState,
    /// Schemas other than the server's own (mysql, sys, the schemas).
    pub user_schemas: Vec<String>,
    /// What each of `user_schemas` holds, counted. `None` when it was not
    /// counted (an observation recorded before flipover counted, or a count
    /// that failed): then every user schema counts as data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_objects: Option<BTreeMap<String, SchemaObjects>>,
    /// Age in seconds of the oldest open InnoDB transaction (0 when none):
    /// a switchover waits for it, so the plan refuses long ones.
    #[serde(default)]
    pub longest_transaction_seconds: u64,
    /// MariaDB: the GTID state at the start of the oldest binary log still on
    /// disk (its Gtid_list event, and for a server built from a backup, the
    /// GTID before its binlogs' first transaction). A replica whose
    /// position is older cannot be served from this server's binlogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_oldest_gtid: Option<String>,
    /// Replication from a source, when configured (`SHOW SLAVE/REPLICA STATUS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaStatus>,
    /// The latest apply recorded in this server's journal, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_apply: Option<JournalApply>,
    /// Semi-synchronous replication settings and state; `None` when the
    /// server has none (MySQL without the semi-sync plugins, or an
    /// observation recorded before flipover read them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semi_sync: Option<SemiSync>,
}

/// What one schema holds. A schema with none of these holds no data
/// (`mariadb-install-db` creates an empty `test` schema, for one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaObjects {
    /// Base tables, sequences and every other table that is not a view.
    pub tables: u64,
    pub views: u64,
    /// Stored procedures and functions.
    pub routines: u64,
    pub events: u64,
}

impl SchemaObjects {
    pub fn is_empty(&self) -> bool {
        self.tables == 0 && self.views == 0 && self.routines == 0 && self.events == 0
    }
}

/// Semi-synchronous replication on one server, in MariaDB's words (MySQL's
/// `source`/`replica` spellings are read into the same fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemiSync {
    /// `rpl_semi_sync_master_enabled`: commits wait for a replica's acknowledgement.
    pub master_enabled: bool,
    /// `rpl_semi_sync_slave_enabled`: this server acknowledges what it receives
    /// (read by the IO thread when it starts).
    pub slave_enabled: bool,
    /// `rpl_semi_sync_master_timeout`, in milliseconds: after that long
    /// without an acknowledgement the primary falls back to async.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_timeout_ms: Option<u64>,
    /// `rpl_semi_sync_master_wait_point`: `AFTER_SYNC` (lossless) or `AFTER_COMMIT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_wait_point: Option<String>,
    /// `rpl_semi_sync_master_wait_no_slave`: keep waiting when no replica is connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_wait_no_slave: Option<bool>,
    /// Status `Rpl_semi_sync_master_status`: commits do wait now (OFF while
    /// disabled or fallen back to async).
    pub master_status: bool,
    /// Status `Rpl_semi_sync_master_clients`: connected semi-sync replicas.
    pub master_clients: u64,
    /// Status `Rpl_semi_sync_slave_status`: this replica's IO thread acknowledges.
    pub slave_status: bool,
}

/// One apply as its journal recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalApply {
    pub apply_id: String,
    /// Who ran it: `user@host pid N`.
    pub operator: String,
    pub started_at: String,
    /// Whether its end was recorded.
    pub finished: bool,
    pub entries: Vec<JournalEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub step: String,
    /// `started`, `succeeded`, `failed`, `finished`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogCoordinates {
    pub file: String,
    pub position: u64,
}

/// GTID state in the flavor's own terms; the fields of the other flavor are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtidState {
    /// MariaDB `@@gtid_binlog_pos`: last GTID per domain in this server's binlog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_pos: Option<String>,
    /// MariaDB `@@gtid_slave_pos`: last GTID applied as a replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slave_pos: Option<String>,
    /// MariaDB `@@gtid_current_pos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_pos: Option<String>,
    /// MariaDB `@@gtid_binlog_state`: last GTID per domain and server_id
    /// (what errant-transaction detection compares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_state: Option<String>,
    /// MariaDB `@@gtid_strict_mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_mode: Option<bool>,
    /// MySQL `@@gtid_mode` (ON, OFF, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// MySQL `@@gtid_executed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed: Option<String>,
    /// MySQL `@@gtid_purged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub source_host: String,
    pub source_port: u16,
    pub source_user: String,
    /// The source's server_id as the replica last saw it (0 when never
    /// connected): names a dead primary's GTIDs.
    #[serde(default)]
    pub source_server_id: u32,
    /// `Yes`, `No` or `Connecting`, as the server says it.
    pub io_running: String,
    pub sql_running: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_io_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sql_error: Option<String>,
    /// `Seconds_Behind_Master` / `Seconds_Behind_Source`; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_behind: Option<u64>,
    /// Whether the replica positions by GTID (MariaDB `Using_Gtid` ≠ No, MySQL `Auto_Position` = 1).
    pub using_gtid: bool,
    /// MariaDB `Gtid_IO_Pos` / MySQL `Retrieved_Gtid_Set`: what the IO thread has received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_received: Option<String>,
    /// Source binlog coordinates the SQL thread has applied up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_source_log: Option<BinlogCoordinates>,
}

impl ServerObservation {
    /// MySQL facts, when the server answered.
    pub fn facts(&self) -> Option<&MysqlFacts> {
        self.mysql.facts.as_ref()
    }
}

impl ReplicaStatus {
    pub fn io_running(&self) -> bool {
        self.io_running.eq_ignore_ascii_case("yes")
    }

    /// Both threads run.
    pub fn healthy(&self) -> bool {
        self.io_running() && self.sql_running
    }
}

impl MysqlFacts {
    /// MariaDB: every GTID this server is known to hold, per domain and
    /// server_id: its binlog state plus what it applied as a replica. A server
    /// built from a backup holds its donor's history without having it in its
    /// own binlog; `gtid_slave_pos` still records it.
    pub fn known_gtid_state(&self) -> String {
        [
            self.gtid.binlog_state.as_deref(),
            self.gtid.slave_pos.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
    }

    /// The user schemas known to hold nothing (no tables, views, routines or
    /// events); a schema that was not counted is not among them.
    pub fn empty_schemas(&self) -> Vec<String> {
        let Some(objects) = &self.schema_objects else {
            return Vec::new();
        };
        self.user_schemas
            .iter()
            .filter(|name| objects.get(*name).is_some_and(SchemaObjects::is_empty))
            .cloned()
            .collect()
    }

    /// The user schemas that hold something, or were not counted.
    pub fn schemas_with_data(&self) -> Vec<String> {
        let empty = self.empty_schemas();
        self.user_schemas
            .iter()
            .filter(|name| !empty.contains(name))
            .cloned()
            .collect()
    }

    /// The position to show for humans: GTID per flavor.
    pub fn gtid_summary(&self) -> Option<&str> {
        match self.flavor {
            Flavor::Mariadb => self.gtid.current_pos.as_deref(),
            Flavor::Mysql => self.gtid.executed.as_deref(),
        }
    }
}
