//! The HTTP routes, their shared state, and how errors become responses.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flipover_agent::protocol::{routes, ErrorBody, Facts};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tracing::{error, info, warn};

use super::auth::{require_token, Token};
use super::facts::{self, HostInfo};
use super::mysqld;

/// Shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub host: Arc<HostInfo>,
    /// Held for the whole of a start or stop: one mysqld action at a time.
    pub action: Arc<Mutex<()>>,
}

impl AppState {
    pub fn new(host: HostInfo) -> AppState {
        AppState {
            host: Arc::new(host),
            action: Arc::new(Mutex::new(())),
        }
    }

    /// The action lock, or Busy when another action holds it. Not waiting
    /// is deliberate: a caller retrying a stuck start should learn why.
    pub fn try_begin_action(&self) -> Result<OwnedMutexGuard<()>, ApiError> {
        self.action
            .clone()
            .try_lock_owned()
            .map_err(|_| ApiError::Busy("another mysqld start or stop is in progress".to_string()))
    }
}

pub fn router(state: AppState, token: Token) -> Router {
    Router::new()
        .route(routes::FACTS, get(get_facts))
        .route(routes::MYSQLD_START, post(start_mysqld))
        .route(routes::MYSQLD_STOP, post(stop_mysqld))
        .fallback(not_found)
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
    NotFound(String),
    Busy(String),
    Failed(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_string()),
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

async fn start_mysqld(State(state): State<AppState>) -> Result<Json<Facts>, ApiError> {
    let _guard = state.try_begin_action()?;
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
    tokio::task::spawn_blocking(move || facts::gather(&host))
        .await
        .map_err(|e| ApiError::Failed(format!("gathering facts panicked: {e}")))?
        .map_err(|e| ApiError::Failed(format!("cannot read the server config: {e}")))
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
