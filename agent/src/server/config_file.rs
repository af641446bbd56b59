//! `--config FILE`: the agent's flags written as a TOML file, for the
//! service unit (`/etc/flipover/agent.toml`).
//!
//! The file's keys are the long flag names (`token_file` or `token-file`),
//! so every flag works in the file without code of its own: the file is
//! turned into command-line arguments that clap then parses together with
//! the real ones. Flags given on the command line win over the file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, CommandFactory};
use toml::Spanned;

use super::args::Args;

/// The flag naming the file (it cannot appear in the file itself).
const CONFIG_FLAG: &str = "config";

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error(
        "{path}:{line}: unknown key `{key}`: the keys are the long flag names of \
         `flipover-agent --help` (e.g. listen, token_file)"
    )]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
    },
    #[error("{path}:{line}: `{key}` {problem}")]
    BadValue {
        path: PathBuf,
        line: usize,
        key: String,
        problem: String,
    },
}

/// A command line with the config file's arguments in it.
#[derive(Debug)]
pub struct Merged {
    pub argv: Vec<OsString>,
    /// The config file read, if any (for error messages).
    pub file: Option<PathBuf>,
}

/// The command line `argv` with the arguments of the `--config` file it
/// names (if any) put in front of its own. A flag given on the command line
/// takes precedence: the file's value for it is left out.
pub fn merge(argv: Vec<OsString>) -> Result<Merged, ConfigFileError> {
    let command = Args::command();
    // A lenient first look, only to learn --config and which flags the
    // command line sets. Errors (and --help) are for the real parse.
    let Ok(matches) = command
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&argv)
    else {
        return Ok(Merged { argv, file: None });
    };
    let Some(path) = matches.get_one::<PathBuf>(CONFIG_FLAG).cloned() else {
        return Ok(Merged { argv, file: None });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigFileError::Read {
        path: path.clone(),
        source,
    })?;
    let from_file = file_arguments(&path, &text, &command, |id| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    })?;
    let mut merged = Vec::with_capacity(argv.len() + from_file.len());
    let mut argv = argv.into_iter();
    merged.extend(argv.next());
    merged.extend(from_file.into_iter().map(OsString::from));
    merged.extend(argv);
    Ok(Merged {
        argv: merged,
        file: Some(path),
    })
}

/// The arguments `text` (the file at `path`) stands for, leaving out the
/// flags for which `given` is true.
fn file_arguments(
    path: &Path,
    text: &str,
    command: &clap::Command,
    given: impl Fn(&str) -> bool,
) -> Result<Vec<String>, ConfigFileError> {
    let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| ConfigFileError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut arguments = Vec::new();
    for (key, value) in &table {
        let line = line_of(text, key.span().start);
        let name = key.get_ref().replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && name != CONFIG_FLAG)
            .filter(|a| !is_builtin(a))
            .ok_or_else(|| ConfigFileError::UnknownKey {
                path: path.to_path_buf(),
                line,
                key: key.get_ref().clone(),
            })?;
        if given(arg.get_id().as_str()) {
            continue;
        }
        let bad_value = |problem: &str| ConfigFileError::BadValue {
            path: path.to_path_buf(),
            line: line_of(text, value.span().start),
            key: key.get_ref().clone(),
            problem: problem.to_string(),
        };
        let flag = format!("--{name}");
        match (arg.get_action(), value.get_ref()) {
            (ArgAction::SetTrue, toml::Value::Boolean(on)) => {
                if *on {
                    arguments.push(flag);
                }
            }
            (ArgAction::SetTrue, _) => return Err(bad_value("is a switch: true or false")),
            (ArgAction::Append, toml::Value::Array(items)) => {
                for item in items {
                    let item = scalar(item)
                        .ok_or_else(|| bad_value("takes a list of strings or numbers"))?;
                    arguments.push(format!("{flag}={item}"));
                }
            }
            (ArgAction::Set | ArgAction::Append, value) => {
                let value = scalar(value).ok_or_else(|| bad_value("takes a string or a number"))?;
                // `--flag=value`, so a value starting with '-' stays a value.
                arguments.push(format!("{flag}={value}"));
            }
            (action, _) => {
                return Err(bad_value(&format!(
                    "cannot be set in the config file ({action:?} flag)"
                )))
            }
        }
    }
    Ok(arguments)
}

/// --help, --version and hidden actions such as --write-man-page: not settings.
fn is_builtin(arg: &Arg) -> bool {
    arg.is_hide_set() || matches!(arg.get_action(), ArgAction::Help | ArgAction::Version)
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use clap::Parser;

    use super::*;

    fn write_config(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap().to_string();
        (dir, path)
    }

    fn parse(argv: &[&str]) -> Result<Args, ConfigFileError> {
        let argv = std::iter::once("flipover-agent")
            .chain(argv.iter().copied())
            .map(OsString::from)
            .collect();
        Ok(Args::try_parse_from(merge(argv)?.argv).expect("clap accepts the merged arguments"))
    }

    #[test]
    fn file_keys_are_long_flag_names_with_dashes_or_underscores() {
        let (_dir, path) = write_config(
            "listen = \"127.0.0.1:9836\"\ntoken_file = \"/etc/t\"\n\
             backup-user = \"mariabackup\"\nsupervise = true\nconf = \"/etc/mysql/my.cnf\"\n",
        );
        let args = parse(&["--config", &path]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:9836".parse::<SocketAddr>().unwrap());
        assert_eq!(args.token_file, Some(PathBuf::from("/etc/t")));
        assert_eq!(args.backup_user, "mariabackup");
        assert!(args.supervise);
        assert_eq!(args.conf, PathBuf::from("/etc/mysql/my.cnf"));
        assert_eq!(
            args.service, "mariadb",
            "defaults stay for keys not in the file"
        );
    }

    #[test]
    fn command_line_wins_over_the_file() {
        let (_dir, path) =
            write_config("listen = \"127.0.0.1:9836\"\nservice = \"mysql\"\nsupervise = false\n");
        let args = parse(&["--listen=127.0.0.2:1", "--config", &path, "--supervise"]).unwrap();
        assert_eq!(args.listen, "127.0.0.2:1".parse::<SocketAddr>().unwrap());
        assert_eq!(args.service, "mysql");
        assert!(args.supervise);
        // Short flags count as given too.
        let args = parse(&["-s", "mariadb", "--config", &path]).unwrap();
        assert_eq!(args.service, "mariadb");
    }

    #[test]
    fn false_switch_is_left_out() {
        let (_dir, path) = write_config("supervise = false\n");
        assert!(!parse(&["--config", &path]).unwrap().supervise);
    }

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let (_dir, path) = write_config("listen = \"127.0.0.1:1\"\n\ntoken_fil = \"/t\"\n");
        let err = parse(&["--config", &path]).unwrap_err();
        assert!(
            matches!(err, ConfigFileError::UnknownKey { line: 3, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("`token_fil`"), "{message}");
        assert!(message.contains(&format!("{path}:3")), "{message}");
    }

    #[test]
    fn the_file_cannot_name_itself_or_help() {
        for key in ["config", "help", "version", "write_man_page"] {
            let (_dir, path) = write_config(&format!("{key} = true\n"));
            let err = parse(&["--config", &path]).unwrap_err();
            assert!(
                matches!(err, ConfigFileError::UnknownKey { .. }),
                "{key}: {err:?}"
            );
        }
    }

    #[test]
    fn wrong_value_types_are_errors() {
        let (_dir, path) = write_config("supervise = \"yes\"\n");
        let err = parse(&["--config", &path]).unwrap_err().to_string();
        assert!(err.contains("`supervise` is a switch"), "{err}");
        let (_dir, path) = write_config("\nlisten = true\n");
        let err = parse(&["--config", &path]).unwrap_err().to_string();
        assert!(err.contains(":2: `listen` takes a string"), "{err}");
    }

    #[test]
    fn missing_file_and_bad_toml_are_errors() {
        let err = parse(&["--config", "/nonexistent/agent.toml"]).unwrap_err();
        assert!(matches!(err, ConfigFileError::Read { .. }), "{err:?}");
        let (_dir, path) = write_config("listen = \n");
        let err = parse(&["--config", &path]).unwrap_err();
        assert!(matches!(err, ConfigFileError::Syntax { .. }), "{err:?}");
    }

    #[test]
    fn without_config_the_command_line_is_unchanged() {
        let argv: Vec<OsString> = ["flipover-agent", "--listen", "127.0.0.1:1"]
            .map(OsString::from)
            .to_vec();
        let merged = merge(argv.clone()).unwrap();
        assert_eq!((merged.argv, merged.file), (argv, None));
    }

    /// The file the Debian package installs as /etc/flipover/agent.toml.
    #[test]
    fn packaged_default_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/agent.toml");
        let args = parse(&["--config", path]).unwrap();
        assert_eq!(args.listen, "0.0.0.0:836".parse::<SocketAddr>().unwrap());
        assert_eq!(
            args.token_file,
            Some(PathBuf::from("/etc/flipover/agent.token"))
        );
    }
}
