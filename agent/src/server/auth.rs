//! Bearer-token authentication: loading the token at startup and checking
//! it on every request.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::api::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {path} is empty")]
    EmptyFile { path: String },
    #[error("no token given: pass --token-file FILE or set {env}")]
    Missing { env: &'static str },
    #[error("{env} is set but empty")]
    EmptyEnv { env: &'static str },
}

/// The token from `file` if given, else from `env_value` (the content of
/// the env variable named `env`). An empty token is refused, since it would
/// let anyone in.
pub fn load_token(
    file: Option<&Path>,
    env: &'static str,
    env_value: Option<String>,
) -> Result<Token, TokenError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let token = text.trim_end_matches(['\n', '\r']);
        if token.trim().is_empty() {
            return Err(TokenError::EmptyFile {
                path: path.display().to_string(),
            });
        }
        return Ok(Token(token.to_string()));
    }
    match env_value {
        None => Err(TokenError::Missing { env }),
        Some(v) if v.trim().is_empty() => Err(TokenError::EmptyEnv { env }),
        Some(v) => Ok(Token(v)),
    }
}

/// The shared secret. Debug is redacted so it never lands in logs.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Constant-time comparison, so response timing does not reveal how
    /// much of a guessed token was right.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// Middleware rejecting requests without `Authorization: Bearer <token>`.
pub async fn require_token(
    State(token): State<Arc<Token>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(p) if token.matches(p) => next.run(request).await,
        Some(_) => ApiError::Unauthorized("wrong bearer token").into_response(),
        None => ApiError::Unauthorized("missing bearer token").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_newline_is_trimmed_and_wins_over_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let token = load_token(Some(&path), "X", Some("other".into())).unwrap();
        assert!(token.matches("s3cret"));
        assert!(!token.matches("other"));
        assert!(!token.matches("s3cret\n"));
    }

    #[test]
    fn empty_or_missing_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            load_token(Some(&path), "X", None),
            Err(TokenError::EmptyFile { .. })
        ));
        assert!(matches!(
            load_token(None, "X", None),
            Err(TokenError::Missing { .. })
        ));
        assert!(matches!(
            load_token(None, "X", Some(String::new())),
            Err(TokenError::EmptyEnv { .. })
        ));
        assert!(load_token(None, "X", Some("t".into()))
            .unwrap()
            .matches("t"));
    }
}
