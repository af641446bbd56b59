//! Talking to a MySQL/MariaDB server over the MySQL protocol.
//!
//! One place builds connections (timeouts, no socket switching) and turns rows
//! into name → text maps, so that flavor-specific parsing is plain functions
//! over maps that unit tests can feed without a server.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

use crate::sql;
pub use crate::sql::quote_literal;

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
    /// The server did not answer within the statement's deadline (its host
    /// or link down, or the statement stuck): the connection is given up.
    #[error("{address} did not answer within {} s: {query}", timeout.as_secs_f64())]
    Timeout {
        address: String,
        query: String,
        timeout: Duration,
    },
    /// A statement timed out on this connection before: what the server did
    /// with it is unknown, so the connection is not used again.
    #[error("the connection to {address} was given up after a statement timed out")]
    GivenUp { address: String },
}

/// How long a statement may take unless it says otherwise
/// ([`Connection::rows_within`]): long enough for any statement that
/// returns at once on a healthy server, short enough that a silent host
/// costs seconds, not TCP's minutes.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::sql::TextRow;

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
            .setup(vec![sql::SESSION_SETUP]);
        match &self.socket {
            Some(socket) => builder.socket(Some(socket.clone())),
            None => builder
                .ip_or_hostname(self.host.clone())
                .tcp_port(self.port),
        }
    }
}

/// An open connection that remembers where it goes, for error messages.
/// Every statement has a deadline.
pub struct Connection {
    conn: Conn,
    pub address: String,
    statement_timeout: Duration,
    given_up: bool,
}

/// Connects, giving up after `timeout` (covers TCP connect and handshake).
pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Connection, DbError> {
    let address = endpoint.address();
    match tokio::time::timeout(timeout, Conn::new(endpoint.opts())).await {
        Err(_) => Err(DbError::ConnectTimeout { address, timeout }),
        Ok(Err(source)) => Err(DbError::Connect { address, source }),
        Ok(Ok(conn)) => Ok(Connection {
            conn,
            address,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            given_up: false,
        }),
    }
}

impl Connection {
    /// The deadline of every later statement that names none.
    pub fn set_statement_timeout(&mut self, timeout: Duration) {
        self.statement_timeout = timeout;
    }

    /// Runs a statement that returns no rows.
    pub async fn execute(&mut self, query: &str) -> Result<(), DbError> {
        self.execute_within(query, self.statement_timeout).await
    }

    /// Runs a statement that returns no rows, giving up after `limit`.
    pub async fn execute_within(&mut self, query: &str, limit: Duration) -> Result<(), DbError> {
        self.check_usable()?;
        match tokio::time::timeout(limit, self.conn.query_drop(query)).await {
            Ok(result) => result.map_err(|source| self.query_error(query, source)),
            Err(_) => Err(self.timed_out(query, limit)),
        }
    }

    /// Runs a query and returns every row as a [`TextRow`].
    pub async fn rows(&mut self, query: &str) -> Result<Vec<TextRow>, DbError> {
        self.rows_within(query, self.statement_timeout).await
    }

    /// Runs a query that may take up to `limit` (a wait for a GTID position).
    pub async fn rows_within(
        &mut self,
        query: &str,
        limit: Duration,
    ) -> Result<Vec<TextRow>, DbError> {
        self.check_usable()?;
        let rows: Vec<Row> = match tokio::time::timeout(limit, self.conn.query(query)).await {
            Ok(result) => result.map_err(|source| self.query_error(query, source))?,
            Err(_) => return Err(self.timed_out(query, limit)),
        };
        Ok(rows.into_iter().map(text_row).collect())
    }

    /// Runs a query expected to return at most one row.
    pub async fn first_row(&mut self, query: &str) -> Result<Option<TextRow>, DbError> {
        Ok(self.rows(query).await?.into_iter().next())
    }

    /// [`Connection::first_row`] of a query that may take up to `limit`.
    pub async fn first_row_within(
        &mut self,
        query: &str,
        limit: Duration,
    ) -> Result<Option<TextRow>, DbError> {
        Ok(self.rows_within(query, limit).await?.into_iter().next())
    }

    /// Asks the server which SQL dialect it speaks.
    pub async fn dialect(&mut self) -> Result<sql::Dialect, DbError> {
        let row = self
            .first_row(sql::VERSION_QUERY)
            .await?
            .unwrap_or_default();
        Ok(sql::Dialect::from_version_row(&row))
    }

    /// Closes the connection politely; errors on close are of no interest,
    /// and a server that does not answer gets a few seconds.
    pub async fn close(self) {
        if self.given_up {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), self.conn.disconnect()).await;
    }

    fn check_usable(&self) -> Result<(), DbError> {
        if self.given_up {
            return Err(DbError::GivenUp {
                address: self.address.clone(),
            });
        }
        Ok(())
    }

    fn timed_out(&mut self, query: &str, timeout: Duration) -> DbError {
        self.given_up = true;
        DbError::Timeout {
            address: self.address.clone(),
            query: query.to_string(),
            timeout,
        }
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
