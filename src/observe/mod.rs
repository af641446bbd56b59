//! Observed state: facts per server, gathered over the MySQL protocol and from
//! each host's agent.
//!
//! Architecture Invariant: observation only reads. An unreachable server or
//! agent is recorded as a fact (`reachable: false` with the error), never
//! turned into a failure of the whole observation.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::agents;
use crate::db::{self, DbError, Endpoint};
pub use crate::facts::*;
use crate::sql::{self, Dialect};
use crate::topology::{Server, Topology};

/// How observation reaches servers.
#[derive(Debug, Clone)]
pub struct ObserveOptions {
    /// Per server, for the MySQL connection and for the agent request.
    pub connect_timeout: Duration,
    /// How many servers are observed at once.
    pub max_concurrency: usize,
}

impl Default for ObserveOptions {
    fn default() -> Self {
        ObserveOptions {
            connect_timeout: Duration::from_secs(2),
            max_concurrency: 32,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("cannot read the credentials in [access]: {0}")]
    Secret(#[from] crate::secrets::SecretError),
}

/// Observes every server of `topology`, concurrently.
pub async fn observe(
    topology: &Topology,
    options: &ObserveOptions,
) -> Result<Observed, ObserveError> {
    let user = topology.access().user.clone();
    let password = crate::secrets::resolve(topology, topology.access().password.as_ref())?;
    // Resolve the agent token once up front so a bad secret fails the command
    // instead of showing as "agent unreachable" on every server.
    crate::secrets::resolve(topology, topology.access().agent_token.as_ref())?;

    let observations: Vec<ServerObservation> = stream::iter(topology.servers().values())
        .map(|server| {
            let endpoint = Endpoint {
                host: server.host.clone(),
                port: server.port,
                user: user.clone(),
                password: password.clone(),
                socket: None,
            };
            observe_server(topology, server, endpoint, options)
        })
        .buffer_unordered(options.max_concurrency.max(1))
        .collect()
        .await;

    Ok(Observed {
        format_version: OBSERVED_FORMAT_VERSION,
        cluster: topology.cluster().name.clone(),
        servers: observations
            .into_iter()
            .map(|o| (o.name.clone(), o))
            .collect(),
    })
}

async fn observe_server(
    topology: &Topology,
    server: &Server,
    endpoint: Endpoint,
    options: &ObserveOptions,
) -> ServerObservation {
    let (mysql, agent) = tokio::join!(
        observe_mysql(&endpoint, options.connect_timeout),
        observe_agent(topology, server, options.connect_timeout)
    );
    ServerObservation {
        name: server.name.clone(),
        host: server.host.clone(),
        port: server.port,
        mysql,
        agent,
    }
}

async fn observe_mysql(endpoint: &Endpoint, timeout: Duration) -> MysqlObservation {
    match mysql_facts(endpoint, timeout).await {
        Ok(facts) => MysqlObservation {
            reachable: true,
            error: None,
            facts: Some(facts),
        },
        Err(FactsError::Db(err @ (DbError::Connect { .. } | DbError::ConnectTimeout { .. }))) => {
            tracing::debug!("{}: {err}", endpoint.address());
            MysqlObservation {
                reachable: false,
                error: Some(err.to_string()),
                facts: None,
            }
        }
        // Connected, but the answers made no sense: reachable, without facts.
        Err(err) => MysqlObservation {
            reachable: true,
            error: Some(err.to_string()),
            facts: None,
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Parse(#[from] crate::sql::ParseError),
}

/// Reads everything flipover needs to know about one server, per flavor.
pub async fn mysql_facts(endpoint: &Endpoint, timeout: Duration) -> Result<MysqlFacts, FactsError> {
    let mut conn = db::connect(endpoint, timeout).await?;
    let result = read_facts(&mut conn).await;
    conn.close().await;
    result
}

async fn read_facts(conn: &mut db::Connection) -> Result<MysqlFacts, FactsError> {
    let version_row = conn
        .first_row(sql::VERSION_QUERY)
        .await?
        .unwrap_or_default();
    let version = sql::column(&version_row, "version")
        .unwrap_or_default()
        .to_string();
    let dialect = Dialect::from_version_row(&version_row);

    let variables_row = conn
        .first_row(dialect.variables_query())
        .await?
        .unwrap_or_default();
    let variables = dialect.parse_variables(&variables_row)?;

    let binlog = if variables.log_bin {
        conn.first_row(dialect.binlog_status_query())
            .await?
            .map(|row| sql::parse_binlog_status(&row))
            .transpose()?
    } else {
        None
    };
    let replica = conn
        .first_row(dialect.replica_status_query())
        .await?
        .map(|row| dialect.parse_replica_status(&row))
        .transpose()?;
    let longest_transaction_seconds = conn
        .first_row(sql::LONGEST_TRANSACTION_QUERY)
        .await?
        .and_then(|row| sql::column(&row, "age").and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    let binlog_oldest_gtid = match dialect {
        Dialect::Mariadb if variables.log_bin => oldest_binlog_gtid(conn).await?,
        _ => None,
    };
    let semi_sync = sql::semi_sync::parse(
        &conn.rows(sql::semi_sync::VARIABLES).await?,
        &conn.rows(sql::semi_sync::STATUS).await?,
    )?;
    let last_apply = read_journal(conn).await;
    let user_schemas: Vec<String> = conn
        .rows(sql::USER_SCHEMAS_QUERY)
        .await?
        .iter()
        .filter_map(|row| sql::column(row, "name").map(str::to_string))
        .collect();
    // Last: a count that fails or runs out of time leaves the schemas
    // uncounted (so they count as data), not the server without facts.
    let schema_objects = match schema_objects(conn, &user_schemas).await {
        Ok(objects) => Some(objects),
        Err(e) => {
            tracing::debug!("{}: schemas not counted: {e}", conn.address);
            None
        }
    };

    Ok(MysqlFacts {
        flavor: dialect.flavor(),
        version,
        server_id: variables.server_id,
        server_uuid: variables.server_uuid,
        read_only: variables.read_only,
        super_read_only: variables.super_read_only,
        log_bin: variables.log_bin,
        log_slave_updates: variables.log_slave_updates,
        binlog_format: variables.binlog_format,
        binlog,
        gtid: variables.gtid,
        user_schemas,
        schema_objects,
        longest_transaction_seconds,
        binlog_oldest_gtid,
        replica,
        last_apply,
        semi_sync,
    })
}

/// How long counting the user schemas' objects may take: information_schema
/// opens every table's definition on MariaDB.
const SCHEMA_COUNT_LIMIT: Duration = Duration::from_secs(10);

/// What each of `schemas` holds (tables, views, routines, events).
pub async fn schema_objects(
    conn: &mut db::Connection,
    schemas: &[String],
) -> Result<BTreeMap<String, SchemaObjects>, DbError> {
    if schemas.is_empty() {
        return Ok(BTreeMap::new());
    }
    let tables = conn
        .rows_within(sql::schemas::TABLES, SCHEMA_COUNT_LIMIT)
        .await?;
    let routines = conn
        .rows_within(sql::schemas::ROUTINES, SCHEMA_COUNT_LIMIT)
        .await?;
    let events = conn
        .rows_within(sql::schemas::EVENTS, SCHEMA_COUNT_LIMIT)
        .await?;
    Ok(sql::schemas::count(schemas, &tables, &routines, &events))
}

/// The latest apply in the server's journal; none when it has no journal.
async fn read_journal(conn: &mut db::Connection) -> Option<JournalApply> {
    let rows = conn.rows(sql::journal::LATEST).await.ok()?;
    let first = rows.first()?;
    let column = |row, name| sql::column(row, name).map(str::to_string);
    Some(JournalApply {
        apply_id: column(first, "apply_id")?,
        operator: column(first, "operator").unwrap_or_default(),
        started_at: column(first, "at").unwrap_or_default(),
        finished: rows
            .iter()
            .any(|r| sql::column(r, "state") == Some("finished")),
        entries: rows
            .iter()
            .map(|r| JournalEntry {
                step: column(r, "step").unwrap_or_default(),
                state: column(r, "state").unwrap_or_default(),
                detail: column(r, "detail"),
                at: column(r, "at").unwrap_or_default(),
            })
            .collect(),
    })
}

/// MariaDB: the GTID state at the start of the oldest binlog on disk.
async fn oldest_binlog_gtid(conn: &mut db::Connection) -> Result<Option<String>, FactsError> {
    let logs = conn.rows(sql::mariadb::BINARY_LOGS).await?;
    let Some(first) = logs.first().and_then(|row| sql::column(row, "Log_name")) else {
        return Ok(None);
    };
    let events = conn.rows(&sql::mariadb::binlog_head_events(first)).await?;
    Ok(sql::mariadb::binlog_start_of(&events))
}

async fn observe_agent(
    topology: &Topology,
    server: &Server,
    timeout: Duration,
) -> AgentObservation {
    let result = match agents::client_for(topology, server, timeout) {
        Ok(client) => client.facts().await.map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    match result {
        Ok(facts) => AgentObservation {
            reachable: true,
            error: None,
            facts: Some(facts),
        },
        Err(error) => AgentObservation {
            reachable: false,
            error: Some(error),
            facts: None,
        },
    }
}
