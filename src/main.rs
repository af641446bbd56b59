//! The `flipover` binary: parse the command line, dispatch, map errors to exit codes.

use flipover::cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(error) => {
            // --help and --version are not errors; a bad command line is
            // exit code 1 like every other error (2 is kept for "changes").
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                flipover::exit_codes::ERROR as u8
            } else {
                flipover::exit_codes::SUCCESS as u8
            });
        }
    };
    cli::init_logging(args.verbose, args.log_format);
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprint!("{}", error.render(cli::colors_enabled_stderr()));
            error.exit_code
        }
    };
    ExitCode::from(code as u8)
}
