//! A my.cnf parser that reads option files the way mysqld/mariadbd does
//! (mysys `my_default.c`), so the agent sees the same datadir, pid file and
//! socket as the server it controls.
//!
//! Parsing keeps every option in file order together with its group;
//! [`MyCnf::server_options`] then merges the groups the server reads,
//! later occurrences winning.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::protocol::MysqldSettings;

/// Where mysqld keeps its data when the config does not say.
pub const DEFAULT_DATADIR: &str = "/var/lib/mysql";
/// Debian's compiled-in socket path.
pub const DEFAULT_SOCKET: &str = "/run/mysqld/mysqld.sock";

/// The server refuses deeper include nesting; so do we.
const MAX_INCLUDE_DEPTH: usize = 10;

/// Groups every MariaDB/MySQL server version reads.
const SERVER_GROUPS: &[&str] = &["mysqld", "server", "mariadb", "mariadbd", "client-server"];
/// Prefixes of the version-specific groups, e.g. `[mariadb-10.11]`.
const VERSIONED_GROUP_PREFIXES: &[&str] = &["mysqld", "mariadb", "mariadbd"];

/// Real server options whose own name starts with `skip_`; for these the
/// prefix is not a negation (the server looks up exact names first too).
const SKIP_NAMED_OPTIONS: &[&str] = &[
    "skip_grant_tables",
    "skip_name_resolve",
    "skip_networking",
    "skip_show_database",
    "skip_slave_start",
];

/// Option names that are aliases of another; stored under the canonical name
/// so "later wins" holds across spellings.
const ALIASES: &[(&str, &str)] = &[("log_replica_updates", "log_slave_updates")];

#[derive(Debug, thiserror::Error)]
pub enum MyCnfError {
    #[error("cannot read option file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("include loop: {path} includes itself (via {chain})")]
    IncludeLoop { path: PathBuf, chain: String },
    #[error("{path}: includes nested deeper than {MAX_INCLUDE_DEPTH} levels")]
    TooDeep { path: PathBuf },
}

/// One `key[=value]` line, as written, with the group it appeared in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOption {
    /// Group name, lowercased (the server matches groups case-insensitively).
    pub group: String,
    pub key: String,
    /// None for a bare flag such as `log-bin`.
    pub value: Option<String>,
    pub file: PathBuf,
    pub line: usize,
}

/// A parsed option file with all its includes, options in reading order.
#[derive(Debug, Clone, Default)]
pub struct MyCnf {
    pub path: PathBuf,
    pub options: Vec<RawOption>,
}

impl MyCnf {
    /// Reads `path` and everything it includes.
    pub fn load(path: &Path) -> Result<MyCnf, MyCnfError> {
        let mut cnf = MyCnf {
            path: path.to_path_buf(),
            options: Vec::new(),
        };
        let mut stack = Vec::new();
        read_file(path, &mut stack, &mut cnf.options)?;
        Ok(cnf)
    }

    /// Parses option-file text as if it were the file `origin` (which need
    /// not exist): relative includes resolve against `origin`'s directory.
    pub fn parse_str(text: &str, origin: &Path) -> Result<MyCnf, MyCnfError> {
        let mut cnf = MyCnf {
            path: origin.to_path_buf(),
            options: Vec::new(),
        };
        let mut stack = Vec::new();
        parse_text(text, origin, &mut stack, &mut cnf.options)?;
        Ok(cnf)
    }

    /// The effective server options: the server groups merged in file order,
    /// keys normalized (see [`normalize_key`]), later occurrences winning.
    /// `version` (major, minor) selects the `[mariadb-X.Y]`-style groups.
    pub fn server_options(&self, version: Option<(u32, u32)>) -> BTreeMap<String, Option<String>> {
        let groups = server_groups(version);
        let mut merged = BTreeMap::new();
        for opt in self.options.iter().filter(|o| groups.contains(&o.group)) {
            match normalize_key(&opt.key) {
                Normalized::Set(key) => {
                    merged.insert(key, opt.value.clone());
                }
                Normalized::Enable(key) => {
                    merged.insert(key, None);
                }
                Normalized::Disable(key) if key == "log_bin" => {
                    // `skip-log-bin` turns binary logging off entirely.
                    merged.remove(&key);
                }
                Normalized::Disable(key) => {
                    merged.insert(key, Some("0".to_string()));
                }
            }
        }
        merged
    }

    /// The datadir the server would use.
    pub fn datadir(&self, version: Option<(u32, u32)>) -> PathBuf {
        datadir_of(&self.server_options(version))
    }

    /// Replication-relevant settings, with the server's defaults for the
    /// socket and pid file so the agent knows where to look.
    pub fn settings(&self, version: Option<(u32, u32)>) -> MysqldSettings {
        let opts = self.server_options(version);
        let datadir = datadir_of(&opts);
        let text = |key: &str| opts.get(key).map(|v| v.clone().unwrap_or_default());
        let pid_file = match opts.get("pid_file") {
            Some(Some(p)) if !p.is_empty() => resolve_in(&datadir, p),
            _ => datadir.join(host_file_name(&local_hostname(), "pid")),
        };
        let socket = match opts.get("socket") {
            Some(Some(s)) if !s.is_empty() => resolve_in(&datadir, s),
            _ => PathBuf::from(DEFAULT_SOCKET),
        };
        MysqldSettings {
            log_bin: text("log_bin"),
            server_id: opts
                .get("server_id")
                .and_then(|v| v.as_deref()?.trim().parse().ok()),
            log_slave_updates: opts
                .get("log_slave_updates")
                .and_then(|v| parse_bool(v.as_deref())),
            report_host: text("report_host"),
            binlog_format: text("binlog_format"),
            port: opts
                .get("port")
                .and_then(|v| v.as_deref()?.trim().parse().ok()),
            bind_address: text("bind_address"),
            socket: Some(socket.to_string_lossy().into_owned()),
            pid_file: Some(pid_file.to_string_lossy().into_owned()),
        }
    }

    /// Where the server writes its error log, if `log_error` is set: a bare
    /// `log-error` means `<datadir>/<host>.err`, a relative name lives in the
    /// datadir and gets `.err` when it has no extension.
    pub fn log_error(&self, version: Option<(u32, u32)>) -> Option<PathBuf> {
        let opts = self.server_options(version);
        let datadir = datadir_of(&opts);
        match opts.get("log_error")? {
            None => Some(datadir.join(host_file_name(&local_hostname(), "err"))),
            Some(v) if v.is_empty() => Some(datadir.join(host_file_name(&local_hostname(), "err"))),
            Some(v) => {
                let mut p = resolve_in(&datadir, v);
                if p.extension().is_none() {
                    p.set_extension("err");
                }
                Some(p)
            }
        }
    }
}

/// The result of normalizing an option name.
#[derive(Debug, PartialEq, Eq)]
pub enum Normalized {
    Set(String),
    /// `enable-X`: X on.
    Enable(String),
    /// `skip-X` / `disable-X`: X off.
    Disable(String),
}

/// Lowercases, treats `-` like `_`, strips `loose_`, and decodes the
/// `skip_`/`disable_`/`enable_` prefixes like the server's option handler.
pub fn normalize_key(key: &str) -> Normalized {
    let mut key = key.trim().to_ascii_lowercase().replace('-', "_");
    if let Some(rest) = key.strip_prefix("loose_") {
        key = rest.to_string();
    }
    let canonical = |k: &str| {
        ALIASES
            .iter()
            .find(|(alias, _)| *alias == k)
            .map_or_else(|| k.to_string(), |(_, real)| real.to_string())
    };
    if SKIP_NAMED_OPTIONS.contains(&key.as_str()) {
        return Normalized::Set(key);
    }
    for prefix in ["skip_", "disable_"] {
        if let Some(rest) = key.strip_prefix(prefix) {
            return Normalized::Disable(canonical(rest));
        }
    }
    if let Some(rest) = key.strip_prefix("enable_") {
        return Normalized::Enable(canonical(rest));
    }
    Normalized::Set(canonical(&key))
}

/// Parses a server boolean; a bare flag (None) means on.
pub fn parse_bool(value: Option<&str>) -> Option<bool> {
    let Some(v) = value else { return Some(true) };
    match v.trim().to_ascii_uppercase().as_str() {
        "1" | "ON" | "TRUE" | "YES" => Some(true),
        "0" | "OFF" | "FALSE" | "NO" => Some(false),
        _ => None,
    }
}

/// Extracts (major, minor) from a version like "10.11.19-MariaDB-0+deb12u1".
pub fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The host name the server uses for its default file names.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// `<host>.<ext>` the way mysqld builds default names: it replaces anything
/// after the host name's last dot, so "db1.example.com" gives "db1.example.pid".
fn host_file_name(hostname: &str, ext: &str) -> String {
    let stem = hostname.rsplit_once('.').map_or(hostname, |(stem, _)| stem);
    format!("{stem}.{ext}")
}

fn datadir_of(opts: &BTreeMap<String, Option<String>>) -> PathBuf {
    match opts.get("datadir") {
        Some(Some(d)) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(DEFAULT_DATADIR),
    }
}

/// mysqld runs inside its datadir, so relative paths are relative to it.
fn resolve_in(datadir: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        datadir.join(p)
    }
}

/// Names of all groups the server reads, lowercased.
fn server_groups(version: Option<(u32, u32)>) -> Vec<String> {
    let mut groups: Vec<String> = SERVER_GROUPS.iter().map(|g| g.to_string()).collect();
    if let Some((major, minor)) = version {
        for prefix in VERSIONED_GROUP_PREFIXES {
            groups.push(format!("{prefix}-{major}.{minor}"));
        }
    }
    groups
}

fn read_file(
    path: &Path,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<RawOption>,
) -> Result<(), MyCnfError> {
    let io_err = |source| MyCnfError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Canonical paths make loop detection independent of how a file is named.
    let canonical = fs::canonicalize(path).map_err(io_err)?;
    if stack.contains(&canonical) {
        let chain = stack
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" -> ");
        return Err(MyCnfError::IncludeLoop {
            path: path.to_path_buf(),
            chain,
        });
    }
    if stack.len() > MAX_INCLUDE_DEPTH {
        return Err(MyCnfError::TooDeep {
            path: path.to_path_buf(),
        });
    }
    let bytes = fs::read(path).map_err(io_err)?;
    let text = String::from_utf8_lossy(&bytes);
    stack.push(canonical);
    let result = parse_text(&text, path, stack, out);
    stack.pop();
    result
}

/// Parses one file's text; `group` state does not leak into includes and
/// back, matching the server (an included file starts without a group).
fn parse_text(
    text: &str,
    path: &Path,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<RawOption>,
) -> Result<(), MyCnfError> {
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let mut group: Option<String> = None;
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let syntax = |message: String| MyCnfError::Syntax {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        let line = raw_line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(directive) = line.strip_prefix('!') {
            handle_directive(directive, base_dir, stack, out).map_err(|e| match e {
                DirectiveError::Cnf(e) => e,
                DirectiveError::Syntax(m) => syntax(m),
            })?;
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some((name, _)) = rest.split_once(']') else {
                return Err(syntax(format!("wrong group definition: {line}")));
            };
            group = Some(name.trim().to_ascii_lowercase());
            continue;
        }
        let Some(group) = &group else {
            return Err(syntax(format!(
                "found option without preceding group: {line}"
            )));
        };
        let line = strip_end_comment(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim_end(), Some(unquote_value(v))),
            None => (line.trim_end(), None),
        };
        if key.is_empty() {
            continue;
        }
        out.push(RawOption {
            group: group.clone(),
            key: key.to_string(),
            value,
            file: path.to_path_buf(),
            line: line_no,
        });
    }
    Ok(())
}

enum DirectiveError {
    Cnf(MyCnfError),
    Syntax(String),
}

/// `!include FILE` and `!includedir DIR`; other `!` lines are ignored like
/// the server does.
fn handle_directive(
    directive: &str,
    base_dir: &Path,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<RawOption>,
) -> Result<(), DirectiveError> {
    let (word, arg) = match directive.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (directive.trim_end(), ""),
    };
    if word != "include" && word != "includedir" {
        return Ok(());
    }
    if arg.is_empty() {
        return Err(DirectiveError::Syntax(format!("!{word} without a path")));
    }
    let target = {
        let p = Path::new(arg);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base_dir.join(p)
        }
    };
    if word == "include" {
        // The server silently skips included files it cannot open, but a
        // loop or a broken file inside is still an error.
        if !target.exists() {
            return Ok(());
        }
        return read_file(&target, stack, out).map_err(DirectiveError::Cnf);
    }
    let entries = fs::read_dir(&target).map_err(|source| {
        DirectiveError::Cnf(MyCnfError::Io {
            path: target.clone(),
            source,
        })
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "cnf") && p.is_file())
        .collect();
    files.sort();
    for file in files {
        read_file(&file, stack, out).map_err(DirectiveError::Cnf)?;
    }
    Ok(())
}

/// Cuts a `#` comment that is outside quotes (the server's `remove_end_comment`).
fn strip_end_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escape = false;
    for (i, c) in line.char_indices() {
        if (c == '\'' || c == '"') && !escape {
            match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                Some(_) => {}
            }
        }
        if quote.is_none() && c == '#' {
            return &line[..i];
        }
        escape = quote.is_some() && c == '\\' && !escape;
    }
    line
}

/// Trims, removes one pair of matching surrounding quotes, then decodes the
/// server's escapes (`\n \t \r \b \s \" \' \\`; unknown ones are kept).
fn unquote_value(raw: &str) -> String {
    let mut v = raw.trim();
    let bytes = v.as_bytes();
    if bytes.len() > 1
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[0] == bytes[bytes.len() - 1]
    {
        v = &v[1..v.len() - 1];
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('s') => out.push(' '),
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            // A trailing backslash stays as written.
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests;
