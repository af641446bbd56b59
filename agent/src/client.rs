//! Typed HTTP client for the agent API, used by the `flipover` CLI.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::protocol::{
    routes, CloneReceiveRequest, CloneSendRequest, ConfirmCloneRequest, ErrorBody, Facts,
    FenceOutcome, FenceRequest, JobStatus, LiftFenceRequest, LocalProbe, LocalProbeRequest,
    RemoteProbe, RemoteProbeRequest, StartRequest, MAX_DEADLINE_MS, PROTOCOL_VERSION,
};
use crate::tls::Transport;

/// Why a call to an agent failed; every variant names the agent so the
/// operator knows which host to look at.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("the TLS client settings are unusable: {message}")]
    Tls { message: String },
    #[error("agent at {url} refused the token (401): check access.agent_token")]
    Unauthorized { url: String },
    #[error("agent at {url} is busy with another action or job (409): {message}")]
    Busy { url: String, message: String },
    #[error("agent at {url} failed (HTTP {status}): {message}")]
    Failed {
        url: String,
        status: u16,
        message: String,
    },
    #[error("agent at {url} answered something flipover does not understand: {message}")]
    Protocol { url: String, message: String },
}

/// Beyond a probe's or fence's own deadline, the time the request and its
/// answer may take on the network.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// A client for one agent. Cheap to clone (the HTTP pool is shared).
#[derive(Debug, Clone)]
pub struct AgentClient {
    base_url: String,
    token: String,
    http: reqwest::Client,
}

impl AgentClient {
    /// A plaintext client: `base_url` like "http://127.42.1.1:836";
    /// `timeout` bounds each whole request, so it must cover a mysqld start
    /// or stop.
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> Self {
        Self::over(&Transport::Plaintext, base_url, token, timeout)
            .expect("building an HTTP client without TLS cannot fail")
    }

    /// A client over `transport`; `base_url` from [`Transport::agent_url`].
    pub fn over(
        transport: &Transport,
        base_url: &str,
        token: &str,
        timeout: Duration,
    ) -> Result<Self, AgentError> {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Transport::Tls(config) = transport {
            // reqwest takes rustls's config by value.
            builder = builder.use_preconfigured_tls(rustls::ClientConfig::clone(config));
        }
        let http = builder.build().map_err(|e| AgentError::Tls {
            message: error_chain(&e),
        })?;
        Ok(AgentClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// GET /v1/facts
    pub async fn facts(&self) -> Result<Facts, AgentError> {
        self.call_facts(Method::GET, routes::FACTS, None::<&()>)
            .await
    }

    /// POST /v1/mysqld/start; returns the facts after the start. A fenced
    /// host's mysqld starts read-only (see [`Self::start_mysqld_with`]).
    pub async fn start_mysqld(&self) -> Result<Facts, AgentError> {
        self.call_facts(Method::POST, routes::MYSQLD_START, None::<&()>)
            .await
    }

    /// POST /v1/mysqld/start with a body: `lift_fence` starts a fenced
    /// host's mysqld writable.
    pub async fn start_mysqld_with(&self, request: &StartRequest) -> Result<Facts, AgentError> {
        self.call_facts(Method::POST, routes::MYSQLD_START, Some(request))
            .await
    }

    /// POST /v1/mysqld/stop; returns the facts after the stop.
    pub async fn stop_mysqld(&self) -> Result<Facts, AgentError> {
        self.call_facts(Method::POST, routes::MYSQLD_STOP, None::<&()>)
            .await
    }

    /// POST /v1/probe/local: this host's mysqld, seen from the host, within
    /// `deadline` (at most [`crate::protocol::MAX_DEADLINE_MS`]).
    pub async fn probe_local(&self, deadline: Duration) -> Result<LocalProbe, AgentError> {
        let request = LocalProbeRequest {
            deadline_ms: deadline_ms(deadline),
        };
        self.call_within(deadline, routes::PROBE_LOCAL, &request)
            .await
    }

    /// POST /v1/probe/remote: `host:port`'s MySQL handshake, seen from
    /// this agent's host, within `deadline`.
    pub async fn probe_remote(
        &self,
        host: &str,
        port: u16,
        deadline: Duration,
    ) -> Result<RemoteProbe, AgentError> {
        let request = RemoteProbeRequest {
            host: host.to_string(),
            port,
            deadline_ms: deadline_ms(deadline),
        };
        self.call_within(deadline, routes::PROBE_REMOTE, &request)
            .await
    }

    /// POST /v1/fence: read-only or stopped, within the request's deadline;
    /// the outcome says whether the fence holds.
    pub async fn fence(&self, request: &FenceRequest) -> Result<FenceOutcome, AgentError> {
        let deadline = Duration::from_millis(request.deadline_ms);
        self.call_within(deadline, routes::FENCE, request).await
    }

    /// POST /v1/fence/lift; returns the facts after (`fenced: None`).
    pub async fn lift_fence(&self, request: &LiftFenceRequest) -> Result<Facts, AgentError> {
        self.call_facts(Method::POST, routes::FENCE_LIFT, Some(request))
            .await
    }

    /// POST /v1/clone/receive: prechecks, then the target waits for the
    /// donor in the background; poll the returned job with [`Self::job`].
    pub async fn clone_receive(
        &self,
        request: &CloneReceiveRequest,
    ) -> Result<JobStatus, AgentError> {
        self.call(Method::POST, routes::CLONE_RECEIVE, Some(request))
            .await
    }

    /// POST /v1/clone/send: the donor streams a backup to the target.
    pub async fn clone_send(&self, request: &CloneSendRequest) -> Result<JobStatus, AgentError> {
        self.call(Method::POST, routes::CLONE_SEND, Some(request))
            .await
    }

    /// GET /v1/jobs/{id}; an unknown id is `Failed { status: 404 }`.
    pub async fn job(&self, id: &str) -> Result<JobStatus, AgentError> {
        // Ids are hex, but never let caller text reshape the path.
        let encoded: String = id
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let path = format!("{}{encoded}", routes::JOBS_PREFIX);
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// POST /v1/clone/confirm: deletes the previous datadir a succeeded
    /// receive job kept.
    pub async fn confirm_clone(&self, job_id: &str) -> Result<JobStatus, AgentError> {
        let request = ConfirmCloneRequest {
            job_id: job_id.to_string(),
        };
        self.call(Method::POST, routes::CLONE_CONFIRM, Some(&request))
            .await
    }

    /// Calls a route answering with [`Facts`] and checks the protocol version
    /// before decoding the rest, so a version mismatch is reported as such
    /// rather than as a confusing missing field.
    async fn call_facts<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Facts, AgentError> {
        let value: serde_json::Value = self.call(method, path, body).await?;
        match value.get("protocol_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
            Some(v) => {
                return Err(self.protocol(format!(
                    "it speaks protocol version {v}, this flipover speaks {PROTOCOL_VERSION}: upgrade one of them"
                )))
            }
            None => return Err(self.protocol("the response has no protocol_version".to_string())),
        }
        serde_json::from_value(value)
            .map_err(|e| self.protocol(format!("cannot decode facts: {e}")))
    }

    /// GET /metrics: the Prometheus/OpenMetrics text, as the agent wrote it.
    pub async fn metrics(&self) -> Result<String, AgentError> {
        let body = self
            .send(Method::GET, routes::METRICS, None::<&()>, None)
            .await?;
        String::from_utf8(body)
            .map_err(|e| self.protocol(format!("the metrics are not UTF-8: {e}")))
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, AgentError> {
        let body = self.send(method, path, body, None).await?;
        self.decode(path, &body)
    }

    /// POSTs a request the agent answers within `deadline`: the whole call
    /// is bounded by it plus the network's margin, not the client's timeout.
    async fn call_within<T: DeserializeOwned, B: Serialize>(
        &self,
        deadline: Duration,
        path: &str,
        body: &B,
    ) -> Result<T, AgentError> {
        // The agent refuses a longer deadline at once; never wait longer.
        let limit = deadline.min(Duration::from_millis(MAX_DEADLINE_MS)) + DEADLINE_MARGIN;
        let body = self
            .send(Method::POST, path, Some(body), Some(limit))
            .await?;
        self.decode(path, &body)
    }

    fn decode<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T, AgentError> {
        serde_json::from_slice(body)
            .map_err(|e| self.protocol(format!("cannot decode the response of {path}: {e}")))
    }

    /// The body of a successful answer; an error status becomes its AgentError.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, AgentError> {
        let url = format!("{}{}", self.base_url, path);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|e| {
            let message = error_chain(&e);
            AgentError::Unreachable {
                url: self.base_url.clone(),
                message: format!("{message}{}", tls_hint(&message)),
            }
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| AgentError::Unreachable {
                url: self.base_url.clone(),
                message: format!("reading the response failed: {}", error_chain(&e)),
            })?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let message = error_message(&body);
        let url = self.base_url.clone();
        Err(match status {
            StatusCode::UNAUTHORIZED => AgentError::Unauthorized { url },
            StatusCode::CONFLICT => AgentError::Busy { url, message },
            _ => AgentError::Failed {
                url,
                status: status.as_u16(),
                message,
            },
        })
    }

    fn protocol(&self, message: String) -> AgentError {
        AgentError::Protocol {
            url: self.base_url.clone(),
            message,
        }
    }
}

/// Milliseconds of a deadline; a zero or oversized one is sent as it is, for
/// the agent to refuse.
fn deadline_ms(deadline: Duration) -> u64 {
    u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX)
}

/// The agent's ErrorBody text, or the raw body (shortened) if it sent none.
fn error_message(body: &[u8]) -> String {
    if let Ok(ErrorBody { error }) = serde_json::from_slice(body) {
        return error;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "no error message".to_string();
    }
    text.chars().take(500).collect()
}

/// A refused handshake, or one side speaking TLS and the other not, reads
/// as a connection error: say where to look.
fn tls_hint(message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("fatal alert") {
        " (TLS refused: the agent accepts only client certificates of its --client-ca, and \
         flipover only agent certificates of [access] ca naming the agent's host)"
    } else if lower.contains("invalid http version") || lower.contains("corrupt message") {
        " (one side speaks TLS and the other plaintext: check the agent's --insecure against \
         [access] insecure)"
    } else {
        ""
    }
}

/// reqwest's top-level message hides the useful part ("connection refused")
/// in its sources, so join the whole chain.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
