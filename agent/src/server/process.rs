//! Process inspection through /proc: is the pid in a pid file a live mysqld?

use std::path::Path;

/// Command names a MariaDB/MySQL server runs under.
const SERVER_COMMS: &[&str] = &["mariadbd", "mysqld"];

/// The pid from `pid_file` if it belongs to a live mariadbd/mysqld. Stale pid
/// files (left by a crash, pid reused by something else) give None.
pub fn running_mysqld_pid(pid_file: &Path) -> Option<u32> {
    let pid = read_pid_file(pid_file)?;
    (is_alive(pid) && SERVER_COMMS.contains(&comm(pid)?.as_str())).then_some(pid)
}

pub fn read_pid_file(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&p| p > 0)
}

/// True while the process exists and is not a zombie (a zombie has exited;
/// it only waits for its parent to reap it).
pub fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces or parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

fn comm(pid: u32) -> Option<String> {
    Some(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_but_not_mysqld() {
        let me = std::process::id();
        assert!(is_alive(me));
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("x.pid");
        std::fs::write(&pid_file, format!("{me}\n")).unwrap();
        assert_eq!(read_pid_file(&pid_file), Some(me));
        // A stale pid file pointing at some other program is not mysqld.
        assert_eq!(running_mysqld_pid(&pid_file), None);
        assert_eq!(running_mysqld_pid(&dir.path().join("missing.pid")), None);
    }

    #[test]
    fn garbage_pid_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("x.pid");
        std::fs::write(&pid_file, "not a pid").unwrap();
        assert_eq!(read_pid_file(&pid_file), None);
        std::fs::write(&pid_file, "0").unwrap();
        assert_eq!(read_pid_file(&pid_file), None);
    }
}
