//! flipover-agent: runs on each database host and controls mysqld over an
//! HTTP/JSON API for flipover. See `server/` for the pieces.

mod server;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let args = server::args::Args::parse();
    // Logs go to stderr so journald/docker capture them; RUST_LOG overrides.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // No colour codes in journald or docker logs.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match server::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flipover-agent: error: {e}");
            ExitCode::FAILURE
        }
    }
}
