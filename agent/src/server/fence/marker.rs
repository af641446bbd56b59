//! The record of a fence on the host, so that it outlives an agent restart.
//!
//! It is a JSON file beside the datadir, `<datadir>.flipover-fence` (for
//! `/var/lib/mysql`, `/var/lib/mysql.flipover-fence`). Beside, not inside:
//! the datadir holds only the server's files and a clone replaces it
//! whole, while the fence is about the host's server, whatever its data.
//! The datadir's parent is where the agent already keeps a clone's previous
//! datadir, so it is on the host's own disk and writable by the agent, and
//! each server of a host (its own my.cnf and datadir) has its own record.
//!
//! While the file exists the agent does not start mysqld at its own
//! startup, reports it in its facts, and starts mysqld read-only. An
//! unreadable record still counts as a fence: doubt keeps a server fenced.
//! Under a service manager the record binds the agent only: the init
//! system may still start mysqld at boot, writable.

use std::io::Write;
use std::path::{Path, PathBuf};

use flipover_agent::protocol::{FenceMode, FenceRecord};

/// What follows the datadir's name.
const SUFFIX: &str = ".flipover-fence";

#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error("cannot {what} the fence record {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The record's path for a server with this datadir.
pub fn path_for(datadir: &Path) -> PathBuf {
    // `components` drops a trailing slash, so the name is the datadir's own.
    let datadir: PathBuf = datadir.components().collect();
    let mut name = datadir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "datadir".into());
    name.push(SUFFIX);
    datadir.with_file_name(name)
}

/// The fence in force, if any. A record that exists but cannot be read or
/// decoded is a fence too, described as such.
pub fn current(path: &Path) -> Option<FenceRecord> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(unreadable(path, &e.to_string())),
    };
    match serde_json::from_slice::<FenceRecord>(&text) {
        Ok(mut record) => {
            record.marker = path.display().to_string();
            Some(record)
        }
        Err(e) => Some(unreadable(path, &e.to_string())),
    }
}

fn unreadable(path: &Path, error: &str) -> FenceRecord {
    FenceRecord {
        mode: FenceMode::Stop,
        at_unix_ms: 0,
        requested_by: None,
        reason: Some(format!(
            "the fence record is unreadable ({error}); it still counts as a fence"
        )),
        peer: None,
        marker: path.display().to_string(),
    }
}

/// Writes the record durably: a temporary file, synced, renamed over the
/// record, and the directory synced, so a crash leaves the old record or
/// the new one, never half of one.
pub fn write(path: &Path, record: &FenceRecord) -> Result<(), MarkerError> {
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| MarkerError::Io { what, path, source }
    };
    let json = serde_json::to_vec_pretty(record).expect("a fence record serializes");
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(&json).map_err(io("write", &tmp))?;
    file.write_all(b"\n").map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("sync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename into", path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync the directory of", path))?;
    }
    Ok(())
}

/// Deletes the record; true when there was one.
pub fn remove(path: &Path) -> Result<bool, MarkerError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(MarkerError::Io {
                what: "delete",
                path: path.to_path_buf(),
                source,
            })
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| MarkerError::Io {
                what: "sync the directory of",
                path: path.to_path_buf(),
                source,
            })?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &Path) -> FenceRecord {
        FenceRecord {
            mode: FenceMode::ReadOnly,
            at_unix_ms: 1_700_000_000_000,
            requested_by: Some("test".to_string()),
            reason: None,
            peer: Some("127.0.0.1:5000".to_string()),
            marker: path.display().to_string(),
        }
    }

    #[test]
    fn the_record_sits_beside_the_datadir() {
        assert_eq!(
            path_for(Path::new("/var/lib/mysql")),
            Path::new("/var/lib/mysql.flipover-fence")
        );
        assert_eq!(
            path_for(Path::new("/var/lib/mysql/")),
            Path::new("/var/lib/mysql.flipover-fence")
        );
    }

    #[test]
    fn written_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("data"));
        assert_eq!(current(&path), None);
        let written = record(&path);
        write(&path, &written).unwrap();
        assert_eq!(current(&path), Some(written.clone()));
        // Writing again replaces it whole.
        let mut again = written;
        again.mode = FenceMode::Stop;
        write(&path, &again).unwrap();
        assert_eq!(current(&path).unwrap().mode, FenceMode::Stop);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        assert_eq!(current(&path), None);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_garbled_record_is_still_a_fence() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("data"));
        std::fs::write(&path, b"{ half a rec").unwrap();
        let record = current(&path).unwrap();
        assert_eq!(record.mode, FenceMode::Stop);
        assert!(record.reason.unwrap().contains("unreadable"));
    }
}
