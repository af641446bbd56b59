//! What the fault-injection tests (tests/faults_*.rs) share: an apply that
//! flipover is made to kill itself in (`FLIPOVER_KILL_AT`), and the checks
//! that a cluster converged with every acknowledged write everywhere.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{flipover, flipover_bin, observe, TestSandbox};

/// Tables whose checksums must agree on every server.
pub const SHOP: &str = "shop.writes, shop.customers, shop.orders";

/// `flipover apply` with `FLIPOVER_KILL_AT=<checkpoint>`: asserts that it
/// died of SIGKILL (so it reached the checkpoint) and returns its stderr.
pub fn apply_killed_at(path: &Path, checkpoint: &str, extra: &[&str]) -> String {
    let mut args = vec!["apply", "-f", path.to_str().unwrap(), "--auto-approve"];
    args.extend_from_slice(extra);
    let output: Output = Command::new(flipover_bin())
        .args(&args)
        .env("NO_COLOR", "1")
        .env("FLIPOVER_KILL_AT", checkpoint)
        .output()
        .expect("flipover runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.signal(),
        Some(9),
        "flipover should have killed itself at {checkpoint} ({:?}):\n{stderr}",
        output.status
    );
    stderr
}

/// Exactly one writable server (`primary`), every other server in `servers`
/// replicating from its desired source (`sources`, else `primary`) with
/// both threads, and nothing left to plan for `path`.
pub fn converged(
    sandbox: &TestSandbox,
    path: &Path,
    servers: &[&str],
    primary: &str,
    sources: &[(&str, &str)],
) -> Result<(), String> {
    let state = observe(path);
    let mut wrong = Vec::new();
    for server in servers {
        let Some(facts) = state.servers[*server].facts() else {
            wrong.push(format!("{server} does not answer"));
            continue;
        };
        if facts.read_only != (*server != primary) {
            wrong.push(format!("{server}: read_only = {}", facts.read_only));
        }
        match (&facts.replica, *server == primary) {
            (None, true) => {}
            (Some(_), true) => wrong.push(format!("{server} is the primary but replicates")),
            (None, false) => wrong.push(format!("{server} does not replicate")),
            (Some(replica), false) => {
                let source = sources
                    .iter()
                    .find(|(r, _)| r == server)
                    .map(|(_, s)| *s)
                    .unwrap_or(primary);
                if replica.source_host != sandbox.host(source).address || !replica.healthy() {
                    wrong.push(format!(
                        "{server} should replicate from {source}: {replica:?}"
                    ));
                }
            }
        }
    }
    let plan = flipover(&["plan", "-f", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    if !(plan.status.success() && text.contains("No changes")) {
        wrong.push(format!("the plan is not empty:\n{text}"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n"))
    }
}

/// How many of the writer's first `acked` ids (1..=acked) every one of
/// `servers` holds, after waiting (≤ 30 s) for replication to bring them.
pub async fn writes_found(sandbox: &TestSandbox, servers: &[&str], acked: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut least = u64::MAX;
        for server in servers {
            let mut conn = sandbox.connect(server).await;
            let count: u64 = conn
                .first_row(&format!(
                    "SELECT COUNT(*) AS n FROM shop.writes WHERE id <= {acked}"
                ))
                .await
                .unwrap()
                .and_then(|row| row.get("n").cloned().flatten())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            conn.close().await;
            least = least.min(count);
        }
        if least == acked || Instant::now() > deadline {
            return least;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `CHECKSUM TABLE` of the shop tables agrees on all `servers`
/// within 30 s (call it once writes have stopped).
pub async fn checksums_agree(sandbox: &TestSandbox, servers: &[&str]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut sums = Vec::new();
        for server in servers {
            sums.push(sandbox.checksums(server, SHOP).await);
        }
        if sums.windows(2).all(|pair| pair[0] == pair[1]) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The host agent's command line, read from /proc while it runs.
pub fn agent_command_line(sandbox: &TestSandbox, name: &str) -> Vec<String> {
    let pid = super::read_pid(&sandbox.host(name).agent_pid_file());
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the agent runs");
    raw.split(|b| *b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// SIGKILLs the host's agent (mysqld, in its own session, keeps running).
pub fn kill_agent(sandbox: &TestSandbox, name: &str) {
    let pid = super::read_pid(&sandbox.host(name).agent_pid_file());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Reaped by whoever started it; wait until it is gone.
    let path = format!("/proc/{pid}/stat");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&path).is_ok_and(|s| !s.contains(") Z")) {
        assert!(Instant::now() < deadline, "agent {pid} survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the host's agent again with `command_line` (as the sandbox did:
/// own process group, output appended to its log) and waits until it
/// answers with mysqld running.
pub async fn restart_agent(sandbox: &TestSandbox, name: &str, command_line: &[String]) {
    use std::os::unix::process::CommandExt;
    let host = sandbox.host(name);
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(host.agent_log())
        .unwrap();
    let mut child = Command::new(&command_line[0])
        .args(&command_line[1..])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    std::fs::write(host.agent_pid_file(), format!("{}\n", child.id())).unwrap();
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    let agent = host
        .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(2))
        .expect("agent client");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(facts) = agent.facts().await {
            if facts.mysqld_running && facts.busy_job_id.is_none() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name}'s agent did not come back with mysqld"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // mysqld runs; wait until it takes connections.
    while flipover::db::connect(&sandbox.admin(name), Duration::from_secs(2))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "{name}'s mysqld takes no connections"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Previous datadirs an interrupted clone left beside `name`'s datadir.
pub fn previous_datadirs(sandbox: &TestSandbox, name: &str) -> Vec<String> {
    let datadir = sandbox.host(name).datadir();
    let prefix = format!(
        "{}.flipover-",
        datadir.file_name().unwrap().to_string_lossy()
    );
    std::fs::read_dir(datadir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// `flipover apply` started with `FLIPOVER_PAUSE_AT=<checkpoint>`, paused
/// there until [`PausedApply::resume`].
pub struct PausedApply {
    child: std::process::Child,
    dir: std::path::PathBuf,
    checkpoint: String,
}

impl PausedApply {
    /// Starts the apply and waits (≤ 60 s) until it is paused at `checkpoint`.
    pub fn start(sandbox: &TestSandbox, path: &Path, checkpoint: &str) -> PausedApply {
        let dir = sandbox.dir.join("pause");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(flipover_bin())
            .args(["apply", "-f", path.to_str().unwrap(), "--auto-approve"])
            .env("NO_COLOR", "1")
            .env("FLIPOVER_PAUSE_AT", checkpoint)
            .env("FLIPOVER_PAUSE_DIR", &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("flipover runs");
        let paused = dir.join(format!("{checkpoint}.paused"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !paused.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                let output = child.wait_with_output().unwrap();
                panic!(
                    "apply ended ({status}) before {checkpoint}:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            assert!(
                Instant::now() < deadline,
                "apply never reached {checkpoint}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        PausedApply {
            child,
            dir,
            checkpoint: checkpoint.to_string(),
        }
    }

    /// Lets it go on and waits for its end: (exit code, stderr).
    pub fn resume(self) -> (Option<i32>, String) {
        std::fs::write(self.dir.join(format!("{}.resume", self.checkpoint)), b"").unwrap();
        let output = self.child.wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// A host's link "down": an iptables rule dropping every TCP packet to its
/// loopback address (INPUT, so replies to it are lost too). Removed on drop.
pub struct LinkDown {
    address: String,
    tag: String,
}

impl LinkDown {
    pub fn new(address: &str) -> LinkDown {
        let link = LinkDown {
            address: address.to_string(),
            tag: format!("flipover-faults-{}", std::process::id()),
        };
        assert!(link.rule("-I"), "iptables refused the rule (root needed)");
        link
    }

    fn rule(&self, action: &str) -> bool {
        Command::new("iptables")
            .args(["-w", action, "INPUT", "-d", &self.address, "-p", "tcp"])
            .args(["-m", "comment", "--comment", &self.tag, "-j", "DROP"])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for LinkDown {
    fn drop(&mut self) {
        while self.rule("-D") {}
    }
}

/// Ends one "fault injected, then apply again" case: records `row` with the
/// outcome `check` gives (converged when Ok, failed otherwise; the outcome
/// `row` carries is replaced), then fails the test if the case did not
/// converge or an acknowledged write is missing.
pub fn conclude_case(mut row: super::reliability::Row, check: Result<(), String>) {
    use super::reliability::{self, Outcome};
    row.outcome = if check.is_ok() {
        Outcome::Converged
    } else {
        Outcome::Failed
    };
    reliability::record(&row);
    let name = &row.checkpoint;
    if let Err(e) = check {
        panic!("killed at {name}: not converged:\n{e}");
    }
    assert_eq!(
        row.writes_found, row.writes_acknowledged,
        "killed at {name}: acknowledged writes missing"
    );
}
