//! One sandbox per server kind (MariaDB 10.11 from the host, MariaDB 11.8
//! and MySQL 9.7 from their Debian roots): `sandbox up` of three servers,
//! `flipover status` sees all three with the right flavor and version, db1
//! holds the shop data and replicates to a replica set up by hand, and
//! `sandbox down` stops everything and undoes its mounts.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{flipover, observe, ServerKind, TestSandbox};
use flipover::observe::Flavor;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

async fn sandbox_smoke(kind: ServerKind) {
    let mut sandbox = TestSandbox::up_flavor(kind, 3);
    eprintln!(
        "{}: sandbox up of 3 servers in {:.1} s",
        kind.name(),
        sandbox.up_time.as_secs_f64()
    );
    let prefix = kind.version_prefix();

    // sandbox.json records what runs.
    let state = &sandbox.state;
    assert_eq!(state.flavor, kind.flavor());
    assert!(state.version.starts_with(prefix), "{}", state.version);
    assert_eq!(
        state.root,
        kind.root().map(|r| r.canonicalize().unwrap()),
        "the root it runs from"
    );

    // flipover status: every server reachable, of the right flavor and version.
    let observed = observe(&sandbox.topology());
    assert_eq!(observed.servers.len(), 3);
    for (i, name) in ["db1", "db2", "db3"].into_iter().enumerate() {
        let server = &observed.servers[name];
        assert!(server.mysql.reachable, "{name}: {:?}", server.mysql.error);
        let facts = server.facts().expect("facts");
        assert_eq!(facts.flavor, kind.flavor(), "{name}");
        assert!(
            facts.version.starts_with(prefix),
            "{name}: {}",
            facts.version
        );
        assert_eq!(facts.server_id, i as u32 + 1);
        assert!(
            facts.log_bin && facts.log_slave_updates,
            "{name}: {facts:?}"
        );
        assert_eq!(facts.binlog_format, "ROW");
        assert!(!facts.read_only);
        // Semi-sync is there to be switched on (MySQL: plugins loaded), and off.
        let semi_sync = facts.semi_sync.as_ref().expect("semi-sync variables");
        assert!(!semi_sync.master_enabled && !semi_sync.slave_enabled);
        let agent = server.agent.facts.as_ref().expect("agent answers");
        assert!(
            agent.mysqld_running && agent.supervised,
            "{name}: {agent:?}"
        );
        let agent_version = agent.server_version.as_deref().unwrap_or_default();
        assert!(agent_version.starts_with(prefix), "{name}: {agent_version}");
        let expected_datadir = sandbox.host(name).datadir();
        assert_eq!(
            agent.datadir.as_deref(),
            Some(expected_datadir.to_str().unwrap()),
            "the agent sees the sandbox's paths, also inside a root"
        );
        if kind.flavor() == Flavor::Mysql {
            assert_eq!(facts.gtid.mode.as_deref(), Some("ON"), "{name}");
            assert_eq!(facts.super_read_only, Some(false));
        }
    }
    let db1 = observed.servers["db1"].facts().unwrap();
    assert_eq!(db1.user_schemas, vec!["shop".to_string()]);
    let db1_gtid = db1.gtid_summary().unwrap_or_default().to_string();
    match kind.flavor() {
        Flavor::Mariadb => assert!(db1_gtid.starts_with("0-1-"), "{db1_gtid}"),
        Flavor::Mysql => {
            let uuid = db1.server_uuid.as_deref().expect("server_uuid");
            assert!(db1_gtid.starts_with(&format!("{uuid}:1-")), "{db1_gtid}");
        }
    }
    for empty in ["db2", "db3"] {
        let facts = observed.servers[empty].facts().unwrap();
        assert!(facts.user_schemas.is_empty(), "{empty} starts empty");
        assert_eq!(
            facts.gtid_summary().unwrap_or_default(),
            "",
            "{empty} has no GTIDs of its own"
        );
    }

    let output = flipover(&["status", "-f", &sandbox.topology_arg()]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("cluster sb: 3 servers, 3 reachable"),
        "{text}"
    );
    let shown = match kind.flavor() {
        Flavor::Mariadb => format!("MariaDB {prefix}"),
        Flavor::Mysql => format!("MySQL {prefix}"),
    };
    for name in ["db1", "db2", "db3"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.contains(&shown)),
            "{name} is shown as {shown}:\n{text}"
        );
    }

    // db1 holds the shop data.
    let mut conn = sandbox.connect("db1").await;
    let row = conn
        .first_row(
            "SELECT (SELECT COUNT(*) FROM shop.customers) AS customers, \
             (SELECT COUNT(*) FROM shop.orders) AS orders, \
             (SELECT SUM(amount_cents) FROM shop.orders) AS total",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row["customers"].as_deref(), Some("100"));
    assert_eq!(row["orders"].as_deref(), Some("500"));
    let total: u64 = (1..=500u64).map(|i| (i * 137) % 10_000 + 100).sum();
    assert_eq!(row["total"].as_deref(), Some(total.to_string().as_str()));
    if kind.flavor() == Flavor::Mysql {
        // The clone plugin is loaded, ready for clones.
        let row = conn
            .first_row(
                "SELECT PLUGIN_STATUS AS status FROM information_schema.PLUGINS \
                 WHERE PLUGIN_NAME = 'clone'",
            )
            .await
            .unwrap();
        assert_eq!(
            row.and_then(|r| r["status"].clone()).as_deref(),
            Some("ACTIVE")
        );
    }
    conn.close().await;

    // A replica set up by hand copies it, and status reads its replication.
    sandbox.replicate("db2", "db1").await;
    sandbox
        .wait_for_value(
            "db2",
            "SELECT COUNT(*) FROM shop.orders",
            "500",
            Duration::from_secs(30),
        )
        .await;
    let observed = observe(&sandbox.topology());
    let db2 = observed.servers["db2"].facts().unwrap();
    let replica = db2.replica.as_ref().expect("db2 replicates");
    assert_eq!(replica.source_host, sandbox.host("db1").address);
    assert!(replica.healthy(), "{replica:?}");
    assert!(replica.using_gtid, "{replica:?}");
    assert_eq!(db2.gtid_summary().unwrap_or_default(), db1_gtid);

    // An agent killed and started again, as a service manager would, runs
    // where the first did (in the root): it finds its mysqld and the
    // server's version again.
    let killed = common::read_pid(&sandbox.host("db3").agent_pid_file());
    kill(Pid::from_raw(killed as i32), Signal::SIGKILL).unwrap();
    while std::fs::read_to_string(format!("/proc/{killed}/stat")).is_ok_and(|s| !s.contains(") Z"))
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restarted = sandbox.start_agent_again("db3");
    assert_ne!(restarted, killed);
    let agent = sandbox
        .host("db3")
        .agent_client(&sandbox.secret("agent.token"), Duration::from_secs(2))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let facts = loop {
        if let Ok(facts) = agent.facts().await {
            break facts;
        }
        assert!(Instant::now() < deadline, "db3's agent did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(facts.mysqld_running, "{facts:?}");
    let version = facts.server_version.unwrap_or_default();
    assert!(version.starts_with(prefix), "{version}");

    // down stops every process it started and leaves no mount point behind.
    let pids: Vec<u32> = sandbox
        .state
        .hosts
        .iter()
        .flat_map(|h| [h.agent_pid_file(), h.mysqld_pid_file()])
        .map(|file| common::read_pid(&file))
        .collect();
    let mount_points = sandbox.state.root_mount_points.clone();
    assert_eq!(mount_points.is_empty(), kind.root().is_none());
    sandbox.down();
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "pid {pid} still runs after sandbox down"
        );
    }
    for dir in mount_points {
        assert!(!dir.exists(), "{} is left in the root", dir.display());
    }
    // Data and logs stay.
    assert!(sandbox.host("db1").datadir().join("shop").is_dir());
}

crate::per_server!(sandbox_smoke);
