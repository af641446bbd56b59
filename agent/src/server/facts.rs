//! What the agent reports about its host: static details discovered once at
//! startup ([`HostInfo`]) plus live state read on every request ([`gather`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flipover_agent::mycnf::{self, MyCnf, MyCnfError};
use flipover_agent::protocol::{BackupPosition, Facts, PROTOCOL_VERSION};

use super::clone::backup_tool::{parse_binlog_info, Tools};
use super::fence::marker;
use super::process;

/// Where server binaries live when PATH does not list sbin (e.g. under
/// systemd or a minimal container env).
const EXTRA_BIN_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/local/sbin",
    "/usr/local/mysql/bin",
    "/usr/bin",
];

/// Host details that do not change while the agent runs.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub hostname: String,
    /// Absolute path of the my.cnf, so `--defaults-file` works from any cwd.
    pub conf_path: PathBuf,
    /// None when supervising.
    pub service: Option<String>,
    pub supervised: bool,
    pub server_binary: Option<PathBuf>,
    /// Cached: running `mariadbd --version` takes a noticeable moment.
    pub server_version: Option<String>,
    pub backup_tool: Option<PathBuf>,
}

impl HostInfo {
    pub fn discover(conf_path: PathBuf, service: Option<String>, supervised: bool) -> HostInfo {
        let server_binary = find_program(&["mariadbd", "mysqld"]);
        let server_version = server_binary.as_deref().and_then(server_version);
        HostInfo {
            hostname: mycnf::local_hostname(),
            conf_path,
            service,
            supervised,
            server_binary,
            server_version,
            backup_tool: find_program(&["mariadb-backup", "mariabackup", "xtrabackup"]),
        }
    }

    /// (major, minor) of the server, selecting `[mariadb-X.Y]`-style groups.
    pub fn version(&self) -> Option<(u32, u32)> {
        self.server_version
            .as_deref()
            .and_then(mycnf::parse_version)
    }

    /// Reads the my.cnf afresh: operators may edit it while the agent runs.
    pub fn load_conf(&self) -> Result<MyCnf, MyCnfError> {
        MyCnf::load(&self.conf_path)
    }
}

/// Collects the current facts. Blocking (walks the datadir): call it from
/// `spawn_blocking`.
pub fn gather(host: &HostInfo) -> Result<Facts, MyCnfError> {
    let conf = host.load_conf()?;
    let version = host.version();
    let settings = conf.settings(version);
    let datadir = conf.datadir(version);
    let pid = settings
        .pid_file
        .as_deref()
        .and_then(|p| process::running_mysqld_pid(Path::new(p)));
    let usage = dir_usage(&datadir);
    Ok(Facts {
        protocol_version: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: host.hostname.clone(),
        conf_path: host.conf_path.display().to_string(),
        service: host.service.clone(),
        supervised: host.supervised,
        server_binary: host.server_binary.as_ref().map(|p| p.display().to_string()),
        server_version: host.server_version.clone(),
        mysqld_running: pid.is_some(),
        mysqld_pid: pid,
        datadir: Some(datadir.display().to_string()),
        datadir_empty: usage.map(|u| u.files == 0),
        datadir_bytes: usage.map(|u| u.bytes),
        free_disk_bytes: free_disk_bytes(&datadir),
        backup_tool: host.backup_tool.as_ref().map(|p| p.display().to_string()),
        settings,
        // Filled by the API layer, which knows the flags and the jobs.
        stream_listen: None,
        busy_job: None,
        busy_job_id: None,
        restored_backup: restored_backup(&datadir),
        unconfirmed_clone_job: None,
        fenced: marker::current(&marker::path_for(&datadir)),
    })
}

/// The backup position a restored datadir carries (the file mariadb-backup
/// and xtrabackup leave in it), if any.
fn restored_backup(datadir: &Path) -> Option<BackupPosition> {
    Tools::binlog_info_files().iter().find_map(|name| {
        let text = std::fs::read_to_string(datadir.join(name)).ok()?;
        let info = parse_binlog_info(&text).ok()?;
        Some(BackupPosition {
            binlog_file: info.file,
            binlog_position: info.position,
            gtid: info.gtid,
        })
    })
}

/// The first of `names` found as an executable in $PATH or the usual sbin dirs.
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    dirs.extend(EXTRA_BIN_DIRS.iter().map(PathBuf::from));
    names.iter().find_map(|name| {
        dirs.iter().map(|d| d.join(name)).find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Runs `<binary> --version` and extracts the word after "Ver", e.g.
/// "/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu ...".
fn server_version(binary: &Path) -> Option<String> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "Ver")?;
    words.next().map(str::to_string)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirUsage {
    /// Regular files (and symlinks) anywhere below; empty subdirectories
    /// such as `lost+found` do not count.
    pub files: u64,
    pub bytes: u64,
}

/// Files and bytes under `dir`; a missing dir counts as empty, an unreadable
/// one gives None. Entries vanishing mid-walk (mysqld's temp files) are skipped.
pub fn dir_usage(dir: &Path) -> Option<DirUsage> {
    let mut usage = DirUsage { files: 0, bytes: 0 };
    let top = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(usage),
        Err(_) => return None,
    };
    let mut pending = vec![top];
    while let Some(entries) = pending.pop() {
        for entry in entries.flatten() {
            // symlink_metadata: never follow links out of the datadir.
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                if let Ok(sub) = std::fs::read_dir(entry.path()) {
                    pending.push(sub);
                }
            } else {
                usage.files += 1;
                usage.bytes += meta.len();
            }
        }
    }
    Some(usage)
}

/// Free bytes (for unprivileged users, as mariadb-backup would see them) on
/// the filesystem that holds or would hold `dir`.
pub fn free_disk_bytes(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    let stat = nix::sys::statvfs::statvfs(existing).ok()?;
    Some(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_usage_counts_files_not_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            dir_usage(&dir.path().join("missing")),
            Some(DirUsage { files: 0, bytes: 0 })
        );
        std::fs::create_dir(dir.path().join("lost+found")).unwrap();
        assert_eq!(dir_usage(dir.path()), Some(DirUsage { files: 0, bytes: 0 }));
        std::fs::create_dir(dir.path().join("mysql")).unwrap();
        std::fs::write(dir.path().join("mysql/user.frm"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("ibdata1"), [0u8; 23]).unwrap();
        assert_eq!(
            dir_usage(dir.path()),
            Some(DirUsage {
                files: 2,
                bytes: 123
            })
        );
    }

    #[test]
    fn free_disk_uses_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_disk_bytes(&dir.path().join("not/yet/created"));
        assert!(free.is_some_and(|f| f > 0));
    }

    #[test]
    fn finds_installed_server_binary() {
        // MariaDB is a test prerequisite of this crate (the real-server test needs it too).
        let bin = find_program(&["mariadbd", "mysqld"]).expect("mariadbd installed");
        let version = server_version(&bin).expect("a version");
        assert!(mycnf::parse_version(&version).is_some(), "{version}");
    }
}
