//! The wire format of the backup stream on the target's stream port.
//!
//! The donor first sends the header line `FLIPOVER-STREAM 1 <token>\n`, then
//! the backup as frames `[u32 BE length][bytes]`, then a zero-length frame
//! and `[u64 BE total byte count]`. The explicit end is what lets the target
//! tell a finished backup from a donor that died mid-stream: plain EOF is
//! always a failure.

use std::sync::atomic::{AtomicU64, Ordering};

use flipover_agent::protocol::STREAM_MAGIC;
use subtle::ConstantTimeEq;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

/// Largest frame a receiver accepts; senders use [`CHUNK`].
pub const MAX_FRAME: usize = 16 << 20;
/// Payload bytes per frame the donor sends at most: big enough that the
/// 4-byte length and the per-frame syscalls are noise.
pub const CHUNK: usize = 1 << 20;
/// A header line longer than this is garbage, not a donor.
const MAX_HEADER: u64 = 512;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the stream header is not `{STREAM_MAGIC} <token>`")]
    BadHeader,
    #[error("the stream ended before its end marker after {received} bytes (donor gone?)")]
    Truncated { received: u64 },
    #[error("the donor says it sent {sent} bytes but {received} arrived")]
    CountMismatch { sent: u64, received: u64 },
    #[error("a frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    FrameTooLarge(usize),
    #[error("reading the stream failed: {0}")]
    Network(#[source] std::io::Error),
    #[error("writing to the unpacker failed: {0}")]
    Sink(#[source] std::io::Error),
}

/// Sends the header line the target checks before accepting the stream.
pub async fn write_header<W: AsyncWrite + Unpin>(w: &mut W, token: &str) -> std::io::Result<()> {
    w.write_all(format!("{STREAM_MAGIC} {token}\n").as_bytes())
        .await
}

/// Reads the header line and answers whether it carries `expected`
/// (compared in constant time). Reads at most a short line, so a stranger
/// cannot make the target buffer without bound.
pub async fn read_header<R: AsyncBufRead + Unpin>(
    r: &mut R,
    expected: &str,
) -> Result<bool, StreamError> {
    let mut line = Vec::new();
    r.take(MAX_HEADER)
        .read_until(b'\n', &mut line)
        .await
        .map_err(StreamError::Network)?;
    let Some(line) = line.strip_suffix(b"\n") else {
        return Err(StreamError::BadHeader);
    };
    let Some(token) = line
        .strip_prefix(STREAM_MAGIC.as_bytes())
        .and_then(|rest| rest.strip_prefix(b" "))
    else {
        return Err(StreamError::BadHeader);
    };
    Ok(bool::from(token.ct_eq(expected.as_bytes())))
}

/// Why sending frames stopped.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("reading the backup tool's output failed: {0}")]
    Source(#[source] std::io::Error),
    #[error("sending to the target failed: {0}")]
    Network(#[source] std::io::Error),
}

/// Copies `src` to `dst` as frames until `src` ends, WITHOUT the end
/// marker: the caller adds it with [`write_end`] only once it knows the
/// backup succeeded. Returns the payload bytes sent; `progress` follows along.
pub async fn send_frames<R, W>(
    src: &mut R,
    dst: &mut W,
    progress: &AtomicU64,
) -> Result<u64, SendError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The length goes in front of the payload in the same buffer, so each
    // frame is one write.
    let mut buf = vec![0u8; 4 + CHUNK];
    let mut total = 0u64;
    loop {
        let n = src.read(&mut buf[4..]).await.map_err(SendError::Source)?;
        if n == 0 {
            return Ok(total);
        }
        buf[..4].copy_from_slice(&(n as u32).to_be_bytes());
        dst.write_all(&buf[..4 + n])
            .await
            .map_err(SendError::Network)?;
        total += n as u64;
        progress.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The end marker: a zero-length frame and the total payload byte count.
pub async fn write_end<W: AsyncWrite + Unpin>(dst: &mut W, total: u64) -> std::io::Result<()> {
    let mut end = [0u8; 12];
    end[4..].copy_from_slice(&total.to_be_bytes());
    dst.write_all(&end).await?;
    dst.flush().await
}

/// Copies the frames of `src` into `dst` until the end marker, checking
/// the count. Returns the payload bytes; `progress` follows along.
pub async fn receive_frames<R, W>(
    src: &mut R,
    dst: &mut W,
    progress: &AtomicU64,
) -> Result<u64, StreamError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(CHUNK);
    let mut received = 0u64;
    // A reset is a donor gone as much as an early EOF is.
    let truncated = |e: std::io::Error, received| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ) {
            StreamError::Truncated { received }
        } else {
            StreamError::Network(e)
        }
    };
    loop {
        let mut len = [0u8; 4];
        src.read_exact(&mut len)
            .await
            .map_err(|e| truncated(e, received))?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            let mut count = [0u8; 8];
            src.read_exact(&mut count)
                .await
                .map_err(|e| truncated(e, received))?;
            let sent = u64::from_be_bytes(count);
            if sent != received {
                return Err(StreamError::CountMismatch { sent, received });
            }
            dst.flush().await.map_err(StreamError::Sink)?;
            return Ok(received);
        }
        if len > MAX_FRAME {
            return Err(StreamError::FrameTooLarge(len));
        }
        buf.resize(len, 0);
        src.read_exact(&mut buf)
            .await
            .map_err(|e| truncated(e, received))?;
        dst.write_all(&buf).await.map_err(StreamError::Sink)?;
        received += len as u64;
        progress.fetch_add(len as u64, Ordering::Relaxed);
    }
}

/// The fuzz target's entry (`fuzz/fuzz_targets/stream_frames.rs` includes
/// this file): the header check and the frame decoder over arbitrary bytes,
/// which must end in a result, never a panic. The header token is `tok`.
#[cfg(any(test, fuzzing))]
pub fn fuzz_decode(data: &[u8]) -> Result<u64, StreamError> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let decode = async {
        let mut src = tokio::io::BufReader::new(data);
        if !read_header(&mut src, "tok").await? {
            return Err(StreamError::BadHeader);
        }
        receive_frames(&mut src, &mut tokio::io::sink(), &AtomicU64::new(0)).await
    };
    // In-memory reads and a sink never wait, so polling needs no runtime.
    let mut decode = std::pin::pin!(decode);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(result) = decode.as_mut().poll(&mut cx) {
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source handing out data in uneven reads, like a pipe does.
    fn payload() -> Vec<u8> {
        (0..3 * CHUNK + 12345).map(|i| (i % 251) as u8).collect()
    }

    async fn encode(data: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        write_header(&mut wire, "tok").await.unwrap();
        let progress = AtomicU64::new(0);
        let mut src = data;
        let sent = send_frames(&mut src, &mut wire, &progress).await.unwrap();
        assert_eq!(sent, data.len() as u64);
        assert_eq!(progress.load(Ordering::Relaxed), sent);
        write_end(&mut wire, sent).await.unwrap();
        wire
    }

    async fn decode(wire: &[u8], token: &str) -> Result<Vec<u8>, StreamError> {
        let mut src = tokio::io::BufReader::new(wire);
        if !read_header(&mut src, token).await? {
            return Err(StreamError::BadHeader);
        }
        let mut out = Vec::new();
        let progress = AtomicU64::new(0);
        let n = receive_frames(&mut src, &mut out, &progress).await?;
        assert_eq!(n, out.len() as u64);
        assert_eq!(progress.load(Ordering::Relaxed), n);
        Ok(out)
    }

    /// The fuzz smoke: every committed input of the `stream_frames` fuzz
    /// target goes through the target's own entry without a panic.
    #[test]
    fn fuzz_corpus_decodes_without_panicking() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/stream_frames");
        let (mut ok, mut err) = (0, 0);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            match fuzz_decode(&data) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
        // The corpus holds both well-formed streams and broken ones.
        assert!(ok > 0 && err > 0, "{ok} decoded, {err} refused");
    }

    #[tokio::test]
    async fn round_trip() {
        let data = payload();
        let wire = encode(&data).await;
        assert_eq!(decode(&wire, "tok").await.unwrap(), data);
        // An empty backup is still a well-formed stream.
        assert_eq!(decode(&encode(&[]).await, "tok").await.unwrap(), b"");
    }

    #[tokio::test]
    async fn wrong_token_or_header_is_refused() {
        let wire = encode(b"abc").await;
        assert!(matches!(
            decode(&wire, "other").await,
            Err(StreamError::BadHeader)
        ));
        assert!(matches!(
            decode(&wire, "to").await,
            Err(StreamError::BadHeader)
        ));
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"FLIPOVER-STREAM 1 tok",
            b"FLIPOVER-STREAM 2 tok\n",
            b"",
        ] {
            let mut src = tokio::io::BufReader::new(bad);
            assert!(
                matches!(
                    read_header(&mut src, "tok").await,
                    Err(StreamError::BadHeader)
                ),
                "{bad:?}"
            );
        }
        // An endless line is cut off, not buffered.
        let long = vec![b'x'; 10_000];
        let mut src = tokio::io::BufReader::new(&long[..]);
        assert!(matches!(
            read_header(&mut src, "tok").await,
            Err(StreamError::BadHeader)
        ));
    }

    #[tokio::test]
    async fn truncated_stream_fails_at_every_cut() {
        let data = payload();
        let wire = encode(&data).await;
        let header = b"FLIPOVER-STREAM 1 tok\n".len();
        // Cut inside a length, inside a payload, before the end marker and
        // inside the count: all are a dead donor, never success.
        for cut in [
            header,
            header + 2,
            header + 4 + 1000,
            wire.len() - 12,
            wire.len() - 3,
        ] {
            match decode(&wire[..cut], "tok").await {
                Err(StreamError::Truncated { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn bad_end_count_fails() {
        let mut wire = encode(b"hello").await;
        let n = wire.len();
        wire[n - 8..].copy_from_slice(&6u64.to_be_bytes());
        assert!(matches!(
            decode(&wire, "tok").await,
            Err(StreamError::CountMismatch {
                sent: 6,
                received: 5
            })
        ));
    }

    #[tokio::test]
    async fn oversized_frame_fails() {
        let mut wire = b"FLIPOVER-STREAM 1 tok\n".to_vec();
        wire.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(matches!(
            decode(&wire, "tok").await,
            Err(StreamError::FrameTooLarge(_))
        ));
    }
}
