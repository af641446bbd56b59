//! Which server a sandbox runs: MariaDB or MySQL, the host's own or one in a
//! Debian root (`--server-root`), and its version.
//!
//! As on a real host, the server is looked for on PATH (and in the sbin
//! directories). Where the host has none of the flavor asked for, the roots
//! `scripts/install-deps` builds (`$FLIPOVER_ROOTS/<flavor>-<version>`) are
//! looked at next.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process;
use super::root::Confinement;
use super::SandboxError;
use crate::observe::Flavor;

/// Overrides where the roots are (default [`DEFAULT_ROOTS_DIR`]).
pub const ROOTS_ENV: &str = "FLIPOVER_ROOTS";
/// Where `scripts/install-deps` builds the roots by default.
pub const DEFAULT_ROOTS_DIR: &str = "/var/cache/flipover/roots";

/// Directories a root's programs are looked for in, relative to the root.
const ROOT_BIN_DIRS: &[&str] = &["usr/sbin", "usr/bin", "usr/local/sbin", "usr/local/bin"];

pub fn roots_dir() -> PathBuf {
    std::env::var_os(ROOTS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOTS_DIR))
}

/// The server a sandbox runs.
#[derive(Debug, Clone)]
pub struct Server {
    pub flavor: Flavor,
    /// As `--version` reports it, e.g. `9.7.4-2` or `11.8.3-MariaDB-0+deb13u1`.
    pub version: String,
    /// The root the servers and agents run chrooted into; None: the host's.
    pub root: Option<PathBuf>,
    /// The server binary, as a path inside the root (or on the host).
    pub binary: PathBuf,
}

impl Server {
    /// Finds the server: the one in `server_root` (a directory, or the name
    /// of a root in [`roots_dir`]), else the host's of `flavor`, else a root
    /// of that flavor. Without `flavor` it is the root's, or MariaDB.
    pub fn find(flavor: Option<Flavor>, server_root: Option<&str>) -> Result<Server, SandboxError> {
        if let Some(root) = server_root {
            let root = resolve_root(root)?;
            return Server::in_root(&root, flavor);
        }
        let flavor = flavor.unwrap_or(Flavor::Mariadb);
        if let Some(server) = Server::on_host(flavor) {
            return Ok(server);
        }
        match best_root(&roots_dir(), flavor) {
            Some(root) => {
                tracing::info!(
                    "no {} server on this host: using the root {}",
                    name(flavor),
                    root.display()
                );
                Server::in_root(&root, Some(flavor))
            }
            None => Err(SandboxError::NoServer {
                flavor: name(flavor),
                roots: roots_dir().display().to_string(),
            }),
        }
    }

    /// "MySQL 9.7.4-2" / "MariaDB 11.8.3".
    pub fn describe(&self) -> String {
        let version = self.version.split("-MariaDB").next().unwrap_or_default();
        format!("{} {version}", name(self.flavor))
    }

    /// The host's server of `flavor` (Debian's `mysqld` may be MariaDB's).
    fn on_host(flavor: Flavor) -> Option<Server> {
        let names: &[&str] = match flavor {
            Flavor::Mariadb => &["mariadbd", "mysqld"],
            Flavor::Mysql => &["mysqld"],
        };
        names.iter().find_map(|binary| {
            let path = process::which(binary)?;
            let version = version_of(Command::new(&path))?;
            (flavor_of(&version) == flavor).then_some(Server {
                flavor,
                version,
                root: None,
                binary: path,
            })
        })
    }

    fn in_root(root: &Path, flavor: Option<Flavor>) -> Result<Server, SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(SandboxError::RootNeedsRoot {
                root: root.display().to_string(),
            });
        }
        let names: &[&str] = match flavor {
            Some(Flavor::Mysql) => &["mysqld"],
            _ => &["mariadbd", "mysqld"],
        };
        let root_missing = |tool: &str| SandboxError::RootLacks {
            root: root.display().to_string(),
            tool: tool.to_string(),
        };
        let binary = names
            .iter()
            .find_map(|name| find_in_root(root, name))
            .ok_or_else(|| root_missing(names[0]))?;
        let mut command = Command::new(&binary);
        Confinement::new(root, &[])
            .apply(&mut command)
            .map_err(|e| SandboxError::io(format!("confining to {}", root.display()), e))?;
        let version = version_of(command).ok_or_else(|| SandboxError::Command {
            what: format!("{} --version in {}", binary.display(), root.display()),
            log_tail: String::new(),
        })?;
        let found = flavor_of(&version);
        if let Some(wanted) = flavor.filter(|wanted| *wanted != found) {
            return Err(SandboxError::FlavorMismatch {
                root: root.display().to_string(),
                wanted: name(wanted),
                found: format!("{} {version}", name(found)),
            });
        }
        Ok(Server {
            flavor: found,
            version,
            root: Some(root.to_path_buf()),
            binary,
        })
    }

    /// A program of the server's installation, as a path inside its root
    /// (or on the host); None when it is not there.
    pub fn program(&self, name: &str) -> Option<PathBuf> {
        match &self.root {
            Some(root) => find_in_root(root, name),
            None => process::which(name),
        }
    }

    /// Checks that the tools the sandbox and the agents need are installed.
    pub fn check_tools(&self) -> Result<(), SandboxError> {
        let tools: &[(&'static str, &'static str)] = match self.flavor {
            Flavor::Mariadb => &[
                ("mariadb-install-db", "mariadb-server"),
                ("mariadb-backup", "mariadb-backup"),
                ("mbstream", "mariadb-backup"),
            ],
            // mysqld initialises its own datadir; the clone plugin ships with it.
            Flavor::Mysql => &[],
        };
        for (tool, package) in tools {
            if self.program(tool).is_none() {
                return Err(match &self.root {
                    Some(root) => SandboxError::RootLacks {
                        root: root.display().to_string(),
                        tool: tool.to_string(),
                    },
                    None => SandboxError::MissingTool { tool, package },
                });
            }
        }
        Ok(())
    }
}

pub fn name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Mariadb => "MariaDB",
        Flavor::Mysql => "MySQL",
    }
}

fn flavor_of(version: &str) -> Flavor {
    if version.to_ascii_lowercase().contains("mariadb") {
        Flavor::Mariadb
    } else {
        Flavor::Mysql
    }
}

/// A path, or the name of a root in [`roots_dir`].
fn resolve_root(root: &str) -> Result<PathBuf, SandboxError> {
    let as_path = Path::new(root);
    let candidate = if as_path.is_dir() || root.contains('/') {
        as_path.to_path_buf()
    } else {
        roots_dir().join(root)
    };
    candidate
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| SandboxError::NoRoot {
            root: candidate.display().to_string(),
        })
}

/// The root of `flavor` with the highest version in `dir` (`mysql-9.7`,
/// `mariadb-11.8`; builds in progress end in `.partial`).
fn best_root(dir: &Path, flavor: Flavor) -> Option<PathBuf> {
    let prefix = format!("{}-", name(flavor).to_ascii_lowercase());
    let mut roots: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix(&prefix)?;
            let numbers: Option<Vec<u32>> = version.split('.').map(|n| n.parse().ok()).collect();
            Some((numbers?, entry.path()))
        })
        .filter(|(_, path)| path.is_dir())
        .collect();
    roots.sort();
    roots.pop().map(|(_, path)| path)
}

/// `name` in the root's bin directories, as a path inside the root.
fn find_in_root(root: &Path, name: &str) -> Option<PathBuf> {
    ROOT_BIN_DIRS.iter().find_map(|dir| {
        let inside = Path::new("/").join(dir).join(name);
        // A symlink (Debian's mysqld -> mariadbd) may be relative or
        // absolute: check the target it names inside the root.
        let outside = root.join(dir).join(name);
        let target = match std::fs::read_link(&outside) {
            Ok(link) if link.is_absolute() => root.join(link.strip_prefix("/").ok()?),
            Ok(link) => root.join(dir).join(link),
            Err(_) => outside,
        };
        target.is_file().then_some(inside)
    })
}

/// The word after "Ver" in `PROGRAM --version`, e.g. "/usr/sbin/mysqld  Ver
/// 9.7.4-2 for Linux on x86_64 ((Debian))".
fn version_of(mut command: Command) -> Option<String> {
    let output = command
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "Ver")?;
    words.next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_comes_from_the_version_text() {
        assert_eq!(flavor_of("10.11.19-MariaDB-0+deb12u1"), Flavor::Mariadb);
        assert_eq!(flavor_of("9.7.4-2"), Flavor::Mysql);
        assert_eq!(flavor_of("26.1.0"), Flavor::Mysql);
    }

    #[test]
    fn the_host_mariadb_is_found_and_its_mysqld_link_is_not_mysql() {
        // MariaDB is a test prerequisite (scripts/install-deps installs it).
        let server = Server::find(Some(Flavor::Mariadb), None).expect("host MariaDB");
        assert_eq!(server.flavor, Flavor::Mariadb);
        assert!(server.root.is_none());
        assert!(server.version.contains("MariaDB"), "{}", server.version);
        // Debian's /usr/sbin/mysqld is a link to mariadbd: not a MySQL server.
        assert!(Server::on_host(Flavor::Mysql).is_none_or(|s| !s.version.contains("MariaDB")));
    }

    #[test]
    fn the_newest_root_of_a_flavor_wins() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "mysql-8.4",
            "mysql-9.7",
            "mysql-9.10.partial",
            "mariadb-11.8",
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("mysql-9.9"), "not a directory").unwrap();
        assert_eq!(
            best_root(dir.path(), Flavor::Mysql),
            Some(dir.path().join("mysql-9.7"))
        );
        assert_eq!(
            best_root(dir.path(), Flavor::Mariadb),
            Some(dir.path().join("mariadb-11.8"))
        );
    }

    #[test]
    fn programs_are_found_through_links_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/sbin")).unwrap();
        std::fs::write(root.path().join("usr/sbin/mariadbd"), "").unwrap();
        std::os::unix::fs::symlink("mariadbd", root.path().join("usr/sbin/mysqld")).unwrap();
        std::os::unix::fs::symlink("/usr/sbin/gone", root.path().join("usr/sbin/dangling"))
            .unwrap();
        assert_eq!(
            find_in_root(root.path(), "mysqld"),
            Some(PathBuf::from("/usr/sbin/mysqld"))
        );
        assert_eq!(find_in_root(root.path(), "dangling"), None);
        assert_eq!(find_in_root(root.path(), "mbstream"), None);
    }
}
