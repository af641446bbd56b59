//! Reading the secrets a topology names (`"literal"`, `{ env = … }`,
//! `{ file = … }`): the one place flipover reads them, at the moment it
//! needs them, so that a plan made from a recorded observation needs none.

use std::path::{Path, PathBuf};

use crate::topology::{Secret, Topology};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{0}` is not set")]
    EnvMissing(String),
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads an optional secret of `topology`; `None` reads as the empty string.
/// Relative `{ file = … }` paths are resolved against the topology file's
/// directory.
pub fn resolve(topology: &Topology, secret: Option<&Secret>) -> Result<String, SecretError> {
    match secret {
        Some(secret) => resolve_in(secret, topology.base_dir()),
        None => Ok(String::new()),
    }
}

/// Reads `secret`, relative files against `base_dir`. File contents lose one
/// trailing newline.
pub fn resolve_in(secret: &Secret, base_dir: &Path) -> Result<String, SecretError> {
    match secret {
        Secret::Literal(value) => Ok(value.clone()),
        Secret::Env(var) => std::env::var(var).map_err(|_| SecretError::EnvMissing(var.clone())),
        Secret::File(path) => {
            let full = base_dir.join(path);
            let text = std::fs::read_to_string(&full).map_err(|source| SecretError::File {
                path: full.clone(),
                source,
            })?;
            let trimmed = text.strip_suffix('\n').unwrap_or(&text);
            Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string())
        }
    }
}
