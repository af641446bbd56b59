//! The single-watcher mode: the same state as in etcd, in this process's
//! memory. The watcher leads every cluster it campaigns for; nothing
//! survives its restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Claim, FailoverRecord, LeaderInfo, LeadershipState, LossReason, Pause, WatcherId};

#[derive(Debug, Default)]
pub struct LocalBackend {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    leaders: HashMap<String, Led>,
    pauses: HashMap<String, Pause>,
    failovers: HashMap<String, FailoverRecord>,
    closed: bool,
}

#[derive(Debug)]
struct Led {
    since: std::time::SystemTime,
    state: Arc<LeadershipState>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalBackend {
    /// The coordinator's claims already make this the only candidacy for
    /// `cluster`, so it leads at once.
    pub fn campaign(&self, cluster: &str, claim: Claim) -> LocalLeadership {
        let state = Arc::new(LeadershipState::new(None));
        let mut shared = lock(&self.shared);
        if shared.closed {
            state.set(LossReason::CoordinatorClosed);
        } else {
            shared.leaders.insert(
                cluster.to_string(),
                Led {
                    since: std::time::SystemTime::now(),
                    state: state.clone(),
                },
            );
        }
        LocalLeadership {
            cluster: cluster.to_string(),
            shared: self.shared.clone(),
            state,
            _claim: claim,
        }
    }

    pub fn leader(&self, cluster: &str, watcher: &WatcherId) -> Option<LeaderInfo> {
        let shared = lock(&self.shared);
        let led = shared.leaders.get(cluster)?;
        Some(LeaderInfo {
            watcher: watcher.to_string(),
            host: watcher.host().to_string(),
            pid: watcher.pid(),
            since: led.since,
        })
    }

    pub fn pause(&self, cluster: &str, pause: Pause) {
        lock(&self.shared).pauses.insert(cluster.to_string(), pause);
    }

    pub fn resume(&self, cluster: &str) -> bool {
        lock(&self.shared).pauses.remove(cluster).is_some()
    }

    pub fn paused(&self, cluster: &str) -> Option<Pause> {
        lock(&self.shared).pauses.get(cluster).cloned()
    }

    pub fn last_failover(&self, cluster: &str) -> Option<FailoverRecord> {
        lock(&self.shared).failovers.get(cluster).cloned()
    }

    /// Ends every leadership: the coordinator is gone.
    pub fn close(&self) {
        let mut shared = lock(&self.shared);
        shared.closed = true;
        for (_, led) in shared.leaders.drain() {
            led.state.set(LossReason::CoordinatorClosed);
        }
    }
}

pub struct LocalLeadership {
    cluster: String,
    shared: Arc<Mutex<Shared>>,
    state: Arc<LeadershipState>,
    _claim: Claim,
}

impl LocalLeadership {
    pub(super) fn state(&self) -> &LeadershipState {
        &self.state
    }

    pub fn record_failover(&self, cluster: &str, record: FailoverRecord) {
        lock(&self.shared)
            .failovers
            .insert(cluster.to_string(), record);
    }

    pub fn resign(&self) {
        self.state.set(LossReason::Resigned);
        self.release();
    }

    fn release(&self) {
        let mut shared = lock(&self.shared);
        let ours = shared
            .leaders
            .get(&self.cluster)
            .is_some_and(|led| Arc::ptr_eq(&led.state, &self.state));
        if ours {
            shared.leaders.remove(&self.cluster);
        }
    }
}

impl Drop for LocalLeadership {
    fn drop(&mut self) {
        self.state.set(LossReason::Resigned);
        self.release();
    }
}
