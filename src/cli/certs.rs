//! `flipover certs init DIR`: a CA and certificates for the agents and flipover.

use std::path::PathBuf;

use crate::certs::{self, CertsError};
use crate::exit_codes;
use crate::topology;
use miette::IntoDiagnostic;

use super::error::CommandResult;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a CA, one certificate per database host and a client certificate for flipover,
    /// as PEM files in DIR (keys readable by their owner only).
    Init(InitArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory for the files (created if needed).
    pub dir: PathBuf,
    /// Make a certificate for every server host of this topology file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        required_unless_present = "hosts"
    )]
    pub file: Option<PathBuf>,
    /// Make a certificate for this host name or IP address (repeatable; with -f, in addition).
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Overwrite files that exist already (a new CA: every agent needs its new certificate).
    #[arg(long)]
    pub force: bool,
}

pub fn run(command: Command) -> CommandResult {
    match command {
        Command::Init(args) => init(args),
    }
}

fn init(args: InitArgs) -> CommandResult {
    let mut hosts = Vec::new();
    if let Some(file) = &args.file {
        let topology = topology::load(file)?;
        hosts.extend(topology.servers().values().map(|s| s.host.clone()));
    }
    hosts.extend(args.hosts.iter().cloned());
    let written = certs::init(&args.dir, &hosts, args.force).map_err(|e| match e {
        CertsError::Exists(_) => miette::miette!(
            help = "pass --force to replace them with a new CA (every agent then needs its new \
                    certificate), or choose another directory",
            "{e}"
        ),
        other => miette::miette!("{other}"),
    })?;
    for file in written.files() {
        println!("{}", file.display());
    }
    let dir = std::path::absolute(&args.dir).into_diagnostic()?;
    eprintln!(
        "hint: on each host run `flipover-agent --tls-cert {d}/HOST.pem --tls-key {d}/HOST-key.pem \
         --client-ca {d}/{ca}` (copy those three files there), and put in the topology's [access]:\n  \
         ca = \"{d}/{ca}\"\n  client_cert = \"{d}/{cert}\"\n  client_key = \"{d}/{key}\"\n\
         hint: {d}/{ca_key} can issue more certificates: keep it offline",
        d = dir.display(),
        ca = certs::CA_CERT,
        cert = certs::CLIENT_CERT,
        key = certs::CLIENT_KEY,
        ca_key = certs::CA_KEY,
    );
    Ok(exit_codes::SUCCESS)
}
