//! Probes for a failover verdict: flipover must never fail over on its own
//! word that a primary is dead, so the agents look too.
//!
//! - `POST /v1/probe/local`: this host's mysqld seen from the host (the
//!   process in /proc, the socket's handshake, `SELECT 1`), summed up as
//!   answering, hung or down.
//! - `POST /v1/probe/remote`: a MySQL port seen from this host (TCP connect
//!   and the server's handshake, no login).
//!
//! Both answer within the request's deadline whatever the server does, and
//! neither takes the action lock: a probe must work while a start, a stop
//! or a clone is under way.
//!
//! A greeting read without a login costs the server an aborted connection:
//! MariaDB 10.11 counts it in `Aborted_connects_preauth` and, at its default
//! `log_warnings=2`, logs "Aborted connection … closed normally without
//! authentication" (checked: it does not count towards
//! `max_connect_errors`, so it never blocks the probing host). Probe when a
//! verdict is needed, not on every observation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flipover_agent::protocol::{
    LocalProbe, LocalProbeRequest, LocalSummary, ProbeErrorKind, ProcessObservation,
    QueryObservation, RemoteProbe, RemoteProbeRequest, SocketObservation,
};
use mysql_async::prelude::Queryable;
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{timeout_at, Instant};

use super::api::{blocking_until, request_deadline, ApiError, AppState};
use super::handshake::{io_error_kind, read_greeting};
use super::local::LocalServer;
use super::{process, sql};

/// POST /v1/probe/local.
pub async fn local(state: &AppState, request: LocalProbeRequest) -> Result<LocalProbe, ApiError> {
    let deadline = request_deadline(request.deadline_ms)?;
    let started = Instant::now();
    let until = started + deadline;
    let host = state.host.clone();
    let (local, process) = blocking_until(until, "reading the server's state", move || {
        let conf = host.load_conf()?;
        let settings = conf.settings(host.version());
        let pid_file = PathBuf::from(settings.pid_file.clone().unwrap_or_default());
        Ok::<_, flipover_agent::mycnf::MyCnfError>((
            LocalServer::from_settings(&settings),
            observe_process(&pid_file),
        ))
    })
    .await?
    .map_err(|e| ApiError::Failed(format!("cannot read the server config: {e}")))?;
    let clone = &state.clone;
    let (socket, query) = tokio::join!(
        observe_socket(&local.socket, until),
        select_one(
            &local,
            &clone.backup_user,
            clone.backup_password.as_deref(),
            until
        ),
    );
    Ok(LocalProbe {
        summary: summarize(&process, &socket, &query),
        process,
        socket,
        query,
        deadline_ms: request.deadline_ms,
        elapsed_ms: millis(started.elapsed()),
    })
}

/// The one word. `down` is said only when nothing at all is there, since
/// it is what licenses a failover without a fence.
fn summarize(
    process: &ProcessObservation,
    socket: &SocketObservation,
    query: &QueryObservation,
) -> LocalSummary {
    if query.answered || query.server_error || socket.handshake {
        LocalSummary::Answering
    } else if process.alive || socket.connected {
        LocalSummary::Hung
    } else {
        LocalSummary::Down
    }
}

/// The pid file's process, from /proc.
pub fn observe_process(pid_file: &Path) -> ProcessObservation {
    let started = std::time::Instant::now();
    let pid = process::read_pid_file(pid_file);
    let state = pid.and_then(process::state);
    let is_server = pid.is_some_and(process::is_server);
    let alive = is_server && !matches!(state, Some('Z') | Some('X') | None);
    let error = match (pid, state) {
        (None, _) if pid_file.exists() => Some(format!("no pid in {}", pid_file.display())),
        (None, _) => Some(format!("no pid file {}", pid_file.display())),
        (Some(pid), None) => Some(format!(
            "no process {pid} (the pid file {} is stale)",
            pid_file.display()
        )),
        (Some(pid), Some(_)) if !is_server => Some(format!(
            "process {pid} is {}, not mariadbd or mysqld (the pid file is stale)",
            process::comm(pid).unwrap_or_default()
        )),
        (Some(pid), Some('Z')) => Some(format!("mysqld {pid} has exited (zombie)")),
        _ => None,
    };
    ProcessObservation {
        pid_file: pid_file.display().to_string(),
        pid,
        alive,
        state: state.map(String::from),
        elapsed_ms: millis(started.elapsed()),
        error,
    }
}

/// Connects to the unix socket and reads the server's handshake.
async fn observe_socket(path: &Path, until: Instant) -> SocketObservation {
    let started = Instant::now();
    let mut observed = SocketObservation {
        path: path.display().to_string(),
        connected: false,
        handshake: false,
        server_version: None,
        elapsed_ms: 0,
        error_kind: None,
        error: None,
    };
    let attempt = async {
        let mut stream = UnixStream::connect(path)
            .await
            .map_err(|e| (io_error_kind(&e), e.to_string()))?;
        observed.connected = true;
        read_greeting(&mut stream)
            .await
            .map_err(|e| (e.kind(), e.to_string()))
    };
    let outcome = timeout_at(until, attempt).await;
    let waited = started.elapsed();
    match outcome {
        Ok(Ok(version)) => {
            observed.handshake = true;
            observed.server_version = Some(version);
        }
        Ok(Err((kind, error))) => {
            observed.error_kind = Some(kind);
            observed.error = Some(error);
        }
        Err(_) => {
            observed.error_kind = Some(ProbeErrorKind::Timeout);
            observed.error = Some(no_answer(observed.connected, waited));
        }
    }
    observed.elapsed_ms = millis(waited);
    observed
}

/// `SELECT 1` over the socket.
async fn select_one(
    local: &LocalServer,
    user: &str,
    password: Option<&str>,
    until: Instant,
) -> QueryObservation {
    let started = Instant::now();
    let run = async {
        let mut conn = mysql_async::Conn::new(local.opts(user, password)).await?;
        let one: Option<i64> = conn.query_first(sql::SELECT_ONE).await?;
        let _ = conn.disconnect().await;
        Ok::<_, mysql_async::Error>(one)
    };
    let outcome = timeout_at(until, run).await;
    let waited = started.elapsed();
    let (answered, server_error, error) = match outcome {
        Ok(Ok(Some(1))) => (true, false, None),
        Ok(Ok(other)) => (false, true, Some(format!("SELECT 1 returned {other:?}"))),
        Ok(Err(mysql_async::Error::Server(e))) => (false, true, Some(e.to_string())),
        Ok(Err(e)) => (false, false, Some(e.to_string())),
        Err(_) => (
            false,
            false,
            Some(format!("no answer within {} ms", millis(waited))),
        ),
    };
    QueryObservation {
        user: user.to_string(),
        answered,
        server_error,
        elapsed_ms: millis(waited),
        error,
    }
}

/// POST /v1/probe/remote.
pub async fn remote(request: RemoteProbeRequest) -> Result<RemoteProbe, ApiError> {
    let deadline = request_deadline(request.deadline_ms)?;
    let host = request.host.trim();
    if host.is_empty() || request.port == 0 {
        return Err(ApiError::BadRequest(
            "host and port are required".to_string(),
        ));
    }
    let started = Instant::now();
    let mut probe = RemoteProbe {
        target: if host.contains(':') {
            format!("[{host}]:{}", request.port)
        } else {
            format!("{host}:{}", request.port)
        },
        address: None,
        connected: false,
        connect_ms: None,
        handshake: false,
        server_version: None,
        elapsed_ms: 0,
        error_kind: None,
        error: None,
    };
    let outcome = timeout_at(
        started + deadline,
        connect_and_greet(host, request.port, &mut probe, started),
    )
    .await;
    let waited = started.elapsed();
    match outcome {
        Ok(Ok(version)) => {
            probe.handshake = true;
            probe.server_version = Some(version);
        }
        Ok(Err((kind, error))) => {
            probe.error_kind = Some(kind);
            probe.error = Some(error);
        }
        Err(_) => {
            probe.error_kind = Some(ProbeErrorKind::Timeout);
            probe.error = Some(no_answer(probe.connected, waited));
        }
    }
    probe.elapsed_ms = millis(waited);
    Ok(probe)
}

/// Resolves, connects to the first address that accepts, reads the
/// handshake; notes the connection in `probe` as soon as it is made.
async fn connect_and_greet(
    host: &str,
    port: u16,
    probe: &mut RemoteProbe,
    started: Instant,
) -> Result<String, (ProbeErrorKind, String)> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| {
            (
                ProbeErrorKind::Resolve,
                format!("cannot resolve {host}: {e}"),
            )
        })?
        .collect();
    let mut last_error = None;
    let mut connected = None;
    for address in &addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                connected = Some((stream, address));
                break;
            }
            Err(e) => last_error = Some((*address, e)),
        }
    }
    let (mut stream, address) = match (connected, last_error) {
        (Some(connected), _) => connected,
        (None, Some((address, e))) => {
            return Err((io_error_kind(&e), format!("connecting to {address}: {e}")))
        }
        (None, None) => {
            return Err((
                ProbeErrorKind::Resolve,
                format!("{host} resolves to no address"),
            ))
        }
    };
    probe.connected = true;
    probe.address = Some(address.to_string());
    probe.connect_ms = Some(millis(started.elapsed()));
    read_greeting(&mut stream)
        .await
        .map_err(|e| (e.kind(), e.to_string()))
}

fn no_answer(connected: bool, waited: Duration) -> String {
    if connected {
        format!(
            "connected, but no handshake within {} ms (the kernel accepts for a stopped or stuck server)",
            millis(waited)
        )
    } else {
        format!("no connection within {} ms", millis(waited))
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(alive: bool) -> ProcessObservation {
        ProcessObservation {
            pid_file: "/x.pid".to_string(),
            pid: alive.then_some(7),
            alive,
            state: alive.then(|| "T".to_string()),
            elapsed_ms: 0,
            error: None,
        }
    }

    fn socket(connected: bool, handshake: bool) -> SocketObservation {
        SocketObservation {
            path: "/x.sock".to_string(),
            connected,
            handshake,
            server_version: None,
            elapsed_ms: 0,
            error_kind: None,
            error: None,
        }
    }

    fn query(answered: bool, server_error: bool) -> QueryObservation {
        QueryObservation {
            user: "root".to_string(),
            answered,
            server_error,
            elapsed_ms: 0,
            error: None,
        }
    }

    #[test]
    fn down_only_when_nothing_is_there() {
        use LocalSummary::*;
        let cases = [
            (
                process(true),
                socket(true, true),
                query(true, false),
                Answering,
            ),
            // Access denied is an answer.
            (
                process(true),
                socket(true, true),
                query(false, true),
                Answering,
            ),
            // A pid file elsewhere: the server still answers.
            (
                process(false),
                socket(true, true),
                query(true, false),
                Answering,
            ),
            (
                process(true),
                socket(true, false),
                query(false, false),
                Hung,
            ),
            (
                process(true),
                socket(false, false),
                query(false, false),
                Hung,
            ),
            // No pid, but something accepts on the socket.
            (
                process(false),
                socket(true, false),
                query(false, false),
                Hung,
            ),
            (
                process(false),
                socket(false, false),
                query(false, false),
                Down,
            ),
        ];
        for (p, s, q, expected) in cases {
            assert_eq!(summarize(&p, &s, &q), expected, "{p:?} {s:?} {q:?}");
        }
    }

    #[test]
    fn a_stale_pid_file_is_no_process() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("m.pid");
        let missing = observe_process(&pid_file);
        assert!(!missing.alive && missing.pid.is_none());
        assert!(missing.error.unwrap().contains("no pid file"));
        std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
        let other = observe_process(&pid_file);
        assert_eq!(other.pid, Some(std::process::id()));
        assert!(!other.alive);
        assert!(other.error.unwrap().contains("not mariadbd or mysqld"));
    }
}
