//! MySQL 8.0.22+ and 8.4 LTS. No MySQL server can run on this project's
//! machines: this text is checked by the unit tests below against the column
//! names of MySQL's reference manual, not against a live server.

use super::{column, non_empty, parse_bool, parse_u64, required, ParseError, Variables};
use super::{quote_literal, TextRow};
use crate::facts::{BinlogCoordinates, GtidState, ReplicaStatus};

/// `log_slave_updates` stays readable as an alias of `log_replica_updates`
/// on every 8.x release, so one query serves 8.0 and 8.4.
pub const VARIABLES: &str = "SELECT @@server_id AS server_id, @@server_uuid AS server_uuid, \
     @@read_only AS read_only, @@super_read_only AS super_read_only, \
     @@log_bin AS log_bin, @@log_slave_updates AS log_slave_updates, \
     @@binlog_format AS binlog_format, @@gtid_mode AS gtid_mode, \
     @@gtid_executed AS gtid_executed, @@gtid_purged AS gtid_purged";

pub const BINLOG_STATUS_80: &str = "SHOW MASTER STATUS";
/// 8.4 removed `SHOW MASTER STATUS`.
pub const BINLOG_STATUS_84: &str = "SHOW BINARY LOG STATUS";

pub const REPLICA_STATUS: &str = "SHOW REPLICA STATUS";

pub fn parse_variables(row: &TextRow) -> Result<Variables, ParseError> {
    let q = VARIABLES;
    Ok(Variables {
        server_id: parse_u64(q, "server_id", required(row, q, "server_id")?)? as u32,
        server_uuid: column(row, "server_uuid").map(str::to_string),
        read_only: parse_bool(q, "read_only", required(row, q, "read_only")?)?,
        super_read_only: column(row, "super_read_only")
            .map(|v| parse_bool(q, "super_read_only", v))
            .transpose()?,
        log_bin: parse_bool(q, "log_bin", required(row, q, "log_bin")?)?,
        log_slave_updates: parse_bool(
            q,
            "log_slave_updates",
            required(row, q, "log_slave_updates")?,
        )?,
        binlog_format: required(row, q, "binlog_format")?.to_string(),
        gtid: GtidState {
            mode: column(row, "gtid_mode").map(str::to_string),
            // MySQL prints long sets over several lines; one line reads better.
            executed: column(row, "gtid_executed").map(normalize_gtid_set),
            purged: column(row, "gtid_purged").map(normalize_gtid_set),
            ..GtidState::default()
        },
    })
}

pub fn parse_replica_status(row: &TextRow) -> Result<ReplicaStatus, ParseError> {
    let q = REPLICA_STATUS;
    let exec_source_log = match (
        non_empty(row, "Relay_Source_Log_File"),
        non_empty(row, "Exec_Source_Log_Pos"),
    ) {
        (Some(file), Some(pos)) => Some(BinlogCoordinates {
            file: file.to_string(),
            position: parse_u64(q, "Exec_Source_Log_Pos", pos)?,
        }),
        _ => None,
    };
    Ok(ReplicaStatus {
        source_host: required(row, q, "Source_Host")?.to_string(),
        source_port: parse_u64(q, "Source_Port", required(row, q, "Source_Port")?)? as u16,
        source_user: column(row, "Source_User").unwrap_or_default().to_string(),
        source_server_id: column(row, "Source_Server_Id")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        io_running: required(row, q, "Replica_IO_Running")?.to_string(),
        sql_running: parse_bool(
            q,
            "Replica_SQL_Running",
            required(row, q, "Replica_SQL_Running")?,
        )?,
        last_io_error: non_empty(row, "Last_IO_Error").map(str::to_string),
        last_sql_error: non_empty(row, "Last_SQL_Error").map(str::to_string),
        seconds_behind: non_empty(row, "Seconds_Behind_Source")
            .map(|v| parse_u64(q, "Seconds_Behind_Source", v))
            .transpose()?,
        using_gtid: column(row, "Auto_Position") == Some("1"),
        gtid_received: non_empty(row, "Retrieved_Gtid_Set").map(normalize_gtid_set),
        exec_source_log,
    })
}

/// The replicas registered with this server (8.0.22+; `SHOW SLAVE HOSTS` is gone in 8.4).
pub const REPLICA_HOSTS: &str = "SHOW REPLICAS";

pub fn parse_replica_host(row: &TextRow) -> Result<super::ReplicaHost, ParseError> {
    let q = REPLICA_HOSTS;
    Ok(super::ReplicaHost {
        server_id: parse_u64(q, "Server_Id", required(row, q, "Server_Id")?)? as u32,
        host: column(row, "Host").unwrap_or_default().trim().to_string(),
        port: parse_u64(q, "Port", required(row, q, "Port")?)? as u16,
    })
}

pub const START_REPLICA: &str = "START REPLICA";
pub const STOP_REPLICA: &str = "STOP REPLICA";
pub const RESET_REPLICA_ALL: &str = "RESET REPLICA ALL";
pub const GTID_POSITION: &str = "SELECT @@gtid_executed AS position";

/// Points the replica at a source with GTID auto-positioning. The public key
/// request lets caching_sha2_password accounts work without TLS.
pub fn change_source(source: &super::SourceAddress) -> String {
    format!(
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST={}, SOURCE_PORT={}, SOURCE_USER={}, \
         SOURCE_PASSWORD={}, SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1",
        quote_literal(&source.host),
        source.port,
        quote_literal(&source.user),
        quote_literal(&source.password)
    )
}

/// Makes a restored backup's GTID set the server's own, so auto-positioning
/// asks the source only for what comes after it. 8.4 renamed RESET MASTER.
pub fn set_start_position(gtid_set: &str, mysql_84: bool) -> Vec<String> {
    let reset = if mysql_84 {
        "RESET BINARY LOGS AND GTIDS"
    } else {
        "RESET MASTER"
    };
    vec![
        reset.to_string(),
        format!("SET GLOBAL gtid_purged = {}", quote_literal(gtid_set)),
    ]
}

/// Waits until `gtid_set` is executed: the result is 0 when it is, 1 on timeout.
pub fn wait_for_position(gtid_set: &str, timeout_seconds: u64) -> String {
    format!(
        "SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {timeout_seconds}) AS result",
        quote_literal(gtid_set)
    )
}

pub const STOP_IO_THREAD: &str = "STOP REPLICA IO_THREAD";
pub const START_IO_THREAD: &str = "START REPLICA IO_THREAD";
pub const CURRENT_POSITION: &str = "SELECT @@gtid_executed AS position";

pub const REPLICA_POSITION: &str = "SELECT @@gtid_executed AS position";

/// super_read_only stops SUPER users too; turning read_only off clears it.
pub fn set_read_only(read_only: bool) -> String {
    if read_only {
        "SET GLOBAL super_read_only = 1".to_string()
    } else {
        "SET GLOBAL read_only = 0".to_string()
    }
}

/// Auto-positioning starts after gtid_executed by itself.
pub const START_AT_OWN_POSITION: &[&str] = &[];

/// Auto-positioning needs nothing for a former primary to rejoin.
pub const REJOIN_AS_REPLICA: &[&str] = &[];

/// `uuid:1-5,\nuuid2:1-3` → `uuid:1-5,uuid2:1-3`.
fn normalize_gtid_set(text: &str) -> String {
    text.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{parse_binlog_status, Dialect};

    fn row(pairs: &[(&str, Option<&str>)]) -> TextRow {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn queries_use_each_versions_spelling() {
        assert_eq!(Dialect::Mysql80.binlog_status_query(), "SHOW MASTER STATUS");
        assert_eq!(
            Dialect::Mysql84.binlog_status_query(),
            "SHOW BINARY LOG STATUS"
        );
        assert_eq!(
            Dialect::Mysql84.replica_status_query(),
            "SHOW REPLICA STATUS"
        );
        assert!(!Dialect::Mysql84.replica_status_query().contains("SLAVE"));
        assert!(VARIABLES.contains("@@super_read_only"));
        assert!(VARIABLES.contains("@@gtid_executed"));
    }

    #[test]
    fn parses_mysql_variables() {
        let vars = parse_variables(&row(&[
            ("server_id", Some("2")),
            ("server_uuid", Some("3e11fa47-71ca-11e1-9e33-c80aa9429562")),
            ("read_only", Some("1")),
            ("super_read_only", Some("1")),
            ("log_bin", Some("1")),
            ("log_slave_updates", Some("1")),
            ("binlog_format", Some("ROW")),
            ("gtid_mode", Some("ON")),
            (
                "gtid_executed",
                Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2"),
            ),
            ("gtid_purged", Some("")),
        ]))
        .unwrap();
        assert_eq!(vars.server_id, 2);
        assert_eq!(vars.super_read_only, Some(true));
        assert_eq!(
            vars.gtid.executed.as_deref(),
            Some(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2"
            )
        );
        assert_eq!(vars.gtid.binlog_pos, None);
    }

    #[test]
    fn parses_mysql_replica_status_columns() {
        let status = parse_replica_status(&row(&[
            ("Source_Host", Some("10.0.0.1")),
            ("Source_Port", Some("3306")),
            ("Source_User", Some("repl")),
            ("Replica_IO_Running", Some("Yes")),
            ("Replica_SQL_Running", Some("Yes")),
            ("Last_IO_Error", Some("")),
            ("Last_SQL_Error", Some("")),
            ("Seconds_Behind_Source", Some("3")),
            ("Auto_Position", Some("1")),
            (
                "Retrieved_Gtid_Set",
                Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9"),
            ),
            ("Relay_Source_Log_File", Some("binlog.000002")),
            ("Exec_Source_Log_Pos", Some("1201")),
        ]))
        .unwrap();
        assert_eq!(status.source_host, "10.0.0.1");
        assert!(status.healthy());
        assert!(status.using_gtid);
        assert_eq!(status.seconds_behind, Some(3));
        assert_eq!(status.last_io_error, None);
        assert_eq!(status.exec_source_log.unwrap().position, 1201);
    }

    #[test]
    fn null_lag_means_unknown_and_stopped_threads_are_reported() {
        let status = parse_replica_status(&row(&[
            ("Source_Host", Some("db1")),
            ("Source_Port", Some("3306")),
            ("Replica_IO_Running", Some("Connecting")),
            ("Replica_SQL_Running", Some("No")),
            ("Last_IO_Error", Some("error connecting to source")),
            ("Seconds_Behind_Source", None),
            ("Auto_Position", Some("0")),
        ]))
        .unwrap();
        assert!(!status.io_running());
        assert!(!status.sql_running);
        assert_eq!(status.seconds_behind, None);
        assert!(!status.using_gtid);
        assert_eq!(
            status.last_io_error.as_deref(),
            Some("error connecting to source")
        );
    }

    #[test]
    fn binary_log_status_of_84_has_the_same_columns() {
        let coords = parse_binlog_status(&row(&[
            ("File", Some("binlog.000003")),
            ("Position", Some("157")),
            ("Executed_Gtid_Set", Some("")),
        ]))
        .unwrap();
        assert_eq!(coords.position, 157);
    }

    #[test]
    fn replication_control_uses_source_spellings() {
        let source = crate::sql::SourceAddress {
            host: "10.0.0.1".into(),
            port: 3306,
            user: "repl".into(),
            password: "it's".into(),
        };
        assert_eq!(
            change_source(&source),
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.1', SOURCE_PORT=3306, \
             SOURCE_USER='repl', SOURCE_PASSWORD='it''s', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1"
        );
        assert_eq!(
            set_start_position("uuid:1-5", false),
            vec!["RESET MASTER", "SET GLOBAL gtid_purged = 'uuid:1-5'"]
        );
        assert_eq!(
            set_start_position("uuid:1-5", true)[0],
            "RESET BINARY LOGS AND GTIDS"
        );
        assert_eq!(
            wait_for_position("uuid:1-5", 30),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('uuid:1-5', 30) AS result"
        );
        assert_eq!(Dialect::Mysql84.start_replica(), "START REPLICA");
        assert_eq!(
            Dialect::Mysql80.set_read_only(true),
            "SET GLOBAL super_read_only = 1"
        );
        assert_eq!(
            Dialect::Mysql80.set_read_only(false),
            "SET GLOBAL read_only = 0"
        );
        assert!(Dialect::Mysql84.rejoin_as_replica().is_empty());
        assert!(Dialect::Mysql84
            .sessions_to_kill_query()
            .contains("'Binlog Dump GTID'"));
        assert_eq!(Dialect::Mysql80.reset_replica_all(), "RESET REPLICA ALL");
    }

    #[test]
    fn replicas_are_listed_with_show_replicas() {
        assert_eq!(Dialect::Mysql80.replica_hosts_query(), "SHOW REPLICAS");
        assert_eq!(Dialect::Mysql84.replica_hosts_query(), "SHOW REPLICAS");
        let host = Dialect::Mysql84
            .parse_replica_host(&row(&[
                ("Server_Id", Some("3")),
                ("Host", Some("10.0.0.3")),
                ("Port", Some("3307")),
                ("Source_Id", Some("1")),
                ("Replica_UUID", Some("4e7b1c2a-0000-11ef-9e2c-0242ac120003")),
            ]))
            .unwrap();
        assert_eq!(
            host,
            crate::sql::ReplicaHost {
                server_id: 3,
                host: "10.0.0.3".into(),
                port: 3307
            }
        );
        // No report_host on the replica: an empty Host, still a valid row.
        let anonymous = Dialect::Mysql80
            .parse_replica_host(&row(&[
                ("Server_Id", Some("4")),
                ("Host", Some("")),
                ("Port", Some("3306")),
            ]))
            .unwrap();
        assert!(anonymous.host.is_empty());
    }

    #[test]
    fn missing_column_is_a_clear_error() {
        let err = parse_replica_status(&row(&[("Source_Host", Some("x"))])).unwrap_err();
        assert!(err.to_string().contains("Source_Port"), "{err}");
    }
}
