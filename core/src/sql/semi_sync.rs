//! Semi-synchronous replication: reading its variables and status, and the
//! statements that configure it, per flavor.
//!
//! MariaDB 10.3+ has it built in (`rpl_semi_sync_master_*`,
//! `rpl_semi_sync_slave_*`). MySQL has it as plugins: `rpl_semi_sync_source`
//! / `rpl_semi_sync_replica` (8.0.26+, variables `rpl_semi_sync_source_*`,
//! `rpl_semi_sync_replica_*`) or the older `rpl_semi_sync_master` /
//! `rpl_semi_sync_slave`. Both MySQL spellings are read into the same
//! [`SemiSync`] fields; flipover writes the 8.0.26+ spelling. MySQL's text is
//! covered by the unit tests only.

use super::TextRow;
use super::{parse_bool, parse_u64, Dialect, ParseError};
use crate::facts::SemiSync;

/// Every semi-sync variable (columns `Variable_name`, `Value`).
pub const VARIABLES: &str = "SHOW GLOBAL VARIABLES LIKE 'rpl\\_semi\\_sync\\_%'";

/// Every semi-sync status counter (columns `Variable_name`, `Value`).
pub const STATUS: &str = "SHOW GLOBAL STATUS LIKE 'Rpl\\_semi\\_sync\\_%'";

/// Reads the answers of [`VARIABLES`] and [`STATUS`]. `None` when the server
/// has no semi-sync variables at all (MySQL without the plugins).
pub fn parse(variables: &[TextRow], status: &[TextRow]) -> Result<Option<SemiSync>, ParseError> {
    let named = |rows: &[TextRow]| -> Vec<(String, String)> {
        rows.iter()
            .filter_map(|row| {
                let name = super::column(row, "Variable_name")?;
                let value = super::column(row, "Value").unwrap_or_default();
                Some((normalize(name), value.to_string()))
            })
            .collect()
    };
    let variables = named(variables);
    if variables.is_empty() {
        return Ok(None);
    }
    let status = named(status);
    let find = |list: &[(String, String)], name: &str| {
        list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    };
    let flag = |list: &[(String, String)], query, name: &str| -> Result<bool, ParseError> {
        find(list, name).map_or(Ok(false), |v| parse_bool(query, name, &v))
    };
    Ok(Some(SemiSync {
        master_enabled: flag(&variables, VARIABLES, "rpl_semi_sync_master_enabled")?,
        slave_enabled: flag(&variables, VARIABLES, "rpl_semi_sync_slave_enabled")?,
        master_timeout_ms: find(&variables, "rpl_semi_sync_master_timeout")
            .map(|v| parse_u64(VARIABLES, "rpl_semi_sync_master_timeout", &v))
            .transpose()?,
        master_wait_point: find(&variables, "rpl_semi_sync_master_wait_point")
            .map(|v| v.to_ascii_uppercase()),
        master_wait_no_slave: find(&variables, "rpl_semi_sync_master_wait_no_slave")
            .map(|v| parse_bool(VARIABLES, "rpl_semi_sync_master_wait_no_slave", &v))
            .transpose()?,
        master_status: flag(&status, STATUS, "rpl_semi_sync_master_status")?,
        master_clients: find(&status, "rpl_semi_sync_master_clients")
            .map(|v| parse_u64(STATUS, "Rpl_semi_sync_master_clients", &v))
            .transpose()?
            .unwrap_or(0),
        slave_status: flag(&status, STATUS, "rpl_semi_sync_slave_status")?,
    }))
}

/// MySQL's spellings in MariaDB's words, lower case:
/// `Rpl_semi_sync_source_clients` → `rpl_semi_sync_master_clients`.
fn normalize(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    let name = if let Some(rest) = name.strip_prefix("rpl_semi_sync_source_") {
        format!("rpl_semi_sync_master_{rest}")
    } else if let Some(rest) = name.strip_prefix("rpl_semi_sync_replica_") {
        format!("rpl_semi_sync_slave_{rest}")
    } else {
        name
    };
    name.replace("wait_no_replica", "wait_no_slave")
}

/// What the primary of a semi-sync cluster runs: lossless wait point, the
/// timeout, waiting even with no replica connected, then on.
pub fn enable_primary(dialect: Dialect, timeout_ms: u64) -> Vec<String> {
    let (side, no_replica) = primary_spelling(dialect);
    vec![
        format!("SET GLOBAL rpl_semi_sync_{side}_wait_point = 'AFTER_SYNC'"),
        format!("SET GLOBAL rpl_semi_sync_{side}_timeout = {timeout_ms}"),
        format!("SET GLOBAL rpl_semi_sync_{side}_{no_replica} = ON"),
        format!("SET GLOBAL rpl_semi_sync_{side}_enabled = ON"),
    ]
}

/// Turns a server's primary side on or off.
pub fn set_primary_side(dialect: Dialect, on: bool) -> String {
    let (side, _) = primary_spelling(dialect);
    format!(
        "SET GLOBAL rpl_semi_sync_{side}_enabled = {}",
        if on { "ON" } else { "OFF" }
    )
}

/// Turns a server's replica side on (it takes effect when the IO thread starts).
pub fn set_replica_side(dialect: Dialect, on: bool) -> String {
    let side = match dialect {
        Dialect::Mariadb => "slave",
        Dialect::Mysql80 | Dialect::Mysql84 => "replica",
    };
    format!(
        "SET GLOBAL rpl_semi_sync_{side}_enabled = {}",
        if on { "ON" } else { "OFF" }
    )
}

fn primary_spelling(dialect: Dialect) -> (&'static str, &'static str) {
    match dialect {
        Dialect::Mariadb => ("master", "wait_no_slave"),
        Dialect::Mysql80 | Dialect::Mysql84 => ("source", "wait_no_replica"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<TextRow> {
        pairs
            .iter()
            .map(|(name, value)| {
                [
                    ("Variable_name".to_string(), Some(name.to_string())),
                    ("Value".to_string(), Some(value.to_string())),
                ]
                .into_iter()
                .collect()
            })
            .collect()
    }

    #[test]
    fn reads_mariadb_semi_sync() {
        let variables = rows(&[
            ("rpl_semi_sync_master_enabled", "ON"),
            ("rpl_semi_sync_master_timeout", "10000"),
            ("rpl_semi_sync_master_trace_level", "32"),
            ("rpl_semi_sync_master_wait_no_slave", "ON"),
            ("rpl_semi_sync_master_wait_point", "AFTER_SYNC"),
            ("rpl_semi_sync_slave_delay_master", "OFF"),
            ("rpl_semi_sync_slave_enabled", "OFF"),
        ]);
        let status = rows(&[
            ("Rpl_semi_sync_master_clients", "2"),
            ("Rpl_semi_sync_master_status", "ON"),
            ("Rpl_semi_sync_slave_status", "OFF"),
        ]);
        assert_eq!(
            parse(&variables, &status).unwrap(),
            Some(SemiSync {
                master_enabled: true,
                slave_enabled: false,
                master_timeout_ms: Some(10_000),
                master_wait_point: Some("AFTER_SYNC".into()),
                master_wait_no_slave: Some(true),
                master_status: true,
                master_clients: 2,
                slave_status: false,
            })
        );
    }

    #[test]
    fn reads_mysql_source_and_replica_spellings() {
        let variables = rows(&[
            ("rpl_semi_sync_replica_enabled", "ON"),
            ("rpl_semi_sync_source_enabled", "OFF"),
            ("rpl_semi_sync_source_timeout", "5000"),
            ("rpl_semi_sync_source_wait_no_replica", "OFF"),
            ("rpl_semi_sync_source_wait_point", "after_sync"),
        ]);
        let status = rows(&[("Rpl_semi_sync_replica_status", "ON")]);
        let semi_sync = parse(&variables, &status).unwrap().unwrap();
        assert!(semi_sync.slave_enabled && semi_sync.slave_status);
        assert!(!semi_sync.master_enabled && !semi_sync.master_status);
        assert_eq!(semi_sync.master_timeout_ms, Some(5000));
        assert_eq!(semi_sync.master_wait_point.as_deref(), Some("AFTER_SYNC"));
        assert_eq!(semi_sync.master_wait_no_slave, Some(false));
        assert_eq!(semi_sync.master_clients, 0);
    }

    #[test]
    fn no_variables_means_no_semi_sync() {
        assert_eq!(parse(&[], &[]).unwrap(), None);
    }

    #[test]
    fn rejects_a_non_boolean() {
        let variables = rows(&[("rpl_semi_sync_master_enabled", "maybe")]);
        assert!(parse(&variables, &[]).is_err());
    }

    #[test]
    fn statements_use_each_flavors_spelling() {
        assert_eq!(
            enable_primary(Dialect::Mariadb, 10_000),
            [
                "SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'",
                "SET GLOBAL rpl_semi_sync_master_timeout = 10000",
                "SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON",
                "SET GLOBAL rpl_semi_sync_master_enabled = ON",
            ]
        );
        assert_eq!(
            enable_primary(Dialect::Mysql84, 3000),
            [
                "SET GLOBAL rpl_semi_sync_source_wait_point = 'AFTER_SYNC'",
                "SET GLOBAL rpl_semi_sync_source_timeout = 3000",
                "SET GLOBAL rpl_semi_sync_source_wait_no_replica = ON",
                "SET GLOBAL rpl_semi_sync_source_enabled = ON",
            ]
        );
        assert_eq!(
            set_primary_side(Dialect::Mariadb, false),
            "SET GLOBAL rpl_semi_sync_master_enabled = OFF"
        );
        assert_eq!(
            set_replica_side(Dialect::Mariadb, true),
            "SET GLOBAL rpl_semi_sync_slave_enabled = ON"
        );
        assert_eq!(
            set_replica_side(Dialect::Mysql80, true),
            "SET GLOBAL rpl_semi_sync_replica_enabled = ON"
        );
    }
}
