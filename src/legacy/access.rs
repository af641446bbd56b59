//! The seed's credential flags as flipover's `[access]`.
//!
//! The seed had one account for the master (-U/-S) and one for the slave
//! (-u/-s). flipover connects to every server with one admin account (a
//! switchover or failover touches all of them in turn), so a slave account
//! is accepted only when it is that same account.

use std::path::Path;

use crate::secrets::{self, SecretError};
use crate::topology::{Access, AgentTls, Secret};

/// Where the agents' token is read from without a token file (as the agent itself does).
pub const AGENT_TOKEN_ENV: &str = "FLIPOVER_AGENT_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "-u/--slaveuser `{slave}` differs from -U/--user `{admin}`: flipover uses one admin \
         account for every server; give it with -U/-S (and -u/-s only if they are the same)"
    )]
    DifferentUser { admin: String, slave: String },
    #[error(
        "-s/--slavesecret differs from -S/--secret: flipover uses one admin account for every \
         server; give its password with -S (and -s only if it is the same)"
    )]
    DifferentPassword,
    #[error("cannot read the agent token: {0}")]
    Token(#[from] SecretError),
}

/// The seed's flags, as given. `slave_user`/`slave_password` are `Some` only
/// when given on the command line (their defaults mean "not given").
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub user: String,
    pub password: String,
    pub slave_user: Option<String>,
    pub slave_password: Option<String>,
    pub repl_user: String,
    pub repl_password: String,
    /// How to reach the agents (--agent-ca/--agent-cert/--agent-key).
    pub agent_tls: AgentTls,
}

/// `[access]` from the flags and the agents' token.
pub fn access(flags: &Flags, agent_token: Option<Secret>) -> Result<Access, AccessError> {
    if let Some(slave) = flags.slave_user.as_ref().filter(|u| **u != flags.user) {
        return Err(AccessError::DifferentUser {
            admin: flags.user.clone(),
            slave: slave.clone(),
        });
    }
    if flags
        .slave_password
        .as_ref()
        .is_some_and(|p| *p != flags.password)
    {
        return Err(AccessError::DifferentPassword);
    }
    Ok(Access {
        user: flags.user.clone(),
        password: Some(Secret::Literal(flags.password.clone())),
        repl_user: flags.repl_user.clone(),
        repl_password: Some(Secret::Literal(flags.repl_password.clone())),
        agent_token,
        agent_tls: flags.agent_tls.clone(),
    })
}

/// The agents' TLS from --agent-ca/--agent-cert/--agent-key (clap makes
/// them come together). Without them the agents are reached in plaintext,
/// as the seed's were: its command lines keep working, and the plan warns.
pub fn agent_tls(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> AgentTls {
    match (ca, cert, key) {
        (Some(ca), Some(cert), Some(key)) => {
            let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            AgentTls::Files {
                ca: absolute(ca),
                client_cert: absolute(cert),
                client_key: absolute(key),
            }
        }
        _ => AgentTls::Insecure,
    }
}

/// The agents' bearer token: the file's content (one trailing newline
/// dropped), else the environment's value; `None` without either.
pub fn agent_token(
    file: Option<&Path>,
    env: Option<String>,
) -> Result<Option<Secret>, AccessError> {
    // Read now, so a missing file is an error of the command line and not
    // "agent unreachable" on every server later.
    match file {
        Some(path) => Ok(Some(Secret::Literal(secrets::resolve_in(
            &Secret::File(path.to_path_buf()),
            Path::new("."),
        )?))),
        None => Ok(env.filter(|t| !t.is_empty()).map(Secret::Literal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags {
            user: "flipover".into(),
            password: "pw".into(),
            repl_user: "repl".into(),
            repl_password: "rpw".into(),
            ..Flags::default()
        }
    }

    #[test]
    fn one_admin_account_for_every_server() {
        let access = access(&flags(), None).unwrap();
        assert_eq!(access.user, "flipover");
        assert_eq!(access.password, Some(Secret::Literal("pw".into())));
        assert_eq!(access.repl_password, Some(Secret::Literal("rpw".into())));

        let same = Flags {
            slave_user: Some("flipover".into()),
            slave_password: Some("pw".into()),
            ..flags()
        };
        assert!(super::access(&same, None).is_ok());

        let other = Flags {
            slave_user: Some("root".into()),
            ..flags()
        };
        let error = super::access(&other, None).unwrap_err().to_string();
        assert!(error.contains("one admin account"), "{error}");
        let other = Flags {
            slave_password: Some("other".into()),
            ..flags()
        };
        assert!(matches!(
            super::access(&other, None),
            Err(AccessError::DifferentPassword)
        ));
    }

    #[test]
    fn token_from_file_before_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.token");
        std::fs::write(&path, "from-file\n").unwrap();
        assert_eq!(
            agent_token(Some(&path), Some("from-env".into())).unwrap(),
            Some(Secret::Literal("from-file".into()))
        );
        assert_eq!(
            agent_token(None, Some("from-env".into())).unwrap(),
            Some(Secret::Literal("from-env".into()))
        );
        assert_eq!(agent_token(None, None).unwrap(), None);
        assert!(agent_token(Some(&dir.path().join("missing")), None).is_err());
    }
}
