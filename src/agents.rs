//! Reaching the agents: their TLS settings read from the files `[access]`
//! names (or plaintext when it says `insecure = true`), and authenticated
//! clients built from them. Observation and the executor both get their
//! agent clients here, as they get their MySQL connections from `db`.

use std::time::Duration;

use flipover_agent::client::AgentClient;
use flipover_agent::tls::Transport;

use crate::secrets::{self, SecretError};
use crate::topology::{AgentTls, Server, Topology};

/// Why flipover cannot talk to the agents.
#[derive(Debug, thiserror::Error)]
pub enum AgentAccessError {
    #[error(
        "no TLS settings for the agents: set `ca`, `client_cert` and `client_key` in [access] \
         (`flipover certs init` makes them), or `insecure = true` for agents started with --insecure"
    )]
    NoTls,
    #[error(transparent)]
    Tls(#[from] flipover_agent::tls::TlsError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Client(String),
}

/// How to reach the agents: TLS settings read from their files, or
/// plaintext when the topology says `insecure = true`.
pub fn transport(topology: &Topology) -> Result<Transport, AgentAccessError> {
    let base_dir = topology.base_dir();
    match &topology.access().agent_tls {
        AgentTls::Files {
            ca,
            client_cert,
            client_key,
        } => Ok(Transport::from_files(
            &base_dir.join(ca),
            &base_dir.join(client_cert),
            &base_dir.join(client_key),
        )?),
        AgentTls::Insecure => Ok(Transport::Plaintext),
        AgentTls::Unset => Err(AgentAccessError::NoTls),
    }
}

/// A client for `server`'s agent: over mutual TLS with the topology's CA and
/// client certificate (or plaintext when it says `insecure = true`),
/// authenticated with its agent token.
pub fn client_for(
    topology: &Topology,
    server: &Server,
    timeout: Duration,
) -> Result<AgentClient, AgentAccessError> {
    let token = secrets::resolve(topology, topology.access().agent_token.as_ref())?;
    let transport = transport(topology)?;
    let url = transport.agent_url(&server.host, server.agent_port);
    AgentClient::over(&transport, &url, &token, timeout)
        .map_err(|e| AgentAccessError::Client(e.to_string()))
}
