//! The target's side of a clone: prechecks that change nothing, then in
//! the background stop mysqld, swap the datadir, receive, unpack, prepare,
//! start mysqld. Any failure after the first change puts everything back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use flipover_agent::protocol::{CloneReceiveRequest, CloneResult, JobKind, JobStatus};
use tokio::io::{AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::OwnedMutexGuard;
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};

use super::backup_tool::{self, parse_binlog_info, BinlogInfo, ToolFailed, Tools};
use super::datadir::{self, DatadirError, Swap};
use super::jobs::{Job, Jobs};
use super::stream::{self, StreamError, CHUNK};
use crate::server::api::{ApiError, AppState};
use crate::server::facts::{free_disk_bytes, HostInfo};
use crate::server::mysqld::{self, MysqldError};
use crate::server::process::running_mysqld_pid;

/// How long the target waits for a donor with the right token.
const DONOR_TIMEOUT: Duration = Duration::from_secs(120);
/// A connection must say who it is quickly (TLS handshake and header); the
/// listener serves one at a time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The donor's connection, TLS or (with --insecure) plain TCP.
type DonorStream = BufReader<Box<dyn AsyncRead + Send + Unpin>>;
/// Headroom on top of the donor's size: 10% plus this.
const SPARE_BYTES: u128 = 64 << 20;
/// Memory for `--prepare`: more is faster, and the target's mysqld is down.
const PREPARE_MEMORY: &str = "--use-memory=256M";

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error(transparent)]
    Mysqld(#[from] MysqldError),
    #[error(transparent)]
    Datadir(#[from] DatadirError),
    #[error("no donor presented the stream token on {addr} within {}s", DONOR_TIMEOUT.as_secs())]
    NoDonor { addr: SocketAddr },
    #[error("{error}{}", tool_tail(.tail))]
    Stream { error: StreamError, tail: String },
    #[error(transparent)]
    Tool(#[from] ToolFailed),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the backup's binlog position from {path}: {message}")]
    BinlogInfo { path: PathBuf, message: String },
    #[error("the agent is shutting down")]
    ShuttingDown,
    #[error("a background step panicked: {0}")]
    Panicked(String),
}

fn tool_tail(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last lines of the unpacker's output:\n{tail}")
    }
}

/// What the prechecks found, for the background job.
struct Checked {
    datadir: PathBuf,
    pid_file: PathBuf,
    tools: Tools,
    unpack: PathBuf,
}

/// Everything the background job needs.
struct Receive {
    host: Arc<HostInfo>,
    jobs: Arc<Jobs>,
    job: Arc<Job>,
    listener: TcpListener,
    addr: SocketAddr,
    token: String,
    /// `None` only with --insecure.
    tls: Option<TlsAcceptor>,
    checked: Checked,
}

/// POST /v1/clone/receive: prechecks (nothing changes when one fails),
/// binds the stream port, and leaves the rest to a background job.
pub async fn start(state: &AppState, request: CloneReceiveRequest) -> Result<JobStatus, ApiError> {
    super::check_stream_token(&request.stream_token)?;
    let guard = state.try_begin_action()?;
    let host = state.host.clone();
    let request_copy = request.clone();
    let checked = tokio::task::spawn_blocking(move || precheck(&host, &request_copy))
        .await
        .map_err(|e| ApiError::Failed(format!("the prechecks panicked: {e}")))??;
    // Bound before answering, so the donor can connect as soon as it is told to.
    let addr = state.clone.stream_listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ApiError::Failed(format!("cannot listen for the stream on {addr}: {e}")))?;
    let job = state.jobs.create(JobKind::CloneReceive, "stopping mysqld");
    info!(job = %job.id, datadir = %checked.datadir.display(), %addr, replace = request.replace, "clone receive starts");
    let receive = Receive {
        host: state.host.clone(),
        jobs: state.jobs.clone(),
        job: job.clone(),
        listener,
        addr,
        token: request.stream_token,
        tls: state.clone.tls.as_ref().map(|t| t.acceptor.clone()),
        checked,
    };
    state.jobs.spawn(run(receive, guard));
    Ok(job.status())
}

fn precheck(host: &HostInfo, request: &CloneReceiveRequest) -> Result<Checked, ApiError> {
    let (tools, unpack) = Tools::find_for_receive().map_err(ApiError::BadRequest)?;
    let conf = host
        .load_conf()
        .map_err(|e| ApiError::Failed(format!("cannot read the server config: {e}")))?;
    let version = host.version();
    // Normalised (no trailing slash) so the sibling name is right.
    let datadir: PathBuf = conf.datadir(version).components().collect();
    if !datadir.is_absolute() || datadir.parent().is_none_or(|p| p.as_os_str().is_empty()) {
        return Err(ApiError::BadRequest(format!(
            "the datadir {} must be an absolute path below /",
            datadir.display()
        )));
    }
    if datadir::is_mount_point(&datadir) {
        return Err(ApiError::BadRequest(format!(
            "the datadir {} is a mount point; a clone moves the datadir aside, so use a \
             subdirectory of the mount as datadir",
            datadir.display()
        )));
    }
    let free = free_disk_bytes(&datadir).ok_or_else(|| {
        ApiError::Failed(format!(
            "cannot tell the free disk space at {}",
            datadir.display()
        ))
    })?;
    // The previous datadir stays until confirmed, so the copy needs all of it.
    let needed = u128::from(request.expected_bytes) * 11 / 10 + SPARE_BYTES;
    if u128::from(free) < needed {
        return Err(ApiError::BadRequest(format!(
            "not enough free disk for the clone on the filesystem of {}: {free} bytes free, \
             {needed} needed (the donor's {} bytes + 10% + 64 MiB; the current datadir is kept \
             until the clone is confirmed)",
            datadir.display(),
            request.expected_bytes
        )));
    }
    if !request.replace {
        let user =
            datadir::user_databases(&datadir).map_err(|e| ApiError::Failed(e.to_string()))?;
        if !user.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "refusing to overwrite user data without replace: the datadir {} holds the \
                 databases {}",
                datadir.display(),
                user.join(", ")
            )));
        }
    }
    let pid_file = PathBuf::from(conf.settings(version).pid_file.unwrap_or_default());
    Ok(Checked {
        datadir,
        pid_file,
        tools,
        unpack,
    })
}

/// What to undo on failure, filled in as the job changes things.
#[derive(Default)]
struct Undo {
    was_running: bool,
    swap: Option<Swap>,
    started_new: bool,
}

async fn run(receive: Receive, _action: OwnedMutexGuard<()>) {
    let mut undo = Undo::default();
    let job = receive.job.clone();
    match forward(&receive, &mut undo).await {
        Ok(result) => job.succeed(Some(result)),
        Err(e) => {
            error!(job = %job.id, error = %e, "clone receive failed; restoring");
            match rollback(&receive, undo).await {
                Ok(()) => job.fail("failed; the previous datadir is restored", e.to_string()),
                Err(problems) => job.fail(
                    "failed; restoring the previous datadir failed too",
                    format!("{e}\nRESTORING FAILED: {problems}"),
                ),
            }
        }
    }
}

async fn forward(r: &Receive, undo: &mut Undo) -> Result<CloneResult, ReceiveError> {
    let c = &r.checked;
    // 1. stop mysqld
    undo.was_running = running_mysqld_pid(&c.pid_file).is_some();
    if undo.was_running {
        mysqld::stop(&r.host).await?;
    }
    // 2. move the datadir aside
    r.job.set_phase("moving the datadir aside");
    let (datadir, id) = (c.datadir.clone(), r.job.id.clone());
    let swap = blocking(move || datadir::move_aside(&datadir, &id)).await??;
    undo.swap = Some(swap.clone());
    // 3. wait for the donor
    r.job.set_phase("waiting for the donor");
    let mut donor = tokio::select! {
        donor = accept_donor(&r.listener, r.addr, r.tls.as_ref(), &r.token) => donor?,
        _ = r.jobs.cancelled() => return Err(ReceiveError::ShuttingDown),
    };
    // 4. receive and unpack
    r.job.set_phase("receiving");
    let bytes = unpack(r, &mut donor, &c.datadir).await?;
    drop(donor);
    // 5. prepare
    r.job.set_phase("preparing");
    prepare(r).await?;
    // 6. the binlog position
    let info = binlog_info(&c.datadir)?;
    // 7. ownership
    r.job.set_phase("fixing file ownership");
    let (dir, uid, gid) = (c.datadir.clone(), swap.uid, swap.gid);
    blocking(move || datadir::chown_tree(&dir, uid, gid)).await??;
    // 8. start mysqld on the new data
    r.job.set_phase("starting mysqld");
    undo.started_new = true;
    mysqld::start(&r.host).await?;
    info!(job = %r.job.id, bytes, binlog_file = %info.file, position = info.position, gtid = %info.gtid, "clone received and running");
    Ok(CloneResult {
        binlog_file: info.file,
        binlog_position: info.position,
        gtid: info.gtid,
        previous_datadir: swap.previous.map(|p| p.display().to_string()),
        bytes,
    })
}

/// Accepts connections until one presents the token (after a TLS handshake
/// with a certificate from the CA, unless --insecure); strangers, failed
/// handshakes and wrong tokens are dropped (and logged), the wait goes on.
async fn accept_donor(
    listener: &TcpListener,
    addr: SocketAddr,
    tls: Option<&TlsAcceptor>,
    token: &str,
) -> Result<DonorStream, ReceiveError> {
    let deadline = tokio::time::Instant::now() + DONOR_TIMEOUT;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| ReceiveError::NoDonor { addr })?;
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Per-connection failures (aborted handshakes, fd limits)
                // must not end the wait.
                warn!(error = %e, "accepting a stream connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let introduced = async {
            let socket: Box<dyn AsyncRead + Send + Unpin> = match tls {
                Some(acceptor) => Box::new(
                    acceptor
                        .accept(socket)
                        .await
                        .map_err(|e| format!("TLS handshake failed: {e}"))?,
                ),
                None => Box::new(socket),
            };
            let mut reader = BufReader::with_capacity(4 + CHUNK, socket);
            let right = stream::read_header(&mut reader, token)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((right, reader))
        };
        match tokio::time::timeout(HEADER_TIMEOUT, introduced).await {
            Ok(Ok((true, reader))) => {
                info!(%peer, "donor connected");
                return Ok(reader);
            }
            Ok(Ok((false, _))) => warn!(%peer, "wrong stream token; dropping the connection"),
            Ok(Err(e)) => warn!(%peer, error = %e, "refusing a stream connection"),
            Err(_) => {
                warn!(%peer, "no handshake and stream header within {}s; dropping the connection", HEADER_TIMEOUT.as_secs())
            }
        }
    }
}

/// Pipes the stream into `mbstream -x -C <datadir>`; the unpacker is killed
/// (and waited for) on any failure so nothing writes into the datadir
/// while it is being removed.
async fn unpack(r: &Receive, donor: &mut DonorStream, dir: &Path) -> Result<u64, ReceiveError> {
    let program = &r.checked.unpack;
    let mut command = Command::new(program);
    command.arg("-x").arg("-C").arg(dir);
    let (mut child, tail) = backup_tool::spawn(&mut command, Stdio::piped(), Stdio::null())
        .map_err(|source| ReceiveError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let copied = tokio::select! {
        copied = stream::receive_frames(donor, &mut stdin, &r.job.bytes) => copied.map_err(Some),
        _ = r.jobs.cancelled() => Err(None),
    };
    // EOF for the unpacker.
    drop(stdin);
    match copied {
        Ok(bytes) => {
            let status = child.wait().await.map_err(|source| ReceiveError::Spawn {
                program: program.display().to_string(),
                source,
            })?;
            if !status.success() {
                return Err(ToolFailed::new(program, status, tail.text().await).into());
            }
            Ok(bytes)
        }
        Err(error) => {
            let _ = child.kill().await;
            match error {
                Some(error) => Err(ReceiveError::Stream {
                    error,
                    tail: tail.text().await,
                }),
                None => Err(ReceiveError::ShuttingDown),
            }
        }
    }
}

/// `mariadb-backup --prepare`: applies the redo log so the copy is consistent.
async fn prepare(r: &Receive) -> Result<(), ReceiveError> {
    let program = &r.checked.tools.backup;
    let mut command = Command::new(program);
    // --defaults-file must come first.
    command
        .arg(format!("--defaults-file={}", r.host.conf_path.display()))
        .arg("--prepare")
        .arg(format!("--target-dir={}", r.checked.datadir.display()))
        .arg(PREPARE_MEMORY);
    let spawn_error = |source| ReceiveError::Spawn {
        program: program.display().to_string(),
        source,
    };
    let (mut child, tail) =
        backup_tool::spawn(&mut command, Stdio::null(), Stdio::null()).map_err(spawn_error)?;
    let status = tokio::select! {
        status = child.wait() => status.map_err(spawn_error)?,
        _ = r.jobs.cancelled() => {
            let _ = child.kill().await;
            return Err(ReceiveError::ShuttingDown);
        }
    };
    if !status.success() {
        return Err(ToolFailed::new(program, status, tail.text().await).into());
    }
    Ok(())
}

/// The binlog coordinates recorded by the backup; all empty when the donor
/// had no binary log (the tools then write no such file).
fn binlog_info(dir: &Path) -> Result<BinlogInfo, ReceiveError> {
    for name in Tools::binlog_info_files() {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return parse_binlog_info(&text)
                    .map_err(|message| ReceiveError::BinlogInfo { path, message });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ReceiveError::BinlogInfo {
                    path,
                    message: e.to_string(),
                })
            }
        }
    }
    warn!(dir = %dir.display(), "the backup records no binlog position (binary log off on the donor?)");
    Ok(BinlogInfo::default())
}

/// Puts the target back as it was: mysqld on the new data stopped, the new
/// datadir removed, the previous one renamed back, mysqld started if it ran.
/// Each step runs only if the ones before it worked, so a running mysqld
/// never loses its datadir underneath it.
async fn rollback(r: &Receive, undo: Undo) -> Result<(), String> {
    r.job.set_phase("restoring the previous datadir");
    if undo.started_new {
        mysqld::stop(&r.host)
            .await
            .map_err(|e| format!("stopping mysqld on the new data failed: {e}"))?;
    }
    if let Some(swap) = undo.swap {
        let kept = swap.previous.clone();
        blocking(move || datadir::restore(&swap))
            .await
            .and_then(|r| r.map_err(ReceiveError::from))
            .map_err(|e| match kept {
                Some(p) => format!("{e}; the previous datadir is still at {}", p.display()),
                None => e.to_string(),
            })?;
    }
    if undo.was_running {
        r.job.set_phase("starting mysqld on the previous datadir");
        mysqld::start(&r.host)
            .await
            .map_err(|e| format!("the previous datadir is back but starting mysqld failed: {e}"))?;
    }
    info!(job = %r.job.id, "the previous datadir is restored");
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ReceiveError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ReceiveError::Panicked(e.to_string()))
}
