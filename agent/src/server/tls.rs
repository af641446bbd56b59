//! Serving over TLS: the API's listener, and the acceptor and connector of
//! the backup stream. Built once at startup from --tls-cert, --tls-key and
//! --client-ca; every peer must present a certificate chaining to the CA.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flipover_agent::tls::{self, Identity, TlsError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::warn;

/// A peer must finish its handshake within this; a stalled one is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent's TLS: as a server (API and stream) and as the donor's client.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

impl ServerTls {
    pub fn load(cert: &Path, key: &Path, client_ca: &Path) -> Result<ServerTls, TlsError> {
        let identity = Identity::from_files(cert, key)?;
        let roots = tls::read_roots(client_ca)?;
        let server = tls::server_config(identity.clone(), roots.clone())?;
        let client = tls::client_config(identity, roots)?;
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(server),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

/// The API's listener for axum: handshakes run in their own tasks, so a
/// slow or hostile client cannot hold up the others, and only connections
/// whose client certificate checked out reach the HTTP server.
pub struct TlsListener {
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, handshaken) = mpsc::channel(64);
        let accept_loop = tokio::spawn(async move {
            loop {
                let (socket, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Per-connection failures (fd limits, aborted
                        // connections) must not end the loop.
                        warn!(error = %e, "accepting an API connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            warn!(%peer, error = %e, "TLS handshake on the API failed; connection dropped")
                        }
                        Err(_) => {
                            warn!(%peer, "no TLS handshake on the API within {}s; connection dropped", HANDSHAKE_TIMEOUT.as_secs())
                        }
                    }
                });
            }
        });
        Ok(TlsListener {
            handshaken,
            local,
            accept_loop,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
