//! Command-line flags of the agent binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use flipover_agent::logging::LogFormat;

/// Environment variable holding the bearer token when no --token-file is given.
pub const TOKEN_ENV: &str = "FLIPOVER_AGENT_TOKEN";

#[derive(Debug, Parser)]
#[command(
    name = "flipover-agent",
    version,
    about = "flipover's host agent: controls mysqld and streams physical backups for flipover. \
             Usage: flipover-agent -c my.cnf -s service"
)]
pub struct Args {
    /// TOML file of flags: keys are the long flag names (`listen =
    /// "0.0.0.0:836"`, `token_file = "..."`, `supervise = true`). Flags on
    /// the command line win over the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log lines on stderr as text, or as JSON objects one per line.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Also serve GET /metrics (Prometheus) on this address, without the
    /// bearer token and plain HTTP, and nothing else there. On the main
    /// address /metrics needs the token like every route.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,

    /// Write the man page flipover-agent.1 into DIR and exit (for packaging).
    #[arg(long, value_name = "DIR", hide = true)]
    pub write_man_page: Option<PathBuf>,

    /// The server's option file; the agent reads datadir, pid-file, socket
    /// and replication settings from it.
    #[arg(
        short = 'c',
        long = "conf",
        value_name = "FILE",
        default_value = "/etc/my.cnf"
    )]
    pub conf: PathBuf,

    /// Service controlling mysqld: `systemctl start|stop NAME` when systemd
    /// runs, else `service NAME start|stop`. Ignored with --supervise.
    #[arg(
        short = 's',
        long = "service",
        value_name = "NAME",
        default_value = "mariadb"
    )]
    pub service: String,

    /// Address and port the HTTP API listens on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:836")]
    pub listen: SocketAddr,

    /// File holding the bearer token clients must send (trailing newline
    /// trimmed). Without it the token is read from $FLIPOVER_AGENT_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Start and stop mariadbd/mysqld directly (`--defaults-file=CONF`)
    /// instead of through a service manager, for hosts or containers
    /// without an init system. Starts mysqld at agent startup when the
    /// datadir is initialised.
    #[arg(long)]
    pub supervise: bool,

    /// Address and port where receive jobs listen for a donor's backup
    /// stream. Default: the IP of --listen with port 837.
    #[arg(long, value_name = "ADDR:PORT")]
    pub stream_listen: Option<SocketAddr>,

    /// Account mariadb-backup/xtrabackup connects as when this host is a
    /// donor. On Debian root@localhost authenticates by unix socket.
    #[arg(long, value_name = "USER", default_value = "root")]
    pub backup_user: String,

    /// File holding the backup account's password (trailing newline
    /// trimmed). Without it no password is passed.
    #[arg(long, value_name = "FILE")]
    pub backup_password_file: Option<PathBuf>,

    /// Account a read-only fence logs in as over the local socket: it sets
    /// read_only / super_read_only and kills client sessions, so it needs
    /// SUPER (or READ_ONLY ADMIN / SYSTEM_VARIABLES_ADMIN and CONNECTION
    /// ADMIN). On Debian root@localhost authenticates by unix socket.
    #[arg(long, value_name = "USER", default_value = "root")]
    pub fence_user: String,

    /// File holding the fence account's password (trailing newline
    /// trimmed). Without it no password is passed.
    #[arg(long, value_name = "FILE")]
    pub fence_password_file: Option<PathBuf>,

    /// This host's certificate (PEM, chain allowed) for the API and the
    /// stream port. It needs the serverAuth and clientAuth extended key
    /// usages: as a donor the agent is the TLS client of the target agent.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["tls_key", "client_ca"],
        conflicts_with = "insecure"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate(s) (PEM): only clients whose certificate chains to
    /// one of them get an answer, on the API and on the stream port. As a
    /// donor the agent also checks the target agent's certificate against it.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,

    /// Serve the API and the stream in plaintext, without TLS. Anyone who
    /// can reach the ports and learns the token can stop mysqld or read a
    /// backup: only for trusted networks and tests.
    #[arg(long)]
    pub insecure: bool,
}

/// Port of the backup stream when --stream-listen is not given.
pub const DEFAULT_STREAM_PORT: u16 = 837;

impl Args {
    pub fn stream_listen(&self) -> SocketAddr {
        self.stream_listen
            .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), DEFAULT_STREAM_PORT))
    }
}
