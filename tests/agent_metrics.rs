//! The agent's GET /metrics on a real sandbox: the values follow the real
//! servers (mysqld up, replica threads, clone bytes and results), the main
//! API wants the token for it, and `--metrics-listen` serves it alone
//! without one.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{flipover, flipover_bin, TestSandbox};
use flipover_agent::client::{AgentClient, AgentError};

/// Samples of an OpenMetrics text: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
            (
                name.to_string(),
                value.parse().unwrap_or_else(|_| panic!("{l}")),
            )
        })
        .collect()
}

async fn scrape(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// /metrics of the agent's API, through the library client (with the token).
async fn metrics(client: &AgentClient) -> BTreeMap<String, f64> {
    let text = client.metrics().await.expect("GET /metrics");
    assert!(text.ends_with("# EOF\n"), "{text}");
    samples(&text)
}

/// /metrics of a `--metrics-listen` address: plain HTTP, no token.
async fn open_metrics(url: &str) -> BTreeMap<String, f64> {
    let response = scrape(&format!("{url}/metrics"), None).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    samples(&text)
}

fn value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {samples:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_the_real_servers() {
    let sandbox = TestSandbox::up(2);
    let token = sandbox.secret("agent.token");
    let client = |name: &str, token: &str| {
        sandbox
            .host(name)
            .agent_client(token, Duration::from_secs(60))
            .unwrap()
    };
    let (db1, db2) = (client("db1", &token), client("db2", &token));

    // Before anything ran: up, not a replica, no jobs.
    let before = metrics(&db2).await;
    assert_eq!(value(&before, "flipover_agent_mysqld_up"), 1.0);
    assert_eq!(
        value(&before, "flipover_agent_replication_status_readable"),
        1.0
    );
    assert_eq!(value(&before, "flipover_agent_replication_configured"), 0.0);
    assert_eq!(
        value(&before, "flipover_agent_clone_received_bytes_total"),
        0.0
    );
    assert!(!before
        .keys()
        .any(|k| k.starts_with("flipover_agent_job_last_result")));
    let build = format!(
        "flipover_agent_build_info{{version=\"{}\",protocol_version=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        flipover_agent::protocol::PROTOCOL_VERSION
    );
    assert_eq!(value(&before, &build), 1.0);

    // The main API wants the token for /metrics like for everything else.
    for wrong in ["", "wrong"] {
        let refused = client("db2", wrong).metrics().await;
        assert!(
            matches!(refused, Err(AgentError::Unauthorized { .. })),
            "{refused:?}"
        );
    }

    // A clone of db2 from db1 (the sandbox's topology) and replication.
    let apply = flipover(&["apply", "-f", &sandbox.topology_arg(), "--auto-approve"]);
    assert!(
        apply.status.success(),
        "apply failed:\n{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let replica = metrics(&db2).await;
    assert_eq!(
        value(&replica, "flipover_agent_replication_configured"),
        1.0
    );
    assert_eq!(
        value(&replica, "flipover_agent_replication_io_running"),
        1.0
    );
    assert_eq!(
        value(&replica, "flipover_agent_replication_sql_running"),
        1.0
    );
    assert!(value(&replica, "flipover_agent_replication_behind_source_seconds") >= 0.0);
    let received = value(&replica, "flipover_agent_clone_received_bytes_total");
    assert!(received > 0.0, "{replica:#?}");
    assert!(
        value(
            &replica,
            "flipover_agent_clone_rate_bytes_per_second{kind=\"clone_receive\"}"
        ) > 0.0
    );
    assert_eq!(
        value(
            &replica,
            "flipover_agent_job_last_result{kind=\"clone_receive\",result=\"succeeded\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &replica,
            "flipover_agent_job_last_result{kind=\"clone_receive\",result=\"failed\"}"
        ),
        0.0
    );
    let donor = metrics(&db1).await;
    // The donor counts the same stream bytes it sent.
    assert_eq!(
        value(&donor, "flipover_agent_clone_sent_bytes_total"),
        received
    );
    assert_eq!(
        value(
            &donor,
            "flipover_agent_job_last_result{kind=\"clone_send\",result=\"succeeded\"}"
        ),
        1.0
    );
    assert_eq!(value(&donor, "flipover_agent_replication_configured"), 0.0);

    metrics_listener_serves_only_metrics(&sandbox, &token).await;

    // mysqld stopped: down, and no replica status to read.
    db2.stop_mysqld().await.expect("stop mysqld on db2");
    let stopped = metrics(&db2).await;
    assert_eq!(value(&stopped, "flipover_agent_mysqld_up"), 0.0);
    assert_eq!(
        value(&stopped, "flipover_agent_replication_status_readable"),
        0.0
    );
    assert!(!stopped.contains_key("flipover_agent_replication_io_running"));
    // Job counters outlive mysqld: they are the agent's.
    assert_eq!(
        value(&stopped, "flipover_agent_clone_received_bytes_total"),
        received
    );
}

/// A second agent for db1's server (through its my.cnf) with
/// --metrics-listen: /metrics there without a token, nothing else.
async fn metrics_listener_serves_only_metrics(sandbox: &TestSandbox, token: &str) {
    let host = sandbox.host("db1");
    let free = || {
        TcpListener::bind((host.address.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (api, stream, open) = (free(), free(), free());
    let mut agent = Command::new(flipover_bin().with_file_name("flipover-agent"))
        .arg("--conf")
        .arg(host.my_cnf())
        .arg(format!("--listen={api}"))
        .arg(format!("--stream-listen={stream}"))
        .arg(format!("--metrics-listen={open}"))
        // Plain HTTP on the main address too, to show it still wants the token.
        .arg("--insecure")
        .env("FLIPOVER_AGENT_TOKEN", token)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{open}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(api).is_err() {
        assert!(Instant::now() < deadline, "the second agent did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listener = open_metrics(&url).await;
    let main_status = scrape(&format!("http://{api}/metrics"), None)
        .await
        .status();
    let facts_status = scrape(&format!("{url}/v1/facts"), Some(token))
        .await
        .status();
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(value(&listener, "flipover_agent_mysqld_up"), 1.0);
    assert_eq!(
        value(&listener, "flipover_agent_replication_status_readable"),
        1.0
    );
    assert_eq!(main_status, 401, "the main address still wants the token");
    assert_eq!(facts_status, 404, "only /metrics on the metrics address");
}
