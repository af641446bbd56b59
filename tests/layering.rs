//! The layering test: ARCHITECTURE.md's invariants about who may use whom,
//! held by reading the source tree instead of by review (rust-analyzer's
//! "tidy" tests). It fails when
//! - the top-level modules of a crate depend on each other in a cycle;
//! - a module of `flipover-core` uses one above it (the core's layers are
//!   an allow-list), or anything that does I/O (tokio, sockets, files,
//!   processes, the clock, randomness);
//! - the planner reaches the executor, observation, `db` or tokio;
//! - SQL text appears outside `sql/` (and `db.rs`'s quoting, and the
//!   sandbox's own server setup);
//! - library code prints (only `src/cli/`, `src/main.rs` and `src/bin/`
//!   write to the terminal).
//!
//! The checks are plain functions over (path, text), so the unit tests at
//! the end show each one failing on a deliberately forbidden line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The core's modules, bottom up, each with the modules it may use.
const CORE_LAYERS: &[(&str, &[&str])] = &[
    ("topology", &[]),
    ("facts", &[]),
    ("gtid", &[]),
    ("sql", &["facts", "gtid"]),
    ("view", &["topology", "facts", "gtid"]),
    ("wire", &["topology", "facts", "gtid", "view"]),
    (
        "planner",
        &["topology", "facts", "gtid", "sql", "view", "wire"],
    ),
    (
        "render",
        &[
            "topology", "facts", "gtid", "sql", "view", "wire", "planner",
        ],
    ),
];

/// Edges of the `flipover` crate that must not exist even without a cycle:
/// the module on the left may not use the ones on the right.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("db", &["observe", "executor", "agents", "cli", "apply"]),
    ("agents", &["observe", "executor", "cli", "apply"]),
    ("secrets", &["db", "agents", "observe", "executor", "cli"]),
    ("observe", &["executor", "cli", "apply"]),
    ("executor", &["cli", "apply"]),
    ("apply", &["cli"]),
    ("discover", &["executor", "cli"]),
    ("sandbox", &["executor", "cli"]),
];

/// Text that does I/O, forbidden in the core outside its unit tests.
const CORE_IO: &[&str] = &[
    "tokio",
    "mysql_async",
    "reqwest",
    "std::fs",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "std::process",
    "std::env",
    "Instant::now",
    "SystemTime",
    "rand::",
    "println!",
    "eprintln!",
    "print!(",
    "eprint!(",
];

/// The start of a string literal that is SQL.
const SQL_STARTS: &[&str] = &[
    "\"SELECT ",
    "\"SHOW ",
    "\"SET ",
    "\"CHANGE ",
    "\"START SLAVE",
    "\"START REPLICA",
    "\"STOP SLAVE",
    "\"STOP REPLICA",
    "\"RESET ",
    "\"KILL ",
    "\"INSERT ",
    "\"UPDATE ",
    "\"DELETE ",
    "\"CREATE ",
    "\"DROP ",
    "\"GRANT ",
    "\"FLUSH ",
    "\"INSTALL PLUGIN",
    "\"CLONE INSTANCE",
    "\"PURGE ",
];

/// Printing to the terminal.
const PRINTING: &[&str] = &[
    "println!",
    "eprintln!",
    "print!(",
    "eprint!(",
    "dbg!(",
    "std::io::stdout",
    "std::io::stderr()",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

/// The top-level module a file of a crate's `src/` belongs to
/// (`src/executor/clone.rs` → `executor`, `src/db.rs` → `db`).
fn module_of(src: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The code of a file without its `#[cfg(test)]` modules and comments:
/// tests may do what the code may not.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut skipping_from: Option<usize> = None;
    let mut depth: i64 = 0;
    let mut pending_cfg_test = false;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if skipping_from.is_some() {
            depth += brace_balance(line);
            if depth <= 0 {
                skipping_from = None;
            }
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test && trimmed.starts_with("mod ") {
            pending_cfg_test = false;
            depth = brace_balance(line);
            if depth > 0 {
                skipping_from = Some(number);
            }
            continue;
        }
        pending_cfg_test = false;
        if trimmed.starts_with("//") {
            continue;
        }
        lines.push((number + 1, line));
    }
    lines
}

fn brace_balance(line: &str) -> i64 {
    line.chars()
        .map(|c| match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        })
        .sum()
}

/// The crate modules a file uses (`crate::observe::…` → `observe`).
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (_, line) in code_lines(text) {
        for part in line.split("crate::").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
        // `use crate::{a, b::c}` names several modules at once.
        if let Some(group) = line.split("crate::{").nth(1) {
            for item in group.split([',', '}']) {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        }
    }
    used
}

/// The module graph of one crate: module → modules of the same crate it uses.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = sources(src);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(path, _)| module_of(src, path))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let Some(module) = module_of(src, path) else {
            continue;
        };
        let entry = graph.entry(module.clone()).or_default();
        for used in used_modules(text) {
            if used != module && modules.contains(&used) {
                entry.insert(used);
            }
        }
    }
    graph
}

/// A cycle among the modules of `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// Lines of `text` containing one of `patterns`, as `path:line: text`.
fn offending_lines(path: &Path, text: &str, patterns: &[&str]) -> Vec<String> {
    code_lines(text)
        .into_iter()
        .filter(|(_, line)| patterns.iter().any(|p| line.contains(p)))
        .map(|(number, line)| format!("{}:{number}: {}", path.display(), line.trim()))
        .collect()
}

/// Breaches of the core's layers in one file of `core/src`.
fn core_layer_breaches(src: &Path, path: &Path, text: &str) -> Vec<String> {
    let Some(module) = module_of(src, path) else {
        return Vec::new();
    };
    let Some((_, allowed)) = CORE_LAYERS.iter().find(|(name, _)| *name == module) else {
        return vec![format!(
            "{}: module `{module}` is not in CORE_LAYERS (tests/layering.rs): place it in a layer",
            path.display()
        )];
    };
    used_modules(text)
        .into_iter()
        .filter(|used| *used != module && !allowed.contains(&used.as_str()))
        .filter(|used| CORE_LAYERS.iter().any(|(name, _)| name == used))
        .map(|used| {
            format!(
                "{}: `{module}` uses `{used}`, which is not below it",
                path.display()
            )
        })
        .collect()
}

/// Forbidden edges of the `flipover` crate in one file.
fn forbidden_edges(src: &Path, path: &Path, text: &str) -> Vec<String> {
    let Some(module) = module_of(src, path) else {
        return Vec::new();
    };
    let Some((_, forbidden)) = FORBIDDEN.iter().find(|(name, _)| *name == module) else {
        return Vec::new();
    };
    used_modules(text)
        .into_iter()
        .filter(|used| forbidden.contains(&used.as_str()))
        .map(|used| format!("{}: `{module}` may not use `{used}`", path.display()))
        .collect()
}

/// Whether SQL text may appear in this file.
fn may_hold_sql(root: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let relative = relative.to_string_lossy();
    relative.starts_with("core/src/sql/")
        || relative == "src/db.rs"
        // The sandbox creates its servers' accounts and seed data itself.
        || relative.starts_with("src/sandbox/")
}

#[test]
fn the_module_graphs_have_no_cycles() {
    for src in ["core/src", "src"] {
        let graph = module_graph(&root().join(src));
        assert!(graph.len() > 5, "{src}: only {} modules found", graph.len());
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{src}: modules in a cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_core_keeps_its_layers_and_does_no_io() {
    let src = root().join("core/src");
    let mut breaches = Vec::new();
    for (path, text) in sources(&src) {
        breaches.extend(core_layer_breaches(&src, &path, &text));
        breaches.extend(offending_lines(&path, &text, CORE_IO));
    }
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
    // Its manifest names no I/O crate either.
    let manifest = std::fs::read_to_string(root().join("core/Cargo.toml")).unwrap();
    for io in [
        "tokio",
        "mysql_async",
        "reqwest",
        "flipover-agent",
        "rand",
        "nix",
    ] {
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{io} "))
                    || l.trim_start().starts_with(&format!("{io}="))),
            "core/Cargo.toml depends on {io}"
        );
    }
}

#[test]
fn the_flipover_crate_keeps_its_forbidden_edges() {
    let src = root().join("src");
    let breaches: Vec<String> = sources(&src)
        .iter()
        .flat_map(|(path, text)| forbidden_edges(&src, path, text))
        .collect();
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

#[test]
fn sql_text_lives_in_sql() {
    let root = root();
    let mut found = Vec::new();
    for dir in ["core/src", "src"] {
        for (path, text) in sources(&root.join(dir)) {
            if !may_hold_sql(&root, &path) {
                found.extend(offending_lines(&path, &text, SQL_STARTS));
            }
        }
    }
    assert!(found.is_empty(), "SQL outside sql/:\n{}", found.join("\n"));
}

#[test]
fn only_the_command_line_prints() {
    let root = root();
    let mut found = Vec::new();
    for dir in ["core/src", "src"] {
        for (path, text) in sources(&root.join(dir)) {
            let relative = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if relative.starts_with("src/cli/")
                || relative == "src/main.rs"
                || relative.starts_with("src/bin/")
            {
                continue;
            }
            found.extend(offending_lines(&path, &text, PRINTING));
        }
    }
    assert!(
        found.is_empty(),
        "printing in library code:\n{}",
        found.join("\n")
    );
}

/// Each check, fed a deliberately forbidden line, reports it.
mod the_checks_catch {
    use super::*;

    #[test]
    fn a_planner_using_the_executor_or_tokio() {
        let src = Path::new("/x/core/src");
        let path = Path::new("/x/core/src/planner/replicas.rs");
        let text = "use crate::topology::Topology;\nuse crate::render::plan_text;\n";
        assert_eq!(core_layer_breaches(src, path, text).len(), 1);
        assert!(offending_lines(path, "use tokio::time;\n", CORE_IO).len() == 1);
        // Its own unit tests may read files.
        let tests =
            "fn f() {}\n#[cfg(test)]\nmod tests {\n    fn g() { std::fs::read(\"x\"); }\n}\n";
        assert!(offending_lines(path, tests, CORE_IO).is_empty());
    }

    #[test]
    fn a_cycle() {
        let graph: BTreeMap<String, BTreeSet<String>> = [
            ("executor", vec!["observe"]),
            ("observe", vec!["agents"]),
            ("agents", vec!["executor"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
        .collect();
        assert_eq!(
            find_cycle(&graph).unwrap(),
            ["agents", "executor", "observe", "agents"]
        );
    }

    #[test]
    fn observation_using_the_executor() {
        let src = Path::new("/x/src");
        let path = Path::new("/x/src/observe/mod.rs");
        let text = "use crate::{db, executor::lock};\n";
        assert_eq!(forbidden_edges(src, path, text).len(), 1);
    }

    #[test]
    fn sql_and_printing_in_the_wrong_place() {
        let path = Path::new("/x/src/executor/lock.rs");
        let text = "let q = format!(\"SELECT GET_LOCK({name}, 0)\");\n";
        assert_eq!(offending_lines(path, text, SQL_STARTS).len(), 1);
        assert_eq!(
            offending_lines(path, "    eprintln!(\"error\");\n", PRINTING).len(),
            1
        );
        assert!(may_hold_sql(
            Path::new("/x"),
            Path::new("/x/core/src/sql/mysql.rs")
        ));
        assert!(!may_hold_sql(
            Path::new("/x"),
            Path::new("/x/src/executor/lock.rs")
        ));
    }
}
