//! Building agent clients from the topology's access settings.

use std::time::Duration;

use flipover_agent::client::AgentClient;

use crate::topology::{SecretError, Server, Topology};

/// A client for `server`'s agent, authenticated with the topology's agent token.
pub fn client_for(
    topology: &Topology,
    server: &Server,
    timeout: Duration,
) -> Result<AgentClient, SecretError> {
    let token = topology.resolve_secret(topology.access.agent_token.as_ref())?;
    Ok(AgentClient::new(&server.agent_url(), &token, timeout))
}
