//! `flipover completions SHELL` and `flipover man DIR`: shell completions
//! and man pages, generated from the same clap definitions as the parser,
//! so they never drift from it.

use std::path::PathBuf;

use crate::exit_codes;
use clap::CommandFactory;
use clap_complete::Shell;
use miette::{Context, IntoDiagnostic};

use super::error::CommandResult;
use super::Cli;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write flipover.1 and one page per subcommand into.
    pub dir: PathBuf,
}

pub fn completions(args: CompletionsArgs) -> CommandResult {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "flipover", &mut std::io::stdout());
    Ok(exit_codes::SUCCESS)
}

pub fn man(args: ManArgs) -> CommandResult {
    std::fs::create_dir_all(&args.dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create {}", args.dir.display()))?;
    clap_mangen::generate_to(Cli::command(), &args.dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write man pages into {}", args.dir.display()))?;
    eprintln!("man pages written to {}", args.dir.display());
    Ok(exit_codes::SUCCESS)
}
