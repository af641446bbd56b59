//! The in-memory registry of background jobs, and the shutdown signal they
//! watch so a stopping agent can restore a half-done clone first.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flipover_agent::protocol::{CloneResult, JobKind, JobState, JobStatus};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// One job. Its progress counter is shared with the copy loop, which
/// updates it without taking any lock.
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    started: Instant,
    pub bytes: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: JobState,
    phase: String,
    error: Option<String>,
    result: Option<CloneResult>,
    elapsed: Option<Duration>,
}

impl Job {
    fn new(kind: JobKind, phase: &str) -> Job {
        Job {
            id: random_id(),
            kind,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                state: JobState::Running,
                phase: phase.to_string(),
                error: None,
                result: None,
                elapsed: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave Inner inconsistent
        // (plain field stores), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_phase(&self, phase: &str) {
        info!(job = %self.id, phase, "job phase");
        self.lock().phase = phase.to_string();
    }

    pub fn succeed(&self, result: Option<CloneResult>) {
        let mut inner = self.lock();
        inner.state = JobState::Succeeded;
        inner.phase = "done".to_string();
        inner.result = result;
        inner.elapsed = Some(self.started.elapsed());
        info!(job = %self.id, kind = ?self.kind, "job succeeded");
    }

    pub fn fail(&self, phase: &str, error: String) {
        let mut inner = self.lock();
        warn!(job = %self.id, kind = ?self.kind, error = %error, "job failed");
        inner.state = JobState::Failed;
        inner.phase = phase.to_string();
        inner.error = Some(error);
        inner.elapsed = Some(self.started.elapsed());
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn is_running(&self) -> bool {
        self.lock().state == JobState::Running
    }

    /// Changes the result of a finished job (confirming drops the path of
    /// the deleted previous datadir).
    pub fn update_result(&self, f: impl FnOnce(&mut CloneResult)) {
        if let Some(result) = self.lock().result.as_mut() {
            f(result);
        }
    }

    pub fn status(&self) -> JobStatus {
        let inner = self.lock();
        JobStatus {
            id: self.id.clone(),
            kind: self.kind,
            state: inner.state,
            phase: inner.phase.clone(),
            bytes: self.bytes.load(Ordering::Relaxed),
            elapsed_ms: inner
                .elapsed
                .unwrap_or_else(|| self.started.elapsed())
                .as_millis() as u64,
            error: inner.error.clone(),
            result: inner.result.clone(),
        }
    }
}

/// All jobs since the agent started (kept so their outcome can be polled).
#[derive(Debug)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shutdown: watch::Sender<bool>,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            jobs: Mutex::default(),
            tasks: Mutex::default(),
            shutdown: watch::channel(false).0,
        }
    }
}

impl Jobs {
    pub fn create(&self, kind: JobKind, phase: &str) -> Arc<Job> {
        let job = Arc::new(Job::new(kind, phase));
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.id.clone(), job.clone());
        info!(job = %job.id, ?kind, "job created");
        job
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Every job since the agent started, in no particular order.
    pub fn all(&self) -> Vec<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The running job, if any (at most one runs: they hold the action lock).
    pub fn running(&self) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|j| j.is_running())
            .cloned()
    }

    /// Runs a job's body in the background, tracked for [`Jobs::shutdown`].
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Resolves once the agent is shutting down.
    pub async fn cancelled(&self) {
        let mut rx = self.shutdown.subscribe();
        // Err only if the sender is gone, which it is not while self lives.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Tells running jobs to stop (a receive restores the previous datadir)
    /// and waits for them, at most `timeout`.
    pub async fn shutdown(&self, timeout: Duration) {
        self.shutdown.send_replace(true);
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let running = tasks.iter().filter(|t| !t.is_finished()).count();
        if running == 0 {
            return;
        }
        info!(running, "waiting for running jobs to stop");
        let all = join_all(tasks);
        if tokio::time::timeout(timeout, all).await.is_err() {
            warn!(
                "jobs did not stop within {}s; exiting anyway",
                timeout.as_secs()
            );
        }
    }
}

async fn join_all(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// 16 hex digits from the kernel's CSPRNG: ids name directories and must
/// not collide across agent restarts.
fn random_id() -> String {
    let mut bytes = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom (odd chroot): time and pid are unique enough here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        bytes = (nanos ^ (u64::from(std::process::id()) << 40)).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex_and_distinct() {
        let a = random_id();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_id());
    }

    #[test]
    fn status_follows_the_job() {
        let jobs = Jobs::default();
        let job = jobs.create(JobKind::CloneSend, "connecting");
        assert!(jobs.running().is_some());
        job.bytes.fetch_add(10, Ordering::Relaxed);
        let s = job.status();
        assert_eq!(
            (s.state, s.phase.as_str(), s.bytes),
            (JobState::Running, "connecting", 10)
        );
        job.fail("failed", "boom".into());
        let s = jobs.get(&job.id).unwrap().status();
        assert_eq!(
            (s.state, s.error.as_deref()),
            (JobState::Failed, Some("boom"))
        );
        assert!(jobs.running().is_none());
        // Elapsed time stops with the job.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(job.status().elapsed_ms, s.elapsed_ms);
    }
}
