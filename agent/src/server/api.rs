//! The HTTP routes, their shared state, and how errors become responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::{Extension, Json, Router};
use flipover_agent::protocol::{
    routes, CloneReceiveRequest, CloneSendRequest, ConfirmCloneRequest, ErrorBody, Facts,
    FenceOutcome, FenceRequest, JobKind, JobState, JobStatus, LiftFenceRequest, LocalProbe,
    LocalProbeRequest, RemoteProbe, RemoteProbeRequest, StartRequest, MAX_DEADLINE_MS,
};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tracing::{error, info, warn};

use super::auth::{require_token, Token};
use super::clone::jobs::Jobs;
use super::clone::{self, CloneConfig};
use super::facts::{self, HostInfo};
use super::fence::{self, marker, FenceConfig};
use super::{metrics, mysqld, probe};

/// Shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub host: Arc<HostInfo>,
    /// Held for the whole of a start or stop, and of a clone job: one
    /// action at a time, and no mysqld start/stop while a clone runs.
    pub action: Arc<Mutex<()>>,
    pub jobs: Arc<Jobs>,
    pub clone: Arc<CloneConfig>,
    pub fence: Arc<FenceConfig>,
}

impl AppState {
    pub fn new(host: HostInfo, clone: CloneConfig, fence: FenceConfig) -> AppState {
        AppState {
            host: Arc::new(host),
            action: Arc::new(Mutex::new(())),
            jobs: Arc::new(Jobs::default()),
            clone: Arc::new(clone),
            fence: Arc::new(fence),
        }
    }

    /// The action lock, or Busy when another action holds it. Not waiting
    /// is deliberate: a caller retrying a stuck start should learn why.
    pub fn try_begin_action(&self) -> Result<OwnedMutexGuard<()>, ApiError> {
        self.action.clone().try_lock_owned().map_err(|_| {
            ApiError::Busy(match self.jobs.running() {
                Some(job) => format!("{} is running", describe_job(&job.status())),
                None => "another mysqld start or stop is in progress".to_string(),
            })
        })
    }
}

/// "clone_receive job 0123… (receiving)".
fn describe_job(status: &JobStatus) -> String {
    let kind = match status.kind {
        JobKind::CloneReceive => "clone_receive",
        JobKind::CloneSend => "clone_send",
    };
    format!("{kind} job {} ({})", status.id, status.phase)
}

pub fn router(state: AppState, token: Token) -> Router {
    let app = Router::new()
        .route(routes::FACTS, get(get_facts))
        .route(routes::MYSQLD_START, post(start_mysqld))
        .route(routes::MYSQLD_STOP, post(stop_mysqld))
        .route(routes::CLONE_RECEIVE, post(clone_receive))
        .route(routes::CLONE_SEND, post(clone_send))
        .route(routes::CLONE_CONFIRM, post(confirm_clone))
        .route(routes::JOB, get(get_job))
        .route(routes::PROBE_LOCAL, post(probe_local))
        .route(routes::PROBE_REMOTE, post(probe_remote))
        .route(routes::FENCE, post(fence_mysqld))
        .route(routes::FENCE_LIFT, post(lift_fence))
        .route(metrics::PATH, get(metrics::get_metrics))
        .fallback(not_found);
    super::limits::apply(app)
        // Layers added later wrap earlier ones: auth covers the fallback
        // too, and logging sees the 401s.
        .layer(middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// An error answered as JSON [`ErrorBody`].
#[derive(Debug)]
pub enum ApiError {
    Unauthorized(&'static str),
    BadRequest(String),
    NotFound(String),
    Busy(String),
    Failed(String),
}

impl ApiError {
    /// The error's text, as the response body carries it.
    pub fn message(&self) -> &str {
        match self {
            ApiError::Unauthorized(m) => m,
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::Busy(m)
            | ApiError::Failed(m) => m,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_string()),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Busy(m) => (StatusCode::CONFLICT, m),
            ApiError::Failed(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

async fn get_facts(State(state): State<AppState>) -> Result<Json<Facts>, ApiError> {
    current_facts(&state).await.map(Json)
}

/// The request's deadline, refused when absent (0) or above the maximum.
pub fn request_deadline(deadline_ms: u64) -> Result<Duration, ApiError> {
    if deadline_ms == 0 || deadline_ms > MAX_DEADLINE_MS {
        return Err(ApiError::BadRequest(format!(
            "deadline_ms must be 1 to {MAX_DEADLINE_MS}, not {deadline_ms}"
        )));
    }
    Ok(Duration::from_millis(deadline_ms))
}

/// Runs blocking file work (the my.cnf, /proc, the fence record) off the
/// async workers, giving up at `until`: a hung disk must not keep a probe
/// or a fence from answering within its deadline (the work itself goes on
/// in its thread).
pub async fn blocking_until<T: Send + 'static>(
    until: tokio::time::Instant,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::time::timeout_at(until, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiError::Failed(format!("{what} panicked: {e}"))),
        Err(_) => Err(ApiError::Failed(format!(
            "{what} did not finish within the deadline"
        ))),
    }
}

/// The address a request came from (the TLS listener's peer, or TCP's).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// axum keeps the connection's [`Peer`] as an extension (when served with
/// connect info).
fn peer_address(peer: Option<Extension<ConnectInfo<Peer>>>) -> Option<SocketAddr> {
    peer.map(|Extension(ConnectInfo(Peer(address)))| address)
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, super::tls::TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, super::tls::TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

async fn start_mysqld(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    request: Option<Json<StartRequest>>,
) -> Result<Json<Facts>, ApiError> {
    let request = request.map(|Json(r)| r).unwrap_or_default();
    let _guard = state.try_begin_action()?;
    if request.lift_fence {
        remove_fence(&state, request.requested_by.as_deref(), peer_address(peer)).await?;
    }
    mysqld::start(&state.host).await.map_err(|e| {
        error!(error = %e, "starting mysqld failed");
        ApiError::Failed(format!("starting mysqld failed: {e}"))
    })?;
    current_facts(&state).await.map(Json)
}

async fn stop_mysqld(State(state): State<AppState>) -> Result<Json<Facts>, ApiError> {
    let _guard = state.try_begin_action()?;
    mysqld::stop(&state.host).await.map_err(|e| {
        error!(error = %e, "stopping mysqld failed");
        ApiError::Failed(format!("stopping mysqld failed: {e}"))
    })?;
    current_facts(&state).await.map(Json)
}

async fn probe_local(
    State(state): State<AppState>,
    Json(request): Json<LocalProbeRequest>,
) -> Result<Json<LocalProbe>, ApiError> {
    probe::local(&state, request).await.map(Json)
}

async fn probe_remote(
    Json(request): Json<RemoteProbeRequest>,
) -> Result<Json<RemoteProbe>, ApiError> {
    probe::remote(request).await.map(Json)
}

async fn fence_mysqld(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    Json(request): Json<FenceRequest>,
) -> Result<Json<FenceOutcome>, ApiError> {
    fence::fence(&state, request, peer_address(peer))
        .await
        .map(Json)
}

async fn lift_fence(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    request: Option<Json<LiftFenceRequest>>,
) -> Result<Json<Facts>, ApiError> {
    let request = request.map(|Json(r)| r).unwrap_or_default();
    remove_fence(&state, request.requested_by.as_deref(), peer_address(peer)).await?;
    current_facts(&state).await.map(Json)
}

/// Deletes the fence record (logged as a warning, with who asked).
async fn remove_fence(
    state: &AppState,
    requested_by: Option<&str>,
    peer: Option<SocketAddr>,
) -> Result<(), ApiError> {
    let host = state.host.clone();
    let removed = tokio::task::spawn_blocking(move || {
        let conf = host
            .load_conf()
            .map_err(|e| ApiError::Failed(format!("cannot read the server config: {e}")))?;
        let path = marker::path_for(&conf.datadir(host.version()));
        marker::remove(&path)
            .map(|removed| (path, removed))
            .map_err(|e| ApiError::Failed(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::Failed(format!("lifting the fence panicked: {e}")))??;
    let (path, removed) = removed;
    if removed {
        warn!(
            record = %path.display(),
            requested_by = requested_by.unwrap_or("-"),
            peer = %peer.map(|p| p.to_string()).unwrap_or_else(|| "-".to_string()),
            "fence lifted"
        );
    }
    Ok(())
}

async fn clone_receive(
    State(state): State<AppState>,
    Json(request): Json<CloneReceiveRequest>,
) -> Result<Json<JobStatus>, ApiError> {
    clone::receive::start(&state, request).await.map(Json)
}

async fn clone_send(
    State(state): State<AppState>,
    Json(request): Json<CloneSendRequest>,
) -> Result<Json<JobStatus>, ApiError> {
    clone::send::start(&state, request).await.map(Json)
}

async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    state
        .jobs
        .get(&id)
        .map(|job| Json(job.status()))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no job {id} (jobs are forgotten when the agent restarts)"
            ))
        })
}

/// Deletes the previous datadir a succeeded receive kept; repeating it is
/// harmless.
async fn confirm_clone(
    State(state): State<AppState>,
    Json(request): Json<ConfirmCloneRequest>,
) -> Result<Json<JobStatus>, ApiError> {
    let id = &request.job_id;
    let job = state.jobs.get(id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no job {id} (jobs are forgotten when the agent restarts)"
        ))
    })?;
    let status = job.status();
    if status.kind != JobKind::CloneReceive || status.state != JobState::Succeeded {
        return Err(ApiError::BadRequest(format!(
            "only a succeeded clone_receive job can be confirmed; {} is {:?}",
            describe_job(&status),
            status.state
        )));
    }
    if let Some(previous) = status.result.and_then(|r| r.previous_datadir) {
        info!(job = %id, previous = %previous, "clone confirmed: deleting the previous datadir");
        let path = std::path::PathBuf::from(&previous);
        tokio::task::spawn_blocking(move || clone::datadir::discard(&path))
            .await
            .map_err(|e| ApiError::Failed(format!("deleting {previous} panicked: {e}")))?
            .map_err(|e| {
                ApiError::Failed(format!(
                    "deleting the previous datadir {previous} failed: {e}"
                ))
            })?;
        job.update_result(|r| r.previous_datadir = None);
    }
    Ok(Json(job.status()))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no such endpoint: {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Facts gathering walks the datadir; keep it off the async workers.
async fn current_facts(state: &AppState) -> Result<Facts, ApiError> {
    let host = state.host.clone();
    let mut facts = tokio::task::spawn_blocking(move || facts::gather(&host))
        .await
        .map_err(|e| ApiError::Failed(format!("gathering facts panicked: {e}")))?
        .map_err(|e| ApiError::Failed(format!("cannot read the server config: {e}")))?;
    facts.stream_listen = Some(state.clone.stream_listen.to_string());
    if let Some(job) = state.jobs.running() {
        let status = job.status();
        facts.busy_job = Some(describe_job(&status));
        facts.busy_job_id = Some(status.id);
    }
    facts.unconfirmed_clone_job = state.jobs.unconfirmed_receive().map(|job| job.id.clone());
    Ok(facts)
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_millis() as u64;
    if response.status().is_server_error() || status == 401 {
        warn!(%method, %path, status, ms, "request");
    } else {
        info!(%method, %path, status, ms, "request");
    }
    response
}
