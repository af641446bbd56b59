//! The `flipover` binary: parse the command line, dispatch, map errors to exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            flipover::exit_codes::ERROR
        }
    };
    ExitCode::from(code as u8)
}
