//! From the raw file to a [`Topology`]: apply defaults and check every rule
//! that involves more than one value (one primary, known sources, no cycles,
//! unique addresses, …). Every broken rule is collected, not just the first.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;

use super::diagnostics::{Problem, ProblemKind};
use super::raw::{
    RawAccess, RawCluster, RawDefaults, RawHooks, RawJournal, RawServer, RawTopology,
};
use super::suggest::{did_you_mean, list_in_backticks};
use super::{
    Access, AgentTls, Cluster, Durability, HookCommand, HookEvent, Hooks, Journal, Secret, Server,
    Topology, DEFAULT_AGENT_PORT, DEFAULT_HOOK_TIMEOUT, DEFAULT_JOURNAL_KEEP_APPLIES,
    DEFAULT_MAX_REPLICA_LAG, DEFAULT_MAX_TRANSACTION_AGE, DEFAULT_PORT, DEFAULT_SEMI_SYNC_TIMEOUT,
    DEFAULT_STREAM_PORT, DEFAULT_SWITCHOVER_TIMEOUT,
};

/// Default admin account.
const DEFAULT_USER: &str = "flipover";
/// Default replication account.
const DEFAULT_REPL_USER: &str = "repl";

/// Where a problem about something absent from the file points: its start.
const START_OF_FILE: Range<usize> = 0..0;

/// Turns a raw file whose shape is already checked into a topology, or every
/// problem found in it.
pub(crate) fn resolve(raw: RawTopology, base_dir: PathBuf) -> Result<Topology, Vec<Problem>> {
    let mut problems = Vec::new();
    let cluster = resolve_cluster(&raw, &mut problems);
    let access = resolve_access(&raw.access, &mut problems);
    let hooks = resolve_hooks(&raw.hooks);
    let journal = resolve_journal(&raw.journal, &mut problems);
    let servers = match &raw.servers {
        Some(servers) if !servers.get_ref().is_empty() => {
            let servers = servers.get_ref();
            let resolved = servers
                .iter()
                .map(|(name, server)| {
                    let resolved = resolve_server(name, server, &raw.defaults, &mut problems);
                    (name.get_ref().clone(), resolved)
                })
                .collect();
            check_replication(servers, &mut problems);
            check_unique_addresses(servers, &resolved, &mut problems);
            resolved
        }
        Some(servers) => {
            problems.push(no_servers(servers.span(), "no server in this table"));
            BTreeMap::new()
        }
        None => {
            problems.push(no_servers(
                START_OF_FILE,
                "no `[servers.NAME]` table in this file",
            ));
            BTreeMap::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Topology {
        cluster,
        access,
        servers,
        hooks,
        journal,
        base_dir,
    })
}

/// `[journal]`: at least the latest apply is kept (observation reads it,
/// and the topology it left is what discovery remembers).
fn resolve_journal(raw: &RawJournal, problems: &mut Vec<Problem>) -> Journal {
    let Some(keep) = &raw.keep_applies else {
        return Journal::default();
    };
    match u32::try_from(*keep.get_ref()) {
        Ok(keep_applies) if keep_applies >= 1 => Journal { keep_applies },
        _ if *keep.get_ref() < 1 => {
            problems.push(
                Problem::new(ProblemKind::TooSmall, "`keep_applies` must be 1 or more")
                    .label(keep.span(), "keeps no apply")
                    .help(format!(
                        "every server keeps at least its latest apply: its journal is how the next plan \
                         knows an apply was interrupted; e.g. `keep_applies = {DEFAULT_JOURNAL_KEEP_APPLIES}` (the default)"
                    )),
            );
            Journal::default()
        }
        // Beyond u32: more applies than any server will ever run.
        _ => Journal {
            keep_applies: u32::MAX,
        },
    }
}

/// Reads the hook lists, whose form `shape` has checked already.
fn resolve_hooks(raw: &RawHooks) -> Hooks {
    let default_timeout = raw
        .timeout
        .as_ref()
        .map_or(DEFAULT_HOOK_TIMEOUT, |t| *t.get_ref());
    let argv = |value: &toml::Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut hooks = Hooks::default();
    for (key, list) in raw.lists() {
        let (Some(event), Some(list)) = (HookEvent::from_name(key), list) else {
            continue;
        };
        let commands = list
            .get_ref()
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|command| match command {
                toml::Value::Table(table) => HookCommand {
                    argv: table.get("command").map(argv).unwrap_or_default(),
                    timeout_seconds: table
                        .get("timeout")
                        .and_then(toml::Value::as_integer)
                        .and_then(|t| u64::try_from(t).ok())
                        .unwrap_or(default_timeout),
                },
                other => HookCommand {
                    argv: argv(other),
                    timeout_seconds: default_timeout,
                },
            })
            .collect::<Vec<_>>();
        // An empty list is the same as none (and compares equal to it).
        if !commands.is_empty() {
            hooks.commands.insert(event, commands);
        }
    }
    hooks
}

fn no_servers(span: Range<usize>, label: &str) -> Problem {
    Problem::new(ProblemKind::NoServers, "the topology has no servers")
        .label(span, label)
        .help("describe each server in its own table: `[servers.db1]` followed by `host = \"10.0.0.1\"`")
}

fn resolve_cluster(raw: &RawTopology, problems: &mut Vec<Problem>) -> Cluster {
    let name = match &raw.cluster {
        None => {
            problems.push(
                Problem::new(ProblemKind::MissingKey, "the `[cluster]` table is missing")
                    .label(START_OF_FILE, "expected a `[cluster]` table in this file")
                    .help("name the cluster: `[cluster]` followed by `name = \"shop\"`"),
            );
            String::new()
        }
        Some(cluster) => match &cluster.get_ref().name {
            None => {
                problems.push(
                    Problem::new(ProblemKind::MissingKey, "`[cluster]` has no `name`")
                        .label(cluster.span(), "`name` missing in this table")
                        .help("name the cluster: `name = \"shop\"`"),
                );
                String::new()
            }
            Some(name) => non_empty(name, "name", problems),
        },
    };
    let limit = |get: fn(&RawCluster) -> Option<&Spanned<u64>>, default: u64| {
        raw.cluster
            .as_ref()
            .and_then(|c| get(c.get_ref()))
            .map_or(default, |v| *v.get_ref())
    };
    Cluster {
        name,
        max_replica_lag: limit(|c| c.max_replica_lag.as_ref(), DEFAULT_MAX_REPLICA_LAG),
        max_transaction_age: limit(
            |c| c.max_transaction_age.as_ref(),
            DEFAULT_MAX_TRANSACTION_AGE,
        ),
        switchover_timeout: limit(
            |c| c.switchover_timeout.as_ref(),
            DEFAULT_SWITCHOVER_TIMEOUT,
        )
        .max(1),
        // `shape` accepted only known modes.
        durability: raw
            .cluster
            .as_ref()
            .and_then(|c| c.get_ref().durability.as_ref())
            .and_then(|d| Durability::parse(d.get_ref()))
            .unwrap_or(Durability::Async),
        semi_sync_timeout: limit(|c| c.semi_sync_timeout.as_ref(), DEFAULT_SEMI_SYNC_TIMEOUT)
            .max(1),
    }
}

fn resolve_access(raw: &RawAccess, problems: &mut Vec<Problem>) -> Access {
    let user = |value: &Option<Spanned<String>>, key, default: &str, problems: &mut Vec<_>| {
        value.as_ref().map_or_else(
            || default.to_string(),
            |user| non_empty(user, key, problems),
        )
    };
    Access {
        user: user(&raw.user, "user", DEFAULT_USER, problems),
        password: secret(raw.password.as_ref(), problems),
        repl_user: user(&raw.repl_user, "repl_user", DEFAULT_REPL_USER, problems),
        repl_password: secret(raw.repl_password.as_ref(), problems),
        agent_token: secret(raw.agent_token.as_ref(), problems),
        agent_tls: agent_tls(raw, problems),
    }
}

/// TLS to the agents needs all three files; plaintext must be asked for
/// and cannot be mixed with them.
fn agent_tls(raw: &RawAccess, problems: &mut Vec<Problem>) -> AgentTls {
    let files = [
        ("ca", &raw.ca),
        ("client_cert", &raw.client_cert),
        ("client_key", &raw.client_key),
    ];
    let given: Vec<_> = files
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| (*key, v)))
        .collect();
    let insecure = raw.insecure.as_ref().filter(|i| *i.get_ref());
    if let (Some(insecure), Some((key, value))) = (insecure, given.first()) {
        problems.push(
            Problem::new(
                ProblemKind::ConflictingKeys,
                format!("`insecure = true` and `{key}` exclude each other"),
            )
            .label(insecure.span(), "plaintext asked for here")
            .label(value.span(), "TLS asked for here")
            .help(
                "remove `insecure` to talk to the agents over TLS, or the TLS files for plaintext",
            ),
        );
        return AgentTls::Unset;
    }
    if insecure.is_some() {
        return AgentTls::Insecure;
    }
    if given.is_empty() {
        return AgentTls::Unset;
    }
    if given.len() < files.len() {
        let missing: Vec<_> = files
            .iter()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| *key)
            .collect();
        let (key, value) = given[0];
        problems.push(
            Problem::new(
                ProblemKind::MissingKey,
                format!("`[access]` has `{key}` but not {}", list_in_backticks(missing.iter().copied())),
            )
            .label(value.span(), "TLS to the agents starts here")
            .help("TLS to the agents needs `ca`, `client_cert` and `client_key` (`flipover certs init` makes them)"),
        );
        return AgentTls::Unset;
    }
    let path = |value: &Option<Spanned<String>>, key, problems: &mut Vec<Problem>| {
        PathBuf::from(non_empty(
            value.as_ref().expect("all three given"),
            key,
            problems,
        ))
    };
    AgentTls::Files {
        ca: path(&raw.ca, "ca", problems),
        client_cert: path(&raw.client_cert, "client_cert", problems),
        client_key: path(&raw.client_key, "client_key", problems),
    }
}

/// Reads a secret whose form `shape` has checked already.
fn secret(value: Option<&Spanned<toml::Value>>, problems: &mut Vec<Problem>) -> Option<Secret> {
    let value = value?;
    let secret = match value.get_ref() {
        toml::Value::String(literal) => Some(Secret::Literal(literal.clone())),
        toml::Value::Table(table) if table.len() == 1 => match table.iter().next() {
            Some((source, toml::Value::String(name))) if source == "env" => {
                Some(Secret::Env(name.clone()))
            }
            Some((source, toml::Value::String(path))) if source == "file" => {
                Some(Secret::File(PathBuf::from(path)))
            }
            _ => None,
        },
        _ => None,
    };
    if secret.is_none() {
        problems.push(
            Problem::new(ProblemKind::BadSecret, "not a secret")
                .label(value.span(), "expected a secret")
                .help("a secret is `\"literal\"`, `{ env = \"VAR\" }` or `{ file = \"path\" }`"),
        );
    }
    secret
}

fn non_empty(value: &Spanned<String>, key: &str, problems: &mut Vec<Problem>) -> String {
    if value.get_ref().trim().is_empty() {
        problems.push(
            Problem::new(ProblemKind::EmptyValue, format!("`{key}` is empty"))
                .label(value.span(), "empty")
                .help(format!("give `{key}` a value or remove the key")),
        );
    }
    value.get_ref().clone()
}

fn resolve_server(
    name: &Spanned<String>,
    spanned_server: &Spanned<RawServer>,
    defaults: &RawDefaults,
    problems: &mut Vec<Problem>,
) -> Server {
    let server = spanned_server.get_ref();
    if !is_valid_server_name(name.get_ref()) {
        problems.push(
            Problem::new(
                ProblemKind::BadServerName,
                format!("invalid server name `{}`", name.get_ref()),
            )
            .label(name.span(), "not a valid server name")
            .help(
                "rename the server: names may contain only ASCII letters, digits, `_`, `.` and `-`",
            ),
        );
    }
    let host = match &server.host {
        Some(host) => {
            if host.get_ref().trim().is_empty() {
                problems.push(
                    Problem::new(
                        ProblemKind::EmptyValue,
                        format!("server `{}` has an empty `host`", name.get_ref()),
                    )
                    .label(host.span(), "empty host")
                    .help("give the server's host name or IP address, e.g. `host = \"10.0.0.1\"`"),
                );
            } else if !is_valid_host(host.get_ref()) {
                problems.push(
                    Problem::new(
                        ProblemKind::BadHost,
                        format!(
                            "server `{}` has `host = {:?}`, which is neither a host name nor an IP address",
                            name.get_ref(),
                            host.get_ref()
                        ),
                    )
                    .label(host.span(), "not a host name or IP address")
                    .help("a host name has only ASCII letters, digits, `-`, `_` and `.`; IPv6 addresses go without brackets, e.g. `host = \"fd00::1\"`"),
                );
            }
            host.get_ref().clone()
        }
        None => {
            problems.push(
                Problem::new(
                    ProblemKind::MissingKey,
                    format!("server `{}` has no `host`", name.get_ref()),
                )
                .label(name.span(), "`host` missing in this server")
                .help(format!(
                    "add the server's host name or IP address below `[servers.{}]`, e.g. `host = \"10.0.0.1\"`",
                    name.get_ref()
                )),
            );
            String::new()
        }
    };
    let port = |own: &Option<Spanned<i64>>, default: &Option<Spanned<i64>>, builtin: u16| {
        own.as_ref()
            .or(default.as_ref())
            .and_then(|port| u16::try_from(*port.get_ref()).ok())
            .unwrap_or(builtin)
    };
    let promotable = server
        .promotable
        .as_ref()
        .or(defaults.promotable.as_ref())
        .is_none_or(|promotable| *promotable.get_ref());
    Server {
        name: name.get_ref().clone(),
        host,
        port: port(&server.port, &defaults.port, DEFAULT_PORT),
        agent_port: port(&server.agent_port, &defaults.agent_port, DEFAULT_AGENT_PORT),
        stream_port: port(
            &server.stream_port,
            &defaults.stream_port,
            DEFAULT_STREAM_PORT,
        ),
        source: server
            .source
            .as_ref()
            .map(|source| source.get_ref().clone()),
        clone_from: server
            .clone_from
            .as_ref()
            .map(|donor| donor.get_ref().clone()),
        promotable,
    }
}

/// `[A-Za-z0-9_.-]+`: names end up in file names, URLs and log lines.
fn is_valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

/// A DNS name (`[A-Za-z0-9_.-]+`, `_` for names of containers) or an IP
/// address: hosts end up in URLs, connection options and SQL.
fn is_valid_host(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

type RawServers = BTreeMap<Spanned<String>, Spanned<RawServer>>;

/// References between servers: known names, not itself, exactly one primary, no cycle.
fn check_replication(servers: &RawServers, problems: &mut Vec<Problem>) {
    let names: Vec<&str> = servers.keys().map(|name| name.get_ref().as_str()).collect();
    for (name, server) in servers {
        let server = server.get_ref();
        if let Some(source) = &server.source {
            check_reference(name, source, "source", &names, problems);
        }
        if let Some(donor) = &server.clone_from {
            check_reference(name, donor, "clone_from", &names, problems);
        }
    }
    check_one_primary(servers, problems);
    check_no_cycles(servers, problems);
}

fn check_reference(
    name: &Spanned<String>,
    target: &Spanned<String>,
    key: &str,
    names: &[&str],
    problems: &mut Vec<Problem>,
) {
    let (name, target_name) = (name.get_ref(), target.get_ref());
    if target_name == name {
        let problem = match key {
            "source" => Problem::new(
                ProblemKind::SelfReplication,
                format!("server `{name}` replicates from itself"),
            )
            .label(target.span(), "this is the server's own name")
            .help(format!(
                "name the server `{name}` replicates from, or remove `source` if `{name}` is the primary"
            )),
            _ => Problem::new(
                ProblemKind::CloneFromSelf,
                format!("server `{name}` is cloned from itself"),
            )
            .label(target.span(), "this is the server's own name")
            .help("name another server to copy the data from, or remove `clone_from` to clone from `source`"),
        };
        problems.push(problem);
        return;
    }
    if names.contains(&target_name.as_str()) {
        return;
    }
    let help = match did_you_mean(target_name, names.iter().copied().filter(|n| *n != name)) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None => format!(
            "the servers are {}",
            list_in_backticks(names.iter().copied())
        ),
    };
    problems.push(
        Problem::new(
            ProblemKind::UnknownServer,
            format!("`{key}` of server `{name}` names an unknown server `{target_name}`"),
        )
        .label(target.span(), "no server has this name")
        .help(help),
    );
}

fn check_one_primary(servers: &RawServers, problems: &mut Vec<Problem>) {
    let primaries: Vec<&Spanned<String>> = servers
        .iter()
        .filter(|(_, server)| server.get_ref().source.is_none())
        .map(|(name, _)| name)
        .collect();
    match primaries.as_slice() {
        [_] => {}
        [] => {
            let mut problem = Problem::new(
                ProblemKind::NoPrimary,
                "the topology has no primary: every server has a `source`",
            );
            for server in servers.values() {
                if let Some(source) = &server.get_ref().source {
                    problem = problem.label(source.span(), "replicates from this server");
                }
            }
            problems
                .push(problem.help("remove `source` from the server that should be the primary"));
        }
        [first, rest @ ..] => {
            let mut problem = Problem::new(
                ProblemKind::SeveralPrimaries,
                format!(
                    "the topology has {} primaries; exactly one server may have no `source`",
                    primaries.len()
                ),
            );
            for primary in &primaries {
                problem = problem.label(primary.span(), "no `source`: a primary");
            }
            problems.push(problem.help(format!(
                "give every server but the primary a `source`, e.g. `source = \"{}\"` in `[servers.{}]`",
                first.get_ref(),
                rest[0].get_ref()
            )));
        }
    }
}

/// Following `source` must end at the primary. Each server has at most one
/// source, so a walk from each server either ends or closes a cycle.
fn check_no_cycles(servers: &RawServers, problems: &mut Vec<Problem>) {
    // Edges that `check_reference` accepted: to another, existing server.
    let source_of = |name: &str| -> Option<&Spanned<String>> {
        let source = servers.get(name)?.get_ref().source.as_ref()?;
        (source.get_ref() != name && servers.contains_key(source.get_ref().as_str()))
            .then_some(source)
    };
    let mut finished: BTreeSet<&str> = BTreeSet::new();
    for start in servers.keys() {
        let mut path: Vec<&str> = Vec::new();
        let mut current = start.get_ref().as_str();
        while !finished.contains(current) {
            if let Some(position) = path.iter().position(|name| *name == current) {
                problems.push(cycle_problem(&path[position..], &source_of));
                break;
            }
            path.push(current);
            match source_of(current) {
                Some(source) => current = source.get_ref(),
                None => break,
            }
        }
        finished.extend(path);
    }
}

fn cycle_problem<'a>(
    cycle: &[&'a str],
    source_of: &impl Fn(&str) -> Option<&'a Spanned<String>>,
) -> Problem {
    // Start at the smallest name so the message does not depend on where the walk began.
    let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
    let ordered: Vec<&str> = cycle[first..]
        .iter()
        .chain(&cycle[..first])
        .copied()
        .collect();
    let description = ordered
        .iter()
        .map(|name| {
            let source = source_of(name).map_or("?", |source| source.get_ref().as_str());
            format!("`{name}` from `{source}`")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut problem = Problem::new(
        ProblemKind::ReplicationCycle,
        format!("replication cycle: {description}"),
    );
    for name in &ordered {
        if let Some(source) = source_of(name) {
            problem = problem.label(
                source.span(),
                format!("`{name}` replicates from `{}`", source.get_ref()),
            );
        }
    }
    problem.help(
        "a chain of `source`s must end at the primary; break the cycle by pointing one of these at a server outside it",
    )
}

fn check_unique_addresses(
    raw: &RawServers,
    servers: &BTreeMap<String, Server>,
    problems: &mut Vec<Problem>,
) {
    // Every listening port on a host belongs to one server: its MySQL port,
    // and its agent's API and stream ports (an agent serves one mysqld).
    // Host names compare case-insensitively, as `Topology::server_at` does.
    type Listener<'a> = (&'a str, &'static str, &'a Spanned<String>);
    let mut by_address: BTreeMap<(String, u16), Vec<Listener<'_>>> = BTreeMap::new();
    for (name, server) in servers {
        let Some(host) = raw
            .get(name.as_str())
            .and_then(|raw| raw.get_ref().host.as_ref())
        else {
            continue;
        };
        if host.get_ref().trim().is_empty() {
            continue;
        }
        for (port, what) in [
            (server.port, "port"),
            (server.agent_port, "agent_port"),
            (server.stream_port, "stream_port"),
        ] {
            by_address
                .entry((server.host.to_ascii_lowercase(), port))
                .or_default()
                .push((name.as_str(), what, host));
        }
    }
    for ((_, port), listeners) in by_address {
        if listeners.len() < 2 {
            continue;
        }
        let names: Vec<&str> = listeners.iter().map(|(name, _, _)| *name).collect();
        let message = if listeners.iter().all(|(_, what, _)| *what == "port") {
            format!(
                "servers {} share the address {}:{port}",
                list_in_backticks(names.iter().copied()),
                listeners[0].2.get_ref()
            )
        } else {
            format!(
                "{} would listen on the same port {}:{port}",
                list_in_backticks(names.iter().copied()),
                listeners[0].2.get_ref()
            )
        };
        let mut problem = Problem::new(ProblemKind::DuplicateAddress, message);
        for (name, what, host) in &listeners {
            let label = if *what == "port" {
                format!("`{name}` on port {port}")
            } else {
                format!("`{name}`'s {what} {port}")
            };
            problem = problem.label(host.span(), label);
        }
        problems.push(problem.help(
            "each server needs its own host:port, and its agent its own agent_port and stream_port; \
             on a shared host give each server its own ports",
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse;
    use super::*;

    fn topology(text: &str) -> Topology {
        parse(text, Path::new("/etc/flipover/shop.toml")).expect("valid topology")
    }

    #[test]
    fn builtin_defaults_apply_when_nothing_is_set() {
        let topology = topology(
            r#"
            [cluster]
            name = "shop"
            [servers.db1]
            host = "10.0.0.1"
            "#,
        );
        let db1 = &topology.servers["db1"];
        assert_eq!(
            (db1.port, db1.agent_port, db1.stream_port),
            (DEFAULT_PORT, DEFAULT_AGENT_PORT, DEFAULT_STREAM_PORT)
        );
        assert!(db1.promotable);
        assert_eq!(db1.source, None);
        assert_eq!(db1.clone_from, None);
        assert_eq!(topology.base_dir, Path::new("/etc/flipover"));
    }

    #[test]
    fn defaults_table_applies_and_servers_override_it() {
        let topology = topology(
            r#"
            [cluster]
            name = "shop"
            [defaults]
            port = 3307
            agent_port = 9000
            stream_port = 9001
            promotable = false
            [servers.db1]
            host = "10.0.0.1"
            promotable = true
            [servers.db2]
            host = "10.0.0.2"
            source = "db1"
            port = 3310
            stream_port = 9100
            "#,
        );
        let (db1, db2) = (&topology.servers["db1"], &topology.servers["db2"]);
        assert_eq!(
            (db1.port, db1.agent_port, db1.stream_port),
            (3307, 9000, 9001)
        );
        assert!(db1.promotable);
        assert_eq!(
            (db2.port, db2.agent_port, db2.stream_port),
            (3310, 9000, 9100)
        );
        assert!(!db2.promotable);
        assert_eq!(db2.source.as_deref(), Some("db1"));
    }

    #[test]
    fn donor_is_clone_from_else_source() {
        let topology = topology(
            r#"
            [cluster]
            name = "shop"
            [servers.db1]
            host = "h1"
            [servers.db2]
            host = "h2"
            source = "db1"
            [servers.db3]
            host = "h3"
            source = "db2"
            clone_from = "db1"
            "#,
        );
        let donor = |name: &str| topology.servers[name].donor();
        assert_eq!(donor("db1"), None);
        assert_eq!(donor("db2"), Some("db1"));
        assert_eq!(donor("db3"), Some("db1"));
    }

    #[test]
    fn access_defaults_and_secrets() {
        let defaults = topology(
            r#"
            [cluster]
            name = "shop"
            [servers.db1]
            host = "h"
            "#,
        );
        assert_eq!(
            defaults.access,
            Access {
                user: "flipover".into(),
                password: None,
                repl_user: "repl".into(),
                repl_password: None,
                agent_token: None,
                agent_tls: AgentTls::Unset,
            }
        );
        let explicit = topology(
            r#"
            [cluster]
            name = "shop"
            [access]
            user = "admin"
            password = "hunter2"
            repl_user = "replicator"
            repl_password = { env = "REPL_PASSWORD" }
            agent_token = { file = "secrets/agent.token" }
            ca = "tls/ca.pem"
            client_cert = "tls/flipover.pem"
            client_key = "tls/flipover-key.pem"
            [servers.db1]
            host = "h"
            "#,
        );
        assert_eq!(
            explicit.access,
            Access {
                user: "admin".into(),
                password: Some(Secret::Literal("hunter2".into())),
                repl_user: "replicator".into(),
                repl_password: Some(Secret::Env("REPL_PASSWORD".into())),
                agent_token: Some(Secret::File("secrets/agent.token".into())),
                agent_tls: AgentTls::Files {
                    ca: "tls/ca.pem".into(),
                    client_cert: "tls/flipover.pem".into(),
                    client_key: "tls/flipover-key.pem".into(),
                },
            }
        );
        let insecure = topology(
            "[cluster]\nname = \"shop\"\n[access]\ninsecure = true\n[servers.db1]\nhost = \"h\"\n",
        );
        assert_eq!(insecure.access.agent_tls, AgentTls::Insecure);
    }

    #[test]
    fn server_names() {
        for name in ["db1", "db-1.eu_west", "A"] {
            assert!(is_valid_server_name(name), "{name}");
        }
        for name in ["", "db 1", "db/1", "dé"] {
            assert!(!is_valid_server_name(name), "{name}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let error = parse(
            r#"
            [cluster]
            name = "shop"
            [servers.db1]
            host = ""
            source = "db1"
            [servers.db2]
            host = "h"
            source = "db9"
            "#,
            Path::new("t.toml"),
        )
        .unwrap_err();
        let kinds: Vec<ProblemKind> = error.problems().iter().map(Problem::kind).collect();
        assert_eq!(
            kinds,
            [
                ProblemKind::EmptyValue,
                ProblemKind::SelfReplication,
                ProblemKind::NoPrimary,
                ProblemKind::UnknownServer,
            ]
        );
    }
}
