//! The watchers' shared state: who acts for each cluster, which clusters are
//! paused, and each cluster's last automatic failover (for the cooldown).
//!
//! With etcd (`Coordinator::connect`), several watchers on different machines
//! share it. Each watcher holds one etcd lease, kept alive by a task; for
//! each cluster, it campaigns through etcd's election API with a candidate
//! key under that lease, and the candidate with the lowest create revision
//! leads. No consensus of our own: etcd's Raft decides, leases tell a live
//! watcher from a dead one. The key layout is in `keys.rs`.
//!
//! A `Leadership` knows at once when it is lost: etcd says the lease is
//! gone, no renewal succeeded before the local deadline (the lease's TTL
//! minus a safety margin, counted from when the last successful renewal was
//! sent, so the watcher stops before etcd can elect another), or its
//! candidate key was deleted. `is_leader()` checks the deadline itself, so
//! it is right even when the tasks that watch etcd are late.
//!
//! Every call to etcd has a time limit (`Options::call_timeout`): an etcd
//! that lost its quorum makes calls fail within it, never hang. A campaign
//! waits as long as another watcher leads, but fails as soon as its own
//! lease is lost. A watcher talks to one etcd member at a time and moves to
//! the next as soon as that one fails, hangs or has no leader
//! (`members.rs`), so one member down or cut off costs no leadership.
//!
//! Without etcd (`Coordinator::single`), one watcher keeps the same state in
//! its memory: it always leads, and says it is a single point of failure.

mod etcd;
mod keys;
mod lease;
mod local;
mod members;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

pub use keys::DEFAULT_PREFIX;

use lease::SessionState;

/// What the CLI prints when a watcher runs without etcd.
pub const SINGLE_POINT_OF_FAILURE: &str = "no etcd configured: this watcher runs alone and is a \
single point of failure (if it or its host stops, no cluster fails over), and pauses and the \
last failover of each cluster live only in its memory; give --etcd to run several watchers";

#[derive(Debug, Clone)]
pub struct Options {
    /// The TTL of the watcher's lease, in whole seconds: a dead watcher's
    /// leaderships pass to another within about this time.
    pub lease_ttl: Duration,
    /// A leader counts itself not leader this long before its lease can
    /// expire on etcd's side, to stop acting first.
    pub safety_margin: Duration,
    /// The time limit of every call to etcd.
    pub call_timeout: Duration,
    /// Where the state lives in etcd (see `keys.rs`).
    pub prefix: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            lease_ttl: Duration::from_secs(5),
            safety_margin: Duration::from_secs(1),
            call_timeout: Duration::from_secs(2),
            prefix: DEFAULT_PREFIX.to_string(),
        }
    }
}

impl Options {
    fn validate(&self) -> Result<(), CoordinationError> {
        let invalid = |why: String| Err(CoordinationError::InvalidOptions(why));
        if self.lease_ttl < Duration::from_secs(2) || self.lease_ttl.subsec_nanos() != 0 {
            return invalid(format!(
                "the lease TTL must be whole seconds, at least 2 (etcd's minimum with its \
                 default election timeout), not {:?}",
                self.lease_ttl
            ));
        }
        if self.safety_margin.is_zero() || self.safety_margin * 2 > self.lease_ttl {
            return invalid(format!(
                "the safety margin must be above zero and at most half the lease TTL \
                 ({:?}), not {:?}",
                self.lease_ttl, self.safety_margin
            ));
        }
        if self.call_timeout < Duration::from_millis(100) || self.call_timeout >= self.lease_ttl {
            return invalid(format!(
                "the call timeout must be at least 100 ms and below the lease TTL ({:?}), \
                 not {:?}",
                self.lease_ttl, self.call_timeout
            ));
        }
        if !self.prefix.starts_with('/') {
            return invalid(format!(
                "the key prefix must start with '/': {:?}",
                self.prefix
            ));
        }
        Ok(())
    }
}

/// A watcher's identity: host, pid and a random part (a restarted watcher,
/// or two in one process, are different watchers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatcherId {
    id: String,
    host: String,
    pid: u32,
}

impl WatcherId {
    pub fn generate() -> WatcherId {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown".to_string());
        let pid = std::process::id();
        let random: u32 = rand::random();
        WatcherId {
            id: format!("{host}:{pid}:{random:08x}"),
            host,
            pid,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl fmt::Display for WatcherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Why a leadership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// etcd answered a renewal saying the lease no longer exists.
    LeaseExpired,
    /// No renewal succeeded in time: etcd may expire the lease any moment.
    RenewalOverdue,
    /// The candidate key was deleted (by an operator, or a resign elsewhere).
    KeyDeleted,
    /// The leader resigned.
    Resigned,
    /// The coordinator was dropped or shut down: its keep-alive stopped.
    CoordinatorClosed,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::LeaseExpired => "etcd says the watcher's lease expired",
            LossReason::RenewalOverdue => {
                "the watcher's lease could not be renewed before its safety deadline"
            }
            LossReason::KeyDeleted => "the election key was deleted",
            LossReason::Resigned => "the watcher resigned",
            LossReason::CoordinatorClosed => "the watcher's coordinator stopped",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    #[error("invalid coordination options: {0}")]
    InvalidOptions(String),
    #[error("no etcd endpoint given")]
    NoEndpoints,
    #[error("cannot reach etcd at {endpoints}: {reason}")]
    Connect { endpoints: String, reason: String },
    #[error("etcd did not answer {operation} within {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
    },
    #[error("etcd failed {operation}: {source}")]
    Etcd {
        operation: &'static str,
        #[source]
        source: etcd_client::Error,
    },
    #[error("the watcher's lease is lost ({0})")]
    LeaseLost(LossReason),
    #[error("this watcher already campaigns for or leads cluster {0}")]
    AlreadyCampaigning(String),
    #[error("this watcher no longer leads cluster {0}")]
    NotLeader(String),
    #[error("a timed pause of cluster {0} must end in the future")]
    PauseInPast(String),
    #[error("unreadable value at {key} in etcd: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Who leads a cluster now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    pub watcher: String,
    pub host: String,
    pub pid: u32,
    /// When it started campaigning (by its own clock).
    pub since: SystemTime,
}

/// A cluster's maintenance pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub by: String,
    pub since: SystemTime,
    /// `None`: until `resume`.
    pub until: Option<SystemTime>,
}

/// A cluster's last automatic failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverRecord {
    pub at: SystemTime,
    pub old_primary: String,
    pub new_primary: String,
    pub watcher: String,
    pub duration: Option<Duration>,
}

/// Where the coordinator keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Etcd { endpoints: Vec<String> },
    Single,
}

pub struct Coordinator {
    watcher: WatcherId,
    options: Options,
    claims: Claims,
    backend: Backend,
}

enum Backend {
    Etcd(etcd::EtcdBackend),
    Local(local::LocalBackend),
}

impl Coordinator {
    /// Connects to etcd (any of `endpoints`, e.g. `http://10.0.0.5:2379`) and
    /// checks that it answers within the call timeout. The lease is granted
    /// at the first campaign.
    pub async fn connect(
        endpoints: &[String],
        options: Options,
    ) -> Result<Coordinator, CoordinationError> {
        options.validate()?;
        if endpoints.is_empty() {
            return Err(CoordinationError::NoEndpoints);
        }
        let watcher = WatcherId::generate();
        let backend = etcd::EtcdBackend::connect(endpoints, &options).await?;
        Ok(Coordinator {
            watcher,
            options,
            claims: Claims::default(),
            backend: Backend::Etcd(backend),
        })
    }

    /// A watcher alone, without etcd; the text says it is a single point of
    /// failure (`SINGLE_POINT_OF_FAILURE`), for the CLI to print.
    pub fn single() -> (Coordinator, &'static str) {
        let coordinator = Coordinator {
            watcher: WatcherId::generate(),
            options: Options::default(),
            claims: Claims::default(),
            backend: Backend::Local(local::LocalBackend::default()),
        };
        (coordinator, SINGLE_POINT_OF_FAILURE)
    }

    pub fn watcher(&self) -> &WatcherId {
        &self.watcher
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn mode(&self) -> Mode {
        match &self.backend {
            Backend::Etcd(etcd) => Mode::Etcd {
                endpoints: etcd.endpoints().to_vec(),
            },
            Backend::Local(_) => Mode::Single,
        }
    }

    /// Waits until this watcher leads `cluster`. With etcd it waits as long
    /// as another watcher leads, and fails when its own lease is lost or
    /// etcd fails the campaign. Dropping the future withdraws the candidacy.
    pub async fn campaign(&self, cluster: &str) -> Result<Leadership, CoordinationError> {
        let claim = self.claims.claim(cluster)?;
        let inner = match &self.backend {
            Backend::Etcd(etcd) => {
                LeadershipInner::Etcd(etcd.campaign(cluster, &self.watcher, claim).await?)
            }
            Backend::Local(local) => LeadershipInner::Local(local.campaign(cluster, claim)),
        };
        Ok(Leadership {
            cluster: cluster.to_string(),
            watcher: self.watcher.clone(),
            inner,
        })
    }

    /// Who leads `cluster` now, if anyone.
    pub async fn leader(&self, cluster: &str) -> Result<Option<LeaderInfo>, CoordinationError> {
        match &self.backend {
            Backend::Etcd(etcd) => etcd.leader(cluster).await,
            Backend::Local(local) => Ok(local.leader(cluster, &self.watcher)),
        }
    }

    /// Pauses `cluster` (observed, never acted on) until `until`, or until
    /// `resume` when `None`. A later pause replaces an earlier one.
    pub async fn pause(
        &self,
        cluster: &str,
        until: Option<SystemTime>,
        by: &str,
    ) -> Result<(), CoordinationError> {
        let now = SystemTime::now();
        if until.is_some_and(|until| until <= now) {
            return Err(CoordinationError::PauseInPast(cluster.to_string()));
        }
        let pause = Pause {
            by: by.to_string(),
            since: now,
            until,
        };
        match &self.backend {
            Backend::Etcd(etcd) => etcd.pause(cluster, &pause).await,
            Backend::Local(local) => {
                local.pause(cluster, pause);
                Ok(())
            }
        }
    }

    /// Ends `cluster`'s pause; whether there was one (an ended timed pause
    /// not yet cleaned up counts as one).
    pub async fn resume(&self, cluster: &str) -> Result<bool, CoordinationError> {
        match &self.backend {
            Backend::Etcd(etcd) => etcd.resume(cluster).await,
            Backend::Local(local) => Ok(local.resume(cluster)),
        }
    }

    /// `cluster`'s pause, if it is paused now (a timed pause that has ended,
    /// by this watcher's clock, is none).
    pub async fn paused(&self, cluster: &str) -> Result<Option<Pause>, CoordinationError> {
        let pause = match &self.backend {
            Backend::Etcd(etcd) => etcd.paused(cluster).await?,
            Backend::Local(local) => local.paused(cluster),
        };
        let now = SystemTime::now();
        Ok(pause.filter(|p| p.until.is_none_or(|until| until > now)))
    }

    /// `cluster`'s last automatic failover, if one was recorded.
    pub async fn last_failover(
        &self,
        cluster: &str,
    ) -> Result<Option<FailoverRecord>, CoordinationError> {
        match &self.backend {
            Backend::Etcd(etcd) => etcd.last_failover(cluster).await,
            Backend::Local(local) => Ok(local.last_failover(cluster)),
        }
    }

    /// Stops the watcher politely: every leadership is lost at once and, with
    /// etcd, the lease is revoked so that other watchers take over now
    /// instead of after the TTL. (Dropping the coordinator instead is a
    /// crash: its leaderships end, but etcd keeps them until the TTL.)
    pub async fn shutdown(self) -> Result<(), CoordinationError> {
        match &self.backend {
            Backend::Etcd(etcd) => etcd.shutdown().await,
            Backend::Local(local) => {
                local.close();
                Ok(())
            }
        }
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        match &self.backend {
            Backend::Etcd(etcd) => etcd.abandon(),
            Backend::Local(local) => local.close(),
        }
    }
}

/// The right to act for one cluster, while it lasts.
pub struct Leadership {
    cluster: String,
    watcher: WatcherId,
    inner: LeadershipInner,
}

enum LeadershipInner {
    Etcd(etcd::EtcdLeadership),
    Local(local::LocalLeadership),
}

impl Leadership {
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    fn state(&self) -> &LeadershipState {
        match &self.inner {
            LeadershipInner::Etcd(etcd) => etcd.state(),
            LeadershipInner::Local(local) => local.state(),
        }
    }

    /// Whether this watcher may act for the cluster now. Cheap and
    /// synchronous: no call to etcd, the lease's deadline is checked here.
    pub fn is_leader(&self) -> bool {
        self.state().reason().is_none()
    }

    /// Why the leadership ended, once it has.
    pub fn loss(&self) -> Option<LossReason> {
        self.state().reason()
    }

    /// Resolves when the leadership is lost (at once if it already is).
    pub async fn lost(&self) -> LossReason {
        self.state().lost().await
    }

    /// Records an automatic failover of this cluster, only while this
    /// watcher still leads it (with etcd, in one transaction that checks
    /// its candidate key, so a former leader's late write is refused).
    pub async fn record_failover(
        &self,
        at: SystemTime,
        old_primary: &str,
        new_primary: &str,
        duration: Option<Duration>,
    ) -> Result<(), CoordinationError> {
        if !self.is_leader() {
            return Err(CoordinationError::NotLeader(self.cluster.clone()));
        }
        let record = FailoverRecord {
            at,
            old_primary: old_primary.to_string(),
            new_primary: new_primary.to_string(),
            watcher: self.watcher.to_string(),
            duration,
        };
        match &self.inner {
            LeadershipInner::Etcd(etcd) => etcd.record_failover(&self.cluster, &record).await,
            LeadershipInner::Local(local) => {
                local.record_failover(&self.cluster, record);
                Ok(())
            }
        }
    }

    /// Gives the leadership up: this watcher stops counting itself leader
    /// before anything is sent, then etcd deletes its candidate key so
    /// another watcher leads at once. When etcd cannot be reached, the key is
    /// deleted later by a background retry, or goes with the lease.
    pub async fn resign(self) -> Result<(), CoordinationError> {
        self.state().set(LossReason::Resigned);
        match self.inner {
            LeadershipInner::Etcd(etcd) => etcd.resign().await,
            LeadershipInner::Local(local) => {
                local.resign();
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("cluster", &self.cluster)
            .field("watcher", &self.watcher.as_str())
            .field("loss", &self.loss())
            .finish()
    }
}

/// The loss state of one leadership: its own reason once set, and (with
/// etcd) its session's, including the session's deadline.
#[derive(Debug)]
struct LeadershipState {
    reason: watch::Sender<Option<LossReason>>,
    session: Option<Arc<SessionState>>,
}

impl LeadershipState {
    fn new(session: Option<Arc<SessionState>>) -> LeadershipState {
        LeadershipState {
            reason: watch::Sender::new(None),
            session,
        }
    }

    fn reason(&self) -> Option<LossReason> {
        if let Some(reason) = *self.reason.borrow() {
            return Some(reason);
        }
        self.session.as_ref().and_then(|s| s.reason())
    }

    /// Marks the leadership lost; the first reason stays.
    fn set(&self, reason: LossReason) {
        self.reason.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    async fn lost(&self) -> LossReason {
        let mut own = self.reason.subscribe();
        let own_loss = async move {
            match own.wait_for(Option::is_some).await {
                Ok(reason) => reason.unwrap_or(LossReason::CoordinatorClosed),
                Err(_) => LossReason::CoordinatorClosed,
            }
        };
        match &self.session {
            Some(session) => tokio::select! {
                reason = own_loss => reason,
                reason = session.ended() => reason,
            },
            None => own_loss.await,
        }
    }
}

/// The clusters this coordinator campaigns for or leads: one candidacy per
/// cluster (with etcd, a second one would share the first one's key). A
/// claim lasts as long as the candidacy's key may exist: a withdrawal that
/// etcd did not confirm yet keeps it.
#[derive(Debug, Default, Clone)]
struct Claims(Arc<Mutex<HashSet<String>>>);

impl Claims {
    fn claim(&self, cluster: &str) -> Result<Claim, CoordinationError> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !held.insert(cluster.to_string()) {
            return Err(CoordinationError::AlreadyCampaigning(cluster.to_string()));
        }
        Ok(Claim {
            claims: self.clone(),
            cluster: cluster.to_string(),
        })
    }
}

#[derive(Debug)]
struct Claim {
    claims: Claims,
    cluster: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = self.claims.0.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        assert!(Options::default().validate().is_ok());
        let bad = [
            Options {
                lease_ttl: Duration::from_millis(2500),
                ..Options::default()
            },
            Options {
                lease_ttl: Duration::from_secs(1),
                ..Options::default()
            },
            Options {
                safety_margin: Duration::from_secs(3),
                ..Options::default()
            },
            Options {
                call_timeout: Duration::from_secs(5),
                ..Options::default()
            },
            Options {
                prefix: "flipover".into(),
                ..Options::default()
            },
        ];
        for options in bad {
            assert!(
                matches!(
                    options.validate(),
                    Err(CoordinationError::InvalidOptions(_))
                ),
                "{options:?}"
            );
        }
    }

    #[test]
    fn watcher_ids_differ_within_one_process() {
        let (a, b) = (WatcherId::generate(), WatcherId::generate());
        assert_ne!(a, b);
        assert_eq!(a.pid(), std::process::id());
        assert!(a
            .as_str()
            .starts_with(&format!("{}:{}:", a.host(), a.pid())));
    }

    #[tokio::test]
    async fn the_single_watcher_leads_alone_and_says_so() {
        let (coordinator, warning) = Coordinator::single();
        assert!(warning.contains("single point of failure"));
        assert_eq!(coordinator.mode(), Mode::Single);
        assert_eq!(coordinator.leader("shop").await.unwrap(), None);

        let leadership = coordinator.campaign("shop").await.unwrap();
        assert!(leadership.is_leader());
        assert!(matches!(
            coordinator.campaign("shop").await,
            Err(CoordinationError::AlreadyCampaigning(_))
        ));
        let leader = coordinator.leader("shop").await.unwrap().unwrap();
        assert_eq!(leader.watcher, coordinator.watcher().as_str());

        let at = SystemTime::now();
        leadership
            .record_failover(at, "db1", "db2", Some(Duration::from_millis(1500)))
            .await
            .unwrap();
        let record = coordinator.last_failover("shop").await.unwrap().unwrap();
        assert_eq!(
            (record.old_primary.as_str(), record.new_primary.as_str()),
            ("db1", "db2")
        );
        assert_eq!(record.watcher, coordinator.watcher().as_str());

        leadership.resign().await.unwrap();
        assert_eq!(coordinator.leader("shop").await.unwrap(), None);
        let again = coordinator.campaign("shop").await.unwrap();
        drop(coordinator);
        assert_eq!(again.lost().await, LossReason::CoordinatorClosed);
        assert!(!again.is_leader());
    }

    #[tokio::test]
    async fn single_pauses_end_by_themselves() {
        let (coordinator, _) = Coordinator::single();
        assert!(matches!(
            coordinator
                .pause("shop", Some(SystemTime::now()), "dba")
                .await,
            Err(CoordinationError::PauseInPast(_))
        ));
        let until = SystemTime::now() + Duration::from_millis(300);
        coordinator.pause("shop", Some(until), "dba").await.unwrap();
        let pause = coordinator.paused("shop").await.unwrap().unwrap();
        assert_eq!((pause.by.as_str(), pause.until), ("dba", Some(until)));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(coordinator.paused("shop").await.unwrap(), None);

        coordinator.pause("shop", None, "dba").await.unwrap();
        assert!(coordinator.paused("shop").await.unwrap().is_some());
        assert!(coordinator.resume("shop").await.unwrap());
        assert!(!coordinator.resume("shop").await.unwrap());
        assert_eq!(coordinator.paused("shop").await.unwrap(), None);
    }
}
