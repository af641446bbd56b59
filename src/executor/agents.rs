//! Building agent clients from the topology's access settings.

use std::time::Duration;

use flipover_agent::client::AgentClient;

use crate::topology::{AgentAccessError, Server, Topology};

/// A client for `server`'s agent: over mutual TLS with the topology's CA and
/// client certificate (or plaintext when it says `insecure = true`),
/// authenticated with its agent token.
pub fn client_for(
    topology: &Topology,
    server: &Server,
    timeout: Duration,
) -> Result<AgentClient, AgentAccessError> {
    let token = topology.resolve_secret(topology.access.agent_token.as_ref())?;
    let transport = topology.agent_transport()?;
    let url = transport.agent_url(&server.host, server.agent_port);
    AgentClient::over(&transport, &url, &token, timeout)
        .map_err(|e| AgentAccessError::Client(e.to_string()))
}
