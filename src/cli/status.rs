//! `flipover status -f FILE [--json]`: the observed replication tree
//! (the seed's `show-status`: binlog file/position and GTID per server).

use std::fmt::Write as _;

use crate::exit_codes;
use crate::observe::{self, Observed, ServerObservation};
use crate::topology::{self, Topology};
use crate::view::{ObservedSource, ObservedTree};
use miette::IntoDiagnostic;

use super::error::CommandResult;
use super::TopologyFileArg;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub topology: TopologyFileArg,

    /// Print the observed state as JSON (the format `plan --observed` reads).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub observe: super::ObserveArgs,
}

pub fn run(args: Args) -> CommandResult {
    let topology = topology::load(&args.topology.file)?;
    let observed = args.observe.observe(&topology)?;
    if args.json {
        let json = serde_json::to_string_pretty(&observed).into_diagnostic()?;
        println!("{json}");
    } else {
        print!("{}", render(&topology, &observed));
    }
    Ok(exit_codes::SUCCESS)
}

/// The human view: a tree per observed root, details indented under each server.
pub fn render(topology: &Topology, observed: &Observed) -> String {
    let tree = ObservedTree::from_observed(topology, observed);
    let mut out = String::new();
    let reachable = observed
        .servers
        .values()
        .filter(|s| s.mysql.reachable)
        .count();
    let _ = writeln!(
        out,
        "cluster {}: {} servers, {} reachable",
        observed.cluster,
        observed.servers.len(),
        reachable
    );
    for root in tree.roots() {
        out.push('\n');
        render_node(&mut out, topology, observed, &tree, root, "", None);
    }
    out
}

/// Writes one server and, below it, its replicas. `last` is `None` for a
/// root, else whether this is the last child of its parent.
fn render_node(
    out: &mut String,
    topology: &Topology,
    observed: &Observed,
    tree: &ObservedTree,
    name: &str,
    prefix: &str,
    last: Option<bool>,
) {
    let (connector, continuation) = match last {
        None => ("", ""),
        Some(false) => ("├─ ", "│  "),
        Some(true) => ("└─ ", "   "),
    };
    let Some(server) = observed.servers.get(name) else {
        return;
    };
    let child_prefix = format!("{prefix}{continuation}");
    let children = tree.children(name);
    let detail_prefix = format!(
        "{child_prefix}{}",
        if children.is_empty() { "   " } else { "│  " }
    );
    let _ = writeln!(
        out,
        "{prefix}{connector}{}",
        headline(topology, tree, server)
    );
    for line in details(server, tree.sources.get(name)) {
        let _ = writeln!(out, "{detail_prefix}{line}");
    }
    for (i, child) in children.iter().enumerate() {
        let is_last = i + 1 == children.len();
        render_node(
            out,
            topology,
            observed,
            tree,
            child,
            &child_prefix,
            Some(is_last),
        );
    }
}

fn headline(topology: &Topology, tree: &ObservedTree, server: &ServerObservation) -> String {
    let address = format!("{}:{}", server.host, server.port);
    let desired = match topology
        .servers()
        .get(&server.name)
        .and_then(|s| s.source.as_deref())
    {
        None => "desired: primary".to_string(),
        Some(source) => format!("desired: replica of {source}"),
    };
    match server.facts() {
        Some(facts) => {
            // Observed roles only: a server nobody replicates from is standalone.
            let role = if facts.replica.is_some() {
                "replica"
            } else if tree.children(&server.name).is_empty() {
                "standalone"
            } else {
                "primary"
            };
            let mode = if facts.read_only {
                "read-only"
            } else {
                "writable"
            };
            let flavor = match facts.flavor {
                observe::Flavor::Mariadb => "MariaDB",
                observe::Flavor::Mysql => "MySQL",
            };
            let version = facts.version.split('-').next().unwrap_or(&facts.version);
            format!(
                "{} {address}  {role}  {mode}  {flavor} {version}  server_id {}  ({desired})",
                server.name, facts.server_id
            )
        }
        None if server.mysql.reachable => format!(
            "{} {address}  reachable, facts unreadable  ({desired})",
            server.name
        ),
        None => format!("{} {address}  UNREACHABLE  ({desired})", server.name),
    }
}

fn details(server: &ServerObservation, source: Option<&ObservedSource>) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(error) = &server.mysql.error {
        lines.push(format!("mysql: {error}"));
    }
    if let Some(facts) = server.facts() {
        if let Some(replica) = &facts.replica {
            let lag = replica
                .seconds_behind
                .map(|s| format!("{s}s"))
                .unwrap_or_else(|| "unknown".to_string());
            let from = match source {
                Some(ObservedSource::Foreign(address)) => {
                    format!(" from {address} (not in topology)")
                }
                _ => format!(" from {}:{}", replica.source_host, replica.source_port),
            };
            lines.push(format!(
                "replication{from}: io {}  sql {}  lag {lag}  gtid {}",
                replica.io_running,
                if replica.sql_running { "Yes" } else { "No" },
                if replica.using_gtid { "on" } else { "off" },
            ));
            if let Some(received) = &replica.gtid_received {
                lines.push(format!("received gtid {received}"));
            }
            for error in [&replica.last_io_error, &replica.last_sql_error]
                .into_iter()
                .flatten()
            {
                lines.push(format!("error: {error}"));
            }
        }
        let binlog = match &facts.binlog {
            Some(b) => format!("binlog {}:{}", b.file, b.position),
            None => "binlog off".to_string(),
        };
        let gtid = facts
            .gtid_summary()
            .filter(|g| !g.is_empty())
            .unwrap_or("(empty)");
        lines.push(format!("{binlog}  gtid {gtid}"));
        if let Some(line) = facts.semi_sync.as_ref().and_then(semi_sync_line) {
            lines.push(line);
        }
    }
    match (&server.agent.facts, &server.agent.error) {
        (Some(agent), _) => lines.push(format!(
            "agent: mysqld {}  datadir {}",
            if agent.mysqld_running {
                "running"
            } else {
                "stopped"
            },
            agent.datadir.as_deref().unwrap_or("?")
        )),
        (None, Some(error)) => lines.push(format!("agent: {error}")),
        (None, None) => {}
    }
    lines
}

/// Semi-sync as configured and in effect; nothing when both sides are off.
fn semi_sync_line(semi_sync: &observe::SemiSync) -> Option<String> {
    let on = |b: bool| if b { "ON" } else { "OFF" };
    let mut parts = Vec::new();
    if semi_sync.master_enabled {
        parts.push(format!(
            "primary side ON (status {}, {} clients, wait point {}, timeout {} ms)",
            on(semi_sync.master_status),
            semi_sync.master_clients,
            semi_sync.master_wait_point.as_deref().unwrap_or("?"),
            semi_sync
                .master_timeout_ms
                .map_or("?".to_string(), |t| t.to_string())
        ));
    }
    if semi_sync.slave_enabled {
        parts.push(format!(
            "replica side ON (status {})",
            on(semi_sync.slave_status)
        ));
    }
    (!parts.is_empty()).then(|| format!("semi-sync: {}", parts.join("  ")))
}
