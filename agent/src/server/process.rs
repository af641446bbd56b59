//! Process inspection through /proc: is the pid in a pid file a live mysqld?

use std::path::Path;

/// Command names a MariaDB/MySQL server runs under.
const SERVER_COMMS: &[&str] = &["mariadbd", "mysqld"];

/// The pid from `pid_file` if it belongs to a live mariadbd/mysqld. Stale pid
/// files (left by a crash, pid reused by something else) give None.
pub fn running_mysqld_pid(pid_file: &Path) -> Option<u32> {
    let pid = read_pid_file(pid_file)?;
    (is_alive(pid) && is_server(pid)).then_some(pid)
}

/// True when `pid` runs under a server's command name.
pub fn is_server(pid: u32) -> bool {
    comm(pid).is_some_and(|c| SERVER_COMMS.contains(&c.as_str()))
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
    !matches!(state(pid), Some('Z') | Some('X') | None)
}

/// The state letter of /proc/PID/stat (`R`, `S`, `D`, `T` stopped, `t`
/// traced, `Z` zombie, …); None when there is no such process.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces or parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.chars().next())
}

/// True when the process is stopped (SIGSTOP, or by a tracer): it cannot
/// act on SIGTERM until it is continued.
pub fn is_stopped(pid: u32) -> bool {
    matches!(state(pid), Some('T') | Some('t'))
}

pub fn comm(pid: u32) -> Option<String> {
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
        assert!(
            matches!(state(me), Some('R') | Some('S')),
            "{:?}",
            state(me)
        );
        assert!(!is_stopped(me));
        assert_eq!(state(u32::MAX), None);
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
