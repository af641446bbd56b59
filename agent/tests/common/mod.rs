//! Helpers shared by the integration tests: free loopback ports and a
//! running agent binary that is killed when dropped.

#![allow(dead_code)] // each test file uses a different subset

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flipover_agent::client::AgentClient;

pub const TOKEN: &str = "test-token-7f3a";

/// A port free on `ip` right now: bind port 0, note the port, release it.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The agent binary, killed on drop so a failing test leaves nothing behind.
pub struct Agent {
    pub child: Child,
    pub url: String,
}

impl Agent {
    /// Starts `flipover-agent` on `ip` with `args`, the token in
    /// FLIPOVER_AGENT_TOKEN, and waits until it accepts connections.
    pub fn start(ip: Ipv4Addr, args: &[&str], token: Option<&str>) -> Agent {
        let port = free_port(ip);
        let mut command = Command::new(env!("CARGO_BIN_EXE_flipover-agent"));
        command
            .args(args)
            .arg("--listen")
            .arg(format!("{ip}:{port}"))
            .env_remove("FLIPOVER_AGENT_TOKEN")
            .stdin(Stdio::null());
        if let Some(token) = token {
            command.env("FLIPOVER_AGENT_TOKEN", token);
        }
        let mut child = command.spawn().expect("spawn flipover-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((ip, port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("flipover-agent exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "flipover-agent did not listen within 10s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Agent {
            child,
            url: format!("http://{ip}:{port}"),
        }
    }

    pub fn client(&self, token: &str) -> AgentClient {
        AgentClient::new(&self.url, token, Duration::from_secs(90))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `text` to `path`.
pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
