//! TLS for the agent API (836) and the backup stream (837): PEM files in,
//! rustls configurations out. Both sides use mutual TLS: the agent accepts
//! only clients whose certificate chains to its client CA, and clients only
//! agents whose certificate chains to the CA they were given.
//!
//! The crypto provider is passed explicitly (ring), never installed as a
//! process-wide default, so linking code cannot be surprised by it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("the {what} {path} holds no PEM {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("the certificate authority {path} is unusable: {message}")]
    BadCa { path: PathBuf, message: String },
    #[error("the TLS settings are unusable: {0}")]
    Config(String),
}

/// A certificate chain (leaf first) and its private key.
pub struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let certs = read_certs(cert, "certificate")?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Read {
            what: "private key",
            path: key.to_path_buf(),
            message: pem_error(e),
        })?;
        Ok(Identity { certs, key })
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certs", &self.certs.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Reads every certificate of a PEM file as trust anchors.
pub fn read_roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca, "certificate authority")? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: ca.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |message| TlsError::Read {
        what,
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_error(pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(pem_error(e)))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

/// rustls-pki-types reports a missing file as a PEM error wrapping the io error.
fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        other => other.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The agent's side: present `identity`, require a client certificate
/// chaining to `client_roots`.
pub fn server_config(
    identity: Identity,
    client_roots: RootCertStore,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.certs, identity.key)
        .map_err(|e| TlsError::Config(format!("certificate and key do not fit: {e}")))?;
    // No resumption tickets: connections are few and long, and a donor
    // never reads them (unread tickets turn a donor's exit into a reset).
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A client's side: trust `roots` only, present `identity`.
pub fn client_config(identity: Identity, roots: RootCertStore) -> Result<ClientConfig, TlsError> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(identity.certs, identity.key)
        .map_err(|e| TlsError::Config(format!("certificate and key do not fit: {e}")))
}

/// A client's side without a certificate of its own. Only for showing that
/// agents refuse such clients (tests); flipover always presents one.
pub fn client_config_without_certificate(roots: RootCertStore) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// How flipover talks to agents: mutual TLS, or plaintext when the operator
/// said so explicitly (`insecure`).
#[derive(Clone)]
pub enum Transport {
    Tls(Arc<ClientConfig>),
    Plaintext,
}

impl Transport {
    /// TLS from the three PEM files of `[access]` (or flipover-cmd's flags).
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Transport, TlsError> {
        let config = client_config(Identity::from_files(cert, key)?, read_roots(ca)?)?;
        Ok(Transport::Tls(Arc::new(config)))
    }

    /// The URL of the agent API at `host:port` over this transport.
    pub fn agent_url(&self, host: &str, port: u16) -> String {
        let scheme = match self {
            Transport::Tls(_) => "https",
            Transport::Plaintext => "http",
        };
        if host.contains(':') && !host.starts_with('[') {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tls(_) => "Tls",
            Transport::Plaintext => "Plaintext",
        })
    }
}
