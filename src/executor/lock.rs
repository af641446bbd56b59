//! The cluster lock: one apply at a time per cluster, held on the servers
//! themselves (`GET_LOCK` on every reachable server for the whole apply), so
//! two operators on two machines cannot run applies over each other. A lock
//! dies with its connection: a killed apply never leaves it behind.

use std::time::Duration;

use crate::db::{self, Connection, DbError, Endpoint};
use crate::observe::Observed;
use crate::sql;
use crate::topology::Topology;

/// The locks this apply holds, one connection per server.
pub struct ClusterLock {
    connections: Vec<Connection>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another apply holds the lock of cluster {cluster} on {server}: {holder}")]
    Held {
        cluster: String,
        server: String,
        holder: String,
    },
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Takes the cluster's lock on every server that answered at observation.
/// Fails at once, without waiting, when any server has it held elsewhere.
pub async fn acquire(
    topology: &Topology,
    observed: &Observed,
    timeout: Duration,
) -> Result<ClusterLock, LockError> {
    let name = sql::lock::name(&topology.cluster().name);
    let password = crate::secrets::resolve(topology, topology.access().password.as_ref())?;
    let mut lock = ClusterLock {
        connections: Vec::new(),
    };
    for server in topology.servers().values() {
        if !observed
            .servers
            .get(&server.name)
            .is_some_and(|s| s.mysql.reachable)
        {
            continue;
        }
        let endpoint = Endpoint {
            host: server.host.clone(),
            port: server.port,
            user: topology.access().user.clone(),
            password: password.clone(),
            socket: None,
        };
        // A server that went away since observation is the steps' business.
        let Ok(mut conn) = db::connect(&endpoint, timeout).await else {
            continue;
        };
        let got = conn
            .first_row(&sql::lock::try_acquire(&name))
            .await?
            .and_then(|row| sql::column(&row, "got").map(str::to_string));
        if got.as_deref() == Some("1") {
            lock.connections.push(conn);
            continue;
        }
        let holder = describe_holder(&mut conn, &name).await;
        conn.close().await;
        lock.release().await;
        return Err(LockError::Held {
            cluster: topology.cluster().name.clone(),
            server: server.name.clone(),
            holder,
        });
    }
    Ok(lock)
}

/// "connection 42 of flipover@127.0.0.1:40312, for 12 s".
async fn describe_holder(conn: &mut Connection, name: &str) -> String {
    match conn.first_row(&sql::lock::holder(name)).await {
        Ok(Some(row)) => format!(
            "connection {} of {}@{}, for {} s",
            sql::column(&row, "id").unwrap_or("?"),
            sql::column(&row, "user").unwrap_or("?"),
            sql::column(&row, "host").unwrap_or("?"),
            sql::column(&row, "time").unwrap_or("?"),
        ),
        _ => "a session that just ended (try again)".to_string(),
    }
}

/// How long a statement of the lock or the journal waits for a server that
/// stopped answering mid-apply (its link down) before giving up on it.
pub(crate) const SILENT_SERVER_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

impl ClusterLock {
    /// The connections holding the lock (the journal writes through them).
    pub fn into_connections(self) -> Vec<Connection> {
        self.connections
    }

    pub fn from_connections(connections: Vec<Connection>) -> ClusterLock {
        ClusterLock { connections }
    }

    /// Releases every lock (closing the connection would too). A server
    /// whose link went down does not answer: it gets a few seconds, then its
    /// connection is dropped (the server releases the lock when it notices).
    pub async fn release(self) {
        for mut conn in self.connections {
            let released = async {
                let _ = conn.execute(sql::lock::RELEASE_ALL).await;
                conn.close().await;
            };
            let _ = tokio::time::timeout(SILENT_SERVER_LIMIT, released).await;
        }
    }
}
