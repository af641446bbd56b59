//! `flipover-cmd`, the seed's command line, on real sandboxes: each mode run
//! as the seed's README shows it (without a terminal, so it applies after
//! printing the plan), then the replication state checked through
//! `flipover status --json`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{apply, flipover, flipover_bin, observe, TestSandbox};
use flipover::observe::Observed;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn flipover_cmd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flipover-cmd"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("FLIPOVER_AGENT_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("flipover-cmd runs")
}

/// `flipover-cmd -m MODE ARGS… -U flipover -S … -r repl -c … --agent-token-file …
/// --agent-ca … --agent-cert … --agent-key …` (the sandbox's agents speak mutual TLS):
/// exit status and stdout followed by stderr.
fn run(sandbox: &TestSandbox, mode: &str, args: &[&str]) -> (Option<i32>, String) {
    let admin = sandbox.secret("admin.password");
    let repl = sandbox.secret("repl.password");
    let token = sandbox.dir.join("secrets/agent.token");
    let tls = |file: &str| sandbox.dir.join("tls").join(file).display().to_string();
    let (ca, cert, key) = (tls("ca.pem"), tls("flipover.pem"), tls("flipover-key.pem"));
    let mut all = vec!["-m", mode];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "-U",
        "flipover",
        "-S",
        &admin,
        "-r",
        "repl",
        "-c",
        &repl,
        "--agent-token-file",
        token.to_str().unwrap(),
        "--agent-ca",
        &ca,
        "--agent-cert",
        &cert,
        "--agent-key",
        &key,
    ]);
    let output = flipover_cmd(&all);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

fn address(sandbox: &TestSandbox, name: &str) -> String {
    sandbox.host(name).address.clone()
}

/// A sandbox of 3 with db2 and db3 cloned from db1 and replicating from it.
fn replicating_sandbox() -> TestSandbox {
    let sandbox = TestSandbox::up(3);
    let (ok, out) = apply(&sandbox.topology(), &[]);
    assert!(ok, "initial clones: {out}");
    sandbox
}

/// `primary` writable; every other server read-only, replicating from
/// `primary` with both threads running.
fn assert_tree(sandbox: &TestSandbox, state: &Observed, primary: &str, replicas: &[&str]) {
    let facts = state.servers[primary].facts().expect("primary answers");
    assert!(!facts.read_only, "{primary} is writable");
    assert!(facts.replica.is_none(), "{primary} replicates from nobody");
    for replica in replicas {
        let facts = state.servers[*replica]
            .facts()
            .unwrap_or_else(|| panic!("{replica} answers"));
        assert!(facts.read_only, "{replica} is read-only");
        let status = facts.replica.as_ref().expect("replicates");
        assert_eq!(status.source_host, address(sandbox, primary), "{replica}");
        assert!(status.healthy(), "{replica}: {status:?}");
    }
}

async fn count(sandbox: &TestSandbox, server: &str, query: &str) -> String {
    let mut conn = sandbox.connect(server).await;
    let row = conn.first_row(query).await.unwrap().unwrap();
    conn.close().await;
    row.into_values().next().flatten().unwrap()
}

#[test]
fn help_is_the_seeds_command_line() {
    let output = flipover_cmd(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "-N, --node <HOST>",
        "-P, --port <PORT>",
        "-U, --user <USER>",
        "-S, --secret <PASSWD>",
        "-n, --slavenode <SLAVEHOST>",
        "-p, --slaveport <SLAVEPORT>",
        "-u, --slaveuser <SLAVEUSER>",
        "-s, --slavesecret <SLAVEPASSWD>",
        "-r, --repluser <REPL_USER>",
        "-c, --replpass <REPL_PASS>",
        "-m, --mode <MODE>",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    common::expected::insta_follows();
    insta::assert_snapshot!("help", help);
}

#[test]
fn a_slave_account_other_than_the_admin_account_is_refused() {
    let output = flipover_cmd(&["-U", "flipover", "-S", "pw", "-u", "root"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("-u/--slaveuser `root` differs from -U/--user `flipover`"),
        "{stderr}"
    );
}

#[test]
fn agent_keeps_the_seeds_flags() {
    let agent: PathBuf = flipover_bin().with_file_name("flipover-agent");
    let output = Command::new(&agent)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", agent.display()));
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("-c, --conf <FILE>"), "{help}");
    assert!(help.contains("option file"), "{help}");
    assert!(help.contains("-s, --service <NAME>"), "{help}");
    assert!(help.contains("Service controlling mysqld"), "{help}");
}

#[test]
fn show_status_names_binlog_positions_and_gtids() {
    let sandbox = replicating_sandbox();
    let (db1, db2) = (address(&sandbox, "db1"), address(&sandbox, "db2"));
    let (code, out) = run(&sandbox, "show-status", &["-N", &db1, "-n", &db2]);
    assert_eq!(code, Some(0), "{out}");
    let state = observe(&sandbox.topology());
    assert!(out.contains("3 servers, 3 reachable"), "{out}");
    for server in ["db1", "db2", "db3"] {
        let facts = state.servers[server].facts().unwrap();
        let binlog = facts.binlog.as_ref().unwrap();
        assert!(
            out.contains(&format!(
                "{} {}:3306",
                address(&sandbox, server),
                address(&sandbox, server)
            )),
            "{server}: {out}"
        );
        let gtid = facts.gtid.current_pos.as_deref().unwrap();
        assert!(!gtid.is_empty());
        assert!(
            out.contains(&format!(
                "binlog {}:{}  gtid {gtid}",
                binlog.file, binlog.position
            )),
            "{server}: {out}"
        );
    }
    assert!(
        out.contains(&format!("replication from {db1}:3306: io Yes  sql Yes")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clone_slave_reclones_the_target_from_the_source_under_the_master() {
    let sandbox = replicating_sandbox();
    // A row only db3 has: gone once db3 is a fresh copy of db2.
    let mut conn = sandbox.connect("db3").await;
    conn.execute("SET SESSION sql_log_bin = 0").await.unwrap();
    conn.execute("INSERT INTO shop.customers VALUES (9001, 'stray', 'stray@example.com')")
        .await
        .unwrap();
    conn.close().await;
    let (db2, db3) = (address(&sandbox, "db2"), address(&sandbox, "db3"));

    let (code, out) = run(&sandbox, "clone-slave", &["-N", &db2, "-n", &db3]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("clone {db3} from {db2}  [DESTRUCTIVE]")),
        "{out}"
    );
    assert!(
        out.contains(&format!("overwrites {db3}'s data: schemas shop")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "start replication on {db3} from {}",
            address(&sandbox, "db1")
        )),
        "{out}"
    );
    assert!(out.contains("Apply complete"), "{out}");

    assert_tree(
        &sandbox,
        &observe(&sandbox.topology()),
        "db1",
        &["db2", "db3"],
    );
    assert_eq!(
        count(
            &sandbox,
            "db3",
            "SELECT COUNT(*) FROM shop.customers WHERE id = 9001"
        )
        .await,
        "0"
    );
    // Replication from db1 carries on: a new row reaches db3.
    let mut conn = sandbox.connect("db1").await;
    conn.execute("INSERT INTO shop.customers VALUES (9002, 'after', 'after@example.com')")
        .await
        .unwrap();
    conn.close().await;
    sandbox
        .wait_for_value(
            "db3",
            "SELECT COUNT(*) FROM shop.customers WHERE id = 9002",
            "1",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        sandbox
            .checksums("db3", "shop.customers, shop.orders")
            .await,
        sandbox
            .checksums("db1", "shop.customers, shop.orders")
            .await
    );
}

#[test]
fn promote_slave_switches_over_and_dry_run_changes_nothing() {
    let sandbox = replicating_sandbox();
    let (db1, db2) = (address(&sandbox, "db1"), address(&sandbox, "db2"));
    let args = ["-N", db1.as_str(), "-n", db2.as_str()];

    let before = observe(&sandbox.topology());
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let (code, out) = run(&sandbox, "promote-slave", &dry);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("switchover {db1} -> {db2}")), "{out}");
    assert!(!out.contains("Apply complete"), "{out}");
    let after_dry_run = observe(&sandbox.topology());
    assert_tree(&sandbox, &after_dry_run, "db1", &["db2", "db3"]);
    for server in ["db1", "db2", "db3"] {
        assert_eq!(
            after_dry_run.servers[server].facts().unwrap().binlog,
            before.servers[server].facts().unwrap().binlog,
            "{server}"
        );
    }

    let (code, out) = run(&sandbox, "promote-slave", &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Apply complete"), "{out}");
    let promoted = sandbox.write_topology("promoted", "db2", &[]);
    assert_tree(&sandbox, &observe(&promoted), "db2", &["db1", "db3"]);
    let plan = flipover(&["plan", "-f", promoted.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("No changes"),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

#[test]
fn replace_master_fails_over_to_the_slave() {
    let sandbox = replicating_sandbox();
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db1") as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (db1, db2, db3) = (
        address(&sandbox, "db1"),
        address(&sandbox, "db2"),
        address(&sandbox, "db3"),
    );

    let (code, out) = run(
        &sandbox,
        "replace-master",
        &["-N", &db1, "-n", &db2, "--replica", &db3],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("failover {db1} -> {db2}")), "{out}");
    assert!(out.contains("Apply complete"), "{out}");

    let state = observe(&sandbox.write_topology("replaced", "db2", &[]));
    assert!(!state.servers["db1"].mysql.reachable);
    assert_tree(&sandbox, &state, "db2", &["db3"]);
}

/// Issue 14, point 5: after promote-slave, the new master dies; the seed's
/// tool promised that `replace-master -N/-n` alone rechains all its slaves.
/// The dead master cannot list them, but every server flipover applied to
/// remembers the topology the apply left (its journal).
#[tokio::test(flavor = "multi_thread")]
async fn replace_master_after_promote_slave_rechains_every_slave_of_the_dead_master() {
    let sandbox = replicating_sandbox();
    let (db1, db2, db3) = (
        address(&sandbox, "db1"),
        address(&sandbox, "db2"),
        address(&sandbox, "db3"),
    );
    let (code, out) = run(&sandbox, "promote-slave", &["-N", &db1, "-n", &db2]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Apply complete"), "{out}");

    // Rows the new master acknowledged before it died.
    let mut conn = sandbox.connect("db2").await;
    for id in 9101..9111 {
        conn.execute(&format!(
            "INSERT INTO shop.customers VALUES ({id}, 'on db2', 'c{id}@example.com')"
        ))
        .await
        .unwrap();
    }
    conn.close().await;
    for replica in ["db1", "db3"] {
        sandbox
            .wait_for_value(
                replica,
                "SELECT COUNT(*) FROM shop.customers WHERE id BETWEEN 9101 AND 9110",
                "10",
                Duration::from_secs(20),
            )
            .await;
    }
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db2") as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let (code, out) = run(&sandbox, "replace-master", &["-N", &db2, "-n", &db3]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("failover {db2} -> {db3}")), "{out}");
    assert!(
        out.contains(&format!(
            "note: slaves of {db2} found: {db1}, {db3} (with the servers of the topology \
             flipover's apply of"
        )),
        "{out}"
    );
    assert!(out.contains("Apply complete"), "{out}");

    // Every slave of the dead master follows the new one.
    let state = observe(&sandbox.write_topology("replaced", "db3", &[]));
    assert!(!state.servers["db2"].mysql.reachable);
    assert_tree(&sandbox, &state, "db3", &["db1"]);
    assert_eq!(
        count(
            &sandbox,
            "db3",
            "SELECT COUNT(*) FROM shop.customers WHERE id BETWEEN 9101 AND 9110"
        )
        .await,
        "10"
    );
    let mut conn = sandbox.connect("db3").await;
    conn.execute("INSERT INTO shop.customers VALUES (9111, 'on db3', 'c9111@example.com')")
        .await
        .unwrap();
    conn.close().await;
    sandbox
        .wait_for_value(
            "db1",
            "SELECT COUNT(*) FROM shop.customers WHERE id = 9111",
            "1",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        sandbox
            .checksums("db1", "shop.customers, shop.orders")
            .await,
        sandbox
            .checksums("db3", "shop.customers, shop.orders")
            .await
    );
}

/// The replicas an apply built by cloning restarted mysqld under its
/// journal; they still remember the topology that apply left, so the slaves
/// of a master that dies right after are found without `--replica`.
#[test]
fn replace_master_finds_the_slaves_flipover_cloned() {
    let sandbox = replicating_sandbox();
    kill(
        Pid::from_raw(sandbox.mysqld_pid("db1") as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (db1, db2, db3) = (
        address(&sandbox, "db1"),
        address(&sandbox, "db2"),
        address(&sandbox, "db3"),
    );
    let (code, out) = run(&sandbox, "replace-master", &["-N", &db1, "-n", &db2]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "note: slaves of {db1} found: {db2}, {db3} (with the servers"
        )),
        "{out}"
    );
    assert!(out.contains("Apply complete"), "{out}");
    let state = observe(&sandbox.write_topology("replaced", "db2", &[]));
    assert_tree(&sandbox, &state, "db2", &["db3"]);
}
