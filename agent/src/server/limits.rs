//! Limits on what a client can make the agent hold: the size of a request
//! body, the time to send it, and (as a backstop) the time of a request.
//! Bodies are small JSON documents, so a larger or slower one is not a
//! flipover client.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::timeout::TimeoutLayer;

use flipover_agent::protocol::ErrorBody;
use http_body_util::LengthLimitError;

use super::api::AppState;

/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 << 10;
/// Time a client has to send its whole body once the headers are in (408 beyond).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A request never takes longer than this. Longer than every action's own
/// timeout (a service manager's start or stop: 10 minutes), so it cuts only
/// a handler that hangs, never a start or stop still in progress.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Wraps the routes (inside authentication, so strangers get their 401
/// before anything of their body is read).
pub fn apply(router: Router<AppState>) -> Router<AppState> {
    router
        .layer(middleware::from_fn(read_body_within_limits))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// Reads the whole body up front, within [`MAX_BODY_BYTES`] and
/// [`BODY_TIMEOUT`], so a handler never waits on a slow or endless client.
async fn read_body_within_limits(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, MAX_BODY_BYTES);
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_length_limit(&e) => return too_large(),
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("reading the request body failed: {e}"),
            )
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {}s",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
    )
}

fn error(status: StatusCode, error: String) -> Response {
    (status, axum::Json(ErrorBody { error })).into_response()
}
