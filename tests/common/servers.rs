//! The server kinds the suite runs against: the host's MariaDB 10.11, and
//! MariaDB 11.8 and MySQL 9.7 from the Debian roots `scripts/install-deps`
//! builds in `$FLIPOVER_ROOTS` (default `/var/cache/flipover/roots`).
//!
//! `FLIPOVER_SERVERS` chooses the kinds (comma or space separated names, or
//! `all`), as for `scripts/install-deps`. Unset, every kind runs whose root
//! exists, and a test says on stderr when it skips one. Set (`.ci/run` sets
//! `all`), a named kind without its root fails the test instead.
//!
//! A test body parametrised by kind becomes one test per kind with
//! [`per_server!`](crate::per_server):
//!
//! ```text
//! async fn status_reads_every_server(kind: ServerKind) {
//!     let sandbox = TestSandbox::up_flavor(kind, 3);
//!     ...
//! }
//! per_server!(status_reads_every_server);
//! ```
//!
//! gives `status_reads_every_server::mariadb_10_11`, `…::mariadb_11_8` and
//! `…::mysql_9_7` (`cargo nextest run -E 'test(/mysql_9_7/)'` runs one kind).

use std::future::Future;
use std::path::PathBuf;

use flipover::observe::Flavor;

/// The environment variable naming the kinds to run.
pub const SERVERS_ENV: &str = "FLIPOVER_SERVERS";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// The host's MariaDB (Debian bookworm's 10.11).
    Mariadb1011,
    /// MariaDB 11.8 LTS from a Debian trixie root.
    Mariadb118,
    /// MySQL 9.7 LTS from a Debian sid root.
    Mysql97,
}

impl ServerKind {
    pub const ALL: [ServerKind; 3] = [
        ServerKind::Mariadb1011,
        ServerKind::Mariadb118,
        ServerKind::Mysql97,
    ];

    /// The name in `FLIPOVER_SERVERS`, and of its root.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Mariadb1011 => "mariadb-10.11",
            ServerKind::Mariadb118 => "mariadb-11.8",
            ServerKind::Mysql97 => "mysql-9.7",
        }
    }

    pub fn flavor(self) -> Flavor {
        match self {
            ServerKind::Mariadb1011 | ServerKind::Mariadb118 => Flavor::Mariadb,
            ServerKind::Mysql97 => Flavor::Mysql,
        }
    }

    /// How every version string of this kind starts (`@@version`,
    /// `mysqld --version`).
    pub fn version_prefix(self) -> &'static str {
        match self {
            ServerKind::Mariadb1011 => "10.11.",
            ServerKind::Mariadb118 => "11.8.",
            ServerKind::Mysql97 => "9.7.",
        }
    }

    /// The root its servers run chrooted into; None: the host's server.
    pub fn root(self) -> Option<PathBuf> {
        match self {
            ServerKind::Mariadb1011 => None,
            ServerKind::Mariadb118 | ServerKind::Mysql97 => {
                Some(flipover::sandbox::server::roots_dir().join(self.name()))
            }
        }
    }

    /// The arguments of `flipover sandbox up` for this kind.
    pub fn sandbox_args(self) -> Vec<String> {
        let flavor = match self.flavor() {
            Flavor::Mariadb => "mariadb",
            Flavor::Mysql => "mysql",
        };
        let mut args = vec!["--flavor".to_string(), flavor.to_string()];
        if let Some(root) = self.root() {
            args.push("--server-root".to_string());
            args.push(root.display().to_string());
        }
        args
    }

    /// The kinds `FLIPOVER_SERVERS` names, and whether it was set at all.
    pub fn selected() -> (Vec<ServerKind>, bool) {
        let Some(value) = std::env::var_os(SERVERS_ENV) else {
            return (ServerKind::ALL.to_vec(), false);
        };
        let value = value.to_string_lossy().into_owned();
        let mut kinds = Vec::new();
        for word in value.split([',', ' ']).filter(|w| !w.is_empty()) {
            if word == "all" {
                kinds.extend(ServerKind::ALL);
                continue;
            }
            let kind = ServerKind::ALL
                .into_iter()
                .find(|k| k.name() == word)
                .unwrap_or_else(|| {
                    panic!(
                        "{SERVERS_ENV}: unknown server kind {word:?} (known: {}, all)",
                        ServerKind::ALL.map(ServerKind::name).join(", ")
                    )
                });
            kinds.push(kind);
        }
        (kinds, true)
    }

    /// Why a test of this kind does not run here, or None when it does.
    /// Panics when `FLIPOVER_SERVERS` names the kind and its root is missing.
    pub fn skip_reason(self) -> Option<String> {
        let (kinds, explicit) = ServerKind::selected();
        if !kinds.contains(&self) {
            return Some(format!("{SERVERS_ENV} does not name it"));
        }
        let root = self.root()?;
        if root.is_dir() {
            return None;
        }
        let missing = format!(
            "its server root {} is missing (build it with scripts/install-deps)",
            root.display()
        );
        assert!(
            !explicit,
            "{SERVERS_ENV} names {}, but {missing}",
            self.name()
        );
        Some(missing)
    }

    /// Runs `body` for this kind, or says on stderr why it is skipped.
    pub async fn run<F, Fut>(self, body: F)
    where
        F: FnOnce(ServerKind) -> Fut,
        Fut: Future<Output = ()>,
    {
        match self.skip_reason() {
            Some(reason) => eprintln!("SKIPPED: {} not run: {reason}", self.name()),
            None => body(self).await,
        }
    }
}

/// `per_server!(body)` defines a module `body` with one test per server kind
/// (`mariadb_10_11`, `mariadb_11_8`, `mysql_9_7`), each running the async
/// function `body(kind: ServerKind)` of the calling module, or skipping it
/// as [`ServerKind::run`] says.
#[macro_export]
macro_rules! per_server {
    ($body:ident) => {
        mod $body {
            use $crate::common::servers::ServerKind;

            #[tokio::test(flavor = "multi_thread")]
            async fn mariadb_10_11() {
                ServerKind::Mariadb1011.run(super::$body).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn mariadb_11_8() {
                ServerKind::Mariadb118.run(super::$body).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn mysql_9_7() {
                ServerKind::Mysql97.run(super::$body).await
            }
        }
    };
}
