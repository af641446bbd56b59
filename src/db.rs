//! Talking to a MySQL/MariaDB server over the MySQL protocol.
//!
//! One place builds connections (timeouts, no socket switching) and turns rows
//! into name → text maps, so that flavor-specific parsing is plain functions
//! over maps that unit tests can feed without a server.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Unix socket path; when set, host and port are ignored.
    pub socket: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("connection to {address} timed out after {timeout:?}")]
    ConnectTimeout { address: String, timeout: Duration },
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("query on {address} failed: {query}: {source}")]
    Query {
        address: String,
        query: String,
        #[source]
        source: mysql_async::Error,
    },
}

/// One result row, column name → value as text (`None` for SQL NULL).
pub type TextRow = BTreeMap<String, Option<String>>;

impl Endpoint {
    pub fn address(&self) -> String {
        match &self.socket {
            Some(socket) => socket.clone(),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    fn opts(&self) -> OptsBuilder {
        let builder = OptsBuilder::default()
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            // Never silently move from TCP to a local socket: on a shared test
            // machine the socket may belong to another server.
            .prefer_socket(false)
            .stmt_cache_size(0)
            .setup(vec![BACKSLASH_ESCAPES]);
        match &self.socket {
            Some(socket) => builder.socket(Some(socket.clone())),
            None => builder
                .ip_or_hostname(self.host.clone())
                .tcp_port(self.port),
        }
    }
}

/// An open connection that remembers where it goes, for error messages.
pub struct Connection {
    pub conn: Conn,
    pub address: String,
}

/// Connects, giving up after `timeout` (covers TCP connect and handshake).
pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Connection, DbError> {
    let address = endpoint.address();
    match tokio::time::timeout(timeout, Conn::new(endpoint.opts())).await {
        Err(_) => Err(DbError::ConnectTimeout { address, timeout }),
        Ok(Err(source)) => Err(DbError::Connect { address, source }),
        Ok(Ok(conn)) => Ok(Connection { conn, address }),
    }
}

impl Connection {
    /// Runs a statement that returns no rows.
    pub async fn execute(&mut self, query: &str) -> Result<(), DbError> {
        self.conn
            .query_drop(query)
            .await
            .map_err(|source| self.query_error(query, source))
    }

    /// Runs a query and returns every row as a [`TextRow`].
    pub async fn rows(&mut self, query: &str) -> Result<Vec<TextRow>, DbError> {
        let rows: Vec<Row> = self
            .conn
            .query(query)
            .await
            .map_err(|source| self.query_error(query, source))?;
        Ok(rows.into_iter().map(text_row).collect())
    }

    /// Runs a query expected to return at most one row.
    pub async fn first_row(&mut self, query: &str) -> Result<Option<TextRow>, DbError> {
        Ok(self.rows(query).await?.into_iter().next())
    }

    /// Closes the connection politely; errors on close are of no interest.
    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }

    fn query_error(&self, query: &str, source: mysql_async::Error) -> DbError {
        DbError::Query {
            address: self.address.clone(),
            query: query.to_string(),
            source,
        }
    }
}

fn text_row(row: Row) -> TextRow {
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let values = row.unwrap();
    names
        .into_iter()
        .zip(values.into_iter().map(value_text))
        .collect()
}

fn value_text(value: Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

/// Run on every connection: takes `NO_BACKSLASH_ESCAPES` out of the
/// session's sql_mode, so that the session reads `\` the way
/// [`quote_literal`] writes it whatever the server's global sql_mode is
/// (with the mode on, `'a\\b'` would be read as two backslashes and a
/// password given to CHANGE MASTER would silently change).
const BACKSLASH_ESCAPES: &str = "SET SESSION sql_mode = \
     REPLACE(REPLACE(REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES,', ''), \
     ',NO_BACKSLASH_ESCAPES', ''), 'NO_BACKSLASH_ESCAPES', '')";

/// Quotes a string literal for SQL: `'` and `\` escaped, as MySQL and MariaDB
/// read them in every session [`connect`] opens (see [`BACKSLASH_ESCAPES`]).
pub fn quote_literal(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for ch in text.chars() {
        match ch {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            '\0' => quoted.push_str("\\0"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_literals_with_quotes_and_backslashes() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b"), r"'a\\b'");
        assert_eq!(quote_literal("é; \"x\""), "'é; \"x\"'");
        assert_eq!(quote_literal("r'e\"p\\l; ü\0"), "'r''e\"p\\\\l; ü\\0'");
    }

    /// Reads one string literal at the start of `sql` as the server's lexer
    /// does (backslash escapes on): its value and the text after it.
    fn read_literal(sql: &str) -> Option<(String, &str)> {
        let mut chars = sql.char_indices();
        if chars.next()?.1 != '\'' {
            return None;
        }
        let mut value = String::new();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '\\' => match chars.next()?.1 {
                    '0' => value.push('\0'),
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '\'' if sql[i + 1..].starts_with('\'') => {
                    chars.next();
                    value.push('\'');
                }
                '\'' => return Some((value, &sql[i + 1..])),
                other => value.push(other),
            }
        }
        None
    }

    proptest::proptest! {
        /// Whatever the text, its literal reads back as exactly that text
        /// and ends where the quoting ends: nothing can leak into the SQL.
        #[test]
        fn every_text_survives_quoting(text in "(.|['\"\\\\;\0 ü])*") {
            let quoted = quote_literal(&text);
            let statement = format!("{quoted}, MASTER_USE_GTID=slave_pos");
            let (value, rest) = read_literal(&statement).expect("a closed literal");
            proptest::prop_assert_eq!(value, text);
            proptest::prop_assert_eq!(rest, ", MASTER_USE_GTID=slave_pos");
        }
    }
}
