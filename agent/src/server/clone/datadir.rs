//! Swapping the datadir for a clone: what counts as user data, moving the
//! old datadir aside (never deleting it before the new copy is proven),
//! ownership of the new files, and putting the old one back.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Datadir subdirectories every server has; anything else is a database
/// someone created. `lost+found` is a filesystem's, and names starting with
/// `#` (MySQL's `#innodb_redo`) or `.` are never databases.
/// `flipover` holds flipover's own apply journal, not user data.
const SYSTEM_DIRS: &[&str] = &[
    "mysql",
    "performance_schema",
    "sys",
    "lost+found",
    "flipover",
];

#[derive(Debug, thiserror::Error)]
pub enum DatadirError {
    #[error("{action} {path} failed: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DatadirError {
    let path = path.to_path_buf();
    move |source| DatadirError::Io {
        action,
        path,
        source,
    }
}

/// The databases in `datadir` that are not the server's own; empty when
/// the datadir does not exist.
pub fn user_databases(datadir: &Path) -> Result<Vec<String>, DatadirError> {
    let entries = match std::fs::read_dir(datadir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("reading", datadir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io("reading", datadir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // is_dir follows symlinks: a database symlinked elsewhere is data too.
        if entry.path().is_dir()
            && !SYSTEM_DIRS.contains(&name.as_str())
            && !name.starts_with('#')
            && !name.starts_with('.')
        {
            found.push(name);
        }
    }
    found.sort();
    Ok(found)
}

/// True when `dir` is the root of a mounted filesystem: it cannot be
/// renamed, and its sibling would be on another filesystem.
pub fn is_mount_point(dir: &Path) -> bool {
    let (Ok(meta), Some(parent)) = (dir.metadata(), dir.parent()) else {
        return false;
    };
    parent.metadata().is_ok_and(|p| p.dev() != meta.dev())
}

/// Where the old datadir waits until the clone is confirmed: a sibling, so
/// the rename stays on one filesystem and is atomic.
pub fn previous_path(datadir: &Path, job_id: &str) -> PathBuf {
    let mut name = datadir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".flipover-previous-{job_id}"));
    datadir.with_file_name(name)
}

/// Where a confirmed clone's previous datadir goes while it is deleted: a
/// deletion cut short (the agent killed) must never look like a previous
/// datadir to put back.
pub fn discarding_path(previous: &Path) -> PathBuf {
    let name = previous.file_name().unwrap_or_default().to_string_lossy();
    previous.with_file_name(name.replacen(".flipover-previous-", ".flipover-discarding-", 1))
}

/// Deletes a confirmed clone's previous datadir: renamed out of the way
/// first (atomic), then removed. Repeating it is harmless.
pub fn discard(previous: &Path) -> Result<(), DatadirError> {
    let doomed = discarding_path(previous);
    match std::fs::rename(previous, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("renaming for deletion", previous)(e)),
    }
    match std::fs::remove_dir_all(&doomed) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("deleting", &doomed)(e)),
        _ => Ok(()),
    }
}

/// What an interrupted clone left beside `datadir`: previous datadirs of
/// clones never confirmed, and previous datadirs whose deletion was cut short.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub previous: Vec<PathBuf>,
    pub discarding: Vec<PathBuf>,
}

pub fn leftovers(datadir: &Path) -> Result<Leftovers, DatadirError> {
    let mut found = Leftovers::default();
    let (Some(parent), Some(name)) = (datadir.parent(), datadir.file_name()) else {
        return Ok(found);
    };
    let name = name.to_string_lossy();
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io("reading", parent)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io("reading", parent))?;
        let sibling = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = sibling.strip_prefix(name.as_ref()) else {
            continue;
        };
        if rest.starts_with(".flipover-previous-") {
            found.previous.push(entry.path());
        } else if rest.starts_with(".flipover-discarding-") {
            found.discarding.push(entry.path());
        }
    }
    found.previous.sort();
    found.discarding.sort();
    Ok(found)
}

/// The old datadir moved aside and a fresh empty one in its place.
#[derive(Debug, Clone)]
pub struct Swap {
    pub datadir: PathBuf,
    /// None when there was no datadir to keep.
    pub previous: Option<PathBuf>,
    pub uid: u32,
    pub gid: u32,
}

/// Renames `datadir` to its [`previous_path`] and creates an empty datadir
/// with the old one's mode and owner (a new one gets its parent's owner).
pub fn move_aside(datadir: &Path, job_id: &str) -> Result<Swap, DatadirError> {
    let (previous, mode, uid, gid) = match datadir.metadata() {
        Ok(meta) => {
            let previous = previous_path(datadir, job_id);
            std::fs::rename(datadir, &previous).map_err(io("moving aside", datadir))?;
            (
                Some(previous),
                meta.permissions().mode() & 0o7777,
                meta.uid(),
                meta.gid(),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = datadir.parent().unwrap_or(Path::new("/"));
            let meta = parent.metadata().map_err(io("reading", parent))?;
            (None, 0o750, meta.uid(), meta.gid())
        }
        Err(e) => return Err(io("reading", datadir)(e)),
    };
    let swap = Swap {
        datadir: datadir.to_path_buf(),
        previous,
        uid,
        gid,
    };
    let created = DirBuilder::new()
        .mode(mode)
        .create(datadir)
        .and_then(|()| std::fs::set_permissions(datadir, std::fs::Permissions::from_mode(mode)))
        .and_then(|()| std::os::unix::fs::chown(datadir, Some(uid), Some(gid)));
    if let Err(e) = created {
        // Undo at once: the caller only rolls back swaps it got.
        let _ = restore(&swap);
        return Err(io("creating", datadir)(e));
    }
    Ok(swap)
}

/// Gives every file under `dir` to uid:gid (the tools run as root). Symlinks
/// are changed themselves, never followed.
pub fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), DatadirError> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .map_err(io("changing the owner of", &path))?;
        let meta = path.symlink_metadata().map_err(io("reading", &path))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io("reading", &path))? {
                pending.push(entry.map_err(io("reading", &path))?.path());
            }
        }
    }
    Ok(())
}

/// Removes the new (partial) datadir and renames the previous one back.
pub fn restore(swap: &Swap) -> Result<(), DatadirError> {
    match std::fs::remove_dir_all(&swap.datadir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing the partial datadir", &swap.datadir)(e)),
    }
    if let Some(previous) = &swap.previous {
        std::fs::rename(previous, &swap.datadir).map_err(io("renaming back", previous))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_schemas_are_not_user_data() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(user_databases(&d.join("missing")).unwrap().is_empty());
        for sub in [
            "mysql",
            "performance_schema",
            "sys",
            "#innodb_redo",
            "lost+found",
        ] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("ibdata1"), b"x").unwrap();
        assert!(user_databases(d).unwrap().is_empty());
        std::fs::create_dir(d.join("shop")).unwrap();
        assert_eq!(user_databases(d).unwrap(), ["shop"]);
    }

    #[test]
    fn move_aside_and_restore_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let datadir = dir.path().join("data");
        std::fs::create_dir(&datadir).unwrap();
        std::fs::set_permissions(&datadir, std::fs::Permissions::from_mode(0o710)).unwrap();
        std::fs::write(datadir.join("ibdata1"), b"old").unwrap();

        let swap = move_aside(&datadir, "abc").unwrap();
        let previous = swap.previous.clone().unwrap();
        assert_eq!(previous, dir.path().join("data.flipover-previous-abc"));
        assert_eq!(std::fs::read(previous.join("ibdata1")).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&datadir).unwrap().count(), 0);
        assert_eq!(
            datadir.metadata().unwrap().permissions().mode() & 0o7777,
            0o710
        );

        std::fs::create_dir(datadir.join("partial")).unwrap();
        std::fs::write(datadir.join("partial/x"), b"new").unwrap();
        chown_tree(&datadir, swap.uid, swap.gid).unwrap();
        restore(&swap).unwrap();
        assert_eq!(std::fs::read(datadir.join("ibdata1")).unwrap(), b"old");
        assert!(!datadir.join("partial").exists());
        assert!(!previous.exists());
    }

    #[test]
    fn a_missing_datadir_is_created_and_removed_again() {
        let dir = tempfile::tempdir().unwrap();
        let datadir = dir.path().join("data");
        let swap = move_aside(&datadir, "x").unwrap();
        assert!(swap.previous.is_none() && datadir.is_dir());
        restore(&swap).unwrap();
        assert!(!datadir.exists());
    }

    #[test]
    fn leftovers_are_found_and_a_discard_leaves_none() {
        let dir = tempfile::tempdir().unwrap();
        let datadir = dir.path().join("data");
        std::fs::create_dir(&datadir).unwrap();
        std::fs::create_dir(dir.path().join("data2.flipover-previous-x")).unwrap();
        assert_eq!(leftovers(&datadir).unwrap(), Leftovers::default());

        let swap = move_aside(&datadir, "abc").unwrap();
        let previous = swap.previous.unwrap();
        let half_deleted = dir.path().join("data.flipover-discarding-old");
        std::fs::create_dir(&half_deleted).unwrap();
        let found = leftovers(&datadir).unwrap();
        assert_eq!(found.previous, std::slice::from_ref(&previous));
        assert_eq!(found.discarding, [half_deleted]);

        std::fs::write(previous.join("ibdata1"), b"old").unwrap();
        discard(&previous).unwrap();
        discard(&previous).unwrap();
        assert!(!previous.exists() && !discarding_path(&previous).exists());
    }

    #[test]
    fn temp_dirs_are_not_mount_points() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(dir.path()));
        assert!(is_mount_point(Path::new("/proc")));
    }
}
