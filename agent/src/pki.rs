//! A small certificate authority for users without a PKI: one CA, a
//! certificate per database host (serverAuth for the agent API and the
//! stream port, clientAuth because a donor agent is the TLS client of the
//! target agent) and a client certificate for flipover. Used by
//! `flipover certs init`, the sandbox and tests.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Certificates are valid from January 1st of this year for this many years.
const VALID_YEARS: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("`{0}` is not usable as a host name or IP address in a certificate")]
    BadName(String),
    #[error("generating a certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A PEM certificate and its PEM private key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What a certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A database host's agent: server and (as a donor) client.
    Host,
    /// flipover itself, a client of the agents.
    Client,
}

/// A freshly generated CA that can issue certificates.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl Authority {
    /// A new self-signed CA named `name`.
    pub fn generate(name: &str) -> Result<Authority, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Authority {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A certificate for `names` (host names or IP addresses; the first is
    /// also the common name). A client certificate may have no names but
    /// its common name.
    pub fn issue(&self, common: &str, names: &[String], role: Role) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(common);
        params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match role {
            Role::Host => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*');
    if !valid {
        return Err(PkiError::BadName(name.to_string()));
    }
    Ok(SanType::DnsName(
        name.try_into()
            .map_err(|_| PkiError::BadName(name.to_string()))?,
    ))
}

/// From January 1st of the current year, so a clock a little behind on
/// another host still accepts a certificate made today.
fn set_validity(params: &mut CertificateParams) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days to the civil year is close enough: the bound is January 1st.
    let year = 1970 + (secs / 31_556_952) as i32;
    params.not_before = date_time_ymd(year, 1, 1);
    params.not_after = date_time_ymd(year + VALID_YEARS, 1, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_ip_or_dns_sans() {
        assert!(matches!(san("127.0.0.1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(san("::1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(san("db1.example.com"), Ok(SanType::DnsName(_))));
        assert!(matches!(san("bad name"), Err(PkiError::BadName(_))));
        assert!(matches!(san(""), Err(PkiError::BadName(_))));
    }

    #[test]
    fn issued_certificates_load_into_rustls() {
        let ca = Authority::generate("test CA").unwrap();
        let host = ca
            .issue("db1", &["db1".into(), "127.0.0.1".into()], Role::Host)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (ca_path, cert, key) = (
            write("ca.pem", ca.cert_pem()),
            write("db1.pem", &host.cert_pem),
            write("db1-key.pem", &host.key_pem),
        );
        let identity = crate::tls::Identity::from_files(&cert, &key).unwrap();
        let roots = crate::tls::read_roots(&ca_path).unwrap();
        crate::tls::server_config(identity.clone(), roots.clone()).unwrap();
        crate::tls::client_config(identity, roots).unwrap();
    }
}
