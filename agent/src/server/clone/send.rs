//! The donor's side of a clone: stream `mariadb-backup --backup
//! --stream=xbstream` to the target's stream port. Only a backup that the
//! tool finished successfully gets the end marker; anything else just
//! closes the connection, so the target fails and restores.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use flipover_agent::protocol::{CloneSendRequest, JobKind, JobStatus};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::sync::OwnedMutexGuard;
use tracing::{info, warn};

use super::backup_tool::{self, ToolFailed, Tools};
use super::jobs::{Job, Jobs};
use super::stream::{self, SendError, CHUNK};
use super::CloneConfig;
use crate::server::api::{ApiError, AppState};
use crate::server::facts::HostInfo;
use crate::server::local::LocalServer;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SendJobError {
    #[error("cannot connect to the target's stream port {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("cannot create the backup's work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{error}; last lines of the backup tool's output:\n{tail}")]
    Stream { error: SendError, tail: String },
    #[error(transparent)]
    Tool(#[from] ToolFailed),
    #[error("sending the end of the stream failed: {0}")]
    End(#[source] std::io::Error),
    #[error("the agent is shutting down")]
    ShuttingDown,
}

struct Send {
    host: Arc<HostInfo>,
    config: Arc<CloneConfig>,
    jobs: Arc<Jobs>,
    job: Arc<Job>,
    tools: Tools,
    request: CloneSendRequest,
    work_dir: PathBuf,
    /// The backup tool connects here, not to its compiled-in socket.
    local: LocalServer,
}

/// POST /v1/clone/send: checks, then streams in a background job.
pub async fn start(state: &AppState, request: CloneSendRequest) -> Result<JobStatus, ApiError> {
    super::check_stream_token(&request.stream_token)?;
    if request.target_host.trim().is_empty() || request.target_stream_port == 0 {
        return Err(ApiError::BadRequest(
            "target_host and target_stream_port are required".to_string(),
        ));
    }
    let guard = state.try_begin_action()?;
    let tools = Tools::find().map_err(ApiError::BadRequest)?;
    let host = state.host.clone();
    let (work_parent, local) = tokio::task::spawn_blocking(move || read_conf(&host))
        .await
        .map_err(|e| ApiError::Failed(format!("reading the config panicked: {e}")))??;
    let job = state
        .jobs
        .create(JobKind::CloneSend, "connecting to the target");
    info!(job = %job.id, target = %format!("{}:{}", request.target_host, request.target_stream_port), "clone send starts");
    let send = Send {
        host: state.host.clone(),
        config: state.clone.clone(),
        jobs: state.jobs.clone(),
        work_dir: work_parent.join(format!("flipover-send-{}", job.id)),
        job: job.clone(),
        tools,
        request,
        local,
    };
    state.jobs.spawn(run(send, guard));
    Ok(job.status())
}

/// Where the backup tool's scratch directory goes, and the server's socket.
/// The scratch directory lives under the server's tmpdir (first of a `:`
/// list), else next to the datadir.
fn read_conf(host: &HostInfo) -> Result<(PathBuf, LocalServer), ApiError> {
    let conf = host
        .load_conf()
        .map_err(|e| ApiError::Failed(format!("cannot read the server config: {e}")))?;
    let version = host.version();
    let local = LocalServer::from_settings(&conf.settings(version));
    let tmpdir = conf
        .server_options(version)
        .get("tmpdir")
        .cloned()
        .flatten()
        .and_then(|t| t.split(':').next().map(str::to_string))
        .filter(|t| !t.is_empty());
    let work_parent = match tmpdir {
        Some(t) => PathBuf::from(t),
        None => {
            let datadir: PathBuf = conf.datadir(version).components().collect();
            datadir
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
        }
    };
    Ok((work_parent, local))
}

async fn run(send: Send, _action: OwnedMutexGuard<()>) {
    let outcome = stream_backup(&send).await;
    if let Err(e) = std::fs::remove_dir_all(&send.work_dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(dir = %send.work_dir.display(), error = %e, "cannot remove the backup's work directory");
        }
    }
    match outcome {
        Ok(()) => send.job.succeed(None),
        Err(e) => send.job.fail("failed", e.to_string()),
    }
}

async fn stream_backup(s: &Send) -> Result<(), SendJobError> {
    let addr = format!("{}:{}", s.request.target_host, s.request.target_stream_port);
    let connect_error = |message: String| SendJobError::Connect {
        addr: addr.clone(),
        message,
    };
    let connect = async {
        let tcp =
            TcpStream::connect((s.request.target_host.as_str(), s.request.target_stream_port))
                .await
                .map_err(|e| e.to_string())?;
        // The donor is the TLS client: it checks the target's certificate
        // against the CA and presents its own host certificate.
        let conn: Box<dyn AsyncWrite + std::marker::Send + Unpin> = match &s.config.tls {
            Some(tls) => {
                let name = ServerName::try_from(s.request.target_host.clone()).map_err(|e| {
                    format!("`{}` is not a TLS server name: {e}", s.request.target_host)
                })?;
                Box::new(
                    tls.connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("TLS handshake failed: {e}"))?,
                )
            }
            None => Box::new(tcp),
        };
        Ok::<_, String>(conn)
    };
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| connect_error(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(connect_error)?;
    stream::write_header(&mut conn, &s.request.stream_token)
        .await
        .map_err(|e| connect_error(e.to_string()))?;

    std::fs::create_dir(&s.work_dir).map_err(|source| SendJobError::WorkDir {
        path: s.work_dir.clone(),
        source,
    })?;
    let program = &s.tools.backup;
    let mut command = Command::new(program);
    // --defaults-file must come first.
    command
        .arg(format!("--defaults-file={}", s.host.conf_path.display()))
        .args(s.local.tool_args())
        .arg("--backup")
        .arg("--stream=xbstream")
        .arg(format!("--user={}", s.config.backup_user));
    if let Some(password) = &s.config.backup_password {
        command.arg(format!("--password={password}"));
    }
    command.arg(format!("--target-dir={}", s.work_dir.display()));
    let spawn_error = |source| SendJobError::Spawn {
        program: program.display().to_string(),
        source,
    };
    let (mut child, tail) =
        backup_tool::spawn(&mut command, Stdio::null(), Stdio::piped()).map_err(spawn_error)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // A bigger pipe means fewer, larger reads (best effort; 64 KiB default).
    let _ = nix::fcntl::fcntl(
        stdout.as_fd(),
        nix::fcntl::FcntlArg::F_SETPIPE_SZ(CHUNK as i32),
    );
    s.job.set_phase("streaming the backup");
    info!(job = %s.job.id, target = %addr, "backup tool started, streaming");

    let sent = tokio::select! {
        sent = stream::send_frames(&mut stdout, &mut conn, &s.job.bytes) => sent.map_err(Some),
        _ = s.jobs.cancelled() => Err(None),
    };
    let sent = match sent {
        Ok(sent) => sent,
        Err(error) => {
            let _ = child.kill().await;
            return Err(match error {
                Some(error) => SendJobError::Stream {
                    error,
                    tail: tail.text().await,
                },
                None => SendJobError::ShuttingDown,
            });
        }
    };
    let status = child.wait().await.map_err(spawn_error)?;
    if !status.success() {
        // Dropping `conn` without the end marker fails the target.
        return Err(ToolFailed::new(program, status, tail.text().await).into());
    }
    stream::write_end(&mut conn, sent)
        .await
        .map_err(SendJobError::End)?;
    conn.shutdown().await.map_err(SendJobError::End)?;
    info!(job = %s.job.id, bytes = sent, "backup sent");
    Ok(())
}
