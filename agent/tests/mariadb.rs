//! The agent supervising a real MariaDB server in a temp dir: autostart,
//! stop, start, idempotency, auth on actions, and one action at a time.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, write, Agent, TOKEN};
use flipover_agent::client::{AgentClient, AgentError};
use flipover_agent::protocol::Facts;

const AGENT_IP: Ipv4Addr = Ipv4Addr::new(127, 43, 0, 1);
const MYSQL_IP: Ipv4Addr = Ipv4Addr::new(127, 43, 0, 2);

/// Kills the agent and SIGTERMs mysqld on drop, so a failed assertion
/// never leaves a server running. Fields drop after `drop()` runs, so the
/// temp dir outlives the shutdown.
struct Sandbox {
    agent: Option<Agent>,
    pid_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        drop(self.agent.take());
        common::stop_mysqld_by_pid_file(&self.pid_file);
    }
}

/// An initialised datadir with a my.cnf, and the agent supervising it.
fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let datadir = d.join("data");
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let conf = d.join("my.cnf");
    write(
        &conf,
        &format!(
            "[client-server]\nsocket={d}/mysqld.sock\nport={port}\n\n\
             [mysqld]\ndatadir={data}\npid-file={d}/mysqld.pid\nbind-address={ip}\n\
             user=root\ntmpdir={d}/tmp\nlog-bin=mysql-bin\nserver-id=1\nlog-error={d}/mysqld.err\n\
             # keep the test light\ninnodb_buffer_pool_size=16M\ninnodb_log_file_size=8M\n\
             skip-name-resolve\n",
            d = d.display(),
            data = datadir.display(),
            port = free_port(MYSQL_IP),
            ip = MYSQL_IP,
        ),
    );
    let output = Command::new("mariadb-install-db")
        .arg(format!("--defaults-file={}", conf.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .output()
        .expect("run mariadb-install-db");
    assert!(
        output.status.success(),
        "mariadb-install-db failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let pid_file = d.join("mysqld.pid");
    let agent = Agent::start(
        AGENT_IP,
        &["-c", conf.to_str().unwrap(), "--supervise"],
        Some(TOKEN),
    );
    Sandbox {
        agent: Some(agent),
        pid_file,
        _dir: dir,
    }
}

/// Polls facts until `done` holds (the agent starts mysqld in the background).
async fn wait_for(client: &AgentClient, what: &str, done: impl Fn(&Facts) -> bool) -> Facts {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.facts().await {
            Ok(f) if done(&f) => return f,
            Ok(_) | Err(AgentError::Busy { .. }) => {}
            Err(e) => panic!("facts failed while waiting for {what}: {e}"),
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervises_a_real_mariadb() {
    let sandbox = sandbox();
    let agent = sandbox.agent.as_ref().unwrap();
    let client = agent.client(TOKEN);

    // The datadir is initialised, so the agent starts mysqld by itself.
    let facts = wait_for(&client, "autostart", |f| f.mysqld_running).await;
    assert!(facts.supervised);
    assert_eq!(facts.service, None);
    assert_eq!(facts.datadir_empty, Some(false));
    assert!(facts.datadir_bytes.is_some_and(|b| b > 1_000_000));
    assert_eq!(facts.settings.log_bin.as_deref(), Some("mysql-bin"));
    assert_eq!(facts.settings.server_id, Some(1));
    assert_eq!(facts.settings.bind_address.as_deref(), Some("127.43.0.2"));
    let first_pid = facts.mysqld_pid.expect("pid of running mysqld");
    let comm = std::fs::read_to_string(format!("/proc/{first_pid}/comm")).unwrap();
    assert!(matches!(comm.trim(), "mariadbd" | "mysqld"), "{comm}");

    // A wrong token changes nothing.
    let err = agent
        .client("not-the-token")
        .stop_mysqld()
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Unauthorized { .. }), "{err}");
    assert!(client.facts().await.unwrap().mysqld_running);
    assert!(process_exists(first_pid));

    // Stop, and stopping again is a no-op success. The pid file appears
    // before mysqld is ready, while the agent's own start still holds the
    // action lock: a stop asked then is refused as busy, so wait for it.
    let facts = stop_when_not_busy(&client).await;
    assert!(!facts.mysqld_running);
    assert_eq!(facts.mysqld_pid, None);
    wait_gone(first_pid).await;
    assert!(!client.stop_mysqld().await.unwrap().mysqld_running);

    // Start, and starting again returns the same server.
    let facts = client.start_mysqld().await.unwrap();
    assert!(facts.mysqld_running);
    let second_pid = facts.mysqld_pid.unwrap();
    assert_ne!(second_pid, first_pid);
    assert_eq!(
        client.start_mysqld().await.unwrap().mysqld_pid,
        Some(second_pid)
    );

    // Two actions at once: one runs, the other is told the agent is busy.
    let (a, b) = tokio::join!(client.stop_mysqld(), client.stop_mysqld());
    let busy = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(AgentError::Busy { .. })))
        .count();
    assert_eq!(busy, 1, "expected exactly one 409: {a:?} / {b:?}");
    assert!([a, b]
        .into_iter()
        .any(|r| r.is_ok_and(|f| !f.mysqld_running)));
    wait_gone(second_pid).await;
}

/// The agent reaps its child shortly after the stop returns.
async fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(pid) {
        assert!(Instant::now() < deadline, "mysqld pid {pid} still exists");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn failed_start_reports_the_error_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = d.join("my.cnf");
    std::fs::create_dir(d.join("data")).unwrap();
    // An uninitialised datadir (no autostart) and an option mariadbd rejects.
    write(
        &conf,
        &format!(
            "[mysqld]\ndatadir={d}/data\npid-file={d}/mysqld.pid\nsocket={d}/mysqld.sock\n\
             bind-address={MYSQL_IP}\nport={port}\nuser=root\nno-such-option-here=1\n",
            d = d.display(),
            port = free_port(MYSQL_IP),
        ),
    );
    let sandbox = Sandbox {
        agent: Some(Agent::start(
            AGENT_IP,
            &["-c", conf.to_str().unwrap(), "--supervise"],
            Some(TOKEN),
        )),
        pid_file: d.join("mysqld.pid"),
        _dir: dir,
    };
    let client = sandbox.agent.as_ref().unwrap().client(TOKEN);
    // Give a (wrong) autostart the chance to show up before checking.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let facts = client.facts().await.unwrap();
    assert!(!facts.mysqld_running);
    assert_eq!(facts.datadir_empty, Some(true));

    let err = client.start_mysqld().await.unwrap_err();
    let AgentError::Failed {
        status, message, ..
    } = &err
    else {
        panic!("expected Failed, got {err}");
    };
    assert_eq!(*status, 500);
    assert!(message.contains("exited during startup"), "{message}");
    // No log_error: mysqld's stderr lands in mysqld.out next to the my.cnf.
    assert!(message.contains("mysqld.out"), "{message}");
    assert!(message.contains("no-such-option-here"), "{message}");
}

/// Stops mysqld, retrying while another start or stop (the agent's own
/// autostart) is still in progress.
async fn stop_when_not_busy(client: &AgentClient) -> Facts {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.stop_mysqld().await {
            Err(AgentError::Busy { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => return other.unwrap(),
        }
    }
}
