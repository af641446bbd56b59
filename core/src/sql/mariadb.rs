//! MariaDB 10.5+ (tested against 10.11 in the integration suite).

use super::{column, non_empty, parse_bool, parse_u64, required, ParseError, Variables};
use super::{quote_literal, TextRow};
use crate::facts::{BinlogCoordinates, GtidState, ReplicaStatus};

pub const VARIABLES: &str = "SELECT @@server_id AS server_id, @@read_only AS read_only, \
     @@log_bin AS log_bin, @@log_slave_updates AS log_slave_updates, \
     @@binlog_format AS binlog_format, @@gtid_binlog_pos AS gtid_binlog_pos, \
     @@gtid_slave_pos AS gtid_slave_pos, @@gtid_current_pos AS gtid_current_pos, \
     @@gtid_binlog_state AS gtid_binlog_state, @@gtid_strict_mode AS gtid_strict_mode";

pub const BINLOG_STATUS: &str = "SHOW MASTER STATUS";

pub const REPLICA_STATUS: &str = "SHOW SLAVE STATUS";

pub fn parse_variables(row: &TextRow) -> Result<Variables, ParseError> {
    let q = VARIABLES;
    Ok(Variables {
        server_id: parse_u64(q, "server_id", required(row, q, "server_id")?)? as u32,
        server_uuid: None,
        read_only: parse_bool(q, "read_only", required(row, q, "read_only")?)?,
        super_read_only: None,
        log_bin: parse_bool(q, "log_bin", required(row, q, "log_bin")?)?,
        log_slave_updates: parse_bool(
            q,
            "log_slave_updates",
            required(row, q, "log_slave_updates")?,
        )?,
        binlog_format: required(row, q, "binlog_format")?.to_string(),
        gtid: GtidState {
            binlog_pos: column(row, "gtid_binlog_pos").map(str::to_string),
            slave_pos: column(row, "gtid_slave_pos").map(str::to_string),
            current_pos: column(row, "gtid_current_pos").map(str::to_string),
            binlog_state: column(row, "gtid_binlog_state").map(str::to_string),
            strict_mode: column(row, "gtid_strict_mode")
                .map(|v| parse_bool(q, "gtid_strict_mode", v))
                .transpose()?,
            ..GtidState::default()
        },
    })
}

pub fn parse_replica_status(row: &TextRow) -> Result<ReplicaStatus, ParseError> {
    let q = REPLICA_STATUS;
    let exec_source_log = match (
        non_empty(row, "Relay_Master_Log_File"),
        non_empty(row, "Exec_Master_Log_Pos"),
    ) {
        (Some(file), Some(pos)) => Some(BinlogCoordinates {
            file: file.to_string(),
            position: parse_u64(q, "Exec_Master_Log_Pos", pos)?,
        }),
        _ => None,
    };
    Ok(ReplicaStatus {
        source_host: required(row, q, "Master_Host")?.to_string(),
        source_port: parse_u64(q, "Master_Port", required(row, q, "Master_Port")?)? as u16,
        source_user: column(row, "Master_User").unwrap_or_default().to_string(),
        source_server_id: column(row, "Master_Server_Id")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        io_running: required(row, q, "Slave_IO_Running")?.to_string(),
        sql_running: parse_bool(
            q,
            "Slave_SQL_Running",
            required(row, q, "Slave_SQL_Running")?,
        )?,
        last_io_error: non_empty(row, "Last_IO_Error").map(str::to_string),
        last_sql_error: non_empty(row, "Last_SQL_Error").map(str::to_string),
        seconds_behind: non_empty(row, "Seconds_Behind_Master")
            .map(|v| parse_u64(q, "Seconds_Behind_Master", v))
            .transpose()?,
        using_gtid: !column(row, "Using_Gtid")
            .unwrap_or("No")
            .eq_ignore_ascii_case("no"),
        gtid_received: non_empty(row, "Gtid_IO_Pos").map(str::to_string),
        exec_source_log,
    })
}

/// The replicas registered with this server (as they report themselves).
pub const REPLICA_HOSTS: &str = "SHOW SLAVE HOSTS";

pub fn parse_replica_host(row: &TextRow) -> Result<super::ReplicaHost, ParseError> {
    let q = REPLICA_HOSTS;
    Ok(super::ReplicaHost {
        server_id: parse_u64(q, "Server_id", required(row, q, "Server_id")?)? as u32,
        host: column(row, "Host").unwrap_or_default().trim().to_string(),
        port: parse_u64(q, "Port", required(row, q, "Port")?)? as u16,
    })
}

pub const START_REPLICA: &str = "START SLAVE";
pub const STOP_REPLICA: &str = "STOP SLAVE";
pub const RESET_REPLICA_ALL: &str = "RESET SLAVE ALL";
/// Where this server's binlog is, as a GTID position (what a replica waits for).
pub const GTID_POSITION: &str = "SELECT @@gtid_binlog_pos AS position";

/// Points the replica at a source, positioned by GTID (`gtid_slave_pos`).
pub fn change_source(source: &super::SourceAddress) -> String {
    format!(
        "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, MASTER_PASSWORD={}, \
         MASTER_USE_GTID=slave_pos",
        quote_literal(&source.host),
        source.port,
        quote_literal(&source.user),
        quote_literal(&source.password)
    )
}

/// Makes a restored backup start replicating right after the backup's GTID.
pub fn set_start_position(gtid: &str) -> Vec<String> {
    vec![format!(
        "SET GLOBAL gtid_slave_pos = {}",
        quote_literal(gtid)
    )]
}

/// Waits until `gtid` is applied: the result is 0 when it is, -1 on timeout.
pub fn wait_for_position(gtid: &str, timeout_seconds: u64) -> String {
    format!(
        "SELECT MASTER_GTID_WAIT({}, {timeout_seconds}) AS result",
        quote_literal(gtid)
    )
}

pub const STOP_IO_THREAD: &str = "STOP SLAVE IO_THREAD";
pub const START_IO_THREAD: &str = "START SLAVE IO_THREAD";
/// Everything this server has applied or written, per domain.
pub const CURRENT_POSITION: &str = "SELECT @@gtid_current_pos AS position";

/// Where this server is as a replica (what a sibling must reach to serve it).
pub const REPLICA_POSITION: &str = "SELECT @@gtid_slave_pos AS position";

/// Read-only as a replica is: on MariaDB nothing stronger exists (users with
/// READ ONLY ADMIN still write, which is why a fence also kills sessions).
pub fn set_read_only(read_only: bool) -> String {
    format!("SET GLOBAL read_only = {}", if read_only { 1 } else { 0 })
}

/// Lets a server replicate from after everything it holds (what it wrote
/// and what it applied).
pub const START_AT_OWN_POSITION: &[&str] = &["SET GLOBAL gtid_slave_pos = @@gtid_current_pos"];

/// Lets a former primary replicate from where its own binlog ends.
pub const REJOIN_AS_REPLICA: &[&str] = &["SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos"];

pub const BINARY_LOGS: &str = "SHOW BINARY LOGS";

/// The first events of a binlog file: its Gtid_list event holds the GTID
/// state from before the file, and the first transactions show where the
/// domains it lacks begin.
pub fn binlog_head_events(file: &str) -> String {
    format!("SHOW BINLOG EVENTS IN {} LIMIT 32", quote_literal(file))
}

/// The GTID state at the start of the oldest binlog, from its first events:
/// its Gtid_list, plus, for a domain the list lacks whose first transaction
/// here is not its first ever (seq above 1), the GTID just before it. A
/// server built from a backup writes an empty Gtid_list (its binlog state
/// starts empty) although the history before the backup is not in its
/// binlogs; a replica asking for that history must be told it is not here.
/// Domains whose first transaction is further in than these events are
/// taken to start with the file.
pub fn binlog_start_of(events: &[TextRow]) -> Option<String> {
    let list = gtid_list_of(events)?;
    let mut start = crate::gtid::parse_list(&list);
    for row in events {
        if column(row, "Event_type") != Some("Gtid") {
            continue;
        }
        let Some(first) = column(row, "Info")
            .and_then(|info| info.split_whitespace().find(|w| w.contains('-')))
            .and_then(|word| crate::gtid::parse_list(word).into_iter().next())
        else {
            continue;
        };
        if first.seq > 1 && !start.iter().any(|g| g.domain == first.domain) {
            start.push(crate::gtid::MariadbGtid {
                seq: first.seq - 1,
                ..first
            });
        }
    }
    Some(
        start
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Reads the Gtid_list event's `[0-1-5,1-2-3]` from a binlog's first events.
pub fn gtid_list_of(events: &[TextRow]) -> Option<String> {
    events
        .iter()
        .find(|row| column(row, "Event_type") == Some("Gtid_list"))
        .and_then(|row| column(row, "Info"))
        .map(|info| {
            info.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_gtid_list_event() {
        let row = |t: &str, info: &str| -> TextRow {
            [
                ("Event_type".to_string(), Some(t.to_string())),
                ("Info".to_string(), Some(info.to_string())),
            ]
            .into_iter()
            .collect()
        };
        let events = vec![
            row("Format_desc", "Server ver: 10.11.19-MariaDB, Binlog ver: 4"),
            row("Gtid_list", "[0-1-5,1-2-9]"),
            row("Binlog_checkpoint", "mysql-bin.000002"),
        ];
        assert_eq!(gtid_list_of(&events).as_deref(), Some("0-1-5,1-2-9"));
        assert_eq!(gtid_list_of(&events[..1]), None);
        assert_eq!(gtid_list_of(&[row("Gtid_list", "[]")]).as_deref(), Some(""));
    }

    #[test]
    fn a_binlog_that_starts_mid_history_says_so() {
        let row = |t: &str, info: &str| -> TextRow {
            [
                ("Event_type".to_string(), Some(t.to_string())),
                ("Info".to_string(), Some(info.to_string())),
            ]
            .into_iter()
            .collect()
        };
        // A clone's first binlog, as MariaDB 10.11 writes it: an empty
        // Gtid_list, then the first transaction it replicated.
        let clone = vec![
            row(
                "Format_desc",
                "Server ver: 10.11.19-MariaDB-log, Binlog ver: 4",
            ),
            row("Gtid_list", "[]"),
            row("Binlog_checkpoint", "mysql-bin.000001"),
            row("Gtid", "BEGIN GTID 0-1-6"),
            row("Xid", "COMMIT /* xid=18 */"),
            row("Gtid", "GTID 0-1-7"),
            row("Gtid", "BEGIN GTID 1-3-1 cid=5"),
        ];
        assert_eq!(binlog_start_of(&clone).as_deref(), Some("0-1-5"));
        // A server's very first binlog starts at the beginning.
        let fresh = vec![row("Gtid_list", "[]"), row("Gtid", "GTID 0-1-1")];
        assert_eq!(binlog_start_of(&fresh).as_deref(), Some(""));
        // The Gtid_list wins for the domains it names.
        let purged = vec![
            row("Gtid_list", "[0-1-40]"),
            row("Gtid", "BEGIN GTID 0-1-41"),
        ];
        assert_eq!(binlog_start_of(&purged).as_deref(), Some("0-1-40"));
        assert_eq!(binlog_start_of(&[]), None);
    }
}
