//! The watchers' coordination against a real 3-member etcd cluster: one
//! leader per cluster, takeover within the lease TTL, loss noticed before
//! the TTL ends, calls that fail within their timeout when etcd has no
//! quorum, and the shared pause and failover state.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::etcd::EtcdCluster;
use flipover::watch::coordination::{
    CoordinationError, Coordinator, Leadership, LossReason, Options,
};

const CLUSTER: &str = "shop";

fn options() -> Options {
    Options::default()
}

async fn coordinator(etcd: &EtcdCluster) -> Coordinator {
    // RUST_LOG=flipover=debug shows the coordination's retries.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Coordinator::connect(&etcd.endpoints(), options())
        .await
        .expect("connect to etcd")
}

/// Campaigns in a task of its own, so the test can watch it wait.
fn campaign_in_background(
    coordinator: std::sync::Arc<Coordinator>,
) -> tokio::task::JoinHandle<Result<Leadership, CoordinationError>> {
    tokio::spawn(async move { coordinator.campaign(CLUSTER).await })
}

/// Asserts that a background campaign still waits (it neither won nor
/// failed), showing its outcome otherwise.
fn still_waiting(
    waiting: &mut tokio::task::JoinHandle<Result<Leadership, CoordinationError>>,
    what: &str,
) {
    use futures::FutureExt;
    if let Some(outcome) = waiting.now_or_never() {
        panic!("{what}: the other campaign ended: {outcome:?}");
    }
}

/// Asserts that `leadership` stays leader for `period`, checked every 50 ms.
async fn stays_leader(leadership: &Leadership, period: Duration, what: &str) {
    let started = Instant::now();
    while started.elapsed() < period {
        assert!(
            leadership.is_leader(),
            "{what}: leadership lost after {:?}: {:?}",
            started.elapsed(),
            leadership.loss()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_leads_and_another_takes_over_within_the_ttl_when_it_dies() {
    let etcd = EtcdCluster::start(3);
    let ttl = options().lease_ttl;
    let mut leader = std::sync::Arc::new(coordinator(&etcd).await);
    let mut leadership = leader.campaign(CLUSTER).await.unwrap();
    assert!(leadership.is_leader());

    let mut takeovers = Vec::new();
    for round in 1..=3 {
        let next = std::sync::Arc::new(coordinator(&etcd).await);
        let mut waiting = campaign_in_background(next.clone());
        // While the leader lives, the other one only waits.
        stays_leader(&leadership, Duration::from_secs(2), "the leader").await;
        still_waiting(&mut waiting, &format!("round {round}"));
        let shown = next.leader(CLUSTER).await.unwrap().unwrap();
        assert_eq!(shown.watcher, leader.watcher().as_str());

        // The leader's process dies: no resign, no revoke, no keep-alive.
        let died = Instant::now();
        drop(std::sync::Arc::into_inner(leader).expect("one owner"));
        assert!(
            !leadership.is_leader(),
            "a dead coordinator's leadership ends at once"
        );
        assert_eq!(leadership.lost().await, LossReason::CoordinatorClosed);

        let successor = tokio::time::timeout(ttl * 2, waiting)
            .await
            .expect("a successor within twice the TTL")
            .unwrap()
            .unwrap();
        let takeover = died.elapsed();
        assert!(successor.is_leader());
        assert!(
            takeover <= ttl + Duration::from_millis(1500),
            "round {round}: takeover took {takeover:?} with a {ttl:?} lease"
        );
        let shown = next.leader(CLUSTER).await.unwrap().unwrap();
        assert_eq!(shown.watcher, next.watcher().as_str());
        println!("round {round}: takeover after the leader died: {takeover:?} (lease TTL {ttl:?})");
        takeovers.push(takeover);
        drop(leadership);
        leader = next;
        leadership = successor;
    }
    takeovers.sort();
    println!(
        "FIGURE takeover after the leader died, lease TTL {ttl:?}: min {:?}, median {:?}, max {:?}",
        takeovers[0], takeovers[1], takeovers[2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_resigns_or_shuts_down_hands_over_at_once() {
    let etcd = EtcdCluster::start(3);
    let first = std::sync::Arc::new(coordinator(&etcd).await);
    let second = std::sync::Arc::new(coordinator(&etcd).await);
    let leadership = first.campaign(CLUSTER).await.unwrap();
    let mut waiting = campaign_in_background(second.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    still_waiting(&mut waiting, "while the first leads");

    let resigned = Instant::now();
    leadership.resign().await.unwrap();
    let successor = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the other leads within 2 s of a resign")
        .unwrap()
        .unwrap();
    let handover = resigned.elapsed();
    println!("FIGURE handover after a resign: {handover:?}");
    assert!(handover < Duration::from_secs(1), "{handover:?}");
    assert!(successor.is_leader());
    let shown = first.leader(CLUSTER).await.unwrap().unwrap();
    assert_eq!(shown.watcher, second.watcher().as_str());

    // The first one campaigns again, and waits behind the new leader...
    let mut waiting = campaign_in_background(first.clone());
    stays_leader(&successor, Duration::from_secs(1), "the successor").await;
    still_waiting(&mut waiting, "while the second leads");

    // ...until the new leader's watcher stops politely: its lease is
    // revoked, so the first leads at once instead of after the TTL.
    let stopped = Instant::now();
    std::sync::Arc::into_inner(second)
        .expect("one owner")
        .shutdown()
        .await
        .unwrap();
    assert_eq!(successor.loss(), Some(LossReason::CoordinatorClosed));
    let again = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the first leads within 2 s of a shutdown")
        .unwrap()
        .unwrap();
    let handover = stopped.elapsed();
    println!("FIGURE handover after a watcher's shutdown: {handover:?}");
    assert!(handover < Duration::from_secs(1), "{handover:?}");
    assert!(again.is_leader());
}

/// Loses the quorum keeping member `keep`, and returns how long the leader
/// took to notice, and the members killed.
async fn quorum_loss_noticed(
    etcd: &mut EtcdCluster,
    keep: usize,
    leadership: &Leadership,
) -> (Duration, Vec<usize>) {
    let ttl = options().lease_ttl;
    let lost_at = Instant::now();
    let killed = etcd.lose_quorum(keep);
    let reason = tokio::time::timeout(ttl * 2, leadership.lost())
        .await
        .expect("the leader notices the lost quorum");
    let noticed = lost_at.elapsed();
    assert!(!leadership.is_leader());
    assert!(
        matches!(
            reason,
            LossReason::RenewalOverdue | LossReason::LeaseExpired
        ),
        "{reason}"
    );
    (noticed, killed)
}

/// The member that is etcd's Raft leader, waiting for one.
async fn raft_leader(etcd: &EtcdCluster) -> usize {
    for _ in 0..100 {
        if let Some(leader) = etcd.raft_leader() {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no Raft leader\n{}", etcd.log_tails());
}

/// Campaigns until it wins, for at most 30 s (after a fault).
async fn campaign_until_won(coordinator: &Coordinator) -> Leadership {
    let started = Instant::now();
    let ttl = options().lease_ttl;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "this watcher does not lead 30 s after a fault"
        );
        match tokio::time::timeout(ttl * 2, coordinator.campaign(CLUSTER)).await {
            Ok(Ok(leadership)) => return leadership,
            Ok(Err(e)) => {
                println!("campaign failed ({e}); again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(_) => println!("campaign still waiting"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_quorum_ends_leadership_within_the_ttl_and_calls_fail_within_their_timeout() {
    let mut etcd = EtcdCluster::start(3);
    let options = options();
    let (ttl, call_timeout) = (options.lease_ttl, options.call_timeout);
    let leader = coordinator(&etcd).await;
    let other = std::sync::Arc::new(coordinator(&etcd).await);
    let leadership = leader.campaign(CLUSTER).await.unwrap();
    let waiting = campaign_in_background(other.clone());
    stays_leader(&leadership, Duration::from_secs(1), "the leader").await;

    // The member left is a follower: renewals fail from the first one on.
    let keep = (raft_leader(&etcd).await + 1) % etcd.len();
    let (noticed, killed) = quorum_loss_noticed(&mut etcd, keep, &leadership).await;
    println!(
        "FIGURE quorum loss (a follower left) noticed by the leader after {noticed:?} \
         (lease TTL {ttl:?}, safety margin {:?})",
        options.safety_margin
    );
    assert!(noticed < ttl, "{noticed:?}");

    // Nobody leads: the other campaign ends with its own lease, and never
    // succeeds while the quorum is gone.
    let outcome = tokio::time::timeout(ttl, waiting)
        .await
        .expect("the waiting campaign ends within the TTL")
        .unwrap();
    assert!(
        matches!(outcome, Err(CoordinationError::LeaseLost(_))),
        "{outcome:?}"
    );
    drop(leadership);

    // Every call fails within its timeout, none hangs.
    let slack = Duration::from_millis(500);
    let within = |started: Instant| started.elapsed() < call_timeout + slack;
    let started = Instant::now();
    let read = leader.leader(CLUSTER).await;
    let read_failed = started.elapsed();
    assert!(read.is_err(), "{read:?}");
    assert!(within(started), "{read_failed:?}");
    let started = Instant::now();
    let paused = other.paused(CLUSTER).await;
    assert!(paused.is_err(), "{paused:?}");
    assert!(within(started));
    let started = Instant::now();
    let pause = other.pause(CLUSTER, None, "dba").await;
    assert!(pause.is_err(), "{pause:?}");
    assert!(within(started));
    let started = Instant::now();
    let campaign = leader.campaign(CLUSTER).await;
    let campaign_failed = started.elapsed();
    assert!(
        matches!(
            campaign,
            Err(CoordinationError::Etcd { .. } | CoordinationError::Timeout { .. })
        ),
        "{campaign:?}"
    );
    assert!(within(started), "{campaign_failed:?}");
    let started = Instant::now();
    let connect = Coordinator::connect(&[etcd.endpoint(keep)], options.clone()).await;
    assert!(
        matches!(connect, Err(CoordinationError::Connect { .. })),
        "connect without a quorum"
    );
    assert!(within(started));
    println!(
        "FIGURE without a quorum: a leader read failed in {read_failed:?}, a campaign in \
         {campaign_failed:?} (call timeout {call_timeout:?})"
    );

    // Quorum back: leadership can be won again, by exactly one of them.
    let restored = Instant::now();
    etcd.restore(&killed);
    let leadership = campaign_until_won(&leader).await;
    println!(
        "leadership won again {:?} after the quorum came back",
        restored.elapsed()
    );
    let mut waiting = campaign_in_background(other.clone());
    stays_leader(&leadership, Duration::from_secs(2), "the new leader").await;
    still_waiting(&mut waiting, "after the quorum came back");
    let shown = other.leader(CLUSTER).await.unwrap().unwrap();
    assert_eq!(shown.watcher, leader.watcher().as_str());

    // The member left is etcd's Raft leader: it goes on renewing leases
    // until it notices it lost its followers (its election timeout, 1 s),
    // and the watcher's deadline counts from that last renewal.
    let keep = raft_leader(&etcd).await;
    let (noticed, _) = quorum_loss_noticed(&mut etcd, keep, &leadership).await;
    println!(
        "FIGURE quorum loss (the Raft leader left) noticed by the leader after {noticed:?} \
         (lease TTL {ttl:?}, etcd election timeout 1 s)"
    );
    assert!(noticed < ttl + Duration::from_secs(1), "{noticed:?}");
    let outcome = tokio::time::timeout(ttl, waiting)
        .await
        .expect("the waiting campaign ends within the TTL")
        .unwrap();
    assert!(
        matches!(outcome, Err(CoordinationError::LeaseLost(_))),
        "{outcome:?}"
    );
}

/// The endpoints with `first` first: the coordinators use that member
/// until it fails.
fn endpoints_from(etcd: &EtcdCluster, first: usize) -> Vec<String> {
    (0..etcd.len())
        .map(|i| etcd.endpoint((first + i) % etcd.len()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_survives_the_member_it_uses_killed_or_hung() {
    let mut etcd = EtcdCluster::start(3);
    let ttl = options().lease_ttl;
    // The coordinators use a follower, so the quorum keeps its leader and
    // only the coordinators have to move to another member.
    let used = (raft_leader(&etcd).await + 1) % etcd.len();
    let endpoints = endpoints_from(&etcd, used);
    let leader = Coordinator::connect(&endpoints, options()).await.unwrap();
    let other = std::sync::Arc::new(Coordinator::connect(&endpoints, options()).await.unwrap());
    let leadership = leader.campaign(CLUSTER).await.unwrap();
    let mut waiting = campaign_in_background(other.clone());

    etcd.kill(used);
    stays_leader(&leadership, ttl * 2, "the member in use killed").await;
    still_waiting(&mut waiting, "the member in use killed");
    let shown = other.leader(CLUSTER).await.unwrap().unwrap();
    assert_eq!(shown.watcher, leader.watcher().as_str());
    etcd.restart(used);
    etcd.wait_healthy(Duration::from_secs(30));

    // A hung member (SIGSTOP) keeps its connections open and answers
    // nothing; the coordinators use the next one now, so hang that one.
    let raft_leader = raft_leader(&etcd).await;
    let hung = (1..etcd.len())
        .map(|i| (used + i) % etcd.len())
        .find(|i| *i != raft_leader)
        .unwrap_or(used);
    etcd.pause(hung);
    stays_leader(&leadership, ttl * 2, &format!("member {hung} hung")).await;
    still_waiting(&mut waiting, &format!("member {hung} hung"));
    etcd.resume(hung);
    etcd.wait_healthy(Duration::from_secs(30));
    stays_leader(&leadership, Duration::from_secs(1), "all members back").await;
}

/// Samples both watchers every 20 ms for `period`: never two leaders. The
/// other watcher's campaign is made again when it fails; `second` is its
/// leadership once won. Returns when the first lost its leadership, if it
/// did.
async fn never_two_leaders(
    first: &Leadership,
    waiting: &mut tokio::task::JoinHandle<Result<Leadership, CoordinationError>>,
    second: &mut Option<Leadership>,
    other: &std::sync::Arc<Coordinator>,
    period: Duration,
) -> Option<Duration> {
    use futures::FutureExt;
    let started = Instant::now();
    let mut first_lost = None;
    while started.elapsed() < period {
        if second.is_none() {
            if let Some(outcome) = waiting.now_or_never() {
                match outcome.unwrap() {
                    Ok(won) => *second = Some(won),
                    Err(e) => {
                        println!("the other campaign ended ({e}); campaigning again");
                        *waiting = campaign_in_background(other.clone());
                    }
                }
            }
        }
        let first_leads = first.is_leader();
        let second_leads = second.as_ref().is_some_and(Leadership::is_leader);
        assert!(
            !(first_leads && second_leads),
            "two leaders {:?} in",
            started.elapsed()
        );
        if !first_leads && first_lost.is_none() {
            first_lost = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first_lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_or_hung_raft_leader_never_makes_two_leaders() {
    let mut etcd = EtcdCluster::start(3);
    let ttl = options().lease_ttl;
    let coordinators = [
        std::sync::Arc::new(coordinator(&etcd).await),
        std::sync::Arc::new(coordinator(&etcd).await),
    ];
    for fault in ["killed", "hung"] {
        let leadership = campaign_until_won(&coordinators[0]).await;
        let mut waiting = campaign_in_background(coordinators[1].clone());
        let raft_leader = raft_leader(&etcd).await;
        if fault == "killed" {
            etcd.kill(raft_leader);
        } else {
            etcd.pause(raft_leader);
        }
        // etcd elects another Raft leader within a second or two; leases
        // cannot be renewed meanwhile, and a renewal budget of TTL - margin
        // (4 s) may not cover it: the leadership may pass, never double.
        let mut second = None;
        let lost = never_two_leaders(
            &leadership,
            &mut waiting,
            &mut second,
            &coordinators[1],
            ttl * 3,
        )
        .await;
        match (lost, &second) {
            (None, _) => println!("FIGURE Raft leader {fault}: the leadership survived"),
            (Some(after), Some(_)) => println!(
                "FIGURE Raft leader {fault}: the leadership was lost after {after:?} and \
                 passed to the other watcher"
            ),
            (Some(after), None) => panic!(
                "Raft leader {fault}: the leadership was lost after {after:?} and nobody \
                 leads {:?} after the fault",
                ttl * 3
            ),
        }
        if fault == "killed" {
            etcd.restart(raft_leader);
        } else {
            etcd.resume(raft_leader);
        }
        etcd.wait_healthy(Duration::from_secs(30));
        // The next round starts from whoever leads now, resigning so that
        // the round's first watcher wins at once.
        if let Some(second) = second {
            second.resign().await.unwrap();
        }
        drop(leadership);
        waiting.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_and_the_last_failover_are_shared_and_only_a_leader_records() {
    let etcd = EtcdCluster::start(3);
    let first = coordinator(&etcd).await;
    let second = coordinator(&etcd).await;

    assert_eq!(first.paused(CLUSTER).await.unwrap(), None);
    first.pause(CLUSTER, None, "dba@host1").await.unwrap();
    let seen = second.paused(CLUSTER).await.unwrap().expect("paused");
    assert_eq!((seen.by.as_str(), seen.until), ("dba@host1", None));
    assert_eq!(second.paused("other-cluster").await.unwrap(), None);
    assert!(second.resume(CLUSTER).await.unwrap());
    assert_eq!(first.paused(CLUSTER).await.unwrap(), None);
    assert!(!first.resume(CLUSTER).await.unwrap());

    // A timed pause ends by itself, for every watcher.
    let until = SystemTime::now() + Duration::from_secs(2);
    second
        .pause(CLUSTER, Some(until), "dba@host2")
        .await
        .unwrap();
    for coordinator in [&first, &second] {
        let seen = coordinator.paused(CLUSTER).await.unwrap().expect("paused");
        assert_eq!(seen.by, "dba@host2");
        let seen_until = seen.until.expect("timed");
        let skew = seen_until
            .duration_since(until)
            .unwrap_or_else(|e| e.duration());
        assert!(skew < Duration::from_millis(1), "{skew:?}");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(first.paused(CLUSTER).await.unwrap(), None);
    assert_eq!(second.paused(CLUSTER).await.unwrap(), None);
    assert!(matches!(
        first
            .pause(
                CLUSTER,
                Some(SystemTime::now() - Duration::from_secs(1)),
                "dba"
            )
            .await,
        Err(CoordinationError::PauseInPast(_))
    ));

    // The last failover round-trips, written by the leader.
    assert_eq!(second.last_failover(CLUSTER).await.unwrap(), None);
    let leadership = first.campaign(CLUSTER).await.unwrap();
    let at = SystemTime::now();
    leadership
        .record_failover(at, "db1", "db2", Some(Duration::from_millis(1830)))
        .await
        .unwrap();
    let record = second
        .last_failover(CLUSTER)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(record.old_primary, "db1");
    assert_eq!(record.new_primary, "db2");
    assert_eq!(record.watcher, first.watcher().as_str());
    assert_eq!(record.duration, Some(Duration::from_millis(1830)));
    let skew = record
        .at
        .duration_since(at)
        .unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_millis(1), "{skew:?}");

    // An operator deletes the election key: the leader knows at once and
    // can no longer record.
    let mut raw = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    let deleted_at = Instant::now();
    let deleted = raw
        .delete(
            "/flipover/v1/clusters/shop/leader/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), 1);
    let reason = tokio::time::timeout(Duration::from_secs(1), leadership.lost())
        .await
        .expect("the key's deletion is noticed within a second");
    println!(
        "election key deletion noticed after {:?}",
        deleted_at.elapsed()
    );
    assert_eq!(reason, LossReason::KeyDeleted);
    assert!(!leadership.is_leader());
    let refused = leadership
        .record_failover(SystemTime::now(), "db2", "db3", None)
        .await;
    assert!(
        matches!(refused, Err(CoordinationError::NotLeader(_))),
        "{refused:?}"
    );
    let record = second.last_failover(CLUSTER).await.unwrap().unwrap();
    assert_eq!(
        record.new_primary, "db2",
        "a former leader's record was written"
    );
}
