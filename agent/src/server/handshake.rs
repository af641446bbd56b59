//! The MySQL protocol's initial handshake, read without logging in: the
//! proof that a mysqld (not just its kernel) answers on a port or socket.
//!
//! A server speaks first: one packet (3-byte little-endian payload length,
//! 1-byte sequence number) whose payload starts with the protocol version
//! 10 and the NUL-terminated server version, or an error packet (0xff) when
//! it refuses the connection outright (too many connections, host blocked).

use std::io::ErrorKind;

use flipover_agent::protocol::ProbeErrorKind;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The protocol version of every server since MySQL 3.21.
const PROTOCOL_VERSION: u8 = 10;
/// A greeting is some 100 bytes; anything far longer is not one.
const MAX_GREETING: usize = 16 << 10;

/// Why no greeting was read.
#[derive(Debug, thiserror::Error)]
pub enum GreetingError {
    #[error("the server closed the connection before its handshake")]
    Closed,
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("not a MySQL handshake: {0}")]
    Bad(String),
    #[error("the server refused the connection: error {code}: {message}")]
    Server { code: u16, message: String },
}

impl GreetingError {
    pub fn kind(&self) -> ProbeErrorKind {
        match self {
            GreetingError::Closed => ProbeErrorKind::Closed,
            GreetingError::Io(e) => io_error_kind(e),
            GreetingError::Bad(_) => ProbeErrorKind::BadHandshake,
            GreetingError::Server { .. } => ProbeErrorKind::ServerError,
        }
    }
}

/// Reads the server's first packet; Ok is its server version.
pub async fn read_greeting<R: AsyncRead + Unpin>(reader: &mut R) -> Result<String, GreetingError> {
    let mut header = [0u8; 4];
    reader
        .read_exact(&mut header)
        .await
        .map_err(eof_is_closed)?;
    let length =
        usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if length == 0 || length > MAX_GREETING {
        return Err(GreetingError::Bad(format!(
            "a first packet of {length} bytes"
        )));
    }
    let mut payload = vec![0u8; length];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(eof_is_closed)?;
    parse_greeting(&payload)
}

/// The server version of a greeting's payload, or why it is none.
pub fn parse_greeting(payload: &[u8]) -> Result<String, GreetingError> {
    match payload.first() {
        Some(&PROTOCOL_VERSION) => {
            let rest = &payload[1..];
            let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                GreetingError::Bad("the server version is not NUL-terminated".to_string())
            })?;
            let version = String::from_utf8_lossy(&rest[..end]).into_owned();
            if version.is_empty() {
                return Err(GreetingError::Bad("an empty server version".to_string()));
            }
            Ok(version)
        }
        Some(0xff) => {
            let code = match payload.get(1..3) {
                Some(&[low, high]) => u16::from_le_bytes([low, high]),
                _ => return Err(GreetingError::Bad("a truncated error packet".to_string())),
            };
            // After the handshake an error carries `#` and a 5-byte SQL
            // state; before it, servers send the message alone.
            let mut message = &payload[3..];
            if message.first() == Some(&b'#') && message.len() >= 6 {
                message = &message[6..];
            }
            Err(GreetingError::Server {
                code,
                message: String::from_utf8_lossy(message).into_owned(),
            })
        }
        Some(other) => Err(GreetingError::Bad(format!("protocol version {other}"))),
        None => Err(GreetingError::Bad("an empty first packet".to_string())),
    }
}

fn eof_is_closed(e: std::io::Error) -> GreetingError {
    if e.kind() == ErrorKind::UnexpectedEof {
        GreetingError::Closed
    } else {
        GreetingError::Io(e)
    }
}

/// The probe's word for a connection or read error.
pub fn io_error_kind(e: &std::io::Error) -> ProbeErrorKind {
    match e.kind() {
        ErrorKind::ConnectionRefused => ProbeErrorKind::Refused,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            ProbeErrorKind::Reset
        }
        ErrorKind::TimedOut => ProbeErrorKind::Timeout,
        ErrorKind::UnexpectedEof => ProbeErrorKind::Closed,
        ErrorKind::NotFound => ProbeErrorKind::Missing,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => ProbeErrorKind::Unreachable,
        _ => ProbeErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload: &[u8]) -> Vec<u8> {
        let n = payload.len() as u32;
        let mut bytes = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, 0];
        bytes.extend_from_slice(payload);
        bytes
    }

    #[tokio::test]
    async fn reads_a_greeting() {
        let mut payload = vec![10u8];
        payload.extend_from_slice(b"5.5.5-10.11.19-MariaDB-0+deb12u1\0");
        payload.extend_from_slice(&[1, 0, 0, 0, b'a', b'b']);
        let bytes = packet(&payload);
        let version = read_greeting(&mut bytes.as_slice()).await.unwrap();
        assert_eq!(version, "5.5.5-10.11.19-MariaDB-0+deb12u1");
    }

    #[tokio::test]
    async fn an_error_packet_is_the_server_refusing() {
        let mut payload = vec![0xff, 0x10, 0x04];
        payload.extend_from_slice(b"Too many connections");
        let bytes = packet(&payload);
        let err = read_greeting(&mut bytes.as_slice()).await.unwrap_err();
        assert!(
            matches!(&err, GreetingError::Server { code: 1040, message } if message == "Too many connections"),
            "{err:?}"
        );
        assert_eq!(err.kind(), ProbeErrorKind::ServerError);
        let mut payload = vec![0xff, 0x15, 0x04, b'#'];
        payload.extend_from_slice(b"28000Access denied");
        let err = parse_greeting(&payload).unwrap_err();
        assert!(
            matches!(&err, GreetingError::Server { code: 1045, message } if message == "Access denied"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn other_bytes_are_no_greeting() {
        for (bytes, kind) in [
            (b"".to_vec(), ProbeErrorKind::Closed),
            (vec![5, 0], ProbeErrorKind::Closed),
            (
                b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
                ProbeErrorKind::BadHandshake,
            ),
            (packet(&[9, b'x', 0]), ProbeErrorKind::BadHandshake),
            (packet(&[10, b'x']), ProbeErrorKind::BadHandshake),
            (packet(&[10, 0]), ProbeErrorKind::BadHandshake),
            (packet(&[0xff, 1]), ProbeErrorKind::BadHandshake),
            (vec![0, 0, 0, 0], ProbeErrorKind::BadHandshake),
        ] {
            let err = read_greeting(&mut bytes.as_slice()).await.unwrap_err();
            assert_eq!(err.kind(), kind, "{bytes:?}: {err:?}");
        }
    }

    #[test]
    fn io_errors_have_their_words() {
        use std::io::Error;
        assert_eq!(
            io_error_kind(&Error::from(ErrorKind::ConnectionRefused)),
            ProbeErrorKind::Refused
        );
        assert_eq!(
            io_error_kind(&Error::from(ErrorKind::ConnectionReset)),
            ProbeErrorKind::Reset
        );
        assert_eq!(
            io_error_kind(&Error::from_raw_os_error(
                nix::errno::Errno::EHOSTUNREACH as i32
            )),
            ProbeErrorKind::Unreachable
        );
        assert_eq!(
            io_error_kind(&Error::from(ErrorKind::PermissionDenied)),
            ProbeErrorKind::Other
        );
    }
}
