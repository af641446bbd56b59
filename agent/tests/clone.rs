//! Physical clones between two real MariaDB servers, each supervised by its
//! own agent: a full clone, a donor killed mid-stream, a stranger on the
//! stream port, and the prechecks that must change nothing.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::host::{
    file_list, finished, host, host_with, put_marker, put_shop, wait_phase, Host, SocketIn,
    STREAM_TOKEN,
};
use flipover_agent::client::AgentError;
use flipover_agent::pki::Role;
use flipover_agent::protocol::{CloneSendRequest, JobKind, JobState};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_copies_the_donor_and_keeps_the_previous_datadir() {
    let started = Instant::now();
    let (donor, target) = (host(1, 1, ""), host(1, 2, ""));
    let donor_facts = donor.wait_running().await;
    target.wait_running().await;
    put_shop(&donor);
    let gtid = donor.sql("SELECT @@gtid_binlog_pos");

    let expected = donor_facts.datadir_bytes.unwrap();
    let receive = target
        .client
        .clone_receive(&target.receive_request(expected, false))
        .await
        .unwrap();
    assert_eq!(
        (receive.kind, receive.state),
        (JobKind::CloneReceive, JobState::Running)
    );
    // While it runs, mysqld actions and facts say why the agent is busy.
    let err = target.client.start_mysqld().await.unwrap_err();
    assert!(matches!(err, AgentError::Busy { .. }), "{err}");
    assert!(target
        .client
        .facts()
        .await
        .unwrap()
        .busy_job
        .unwrap()
        .contains(&receive.id));

    let send = donor
        .client
        .clone_send(&donor.send_request_to(&target))
        .await
        .unwrap();
    assert_eq!(send.kind, JobKind::CloneSend);
    let sent = finished(&donor.client, &send.id, Duration::from_secs(50)).await;
    let received = finished(&target.client, &receive.id, Duration::from_secs(50)).await;
    assert_eq!(sent.state, JobState::Succeeded, "{sent:?}");
    assert_eq!(received.state, JobState::Succeeded, "{received:?}");
    assert_eq!(sent.bytes, received.bytes);
    let result = received.result.clone().unwrap();
    assert!(result.binlog_file.starts_with("mysql-bin."), "{result:?}");
    assert!(result.binlog_position > 0, "{result:?}");
    assert_eq!(result.gtid, gtid);
    assert!(!gtid.is_empty());
    assert_eq!(result.bytes, received.bytes);

    // The target runs on the donor's data, under its own config.
    assert_eq!(
        target.sql("SELECT GROUP_CONCAT(name ORDER BY id) FROM shop.items"),
        "apple,pear,plum"
    );
    assert_eq!(target.sql("SELECT @@server_id"), "2");
    let facts = target.client.facts().await.unwrap();
    assert!(facts.mysqld_running && facts.busy_job.is_none());

    // The previous datadir is kept until confirmed.
    let previous = PathBuf::from(result.previous_datadir.unwrap());
    assert!(previous.join("mysql").is_dir(), "{}", previous.display());
    assert_eq!(
        previous,
        target
            .datadir
            .with_file_name(format!("data.flipover-previous-{}", receive.id))
    );
    let confirmed = target.client.confirm_clone(&receive.id).await.unwrap();
    assert_eq!(confirmed.result.unwrap().previous_datadir, None);
    assert!(!previous.exists());
    assert_eq!(target.siblings(), BTreeSet::from(["data".to_string()]));
    // Unknown jobs are 404, and a send job cannot be confirmed.
    let err = target.client.job("0123456789abcdef").await.unwrap_err();
    assert!(
        matches!(err, AgentError::Failed { status: 404, .. }),
        "{err}"
    );
    let err = donor.client.confirm_clone(&send.id).await.unwrap_err();
    assert!(
        matches!(err, AgentError::Failed { status: 400, .. }),
        "{err}"
    );
    eprintln!(
        "clone of {} bytes took {} ms (test {} ms)",
        received.bytes,
        received.elapsed_ms,
        started.elapsed().as_millis()
    );
}

/// A donor whose my.cnf names its socket only under `[mysqld]`, as hosts
/// set up by hand often do: the backup tool must be told the socket, or it
/// tries its compiled-in one and the clone fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_from_a_donor_naming_its_socket_only_under_mysqld() {
    let started = Instant::now();
    let (donor, target) = (
        host_with(8, 1, "", SocketIn::MysqldOnly),
        host_with(8, 2, "", SocketIn::MysqldOnly),
    );
    let text = std::fs::read_to_string(&donor.conf).unwrap();
    assert!(
        text.starts_with("[mysqld]\n") && !text.contains("[client"),
        "{text}"
    );
    let donor_facts = donor.wait_running().await;
    target.wait_running().await;
    put_shop(&donor);
    let gtid = donor.sql("SELECT @@gtid_binlog_pos");

    let receive = target
        .client
        .clone_receive(&target.receive_request(donor_facts.datadir_bytes.unwrap(), false))
        .await
        .unwrap();
    let send = donor
        .client
        .clone_send(&donor.send_request_to(&target))
        .await
        .unwrap();
    let sent = finished(&donor.client, &send.id, Duration::from_secs(50)).await;
    let received = finished(&target.client, &receive.id, Duration::from_secs(50)).await;
    assert_eq!(sent.state, JobState::Succeeded, "{sent:?}");
    assert_eq!(received.state, JobState::Succeeded, "{received:?}");
    assert_eq!(received.result.unwrap().gtid, gtid);
    assert_eq!(
        target.sql("SELECT GROUP_CONCAT(name ORDER BY id) FROM shop.items"),
        "apple,pear,plum"
    );
    eprintln!("test took {} ms", started.elapsed().as_millis());
}

/// Children of `pid` other than mysqld (which outlives its agent), from /proc.
fn tools_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(pid)
        })
        .filter(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            !matches!(comm.trim(), "mariadbd" | "mysqld")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_donor_agent_mid_stream_restores_the_target() {
    let started = Instant::now();
    let (mut donor, target) = (
        host(
            2,
            1,
            "innodb_buffer_pool_size=128M\ninnodb_flush_log_at_trx_commit=0",
        ),
        host(2, 2, ""),
    );
    donor.wait_running().await;
    target.wait_running().await;
    // ~300 MB, so the stream takes long enough to be killed midway.
    donor.sql(
        "SET sql_log_bin=0; CREATE DATABASE big; \
         CREATE TABLE big.rows (id INT PRIMARY KEY, v VARCHAR(7000)) ENGINE=InnoDB; \
         INSERT INTO big.rows SELECT seq, REPEAT(MD5(seq), 200) FROM big.seq_1_to_48000",
    );
    put_marker(&target);
    let before = file_list(&target.datadir);
    let pid_before = target.client.facts().await.unwrap().mysqld_pid.unwrap();
    eprintln!("setup took {} ms", started.elapsed().as_millis());

    let receive = target
        .client
        .clone_receive(&target.receive_request(400 << 20, true))
        .await
        .unwrap();
    donor
        .client
        .clone_send(&donor.send_request_to(&target))
        .await
        .unwrap();
    // Kill the donor's agent as a host crash would, once data flows.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = target.client.job(&receive.id).await.unwrap();
        assert_eq!(status.state, JobState::Running, "{status:?}");
        if status.bytes > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no bytes arrived: {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let agent = donor.agent.as_mut().unwrap();
    let agent_pid = agent.child.id();
    let tools = tools_of(agent_pid);
    assert!(!tools.is_empty(), "the donor agent runs no backup tool");
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    // The backup tool dies with its agent (PDEATHSIG), like on a host crash.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tools
        .iter()
        .any(|p| Path::new(&format!("/proc/{p}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "backup tool {tools:?} outlived its agent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let status = finished(&target.client, &receive.id, Duration::from_secs(40)).await;
    assert_eq!(status.state, JobState::Failed, "{status:?}");
    let error = status.error.unwrap();
    assert!(error.contains("ended before its end marker"), "{error}");
    assert!(status.phase.contains("restored"), "{}", status.phase);
    assert!(
        status.bytes > 0 && status.bytes < 300 << 20,
        "{}",
        status.bytes
    );
    eprintln!(
        "target failed after {} bytes in {} ms",
        status.bytes, status.elapsed_ms
    );

    // The old datadir is back and mysqld runs on it again.
    let facts = target.client.facts().await.unwrap();
    assert!(facts.mysqld_running);
    assert_ne!(facts.mysqld_pid, Some(pid_before));
    assert_eq!(target.sql("SELECT v FROM keep.marker"), "still-here");
    let after = file_list(&target.datadir);
    let missing: Vec<_> = before.difference(&after).collect();
    assert!(missing.is_empty(), "files lost: {missing:?}");
    // The restart only adds a binlog.
    let added: Vec<_> = after
        .difference(&before)
        .filter(|f| !f.starts_with("mysql-bin."))
        .collect();
    assert!(added.is_empty(), "files added: {added:?}");
    assert_eq!(target.siblings(), BTreeSet::from(["data".to_string()]));
    eprintln!("test took {} ms", started.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_stream_token_is_dropped() {
    let (donor, target) = (host(3, 1, ""), host(3, 2, ""));
    donor.wait_running().await;
    target.wait_running().await;
    put_shop(&donor);
    let receive = target
        .client
        .clone_receive(&target.receive_request(10 << 20, false))
        .await
        .unwrap();
    wait_phase(&target.client, &receive.id, "waiting for the donor").await;

    for header in [
        "FLIPOVER-STREAM 1 not-the-token-xyz\n",
        "GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut stranger = TcpStream::connect(target.stream).unwrap();
        stranger
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stranger.write_all(header.as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        // Disconnected: EOF, or a reset when our unread bytes were
        // discarded; a TLS alert may come first.
        loop {
            match stranger.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                other => panic!("{header:?}: expected a disconnect, got {other:?}"),
            }
        }
        let status = target.client.job(&receive.id).await.unwrap();
        assert_eq!(
            (status.state, status.phase.as_str()),
            (JobState::Running, "waiting for the donor")
        );
    }

    let send = donor
        .client
        .clone_send(&donor.send_request_to(&target))
        .await
        .unwrap();
    let received = finished(&target.client, &receive.id, Duration::from_secs(50)).await;
    assert_eq!(received.state, JobState::Succeeded, "{received:?}");
    let sent = finished(&donor.client, &send.id, Duration::from_secs(10)).await;
    assert_eq!(sent.state, JobState::Succeeded, "{sent:?}");
    assert_eq!(target.sql("SELECT COUNT(*) FROM shop.items"), "3");
}

/// A precheck failure changes nothing: same mysqld, same files.
async fn assert_untouched(target: &Host, pid: u32, files: &BTreeSet<String>) {
    let facts = target.client.facts().await.unwrap();
    assert_eq!(facts.mysqld_pid, Some(pid));
    assert!(facts.busy_job.is_none());
    assert_eq!(&file_list(&target.datadir), files);
    assert_eq!(target.siblings(), BTreeSet::from(["data".to_string()]));
    // Nothing listens on the stream port.
    assert!(TcpStream::connect(target.stream).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_without_enough_disk() {
    let target = host(4, 1, "");
    let pid = target.wait_running().await.mysqld_pid.unwrap();
    let files = file_list(&target.datadir);
    let err = target
        .client
        .clone_receive(&target.receive_request(u64::MAX / 4, true))
        .await
        .unwrap_err();
    let AgentError::Failed {
        status: 400,
        message,
        ..
    } = &err
    else {
        panic!("expected 400, got {err}");
    };
    assert!(message.contains("not enough free disk"), "{message}");
    assert!(
        message.contains("bytes free") && message.contains("needed"),
        "{message}"
    );
    assert_untouched(&target, pid, &files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_user_data_without_replace() {
    let target = host(5, 1, "");
    let pid = target.wait_running().await.mysqld_pid.unwrap();
    put_marker(&target);
    let files = file_list(&target.datadir);
    let err = target
        .client
        .clone_receive(&target.receive_request(10 << 20, false))
        .await
        .unwrap_err();
    let AgentError::Failed {
        status: 400,
        message,
        ..
    } = &err
    else {
        panic!("expected 400, got {err}");
    };
    assert!(
        message.contains("refusing to overwrite user data without replace"),
        "{message}"
    );
    assert!(message.contains("keep"), "{message}");
    assert_untouched(&target, pid, &files).await;
    assert_eq!(target.sql("SELECT v FROM keep.marker"), "still-here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_receive_is_busy() {
    let target = host(6, 1, "");
    target.wait_running().await;
    put_marker(&target);
    let request = target.receive_request(10 << 20, true);
    let first = target.client.clone_receive(&request).await.unwrap();
    let err = target.client.clone_receive(&request).await.unwrap_err();
    assert!(
        matches!(&err, AgentError::Busy { message, .. } if message.contains(&first.id)),
        "{err}"
    );
    let err = target.client.stop_mysqld().await.unwrap_err();
    assert!(matches!(err, AgentError::Busy { .. }), "{err}");
    // One destructive job at a time: no send, no start either.
    let send = CloneSendRequest {
        target_host: "127.0.0.1".to_string(),
        target_stream_port: 9,
        stream_token: STREAM_TOKEN.to_string(),
    };
    let err = target.client.clone_send(&send).await.unwrap_err();
    assert!(matches!(err, AgentError::Busy { .. }), "{err}");
    let err = target.client.start_mysqld().await.unwrap_err();
    assert!(matches!(err, AgentError::Busy { .. }), "{err}");
    wait_phase(&target.client, &first.id, "waiting for the donor").await;

    // A slow-loris on the stream port (connects, says nothing) is dropped
    // after the header timeout, and the wait for the donor goes on.
    let mut silent = TcpStream::connect(target.stream).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the silent connection dropped, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "dropped after {waited:?}"
    );
    let status = target.client.job(&first.id).await.unwrap();
    assert_eq!(
        (status.state, status.phase.as_str()),
        (JobState::Running, "waiting for the donor")
    );

    // A "donor" with the right token that dies before sending anything:
    // the job fails and the target is restored.
    wait_phase(&target.client, &first.id, "waiting for the donor").await;
    let (cert, key) = common::pki().issue("dying-donor", "127.44.6.99", Role::Host);
    let mut donor = common::tls_connect(target.stream, Some((&cert, &key)), &common::pki().ca)
        .await
        .unwrap();
    donor
        .write_all(format!("FLIPOVER-STREAM 1 {STREAM_TOKEN}\n").as_bytes())
        .await
        .unwrap();
    donor.flush().await.unwrap();
    drop(donor);
    let status = finished(&target.client, &first.id, Duration::from_secs(40)).await;
    assert_eq!(status.state, JobState::Failed, "{status:?}");
    assert!(
        status
            .error
            .as_deref()
            .unwrap()
            .contains("ended before its end marker"),
        "{status:?}"
    );
    assert!(target.client.facts().await.unwrap().mysqld_running);
    assert_eq!(target.sql("SELECT v FROM keep.marker"), "still-here");
    assert_eq!(target.siblings(), BTreeSet::from(["data".to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_agent_mid_receive_restores_the_target() {
    let mut target = host(7, 1, "");
    target.wait_running().await;
    put_marker(&target);
    let files = file_list(&target.datadir);
    let receive = target
        .client
        .clone_receive(&target.receive_request(10 << 20, true))
        .await
        .unwrap();
    wait_phase(&target.client, &receive.id, "waiting for the donor").await;
    assert!(!target.datadir.join("keep").exists());

    // SIGTERM: the agent puts the datadir back and restarts mysqld first.
    let agent = target.agent.as_mut().unwrap();
    kill(Pid::from_raw(agent.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = agent.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the agent did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    assert_eq!(target.sql("SELECT v FROM keep.marker"), "still-here");
    let after = file_list(&target.datadir);
    assert!(
        files.is_subset(&after),
        "files lost: {:?}",
        files.difference(&after)
    );
    assert_eq!(target.siblings(), BTreeSet::from(["data".to_string()]));
}
