//! How the agent reaches its own mysqld: the socket and port the my.cnf's
//! server groups name, given explicitly to every local client.
//!
//! Client tools (mariadb-backup among them) read `[client]`-style groups
//! only; on a host whose my.cnf names the socket under `[mysqld]` alone
//! they would try their compiled-in socket and fail, or worse reach
//! another server there. So the agent never relies on a tool's defaults.

use std::path::PathBuf;

use flipover_agent::protocol::MysqldSettings;

/// The port a server listens on when the my.cnf names none.
const DEFAULT_PORT: u16 = 3306;

/// The local server's addresses, as its own config gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalServer {
    pub socket: PathBuf,
    pub port: u16,
}

impl LocalServer {
    /// From the settings of the server groups (which always carry a socket:
    /// the config's, or the server's compiled-in default).
    pub fn from_settings(settings: &MysqldSettings) -> LocalServer {
        LocalServer {
            socket: PathBuf::from(
                settings
                    .socket
                    .clone()
                    .unwrap_or_else(|| flipover_agent::mycnf::DEFAULT_SOCKET.to_string()),
            ),
            port: settings.port.unwrap_or(DEFAULT_PORT),
        }
    }

    /// `--socket=…` and `--port=…` for a client tool; they go after its
    /// `--defaults-file` (which must come first), and win over the file.
    pub fn tool_args(&self) -> [String; 2] {
        [
            format!("--socket={}", self.socket.display()),
            format!("--port={}", self.port),
        ]
    }

    /// mysql_async options logging in as `user` over the socket.
    pub fn opts(&self, user: &str, password: Option<&str>) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .user(Some(user.to_string()))
            .pass(password.map(str::to_string))
            .socket(Some(self.socket.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_args_name_the_socket_and_port() {
        let settings = MysqldSettings {
            socket: Some("/srv/db/mysqld.sock".to_string()),
            port: Some(3307),
            ..MysqldSettings::default()
        };
        let local = LocalServer::from_settings(&settings);
        assert_eq!(
            local.tool_args(),
            ["--socket=/srv/db/mysqld.sock", "--port=3307"]
        );
        let default = LocalServer::from_settings(&MysqldSettings::default());
        assert_eq!(
            default.tool_args(),
            ["--socket=/run/mysqld/mysqld.sock", "--port=3306"]
        );
    }
}
