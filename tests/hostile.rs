//! Hostile text end to end on a real sandbox: account names and passwords
//! (admin, replication, backup) and a cluster name full of quotes,
//! backslashes, `;`, spaces and non-ASCII, on servers whose global
//! sql_mode has NO_BACKSLASH_ESCAPES, through clones and a switchover
//! there and back. Everything must work, and the data must stay equal.

mod common;

use std::path::Path;
use std::time::Duration;

use common::reliability::{Outcome, Row};
use common::{flipover, TestSandbox};

/// Quotes, a backslash, `;`, a space and non-ASCII.
const HOSTILE: &str = r#"r'e"p\l; ü"#;
const SHOP: &str = "shop.customers, shop.orders";
const ALL: [&str; 3] = ["db1", "db2", "db3"];

/// Every replica replicates from `primary` with both threads, only the
/// primary is writable, and the plan has nothing left to do.
fn assert_converged(sandbox: &TestSandbox, path: &Path, primary: &str) {
    let state = common::observe(path);
    for server in ALL {
        let facts = state.servers[server]
            .facts()
            .unwrap_or_else(|| panic!("{server} answers"));
        assert_eq!(facts.read_only, server != primary, "{server}: read_only");
        match &facts.replica {
            None => assert_eq!(server, primary, "{server} should replicate"),
            Some(replica) => {
                assert_eq!(replica.source_host, sandbox.host(primary).address);
                assert_eq!(replica.source_user, format!("rep {HOSTILE}"));
                assert!(replica.healthy(), "{server}: {replica:?}");
            }
        }
    }
    let plan = flipover(&["plan", "-f", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success() && text.contains("No changes"),
        "{text}"
    );
}

/// Writes a row holding hostile text on `primary` and waits until every
/// server has it; then their tables are equal.
async fn assert_replicating(sandbox: &TestSandbox, primary: &str, id: u32) {
    let mut conn = sandbox.connect(primary).await;
    conn.execute(&format!(
        "INSERT INTO shop.customers VALUES ({id}, {}, 'x@example.com')",
        flipover::db::quote_literal(HOSTILE)
    ))
    .await
    .unwrap();
    conn.close().await;
    for server in ALL {
        sandbox
            .wait_for_value(
                server,
                &format!("SELECT name = {} FROM shop.customers WHERE id = {id}", {
                    flipover::db::quote_literal(HOSTILE)
                }),
                "1",
                Duration::from_secs(20),
            )
            .await;
    }
    let expected = sandbox.checksums(primary, SHOP).await;
    for server in ALL {
        assert_eq!(sandbox.checksums(server, SHOP).await, expected, "{server}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_accounts_and_names_survive_clones_and_switchovers() {
    let started = std::time::Instant::now();
    let admin = format!("adm {HOSTILE}");
    let repl = format!("rep {HOSTILE}");
    let backup = format!("bak {HOSTILE}");
    let sandbox = TestSandbox::up_with(
        3,
        &[
            "--admin-user",
            &admin,
            "--repl-user",
            &repl,
            "--backup-user",
            &backup,
            "--password-prefix",
            HOSTILE,
        ],
    );
    assert!(sandbox.secret("repl.password").starts_with(HOSTILE));

    // A cluster name that lands in the lock's and the journal's SQL.
    let path = sandbox.topology();
    let text = std::fs::read_to_string(&path).unwrap();
    let cluster = "name = \"sh'op \\\"ü\\\" \\\\ ; DROP DATABASE shop; --\"";
    std::fs::write(&path, text.replacen("name = \"sb\"", cluster, 1)).unwrap();

    // With backslashes not being escapes, a badly quoted password would
    // change silently: every flipover session must read `\\` as `\`.
    for server in ALL {
        let mut conn = sandbox.connect(server).await;
        conn.execute("SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES')")
            .await
            .unwrap();
        conn.close().await;
    }

    // Clones: the donor's agent runs mariadb-backup as the hostile backup
    // account; CHANGE MASTER gets the hostile replication account.
    let (ok, output) = common::apply(&path, &[]);
    assert!(ok, "clones: {output}");
    assert_converged(&sandbox, &path, "db1");
    assert_replicating(&sandbox, "db1", 1001).await;

    // The journal's rows on every server carry the cluster's lock and steps.
    let mut conn = sandbox.connect("db2").await;
    let row = conn
        .first_row("SELECT COUNT(*) AS n FROM flipover.journal")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(row["n"].as_deref(), Some("0"));
    conn.close().await;

    // A switchover to db2 and back.
    let to_db2 = sandbox.write_topology("to-db2", "db2", &[]);
    let (ok, output) = common::apply(&to_db2, &[]);
    assert!(ok, "switchover to db2: {output}");
    assert_converged(&sandbox, &to_db2, "db2");
    assert_replicating(&sandbox, "db2", 1002).await;

    let (ok, output) = common::apply(&path, &[]);
    assert!(ok, "switchover back to db1: {output}");
    assert_converged(&sandbox, &path, "db1");
    assert_replicating(&sandbox, "db1", 1003).await;

    // The shop database survived its name in the cluster's.
    let mut conn = sandbox.connect("db3").await;
    let row = conn
        .first_row("SELECT COUNT(*) AS n FROM shop.customers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row["n"].as_deref(), Some("103"));
    conn.close().await;

    // An agent token that is no HTTP header value: a clean error per
    // server in `status`, not a crash.
    let odd_token = sandbox.dir.join("odd-token.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "agent_token = { file = \"secrets/agent.token\" }",
        "agent_token = \"tök'en\\nX-Injected: 1\"",
    );
    assert!(text.contains("tök'en"), "{text}");
    std::fs::write(&odd_token, text).unwrap();
    let status = flipover(&["status", "-f", odd_token.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&status.stdout);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_ne!(status.status.code(), Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("db1"), "{stdout}\n{stderr}");

    record(
        "admin, replication and backup accounts, their passwords and the cluster name \
         containing `r'e\"p\\l; ü`; NO_BACKSLASH_ESCAPES on every server",
        "clone db2 and db3, switchover db1 -> db2 -> db1",
        Outcome::Converged,
        started,
        "replication healthy after each step, rows written replicated, CHECKSUM TABLE equal",
    );
    record(
        "an agent token with a quote, non-ASCII and a header injection",
        "status",
        Outcome::Refused,
        started,
        "a clean error per server, no crash, no request sent with the header",
    );
}

fn record(fault: &str, operation: &str, outcome: Outcome, started: std::time::Instant, note: &str) {
    common::reliability::record(&Row {
        category: "hostile text (quotes, backslashes, ';', spaces, non-ASCII)".into(),
        test: "hostile".into(),
        fault: fault.into(),
        operation: operation.into(),
        checkpoint: "end to end".into(),
        outcome,
        writes_acknowledged: 0,
        writes_found: 0,
        duration: started.elapsed(),
        note: note.into(),
    });
}

#[test]
fn hostile_server_names_and_hosts_get_diagnostics() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    std::fs::write(
        &path,
        "[cluster]\nname = \"x\"\n\n\
         [servers.\"db1'; DROP USER repl; --\"]\nhost = \"10.0.0.1\"\n\n\
         [servers.db2]\nhost = \"10.0.0.2' OR '1'='1\"\nsource = \"db1'; DROP USER repl; --\"\n",
    )
    .unwrap();
    for command in ["validate", "plan", "status"] {
        let output = flipover(&[command, "-f", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command}: {stderr}");
        // The diagnostics' codes (their text wraps with the terminal).
        assert!(
            stderr.contains("flipover::topology::bad_server_name"),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("flipover::topology::bad_host"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
    }
    record(
        "a server name and a host carrying SQL (`db1'; DROP USER repl; --`, `10.0.0.2' OR '1'='1`)",
        "validate, plan, status",
        Outcome::Refused,
        started,
        "bad_server_name and bad_host diagnostics, exit 1, no server contacted",
    );
}
