//! `flipover certs init`: a CA and the certificates mutual TLS between
//! flipover and its agents needs, for users without a PKI. One certificate
//! per database host (its name or IP as the subject alternative name; both
//! serverAuth and clientAuth, since a donor agent is the TLS client of the
//! target agent) and one client certificate for flipover itself.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flipover_agent::pki::{Authority, PkiError, Role};

/// File names in the certificate directory.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const CLIENT_CERT: &str = "flipover.pem";
pub const CLIENT_KEY: &str = "flipover-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("no host to make a certificate for")]
    NoHosts,
    #[error("refusing to overwrite {}", list(.0))]
    Exists(Vec<PathBuf>),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A host's certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFiles {
    pub host: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything `init` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub hosts: Vec<HostFiles>,
}

impl Written {
    /// Every file, for listing.
    pub fn files(&self) -> Vec<&Path> {
        let mut files = vec![
            self.ca.as_path(),
            self.ca_key.as_path(),
            self.client_cert.as_path(),
            self.client_key.as_path(),
        ];
        for host in &self.hosts {
            files.push(&host.cert);
            files.push(&host.key);
        }
        files
    }
}

/// Where `host`'s certificate and key go in `dir` (`HOST.pem`, `HOST-key.pem`).
pub fn host_files(dir: &Path, host: &str) -> HostFiles {
    // Host names and IPs are file-name safe but for an IPv6 address's colons.
    let stem = host.replace(':', "_");
    HostFiles {
        host: host.to_string(),
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}-key.pem")),
    }
}

/// Creates `dir` and writes a new CA, one certificate per host of `hosts`
/// (duplicates ignored) and flipover's client certificate. Keys are 0600.
/// Nothing is written when a file exists, unless `force`.
pub fn init(dir: &Path, hosts: &[String], force: bool) -> Result<Written, CertsError> {
    let mut unique: Vec<String> = Vec::new();
    for host in hosts {
        if !unique.contains(host) {
            unique.push(host.clone());
        }
    }
    if unique.is_empty() {
        return Err(CertsError::NoHosts);
    }
    let written = Written {
        ca: dir.join(CA_CERT),
        ca_key: dir.join(CA_KEY),
        client_cert: dir.join(CLIENT_CERT),
        client_key: dir.join(CLIENT_KEY),
        hosts: unique.iter().map(|h| host_files(dir, h)).collect(),
    };
    if !force {
        let existing: Vec<PathBuf> = written
            .files()
            .into_iter()
            .filter(|p| p.exists())
            .map(Path::to_path_buf)
            .collect();
        if !existing.is_empty() {
            return Err(CertsError::Exists(existing));
        }
    }
    // Generate everything before writing anything, so a bad host name
    // leaves no half-made directory behind.
    let authority = Authority::generate("flipover CA")?;
    let client = authority.issue("flipover", &[], Role::Client)?;
    let issued = unique
        .iter()
        .map(|host| authority.issue(host, std::slice::from_ref(host), Role::Host))
        .collect::<Result<Vec<_>, _>>()?;

    std::fs::create_dir_all(dir).map_err(|source| CertsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write_file(&written.ca, authority.cert_pem(), 0o644, force)?;
    write_file(&written.ca_key, authority.key_pem(), 0o600, force)?;
    write_file(&written.client_cert, &client.cert_pem, 0o644, force)?;
    write_file(&written.client_key, &client.key_pem, 0o600, force)?;
    for (files, issued) in written.hosts.iter().zip(&issued) {
        write_file(&files.cert, &issued.cert_pem, 0o644, force)?;
        write_file(&files.key, &issued.key_pem, 0o600, force)?;
    }
    Ok(written)
}

/// Writes with `mode` from the start (a key is never readable by others,
/// not even briefly); without `force` the file must be new.
fn write_file(path: &Path, text: &str, mode: u32, force: bool) -> Result<(), CertsError> {
    let error = |source| CertsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(error)?;
    // An existing file kept its old mode: set it.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(error)?;
    file.write_all(text.as_bytes()).map_err(error)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_a_ca_hosts_and_a_client_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tls");
        let hosts = vec![
            "db1.example".to_string(),
            "10.0.0.2".into(),
            "db1.example".into(),
        ];
        let written = init(&out, &hosts, false).unwrap();
        assert_eq!(written.hosts.len(), 2);
        assert_eq!(written.hosts[1].cert, out.join("10.0.0.2.pem"));
        for file in written.files() {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            let expected = if file.to_string_lossy().ends_with("-key.pem") {
                0o600
            } else {
                0o644
            };
            assert_eq!(mode, expected, "{}", file.display());
        }
        // The files load as flipover's client TLS.
        flipover_agent::tls::Transport::from_files(
            &written.ca,
            &written.client_cert,
            &written.client_key,
        )
        .unwrap();

        // A second run refuses, and changes nothing; --force overwrites.
        let before = std::fs::read(&written.ca).unwrap();
        let error = init(&out, &hosts, false).unwrap_err();
        assert!(
            matches!(error, CertsError::Exists(ref e) if e.len() == 8),
            "{error}"
        );
        assert_eq!(std::fs::read(&written.ca).unwrap(), before);
        init(&out, &hosts, true).unwrap();
        assert_ne!(std::fs::read(&written.ca).unwrap(), before);
    }

    #[test]
    fn a_bad_host_name_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tls");
        let error = init(&out, &["db1".into(), "bad name".into()], false).unwrap_err();
        assert!(error.to_string().contains("bad name"), "{error}");
        assert!(!out.exists());
        assert!(matches!(init(&out, &[], false), Err(CertsError::NoHosts)));
    }
}
