//! Property tests of the planner on random topologies and observed states.
//!
//! Each case is a random desired topology (2–8 servers, a random tree, random
//! `promotable` and `clone_from`) and a random observed state: every server
//! either replicates in a random tree rooted at a random observed primary (not
//! necessarily the desired one, and sometimes dead), or is empty. From that:
//!
//! - `planner::plan` never panics, its graph is acyclic and `Plan::ordered`
//!   lists every step once, after its dependencies (also on "messy" states:
//!   unreachable servers, broken or foreign replication, errant GTIDs, …);
//! - planning is deterministic;
//! - applying a plan without problems to the observed state, in the pure
//!   simulation below, yields a state the planner has nothing left to do for
//!   (no steps, no problems). The simulation also checks each step is
//!   possible when it runs: a donor or new source holds data, a rechained
//!   replica still replicates from where the step says, a switchover
//!   candidate's chain of sources reaches the old primary, and no step
//!   leaves a replication cycle.
//!
//! A failing case is printed as a `topology.toml` and an `observed.json`,
//! ready to become a `tests/golden/` case.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use flipover::observe::{Observed, ReplicaStatus, ServerObservation};
use flipover::planner::{self, Plan, PlanOptions, Step};
use flipover::topology::{self, Topology};
use petgraph::graph::NodeIndex;
use petgraph::Direction;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;

const MAX_SERVERS: usize = 8;

// ---------------------------------------------------------------------------
// Random knobs (what proptest generates and shrinks) and the case built from them.

/// What can go wrong with a server in a "messy" observed state.
#[derive(Debug, Clone, Copy)]
enum Mess {
    MysqlDown,
    HostDown,
    AgentDown,
    ForeignSource,
    SqlError,
    IoError,
    BigLag,
    LagUnknown,
    Errant,
    MysqlFlavor,
    NoLogBin,
    NoLogSlaveUpdates,
    StoppedEmptyDatadir,
    StoppedWithFiles,
    NoBackupTool,
    TinyDisk,
    /// Replicates from any server, itself included (cycles).
    SourceAnywhere(u8),
    RestoredBackup,
    LongTransaction,
    BinlogsPurged,
    UnfinishedApply,
    Threads(bool, bool),
}

fn mess() -> impl Strategy<Value = Mess> {
    prop_oneof![
        Just(Mess::MysqlDown),
        Just(Mess::HostDown),
        Just(Mess::AgentDown),
        Just(Mess::ForeignSource),
        Just(Mess::SqlError),
        Just(Mess::IoError),
        Just(Mess::BigLag),
        Just(Mess::LagUnknown),
        Just(Mess::Errant),
        Just(Mess::MysqlFlavor),
        Just(Mess::NoLogBin),
        Just(Mess::NoLogSlaveUpdates),
        Just(Mess::StoppedEmptyDatadir),
        Just(Mess::StoppedWithFiles),
        Just(Mess::NoBackupTool),
        Just(Mess::TinyDisk),
        any::<u8>().prop_map(Mess::SourceAnywhere),
        Just(Mess::RestoredBackup),
        Just(Mess::LongTransaction),
        Just(Mess::BinlogsPurged),
        Just(Mess::UnfinishedApply),
        (any::<bool>(), any::<bool>()).prop_map(|(io, sql)| Mess::Threads(io, sql)),
    ]
}

#[derive(Debug, Clone)]
struct ServerKnobs {
    /// Position in the desired tree's construction order, and the pick of
    /// its source among the servers placed before it.
    desired_key: u8,
    desired_parent: u8,
    promotable: bool,
    /// `clone_from` = one of its desired ancestors.
    clone_from: Option<u8>,
    /// No data at all (to be cloned), instead of replicating.
    empty: bool,
    observed_key: u8,
    observed_parent: u8,
    /// Transactions behind its observed source.
    behind: u8,
    lag_seconds: u8,
    read_only: bool,
    /// Both replication threads stopped without error.
    stopped: bool,
    mess: Option<Mess>,
}

#[derive(Debug, Clone)]
struct Knobs {
    servers: usize,
    desired_primary: u8,
    /// `None`: the observed primary is the desired one.
    observed_primary: Option<u8>,
    /// The observed primary does not answer (a failover case).
    primary_dead: bool,
    /// The dead primary's agent answers (mysqld stopped over its datadir).
    dead_agent_answers: bool,
    base_seq: u32,
    per_server: Vec<ServerKnobs>,
    /// `--replace` these (index 8 = a name not in the topology).
    replace: Vec<u8>,
    /// `durability = "semi-sync"`, every server starting with it off.
    semi_sync: bool,
}

fn server_knobs(messy: bool) -> impl Strategy<Value = ServerKnobs> {
    let mess = if messy {
        prop::option::weighted(0.35, mess()).boxed()
    } else {
        Just(None).boxed()
    };
    (
        (any::<u8>(), any::<u8>(), prop::bool::weighted(0.85)),
        prop::option::weighted(0.15, any::<u8>()),
        prop::bool::weighted(0.25),
        (any::<u8>(), any::<u8>(), 0u8..=2, 0u8..=3, any::<bool>()),
        prop::bool::weighted(0.08),
        mess,
    )
        .prop_map(
            |(
                (desired_key, desired_parent, promotable),
                clone_from,
                empty,
                (observed_key, observed_parent, behind, lag_seconds, read_only),
                stopped,
                mess,
            )| ServerKnobs {
                desired_key,
                desired_parent,
                promotable,
                clone_from,
                empty,
                observed_key,
                observed_parent,
                behind,
                lag_seconds,
                read_only,
                stopped,
                mess,
            },
        )
}

fn knobs(messy: bool) -> impl Strategy<Value = Knobs> {
    let replace = if messy {
        prop::collection::vec(0u8..=MAX_SERVERS as u8, 0..=2).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (
        2usize..=MAX_SERVERS,
        any::<u8>(),
        prop::option::weighted(0.5, any::<u8>()),
        prop::bool::weighted(0.15),
        any::<bool>(),
        1u32..1000,
        prop::collection::vec(server_knobs(messy), MAX_SERVERS),
        replace,
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(
                servers,
                desired_primary,
                observed_primary,
                primary_dead,
                dead_agent_answers,
                base_seq,
                per_server,
                replace,
                semi_sync,
            )| Knobs {
                servers,
                desired_primary,
                observed_primary,
                primary_dead,
                dead_agent_answers,
                base_seq,
                per_server,
                replace,
                semi_sync,
            },
        )
}

/// One planner input, printed as the files of a golden case.
#[derive(Clone)]
struct Case {
    toml: String,
    topology: Topology,
    observed: Observed,
    options: PlanOptions,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n--- topology.toml\n{}", self.toml)?;
        if !self.options.replace.is_empty() {
            writeln!(f, "--- args: --replace {:?}", self.options.replace)?;
        }
        writeln!(
            f,
            "--- observed.json\n{}",
            serde_json::to_string_pretty(&self.observed).unwrap()
        )
    }
}

fn case(messy: bool) -> impl Strategy<Value = Case> {
    knobs(messy).prop_map(|k| build_case(&k))
}

fn name(i: usize) -> String {
    format!("db{}", i + 1)
}

fn host(i: usize) -> String {
    format!("10.0.0.{}", i + 1)
}

/// A random tree over `members` rooted at `root`: members in the order of
/// their keys, each replicating from one placed before it.
fn random_tree(
    root: usize,
    members: &[usize],
    key: impl Fn(usize) -> u8,
    pick: impl Fn(usize) -> u8,
) -> BTreeMap<usize, Option<usize>> {
    let mut order: Vec<usize> = members.iter().copied().filter(|m| *m != root).collect();
    order.sort_by_key(|m| (key(*m), *m));
    order.insert(0, root);
    let mut parent = BTreeMap::from([(root, None)]);
    for i in 1..order.len() {
        parent.insert(order[i], Some(order[pick(order[i]) as usize % i]));
    }
    parent
}

fn seq_gtid(server_id: usize, seq: u64) -> String {
    if seq == 0 {
        String::new()
    } else {
        format!("0-{server_id}-{seq}")
    }
}

fn agent_json(i: usize, empty: bool, datadir_bytes: u64) -> serde_json::Value {
    let n = name(i);
    json!({
        "protocol_version": 1,
        "agent_version": "0.1.0",
        "hostname": format!("host{}", i + 1),
        "conf_path": format!("/etc/mysql/{n}.cnf"),
        "service": "mariadb",
        "supervised": false,
        "server_binary": "/usr/sbin/mariadbd",
        "server_version": "10.11.19-MariaDB-0+deb12u1",
        "mysqld_running": true,
        "mysqld_pid": 4242,
        "datadir": "/var/lib/mysql",
        "datadir_empty": false,
        "datadir_bytes": if empty { 80_422_932 } else { datadir_bytes },
        "free_disk_bytes": 53_687_091_200u64,
        "backup_tool": "/usr/bin/mariadb-backup",
        "settings": {
            "log_bin": "mysql-bin",
            "server_id": i + 1,
            "log_slave_updates": true,
            "report_host": host(i),
            "binlog_format": "ROW",
            "port": 3306,
            "bind_address": host(i),
            "socket": "/run/mysqld/mysqld.sock",
            "pid_file": "/run/mysqld/mysqld.pid"
        },
        "stream_listen": null,
        "busy_job": null
    })
}

/// A replica status, healthy unless the caller changes it.
fn replica_json(
    source: usize,
    received: &str,
    lag: u64,
    history_server_id: usize,
) -> serde_json::Value {
    json!({
        "source_host": host(source),
        "source_port": 3306,
        "source_user": "repl",
        "source_server_id": source + 1,
        "io_running": "Yes",
        "sql_running": true,
        "seconds_behind": lag,
        "using_gtid": true,
        "gtid_received": received,
        "exec_source_log": { "file": "mysql-bin.000001", "position": 4 + 100 * history_server_id as u64 }
    })
}

fn mysql_json(
    i: usize,
    read_only: bool,
    position: &str,
    slave_pos: &str,
    schemas: &[&str],
    replica: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut facts = json!({
        "flavor": "mariadb",
        "version": "10.11.19-MariaDB-0+deb12u1-log",
        "server_id": i + 1,
        "read_only": read_only,
        "log_bin": true,
        "log_slave_updates": true,
        "binlog_format": "ROW",
        "binlog": { "file": "mysql-bin.000001", "position": 328 },
        "gtid": {
            "binlog_pos": position,
            "slave_pos": slave_pos,
            "current_pos": position,
            "binlog_state": position,
            "strict_mode": true
        },
        "user_schemas": schemas,
        "longest_transaction_seconds": 0
    });
    if let Some(replica) = replica {
        facts["replica"] = replica;
    }
    facts
}

fn build_case(k: &Knobs) -> Case {
    let n = k.servers;
    let all: Vec<usize> = (0..n).collect();
    let s = |i: usize| &k.per_server[i];

    // Desired topology.
    let desired_primary = k.desired_primary as usize % n;
    let desired = random_tree(
        desired_primary,
        &all,
        |i| s(i).desired_key,
        |i| s(i).desired_parent,
    );
    let mut toml = String::from("[cluster]\nname = \"prop\"\n");
    if k.semi_sync {
        toml.push_str("durability = \"semi-sync\"\n");
    }
    toml.push('\n');
    for i in 0..n {
        toml.push_str(&format!("[servers.{}]\nhost = \"{}\"\n", name(i), host(i)));
        if let Some(parent) = desired[&i] {
            toml.push_str(&format!("source = \"{}\"\n", name(parent)));
            if let Some(pick) = s(i).clone_from {
                let mut ancestors = Vec::new();
                let mut up = Some(parent);
                while let Some(a) = up {
                    ancestors.push(a);
                    up = desired[&a];
                }
                let donor = ancestors[pick as usize % ancestors.len()];
                toml.push_str(&format!("clone_from = \"{}\"\n", name(donor)));
            }
        }
        if !s(i).promotable {
            toml.push_str("promotable = false\n");
        }
        toml.push('\n');
    }
    let topology = topology::parse(&toml, Path::new("prop/topology.toml"))
        .unwrap_or_else(|e| panic!("generated topology is invalid: {e:?}\n{toml}"));

    // Observed state: the observed primary, the servers holding data in a
    // random tree under it, and the empty ones.
    let observed_primary = k
        .observed_primary
        .map(|p| p as usize % n)
        .unwrap_or(desired_primary);
    let primary_dead = k.primary_dead && observed_primary != desired_primary;
    let data: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| *i == observed_primary || !s(*i).empty)
        .collect();
    let observed_tree = random_tree(
        observed_primary,
        &data,
        |i| s(i).observed_key,
        |i| s(i).observed_parent,
    );
    // Sequence numbers: each replica at or a little behind its source.
    let history = observed_primary + 1;
    let mut seq: BTreeMap<usize, u64> = BTreeMap::new();
    let mut order: Vec<usize> = vec![observed_primary];
    let mut i = 0;
    while i < order.len() {
        let parent = order[i];
        for (child, p) in &observed_tree {
            if *p == Some(parent) {
                order.push(*child);
            }
        }
        i += 1;
    }
    for server in &order {
        let value = match observed_tree[server] {
            None => k.base_seq as u64 + 2,
            Some(parent) => seq[&parent].saturating_sub(s(*server).behind as u64).max(1),
        };
        seq.insert(*server, value);
    }

    let mut servers = BTreeMap::new();
    for i in 0..n {
        let knobs = s(i);
        let (mysql, agent) = if let Some(parent) = observed_tree.get(&i) {
            let position = seq_gtid(history, seq[&i]);
            let replica = parent.map(|parent| {
                let mut replica = replica_json(
                    parent,
                    &seq_gtid(history, seq[&parent]),
                    knobs.lag_seconds as u64,
                    history,
                );
                if knobs.stopped {
                    replica["io_running"] = json!("No");
                    replica["sql_running"] = json!(false);
                    replica.as_object_mut().unwrap().remove("seconds_behind");
                }
                if primary_dead && parent == observed_primary {
                    replica["io_running"] = json!("Connecting");
                    replica.as_object_mut().unwrap().remove("seconds_behind");
                    replica["last_io_error"] = json!(format!(
                        "error reconnecting to master 'repl@{}:3306' - retry-time: 60  maximum-retries: 100000  message: Can't connect to server on '{}' (111 \"Connection refused\")",
                        host(parent),
                        host(parent)
                    ));
                }
                replica
            });
            let slave_pos = if replica.is_some() {
                position.clone()
            } else {
                String::new()
            };
            (
                mysql_json(
                    i,
                    knobs.read_only,
                    &position,
                    &slave_pos,
                    &["shop"],
                    replica,
                ),
                agent_json(i, false, 1_200_000_000 + 1000 * seq[&i]),
            )
        } else {
            (
                mysql_json(i, knobs.read_only, "", "", &[], None),
                agent_json(i, true, 0),
            )
        };
        let mut server = json!({
            "name": name(i),
            "host": host(i),
            "port": 3306,
            "mysql": { "reachable": true, "facts": mysql },
            "agent": { "reachable": true, "facts": agent }
        });
        if primary_dead && i == observed_primary {
            mysql_down(&mut server);
            if k.dead_agent_answers {
                server["agent"]["facts"]["mysqld_running"] = json!(false);
                server["agent"]["facts"]["mysqld_pid"] = json!(null);
            } else {
                agent_down(&mut server);
            }
        }
        if let Some(mess) = knobs.mess {
            apply_mess(&mut server, mess, i, n, history, k.base_seq as u64);
        }
        if k.semi_sync && server["mysql"]["facts"].is_object() {
            server["mysql"]["facts"]["semi_sync"] = json!({
                "master_enabled": false,
                "slave_enabled": false,
                "master_timeout_ms": 10000,
                "master_wait_point": "AFTER_COMMIT",
                "master_wait_no_slave": true,
                "master_status": false,
                "master_clients": 0,
                "slave_status": false
            });
        }
        servers.insert(name(i), server);
    }
    let observed: Observed = serde_json::from_value(json!({
        "format_version": 1,
        "cluster": "prop",
        "servers": servers,
    }))
    .expect("generated observation deserializes");
    let options = PlanOptions {
        replace: k
            .replace
            .iter()
            .map(|r| {
                if (*r as usize) < n {
                    name(*r as usize)
                } else {
                    "nosuch".to_string()
                }
            })
            .collect(),
        failover: false,
    };
    Case {
        toml,
        topology,
        observed,
        options,
    }
}

fn mysql_down(server: &mut serde_json::Value) {
    let host = server["host"].as_str().unwrap().to_string();
    server["mysql"] = json!({
        "reachable": false,
        "error": format!("cannot connect to {host}:3306: Connection refused (os error 111)")
    });
}

fn agent_down(server: &mut serde_json::Value) {
    let host = server["host"].as_str().unwrap().to_string();
    server["agent"] = json!({
        "reachable": false,
        "error": format!("error sending request for url (http://{host}:836/v1/facts)")
    });
}

fn apply_mess(
    server: &mut serde_json::Value,
    mess: Mess,
    i: usize,
    n: usize,
    history: usize,
    base: u64,
) {
    let has_facts = !server["mysql"]["facts"].is_null();
    let has_agent = !server["agent"]["facts"].is_null();
    let has_replica = has_facts && !server["mysql"]["facts"]["replica"].is_null();
    let facts = &mut server["mysql"]["facts"];
    match mess {
        Mess::MysqlDown => mysql_down(server),
        Mess::HostDown => {
            mysql_down(server);
            agent_down(server);
        }
        Mess::AgentDown => agent_down(server),
        Mess::ForeignSource if has_facts => {
            facts["replica"] = replica_json(0, "0-1-1", 0, history);
            facts["replica"]["source_host"] = json!("192.0.2.7");
        }
        Mess::SqlError if has_replica => {
            facts["replica"]["sql_running"] = json!(false);
            facts["replica"]["last_sql_error"] = json!("Error 'Duplicate entry' on query");
        }
        Mess::IoError if has_replica => {
            facts["replica"]["io_running"] = json!("No");
            facts["replica"]["last_io_error"] = json!("Got fatal error 1236 from master");
        }
        Mess::BigLag if has_replica => facts["replica"]["seconds_behind"] = json!(1000),
        Mess::LagUnknown if has_replica => {
            facts["replica"]
                .as_object_mut()
                .unwrap()
                .remove("seconds_behind");
        }
        Mess::Errant if has_facts => {
            let state = facts["gtid"]["binlog_state"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let errant = format!("0-{}-{}", i + 1, 3);
            let state = if state.is_empty() {
                errant
            } else {
                format!("{state},{errant}")
            };
            facts["gtid"]["binlog_state"] = json!(state);
            facts["gtid"]["current_pos"] = json!(format!("0-{}-{}", i + 1, base + 10));
        }
        Mess::MysqlFlavor if has_facts => {
            facts["flavor"] = json!("mysql");
            facts["version"] = json!("8.0.40");
            facts["server_uuid"] = json!(format!("3e11fa47-71ca-11e1-9e33-c80aa9429{i:03}"));
            facts["super_read_only"] = json!(false);
            facts["gtid"] = json!({ "mode": "ON", "executed": format!("3e11fa47-71ca-11e1-9e33-c80aa9429000:1-{base}"), "purged": "" });
        }
        Mess::NoLogBin if has_facts => facts["log_bin"] = json!(false),
        Mess::NoLogSlaveUpdates if has_facts => facts["log_slave_updates"] = json!(false),
        Mess::StoppedEmptyDatadir | Mess::StoppedWithFiles => {
            mysql_down(server);
            if has_agent {
                server["agent"]["facts"]["mysqld_running"] = json!(false);
                server["agent"]["facts"]["datadir_empty"] =
                    json!(matches!(mess, Mess::StoppedEmptyDatadir));
            }
        }
        Mess::NoBackupTool if has_agent => server["agent"]["facts"]["backup_tool"] = json!(null),
        Mess::TinyDisk if has_agent => server["agent"]["facts"]["free_disk_bytes"] = json!(1024),
        Mess::SourceAnywhere(pick) if has_facts => {
            facts["replica"] = replica_json(pick as usize % n, "0-1-1", 0, history);
        }
        Mess::RestoredBackup if has_agent => {
            server["agent"]["facts"]["restored_backup"] = json!({
                "binlog_file": "mysql-bin.000002", "binlog_position": 342,
                "gtid": format!("0-{history}-{base}")
            });
        }
        Mess::LongTransaction if has_facts => facts["longest_transaction_seconds"] = json!(3600),
        Mess::BinlogsPurged if has_facts => {
            facts["binlog_oldest_gtid"] = json!(format!("0-{history}-{}", base + 100));
        }
        Mess::UnfinishedApply if has_facts => {
            facts["last_apply"] = json!({
                "apply_id": format!("apply-{}", i % 2),
                "operator": "ops@admin pid 7",
                "started_at": "2026-11-25 10:00:00",
                "finished": i.is_multiple_of(3),
                "entries": [
                    { "step": "apply", "state": "started", "at": "2026-11-25 10:00:00" },
                    { "step": "clone db2", "state": "started", "at": "2026-11-25 10:00:01" },
                    { "step": "clone db3", "state": "succeeded", "at": "2026-11-25 10:00:02" }
                ]
            });
        }
        Mess::Threads(io, sql) if has_replica => {
            facts["replica"]["io_running"] = json!(if io { "Connecting" } else { "No" });
            facts["replica"]["sql_running"] = json!(sql);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Structural checks.

/// Acyclic, and `ordered()` lists every step once, after its dependencies.
fn check_structure(plan: &Plan) -> Result<(), TestCaseError> {
    prop_assert!(
        !petgraph::algo::is_cyclic_directed(&plan.graph),
        "the plan's graph has a cycle"
    );
    let order = plan.ordered();
    prop_assert_eq!(order.len(), plan.graph.node_count());
    let position: BTreeMap<NodeIndex, usize> =
        order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    prop_assert_eq!(position.len(), order.len(), "a step is listed twice");
    for node in plan.graph.node_indices() {
        for dep in plan.graph.neighbors_directed(node, Direction::Incoming) {
            prop_assert!(
                position[&dep] < position[&node],
                "{} is listed before its dependency {}",
                plan.graph[node].id(),
                plan.graph[dep].id()
            );
        }
    }
    Ok(())
}

/// What two plans are compared on: every step in order, problems, warnings.
fn fingerprint(plan: &Plan) -> (Vec<String>, Vec<Step>, Vec<String>, Vec<String>) {
    let order = plan.ordered();
    (
        order.iter().map(|n| plan.graph[*n].id()).collect(),
        order.iter().map(|n| plan.graph[*n].clone()).collect(),
        plan.problems.iter().map(|p| format!("{p:?}")).collect(),
        plan.warnings.iter().map(|p| format!("{p:?}")).collect(),
    )
}

fn describe(plan: &Plan) -> String {
    let mut text = String::new();
    for node in plan.ordered() {
        let deps: Vec<String> = plan
            .dependencies(node)
            .iter()
            .map(|d| plan.graph[*d].id())
            .collect();
        text.push_str(&format!(
            "  step: {} (after {:?})\n",
            plan.graph[node].title(),
            deps
        ));
    }
    for p in &plan.problems {
        text.push_str(&format!("  problem: {}\n", p.message));
    }
    for p in &plan.warnings {
        text.push_str(&format!("  warning: {}\n", p.message));
    }
    text
}

// ---------------------------------------------------------------------------
// The simulator: what each step does to the observed state, in the planner's
// terms, with the preconditions the executor relies on checked as it goes.

struct Sim<'a> {
    topology: &'a Topology,
    state: Observed,
    /// Servers the plan builds (clone, start-replication) whose steps have
    /// not run yet.
    pending: BTreeSet<String>,
}

impl Sim<'_> {
    fn server(&self, name: &str) -> &ServerObservation {
        &self.state.servers[name]
    }

    fn seq(&self, name: &str) -> u64 {
        self.server(name)
            .facts()
            .and_then(|f| f.gtid.current_pos.as_deref())
            .and_then(|p| p.rsplit('-').next()?.parse().ok())
            .unwrap_or(0)
    }

    /// The history's server_id: every generated GTID is `0-H-seq`.
    fn history(&self) -> u32 {
        self.state
            .servers
            .values()
            .filter_map(|s| s.facts()?.gtid.current_pos.as_deref())
            .filter_map(|p| flipover::gtid::parse_list(p).first().map(|g| g.server_id))
            .next()
            .unwrap_or(1)
    }

    /// A donor or source must answer, and must not be a server this plan
    /// still has to build.
    fn usable(&self, name: &str, by: &str) -> Result<(), String> {
        if self.server(name).facts().is_none() {
            return Err(format!("{by}: {name} does not answer"));
        }
        if self.pending.contains(name) {
            return Err(format!("{by}: {name} is not built yet when the step runs"));
        }
        Ok(())
    }

    fn source_of(&self, name: &str) -> Option<String> {
        let replica = self.server(name).facts()?.replica.as_ref()?;
        self.topology
            .server_at(&replica.source_host, replica.source_port)
            .map(|s| s.name.clone())
    }

    fn set_position(&mut self, name: &str, seq: u64) {
        let position = seq_gtid(self.history() as usize, seq);
        let facts = self
            .state
            .servers
            .get_mut(name)
            .unwrap()
            .mysql
            .facts
            .as_mut()
            .unwrap();
        facts.gtid.binlog_pos = Some(position.clone());
        facts.gtid.current_pos = Some(position.clone());
        facts.gtid.binlog_state = Some(position.clone());
        if facts.replica.is_some() {
            facts.gtid.slave_pos = Some(position);
        }
    }

    /// `name` replicates from `source`, healthy and caught up, read-only.
    fn replicate(&mut self, name: &str, source: &str) -> Result<(), String> {
        self.usable(source, &format!("{name} is pointed at {source}"))?;
        let source_index: usize = source[2..].parse::<usize>().unwrap() - 1;
        let seq = self.seq(source).max(self.seq(name));
        let history = self.history() as usize;
        let replica: ReplicaStatus = serde_json::from_value(replica_json(
            source_index,
            &seq_gtid(history, seq),
            0,
            history,
        ))
        .unwrap();
        let facts = self
            .state
            .servers
            .get_mut(name)
            .unwrap()
            .mysql
            .facts
            .as_mut()
            .unwrap();
        facts.replica = Some(replica);
        facts.read_only = true;
        self.set_position(name, seq);
        self.set_position(source, seq);
        Ok(())
    }

    fn promote(&mut self, name: &str, seq: u64) {
        let facts = self
            .state
            .servers
            .get_mut(name)
            .unwrap()
            .mysql
            .facts
            .as_mut()
            .unwrap();
        facts.replica = None;
        facts.read_only = false;
        self.set_position(name, seq);
    }

    /// Follows `name`'s sources up; true when `ancestor` is among them.
    fn chain_reaches(&self, name: &str, ancestor: &str) -> bool {
        let mut current = name.to_string();
        for _ in 0..=self.state.servers.len() {
            match self.source_of(&current) {
                Some(source) if source == ancestor => return true,
                Some(source) => current = source,
                None => return false,
            }
        }
        false
    }

    fn check_no_cycle(&self, after: &str) -> Result<(), String> {
        for name in self.state.servers.keys() {
            if self.chain_reaches(name, name) {
                return Err(format!("after `{after}`, {name} replicates in a cycle"));
            }
        }
        Ok(())
    }

    fn apply(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Clone(clone) => {
                self.usable(&clone.donor, &step.title())?;
                let donor = self.server(&clone.donor).clone();
                let donor_facts = donor.facts().unwrap().clone();
                let backup = donor_facts.gtid.current_pos.clone().unwrap_or_default();
                let target = self.state.servers.get_mut(&clone.target).unwrap();
                let facts = target
                    .mysql
                    .facts
                    .as_mut()
                    .expect("a clone target answers afterwards");
                facts.user_schemas = donor_facts.user_schemas.clone();
                facts.gtid.binlog_pos = Some(String::new());
                facts.gtid.binlog_state = Some(String::new());
                facts.gtid.current_pos = Some(String::new());
                facts.gtid.slave_pos = Some(String::new());
                facts.replica = None;
                let agent = target
                    .agent
                    .facts
                    .as_mut()
                    .expect("a clone target's agent answers");
                agent.datadir_bytes = donor.agent.facts.as_ref().and_then(|a| a.datadir_bytes);
                agent.restored_backup = Some(flipover_agent::protocol::BackupPosition {
                    binlog_file: "mysql-bin.000001".into(),
                    binlog_position: 328,
                    gtid: backup.clone(),
                });
                // The restored copy holds the backup's position.
                let seq = flipover::gtid::parse_list(&backup)
                    .first()
                    .map(|g| g.seq)
                    .unwrap_or(0);
                self.set_position(&clone.target, seq);
                self.state
                    .servers
                    .get_mut(&clone.target)
                    .unwrap()
                    .mysql
                    .facts
                    .as_mut()
                    .unwrap()
                    .gtid
                    .binlog_pos = Some(String::new());
                Ok(())
            }
            Step::StartReplication(start) => {
                self.replicate(&start.target, &start.source)?;
                self.pending.remove(&start.target);
                Ok(())
            }
            Step::Rechain(rechain) => {
                let now = self.source_of(&rechain.target);
                if now.as_deref() != Some(rechain.from.as_str()) {
                    return Err(format!(
                        "rechain {} from {}: it replicates from {:?} when the step runs",
                        rechain.target, rechain.from, now
                    ));
                }
                self.replicate(&rechain.target, &rechain.to)
            }
            Step::Switchover(switch) => {
                if self.source_of(&switch.old_primary).is_some() {
                    return Err(format!(
                        "switchover: {} is not the primary when it runs",
                        switch.old_primary
                    ));
                }
                if !self.chain_reaches(&switch.new_primary, &switch.old_primary) {
                    return Err(format!(
                        "switchover: {} does not replicate from {} (even through others) when it runs: it could never catch up",
                        switch.new_primary, switch.old_primary
                    ));
                }
                let seq = self.seq(&switch.old_primary);
                self.promote(&switch.new_primary, seq);
                self.replicate(&switch.old_primary, &switch.new_primary)
            }
            Step::Failover(failover) => {
                if self.server(&failover.old_primary).facts().is_some() {
                    return Err(format!(
                        "failover from {}, which answers",
                        failover.old_primary
                    ));
                }
                let mut everyone = failover.replicas.clone();
                everyone.push(failover.new_primary.clone());
                let mut seq = 0;
                for name in &everyone {
                    let facts = self
                        .server(name)
                        .facts()
                        .ok_or(format!("failover: {name} does not answer"))?;
                    let received = facts
                        .replica
                        .as_ref()
                        .and_then(|r| r.gtid_received.as_deref())
                        .and_then(|p| flipover::gtid::parse_list(p).first().map(|g| g.seq))
                        .unwrap_or(0);
                    seq = seq.max(received).max(self.seq(name));
                }
                self.promote(&failover.new_primary, seq);
                for name in &failover.replicas {
                    self.replicate(name, &failover.new_primary)?;
                }
                Ok(())
            }
            Step::SetReadOnly(set) => {
                let facts = self
                    .state
                    .servers
                    .get_mut(&set.target)
                    .unwrap()
                    .mysql
                    .facts
                    .as_mut()
                    .ok_or(format!(
                        "set-read-only on {}, which does not answer",
                        set.target
                    ))?;
                facts.read_only = set.read_only;
                Ok(())
            }
            Step::SetDurability(semi_sync) => {
                if self.source_of(&semi_sync.primary).is_some() {
                    return Err(format!(
                        "set-durability: {} is not the primary when it runs",
                        semi_sync.primary
                    ));
                }
                for name in step.servers() {
                    let is_primary = name == semi_sync.primary;
                    let facts = self
                        .state
                        .servers
                        .get_mut(name)
                        .unwrap()
                        .mysql
                        .facts
                        .as_mut()
                        .ok_or(format!("set-durability on {name}, which does not answer"))?;
                    let state = facts.semi_sync.get_or_insert_with(Default::default);
                    if is_primary && semi_sync.enable_primary {
                        state.master_enabled = true;
                        state.master_status = true;
                        state.master_wait_point = Some("AFTER_SYNC".into());
                        state.master_timeout_ms = Some(semi_sync.timeout_ms);
                        state.master_wait_no_slave = Some(true);
                        state.master_clients = semi_sync.replicas.len() as u64;
                    } else if !is_primary {
                        state.master_enabled = false;
                        state.master_status = false;
                        state.slave_enabled = true;
                        state.slave_status = true;
                    }
                }
                Ok(())
            }
            // A hook changes no server.
            Step::RunHook(_) => Ok(()),
        }
    }
}

/// The steps in a dependency order where, among ready steps, the one added
/// last goes first: the opposite tie-break of `Plan::ordered`, so the
/// simulation also covers another order the executor may run them in.
fn ordered_latest_first(plan: &Plan) -> Vec<NodeIndex> {
    let mut waiting: Vec<usize> = plan
        .graph
        .node_indices()
        .map(|n| {
            plan.graph
                .neighbors_directed(n, Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BTreeSet<NodeIndex> = plan
        .graph
        .node_indices()
        .filter(|n| waiting[n.index()] == 0)
        .collect();
    let mut order = Vec::new();
    while let Some(next) = ready.pop_last() {
        order.push(next);
        for after in plan.graph.neighbors_directed(next, Direction::Outgoing) {
            waiting[after.index()] -= 1;
            if waiting[after.index()] == 0 {
                ready.insert(after);
            }
        }
    }
    order
}

fn simulate(case: &Case, plan: &Plan, order: &[NodeIndex]) -> Result<Observed, String> {
    let mut sim = Sim {
        topology: &case.topology,
        state: case.observed.clone(),
        pending: plan
            .graph
            .node_weights()
            .filter(|s| matches!(s, Step::Clone(_) | Step::StartReplication(_)))
            .map(|s| s.target().to_string())
            .collect(),
    };
    for node in order {
        let step = &plan.graph[*node];
        sim.apply(step)?;
        sim.check_no_cycle(&step.title())?;
    }
    Ok(sim.state)
}

// ---------------------------------------------------------------------------
// Planner bugs these properties found (now fixed). `known_bug` recognises
// their shapes, so the properties assert none comes back, and each has its
// minimal case as a regression test below.

/// Which known bug `plan` shows for `case`, if any.
fn known_bug(case: &Case, plan: &Plan) -> Option<&'static str> {
    if petgraph::algo::is_cyclic_directed(&plan.graph) {
        let mut without = plan.graph.clone();
        without.retain_nodes(|g, n| !matches!(g[n], Step::Switchover(_)));
        if !petgraph::algo::is_cyclic_directed(&without) {
            return Some("D: cycle through the switchover");
        }
        return None;
    }
    // E: the desired primary answers but holds nothing, while another
    // server holds the data: the plan builds the cluster from the empty one.
    let holds_data = |name: &str| {
        case.observed.servers[name].facts().is_some_and(|f| {
            !f.user_schemas.is_empty()
                || f.gtid.current_pos.as_deref().is_some_and(|p| !p.is_empty())
        })
    };
    let desired_primary = &case.topology.primary().name;
    if case.observed.servers[desired_primary].facts().is_some()
        && !holds_data(desired_primary)
        && case.observed.servers.keys().any(|n| holds_data(n))
        && !plan.is_empty()
    {
        return Some("E: an empty desired primary while another server holds the data");
    }
    let node_of = |target: &str| {
        plan.graph.node_indices().find(|n| {
            let step = &plan.graph[*n];
            step.target() == target
                && matches!(
                    step,
                    Step::Rechain(_) | Step::StartReplication(_) | Step::Clone(_)
                )
        })
    };
    let before =
        |a: NodeIndex, b: NodeIndex| petgraph::algo::has_path_connecting(&plan.graph, a, b, None);
    let observed_chain = |name: &str| {
        let mut chain = Vec::new();
        let mut current = name.to_string();
        while let Some(source) = observed_source(case, &current) {
            if chain.contains(&source) || chain.len() > case.observed.servers.len() {
                break;
            }
            chain.push(source.clone());
            current = source;
        }
        chain
    };
    for node in plan.graph.node_indices() {
        match &plan.graph[node] {
            Step::Switchover(switch) => {
                // A: a server between the candidate and the old primary is
                // rechained (under the candidate's tree) by a step that
                // does not wait for the switchover.
                for between in observed_chain(&switch.new_primary) {
                    if between == switch.old_primary {
                        break;
                    }
                    if node_of(&between).is_some_and(|r| !before(node, r)) {
                        return Some("A: chained candidate's upstream moved under it first");
                    }
                }
                // B: the old primary is rechained before the switchover.
                if node_of(&switch.old_primary).is_some_and(|r| before(r, node)) {
                    return Some("B: old primary rechained before the switchover");
                }
            }
            Step::Rechain(rechain) => {
                // C: X moves under T while an ancestor Y of T (desired)
                // that replicates through X now is moved by a step X does not wait for.
                let mut up = Some(rechain.to.clone());
                while let Some(y) = up {
                    if let Some(moved) = node_of(&y) {
                        if moved != node
                            && observed_chain(&y).contains(&rechain.target)
                            && !before(moved, node)
                        {
                            return Some("C: rechain does not wait for its new source's ancestor");
                        }
                    }
                    up = case.topology.servers()[&y].source.clone();
                }
            }
            _ => {}
        }
    }
    None
}

fn observed_source(case: &Case, name: &str) -> Option<String> {
    let replica = case.observed.servers[name].facts()?.replica.as_ref()?;
    case.topology
        .server_at(&replica.source_host, replica.source_port)
        .map(|s| s.name.clone())
}

fn accepted(case: &Case) -> Option<Plan> {
    let plan = planner::plan(&case.topology, &case.observed, &case.options);
    (!plan.has_problems()).then_some(plan)
}

fn check_convergence(case: &Case, plan: &Plan) -> Result<(), TestCaseError> {
    for (label, order) in [
        ("ordered()", plan.ordered()),
        ("latest-first order", ordered_latest_first(plan)),
    ] {
        let after = simulate(case, plan, &order)
            .map_err(|e| TestCaseError::fail(format!("{label}: {e}\nplan:\n{}", describe(plan))))?;
        let again = planner::plan(&case.topology, &after, &PlanOptions::default());
        prop_assert!(
            again.is_empty() && !again.has_problems(),
            "after applying the plan ({label}) there is still something to do\nfirst plan:\n{}\nplan on the simulated result:\n{}\nsimulated state:\n{}",
            describe(plan),
            describe(&again),
            serde_json::to_string_pretty(&after).unwrap()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The properties.

proptest! {
    #![proptest_config(ProptestConfig {
        max_global_rejects: 4096,
        // Failures print the case as golden files instead (see `Case`'s Debug).
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Healthy-ish states: no panic, a DAG, deterministic.
    #[test]
    fn plans_are_acyclic_ordered_and_deterministic(case in case(false)) {
        let first = planner::plan(&case.topology, &case.observed, &case.options);
        prop_assert_eq!(known_bug(&case, &first), None);
        check_structure(&first)?;
        let second = planner::plan(&case.topology, &case.observed, &case.options);
        prop_assert_eq!(fingerprint(&first), fingerprint(&second));
    }

    /// Messy states (servers down, broken, foreign or cyclic replication,
    /// errant GTIDs, MySQL among MariaDB, `--replace` of anything): still no
    /// panic, a DAG, deterministic; `--failover`'s choice too.
    #[test]
    fn messy_states_never_panic_and_still_give_a_dag(case in case(true)) {
        let first = planner::plan(&case.topology, &case.observed, &case.options);
        // (Bug shapes are checked on consistent states only: messy facts
        // contradict each other on purpose.)
        check_structure(&first)?;
        let second = planner::plan(&case.topology, &case.observed, &case.options);
        prop_assert_eq!(fingerprint(&first), fingerprint(&second));
        if let Ok((changed, _)) = planner::failover::choose(&case.topology, &case.observed) {
            let chosen = planner::plan(&changed, &case.observed, &case.options);
            // (`known_bug` reads the case's own topology, not the chosen one.)
            check_structure(&chosen)?;
        }
    }

    /// Applying an accepted plan in the simulation converges: planning
    /// again finds nothing to do.
    #[test]
    fn applying_a_plan_converges(case in case(false)) {
        let plan = accepted(&case);
        prop_assume!(plan.is_some(), "the plan has problems");
        let plan = plan.unwrap();
        prop_assert_eq!(known_bug(&case, &plan), None);
        check_convergence(&case, &plan)?;
    }
}

/// Guards the convergence property against vacuity: with a fixed seed, a
/// good share of generated cases are accepted, and between them every step
/// kind but none occurs.
#[test]
fn generated_cases_are_mostly_accepted_and_cover_every_step_kind() {
    let mut runner = TestRunner::deterministic();
    let strategy = case(false);
    let total = 1000;
    let mut accepted_count = 0;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut rejections: BTreeMap<String, usize> = BTreeMap::new();
    let mut known: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..total {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let plan = planner::plan(&case.topology, &case.observed, &case.options);
        if plan.has_problems() {
            // Problem messages without server names, to group them.
            let message = plan.problems[0]
                .message
                .split_whitespace()
                .map(|w| if w.starts_with("db") { "dbN" } else { w })
                .collect::<Vec<_>>()
                .join(" ");
            *rejections.entry(message).or_default() += 1;
            continue;
        }
        accepted_count += 1;
        if let Some(bug) = known_bug(&case, &plan) {
            *known.entry(bug).or_default() += 1;
        }
        if plan.is_empty() {
            *kinds.entry("(no steps)".into()).or_default() += 1;
        }
        for step in plan.graph.node_weights() {
            *kinds.entry(step.kind().to_string()).or_default() += 1;
        }
    }
    println!("accepted {accepted_count} of {total} generated cases; steps in them: {kinds:?}");
    println!("accepted cases of a fixed planner bug's shape (must be none): {known:?}");
    assert!(known.is_empty(), "planner bugs are back: {known:?}");
    let mut top: Vec<_> = rejections.into_iter().collect();
    top.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    for (message, count) in top.iter().take(8) {
        println!("  refused {count}: {message}");
    }
    assert!(
        accepted_count * 100 >= total * 40,
        "only {accepted_count} of {total} cases accepted: the convergence property would test too little"
    );
    for kind in [
        "clone",
        "start-replication",
        "rechain",
        "switchover",
        "failover",
        "set-read-only",
        "set-durability",
        "(no steps)",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) >= 5,
            "accepted plans have too few `{kind}`: {kinds:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// The minimal cases of the planner bugs the properties found (see
// `known_bug`): each must plan without that bug's shape and converge.

#[derive(Clone, Copy)]
enum Seen {
    Primary,
    Replica(usize),
    Empty,
}

/// A case from explicit trees (indices: 0 is db1): every server holding
/// data at the same position, replicas read-only, the primary writable.
fn explicit_case(desired: &[Option<usize>], observed: &[Seen]) -> Case {
    let mut toml = String::from("[cluster]\nname = \"prop\"\n\n");
    for (i, source) in desired.iter().enumerate() {
        toml.push_str(&format!("[servers.{}]\nhost = \"{}\"\n", name(i), host(i)));
        if let Some(source) = source {
            toml.push_str(&format!("source = \"{}\"\n", name(*source)));
        }
        toml.push('\n');
    }
    let topology = topology::parse(&toml, Path::new("prop/topology.toml")).expect("valid topology");
    let history = observed
        .iter()
        .position(|s| matches!(s, Seen::Primary))
        .unwrap()
        + 1;
    let position = seq_gtid(history, 3);
    let mut servers = BTreeMap::new();
    for (i, seen) in observed.iter().enumerate() {
        let (mysql, agent) = match seen {
            Seen::Primary => (
                mysql_json(i, false, &position, "", &["shop"], None),
                agent_json(i, false, 1_200_000_000),
            ),
            Seen::Replica(source) => (
                mysql_json(
                    i,
                    true,
                    &position,
                    &position,
                    &["shop"],
                    Some(replica_json(*source, &position, 0, history)),
                ),
                agent_json(i, false, 1_200_000_000),
            ),
            Seen::Empty => (
                mysql_json(i, true, "", "", &[], None),
                agent_json(i, true, 0),
            ),
        };
        servers.insert(
            name(i),
            json!({
                "name": name(i), "host": host(i), "port": 3306,
                "mysql": { "reachable": true, "facts": mysql },
                "agent": { "reachable": true, "facts": agent }
            }),
        );
    }
    let observed = serde_json::from_value(
        json!({ "format_version": 1, "cluster": "prop", "servers": servers }),
    )
    .unwrap();
    Case {
        toml,
        topology,
        observed,
        options: PlanOptions::default(),
    }
}

fn assert_converges(case: &Case) {
    let plan = planner::plan(&case.topology, &case.observed, &case.options);
    assert!(
        !plan.has_problems(),
        "the plan is refused:\n{}",
        describe(&plan)
    );
    assert!(
        !petgraph::algo::is_cyclic_directed(&plan.graph),
        "the plan's graph has a cycle:\n{:?}",
        plan.graph
            .edge_indices()
            .map(|e| {
                let (a, b) = plan.graph.edge_endpoints(e).unwrap();
                format!("{} -> {}", plan.graph[a].id(), plan.graph[b].id())
            })
            .collect::<Vec<_>>()
    );
    if let Err(error) = check_convergence(case, &plan) {
        panic!("{error}");
    }
}

/// A: observed db2 -> db1 -> db4, desired db4 with everyone under it. The
/// plan rechains db1 under db4 before the switchover while db4 still
/// replicates from db1: a replication cycle, and db4 never catches up with
/// db2 (the switchover would time out with writes blocked).
#[test]
fn known_bug_a_chained_candidate() {
    use Seen::*;
    let case = explicit_case(
        &[Some(3), Some(3), Some(3), None],
        &[Replica(1), Primary, Replica(1), Replica(0)],
    );
    assert_eq!(
        known_bug(
            &case,
            &planner::plan(&case.topology, &case.observed, &case.options)
        )
        .map(|b| &b[..1]),
        None
    );
    assert_converges(&case);
}

/// B: observed db2 primary with db1, db3, db4 under it; desired db1 primary,
/// db2 under db3. The old primary db2 is rechained "from db1 to db3" before
/// the switchover, while it is still the primary.
#[test]
fn known_bug_b_old_primary_rechained_first() {
    use Seen::*;
    let case = explicit_case(
        &[None, Some(2), Some(0), Some(0)],
        &[Replica(1), Primary, Replica(1), Replica(1)],
    );
    assert_eq!(
        known_bug(
            &case,
            &planner::plan(&case.topology, &case.observed, &case.options)
        )
        .map(|b| &b[..1]),
        None
    );
    assert_converges(&case);
}

/// C: observed db7 -> db4 -> db6 -> db1, desired db7 -> db6 -> db1 -> db4.
/// `rechain db4 to db1` does not wait for `rechain db6 to db7`: run first
/// (the executor runs independent steps concurrently), db4 -> db1 -> db6 -> db4
/// is a cycle.
#[test]
fn known_bug_c_rechain_misses_a_dependency() {
    use Seen::*;
    let case = explicit_case(
        &[
            Some(5),
            Some(6),
            Some(6),
            Some(0),
            Some(6),
            Some(6),
            None,
            Some(6),
        ],
        &[
            Replica(5),
            Replica(6),
            Replica(6),
            Replica(6),
            Replica(6),
            Replica(3),
            Primary,
            Replica(6),
        ],
    );
    assert_eq!(
        known_bug(
            &case,
            &planner::plan(&case.topology, &case.observed, &case.options)
        )
        .map(|b| &b[..1]),
        None
    );
    assert_converges(&case);
}

/// D: switchover db4 -> db2; db1 (now under db2) goes under db5 before the
/// switchover, but db5 goes under the old primary db4 after it: the plan's
/// graph has a cycle (`Plan::ordered` panics on its debug assertion).
#[test]
fn known_bug_d_cyclic_plan() {
    use Seen::*;
    let case = explicit_case(
        &[Some(4), None, Some(1), Some(1), Some(3)],
        &[Replica(1), Replica(3), Replica(3), Primary, Replica(2)],
    );
    assert_eq!(
        known_bug(
            &case,
            &planner::plan(&case.topology, &case.observed, &case.options)
        )
        .map(|b| &b[..1]),
        None
    );
    assert_converges(&case);
}

/// E: desired db1 primary, but db1 and db2 are empty and the data is on db4
/// (primary) and db3. The plan clones db2 from the empty db1, rechains db3
/// (data) under that empty copy, and starts db4 replicating from db3, which
/// replicates from db4: a cycle, and the data's primary becomes a replica.
#[test]
fn known_bug_e_empty_desired_primary() {
    use Seen::*;
    let case = explicit_case(
        &[None, Some(0), Some(1), Some(2)],
        &[Empty, Empty, Replica(3), Primary],
    );
    let plan = planner::plan(&case.topology, &case.observed, &case.options);
    assert_eq!(
        known_bug(&case, &plan).map(|b| &b[..1]),
        None,
        "{}",
        describe(&plan)
    );
    // What a fix looks like: the plan refuses (a problem naming db1 and db4).
    assert!(plan.has_problems(), "accepted:\n{}", describe(&plan));
}
