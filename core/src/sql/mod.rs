//! Replication SQL per flavor: the text of every statement and the parsing of
//! every result, one module per flavor. MariaDB's text is exercised by the
//! integration tests against the sandbox; MySQL's only by the unit tests here
//! (no MySQL server runs on this project's machines).

pub mod journal;
pub mod lock;
pub mod mariadb;
pub mod mysql;
pub mod schemas;
pub mod semi_sync;
mod text;

use crate::facts::{BinlogCoordinates, Flavor, ReplicaStatus};
pub use text::{quote_literal, TextRow, SESSION_SETUP};

/// Which SQL spellings a server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MariaDB 10.5 and later.
    Mariadb,
    /// MySQL 8.0.22 to 8.3: REPLICA spellings, `SHOW MASTER STATUS` still there.
    Mysql80,
    /// MySQL 8.4 LTS and later: the MASTER/SLAVE spellings are gone.
    Mysql84,
}

/// A result that did not have the shape a flavor's parser expects.
#[derive(Debug, thiserror::Error)]
#[error("unexpected result from `{query}`: {problem}")]
pub struct ParseError {
    pub query: &'static str,
    pub problem: String,
}

/// Server variables that flipover reads in one round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variables {
    pub server_id: u32,
    pub server_uuid: Option<String>,
    pub read_only: bool,
    pub super_read_only: Option<bool>,
    pub log_bin: bool,
    pub log_slave_updates: bool,
    pub binlog_format: String,
    pub gtid: crate::facts::GtidState,
}

/// Lists the schemas that hold user data.
/// flipover's own `flipover` schema (the apply journal) is not user data.
pub const USER_SCHEMAS_QUERY: &str = "SELECT schema_name AS name FROM information_schema.schemata \
     WHERE schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', 'flipover') \
     ORDER BY schema_name";

/// The server's version and comment: what [`Dialect::detect`] reads.
pub const VERSION_QUERY: &str = "SELECT @@version AS version, @@version_comment AS comment";

impl Dialect {
    /// The dialect of the server that answered [`VERSION_QUERY`] with `row`.
    pub fn from_version_row(row: &TextRow) -> Dialect {
        Dialect::detect(
            column(row, "version").unwrap_or_default(),
            column(row, "comment").unwrap_or_default(),
        )
    }

    /// The dialect of a server flipover observed.
    pub fn of_facts(facts: &crate::facts::MysqlFacts) -> Dialect {
        match facts.flavor {
            Flavor::Mariadb => Dialect::Mariadb,
            Flavor::Mysql => Dialect::detect(&facts.version, ""),
        }
    }

    /// Chooses the dialect from `@@version` (and `@@version_comment`, which
    /// names MariaDB on builds whose version string does not).
    pub fn detect(version: &str, version_comment: &str) -> Dialect {
        if version.to_ascii_lowercase().contains("mariadb")
            || version_comment.to_ascii_lowercase().contains("mariadb")
        {
            return Dialect::Mariadb;
        }
        match parse_major_minor(version) {
            Some((major, minor)) if (major, minor) >= (8, 4) => Dialect::Mysql84,
            _ => Dialect::Mysql80,
        }
    }

    pub fn flavor(self) -> Flavor {
        match self {
            Dialect::Mariadb => Flavor::Mariadb,
            Dialect::Mysql80 | Dialect::Mysql84 => Flavor::Mysql,
        }
    }

    pub fn variables_query(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::VARIABLES,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::VARIABLES,
        }
    }

    pub fn parse_variables(self, row: &TextRow) -> Result<Variables, ParseError> {
        match self {
            Dialect::Mariadb => mariadb::parse_variables(row),
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::parse_variables(row),
        }
    }

    /// The query for the current binary log file and position.
    pub fn binlog_status_query(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::BINLOG_STATUS,
            Dialect::Mysql80 => mysql::BINLOG_STATUS_80,
            Dialect::Mysql84 => mysql::BINLOG_STATUS_84,
        }
    }

    pub fn replica_status_query(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::REPLICA_STATUS,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::REPLICA_STATUS,
        }
    }

    pub fn parse_replica_status(self, row: &TextRow) -> Result<ReplicaStatus, ParseError> {
        match self {
            Dialect::Mariadb => mariadb::parse_replica_status(row),
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::parse_replica_status(row),
        }
    }
}

/// Age of the oldest open InnoDB transaction, in seconds (column `age`).
pub const LONGEST_TRANSACTION_QUERY: &str =
    "SELECT COALESCE(MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())), 0) AS age \
     FROM information_schema.innodb_trx";

/// Where a replica connects, and as whom.
#[derive(Debug, Clone)]
pub struct SourceAddress {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

/// Replication control, per dialect.
impl Dialect {
    pub fn start_replica(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::START_REPLICA,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::START_REPLICA,
        }
    }

    pub fn stop_replica(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::STOP_REPLICA,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::STOP_REPLICA,
        }
    }

    pub fn reset_replica_all(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::RESET_REPLICA_ALL,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::RESET_REPLICA_ALL,
        }
    }

    pub fn change_source(self, source: &SourceAddress) -> String {
        match self {
            Dialect::Mariadb => mariadb::change_source(source),
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::change_source(source),
        }
    }

    /// Statements that make a server restored from a backup replicate from
    /// just after the backup's GTID position.
    pub fn set_start_position(self, gtid: &str) -> Vec<String> {
        match self {
            Dialect::Mariadb => mariadb::set_start_position(gtid),
            Dialect::Mysql80 => mysql::set_start_position(gtid, false),
            Dialect::Mysql84 => mysql::set_start_position(gtid, true),
        }
    }

    /// The query for this server's GTID position, in column `position`.
    pub fn gtid_position_query(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::GTID_POSITION,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::GTID_POSITION,
        }
    }

    /// A query returning `result`: whether `gtid` was applied within the timeout.
    pub fn wait_for_position(self, gtid: &str, timeout_seconds: u64) -> String {
        match self {
            Dialect::Mariadb => mariadb::wait_for_position(gtid, timeout_seconds),
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::wait_for_position(gtid, timeout_seconds),
        }
    }

    /// Makes the server read-only (a replica) or writable (the primary).
    pub fn set_read_only(self, read_only: bool) -> String {
        match self {
            Dialect::Mariadb => mariadb::set_read_only(read_only),
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::set_read_only(read_only),
        }
    }

    /// Stops only the receiving thread (a failover drains what was received).
    pub fn stop_io_thread(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::STOP_IO_THREAD,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::STOP_IO_THREAD,
        }
    }

    pub fn start_io_thread(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::START_IO_THREAD,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::START_IO_THREAD,
        }
    }

    /// Everything the server has, applied or written, in column `position`.
    pub fn current_position_query(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::CURRENT_POSITION,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::CURRENT_POSITION,
        }
    }

    /// This server's position as a replica, in column `position`.
    pub fn replica_position_query(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::REPLICA_POSITION,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::REPLICA_POSITION,
        }
    }

    /// What a server runs to replicate from after everything it holds.
    pub fn start_at_own_position(self) -> &'static [&'static str] {
        match self {
            Dialect::Mariadb => mariadb::START_AT_OWN_POSITION,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::START_AT_OWN_POSITION,
        }
    }

    /// What a former primary runs before it replicates from its successor.
    pub fn rejoin_as_replica(self) -> &'static [&'static str] {
        match self {
            Dialect::Mariadb => mariadb::REJOIN_AS_REPLICA,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::REJOIN_AS_REPLICA,
        }
    }

    /// Sessions a fence kills (column `id`): all but replication dump
    /// threads, the server's own threads, and the asking session.
    pub fn sessions_to_kill_query(self) -> &'static str {
        "SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() \
         AND command NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon') \
         AND user NOT IN ('system user', 'event_scheduler')"
    }

    /// The my.cnf option that makes a replica log what it replicates (in
    /// hints: the spelling this server's release documents).
    pub fn log_replica_updates_option(self) -> &'static str {
        match self {
            Dialect::Mariadb | Dialect::Mysql80 => "log-slave-updates",
            Dialect::Mysql84 => "log-replica-updates",
        }
    }

    /// Ends the session `id` (a fence ends every client's).
    pub fn kill_connection(self, id: u64) -> String {
        format!("KILL CONNECTION {id}")
    }

    /// Reads the answer of [`Dialect::wait_for_position`].
    pub fn wait_succeeded(self, result: Option<&str>) -> bool {
        result == Some("0")
    }
}

/// A replica registered with a source (`SHOW SLAVE HOSTS` / `SHOW REPLICAS`):
/// how the replica reports itself (`report_host`, `report_port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaHost {
    pub server_id: u32,
    /// Empty when the replica sets no `report_host`.
    pub host: String,
    pub port: u16,
}

/// The replicas a source knows of, per dialect (discovery walks down with it).
impl Dialect {
    pub fn replica_hosts_query(self) -> &'static str {
        match self {
            Dialect::Mariadb => mariadb::REPLICA_HOSTS,
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::REPLICA_HOSTS,
        }
    }

    pub fn parse_replica_host(self, row: &TextRow) -> Result<ReplicaHost, ParseError> {
        match self {
            Dialect::Mariadb => mariadb::parse_replica_host(row),
            Dialect::Mysql80 | Dialect::Mysql84 => mysql::parse_replica_host(row),
        }
    }
}

/// Reads `File`/`Position` from `SHOW MASTER STATUS` or its successors
/// (the same columns in every flavor).
pub fn parse_binlog_status(row: &TextRow) -> Result<BinlogCoordinates, ParseError> {
    let query = "SHOW MASTER STATUS";
    Ok(BinlogCoordinates {
        file: required(row, query, "File")?.to_string(),
        position: parse_u64(query, "Position", required(row, query, "Position")?)?,
    })
}

fn parse_major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A column's text, `None` when NULL or absent.
pub fn column<'r>(row: &'r TextRow, name: &str) -> Option<&'r str> {
    row.get(name).and_then(|v| v.as_deref())
}

/// A column's text, `None` when NULL, absent or empty.
pub fn non_empty<'r>(row: &'r TextRow, name: &str) -> Option<&'r str> {
    column(row, name).filter(|v| !v.trim().is_empty())
}

pub(crate) fn required<'r>(
    row: &'r TextRow,
    query: &'static str,
    name: &str,
) -> Result<&'r str, ParseError> {
    column(row, name).ok_or_else(|| ParseError {
        query,
        problem: format!("column `{name}` is missing or NULL"),
    })
}

/// Server booleans come as 1/0, ON/OFF or Yes/No depending on where they come from.
pub(crate) fn parse_bool(query: &'static str, name: &str, text: &str) -> Result<bool, ParseError> {
    match text.trim().to_ascii_uppercase().as_str() {
        "1" | "ON" | "YES" | "TRUE" => Ok(true),
        "0" | "OFF" | "NO" | "FALSE" => Ok(false),
        other => Err(ParseError {
            query,
            problem: format!("`{name}` is `{other}`, not a boolean"),
        }),
    }
}

pub(crate) fn parse_u64(query: &'static str, name: &str, text: &str) -> Result<u64, ParseError> {
    text.trim().parse().map_err(|_| ParseError {
        query,
        problem: format!("`{name}` is `{text}`, not a number"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_dialect_from_version() {
        assert_eq!(
            Dialect::detect("10.11.19-MariaDB-0+deb12u1", "Debian 12"),
            Dialect::Mariadb
        );
        assert_eq!(
            Dialect::detect("5.5.5-10.11.6", "mariadb.org binary distribution"),
            Dialect::Mariadb
        );
        assert_eq!(
            Dialect::detect("8.0.36", "MySQL Community Server - GPL"),
            Dialect::Mysql80
        );
        assert_eq!(
            Dialect::detect("8.4.3", "MySQL Community Server - GPL"),
            Dialect::Mysql84
        );
        assert_eq!(
            Dialect::detect("9.1.0", "MySQL Community Server - GPL"),
            Dialect::Mysql84
        );
    }

    /// Account names and passwords with quotes, backslashes, `;`, spaces
    /// and non-ASCII stay inside their literals in every dialect.
    #[test]
    fn change_source_quotes_hostile_accounts() {
        let source = SourceAddress {
            host: "db-1.example".into(),
            port: 3306,
            user: r#"r'e"p\l; ü"#.into(),
            password: r#"p'w"d\; DROP USER x; -- ü"#.into(),
        };
        let user = r#"'r''e"p\\l; ü'"#;
        let password = r#"'p''w"d\\; DROP USER x; -- ü'"#;
        assert_eq!(
            Dialect::Mariadb.change_source(&source),
            format!(
                "CHANGE MASTER TO MASTER_HOST='db-1.example', MASTER_PORT=3306, \
                 MASTER_USER={user}, MASTER_PASSWORD={password}, MASTER_USE_GTID=slave_pos"
            )
        );
        for dialect in [Dialect::Mysql80, Dialect::Mysql84] {
            assert_eq!(
                dialect.change_source(&source),
                format!(
                    "CHANGE REPLICATION SOURCE TO SOURCE_HOST='db-1.example', SOURCE_PORT=3306, \
                     SOURCE_USER={user}, SOURCE_PASSWORD={password}, SOURCE_AUTO_POSITION=1, \
                     GET_SOURCE_PUBLIC_KEY=1"
                )
            );
        }
        // GTID texts come from servers, but are quoted all the same.
        assert_eq!(
            Dialect::Mysql80.wait_for_position("x'; KILL 1; --", 5),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('x''; KILL 1; --', 5) AS result"
        );
        assert_eq!(
            Dialect::Mariadb.set_start_position(r"0-1-5\"),
            vec![r"SET GLOBAL gtid_slave_pos = '0-1-5\\'".to_string()]
        );
    }

    #[test]
    fn binlog_status_reads_file_and_position() {
        let row: TextRow = [
            ("File".to_string(), Some("binlog.000007".to_string())),
            ("Position".to_string(), Some("4711".to_string())),
            ("Binlog_Do_DB".to_string(), Some(String::new())),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            parse_binlog_status(&row).unwrap(),
            BinlogCoordinates {
                file: "binlog.000007".into(),
                position: 4711
            }
        );
    }
}
