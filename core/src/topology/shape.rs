//! The file's shape: every key known, every value of the right type.
//!
//! Checked on the spanned TOML document before serde sees it, for two reasons:
//! serde stops at the first error, and its messages cannot suggest the key the
//! user meant. After this check passes, deserializing into the raw types
//! cannot fail on an unknown key or a wrong type.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostics::{Problem, ProblemKind};
use super::suggest::{did_you_mean, list_in_backticks};

/// What a key's value must be.
#[derive(Debug, Clone, Copy)]
enum Expect {
    String,
    Port,
    /// A whole number of seconds, 0 or more.
    Seconds,
    Bool,
    /// A string, one of these words.
    OneOf(&'static [&'static str]),
    Secret,
    /// A hook's timeout: a whole number of seconds, 1 or more.
    HookTimeout,
    /// A `[hooks]` event: a list of commands.
    HookList,
    /// A whole number (its range is a rule of `validate`).
    Count,
    Table(&'static TableShape),
    /// `[servers.NAME]`: a table of server tables.
    Servers,
}

/// The keys a table accepts.
#[derive(Debug)]
struct TableShape {
    /// How the table is called in messages, e.g. `[access]`.
    title: &'static str,
    keys: &'static [(&'static str, Expect)],
}

static TOP_LEVEL: TableShape = TableShape {
    title: "the top level",
    keys: &[
        ("cluster", Expect::Table(&CLUSTER)),
        ("access", Expect::Table(&ACCESS)),
        ("defaults", Expect::Table(&DEFAULTS)),
        ("servers", Expect::Servers),
        ("hooks", Expect::Table(&HOOKS)),
        ("journal", Expect::Table(&JOURNAL)),
    ],
};

static JOURNAL: TableShape = TableShape {
    title: "`[journal]`",
    keys: &[("keep_applies", Expect::Count)],
};

static HOOKS: TableShape = TableShape {
    title: "`[hooks]`",
    keys: &[
        ("timeout", Expect::HookTimeout),
        ("pre_switchover", Expect::HookList),
        ("post_switchover", Expect::HookList),
        ("pre_failover", Expect::HookList),
        ("post_failover", Expect::HookList),
        ("post_clone", Expect::HookList),
    ],
};

/// The keys of a command written as a table, for "did you mean".
const HOOK_COMMAND_KEYS: [&str; 2] = ["command", "timeout"];

/// How to write a hook list, for hints.
const HOOK_FORMS: &str = "a hook is a list of commands, each an argv array or a table: \
     `post_switchover = [[\"/usr/local/bin/repoint\", \"--all\"], { command = [\"notify\"], timeout = 5 }]`";

static CLUSTER: TableShape = TableShape {
    title: "`[cluster]`",
    keys: &[
        ("name", Expect::String),
        ("max_replica_lag", Expect::Seconds),
        ("max_transaction_age", Expect::Seconds),
        ("switchover_timeout", Expect::Seconds),
        ("durability", Expect::OneOf(super::DURABILITY_MODES)),
        ("semi_sync_timeout", Expect::Seconds),
    ],
};

static ACCESS: TableShape = TableShape {
    title: "`[access]`",
    keys: &[
        ("user", Expect::String),
        ("password", Expect::Secret),
        ("repl_user", Expect::String),
        ("repl_password", Expect::Secret),
        ("agent_token", Expect::Secret),
        ("ca", Expect::String),
        ("client_cert", Expect::String),
        ("client_key", Expect::String),
        ("insecure", Expect::Bool),
    ],
};

static DEFAULTS: TableShape = TableShape {
    title: "`[defaults]`",
    keys: &[
        ("port", Expect::Port),
        ("agent_port", Expect::Port),
        ("stream_port", Expect::Port),
        ("promotable", Expect::Bool),
    ],
};

static SERVER: TableShape = TableShape {
    title: "`[servers.NAME]`",
    keys: &[
        ("host", Expect::String),
        ("port", Expect::Port),
        ("agent_port", Expect::Port),
        ("stream_port", Expect::Port),
        ("source", Expect::String),
        ("clone_from", Expect::String),
        ("promotable", Expect::Bool),
    ],
};

/// The ways to write a secret, for hints.
const SECRET_FORMS: &str =
    "a secret is `\"literal\"`, `{ env = \"VAR\" }` or `{ file = \"path\" }`";

/// Every unknown key and wrongly typed value in the document.
pub(crate) fn check(document: &DeTable<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_table(document, &TOP_LEVEL, None, &mut problems);
    problems
}

/// `server` names the `[servers.NAME]` table being checked, for messages.
fn check_table(
    table: &DeTable<'_>,
    shape: &TableShape,
    server: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    let title = match server {
        Some(name) => format!("`[servers.{name}]`"),
        None => shape.title.to_string(),
    };
    for (key, value) in table {
        match shape.keys.iter().find(|(known, _)| *known == key.get_ref()) {
            Some((_, expect)) => check_value(key.get_ref(), value, *expect, problems),
            None => problems.push(unknown_key(key, shape, &title)),
        }
    }
}

fn unknown_key(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    shape: &TableShape,
    title: &str,
) -> Problem {
    let known = shape.keys.iter().map(|(name, _)| *name);
    let help = match did_you_mean(key.get_ref(), known.clone()) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None if std::ptr::eq(shape, &DEFAULTS) && is_server_key(key.get_ref()) => format!(
            "`{key}` has no default: set it in each `[servers.NAME]`; {title} accepts {}",
            list_in_backticks(known),
            key = key.get_ref()
        ),
        None => format!("{title} accepts {}", list_in_backticks(known)),
    };
    Problem::new(
        ProblemKind::UnknownKey,
        if std::ptr::eq(shape, &TOP_LEVEL) {
            format!("unknown table or key `{}` at the top level", key.get_ref())
        } else {
            format!("unknown key `{}` in {title}", key.get_ref())
        },
    )
    .label(key.span(), "unknown key")
    .help(help)
}

fn is_server_key(key: &str) -> bool {
    SERVER.keys.iter().any(|(name, _)| *name == key)
}

fn check_value(
    key: &str,
    value: &Spanned<DeValue<'_>>,
    expect: Expect,
    problems: &mut Vec<Problem>,
) {
    let span = value.span();
    match (expect, value.get_ref()) {
        (Expect::String, DeValue::String(_))
        | (Expect::Bool, DeValue::Boolean(_))
        | (Expect::Count, DeValue::Integer(_)) => {}
        (Expect::Port, DeValue::Integer(integer)) => {
            let port = i64::from_str_radix(integer.as_str(), integer.radix()).ok();
            if !port.is_some_and(|port| (1..=i64::from(u16::MAX)).contains(&port)) {
                problems.push(
                    Problem::new(
                        ProblemKind::PortOutOfRange,
                        format!("`{key}` must be between 1 and 65535"),
                    )
                    .label(span, "not a TCP port")
                    .help(format!(
                        "write a port between 1 and 65535, e.g. `{key} = {}`",
                        example_port(key)
                    )),
                );
            }
        }
        (Expect::Seconds, DeValue::Integer(integer)) => {
            let seconds = i64::from_str_radix(integer.as_str(), integer.radix()).ok();
            if seconds.is_none_or(|s| s < 0) {
                problems.push(
                    Problem::new(
                        ProblemKind::NegativeSeconds,
                        format!("`{key}` must be a whole number of seconds, 0 or more"),
                    )
                    .label(span, "not a number of seconds")
                    .help(format!("e.g. `{key} = 5`")),
                );
            }
        }
        (Expect::OneOf(words), DeValue::String(text)) => {
            if !words.contains(&text.as_ref()) {
                let help = match did_you_mean(text, words.iter().copied()) {
                    Some(suggestion) => format!("did you mean `{key} = \"{suggestion}\"`?"),
                    None => format!(
                        "`{key}` is one of {}",
                        list_in_backticks(words.iter().copied())
                    ),
                };
                problems.push(
                    Problem::new(ProblemKind::UnknownValue, format!("unknown {key} `{text}`"))
                        .label(
                            span,
                            format!("not one of {}", list_in_backticks(words.iter().copied())),
                        )
                        .help(help),
                );
            }
        }
        (Expect::Secret, _) => check_secret(key, value, problems),
        (Expect::HookTimeout, _) => check_hook_timeout(key, value, problems),
        (Expect::HookList, _) => check_hook_list(key, value, problems),
        (Expect::Table(shape), DeValue::Table(table)) => check_table(table, shape, None, problems),
        (Expect::Servers, DeValue::Table(servers)) => check_servers(servers, problems),
        (expect, found) => problems.push(wrong_type(key, span, expect, found)),
    }
}

fn check_servers(servers: &DeTable<'_>, problems: &mut Vec<Problem>) {
    for (name, server) in servers {
        match server.get_ref() {
            DeValue::Table(table) => check_table(table, &SERVER, Some(name.get_ref()), problems),
            found => problems.push(
                Problem::new(
                    ProblemKind::WrongType,
                    format!("server `{}` must be a table, found {}", name.get_ref(), a(found)),
                )
                .label(server.span(), "expected a table")
                .help(format!(
                    "describe the server in its own table: `[servers.{}]` followed by `host = \"…\"`",
                    name.get_ref()
                )),
            ),
        }
    }
}

fn check_secret(key: &str, value: &Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) {
    let bad_secret = |message: String| Problem::new(ProblemKind::BadSecret, message);
    let table = match value.get_ref() {
        DeValue::String(_) => return,
        DeValue::Table(table) => table,
        found => {
            problems.push(
                bad_secret(format!(
                    "`{key}` must be a string or a table, found {}",
                    a(found)
                ))
                .label(value.span(), "not a secret")
                .help(format!(
                    "{SECRET_FORMS}; quote a literal secret: `{key} = \"…\"`"
                )),
            );
            return;
        }
    };
    let mut sources = Vec::new();
    for (source, source_value) in table {
        if !matches!(source.get_ref().as_ref(), "env" | "file") {
            let help = match did_you_mean(source.get_ref(), ["env", "file"]) {
                Some(suggestion) => format!("did you mean `{suggestion}`? ({SECRET_FORMS})"),
                None => SECRET_FORMS.to_string(),
            };
            problems.push(
                bad_secret(format!(
                    "unknown secret source `{}` in `{key}`",
                    source.get_ref()
                ))
                .label(source.span(), "unknown secret source")
                .help(help),
            );
            continue;
        }
        sources.push(source);
        let what = match source.get_ref().as_ref() {
            "env" => "the name of an environment variable",
            _ => "a file path",
        };
        match source_value.get_ref() {
            DeValue::String(text) if text.is_empty() => problems.push(
                bad_secret(format!("`{key}.{}` is empty", source.get_ref()))
                    .label(source_value.span(), format!("expected {what}"))
                    .help(SECRET_FORMS),
            ),
            DeValue::String(_) => {}
            found => problems.push(
                bad_secret(format!(
                    "`{key}.{}` must be a string, found {}",
                    source.get_ref(),
                    a(found)
                ))
                .label(source_value.span(), format!("expected {what}"))
                .help(format!(
                    "quote it: `{key} = {{ {} = \"…\" }}`",
                    source.get_ref()
                )),
            ),
        }
    }
    match sources.as_slice() {
        [_] => {}
        [] if table.is_empty() => problems.push(
            bad_secret(format!("`{key}` names no secret source"))
                .label(value.span(), "empty secret")
                .help(SECRET_FORMS),
        ),
        // Only unknown sources, each already reported.
        [] => {}
        [first, rest @ ..] => {
            let mut problem = bad_secret(format!("`{key}` has more than one secret source"))
                .label(first.span(), "one source");
            for other in rest {
                problem = problem.label(other.span(), "another source");
            }
            problems.push(problem.help(format!("keep one of them; {SECRET_FORMS}")));
        }
    }
}

fn bad_hook(message: String) -> Problem {
    Problem::new(ProblemKind::BadHook, message)
}

fn check_hook_timeout(key: &str, value: &Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) {
    let seconds = match value.get_ref() {
        DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix()).ok(),
        _ => None,
    };
    if seconds.is_none_or(|s| s < 1) {
        problems.push(
            bad_hook(format!(
                "`{key}` must be a whole number of seconds, 1 or more"
            ))
            .label(value.span(), "not a timeout")
            .help(format!("e.g. `{key} = 30`")),
        );
    }
}

/// `[[argv…], { command = [argv…], timeout = N }, …]`.
fn check_hook_list(key: &str, value: &Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) {
    let DeValue::Array(commands) = value.get_ref() else {
        problems.push(
            bad_hook(format!(
                "`{key}` must be a list of commands, found {}",
                a(value.get_ref())
            ))
            .label(value.span(), "not a list of commands")
            .help(HOOK_FORMS),
        );
        return;
    };
    for command in commands {
        match command.get_ref() {
            DeValue::Array(_) => check_argv(key, command, problems),
            DeValue::Table(table) => {
                let mut has_command = false;
                for (name, item) in table {
                    match name.get_ref().as_ref() {
                        "command" => {
                            has_command = true;
                            check_argv(key, item, problems);
                        }
                        "timeout" => check_hook_timeout("timeout", item, problems),
                        unknown => {
                            let help = match did_you_mean(unknown, HOOK_COMMAND_KEYS) {
                                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                                None => format!(
                                    "a command table accepts {}",
                                    list_in_backticks(HOOK_COMMAND_KEYS)
                                ),
                            };
                            problems.push(
                                Problem::new(
                                    ProblemKind::UnknownKey,
                                    format!("unknown key `{unknown}` in a `{key}` command"),
                                )
                                .label(name.span(), "unknown key")
                                .help(help),
                            );
                        }
                    }
                }
                if !has_command {
                    problems.push(
                        bad_hook(format!("a `{key}` command table has no `command`"))
                            .label(command.span(), "`command` missing")
                            .help("give the program and its arguments: `{ command = [\"/usr/local/bin/repoint\"], timeout = 10 }`"),
                    );
                }
            }
            found => problems.push(
                bad_hook(format!(
                    "each `{key}` command must be an array of strings or a table, found {}",
                    a(found)
                ))
                .label(command.span(), "not a command")
                .help(match found {
                    DeValue::String(_) => format!(
                        "commands run without a shell: split it into its arguments, e.g. `{key} = [[\"/usr/local/bin/repoint\", \"--all\"]]`"
                    ),
                    _ => HOOK_FORMS.to_string(),
                }),
            ),
        }
    }
}

/// A non-empty array of strings whose first one (the program) is not empty.
fn check_argv(key: &str, argv: &Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) {
    let DeValue::Array(items) = argv.get_ref() else {
        problems.push(
            bad_hook(format!(
                "a `{key}` command must be an array of strings, found {}",
                a(argv.get_ref())
            ))
            .label(argv.span(), "not an argv array")
            .help("commands run without a shell: write the program and each argument as its own string, e.g. `[\"/usr/local/bin/repoint\", \"--all\"]`"),
        );
        return;
    };
    if items.is_empty() {
        problems.push(
            bad_hook(format!("a `{key}` command is empty"))
                .label(argv.span(), "no program")
                .help("write the program first, then its arguments: `[\"/usr/local/bin/repoint\", \"--all\"]`"),
        );
        return;
    }
    for (index, item) in items.iter().enumerate() {
        match item.get_ref() {
            DeValue::String(program) if index == 0 && program.trim().is_empty() => problems.push(
                bad_hook(format!("a `{key}` command has an empty program"))
                    .label(item.span(), "empty program")
                    .help("name the program to run, e.g. `/usr/local/bin/repoint`"),
            ),
            DeValue::String(_) => {}
            found => problems.push(
                bad_hook(format!(
                    "arguments of a `{key}` command must be strings, found {}",
                    a(found)
                ))
                .label(item.span(), "not a string")
                .help("quote it: every argument is a string"),
            ),
        }
    }
}

fn wrong_type(key: &str, span: Range<usize>, expect: Expect, found: &DeValue<'_>) -> Problem {
    let (expected, help) = match expect {
        Expect::String => (
            "a string",
            match found {
                DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                    format!("quote the value: `{key} = \"…\"`")
                }
                _ => format!("write the value as a quoted string: `{key} = \"…\"`"),
            },
        ),
        Expect::Port => (
            "an integer",
            format!(
                "write the port as a bare number: `{key} = {}`",
                example_port(key)
            ),
        ),
        Expect::Seconds => (
            "a whole number of seconds",
            format!("write the seconds as a bare number: `{key} = 5`"),
        ),
        Expect::Count => (
            "a whole number",
            format!("write the number bare, without quotes: `{key} = 100`"),
        ),
        Expect::OneOf(words) => (
            "a string",
            format!(
                "write one of {} in quotes, e.g. `{key} = \"{}\"`",
                list_in_backticks(words.iter().copied()),
                words[0]
            ),
        ),
        Expect::Bool => (
            "a boolean",
            format!("write `{key} = true` or `{key} = false`"),
        ),
        Expect::Table(shape) => (
            "a table",
            format!(
                "write it as a table: {} on its own line, its keys below it",
                shape.title
            ),
        ),
        Expect::Servers => (
            "a table of servers",
            "write each server as its own table: `[servers.NAME]` followed by `host = \"…\"`"
                .to_string(),
        ),
        Expect::Secret | Expect::HookTimeout | Expect::HookList => {
            unreachable!("secrets and hooks have their own checks")
        }
    };
    Problem::new(
        ProblemKind::WrongType,
        format!("`{key}` must be {expected}, found {}", a(found)),
    )
    .label(span, format!("expected {expected}"))
    .help(help)
}

/// A plausible value of a port key, for hints.
fn example_port(key: &str) -> u16 {
    match key {
        "agent_port" => super::DEFAULT_AGENT_PORT,
        "stream_port" => super::DEFAULT_STREAM_PORT,
        _ => super::DEFAULT_PORT,
    }
}

/// "an integer", "a string", … for messages.
fn a(value: &DeValue<'_>) -> String {
    let kind = value.type_str();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape and the raw serde types (through their JSON Schema) must list the same keys.
    #[test]
    fn shapes_match_the_json_schema() {
        let schema = super::super::json_schema();
        let definition = |name: &str| -> Vec<String> {
            let object = if name == "RawTopology" {
                &schema
            } else {
                &schema["$defs"][name]
            };
            let mut keys: Vec<String> = object["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{name} has properties"))
                .keys()
                .cloned()
                .collect();
            keys.sort();
            keys
        };
        let shape_keys = |shape: &TableShape| -> Vec<String> {
            let mut keys: Vec<String> = shape.keys.iter().map(|(k, _)| k.to_string()).collect();
            keys.sort();
            keys
        };
        assert_eq!(shape_keys(&TOP_LEVEL), definition("RawTopology"));
        assert_eq!(shape_keys(&CLUSTER), definition("Cluster"));
        assert_eq!(shape_keys(&ACCESS), definition("Access"));
        assert_eq!(shape_keys(&DEFAULTS), definition("Defaults"));
        assert_eq!(shape_keys(&SERVER), definition("Server"));
        assert_eq!(shape_keys(&HOOKS), definition("Hooks"));
        assert_eq!(shape_keys(&JOURNAL), definition("Journal"));
    }
}
