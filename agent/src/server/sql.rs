//! Every SQL statement the agent runs on its own server, in one place.
//!
//! flipover keeps its SQL under `src/sql/`, but the agent is a crate of its
//! own that flipover links, not the other way round: it cannot use that
//! module, so its few statements live here instead of beside the code that
//! runs them. The fence's statements follow `src/sql/`'s
//! (`set_read_only`, `sessions_to_kill_query`); keep them alike.

/// The cheapest question a server must answer.
pub const SELECT_ONE: &str = "SELECT 1";

/// Which server it is (columns `version`, `comment`).
pub const VERSION: &str = "SELECT @@version AS version, @@version_comment AS comment";

/// The replica status: MariaDB 10.5+ and MySQL 8.0.22+ know REPLICA, older
/// servers only SLAVE.
pub const REPLICA_STATUS: &str = "SHOW REPLICA STATUS";
pub const SLAVE_STATUS: &str = "SHOW SLAVE STATUS";

/// Sessions a fence kills (column `id`): all but replication dump threads
/// (replicas keep receiving what was committed), the server's own threads,
/// and the asking session.
pub const SESSIONS_TO_KILL: &str = "SELECT id FROM information_schema.processlist \
     WHERE id <> CONNECTION_ID() \
     AND command NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon') \
     AND user NOT IN ('system user', 'event_scheduler')";

/// Ends one session; `id` is a number, never text from a request.
pub fn kill_connection(id: u64) -> String {
    format!("KILL CONNECTION {id}")
}

/// The two server families the fence tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Mariadb,
    Mysql,
}

impl Flavor {
    /// From `@@version` and `@@version_comment` (or a `--version` line).
    pub fn detect(version: &str, comment: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb")
            || comment.to_ascii_lowercase().contains("mariadb")
        {
            Flavor::Mariadb
        } else {
            Flavor::Mysql
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flavor::Mariadb => "mariadb",
            Flavor::Mysql => "mysql",
        }
    }

    /// Refuses writes: MySQL's `super_read_only` stops SUPER users too
    /// (and sets `read_only`); MariaDB has only `read_only`, which users
    /// with READ ONLY ADMIN (root) still pass, so the fence also kills
    /// sessions.
    pub fn set_read_only(self) -> &'static str {
        match self {
            Flavor::Mariadb => "SET GLOBAL read_only = 1",
            Flavor::Mysql => "SET GLOBAL super_read_only = 1",
        }
    }

    /// Reads the setting back (columns `read_only`, and `super_read_only`
    /// on MySQL).
    pub fn read_only_state(self) -> &'static str {
        match self {
            Flavor::Mariadb => "SELECT @@read_only AS read_only",
            Flavor::Mysql => {
                "SELECT @@read_only AS read_only, @@super_read_only AS super_read_only"
            }
        }
    }

    /// mysqld's command-line options that start it read-only.
    pub fn read_only_options(self) -> &'static [&'static str] {
        match self {
            Flavor::Mariadb => &["--read-only"],
            Flavor::Mysql => &["--read-only", "--super-read-only"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_from_versions() {
        assert_eq!(
            Flavor::detect("10.11.19-MariaDB-0+deb12u1", "Debian 12"),
            Flavor::Mariadb
        );
        assert_eq!(
            Flavor::detect("5.5.5-10.11.6", "mariadb.org binary distribution"),
            Flavor::Mariadb
        );
        assert_eq!(Flavor::detect("9.7.4", "(Debian)"), Flavor::Mysql);
        assert_eq!(Flavor::detect("8.0.36", "MySQL Community"), Flavor::Mysql);
    }

    #[test]
    fn fence_statements_per_flavor() {
        assert_eq!(Flavor::Mariadb.set_read_only(), "SET GLOBAL read_only = 1");
        assert_eq!(
            Flavor::Mysql.set_read_only(),
            "SET GLOBAL super_read_only = 1"
        );
        assert!(Flavor::Mysql
            .read_only_state()
            .contains("@@super_read_only"));
        assert!(!Flavor::Mariadb.read_only_state().contains("super"));
        assert_eq!(kill_connection(42), "KILL CONNECTION 42");
        assert!(SESSIONS_TO_KILL.contains("CONNECTION_ID()"));
    }
}
