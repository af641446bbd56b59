//! Fencing this host's mysqld before a failover promotes another server:
//! `POST /v1/fence` makes it refuse writes (read-only mode) or stops it,
//! SIGKILL included (stop mode), within the request's deadline, and answers
//! with exactly what was done and the state after, so flipover can tell
//! whether the fence holds. `POST /v1/fence/lift` ends a fence.
//!
//! - `marker`: the record that makes a fence outlive an agent restart
//!
//! A fence does not take the action lock: it must work while a start hangs
//! or a clone runs (it ends them if it must). Every fence and every lift
//! is logged as a warning with who asked.

pub mod marker;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flipover_agent::protocol::{FenceMode, FenceOutcome, FenceRecord, FenceRequest};
use mysql_async::prelude::Queryable;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::time::{timeout_at, Instant};
use tracing::warn;

use super::api::{blocking_until, request_deadline, ApiError, AppState};
use super::facts::HostInfo;
use super::local::LocalServer;
use super::mysqld;
use super::probe::millis;
use super::process::{is_alive, is_server, is_stopped, running_mysqld_pid};
use super::sql::{self, Flavor};

/// How often a stop looks whether the pid is gone.
const POLL: Duration = Duration::from_millis(20);
/// Of a stop's deadline, the time kept for SIGKILL and the wait after it
/// (at most half the deadline).
const KILL_RESERVE: Duration = Duration::from_secs(2);

/// The account a read-only fence logs in as (`--fence-user`): it needs
/// SUPER or READ_ONLY ADMIN / SYSTEM_VARIABLES_ADMIN and CONNECTION ADMIN.
#[derive(Clone)]
pub struct FenceConfig {
    pub user: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for FenceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FenceConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What a fence needs to know of the server, from the my.cnf.
struct Server {
    local: LocalServer,
    pid_file: PathBuf,
    record: PathBuf,
}

fn read_server(host: &HostInfo) -> Result<Server, ApiError> {
    let conf = host
        .load_conf()
        .map_err(|e| ApiError::Failed(format!("cannot read the server config: {e}")))?;
    let version = host.version();
    let settings = conf.settings(version);
    Ok(Server {
        local: LocalServer::from_settings(&settings),
        pid_file: PathBuf::from(settings.pid_file.unwrap_or_default()),
        record: marker::path_for(&conf.datadir(version)),
    })
}

/// POST /v1/fence.
pub async fn fence(
    state: &AppState,
    request: FenceRequest,
    peer: Option<SocketAddr>,
) -> Result<FenceOutcome, ApiError> {
    let deadline = request_deadline(request.deadline_ms)?;
    let started = Instant::now();
    let until = started + deadline;
    warn!(
        mode = ?request.mode,
        requested_by = request.requested_by.as_deref().unwrap_or("-"),
        reason = request.reason.as_deref().unwrap_or("-"),
        peer = %peer.map(|p| p.to_string()).unwrap_or_else(|| "-".to_string()),
        deadline_ms = request.deadline_ms,
        "fence requested"
    );
    let host = state.host.clone();
    let server = blocking_until(until, "reading the server config", move || {
        read_server(&host)
    })
    .await??;
    let pid_before = running_mysqld_pid(&server.pid_file).or_else(mysqld::starting_pid);
    let mut outcome = FenceOutcome {
        mode: request.mode,
        holds: false,
        actions: Vec::new(),
        pid_before,
        running_after: pid_before.is_some(),
        pid_after: pid_before,
        flavor: None,
        read_only: None,
        super_read_only: None,
        killed_sessions: Vec::new(),
        sigkilled: false,
        record: None,
        elapsed_ms: 0,
        error: None,
    };
    let mut errors = Vec::new();

    // The record first: an agent killed halfway must come back fenced.
    let record = FenceRecord {
        mode: request.mode,
        at_unix_ms: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0),
        requested_by: request.requested_by.clone(),
        reason: request.reason.clone(),
        peer: peer.map(|p| p.to_string()),
        marker: server.record.display().to_string(),
    };
    let path = server.record.clone();
    // Bounded by a share of the deadline: on a hung disk the fence itself
    // still runs (and says the record is missing).
    let record_until = started + deadline / 4;
    let written = {
        let record = record.clone();
        blocking_until(record_until, "writing the fence record", move || {
            marker::write(&path, &record)
        })
        .await
    };
    match written {
        Ok(Ok(())) => {
            outcome
                .actions
                .push(format!("recorded the fence in {}", server.record.display()));
            outcome.record = Some(record);
        }
        Ok(Err(e)) => errors.push(e.to_string()),
        Err(e) => errors.push(e.message().to_string()),
    }

    let fenced = match request.mode {
        FenceMode::ReadOnly => {
            read_only(&mut outcome, &mut errors, &server, &state.fence, until).await
        }
        FenceMode::Stop => stop(&mut outcome, &mut errors, state, &server, until).await,
    };
    outcome.holds = fenced && outcome.record.is_some();
    if !errors.is_empty() {
        outcome.error = Some(errors.join("; "));
    }
    outcome.elapsed_ms = millis(started.elapsed());
    warn!(
        mode = ?outcome.mode,
        holds = outcome.holds,
        actions = ?outcome.actions,
        pid_before = ?outcome.pid_before,
        running_after = outcome.running_after,
        error = outcome.error.as_deref().unwrap_or("-"),
        ms = outcome.elapsed_ms,
        "fence done"
    );
    Ok(outcome)
}

/// True when something accepts connections on the socket.
async fn socket_accepts(path: &Path, until: Instant) -> bool {
    matches!(
        timeout_at(until, tokio::net::UnixStream::connect(path)).await,
        Ok(Ok(_)) | Err(_)
    )
}

/// Read-only mode; true when the server is confirmed refusing writes (or
/// not running at all).
async fn read_only(
    outcome: &mut FenceOutcome,
    errors: &mut Vec<String>,
    server: &Server,
    account: &FenceConfig,
    until: Instant,
) -> bool {
    if outcome.pid_before.is_none() && !socket_accepts(&server.local.socket, until).await {
        outcome.actions.push(
            "mysqld is not running: nothing to set read-only (the agent starts it read-only)"
                .to_string(),
        );
        outcome.running_after = false;
        return true;
    }
    let result = timeout_at(until, set_read_only(outcome, server, account)).await;
    let confirmed = match result {
        Ok(Ok(confirmed)) => {
            if !confirmed {
                errors.push("the server still reports itself writable".to_string());
            }
            confirmed
        }
        Ok(Err(e)) => {
            errors.push(format!("read-only fence failed: {e}"));
            false
        }
        Err(_) => {
            errors.push(format!(
                "the read-only fence did not finish within the deadline (after: {})",
                outcome
                    .actions
                    .last()
                    .map(String::as_str)
                    .unwrap_or("nothing")
            ));
            false
        }
    };
    outcome.pid_after = running_mysqld_pid(&server.pid_file);
    outcome.running_after = outcome.pid_after.is_some();
    confirmed
}

/// Sessions killed, read-only set, sessions that came meanwhile killed,
/// the setting read back. Records each step in `outcome` as it is done.
async fn set_read_only(
    outcome: &mut FenceOutcome,
    server: &Server,
    account: &FenceConfig,
) -> Result<bool, mysql_async::Error> {
    let opts = server
        .local
        .opts(&account.user, account.password.as_deref());
    let mut conn = mysql_async::Conn::new(opts).await?;
    outcome.actions.push(format!(
        "connected over {} as {}",
        server.local.socket.display(),
        account.user
    ));
    let row: Option<(String, String)> = conn.query_first(sql::VERSION).await?;
    let (version, comment) = row.unwrap_or_default();
    let flavor = Flavor::detect(&version, &comment);
    outcome.flavor = Some(flavor.name().to_string());
    // First the sessions: one in a transaction would hold up the setting.
    kill_sessions(&mut conn, outcome).await?;
    conn.query_drop(flavor.set_read_only()).await?;
    outcome
        .actions
        .push(format!("ran {}", flavor.set_read_only()));
    // Then those that came meanwhile (on MariaDB a privileged one could
    // still write).
    kill_sessions(&mut conn, outcome).await?;
    let row: Option<mysql_async::Row> = conn.query_first(flavor.read_only_state()).await?;
    let flag = |name: &str| {
        row.as_ref()
            .and_then(|r| r.get_opt::<i64, _>(name))
            .and_then(Result::ok)
            .map(|v| v != 0)
    };
    outcome.read_only = flag("read_only");
    outcome.super_read_only = flag("super_read_only");
    let _ = conn.disconnect().await;
    Ok(match flavor {
        Flavor::Mariadb => outcome.read_only == Some(true),
        Flavor::Mysql => outcome.super_read_only == Some(true),
    })
}

async fn kill_sessions(
    conn: &mut mysql_async::Conn,
    outcome: &mut FenceOutcome,
) -> Result<(), mysql_async::Error> {
    let ids: Vec<u64> = conn.query(sql::SESSIONS_TO_KILL).await?;
    let mut killed = Vec::new();
    for id in ids {
        // A session may end by itself meanwhile: that is what we wanted.
        if conn.query_drop(sql::kill_connection(id)).await.is_ok() {
            killed.push(id);
        }
    }
    if !killed.is_empty() {
        outcome.actions.push(format!(
            "killed {} client session(s): {}",
            killed.len(),
            killed
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        outcome.killed_sessions.extend(killed);
    }
    Ok(())
}

/// Stop mode; true when no mysqld runs afterwards.
async fn stop(
    outcome: &mut FenceOutcome,
    errors: &mut Vec<String>,
    state: &AppState,
    server: &Server,
    until: Instant,
) -> bool {
    let Some(pid) = outcome.pid_before else {
        if socket_accepts(&server.local.socket, until).await {
            errors.push(format!(
                "no mysqld pid in {}, but something accepts connections on {}: not stopped",
                server.pid_file.display(),
                server.local.socket.display()
            ));
            return false;
        }
        outcome.actions.push("mysqld was not running".to_string());
        outcome.running_after = false;
        outcome.pid_after = None;
        return true;
    };
    let now = Instant::now();
    let reserve = KILL_RESERVE.min(until.saturating_duration_since(now) / 2);
    let grace_until = until - reserve;
    if state.host.supervised {
        match kill(Pid::from_raw(pid as i32), Signal::SIGTERM) {
            Ok(()) => outcome
                .actions
                .push(format!("sent SIGTERM to mysqld {pid}")),
            Err(nix::Error::ESRCH) => {}
            Err(e) => errors.push(format!("cannot SIGTERM mysqld {pid}: {e}")),
        }
    } else {
        let limit = grace_until.saturating_duration_since(Instant::now());
        match mysqld::request_service_stop(&state.host, limit).await {
            Ok(command) => outcome.actions.push(format!("ran {command}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if is_stopped(pid) {
        outcome.actions.push(format!(
            "mysqld {pid} is stopped (SIGSTOP): it cannot act on SIGTERM"
        ));
    } else {
        wait_gone(pid, grace_until).await;
    }
    if alive_server(pid) {
        match kill(Pid::from_raw(pid as i32), Signal::SIGKILL) {
            Ok(()) => {
                outcome.sigkilled = true;
                outcome.actions.push(format!(
                    "sent SIGKILL to mysqld {pid} after {} ms",
                    millis(now.elapsed())
                ));
            }
            Err(nix::Error::ESRCH) => {}
            Err(e) => errors.push(format!("cannot SIGKILL mysqld {pid}: {e}")),
        }
        wait_gone(pid, until).await;
    }
    let running = alive_server(pid);
    if running {
        errors.push(format!("mysqld {pid} still runs at the deadline"));
    } else {
        outcome.actions.push(format!(
            "mysqld {pid} is gone after {} ms",
            millis(now.elapsed())
        ));
    }
    outcome.running_after = running;
    outcome.pid_after = running.then_some(pid);
    !running
}

/// The pid is still a live mysqld (not a zombie, not reused by another
/// program).
fn alive_server(pid: u32) -> bool {
    is_alive(pid) && is_server(pid)
}

async fn wait_gone(pid: u32, until: Instant) {
    while alive_server(pid) && Instant::now() < until {
        tokio::time::sleep(POLL).await;
    }
}
