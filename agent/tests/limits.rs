//! What a client can make a real agent hold: bodies over 64 KiB get 413,
//! a body that does not arrive in time gets 408, and neither reaches a
//! handler (no job starts, nothing listens on the stream port). The agent
//! runs --insecure so the test can speak raw HTTP/1.1 over TCP.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{free_port, write, Agent, TOKEN};

const IP: Ipv4Addr = Ipv4Addr::new(127, 45, 0, 1);
const LIMIT: usize = 64 << 10;

/// An agent over a my.cnf in a temp dir (no mysqld needed: the requests
/// must be refused before any handler looks at the host).
struct Host {
    agent: Agent,
    stream: SocketAddr,
    _dir: tempfile::TempDir,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("my.cnf");
    write(
        &conf,
        &format!("[mysqld]\ndatadir={}/data\n", dir.path().display()),
    );
    let stream = SocketAddr::from((IP, free_port(IP)));
    let agent = Agent::start(
        IP,
        &[
            "-c",
            conf.to_str().unwrap(),
            "--supervise",
            "--stream-listen",
            &stream.to_string(),
            // The limits sit behind TLS in production; plaintext lets this
            // test write raw HTTP (agent/tests/tls.rs covers the TLS layer).
            "--insecure",
        ],
        Some(TOKEN),
    );
    Host {
        agent,
        stream,
        _dir: dir,
    }
}

impl Host {
    fn connect(&self) -> TcpStream {
        let addr = self.agent.url.trim_start_matches("http://");
        let conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        conn
    }

    /// Sends `head` (request line and headers, without the blank line) and
    /// `body`; answers the response's status and text.
    fn send(&self, head: &str, body: &[u8]) -> (u16, String) {
        let mut conn = self.connect();
        conn.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        // The agent may answer and close before taking all of an oversized body.
        let _ = conn.write_all(body);
        response(&mut conn)
    }

    async fn assert_nothing_started(&self) {
        let facts = self.agent.client(TOKEN).facts().await.unwrap();
        assert_eq!(facts.busy_job, None);
        assert!(TcpStream::connect(self.stream).is_err(), "stream port open");
    }
}

fn response(conn: &mut TcpStream) -> (u16, String) {
    let mut text = Vec::new();
    // A reset after the answer is fine: the agent did not read all we sent.
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if !text.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the response: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (status, text)
}

/// A receive request with `token`, padded to `size` bytes (spaces are valid JSON).
fn receive_body(token: &str, size: usize) -> Vec<u8> {
    let mut body =
        format!(r#"{{"stream_token":"{token}","expected_bytes":1,"replace":true}}"#).into_bytes();
    body.resize(size, b' ');
    body
}

fn post_receive(length: usize, auth: bool) -> String {
    let auth = if auth {
        format!("\r\nAuthorization: Bearer {TOKEN}")
    } else {
        String::new()
    };
    format!(
        "POST /v1/clone/receive HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\
         \r\nContent-Length: {length}{auth}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_64_kib_get_413_and_change_nothing() {
    let host = host();
    let big = receive_body("limits-token-1234", LIMIT + 1);

    let (status, text) = host.send(&post_receive(big.len(), true), &big);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("limited to 65536 bytes"), "{text}");

    // Without a Content-Length (chunked), the limit holds while reading.
    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = format!(
        "POST /v1/clone/receive HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\
         \r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer {TOKEN}"
    );
    let (status, text) = host.send(&head, &chunked);
    assert_eq!(status, 413, "{text}");

    // Strangers get their 401 before their body counts.
    let (status, text) = host.send(&post_receive(big.len(), false), &big);
    assert_eq!(status, 401, "{text}");

    host.assert_nothing_started().await;

    // A body at the limit reaches the handler, which decides (here: a
    // token too short to be one).
    let fits = receive_body("short", LIMIT);
    let (status, text) = host.send(&post_receive(fits.len(), true), &fits);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("stream_token must be 8 to 256"), "{text}");
    host.assert_nothing_started().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_gets_408() {
    let host = host();
    let mut conn = host.connect();
    // Headers promise 100 bytes; 10 come, then nothing.
    conn.write_all(format!("{}\r\n\r\n", post_receive(100, true)).as_bytes())
        .unwrap();
    conn.write_all(&receive_body("limits-token-1234", 100)[..10])
        .unwrap();
    let started = Instant::now();
    let (status, text) = response(&mut conn);
    let waited = started.elapsed();
    assert_eq!(status, 408, "{text}");
    assert!(text.contains("did not arrive within 10s"), "{text}");
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "answered after {waited:?}"
    );
    host.assert_nothing_started().await;
}
