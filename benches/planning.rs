//! Planning at scale: `planner::plan` for a recorded observed state of 10,000
//! servers in 1,000 clusters, beside a baseline measured in the same run.
//!
//!     cargo bench --bench planning
//!
//! Target (plans-as-artefacts issue): planning all 1,000 clusters <= 100 ms.
//!
//! The clusters (10 MariaDB servers each: a random replication tree, and in
//! some clusters an empty replica to clone, a replica under the wrong source,
//! a writable replica, or a planned switchover) are generated in memory with
//! a fixed seed, and each observed state is serialised to JSON as
//! `flipover status --json` would record it; none of that is timed. Then,
//! per round:
//!
//! - baseline: deserialise the 1,000 recorded `observed.json` texts (what
//!   `plan --observed` must do before planning) — and, for scale, clone the
//!   1,000 `Observed` values;
//! - flipover: `planner::plan` for each cluster (each timed, for the
//!   per-cluster median);
//! - rendering: `render::plan_text::render` of the 1,000 plans.
//!
//! Medians over the rounds are printed, with the plan/deserialise ratio.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use flipover::observe::Observed;
use flipover::planner::{self, PlanOptions, StepKind};
use flipover::render::plan_text;
use flipover::topology::{self, Topology};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const CLUSTERS: usize = 1000;
const SERVERS: usize = 10;
const ROUNDS: usize = 7;
const TARGET_MS: f64 = 100.0;

struct Cluster {
    topology: Topology,
    observed: Observed,
    /// The observed state as `status --json` prints it.
    recorded: String,
}

/// What one cluster needs from the plan, besides read-only fixes.
#[derive(Clone, Copy, Debug)]
enum Change {
    Nothing,
    CloneOne,
    RechainOne,
    WritableReplica,
    Switchover,
}

fn main() {
    let started = Instant::now();
    let clusters = generate();
    let servers: usize = clusters.iter().map(|c| c.observed.servers.len()).sum();
    let bytes: usize = clusters.iter().map(|c| c.recorded.len()).sum();
    eprintln!(
        "generated {} clusters, {servers} servers ({:.1} MB of observed JSON) in {:.1} s (not timed)",
        clusters.len(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // What the plans contain (checked once, not timed): non-trivial, no problems.
    let options = PlanOptions::default();
    let mut kinds: BTreeMap<StepKind, usize> = BTreeMap::new();
    let mut with_problems = 0;
    let mut empty = 0;
    for cluster in &clusters {
        let plan = planner::plan(&cluster.topology, &cluster.observed, &options);
        with_problems += usize::from(plan.has_problems());
        empty += usize::from(plan.is_empty());
        for step in plan.graph.node_weights() {
            *kinds.entry(step.kind()).or_default() += 1;
        }
    }
    let kinds_text: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "plans: {} ; {empty} clusters with nothing to do, {with_problems} with problems",
        kinds_text.join(", ")
    );

    let mut deserialize = Vec::new();
    let mut clone = Vec::new();
    let mut planning = Vec::new();
    let mut per_cluster_medians = Vec::new();
    let mut rendering = Vec::new();
    for round in 1..=ROUNDS {
        // Baseline: read the recorded states.
        let t = Instant::now();
        for cluster in &clusters {
            let observed: Observed = serde_json::from_str(&cluster.recorded).unwrap();
            black_box(observed);
        }
        let d = t.elapsed();

        let t = Instant::now();
        for cluster in &clusters {
            black_box(cluster.observed.clone());
        }
        let c = t.elapsed();

        // flipover: plan every cluster.
        let mut each = Vec::with_capacity(clusters.len());
        let mut plans = Vec::with_capacity(clusters.len());
        let t = Instant::now();
        for cluster in &clusters {
            let one = Instant::now();
            let plan = planner::plan(
                black_box(&cluster.topology),
                black_box(&cluster.observed),
                &options,
            );
            each.push(one.elapsed());
            plans.push(plan);
        }
        let p = t.elapsed();

        let t = Instant::now();
        let mut text_bytes = 0;
        for (cluster, plan) in clusters.iter().zip(&plans) {
            text_bytes += black_box(plan_text::render(
                &cluster.topology,
                &cluster.observed,
                plan,
            ))
            .len();
        }
        let r = t.elapsed();

        let per_cluster = median_duration(&mut each);
        println!(
            "round {round}: deserialise {:7.2} ms, clone {:6.2} ms | plan {:7.2} ms (per cluster median {:5.1} µs, max {:6.1} µs) | render text {:7.2} ms ({:.1} MB)",
            ms(d),
            ms(c),
            ms(p),
            per_cluster.as_secs_f64() * 1e6,
            each.iter().max().unwrap().as_secs_f64() * 1e6,
            ms(r),
            text_bytes as f64 / 1e6
        );
        deserialize.push(ms(d));
        clone.push(ms(c));
        planning.push(ms(p));
        per_cluster_medians.push(per_cluster.as_secs_f64() * 1e6);
        rendering.push(ms(r));
    }

    let d = median(&mut deserialize);
    let p = median(&mut planning);
    println!(
        "baseline: deserialising the 1,000 recorded observed states: median {d:.2} ms (cloning them: {:.2} ms)",
        median(&mut clone)
    );
    println!(
        "flipover: planning 1,000 clusters / {servers} servers: median {p:.2} ms (per cluster {:.1} µs), ratio plan/deserialise {:.2} (target <= {TARGET_MS} ms: {})",
        median(&mut per_cluster_medians),
        p / d,
        if p <= TARGET_MS { "met" } else { "NOT met" }
    );
    println!(
        "rendering the 1,000 plans as text: median {:.2} ms",
        median(&mut rendering)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn median_duration(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn generate() -> Vec<Cluster> {
    let mut rng = StdRng::seed_from_u64(6);
    (0..CLUSTERS).map(|c| cluster(c, &mut rng)).collect()
}

fn host(cluster: usize, i: usize) -> String {
    format!("10.{}.{}.{}", cluster / 250, cluster % 250, i + 1)
}

/// One cluster: db1 the desired primary, every other server under a random
/// earlier one; the observed state is that tree, healthy, with `change`.
fn cluster(c: usize, rng: &mut StdRng) -> Cluster {
    let name = |i: usize| format!("db{}", i + 1);
    let desired: Vec<Option<usize>> = (0..SERVERS)
        .map(|i| (i > 0).then(|| rng.random_range(0..i)))
        .collect();
    let change = match rng.random_range(0..100) {
        0..=14 => Change::CloneOne,
        15..=29 => Change::RechainOne,
        30..=44 => Change::WritableReplica,
        45..=49 => Change::Switchover,
        _ => Change::Nothing,
    };
    let leaves: Vec<usize> = (1..SERVERS)
        .filter(|i| !desired.contains(&Some(*i)))
        .collect();
    let leaf = leaves[rng.random_range(0..leaves.len())];

    let mut toml = format!("[cluster]\nname = \"c{c}\"\n\n");
    for (i, source) in desired.iter().enumerate() {
        toml.push_str(&format!(
            "[servers.{}]\nhost = \"{}\"\n",
            name(i),
            host(c, i)
        ));
        if let Some(source) = source {
            toml.push_str(&format!("source = \"{}\"\n", name(*source)));
        }
        toml.push('\n');
    }
    let topology = topology::parse(&toml, Path::new("topology.toml")).expect("valid topology");

    // Observed sources: the desired tree, changed as `change` says.
    let mut observed_source = desired.clone();
    let mut empty = None;
    let mut writable = None;
    match change {
        Change::Nothing => {}
        Change::CloneOne => {
            observed_source[leaf] = None;
            empty = Some(leaf);
        }
        Change::RechainOne => {
            // A leaf under another server than the desired one (one that is
            // not below it, so the tree stays a tree).
            let others: Vec<usize> = (0..SERVERS)
                .filter(|i| *i != leaf && Some(*i) != desired[leaf])
                .collect();
            observed_source[leaf] = Some(others[rng.random_range(0..others.len())]);
        }
        Change::WritableReplica => writable = Some(leaf),
        Change::Switchover => {
            // db2 is the primary now with everyone under it; db1 (desired
            // primary) replicates from it directly.
            observed_source = vec![Some(1); SERVERS];
            observed_source[1] = None;
        }
    }
    let primary = observed_source.iter().position(Option::is_none).unwrap();
    let seq = rng.random_range(1000..1_000_000u64);
    let position = format!("0-{}-{seq}", primary + 1);
    let mut servers = serde_json::Map::new();
    #[allow(clippy::needless_range_loop)] // i names the server, indexes two vectors
    for i in 0..SERVERS {
        let is_empty = empty == Some(i);
        let behind = if observed_source[i].is_some() {
            rng.random_range(0..3)
        } else {
            0
        };
        let own = if is_empty {
            String::new()
        } else {
            format!("0-{}-{}", primary + 1, seq - behind)
        };
        let replica = observed_source[i].map(|source| {
            json!({
                "source_host": host(c, source),
                "source_port": 3306,
                "source_user": "repl",
                "source_server_id": source + 1,
                "io_running": "Yes",
                "sql_running": true,
                "seconds_behind": rng.random_range(0..3),
                "using_gtid": true,
                "gtid_received": position,
                "exec_source_log": { "file": "mysql-bin.000042", "position": 1000 + seq }
            })
        });
        let mut mysql = json!({
            "flavor": "mariadb",
            "version": "10.11.19-MariaDB-0+deb12u1-log",
            "server_id": i + 1,
            "read_only": (observed_source[i].is_some() || is_empty) && writable != Some(i),
            "log_bin": true,
            "log_slave_updates": true,
            "binlog_format": "ROW",
            "binlog": { "file": "mysql-bin.000042", "position": 1000 + seq },
            "gtid": {
                "binlog_pos": own,
                "slave_pos": if replica.is_some() { own.clone() } else { String::new() },
                "current_pos": own,
                "binlog_state": own,
                "strict_mode": true
            },
            "user_schemas": if is_empty { vec![] } else { vec!["shop", "billing"] },
            "longest_transaction_seconds": 0
        });
        if let Some(replica) = replica {
            mysql["replica"] = replica;
        }
        let agent = json!({
            "protocol_version": 1,
            "agent_version": "0.1.0",
            "hostname": format!("c{c}-db{}", i + 1),
            "conf_path": "/etc/mysql/my.cnf",
            "service": "mariadb",
            "supervised": false,
            "server_binary": "/usr/sbin/mariadbd",
            "server_version": "10.11.19-MariaDB-0+deb12u1",
            "mysqld_running": true,
            "mysqld_pid": 4242,
            "datadir": "/var/lib/mysql",
            "datadir_empty": false,
            "datadir_bytes": if is_empty { 80_000_000u64 } else { 40_000_000_000 },
            "free_disk_bytes": 500_000_000_000u64,
            "backup_tool": "/usr/bin/mariadb-backup",
            "settings": {
                "log_bin": "mysql-bin",
                "server_id": i + 1,
                "log_slave_updates": true,
                "report_host": host(c, i),
                "binlog_format": "ROW",
                "port": 3306,
                "bind_address": host(c, i),
                "socket": "/run/mysqld/mysqld.sock",
                "pid_file": "/run/mysqld/mysqld.pid"
            },
            "stream_listen": null,
            "busy_job": null
        });
        servers.insert(
            name(i),
            json!({
                "name": name(i),
                "host": host(c, i),
                "port": 3306,
                "mysql": { "reachable": true, "facts": mysql },
                "agent": { "reachable": true, "facts": agent }
            }),
        );
    }
    let observed: Observed = serde_json::from_value(json!({
        "format_version": 1,
        "cluster": format!("c{c}"),
        "servers": servers,
    }))
    .expect("observed state");
    let recorded = serde_json::to_string_pretty(&observed).unwrap();
    Cluster {
        topology,
        observed,
        recorded,
    }
}
