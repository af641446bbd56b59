//! Where the watchers' state lives in etcd, and the JSON of each value.
//!
//! Under the prefix (default `/flipover/v1`), per cluster:
//!
//! ```text
//! <prefix>/clusters/<cluster>/leader/<lease id, hex>   election candidates (etcd's election
//!                                                      API); the lowest create revision leads;
//!                                                      value: LeaderValue; under the
//!                                                      candidate's lease
//! <prefix>/clusters/<cluster>/pause                    PauseValue; a timed pause also has a
//!                                                      lease, only to remove the key later
//! <prefix>/clusters/<cluster>/last-failover            FailoverValue, written by the leader
//!                                                      only while its election key exists
//! ```
//!
//! `<cluster>` is the topology's cluster name with every byte outside
//! `[A-Za-z0-9._-]` written `%XX`, so a name never adds a level or collides
//! with another. Times are milliseconds since the Unix epoch. These values
//! are a wire format between watchers of different versions: fields are
//! only added (`v1` in the prefix changes otherwise).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub const DEFAULT_PREFIX: &str = "/flipover/v1";

/// The keys of one cluster.
#[derive(Debug, Clone)]
pub struct ClusterKeys {
    base: String,
}

impl ClusterKeys {
    pub fn new(prefix: &str, cluster: &str) -> ClusterKeys {
        ClusterKeys {
            base: format!(
                "{}/clusters/{}",
                prefix.trim_end_matches('/'),
                encode(cluster)
            ),
        }
    }

    /// The election's name: candidates' keys are `<this>/<lease hex>`.
    pub fn election(&self) -> String {
        format!("{}/leader", self.base)
    }

    /// The prefix every candidate key starts with.
    pub fn candidates(&self) -> String {
        format!("{}/leader/", self.base)
    }

    /// The candidate key etcd's election server writes for `lease`.
    pub fn candidate(&self, lease: i64) -> String {
        format!("{}/leader/{lease:x}", self.base)
    }

    pub fn pause(&self) -> String {
        format!("{}/pause", self.base)
    }

    pub fn last_failover(&self) -> String {
        format!("{}/last-failover", self.base)
    }
}

fn encode(cluster: &str) -> String {
    let mut out = String::with_capacity(cluster.len());
    for byte in cluster.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The value of a candidate key: who campaigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderValue {
    pub watcher: String,
    pub host: String,
    pub pid: u32,
    pub since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseValue {
    pub by: String,
    pub since_ms: u64,
    /// Absent: until `resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverValue {
    pub at_ms: u64,
    pub old_primary: String,
    pub new_primary: String,
    pub watcher: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

pub fn to_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

pub fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_add_a_level() {
        let keys = ClusterKeys::new("/flipover/v1/", "shop/eu 1%");
        assert_eq!(keys.pause(), "/flipover/v1/clusters/shop%2Feu%201%25/pause");
        assert_eq!(
            keys.candidate(0x1f),
            "/flipover/v1/clusters/shop%2Feu%201%25/leader/1f"
        );
        assert!(keys.candidate(7).starts_with(&keys.candidates()));
        assert_eq!(format!("{}/", keys.election()), keys.candidates());
        assert_ne!(
            ClusterKeys::new("/p", "a/b").pause(),
            ClusterKeys::new("/p", "a%2Fb").pause()
        );
    }

    #[test]
    fn a_pause_without_end_omits_it() {
        let value = PauseValue {
            by: "dba".into(),
            since_ms: 5,
            until_ms: None,
        };
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(text, r#"{"by":"dba","since_ms":5}"#);
        assert_eq!(serde_json::from_str::<PauseValue>(&text).unwrap(), value);
    }

    #[test]
    fn times_round_trip_to_the_millisecond() {
        let time = from_millis(1_700_000_000_123);
        assert_eq!(to_millis(time), 1_700_000_000_123);
    }
}
