//! Reaching etcd: one client per member, and calls that move on to the next
//! member when one does not answer.
//!
//! etcd-client's own balancing picks a member at random for every call and
//! keeps picking a member that hangs (SIGSTOP, a frozen VM: its sockets stay
//! open). The watcher cannot afford that: its lease must be renewed within
//! seconds. So it keeps one client per endpoint, uses one member at a time
//! (the preferred one), and moves to the next member as soon as a call to
//! the preferred one fails to reach it, says it has no leader (a member cut
//! off from the others), or does not answer within its share of the time.
//! Any other answer from etcd, an error included, is final.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use tokio::time::Instant;

use super::CoordinationError;

/// The pause after every member failed once, before trying them again.
const ROUND_PAUSE: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct Members {
    inner: Arc<Inner>,
}

struct Inner {
    clients: Vec<Client>,
    preferred: AtomicUsize,
}

impl Members {
    /// One client per endpoint. Nothing is sent yet (connections are made at
    /// the first call).
    pub async fn new(
        endpoints: &[String],
        connect_timeout: Duration,
    ) -> Result<Members, etcd_client::Error> {
        // A member without a leader refuses requests at once instead of
        // holding them, so a member cut off from the others shows as an
        // error to move on from, and a lost quorum as errors, not waits.
        let options = ConnectOptions::new()
            .with_connect_timeout(connect_timeout)
            .with_require_leader(true);
        let mut clients = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            clients.push(Client::connect([endpoint], Some(options.clone())).await?);
        }
        Ok(Members {
            inner: Arc::new(Inner {
                clients,
                preferred: AtomicUsize::new(0),
            }),
        })
    }

    pub fn len(&self) -> usize {
        self.inner.clients.len()
    }

    /// The member to use now, and its client.
    pub fn preferred(&self) -> (usize, Client) {
        let index = self.inner.preferred.load(Ordering::Acquire) % self.len();
        (index, self.inner.clients[index].clone())
    }

    /// Member `index` failed: the next one becomes preferred (unless another
    /// task moved on already).
    pub fn failed(&self, index: usize) {
        let next = (index + 1) % self.len();
        let _ =
            self.inner
                .preferred
                .compare_exchange(index, next, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Runs one call within `timeout`, on the preferred member, then on the
    /// next ones as long as members fail it (each member at most twice).
    /// While more than one member is left to try, an attempt gets half the
    /// time left, so a member that hangs leaves time for another.
    pub async fn call<T, F, Fut>(
        &self,
        timeout: Duration,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, CoordinationError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + timeout;
        let attempts = 2 * self.len();
        let mut last = None;
        for attempt_number in 1..=attempts {
            let (index, client) = self.preferred();
            let left = deadline.saturating_duration_since(Instant::now());
            let share = if attempt_number < attempts && self.len() > 1 {
                left / 2
            } else {
                left
            };
            match tokio::time::timeout(share, attempt(client)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if member_failed(&error) => {
                    tracing::debug!(operation, member = index, %error, "etcd member failed a call");
                    last = Some(error);
                }
                Ok(Err(source)) => return Err(CoordinationError::Etcd { operation, source }),
                Err(_) => {
                    tracing::debug!(
                        operation,
                        member = index,
                        "etcd member did not answer in time"
                    );
                    last = None;
                }
            }
            self.failed(index);
            if attempt_number % self.len() == 0 {
                tokio::time::sleep(ROUND_PAUSE).await;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(match last {
            Some(source) => CoordinationError::Etcd { operation, source },
            None => CoordinationError::Timeout { operation, timeout },
        })
    }
}

/// Whether the error is the member's, not the request's: the call did not
/// reach it (a transport error, or a status the client made from one: etcd's
/// own statuses carry no source), or the member has no leader.
pub fn member_failed(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(status) => {
            std::error::Error::source(status).is_some()
                || status.message().contains("no leader")
                || status.message().contains("leader changed")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn three() -> Members {
        let endpoints: Vec<String> = (1..=3).map(|i| format!("http://127.0.0.{i}:9")).collect();
        Members::new(&endpoints, Duration::from_secs(1))
            .await
            .unwrap()
    }

    fn no_leader() -> etcd_client::Error {
        etcd_client::Error::GRpcStatus(tonic::Status::unavailable("etcdserver: no leader"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_that_hangs_leaves_time_for_the_next() {
        let members = three().await;
        let started = Instant::now();
        let mut tried = Vec::new();
        let result = members
            .call(Duration::from_secs(2), "probe", |_| {
                tried.push(members.preferred().0);
                let hang = tried.len() == 1;
                async move {
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(tried, [0, 1]);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(
            members.preferred().0,
            1,
            "the next calls go to the member that answered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn members_without_leader_are_each_tried_twice_then_the_call_fails() {
        let members = three().await;
        let mut attempts = 0;
        let result: Result<(), _> = members
            .call(Duration::from_secs(2), "probe", |_| {
                attempts += 1;
                std::future::ready(Err(no_leader()))
            })
            .await;
        assert!(matches!(result, Err(CoordinationError::Etcd { .. })));
        assert_eq!(attempts, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_from_etcd_is_final() {
        let members = three().await;
        let mut attempts = 0;
        let result: Result<(), _> = members
            .call(Duration::from_secs(2), "probe", |_| {
                attempts += 1;
                std::future::ready(Err(etcd_client::Error::GRpcStatus(
                    tonic::Status::not_found("etcdserver: requested lease not found"),
                )))
            })
            .await;
        assert!(matches!(result, Err(CoordinationError::Etcd { .. })));
        assert_eq!(attempts, 1);
        assert_eq!(members.preferred().0, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_etcd_times_out_within_the_limit() {
        let members = three().await;
        let started = Instant::now();
        let result: Result<(), _> = members
            .call(Duration::from_secs(2), "probe", |_| {
                std::future::pending::<Result<(), etcd_client::Error>>()
            })
            .await;
        assert!(matches!(result, Err(CoordinationError::Timeout { .. })));
        assert!(started.elapsed() <= Duration::from_secs(2) + ROUND_PAUSE);
    }

    #[test]
    fn transport_errors_are_the_members() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let made_here = tonic::Status::from_error(Box::new(refused));
        assert!(member_failed(&etcd_client::Error::GRpcStatus(made_here)));
        assert!(member_failed(&no_leader()));
        let answer = tonic::Status::failed_precondition("etcdserver: key not found");
        assert!(!member_failed(&etcd_client::Error::GRpcStatus(answer)));
    }
}
