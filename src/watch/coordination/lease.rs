//! The watcher's lease on etcd and its keep-alive task.
//!
//! The lease is what etcd uses to tell a live watcher from a dead one: every
//! key the watcher holds (its election candidacies) is attached to it and
//! goes when it expires. The watcher must stop acting before etcd can hand
//! its leadership to another one, so it tracks the lease's deadline with its
//! own monotonic clock: a renewal sent at `t` that etcd answers with `ttl`
//! proves the lease lives until at least `t + ttl` on etcd's side (etcd only
//! counts from when it receives it), and the session counts itself valid
//! until `t + ttl - margin`. A session that cannot renew in time ends by
//! itself at that deadline, whatever etcd answers later.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::members::{member_failed, Members};
use super::{CoordinationError, LossReason};

/// How long to wait between two attempts to reopen the keep-alive stream.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What leaderships and the keep-alive task share about one lease.
#[derive(Debug)]
pub struct SessionState {
    base: Instant,
    /// The local deadline, in nanoseconds since `base`.
    valid_until: AtomicU64,
    ended: watch::Sender<Option<LossReason>>,
}

impl SessionState {
    fn new(valid_until: Instant) -> SessionState {
        let base = Instant::now();
        let state = SessionState {
            base,
            valid_until: AtomicU64::new(0),
            ended: watch::Sender::new(None),
        };
        state.extend(valid_until);
        state
    }

    /// The local deadline: not valid from this instant on.
    pub fn valid_until(&self) -> Instant {
        self.base + Duration::from_nanos(self.valid_until.load(Ordering::Acquire))
    }

    /// Moves the deadline later (never earlier).
    fn extend(&self, until: Instant) {
        let nanos = until
            .saturating_duration_since(self.base)
            .as_nanos()
            .try_into()
            .unwrap_or(u64::MAX);
        self.valid_until.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Whether the session still counts: not ended and before its deadline.
    pub fn alive(&self) -> bool {
        self.ended.borrow().is_none() && Instant::now() < self.valid_until()
    }

    /// Why the session ended, once it has (its deadline passing counts).
    pub fn reason(&self) -> Option<LossReason> {
        if let Some(reason) = *self.ended.borrow() {
            return Some(reason);
        }
        (Instant::now() >= self.valid_until()).then_some(LossReason::RenewalOverdue)
    }

    /// Ends the session; the first reason given stays.
    pub fn end(&self, reason: LossReason) {
        self.ended.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Resolves when the session ends or its deadline passes.
    pub async fn ended(&self) -> LossReason {
        let mut ended = self.ended.subscribe();
        loop {
            if let Some(reason) = self.reason() {
                return reason;
            }
            let deadline = self.valid_until();
            tokio::select! {
                _ = ended.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// One lease and the task that keeps it alive.
#[derive(Debug)]
pub struct Session {
    pub lease: i64,
    pub state: Arc<SessionState>,
    keep_alive: JoinHandle<()>,
}

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ttl: Duration,
    pub margin: Duration,
    pub call_timeout: Duration,
}

impl Timing {
    /// How often the lease is renewed: a fifth of the TTL, so that a
    /// renewal lost to a hung member (or to etcd electing a new Raft leader,
    /// about a second) leaves time for a few more before the deadline.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 5
    }

    /// How long one renewal (or a liveness check) may take before its member
    /// counts as failed: with the defaults, a renewal lost at 1 + 1 s still
    /// leaves 2 s before the deadline (TTL 5 s - margin 1 s).
    pub fn renew_timeout(&self) -> Duration {
        self.call_timeout.min(self.ttl / 5)
    }

    /// How often a waiting campaign or a leadership's watch checks that its
    /// member still answers.
    pub fn check_every(&self) -> Duration {
        self.ttl / 3
    }
}

impl Session {
    /// Grants a lease of `timing.ttl` and starts keeping it alive.
    pub async fn start(members: &Members, timing: Timing) -> Result<Session, CoordinationError> {
        let sent = Instant::now();
        let granted = members
            .call(timing.call_timeout, "lease grant", |client| async move {
                client
                    .lease_client()
                    .grant(timing.ttl.as_secs() as i64, None)
                    .await
            })
            .await?;
        // etcd may raise a TTL below its minimum; it never lowers one.
        let ttl = Duration::from_secs(granted.ttl().max(1) as u64);
        let state = Arc::new(SessionState::new(deadline(sent, ttl, timing.margin)));
        let keep_alive = tokio::spawn(keep_alive(
            members.clone(),
            granted.id(),
            Timing { ttl, ..timing },
            state.clone(),
        ));
        Ok(Session {
            lease: granted.id(),
            state,
            keep_alive,
        })
    }

    /// Ends the session without telling etcd: the lease runs out by itself,
    /// as a crashed watcher's would.
    pub fn abandon(&self, reason: LossReason) {
        self.state.end(reason);
        self.keep_alive.abort();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

fn deadline(sent: Instant, ttl: Duration, margin: Duration) -> Instant {
    sent + ttl.saturating_sub(margin)
}

/// Renews the lease every fifth of its TTL until the session ends: when
/// etcd says the lease is gone, or when no renewal succeeded before the
/// local deadline. A renewal that fails moves the stream to the next member.
async fn keep_alive(members: Members, lease: i64, timing: Timing, state: Arc<SessionState>) {
    let reason = tokio::select! {
        reason = renew_until_gone(members.clone(), lease, timing, state.clone()) => reason,
        reason = state.ended() => reason,
    };
    state.end(reason);
    if reason == LossReason::RenewalOverdue {
        // etcd may be reachable again (this process was starved, say): hand
        // the lease back so a successor does not wait for it to run out.
        let _ = members
            .call(timing.call_timeout, "lease revoke", |client| async move {
                client.lease_client().revoke(lease).await
            })
            .await;
    }
}

async fn renew_until_gone(
    members: Members,
    lease: i64,
    timing: Timing,
    state: Arc<SessionState>,
) -> LossReason {
    let mut failures_in_a_row = 0;
    loop {
        if failures_in_a_row >= members.len() {
            // Every member failed once: do not spin.
            tokio::time::sleep(RETRY_PAUSE).await;
            failures_in_a_row = 0;
        }
        let (member, client) = members.preferred();
        let mut leases = client.lease_client();
        let sent = Instant::now();
        let opened = tokio::time::timeout(timing.renew_timeout(), leases.keep_alive(lease)).await;
        let (mut keeper, mut stream) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) if !member_failed(&e) && lease_not_found(&e) => {
                return LossReason::LeaseExpired;
            }
            Ok(Err(e)) => {
                tracing::debug!(lease, member, error = %e, "lease keep-alive failed to open");
                members.failed(member);
                failures_in_a_row += 1;
                continue;
            }
            Err(_) => {
                tracing::debug!(lease, member, "lease keep-alive did not open in time");
                members.failed(member);
                failures_in_a_row += 1;
                continue;
            }
        };
        // Opening the stream renewed the lease once (etcd-client sends the
        // first request and checks its answer).
        state.extend(deadline(sent, timing.ttl, timing.margin));
        failures_in_a_row = 0;
        loop {
            tokio::time::sleep(timing.renew_every()).await;
            let sent = Instant::now();
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(timing.renew_timeout(), stream.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                    let ttl = Duration::from_secs(answer.ttl() as u64);
                    state.extend(deadline(sent, ttl, timing.margin));
                }
                Ok(Ok(Some(_))) => return LossReason::LeaseExpired,
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            }
        }
        tracing::debug!(
            lease,
            member,
            "lease renewal failed; moving to the next member"
        );
        members.failed(member);
        failures_in_a_row += 1;
    }
}

fn lease_not_found(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::LeaseKeepAliveError(message) => message.contains("not found"),
        etcd_client::Error::GRpcStatus(status) => status.message().contains("lease not found"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_at_its_deadline_unless_extended() {
        let state = SessionState::new(Instant::now() + Duration::from_secs(4));
        assert!(state.alive());
        tokio::time::advance(Duration::from_secs(3)).await;
        state.extend(Instant::now() + Duration::from_secs(4));
        // An older renewal answered late never moves the deadline back.
        state.extend(Instant::now());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(state.alive());
        let started = Instant::now();
        assert_eq!(state.ended().await, LossReason::RenewalOverdue);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(!state.alive());
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_reason_stays() {
        let state = SessionState::new(Instant::now() + Duration::from_secs(4));
        state.end(LossReason::LeaseExpired);
        state.end(LossReason::CoordinatorClosed);
        assert_eq!(state.reason(), Some(LossReason::LeaseExpired));
        assert_eq!(state.ended().await, LossReason::LeaseExpired);
    }
}
