//! The coordinator on etcd: one lease per watcher (`lease.rs`), etcd's
//! election API per cluster, and plain keys for pauses and failovers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, LeaderKey, PutOptions, ResignOptions,
    SortOrder, SortTarget, Txn, TxnOp, WatchOptions,
};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::keys::{self, ClusterKeys, FailoverValue, LeaderValue, PauseValue};
use super::lease::{Session, SessionState, Timing};
use super::members::{member_failed, Members};
use super::{
    Claim, CoordinationError, FailoverRecord, LeaderInfo, LeadershipState, LossReason, Options,
    Pause, WatcherId,
};

/// How long to wait before trying a failed withdrawal or watch again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// A timed pause's key outlives its end by this much before its lease
/// removes it; readers already ignore it from its end on.
const PAUSE_KEY_GRACE: Duration = Duration::from_secs(60);

pub struct EtcdBackend {
    members: Members,
    endpoints: Vec<String>,
    prefix: String,
    timing: Timing,
    /// The current lease; replaced at the next campaign once it has ended.
    current: Mutex<Option<Arc<Session>>>,
    /// One lease grant at a time.
    granting: tokio::sync::Mutex<()>,
}

impl EtcdBackend {
    pub async fn connect(
        endpoints: &[String],
        options: &Options,
    ) -> Result<EtcdBackend, CoordinationError> {
        let timing = Timing {
            ttl: options.lease_ttl,
            margin: options.safety_margin,
            call_timeout: options.call_timeout,
        };
        let failed = |reason: String| CoordinationError::Connect {
            endpoints: endpoints.join(","),
            reason,
        };
        let members = Members::new(endpoints, options.call_timeout)
            .await
            .map_err(|e| failed(e.to_string()))?;
        // The clients connect lazily: a quorum read proves etcd answers.
        let probe = GetOptions::new().with_prefix().with_count_only();
        members
            .call(options.call_timeout, "probe", |client| {
                let (prefix, probe) = (options.prefix.clone(), probe.clone());
                async move { client.kv_client().get(prefix, Some(probe)).await }
            })
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(EtcdBackend {
            members,
            endpoints: endpoints.to_vec(),
            prefix: options.prefix.clone(),
            timing,
            current: Mutex::new(None),
            granting: tokio::sync::Mutex::new(()),
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    fn keys(&self, cluster: &str) -> ClusterKeys {
        ClusterKeys::new(&self.prefix, cluster)
    }

    fn current(&self) -> Option<Arc<Session>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The live session, or a new one when there is none.
    async fn session(&self) -> Result<Arc<Session>, CoordinationError> {
        let _granting = self.granting.lock().await;
        if let Some(session) = self.current().filter(|s| s.state.alive()) {
            return Ok(session);
        }
        let session = Arc::new(Session::start(&self.members, self.timing).await?);
        tracing::debug!(lease = session.lease, "watcher lease granted");
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
        Ok(session)
    }

    pub async fn campaign(
        &self,
        cluster: &str,
        watcher: &WatcherId,
        claim: Claim,
    ) -> Result<EtcdLeadership, CoordinationError> {
        let keys = self.keys(cluster);
        let session = self.session().await?;
        let value = serde_json::to_vec(&LeaderValue {
            watcher: watcher.to_string(),
            host: watcher.host().to_string(),
            pid: watcher.pid(),
            since_ms: keys::to_millis(SystemTime::now()),
        })
        .expect("a LeaderValue serializes");
        // Until the campaign is won, any way out (an error, the lease lost,
        // the caller dropping this future) withdraws the candidacy, so that
        // no key of ours leads for a watcher that does not know it leads.
        let mut candidacy = Candidacy {
            members: self.members.clone(),
            key: keys.candidate(session.lease),
            session: session.state.clone(),
            timing: self.timing,
            claim: Some(claim),
        };
        let lost = |reason| Err(CoordinationError::LeaseLost(reason));
        // A failed campaign call (its member died, hangs, lost its leader) is
        // made again with the same lease, on the next member: etcd finds the
        // candidate key it already wrote and the candidacy keeps its place.
        // Only the lease's end stops the campaign.
        let (create_revision, revision) = loop {
            let (member, client) = self.members.preferred();
            let mut election = client.election_client();
            let outcome = tokio::select! {
                answer = election.campaign(keys.election(), value.clone(), session.lease) => {
                    Some(answer)
                }
                () = stops_answering(&client, &keys, self.timing) => None,
                reason = session.state.ended() => return lost(reason),
            };
            match outcome {
                Some(Ok(_)) => match self.confirm(&keys, &candidacy.key).await {
                    Ok(Some(won)) => break won,
                    Ok(None) => {
                        tracing::debug!(cluster, "campaign answered, but the key does not lead");
                    }
                    Err(e) => tracing::debug!(cluster, error = %e, "campaign check failed"),
                },
                Some(Err(e)) => {
                    tracing::debug!(cluster, member, error = %e, "campaign call failed");
                    if member_failed(&e) {
                        self.members.failed(member);
                    }
                }
                None => {
                    tracing::debug!(cluster, member, "etcd member stopped answering a campaign");
                    self.members.failed(member);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY_PAUSE) => {}
                reason = session.state.ended() => return lost(reason),
            }
        };
        // etcd may have answered after the local deadline.
        if let Some(reason) = session.state.reason() {
            return lost(reason);
        }
        let leader_key = LeaderKey::new()
            .with_name(keys.election())
            .with_key(candidacy.key.clone())
            .with_rev(create_revision)
            .with_lease(session.lease);
        let state = Arc::new(LeadershipState::new(Some(session.state.clone())));
        let monitor = tokio::spawn(monitor(
            self.members.clone(),
            candidacy.key.clone(),
            create_revision,
            revision,
            state.clone(),
            session.state.clone(),
            self.timing,
        ));
        tracing::debug!(cluster, key = %candidacy.key, "campaign won");
        Ok(EtcdLeadership {
            members: self.members.clone(),
            keys,
            key: candidacy.key.clone(),
            leader_key,
            state,
            session,
            monitor,
            timing: self.timing,
            resigned: AtomicBool::new(false),
            claim: candidacy.claim.take(),
        })
    }

    /// After a campaign answered: whether `key` leads now (no candidate
    /// before it), read back, since a member that hung through the campaign
    /// may have deleted it meanwhile. Its create revision and the revision
    /// read at, from which the leadership watches the key.
    async fn confirm(
        &self,
        keys: &ClusterKeys,
        key: &str,
    ) -> Result<Option<(i64, i64)>, CoordinationError> {
        let options = first_candidate();
        let answer = self
            .members
            .call(self.timing.call_timeout, "campaign check", |client| {
                let (prefix, options) = (keys.candidates(), options.clone());
                async move { client.kv_client().get(prefix, Some(options)).await }
            })
            .await?;
        let revision = answer.header().map_or(0, |h| h.revision());
        Ok(answer
            .kvs()
            .first()
            .filter(|kv| kv.key() == key.as_bytes())
            .map(|kv| (kv.create_revision(), revision)))
    }

    pub async fn leader(&self, cluster: &str) -> Result<Option<LeaderInfo>, CoordinationError> {
        let keys = self.keys(cluster);
        // What etcd's election `Leader` call reads: the candidate with the
        // lowest create revision. Read directly, "no leader" is an empty
        // answer instead of an error to tell from the others.
        let options = first_candidate();
        let answer = self
            .members
            .call(self.timing.call_timeout, "leader read", |client| {
                let mut kv = client.kv_client();
                let (key, options) = (keys.candidates(), options.clone());
                async move { kv.get(key, Some(options)).await }
            })
            .await?;
        let Some(kv) = answer.kvs().first() else {
            return Ok(None);
        };
        let value: LeaderValue = decode(kv.key(), kv.value())?;
        Ok(Some(LeaderInfo {
            watcher: value.watcher,
            host: value.host,
            pid: value.pid,
            since: keys::from_millis(value.since_ms),
        }))
    }

    pub async fn pause(&self, cluster: &str, pause: &Pause) -> Result<(), CoordinationError> {
        let key = self.keys(cluster).pause();
        let value = serde_json::to_vec(&PauseValue {
            by: pause.by.clone(),
            since_ms: keys::to_millis(pause.since),
            until_ms: pause.until.map(keys::to_millis),
        })
        .expect("a PauseValue serializes");
        let mut options = None;
        if let Some(until) = pause.until {
            let left = until.duration_since(SystemTime::now()).unwrap_or_default();
            let ttl = (left + PAUSE_KEY_GRACE).as_secs() as i64 + 1;
            let lease = self
                .members
                .call(self.timing.call_timeout, "pause lease grant", |client| {
                    let mut leases = client.lease_client();
                    async move { leases.grant(ttl, None).await }
                })
                .await?;
            options = Some(PutOptions::new().with_lease(lease.id()));
        }
        self.members
            .call(self.timing.call_timeout, "pause write", |client| {
                let mut kv = client.kv_client();
                let (key, value, options) = (key.clone(), value.clone(), options.clone());
                async move { kv.put(key, value, options).await }
            })
            .await?;
        Ok(())
    }

    pub async fn resume(&self, cluster: &str) -> Result<bool, CoordinationError> {
        let key = self.keys(cluster).pause();
        let answer = self
            .members
            .call(self.timing.call_timeout, "pause delete", |client| {
                let mut kv = client.kv_client();
                let key = key.clone();
                async move { kv.delete(key, None).await }
            })
            .await?;
        Ok(answer.deleted() > 0)
    }

    pub async fn paused(&self, cluster: &str) -> Result<Option<Pause>, CoordinationError> {
        let Some(value) = self
            .read::<PauseValue>("pause read", self.keys(cluster).pause())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Pause {
            by: value.by,
            since: keys::from_millis(value.since_ms),
            until: value.until_ms.map(keys::from_millis),
        }))
    }

    pub async fn last_failover(
        &self,
        cluster: &str,
    ) -> Result<Option<FailoverRecord>, CoordinationError> {
        let value = self
            .read::<FailoverValue>("last failover read", self.keys(cluster).last_failover())
            .await?;
        Ok(value.map(|value| FailoverRecord {
            at: keys::from_millis(value.at_ms),
            old_primary: value.old_primary,
            new_primary: value.new_primary,
            watcher: value.watcher,
            duration: value.duration_ms.map(Duration::from_millis),
        }))
    }

    async fn read<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        key: String,
    ) -> Result<Option<T>, CoordinationError> {
        let answer = self
            .members
            .call(self.timing.call_timeout, operation, |client| {
                let mut kv = client.kv_client();
                let key = key.clone();
                async move { kv.get(key, None).await }
            })
            .await?;
        answer
            .kvs()
            .first()
            .map(|kv| decode(kv.key(), kv.value()))
            .transpose()
    }

    /// Ends the session and revokes its lease: every candidacy goes at once.
    pub async fn shutdown(&self) -> Result<(), CoordinationError> {
        let Some(session) = self.current() else {
            return Ok(());
        };
        session.abandon(LossReason::CoordinatorClosed);
        let lease = session.lease;
        self.members
            .call(self.timing.call_timeout, "lease revoke", |client| {
                let mut leases = client.lease_client();
                async move { leases.revoke(lease).await }
            })
            .await?;
        Ok(())
    }

    /// Ends the session without telling etcd (the coordinator was dropped).
    pub fn abandon(&self) {
        if let Some(session) = self.current() {
            session.abandon(LossReason::CoordinatorClosed);
        }
    }
}

pub struct EtcdLeadership {
    members: Members,
    keys: ClusterKeys,
    key: String,
    leader_key: LeaderKey,
    state: Arc<LeadershipState>,
    session: Arc<Session>,
    monitor: JoinHandle<()>,
    timing: Timing,
    resigned: AtomicBool,
    claim: Option<Claim>,
}

impl EtcdLeadership {
    pub(super) fn state(&self) -> &LeadershipState {
        &self.state
    }

    pub async fn record_failover(
        &self,
        cluster: &str,
        record: &FailoverRecord,
    ) -> Result<(), CoordinationError> {
        let value = serde_json::to_vec(&FailoverValue {
            at_ms: keys::to_millis(record.at),
            old_primary: record.old_primary.clone(),
            new_primary: record.new_primary.clone(),
            watcher: record.watcher.clone(),
            duration_ms: record
                .duration
                .map(|d| d.as_millis().try_into().unwrap_or(u64::MAX)),
        })
        .expect("a FailoverValue serializes");
        // Written only if our candidate key is still the one we won with.
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                self.leader_key.rev(),
            )])
            .and_then([TxnOp::put(self.keys.last_failover(), value, None)]);
        let answer = self
            .members
            .call(self.timing.call_timeout, "failover record", |client| {
                let txn = txn.clone();
                async move { client.kv_client().txn(txn).await }
            })
            .await?;
        if !answer.succeeded() {
            self.state.set(LossReason::KeyDeleted);
            return Err(CoordinationError::NotLeader(cluster.to_string()));
        }
        Ok(())
    }

    pub async fn resign(mut self) -> Result<(), CoordinationError> {
        self.resigned.store(true, Ordering::Release);
        self.monitor.abort();
        let options = ResignOptions::new().with_leader(self.leader_key.clone());
        let result = self
            .members
            .call(self.timing.call_timeout, "resign", |client| {
                let options = options.clone();
                async move { client.election_client().resign(Some(options)).await }
            })
            .await;
        if result.is_err() {
            self.withdraw_in_background();
        }
        result.map(|_| ())
    }

    /// Deletes the candidate key from a task of its own, retrying until etcd
    /// confirms or the lease is gone (which deletes it too).
    fn withdraw_in_background(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tokio::spawn(withdraw(
            self.members.clone(),
            self.key.clone(),
            Some(self.leader_key.rev()),
            self.session.state.clone(),
            self.timing,
            self.claim.take(),
        ));
    }
}

impl Drop for EtcdLeadership {
    fn drop(&mut self) {
        self.monitor.abort();
        self.state.set(LossReason::Resigned);
        // Dropped without `resign`: withdraw, unless the coordinator is gone
        // (then the lease, no longer kept alive, takes the key with it).
        if !self.resigned.load(Ordering::Acquire) && self.session.state.alive() {
            self.withdraw_in_background();
        }
    }
}

/// A candidacy not (yet) won: dropped, it withdraws.
struct Candidacy {
    members: Members,
    key: String,
    session: Arc<SessionState>,
    timing: Timing,
    /// Taken when the campaign is won.
    claim: Option<Claim>,
}

impl Drop for Candidacy {
    fn drop(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(withdraw(
                self.members.clone(),
                self.key.clone(),
                None,
                self.session.clone(),
                self.timing,
                Some(claim),
            ));
        }
    }
}

/// The read of a cluster's leading candidate: the lowest create revision
/// under the election's prefix (what etcd's election `Leader` call reads).
fn first_candidate() -> GetOptions {
    GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1)
}

/// Resolves when `client`'s member fails a quorum read or does not answer
/// one in time, checked every third of the TTL: a campaign call waits on
/// one member for as long as another watcher leads, and a member that hung
/// meanwhile would never tell it the leader is gone.
async fn stops_answering(client: &Client, keys: &ClusterKeys, timing: Timing) {
    let probe = GetOptions::new().with_prefix().with_count_only();
    loop {
        tokio::time::sleep(timing.check_every()).await;
        let mut kv = client.kv_client();
        let read = kv.get(keys.candidates(), Some(probe.clone()));
        match tokio::time::timeout(timing.renew_timeout(), read).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if !member_failed(&e) => {}
            _ => return,
        }
    }
}

/// Deletes `key` (only at `revision` when given), retrying until etcd
/// confirms or the session is over. The claim is held until then, so a new
/// candidacy for the cluster cannot be deleted by mistake.
async fn withdraw(
    members: Members,
    key: String,
    revision: Option<i64>,
    session: Arc<SessionState>,
    timing: Timing,
    claim: Option<Claim>,
) {
    let mut txn = Txn::new();
    if let Some(revision) = revision {
        txn = txn.when([Compare::create_revision(
            key.clone(),
            CompareOp::Equal,
            revision,
        )]);
    }
    let txn = txn.and_then([TxnOp::delete(key.clone(), None)]);
    while session.alive() {
        let deleted = members
            .call(timing.call_timeout, "candidacy withdrawal", |client| {
                let txn = txn.clone();
                async move { client.kv_client().txn(txn).await }
            })
            .await;
        match deleted {
            Ok(_) => break,
            Err(e) => tracing::debug!(%key, error = %e, "withdrawal failed; retrying"),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    drop(claim);
}

/// Marks the leadership lost when its candidate key goes, or when its
/// session ends (the leadership's state also sees that by itself).
async fn monitor(
    members: Members,
    key: String,
    create_revision: i64,
    revision: i64,
    state: Arc<LeadershipState>,
    session: Arc<SessionState>,
    timing: Timing,
) {
    let reason = tokio::select! {
        () = key_deleted(members, &key, create_revision, revision, timing) => LossReason::KeyDeleted,
        reason = session.ended() => reason,
    };
    tracing::debug!(%key, %reason, "leadership lost");
    state.set(reason);
}

/// Returns when `key` is deleted (or replaced by another key of the same
/// name) after `revision`. A watch reports that at once; a progress request
/// every third of the TTL checks that its member still answers, and a watch
/// that fails is reopened on the next member from the last revision it
/// reported, so no event is missed.
async fn key_deleted(
    members: Members,
    key: &str,
    create_revision: i64,
    revision: i64,
    timing: Timing,
) {
    let mut next = revision + 1;
    loop {
        let (member, client) = members.preferred();
        match watch_from(&client, key, create_revision, &mut next, timing).await {
            Watched::Deleted => return,
            Watched::Compacted => match still_ours(&members, key, create_revision, timing).await {
                Some((true, revision)) => next = next.max(revision + 1),
                Some((false, _)) => return,
                None => {}
            },
            Watched::Failed => {
                tracing::debug!(%key, member, "watch failed; moving to the next member");
                members.failed(member);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

enum Watched {
    Deleted,
    /// The history from `next` on is gone.
    Compacted,
    Failed,
}

/// Watches `key` on one member from `*next` (moved on as answers come).
async fn watch_from(
    client: &Client,
    key: &str,
    create_revision: i64,
    next: &mut i64,
    timing: Timing,
) -> Watched {
    let options = WatchOptions::new().with_start_revision(*next);
    let mut watches = client.watch_client();
    let opened = tokio::time::timeout(timing.renew_timeout(), watches.watch(key, Some(options)));
    let Ok(Ok(mut stream)) = opened.await else {
        return Watched::Failed;
    };
    let mut progress_asked: Option<Instant> = None;
    let mut check = tokio::time::interval(timing.check_every());
    check.tick().await;
    loop {
        tokio::select! {
            message = stream.message() => {
                let Ok(Some(answer)) = message else {
                    return Watched::Failed;
                };
                progress_asked = None;
                if answer.compact_revision() > 0 {
                    return Watched::Compacted;
                }
                for event in answer.events() {
                    let replaced = event
                        .kv()
                        .is_some_and(|kv| kv.create_revision() != create_revision);
                    if event.event_type() == EventType::Delete || replaced {
                        return Watched::Deleted;
                    }
                }
                if let Some(header) = answer.header() {
                    *next = (*next).max(header.revision() + 1);
                }
                if answer.canceled() {
                    // A member that lost its leader cancels its watches.
                    return Watched::Failed;
                }
            }
            _ = check.tick() => {
                if progress_asked.is_some_and(|at| at.elapsed() > timing.renew_timeout()) {
                    return Watched::Failed;
                }
                if progress_asked.is_none() {
                    if stream.request_progress().await.is_err() {
                        return Watched::Failed;
                    }
                    progress_asked = Some(Instant::now());
                }
            }
        }
    }
}

/// Whether `key` still exists with `create_revision`, and the revision
/// read at; `None` when etcd did not answer.
async fn still_ours(
    members: &Members,
    key: &str,
    create_revision: i64,
    timing: Timing,
) -> Option<(bool, i64)> {
    let answer = members
        .call(timing.call_timeout, "candidate check", |client| {
            let key = key.to_string();
            async move { client.kv_client().get(key, None).await }
        })
        .await
        .ok()?;
    let ours = answer
        .kvs()
        .first()
        .is_some_and(|kv| kv.create_revision() == create_revision);
    Some((ours, answer.header().map_or(0, |h| h.revision())))
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, CoordinationError> {
    serde_json::from_slice(value).map_err(|source| CoordinationError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}
