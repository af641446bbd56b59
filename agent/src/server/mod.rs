//! The agent's HTTP server: wiring of flags, token, host discovery and
//! routes. Submodules hold one concept each:
//! - `args`: command-line flags
//! - `config_file`: `--config FILE`, flags written as TOML
//! - `auth`: bearer token loading and checking
//! - `api`: routes, shared state, error responses
//! - `facts`: host discovery and the facts report
//! - `local`: the local server's socket and port, for every local client
//! - `probe`: local and remote probes of mysqld for a failover verdict
//! - `handshake`: reading a MySQL server's initial handshake (no login)
//! - `fence`: fencing mysqld (read-only or stopped) and its record
//! - `sql`: every SQL statement the agent runs
//! - `metrics`: GET /metrics for Prometheus (also on --metrics-listen)
//! - `limits`: request body size and time limits
//! - `mysqld`: starting/stopping mysqld (supervised or via the service manager)
//! - `process`: /proc inspection (is a pid a live mysqld?)
//! - `clone`: physical clones (backup stream, receive and send jobs)
//! - `tls`: the TLS listener of the API and the stream's TLS ends

pub mod api;
pub mod args;
pub mod auth;
pub mod clone;
pub mod config_file;
pub mod facts;
pub mod fence;
pub mod handshake;
pub mod limits;
pub mod local;
pub mod metrics;
pub mod mysqld;
pub mod probe;
pub mod process;
pub mod sql;
pub mod tls;

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

use api::AppState;
use args::{Args, TOKEN_ENV};
use facts::HostInfo;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Token(#[from] auth::TokenError),
    #[error("cannot resolve the path of {path}: {source}")]
    ConfPath {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the {what} password file {path}: {source}")]
    PasswordFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no TLS settings: give --tls-cert, --tls-key and --client-ca (`flipover certs init` \
         makes them), or --insecure to serve in plaintext on a trusted network"
    )]
    NoTls,
    #[error(transparent)]
    Tls(#[from] flipover_agent::tls::TlsError),
    #[error("serving HTTP failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// How long a stopping agent waits for running jobs to restore.
const JOB_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the agent until SIGINT/SIGTERM. mysqld keeps running when the agent
/// stops: restarting the agent must never take the database down.
pub async fn run(args: Args) -> Result<(), StartupError> {
    let token = auth::load_token(
        args.token_file.as_deref(),
        TOKEN_ENV,
        std::env::var(TOKEN_ENV).ok(),
    )?;
    let tls = match (&args.tls_cert, &args.tls_key, &args.client_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(tls::ServerTls::load(cert, key, ca)?),
        // clap requires all three together.
        _ if !args.insecure => return Err(StartupError::NoTls),
        _ => None,
    };
    let conf_path = std::path::absolute(&args.conf).map_err(|source| StartupError::ConfPath {
        path: args.conf.clone(),
        source,
    })?;
    let service = (!args.supervise).then(|| args.service.clone());
    let host = HostInfo::discover(conf_path, service, args.supervise);
    info!(
        conf = %host.conf_path.display(),
        supervised = host.supervised,
        service = host.service.as_deref().unwrap_or("-"),
        server_binary = ?host.server_binary,
        server_version = host.server_version.as_deref().unwrap_or("unknown"),
        "flipover-agent {} starting",
        env!("CARGO_PKG_VERSION")
    );
    if let Err(e) = host.load_conf() {
        warn!(error = %e, "the server config is unreadable; facts and actions will fail until it is fixed");
    }

    // Before anything can start mysqld or a job: an unconfirmed clone's
    // previous datadir goes back in place.
    match clone::recovery::at_startup(&host).await {
        clone::recovery::Recovery::Nothing => {}
        outcome => info!(?outcome, "startup recovery"),
    }

    let backup_password = read_password("backup", args.backup_password_file.as_deref())?;
    let fence_password = read_password("fence", args.fence_password_file.as_deref())?;
    let clone = clone::CloneConfig {
        stream_listen: args.stream_listen(),
        backup_user: args.backup_user.clone(),
        backup_password,
        tls: tls.clone(),
    };
    info!(stream_listen = %clone.stream_listen, backup_user = %clone.backup_user, "clone settings");
    let fence = fence::FenceConfig {
        user: args.fence_user.clone(),
        password: fence_password,
    };
    let state = AppState::new(host, clone, fence);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| StartupError::Listen {
            addr: args.listen,
            source,
        })?;
    if let Some(addr) = args.metrics_listen {
        serve_metrics(addr, state.clone()).await?;
    }
    match &tls {
        Some(_) => info!(addr = %args.listen, "listening (mutual TLS)"),
        None => {
            warn!(addr = %args.listen, "listening in PLAINTEXT (--insecure): API and backup stream are unencrypted")
        }
    }

    if args.supervise {
        autostart(state.clone());
    }

    let jobs = state.jobs.clone();
    let router = api::router(state, token);
    match tls {
        Some(tls) => {
            let listener =
                tls::TlsListener::new(listener, tls.acceptor).map_err(StartupError::Serve)?;
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<api::Peer>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await
        }
        None => {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<api::Peer>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await
        }
    }
    .map_err(StartupError::Serve)?;
    // A clone half done would leave the host without its datadir: let the
    // jobs put things back first (a restore includes a mysqld restart).
    jobs.shutdown(JOB_SHUTDOWN_TIMEOUT).await;
    info!("flipover-agent stopped (mysqld left as it is)");
    Ok(())
}

/// A password file's text without its trailing newline.
fn read_password(
    what: &'static str,
    path: Option<&std::path::Path>,
) -> Result<Option<String>, StartupError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|source| StartupError::PasswordFile {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
}

/// Serves /metrics alone, unauthenticated, on `addr` until the process exits.
async fn serve_metrics(addr: std::net::SocketAddr, state: AppState) -> Result<(), StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Listen { addr, source })?;
    info!(%addr, "serving /metrics without a token");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, metrics::router(state)).await {
            error!(error = %e, "the metrics listener failed");
        }
    });
    Ok(())
}

/// Under --supervise the agent stands in for the init system, so it brings
/// an initialised mysqld up at boot. Runs in the background holding the
/// action lock, so the API answers (facts, 409 for actions) meanwhile.
fn autostart(state: AppState) {
    let Ok(guard) = state.try_begin_action() else {
        return;
    };
    tokio::spawn(async move {
        let _guard = guard;
        let host = state.host.clone();
        let wanted = tokio::task::spawn_blocking(move || mysqld::should_autostart(&host)).await;
        match wanted {
            Ok(Ok(mysqld::Autostart::Start)) => {
                info!("datadir is initialised and mysqld is down: starting it");
                if let Err(e) = mysqld::start(&state.host).await {
                    error!(error = %e, "starting mysqld at agent startup failed");
                }
            }
            Ok(Ok(mysqld::Autostart::AlreadyRunning)) => {
                info!("not starting mysqld at startup: it already runs")
            }
            Ok(Ok(mysqld::Autostart::NotInitialised)) => {
                info!("not starting mysqld at startup: the datadir is not initialised")
            }
            Ok(Ok(mysqld::Autostart::Fenced(fence))) => warn!(
                record = %fence.marker,
                mode = ?fence.mode,
                requested_by = fence.requested_by.as_deref().unwrap_or("-"),
                "not starting mysqld at startup: it is fenced (lift the fence to start it writable)"
            ),
            Ok(Err(e)) => error!(error = %e, "cannot decide whether to start mysqld"),
            Err(e) => error!(error = %e, "autostart check panicked"),
        }
    });
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the agent gracefully");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    info!("shutting down");
}
