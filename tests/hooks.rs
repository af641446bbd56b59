//! `[hooks]` on a real sandbox: a failing post hook fails the apply loudly
//! and is planned again until it succeeds; a failing (or hanging) pre hook
//! changes nothing; and the HAProxy example hook repoints a real HAProxy in
//! front of the primary through a switchover and a failover while an
//! application writes through it, losing nothing it acknowledged.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::writer::{assert_all_acked_present, prepare_app_user, Writer, APP_USER};
use common::{apply, flipover, observe, TestSandbox};
use flipover::db::Endpoint;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `text` with a `[hooks]` table appended (the sandbox topology ends with its servers).
fn with_hooks(path: &Path, hooks: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str("\n[hooks]\n");
    text.push_str(hooks);
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// A TOML string literal.
fn toml_str(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn plan_text(topology: &Path) -> (Option<i32>, String) {
    let output = flipover(&[
        "plan",
        "-f",
        topology.to_str().unwrap(),
        "--detailed-exitcode",
    ]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The structural state a failed step must leave as it was: per server,
/// read_only, source and GTID position.
fn state_of(topology: &Path) -> Vec<(String, bool, Option<String>, Option<String>)> {
    observe(topology)
        .servers
        .values()
        .map(|s| {
            let facts = s.facts().expect("every server answers");
            (
                s.name.clone(),
                facts.read_only,
                facts.replica.as_ref().map(|r| r.source_host.clone()),
                facts.gtid.current_pos.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_post_hook_fails_apply_and_is_planned_until_it_runs_and_pre_hooks_veto() {
    let sandbox = TestSandbox::up(2);
    let marker = sandbox.dir.join("proxy-ready");
    let record = sandbox.dir.join("hook-record");
    // Records its environment and stdin, then fails until `marker` exists.
    let script = format!(
        "env | grep ^FLIPOVER_ | sort > {record}.env; cat > {record}.json; \
         test -f {marker} || {{ echo 'repoint: the proxy is not ready' >&2; exit 3; }}",
        record = record.display(),
        marker = marker.display()
    );
    let topology = with_hooks(
        &sandbox.topology(),
        &format!(
            "post_clone = [[\"/bin/sh\", \"-c\", {}]]\n",
            toml_str(&script)
        ),
    );

    // The plan lists the hook under the clone.
    let (code, text) = plan_text(&topology);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("post_clone hook: /bin/sh -c"), "{text}");

    // The clone works, its hook does not: apply fails, saying why.
    let (ok, out) = apply(&topology, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("repoint: the proxy is not ready"), "{out}");
    assert!(out.contains("post_clone hook"), "{out}");
    assert!(out.contains("exited with status 3"), "{out}");
    // Steps after the clone still ran: db2 replicates.
    let state = observe(&topology);
    let replica = state.servers["db2"]
        .facts()
        .unwrap()
        .replica
        .clone()
        .unwrap();
    assert!(replica.healthy(), "{replica:?}");
    let env = std::fs::read_to_string(format!("{}.env", record.display())).unwrap();
    for expected in [
        "FLIPOVER_HOOK=post_clone",
        "FLIPOVER_STEP=clone",
        "FLIPOVER_TARGET=db2",
        "FLIPOVER_DONOR=db1",
        "FLIPOVER_RERUN=0",
        &format!("FLIPOVER_TARGET_ADDR={}:3306", sandbox.host("db2").address),
        &format!("FLIPOVER_DONOR_HOST={}", sandbox.host("db1").address),
    ] {
        assert!(env.lines().any(|l| l == expected), "{expected} in\n{env}");
    }
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.json", record.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(event["hook"], "post_clone");
    assert_eq!(event["target"]["name"], "db2");
    assert_eq!(event["donor"]["name"], "db1");
    assert_eq!(event["rerun"], false);

    // The next plan runs it again; so does the one after, while it fails.
    let (code, text) = plan_text(&topology);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(
            "run the post_clone hook again (it did not succeed after clone db2 from db1)"
        ),
        "{text}"
    );
    assert!(text.contains("1 run-hook"), "{text}");
    let (ok, out) = apply(&topology, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("repoint: the proxy is not ready"), "{out}");
    let (code, text) = plan_text(&topology);
    assert_eq!(
        code,
        Some(2),
        "still pending after a second failure: {text}"
    );

    // Fixed: it runs, with the original event, and the plan is clean.
    std::fs::write(&marker, "").unwrap();
    let (ok, out) = apply(&topology, &[]);
    assert!(ok, "{out}");
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.json", record.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(event["rerun"], true);
    assert_eq!(event["target"]["name"], "db2");
    let (code, text) = plan_text(&topology);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("No changes"), "{text}");

    // A switchover whose pre hook fails changes nothing.
    let switch = sandbox.write_topology("switch", "db2", &[]);
    with_hooks(
        &switch,
        "pre_switchover = [[\"/bin/sh\", \"-c\", \"echo 'drain: 3 sessions still open' >&2; exit 1\"]]\n",
    );
    let before = state_of(&switch);
    let (ok, out) = apply(&switch, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("drain: 3 sessions still open"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(state_of(&switch), before);

    // So does one whose pre hook hangs: killed at its timeout, with what it started.
    let switch = sandbox.write_topology("switch-hangs", "db2", &[]);
    with_hooks(
        &switch,
        "pre_switchover = [{ command = [\"/bin/sh\", \"-c\", \"sleep 60 & sleep 60\"], timeout = 1 }]\n",
    );
    let begun = Instant::now();
    let (ok, out) = apply(&switch, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("timed out after 1 s and was killed"), "{out}");
    assert!(
        begun.elapsed() < Duration::from_secs(30),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!(state_of(&switch), before);
}

/// A real HAProxy in TCP mode on the sandbox's address block, its runtime
/// API on a unix socket; killed when dropped.
struct Haproxy {
    child: Child,
    socket: PathBuf,
    endpoint: (String, u16),
}

impl Haproxy {
    fn start(sandbox: &TestSandbox, primary: &str) -> Haproxy {
        let primary = sandbox.host(primary);
        let base = primary
            .address
            .rsplit_once('.')
            .map(|(net, _)| net.to_string())
            .unwrap();
        let frontend = format!("{base}.250");
        let socket = sandbox.dir.join("haproxy.sock");
        let config = sandbox.dir.join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n  stats socket {socket} level admin\n\
                 defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 2m\n  timeout server 2m\n\
                 frontend mysql\n  bind {frontend}:3306\n  default_backend be_mysql\n\
                 backend be_mysql\n  server primary {address}:{port}\n",
                socket = socket.display(),
                address = primary.address,
                port = primary.mysql_port
            ),
        )
        .unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(sandbox.dir.join("haproxy.log")).unwrap())
            .spawn()
            .expect("haproxy is installed (scripts/install-deps)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Haproxy {
            child,
            socket,
            endpoint: (frontend, 3306),
        }
    }

    /// The `app` account, through HAProxy.
    fn app_endpoint(&self, sandbox: &TestSandbox) -> Endpoint {
        Endpoint {
            host: self.endpoint.0.clone(),
            port: self.endpoint.1,
            user: APP_USER.into(),
            password: sandbox.secret("app.password"),
            socket: None,
        }
    }

    /// The hook lines for `event`: the example, on this HAProxy.
    fn hook(&self, event: &str) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks/haproxy-repoint");
        format!(
            "{event} = [[{}, \"--socket\", {}, \"--server\", \"be_mysql/primary\"]]\n",
            toml_str(script.to_str().unwrap()),
            toml_str(self.socket.to_str().unwrap())
        )
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `@@server_id` of the server HAProxy sends a new connection to.
async fn server_behind(endpoint: &Endpoint) -> String {
    let mut conn = flipover::db::connect(endpoint, Duration::from_secs(2))
        .await
        .unwrap();
    let row = conn
        .first_row("SELECT @@server_id AS id")
        .await
        .unwrap()
        .unwrap();
    conn.close().await;
    row["id"].clone().unwrap()
}

async fn server_id(sandbox: &TestSandbox, name: &str) -> String {
    let mut conn = sandbox.connect(name).await;
    let row = conn
        .first_row("SELECT @@server_id AS id")
        .await
        .unwrap()
        .unwrap();
    conn.close().await;
    row["id"].clone().unwrap()
}

/// Semi-synchronous replication from `primary`: an acknowledged commit has
/// reached a replica, so a failover (which keeps what replicas received)
/// cannot lose it. Only the primary waits for acknowledgements (a replica
/// that did would hold back its own applier); replicas reconnect to take
/// the setting up.
async fn semi_sync_from(sandbox: &TestSandbox, primary: &str) {
    for host in &sandbox.state.hosts {
        let mut conn = sandbox.connect(&host.name).await;
        let on_primary = if host.name == primary { "ON" } else { "OFF" };
        for statement in [
            format!("SET GLOBAL rpl_semi_sync_master_enabled = {on_primary}"),
            "SET GLOBAL rpl_semi_sync_master_timeout = 5000".to_string(),
            "SET GLOBAL rpl_semi_sync_slave_enabled = ON".to_string(),
        ] {
            conn.execute(&statement).await.unwrap();
        }
        if !conn.rows("SHOW SLAVE STATUS").await.unwrap().is_empty() {
            conn.execute("STOP SLAVE IO_THREAD").await.unwrap();
            conn.execute("START SLAVE IO_THREAD").await.unwrap();
        }
        conn.close().await;
    }
}

/// Waits until the writer has `more` acknowledgements beyond what it had.
async fn wait_for_writes(writer: &Writer, more: usize, what: &str) {
    let target = writer.acked_so_far() + more;
    let deadline = Instant::now() + Duration::from_secs(20);
    while writer.acked_so_far() < target {
        assert!(
            Instant::now() < deadline,
            "no writes through HAProxy {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn haproxy_follows_a_switchover_and_a_failover_through_the_example_hook() {
    let sandbox = TestSandbox::up(3);
    let (ok, out) = apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");
    prepare_app_user(&sandbox, "db1").await;
    semi_sync_from(&sandbox, "db1").await;
    let haproxy = Haproxy::start(&sandbox, "db1");
    let through_haproxy = haproxy.app_endpoint(&sandbox);
    assert_eq!(
        server_behind(&through_haproxy).await,
        server_id(&sandbox, "db1").await
    );

    let writer = Writer::start(vec![("haproxy".to_string(), through_haproxy.clone())]);
    wait_for_writes(&writer, 50, "before the switchover").await;

    // A vetoed switchover: db3, moved under db2 for it, goes back under
    // db1, and HAProxy still sends the writer to db1.
    let vetoed = sandbox.write_topology("switch-vetoed", "db2", &[]);
    with_hooks(
        &vetoed,
        "pre_switchover = [[\"/bin/sh\", \"-c\", \"echo 'maintenance window closed' >&2; exit 1\"]]\n",
    );
    let shape = |path: &Path| -> Vec<(String, bool, Option<String>)> {
        state_of(path)
            .into_iter()
            .map(|(name, read_only, source, _)| (name, read_only, source))
            .collect()
    };
    let before = shape(&vetoed);
    let (ok, out) = apply(&vetoed, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("maintenance window closed"), "{out}");
    assert!(out.contains("db3 is back under db1"), "{out}");
    assert_eq!(shape(&vetoed), before);
    wait_for_writes(&writer, 20, "after the vetoed switchover").await;

    // Switchover to db2: the post_switchover hook repoints HAProxy.
    let switch = sandbox.write_topology("switch", "db2", &[]);
    with_hooks(&switch, &haproxy.hook("post_switchover"));
    let (code, text) = plan_text(&switch);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("post_switchover hook: "), "{text}");
    let switch_began = Instant::now();
    let (ok, out) = apply(&switch, &[]);
    let switch_ended = Instant::now();
    assert!(ok, "{out}");
    assert!(
        out.contains("haproxy-repoint: be_mysql/primary -> db2"),
        "{out}"
    );
    assert_eq!(
        server_behind(&through_haproxy).await,
        server_id(&sandbox, "db2").await
    );
    semi_sync_from(&sandbox, "db2").await;
    wait_for_writes(&writer, 50, "after the switchover").await;

    // db2 dies; apply --failover with the post_failover hook.
    let failover = sandbox.write_topology("failover", "db2", &[]);
    with_hooks(&failover, &haproxy.hook("post_failover"));
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db2") as i32),
        Signal::SIGKILL,
    )
    .unwrap();

    // A failing pre_failover hook (a fence that did not work) vetoes it:
    // the survivors still replicate from db2, read-only.
    let vetoed = sandbox.write_topology("failover-vetoed", "db2", &[]);
    with_hooks(
        &vetoed,
        "pre_failover = [[\"/bin/sh\", \"-c\", \"echo 'fence: cannot power off db2' >&2; exit 1\"]]\n",
    );
    let (ok, out) = apply(&vetoed, &["--failover"]);
    assert!(!ok, "{out}");
    assert!(out.contains("fence: cannot power off db2"), "{out}");
    let state = observe(&vetoed);
    for survivor in ["db1", "db3"] {
        let facts = state.servers[survivor].facts().unwrap();
        assert!(facts.read_only, "{survivor} stays read-only");
        assert_eq!(
            facts.replica.as_ref().map(|r| r.source_host.as_str()),
            Some(sandbox.host("db2").address.as_str()),
            "{survivor} still replicates from db2"
        );
    }

    let failover_began = Instant::now();
    let (ok, out) = apply(&failover, &["--failover"]);
    let failover_ended = Instant::now();
    assert!(ok, "{out}");
    let new_primary = ["db1", "db3"]
        .into_iter()
        .find(|name| out.contains(&format!("haproxy-repoint: be_mysql/primary -> {name}")))
        .unwrap_or_else(|| panic!("the post_failover hook repointed HAProxy: {out}"));
    assert_eq!(
        server_behind(&through_haproxy).await,
        server_id(&sandbox, new_primary).await
    );
    wait_for_writes(&writer, 50, "after the failover").await;

    let report = writer.stop().await;
    let survivors: Vec<&str> = ["db1", "db3"].into();
    assert_all_acked_present(&sandbox, &survivors, &report).await;
    let (switch_gap, _) = report.longest_gap_between(switch_began, switch_ended);
    let resumed = report
        .acks
        .iter()
        .find(|ack| ack.at > failover_began)
        .map(|ack| ack.at - failover_began);
    assert!(resumed.is_some_and(|r| r < failover_ended - failover_began + Duration::from_secs(5)));
    eprintln!(
        "{} writes acknowledged through HAProxy; longest gap in the switchover apply {:?}; \
         first write after `apply --failover` started: {:?} later (the apply took {:?}); \
         {} failed attempts",
        report.acked.len(),
        switch_gap,
        resumed.unwrap_or_default(),
        failover_ended - failover_began,
        report.errors
    );
    drop(haproxy);
}
