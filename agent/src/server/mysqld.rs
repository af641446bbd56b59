//! Starting and stopping mysqld, either directly (`--supervise`) or through
//! the host's service manager.

use std::fs::OpenOptions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flipover_agent::mycnf::MyCnfError;
use flipover_agent::protocol::FenceRecord;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Command;
use tracing::{info, warn};

use super::facts::HostInfo;
use super::fence::marker;
use super::process::{is_alive, is_server, running_mysqld_pid};
use super::sql::Flavor;

/// How long a supervised start may take before we give up waiting.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// InnoDB may flush a lot on shutdown; be patient.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound for `systemctl`/`service`, so a hung init script cannot hold
/// the action lock forever.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(200);
/// Lines of the error log quoted in failure messages.
const TAIL_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum MysqldError {
    #[error(transparent)]
    Conf(#[from] MyCnfError),
    #[error("no mariadbd or mysqld binary found in PATH or /usr/sbin")]
    NoServerBinary,
    #[error("cannot open {path} for mysqld's output: {source}")]
    OutputFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mysqld exited during startup ({status}); last lines of {log}:\n{tail}")]
    ExitedEarly {
        status: ExitStatus,
        log: String,
        tail: String,
    },
    #[error("mysqld did not become ready within {}s; last lines of {log}:\n{tail}", START_TIMEOUT.as_secs())]
    StartTimeout { log: String, tail: String },
    #[error("cannot signal mysqld (pid {pid}): {source}")]
    Signal { pid: u32, source: nix::Error },
    #[error("mysqld (pid {pid}) still runs {}s after SIGTERM", STOP_TIMEOUT.as_secs())]
    StopTimeout { pid: u32 },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "mysqld is fenced ({marker}) and runs under a service manager, which cannot start it \
         read-only: the agent does not start it. Lift the fence to start it writable, or start \
         it read-only by hand"
    )]
    FencedService { marker: String },
}

/// The pid of a mysqld this agent has spawned and that is not ready yet
/// (it may not have written its pid file): a fence must find it too.
static STARTING: Mutex<Option<u32>> = Mutex::new(None);

/// The mysqld a supervised start is bringing up, if one is under way.
pub fn starting_pid() -> Option<u32> {
    let pid = (*STARTING.lock().unwrap_or_else(|e| e.into_inner()))?;
    (is_alive(pid) && is_server(pid)).then_some(pid)
}

/// Notes a starting mysqld until dropped, however the start ends.
struct Starting;

impl Starting {
    fn note(pid: u32) -> Starting {
        *STARTING.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
        Starting
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        *STARTING.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Starts mysqld; success when it already runs. On a fenced host it starts
/// read-only (supervised) or not at all (a service manager).
pub async fn start(host: &HostInfo) -> Result<(), MysqldError> {
    let target = Target::read(host)?;
    let fence = marker::current(&target.fence_record);
    if host.supervised {
        start_supervised(host, target, fence.as_ref()).await
    } else if let Some(fence) = fence {
        Err(MysqldError::FencedService {
            marker: fence.marker,
        })
    } else {
        run_service_command(host, "start").await
    }
}

/// Stops mysqld; success when it is already stopped.
pub async fn stop(host: &HostInfo) -> Result<(), MysqldError> {
    if host.supervised {
        stop_supervised(host).await
    } else {
        run_service_command(host, "stop").await
    }
}

/// Whether a supervised agent starts mysqld at its own startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Autostart {
    Start,
    AlreadyRunning,
    /// No `mysql` system schema: an empty datadir awaiting a restore.
    NotInitialised,
    /// A fence is in force: a fenced server comes back only when asked.
    Fenced(FenceRecord),
}

/// Only when mysqld is down, the datadir holds an initialised server, and
/// no fence is in force.
pub fn should_autostart(host: &HostInfo) -> Result<Autostart, MyCnfError> {
    let target = Target::read(host)?;
    Ok(if let Some(fence) = marker::current(&target.fence_record) {
        Autostart::Fenced(fence)
    } else if running_mysqld_pid(&target.pid_file).is_some() {
        Autostart::AlreadyRunning
    } else if !target.datadir.join("mysql").is_dir() {
        Autostart::NotInitialised
    } else {
        Autostart::Start
    })
}

/// The paths and addresses of the server, from the my.cnf.
struct Target {
    datadir: PathBuf,
    /// Where a fence is recorded ([`marker::path_for`] the datadir).
    fence_record: PathBuf,
    pid_file: PathBuf,
    socket: PathBuf,
    tcp: Option<SocketAddr>,
    log_error: Option<PathBuf>,
}

impl Target {
    fn read(host: &HostInfo) -> Result<Target, MyCnfError> {
        let conf = host.load_conf()?;
        let version = host.version();
        let s = conf.settings(version);
        let opts = conf.server_options(version);
        // skip-networking: only the socket can answer.
        let networking = !opts.contains_key("skip_networking")
            && !matches!(opts.get("networking"), Some(Some(v)) if v == "0");
        let datadir = conf.datadir(version);
        Ok(Target {
            fence_record: marker::path_for(&datadir),
            datadir,
            pid_file: PathBuf::from(s.pid_file.unwrap_or_default()),
            socket: PathBuf::from(s.socket.unwrap_or_default()),
            tcp: networking.then(|| probe_addr(s.bind_address.as_deref(), s.port.unwrap_or(3306))),
            log_error: conf.log_error(version),
        })
    }

    /// Ready = a live mysqld wrote its pid file and accepts connections.
    fn ready(&self) -> Option<u32> {
        let pid = running_mysqld_pid(&self.pid_file)?;
        let socket_answers = UnixStream::connect(&self.socket).is_ok();
        let tcp_answers = self.tcp.is_some_and(|addr| {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        (socket_answers || tcp_answers).then_some(pid)
    }
}

/// Where to connect to check the port: the first bind address, or loopback
/// for wildcard binds.
fn probe_addr(bind_address: Option<&str>, port: u16) -> SocketAddr {
    let first = bind_address
        .and_then(|b| b.split(',').next())
        .map(str::trim);
    let ip = match first.and_then(|a| a.parse::<IpAddr>().ok()) {
        Some(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    SocketAddr::new(ip, port)
}

async fn start_supervised(
    host: &HostInfo,
    target: Target,
    fence: Option<&FenceRecord>,
) -> Result<(), MysqldError> {
    if let Some(pid) = running_mysqld_pid(&target.pid_file) {
        info!(pid, "mysqld already running");
        return Ok(());
    }
    let binary = host
        .server_binary
        .as_ref()
        .ok_or(MysqldError::NoServerBinary)?;
    // With log_error set mysqld logs there itself; stdout/stderr go along so
    // nothing is lost. Without it, errors go to stderr: keep them next to the conf.
    let log = target.log_error.clone().unwrap_or_else(|| {
        host.conf_path
            .parent()
            .unwrap_or(Path::new("/"))
            .join("mysqld.out")
    });
    let output = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|source| MysqldError::OutputFile {
            path: log.clone(),
            source,
        })?;
    let log_start = output.metadata().map(|m| m.len()).unwrap_or(0);
    let stderr = output
        .try_clone()
        .map_err(|source| MysqldError::OutputFile {
            path: log.clone(),
            source,
        })?;

    let mut command = Command::new(binary);
    command.arg(format!("--defaults-file={}", host.conf_path.display()));
    if let Some(fence) = fence {
        // After --defaults-file (which must come first); the command line
        // wins over the file.
        let flavor = match host.server_version.as_deref() {
            Some(version) => Flavor::detect(version, ""),
            // Unknown: MariaDB's options are --read-only alone, which both
            // understand (MariaDB refuses --super-read-only).
            None => Flavor::Mariadb,
        };
        let options = flavor.read_only_options();
        warn!(marker = %fence.marker, ?options, "mysqld is fenced: starting it read-only");
        command.args(options);
    }
    command
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe. Its own session detaches mysqld
    // from the agent's terminal and process group, so it outlives the agent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn().map_err(|source| MysqldError::Spawn {
        program: binary.display().to_string(),
        source,
    })?;
    let child_pid = child.id().unwrap_or(0);
    let starting = Starting::note(child_pid);
    info!(pid = child_pid, binary = %binary.display(), log = %log.display(), "started mysqld, waiting until it is ready");

    let deadline = Instant::now() + START_TIMEOUT;
    let outcome = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Err(MysqldError::ExitedEarly {
                status,
                log: log.display().to_string(),
                tail: tail(&log, log_start),
            });
        }
        if let Some(pid) = target.ready() {
            info!(pid, "mysqld is ready");
            break Ok(());
        }
        if Instant::now() >= deadline {
            break Err(MysqldError::StartTimeout {
                log: log.display().to_string(),
                tail: tail(&log, log_start),
            });
        }
        tokio::time::sleep(POLL).await;
    };
    drop(starting);
    // Reap mysqld whenever it exits so it never lingers as a zombie (which
    // would also look alive in /proc to a naive check).
    tokio::spawn(async move {
        match child.wait().await {
            Ok(status) => info!(pid = child_pid, %status, "mysqld exited"),
            Err(e) => warn!(pid = child_pid, error = %e, "waiting for mysqld failed"),
        }
    });
    outcome
}

async fn stop_supervised(host: &HostInfo) -> Result<(), MysqldError> {
    let target = Target::read(host)?;
    let Some(pid) = running_mysqld_pid(&target.pid_file) else {
        info!("mysqld already stopped");
        return Ok(());
    };
    info!(pid, "sending SIGTERM to mysqld");
    // mysqld may exit between the check and the signal; that is a success.
    match kill(Pid::from_raw(pid as i32), Signal::SIGTERM) {
        Ok(()) | Err(nix::Error::ESRCH) => {}
        Err(source) => return Err(MysqldError::Signal { pid, source }),
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return Err(MysqldError::StopTimeout { pid });
        }
        tokio::time::sleep(POLL).await;
    }
    info!(pid, "mysqld stopped");
    Ok(())
}

/// `systemctl ACTION NAME` under systemd, else `service NAME ACTION`; run
/// directly (no shell) so the service name cannot inject anything.
async fn run_service_command(host: &HostInfo, action: &str) -> Result<(), MysqldError> {
    let name = host.service.as_deref().unwrap_or("mariadb");
    if under_systemd() {
        run_command("systemctl", &[action, name], SERVICE_TIMEOUT).await
    } else {
        run_command("service", &[name, action], SERVICE_TIMEOUT).await
    }
}

/// Asks the service manager to stop mysqld, for a fence that watches the
/// pid itself and SIGKILLs it on its own deadline. Under systemd the stop
/// is only queued (`--no-block`): the queued stop job also keeps the unit
/// from being restarted when mysqld dies of that SIGKILL. `service NAME
/// stop` is waited for, up to `limit`. Returns the command run.
pub async fn request_service_stop(host: &HostInfo, limit: Duration) -> Result<String, MysqldError> {
    let name = host.service.as_deref().unwrap_or("mariadb");
    let (program, args) = if under_systemd() {
        ("systemctl", vec!["stop", "--no-block", name])
    } else {
        ("service", vec![name, "stop"])
    };
    run_command(program, &args, limit).await?;
    Ok(format!("{program} {}", args.join(" ")))
}

fn under_systemd() -> bool {
    Path::new("/run/systemd/system").exists()
}

async fn run_command(program: &str, args: &[&str], limit: Duration) -> Result<(), MysqldError> {
    let command_text = format!("{program} {}", args.join(" "));
    info!(command = %command_text, "running service command");
    let run = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(limit, run).await {
        Err(_) => {
            return Err(MysqldError::Command {
                command: command_text,
                status: format!("no answer within {limit:?}"),
                stderr: String::new(),
            })
        }
        Ok(result) => result.map_err(|source| MysqldError::Spawn {
            program: program.to_string(),
            source,
        })?,
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Some init scripts report failures on stdout only.
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    Err(MysqldError::Command {
        command: command_text,
        status: output.status.to_string(),
        stderr: last_lines(&text, TAIL_LINES),
    })
}

/// The last lines of `log` written after byte `from` (the whole file's tail
/// when it was truncated meanwhile).
fn tail(log: &Path, from: u64) -> String {
    let Ok(bytes) = std::fs::read(log) else {
        return format!("(cannot read {})", log.display());
    };
    let start = if (from as usize) <= bytes.len() {
        from as usize
    } else {
        0
    };
    let text = String::from_utf8_lossy(&bytes[start..]);
    let tail = last_lines(&text, TAIL_LINES);
    if tail.is_empty() {
        "(nothing logged)".to_string()
    } else {
        tail
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_addr_uses_loopback_for_wildcards() {
        assert_eq!(probe_addr(None, 3306), "127.0.0.1:3306".parse().unwrap());
        assert_eq!(
            probe_addr(Some("0.0.0.0"), 1),
            "127.0.0.1:1".parse().unwrap()
        );
        assert_eq!(probe_addr(Some("*"), 1), "127.0.0.1:1".parse().unwrap());
        assert_eq!(
            probe_addr(Some("127.4.0.2,::1"), 5),
            "127.4.0.2:5".parse().unwrap()
        );
    }

    #[test]
    fn last_lines_keeps_the_end() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let tail = last_lines(&text, 20);
        assert!(
            tail.starts_with("line 11\n") && tail.ends_with("line 30"),
            "{tail}"
        );
        assert_eq!(last_lines("", 20), "");
    }
}
