//! Physical clones: a donor agent streams a `mariadb-backup` (or
//! `xtrabackup`) backup to a target agent, which unpacks and prepares it and
//! starts mysqld on it, keeping its previous datadir until confirmed.
//!
//! - `stream`: the framing on the stream port (header, frames, end marker)
//! - `backup_tool`: finding and running the tools, the binlog position file
//! - `datadir`: user-data check, moving the datadir aside, putting it back
//! - `jobs`: the in-memory job registry and the shutdown signal
//! - `recovery`: at startup, putting back what an interrupted clone left
//! - `receive`: the target's job; `send`: the donor's job

pub mod backup_tool;
pub mod datadir;
pub mod jobs;
pub mod receive;
pub mod recovery;
pub mod send;
pub mod stream;

use std::net::SocketAddr;

use super::api::ApiError;

/// Clone settings from the command line.
#[derive(Clone)]
pub struct CloneConfig {
    /// Where receive jobs listen for the donor.
    pub stream_listen: SocketAddr,
    /// Account the backup tool connects as on a donor.
    pub backup_user: String,
    pub backup_password: Option<String>,
    /// The stream's TLS (as target: acceptor; as donor: connector); `None`
    /// only with --insecure.
    pub tls: Option<crate::server::tls::ServerTls>,
}

impl std::fmt::Debug for CloneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloneConfig")
            .field("stream_listen", &self.stream_listen)
            .field("backup_user", &self.backup_user)
            .field(
                "backup_password",
                &self.backup_password.as_ref().map(|_| "<redacted>"),
            )
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The stream token travels in a one-line header: refuse tokens that
/// could break that line or are too weak to be a secret.
fn check_stream_token(token: &str) -> Result<(), ApiError> {
    if token.len() < 8 || token.len() > 256 {
        return Err(ApiError::BadRequest(
            "stream_token must be 8 to 256 characters long".to_string(),
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "stream_token must be printable ASCII without spaces".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_tokens_fit_the_header_line() {
        assert!(check_stream_token("0123456789abcdef").is_ok());
        for bad in [
            "short",
            "with space 12345",
            "new\nline12345",
            &"x".repeat(300),
        ] {
            assert!(check_stream_token(bad).is_err(), "{bad:?}");
        }
    }
}
