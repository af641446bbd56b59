//! Running programs chrooted into a Debian root that holds a server this
//! host lacks (`sandbox up --server-root`).
//!
//! Each confined program gets a mount namespace of its own in which the root
//! has `/proc` (the agent reads `/proc/PID/stat` and `comm` to tell a live
//! mysqld), the host's `/etc/hosts` (mariadb-install-db resolves the host
//! name) and the sandbox directory bind-mounted at its own absolute path, so
//! every path in my.cnf, the agent's flags and the logs reads the same inside
//! and outside. Nothing is mounted in the host's namespace: the mounts go
//! away with the last process using them, also when a sandbox is never
//! stopped, and sandboxes sharing a root never see each other's mounts.
//! Children (the agent's mysqld, mariadb-backup) inherit the namespace and
//! the root.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, chroot};

/// The host file bound into the root at the same path.
const HOSTS_FILE: &str = "/etc/hosts";

/// A root, and the host directories seen inside it at their own paths.
#[derive(Debug, Clone)]
pub struct Confinement {
    root: PathBuf,
    binds: Vec<PathBuf>,
}

impl Confinement {
    /// `root` and every bind must be absolute, canonical paths.
    pub fn new(root: &Path, binds: &[&Path]) -> Confinement {
        Confinement {
            root: root.to_path_buf(),
            binds: binds.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    /// Where `host_path` (absolute) is inside the root, as seen from outside.
    pub fn inside(&self, host_path: &Path) -> PathBuf {
        let relative: PathBuf = host_path
            .components()
            .filter(|c| !matches!(c, Component::RootDir))
            .collect();
        self.root.join(relative)
    }

    /// Creates the mount points the binds need inside the root and returns
    /// the directories it created, outermost first, for
    /// [`remove_mount_points`]. Directories that existed are not listed.
    pub fn create_mount_points(&self) -> io::Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        for bind in &self.binds {
            let target = self.inside(bind);
            let missing: Vec<&Path> = target.ancestors().take_while(|p| *p != self.root).collect();
            for dir in missing.into_iter().rev() {
                match std::fs::create_dir(dir) {
                    Ok(()) => created.push(dir.to_path_buf()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let hosts = self.inside(Path::new(HOSTS_FILE));
        if !hosts.exists() {
            // Roots built by scripts/install-deps have a copy already.
            std::fs::copy(HOSTS_FILE, &hosts)?;
        }
        Ok(created)
    }

    /// Makes `command` run confined: in its own mount namespace with the
    /// mounts described above, chrooted into the root, in `/`. The program
    /// and every path in its arguments are resolved inside the root.
    pub fn apply(&self, command: &mut Command) -> io::Result<()> {
        let c = |path: &Path| {
            CString::new(path.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
        };
        // Everything the child needs is allocated here, before the fork:
        // between fork and exec only system calls are safe.
        let root = c(&self.root)?;
        let proc_dir = c(&self.inside(Path::new("/proc")))?;
        let mut binds = vec![(
            c(Path::new(HOSTS_FILE))?,
            c(&self.inside(Path::new(HOSTS_FILE)))?,
        )];
        for bind in &self.binds {
            binds.push((c(bind)?, c(&self.inside(bind))?));
        }
        let slash = c(Path::new("/"))?;
        let proc_fs = c(Path::new("proc"))?;
        let none: Option<&std::ffi::CStr> = None;
        // SAFETY: the closure runs in the forked child before exec and only
        // makes system calls (unshare, mount, chroot, chdir) on strings
        // allocated above; it allocates nothing and takes no locks.
        unsafe {
            command.pre_exec(move || {
                unshare(CloneFlags::CLONE_NEWNS)?;
                // Private: none of the mounts below propagate to the host.
                mount(
                    none,
                    slash.as_c_str(),
                    none,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    none,
                )?;
                mount(
                    Some(proc_fs.as_c_str()),
                    proc_dir.as_c_str(),
                    Some(proc_fs.as_c_str()),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    none,
                )?;
                for (source, target) in &binds {
                    mount(
                        Some(source.as_c_str()),
                        target.as_c_str(),
                        none,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        none,
                    )?;
                }
                chroot(root.as_c_str())?;
                chdir(slash.as_c_str())?;
                Ok(())
            });
        }
        Ok(())
    }
}

/// Removes the mount points [`Confinement::create_mount_points`] created,
/// innermost first. Only empty directories go: `remove_dir` never deletes
/// content, so a directory something else still uses stays.
pub fn remove_mount_points(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        if let Err(err) = std::fs::remove_dir(dir) {
            tracing::debug!("keeping {}: {err}", dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_the_root_keep_their_absolute_form() {
        let confinement = Confinement::new(Path::new("/roots/mysql"), &[]);
        assert_eq!(
            confinement.inside(Path::new("/tmp/sb/db1")),
            PathBuf::from("/roots/mysql/tmp/sb/db1")
        );
        assert_eq!(
            confinement.inside(Path::new("/proc")),
            PathBuf::from("/roots/mysql/proc")
        );
    }

    #[test]
    fn mount_points_are_created_and_removed_without_touching_what_existed() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("tmp/kept")).unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        let confinement = Confinement::new(root.path(), &[Path::new("/tmp/kept/sb/dir")]);
        let created = confinement.create_mount_points().unwrap();
        assert_eq!(
            created,
            vec![
                root.path().join("tmp/kept/sb"),
                root.path().join("tmp/kept/sb/dir")
            ]
        );
        assert!(root.path().join("tmp/kept/sb/dir").is_dir());
        // The root's own hosts file is left as it is.
        assert_eq!(
            std::fs::read_to_string(root.path().join("etc/hosts")).unwrap(),
            "127.0.0.1 localhost\n"
        );
        remove_mount_points(&created);
        assert!(!root.path().join("tmp/kept/sb").exists());
        assert!(root.path().join("tmp/kept").is_dir());
    }
}
