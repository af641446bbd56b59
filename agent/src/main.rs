//! flipover-agent: runs on each database host and controls mysqld over an
//! HTTP/JSON API for flipover. See `server/` for the pieces.

mod server;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use flipover_agent::logging::LogFormat;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // The --config file's flags join the command line before clap parses.
    let merged = match server::config_file::merge(std::env::args_os().collect()) {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("flipover-agent: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args = match server::args::Args::try_parse_from(merged.argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // A bad value may come from the file, under its flag's name.
            if let (true, Some(file)) = (e.use_stderr(), &merged.file) {
                eprintln!(
                    "note: the settings of {} were read as flags (`listen = ...` is --listen)",
                    file.display()
                );
            }
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    if let Some(dir) = &args.write_man_page {
        return write_man_page(dir);
    }
    init_logging(args.log_format);
    match server::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flipover-agent: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The man page, generated from the same clap definitions as the parser.
fn write_man_page(dir: &std::path::Path) -> ExitCode {
    use clap::CommandFactory;
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| clap_mangen::generate_to(server::args::Args::command(), dir));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "flipover-agent: error: cannot write the man page into {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so journald/docker capture them; RUST_LOG overrides.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder
            // No colour codes in journald or docker logs.
            .with_ansi(std::io::stderr().is_terminal() && no_color_unset())
            .init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
