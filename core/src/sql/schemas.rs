//! What the user schemas hold: their tables, views, routines and events,
//! counted per schema (the same text on MariaDB and MySQL). A schema that
//! holds none of them holds no data: `mariadb-install-db` leaves an empty
//! `test` schema on every fresh server.

use std::collections::BTreeMap;

use super::{column, TextRow};
use crate::facts::SchemaObjects;

/// The schemas that are the server's own, or flipover's (the journal), in
/// the SQL of the queries below.
macro_rules! not_user_schema {
    ($column:literal) => {
        concat!(
            $column,
            " NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', 'flipover')"
        )
    };
}

/// Tables and views per user schema. Sequences and other table types count
/// as tables.
pub const TABLES: &str = concat!(
    "SELECT table_schema AS name, SUM(table_type = 'VIEW') AS views, \
     SUM(table_type <> 'VIEW') AS tables FROM information_schema.tables WHERE ",
    not_user_schema!("table_schema"),
    " GROUP BY table_schema"
);

/// Stored procedures and functions per user schema.
pub const ROUTINES: &str = concat!(
    "SELECT routine_schema AS name, COUNT(*) AS objects FROM information_schema.routines WHERE ",
    not_user_schema!("routine_schema"),
    " GROUP BY routine_schema"
);

/// Events per user schema.
pub const EVENTS: &str = concat!(
    "SELECT event_schema AS name, COUNT(*) AS objects FROM information_schema.events WHERE ",
    not_user_schema!("event_schema"),
    " GROUP BY event_schema"
);

/// The counts of every schema in `schemas` (those without a row hold
/// nothing) from the rows of [`TABLES`], [`ROUTINES`] and [`EVENTS`].
pub fn count(
    schemas: &[String],
    tables: &[TextRow],
    routines: &[TextRow],
    events: &[TextRow],
) -> BTreeMap<String, SchemaObjects> {
    let mut objects: BTreeMap<String, SchemaObjects> = schemas
        .iter()
        .map(|name| (name.clone(), SchemaObjects::default()))
        .collect();
    let number = |row: &TextRow, name: &str| -> u64 {
        column(row, name)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    let mut add = |rows: &[TextRow], apply: &dyn Fn(&mut SchemaObjects, &TextRow)| {
        for row in rows {
            if let Some(name) = column(row, "name") {
                apply(objects.entry(name.to_string()).or_default(), row);
            }
        }
    };
    add(tables, &|o, row| {
        o.tables += number(row, "tables");
        o.views += number(row, "views");
    });
    add(routines, &|o, row| o.routines += number(row, "objects"));
    add(events, &|o, row| o.events += number(row, "objects"));
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> TextRow {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    #[test]
    fn counts_per_schema_and_empty_ones_stay_empty() {
        let schemas = vec!["shop".to_string(), "test".to_string(), "logic".to_string()];
        let objects = count(
            &schemas,
            &[row(&[("name", "shop"), ("tables", "2"), ("views", "1")])],
            &[row(&[("name", "logic"), ("objects", "3")])],
            &[row(&[("name", "shop"), ("objects", "1")])],
        );
        assert_eq!(
            objects["shop"],
            SchemaObjects {
                tables: 2,
                views: 1,
                routines: 0,
                events: 1
            }
        );
        assert!(objects["test"].is_empty());
        assert_eq!(objects["logic"].routines, 3);
        assert!(!objects["logic"].is_empty());
    }
}
