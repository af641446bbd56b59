//! Writing a topology back as a topology file (`flipover import`).

use std::fmt::Write as _;

use super::model::{
    Access, AgentTls, Durability, Hooks, Secret, Topology, TopologyParts, DEFAULT_AGENT_PORT,
    DEFAULT_JOURNAL_KEEP_APPLIES, DEFAULT_MAX_REPLICA_LAG, DEFAULT_MAX_TRANSACTION_AGE,
    DEFAULT_PORT, DEFAULT_SEMI_SYNC_TIMEOUT, DEFAULT_STREAM_PORT, DEFAULT_SWITCHOVER_TIMEOUT,
};

/// The topology as TOML that `topology::parse` reads back to the same
/// topology: keys at their defaults are left out, servers in name order.
pub fn to_toml(topology: &Topology) -> String {
    parts_to_toml(&topology.to_parts())
}

/// The topology as the apply journal remembers it (the topology an apply
/// leaves, read back by discovery): a topology file of its cluster,
/// journal and servers, with the accounts' names but without their
/// secrets, the agents' TLS files or `[hooks]`, which belong to the
/// machine that ran flipover, not to the cluster.
pub fn to_memory_toml(topology: &Topology) -> String {
    let mut parts = topology.to_parts();
    parts.access = Access {
        user: parts.access.user,
        password: None,
        repl_user: parts.access.repl_user,
        repl_password: None,
        agent_token: None,
        agent_tls: AgentTls::Unset,
    };
    parts.hooks = Hooks::default();
    parts_to_toml(&parts)
}

/// [`to_toml`] of a topology's parts (checked or not yet).
pub(super) fn parts_to_toml(topology: &TopologyParts) -> String {
    let mut out = String::new();
    let cluster = &topology.cluster;
    let _ = writeln!(out, "[cluster]\nname = {}", quoted(&cluster.name));
    for (key, value, default) in [
        (
            "max_replica_lag",
            cluster.max_replica_lag,
            DEFAULT_MAX_REPLICA_LAG,
        ),
        (
            "max_transaction_age",
            cluster.max_transaction_age,
            DEFAULT_MAX_TRANSACTION_AGE,
        ),
        (
            "switchover_timeout",
            cluster.switchover_timeout,
            DEFAULT_SWITCHOVER_TIMEOUT,
        ),
    ] {
        if value != default {
            let _ = writeln!(out, "{key} = {value}");
        }
    }
    if cluster.durability != Durability::Async {
        let _ = writeln!(out, "durability = {}", quoted(cluster.durability.as_str()));
    }
    if cluster.semi_sync_timeout != DEFAULT_SEMI_SYNC_TIMEOUT {
        let _ = writeln!(out, "semi_sync_timeout = {}", cluster.semi_sync_timeout);
    }
    let access = &topology.access;
    let _ = writeln!(out, "\n[access]\nuser = {}", quoted(&access.user));
    if let Some(secret) = &access.password {
        let _ = writeln!(out, "password = {}", secret_toml(secret));
    }
    let _ = writeln!(out, "repl_user = {}", quoted(&access.repl_user));
    if let Some(secret) = &access.repl_password {
        let _ = writeln!(out, "repl_password = {}", secret_toml(secret));
    }
    if let Some(secret) = &access.agent_token {
        let _ = writeln!(out, "agent_token = {}", secret_toml(secret));
    }
    match &access.agent_tls {
        AgentTls::Files {
            ca,
            client_cert,
            client_key,
        } => {
            for (key, path) in [
                ("ca", ca),
                ("client_cert", client_cert),
                ("client_key", client_key),
            ] {
                let _ = writeln!(out, "{key} = {}", quoted(&path.display().to_string()));
            }
        }
        AgentTls::Insecure => {
            let _ = writeln!(out, "insecure = true");
        }
        AgentTls::Unset => {}
    }
    for server in topology.servers.values() {
        let _ = writeln!(
            out,
            "\n[servers.{}]\nhost = {}",
            table_key(&server.name),
            quoted(&server.host)
        );
        for (key, value, default) in [
            ("port", server.port, DEFAULT_PORT),
            ("agent_port", server.agent_port, DEFAULT_AGENT_PORT),
            ("stream_port", server.stream_port, DEFAULT_STREAM_PORT),
        ] {
            if value != default {
                let _ = writeln!(out, "{key} = {value}");
            }
        }
        if let Some(source) = &server.source {
            let _ = writeln!(out, "source = {}", quoted(source));
        }
        if let Some(donor) = &server.clone_from {
            let _ = writeln!(out, "clone_from = {}", quoted(donor));
        }
        if !server.promotable {
            let _ = writeln!(out, "promotable = false");
        }
    }
    if topology.journal.keep_applies != DEFAULT_JOURNAL_KEEP_APPLIES {
        let _ = writeln!(
            out,
            "\n[journal]\nkeep_applies = {}",
            topology.journal.keep_applies
        );
    }
    if !topology.hooks.is_empty() {
        let _ = writeln!(out, "\n[hooks]");
        for (event, commands) in &topology.hooks.commands {
            if commands.is_empty() {
                continue;
            }
            // Every command as a table with its own timeout, so that no
            // `timeout` default has to be reconstructed.
            let commands: Vec<String> = commands
                .iter()
                .map(|command| {
                    let argv: Vec<String> = command.argv.iter().map(|a| quoted(a)).collect();
                    format!(
                        "{{ command = [{}], timeout = {} }}",
                        argv.join(", "),
                        command.timeout_seconds
                    )
                })
                .collect();
            let _ = writeln!(out, "{} = [{}]", event.as_str(), commands.join(", "));
        }
    }
    out
}

/// A bare key where TOML allows one; names with dots (an IP address) quoted.
fn table_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        quoted(name)
    }
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn secret_toml(secret: &Secret) -> String {
    match secret {
        Secret::Literal(value) => quoted(value),
        Secret::Env(var) => format!("{{ env = {} }}", quoted(var)),
        Secret::File(path) => format!("{{ file = {} }}", quoted(&path.display().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse;
    use super::*;

    #[test]
    fn what_is_written_parses_back_to_the_same_topology() {
        let text = r#"
            [cluster]
            name = "shop"
            max_replica_lag = 3

            [access]
            user = "admin"
            password = { env = "PW" }
            repl_password = { file = "secrets/repl" }
            agent_token = "t0ken"

            [servers.db1]
            host = "10.0.0.1"
            agent_port = 8836

            [journal]
            keep_applies = 7

            [servers."db2.example"]
            host = "10.0.0.2"
            port = 3307
            source = "db1"
            clone_from = "db1"
            promotable = false
        "#;
        let topology = parse(text, Path::new("/etc/flipover/shop.toml")).unwrap();
        let written = to_toml(&topology);
        let again = parse(&written, Path::new("/etc/flipover/shop.toml")).unwrap();
        assert_eq!(again, topology, "{written}");

        // The journal's memory keeps the tree, not the secrets.
        let memory = to_memory_toml(&topology);
        assert!(
            !memory.contains("t0ken") && !memory.contains("PW"),
            "{memory}"
        );
        let remembered = parse(&memory, Path::new("journal")).unwrap();
        assert_eq!(remembered.servers(), topology.servers());
        assert_eq!(remembered.cluster(), topology.cluster());
        assert_eq!(remembered.journal(), topology.journal());
        assert_eq!(remembered.access().user, "admin");
    }
}
