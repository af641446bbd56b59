//! `GET /metrics`: the host's state for Prometheus, in the OpenMetrics text
//! format (prometheus-client), gathered afresh on every scrape: mysqld up,
//! the replica threads and lag (read from the local server), clone bytes
//! and rates, the latest job's result per kind, and the agent's build.
//!
//! On the main API it needs the bearer token like every route;
//! `--metrics-listen` serves it alone, without a token, on its own address.

use std::path::Path;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use flipover_agent::protocol::{routes, JobKind, JobState, MysqldSettings, PROTOCOL_VERSION};
use mysql_async::prelude::Queryable;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use tracing::debug;

use super::api::{ApiError, AppState};
use super::clone::CloneConfig;
use super::local::LocalServer;
use super::{process, sql};

/// The route, on the main API and on `--metrics-listen`.
pub const PATH: &str = routes::METRICS;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A scrape must not hang on a stuck server.
const MYSQL_TIMEOUT: Duration = Duration::from_secs(3);

type Labels = Vec<(String, String)>;

/// The unauthenticated router of `--metrics-listen`: /metrics only.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(PATH, get(get_metrics))
        .with_state(state)
}

pub async fn get_metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = render(&state).await?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], text).into_response())
}

/// What the local server says about replication.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replica {
    io_running: bool,
    sql_running: bool,
    /// None while the SQL thread does not run (the server says NULL).
    seconds_behind: Option<i64>,
}

async fn render(state: &AppState) -> Result<String, ApiError> {
    let host = state.host.clone();
    let (settings, mysqld_up) = tokio::task::spawn_blocking(move || {
        let settings = host
            .load_conf()
            .map(|conf| conf.settings(host.version()))
            .unwrap_or_default();
        let up = settings
            .pid_file
            .as_deref()
            .and_then(|p| process::running_mysqld_pid(Path::new(p)))
            .is_some();
        (settings, up)
    })
    .await
    .map_err(|e| ApiError::Failed(format!("reading the server's state panicked: {e}")))?;
    // No server, no question to ask it.
    let replica = if mysqld_up {
        match tokio::time::timeout(MYSQL_TIMEOUT, replica_status(&settings, &state.clone)).await {
            Ok(Ok(replica)) => Some(replica),
            Ok(Err(e)) => {
                debug!(error = %e, "metrics: cannot read the replica status");
                None
            }
            Err(_) => {
                debug!("metrics: the replica status took too long");
                None
            }
        }
    } else {
        None
    };

    let mut registry = Registry::with_prefix("flipover_agent");
    registry.register(
        "build",
        "The agent's version and wire protocol version",
        Info::new(vec![
            ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("protocol_version".to_string(), PROTOCOL_VERSION.to_string()),
        ]),
    );
    register_gauge(
        &mut registry,
        "mysqld_up",
        "1 when the mysqld of the pid-file in the server's config runs",
        i64::from(mysqld_up),
    );
    register_gauge(
        &mut registry,
        "replication_status_readable",
        "1 when the agent could read the local server's replica status (as --backup-user)",
        i64::from(replica.is_some()),
    );
    if let Some(Some(replica)) = &replica {
        register_gauge(
            &mut registry,
            "replication_configured",
            "1 when the server is a replica (SHOW REPLICA STATUS has a row)",
            1,
        );
        register_gauge(
            &mut registry,
            "replication_io_running",
            "1 when the replica's IO thread runs",
            i64::from(replica.io_running),
        );
        register_gauge(
            &mut registry,
            "replication_sql_running",
            "1 when the replica's SQL thread runs",
            i64::from(replica.sql_running),
        );
        if let Some(seconds) = replica.seconds_behind {
            let gauge = Gauge::<i64>::default();
            gauge.set(seconds);
            registry.register_with_unit(
                "replication_behind_source",
                "Seconds_Behind_Master of the replica (absent while the SQL thread is stopped)",
                Unit::Seconds,
                gauge,
            );
        }
    } else if let Some(None) = replica {
        register_gauge(
            &mut registry,
            "replication_configured",
            "1 when the server is a replica (SHOW REPLICA STATUS has a row)",
            0,
        );
    }
    register_jobs(&mut registry, state);

    let mut text = String::new();
    encode(&mut text, &registry)
        .map_err(|e| ApiError::Failed(format!("encoding the metrics failed: {e}")))?;
    Ok(text)
}

fn register_gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge = Gauge::<i64>::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

/// Clone bytes (every job since the agent started), the rate of the latest
/// job of each kind, and that job's result.
fn register_jobs(registry: &mut Registry, state: &AppState) {
    let jobs = state.jobs.all();
    for (kind, name, help) in [
        (
            JobKind::CloneSend,
            "clone_sent",
            "Backup stream bytes sent to clone targets since the agent started",
        ),
        (
            JobKind::CloneReceive,
            "clone_received",
            "Backup stream bytes received from donors since the agent started",
        ),
    ] {
        let total: u64 = jobs
            .iter()
            .filter(|j| j.kind == kind)
            .map(|j| j.bytes.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        let counter = Counter::<u64>::default();
        counter.inc_by(total);
        registry.register_with_unit(name, help, Unit::Bytes, counter);
    }

    let rate = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let result = Family::<Labels, Gauge>::default();
    for kind in [JobKind::CloneSend, JobKind::CloneReceive] {
        let Some(latest) = jobs
            .iter()
            .filter(|j| j.kind == kind)
            .max_by_key(|j| j.started())
        else {
            continue;
        };
        let status = latest.status();
        let kind = kind_label(kind);
        let seconds = status.elapsed_ms as f64 / 1000.0;
        if seconds > 0.0 {
            rate.get_or_create(&vec![("kind".to_string(), kind.to_string())])
                .set(status.bytes as f64 / seconds);
        }
        // One series per state, 1 for the latest job's: alerts can match
        // result="failed" == 1.
        for (state, name) in [
            (JobState::Running, "running"),
            (JobState::Succeeded, "succeeded"),
            (JobState::Failed, "failed"),
        ] {
            result
                .get_or_create(&vec![
                    ("kind".to_string(), kind.to_string()),
                    ("result".to_string(), name.to_string()),
                ])
                .set(i64::from(status.state == state));
        }
    }
    registry.register(
        "clone_rate_bytes_per_second",
        "Average stream rate of the latest clone job of each kind (running or finished)",
        rate,
    );
    registry.register(
        "job_last_result",
        "State of the latest job of each kind: 1 on the series of its result",
        result,
    );
}

fn kind_label(kind: JobKind) -> &'static str {
    match kind {
        JobKind::CloneSend => "clone_send",
        JobKind::CloneReceive => "clone_receive",
    }
}

/// `SHOW REPLICA STATUS` on the local server, over its socket, as the
/// backup account. None
/// when the server is not a replica.
async fn replica_status(
    settings: &MysqldSettings,
    clone: &CloneConfig,
) -> Result<Option<Replica>, mysql_async::Error> {
    let opts = LocalServer::from_settings(settings)
        .opts(&clone.backup_user, clone.backup_password.as_deref());
    let mut conn = mysql_async::Conn::new(opts).await?;
    let row: Option<mysql_async::Row> = match conn.query_first(sql::REPLICA_STATUS).await {
        Ok(row) => row,
        Err(mysql_async::Error::Server(_)) => conn.query_first(sql::SLAVE_STATUS).await?,
        Err(e) => return Err(e),
    };
    let _ = conn.disconnect().await;
    Ok(row.map(|row| {
        let text = |names: &[&str]| {
            names.iter().find_map(|name| {
                let index = row
                    .columns_ref()
                    .iter()
                    .position(|c| c.name_str() == *name)?;
                match row.as_ref(index)? {
                    mysql_async::Value::Bytes(bytes) => {
                        Some(String::from_utf8_lossy(bytes).into_owned())
                    }
                    mysql_async::Value::Int(i) => Some(i.to_string()),
                    mysql_async::Value::UInt(u) => Some(u.to_string()),
                    _ => None,
                }
            })
        };
        Replica {
            io_running: text(&["Slave_IO_Running", "Replica_IO_Running"]).as_deref() == Some("Yes"),
            sql_running: text(&["Slave_SQL_Running", "Replica_SQL_Running"]).as_deref()
                == Some("Yes"),
            seconds_behind: text(&["Seconds_Behind_Master", "Seconds_Behind_Source"])
                .and_then(|s| s.parse().ok()),
        }
    }))
}
