//! The physical backup tools: which ones the host has, how to run them
//! (never through a shell), their stderr, and the binlog position they record.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::server::facts::find_program;

/// Lines of a tool's stderr quoted in a failed job's error.
pub const TAIL_LINES: usize = 20;

/// Which family of tools the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    Xtrabackup,
}

/// The backup tool and its stream unpacker.
#[derive(Debug, Clone)]
pub struct Tools {
    pub flavor: Flavor,
    /// mariadb-backup / xtrabackup: --backup on donors, --prepare on targets.
    pub backup: PathBuf,
    /// mbstream / xbstream: unpacks the stream on targets.
    pub unpack: Option<PathBuf>,
}

const MARIADB_PACKAGE_HINT: &str =
    "install the Debian package mariadb-backup (it provides mariadb-backup and mbstream)";

impl Tools {
    /// The host's tools, preferring MariaDB's; Err names what to install.
    pub fn find() -> Result<Tools, String> {
        if let Some(backup) = find_program(&["mariadb-backup", "mariabackup"]) {
            return Ok(Tools {
                flavor: Flavor::MariaDb,
                backup,
                unpack: find_program(&["mbstream"]),
            });
        }
        if let Some(backup) = find_program(&["xtrabackup"]) {
            return Ok(Tools {
                flavor: Flavor::Xtrabackup,
                backup,
                unpack: find_program(&["xbstream"]),
            });
        }
        Err(format!(
            "no physical backup tool (mariadb-backup or xtrabackup) on this host: {MARIADB_PACKAGE_HINT} \
             (percona-xtrabackup for MySQL)"
        ))
    }

    /// The tools a target needs: the unpacker too.
    pub fn find_for_receive() -> Result<(Tools, PathBuf), String> {
        let tools = Tools::find()?;
        match (&tools.unpack, tools.flavor) {
            (Some(unpack), _) => {
                let unpack = unpack.clone();
                Ok((tools, unpack))
            }
            (None, Flavor::MariaDb) => Err(format!(
                "{} is installed but mbstream is missing: {MARIADB_PACKAGE_HINT}",
                tools.backup.display()
            )),
            (None, Flavor::Xtrabackup) => Err(format!(
                "{} is installed but xbstream is missing: install the package percona-xtrabackup \
                 (or {MARIADB_PACKAGE_HINT})",
                tools.backup.display()
            )),
        }
    }

    /// Files, in the prepared backup, recording the binlog position.
    pub fn binlog_info_files() -> [&'static str; 2] {
        ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"]
    }
}

/// Runs `command` with stdout as given, stderr captured for its tail, and
/// tied to the agent: killed when its handle is dropped, and (PDEATHSIG)
/// when the agent dies, so a crashed agent leaves no backup running.
pub fn spawn(
    command: &mut Command,
    stdin: Stdio,
    stdout: Stdio,
) -> std::io::Result<(Child, StderrTail)> {
    command
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .current_dir("/")
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe. Called from a tokio worker thread,
    // which lives as long as the agent (PDEATHSIG follows the spawning thread).
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn()?;
    let stderr = child.stderr.take().expect("stderr is piped");
    Ok((child, StderrTail::capture(stderr)))
}

/// The last lines a tool wrote to stderr, collected in the background so a
/// chatty tool (mariadb-backup logs every file) never blocks on a full pipe.
pub struct StderrTail(JoinHandle<String>);

impl StderrTail {
    pub fn capture<R: AsyncRead + Unpin + Send + 'static>(stderr: R) -> StderrTail {
        StderrTail(tokio::spawn(async move {
            let mut reader = BufReader::new(stderr);
            let mut tail = VecDeque::with_capacity(TAIL_LINES);
            let mut line = Vec::new();
            // Read to EOF whatever the bytes are: stopping early would let
            // the pipe fill and the tool block forever.
            while let Ok(n) = reader.read_until(b'\n', &mut line).await {
                if n == 0 {
                    break;
                }
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(String::from_utf8_lossy(&line).trim_end().to_string());
                line.clear();
            }
            Vec::from(tail).join("\n")
        }))
    }

    /// The tail, once the tool closed stderr (i.e. exited or was killed).
    pub async fn text(self) -> String {
        self.0.await.unwrap_or_default()
    }
}

/// A tool that ran and failed.
#[derive(Debug, thiserror::Error)]
#[error("{program} failed ({status}); last lines of its output:\n{tail}")]
pub struct ToolFailed {
    pub program: String,
    pub status: String,
    pub tail: String,
}

impl ToolFailed {
    pub fn new(program: &Path, status: ExitStatus, tail: String) -> ToolFailed {
        ToolFailed {
            program: program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| program.display().to_string()),
            status: status.to_string(),
            tail: if tail.is_empty() {
                "(nothing)".to_string()
            } else {
                tail
            },
        }
    }
}

/// The binlog coordinates a backup was taken at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinlogInfo {
    pub file: String,
    pub position: u64,
    /// "" when the tool recorded none.
    pub gtid: String,
}

/// Parses `mariadb_backup_binlog_info` / `xtrabackup_binlog_info`:
/// `file<TAB>position[<TAB>gtid]`. MariaDB writes a multi-domain GTID as
/// one comma-separated field; MySQL's xtrabackup breaks a long GTID set
/// after its commas onto further lines, so those are joined back.
pub fn parse_binlog_info(text: &str) -> Result<BinlogInfo, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines
        .next()
        .ok_or_else(|| "the binlog info file is empty".to_string())?;
    let mut fields = first.split('\t');
    let file = fields.next().unwrap_or_default().trim().to_string();
    let position = fields.next().unwrap_or_default().trim();
    if file.is_empty() {
        return Err(format!("no binlog file name in {first:?}"));
    }
    let position = position
        .parse()
        .map_err(|_| format!("bad binlog position {position:?} in {first:?}"))?;
    let mut gtid: String = fields.collect::<Vec<_>>().join("\t").trim().to_string();
    for more in lines {
        gtid.push_str(more.trim());
    }
    Ok(BinlogInfo {
        file,
        position,
        gtid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_info_with_gtid() {
        assert_eq!(
            parse_binlog_info("mysql-bin.000002\t1234\t0-1-17\n").unwrap(),
            BinlogInfo {
                file: "mysql-bin.000002".into(),
                position: 1234,
                gtid: "0-1-17".into()
            }
        );
    }

    #[test]
    fn binlog_info_without_gtid() {
        for text in [
            "mysql-bin.000001\t328\n",
            "mysql-bin.000001\t328\t\n",
            "mysql-bin.000001\t328",
        ] {
            let info = parse_binlog_info(text).unwrap();
            assert_eq!(
                (info.file.as_str(), info.position, info.gtid.as_str()),
                ("mysql-bin.000001", 328, "")
            );
        }
    }

    #[test]
    fn binlog_info_multi_domain_gtid() {
        let info = parse_binlog_info("binlog.000007\t42\t0-1-100,1-2-7,5-9-3\n").unwrap();
        assert_eq!(info.gtid, "0-1-100,1-2-7,5-9-3");
        // MySQL/xtrabackup: a GTID set continued on further lines.
        let info = parse_binlog_info(
            "binlog.000003\t1157\t3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n\
             5ab8b5c6-71ca-11e1-9e33-c80aa9429562:1-3\n",
        )
        .unwrap();
        assert_eq!(
            info.gtid,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,5ab8b5c6-71ca-11e1-9e33-c80aa9429562:1-3"
        );
        assert_eq!(info.position, 1157);
    }

    #[test]
    fn binlog_info_garbage_is_an_error() {
        assert!(parse_binlog_info("").is_err());
        assert!(parse_binlog_info("mysql-bin.000001\tnot-a-number\n").is_err());
        assert!(parse_binlog_info("\t5\n").is_err());
    }

    #[tokio::test]
    async fn stderr_tail_keeps_the_last_lines() {
        let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"bad \xff utf-8\nlast");
        let tail = StderrTail::capture(std::io::Cursor::new(bytes))
            .text()
            .await;
        assert!(
            tail.starts_with("line 33\n") && tail.ends_with("line 50\nbad \u{fffd} utf-8\nlast"),
            "{tail}"
        );
    }

    #[test]
    fn finds_the_installed_mariadb_tools() {
        // mariadb-backup is a test prerequisite of this crate.
        let (tools, unpack) = Tools::find_for_receive().unwrap();
        assert_eq!(tools.flavor, Flavor::MariaDb);
        assert!(unpack.ends_with("mbstream"));
    }
}
