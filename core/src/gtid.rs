//! GTID arithmetic the planner needs, without a server.
//!
//! MariaDB GTIDs are `domain-server_id-seq`. A position (`gtid_binlog_pos`)
//! holds the last GTID per domain; a binlog state (`gtid_binlog_state`) the
//! last GTID per domain *and* server_id, which is what reveals writes made
//! directly on a replica (see `../shared/design/REPLICATION-SQL.md`).

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MariadbGtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
}

impl fmt::Display for MariadbGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

/// Parses `0-1-5,1-2-3` (whitespace tolerated); malformed entries are skipped.
pub fn parse_list(text: &str) -> Vec<MariadbGtid> {
    text.split(',')
        .filter_map(|entry| {
            let mut parts = entry.trim().splitn(3, '-');
            Some(MariadbGtid {
                domain: parts.next()?.parse().ok()?,
                server_id: parts.next()?.parse().ok()?,
                seq: parts.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// The GTIDs of `state` (a `gtid_binlog_state`) that `other` does not cover:
/// for each (domain, server_id), a higher sequence number than `other` has.
pub fn not_covered_by(state: &str, other: &str) -> Vec<MariadbGtid> {
    not_covered_by_any(state, &[other])
}

/// Like [`not_covered_by`], against the union of several states.
pub fn not_covered_by_any(state: &str, others: &[&str]) -> Vec<MariadbGtid> {
    let mut known: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for gtid in others.iter().flat_map(|o| parse_list(o)) {
        let seq = known.entry((gtid.domain, gtid.server_id)).or_default();
        *seq = (*seq).max(gtid.seq);
    }
    let mut missing: Vec<MariadbGtid> = parse_list(state)
        .into_iter()
        .filter(|g| {
            known
                .get(&(g.domain, g.server_id))
                .is_none_or(|seq| *seq < g.seq)
        })
        .collect();
    missing.sort();
    missing
}

/// The GTIDs of `target` (a position: last GTID per domain) that
/// `position` has not reached yet: what a lagging replica still has to apply.
pub fn not_reached(position: &str, target: &str) -> Vec<MariadbGtid> {
    let have: BTreeMap<u32, u64> = parse_list(position)
        .into_iter()
        .map(|g| (g.domain, g.seq))
        .collect();
    let mut missing: Vec<MariadbGtid> = parse_list(target)
        .into_iter()
        .filter(|g| have.get(&g.domain).is_none_or(|seq| *seq < g.seq))
        .collect();
    missing.sort();
    missing
}

/// Domains where `position` (a replica's `gtid_current_pos`) is behind the
/// start of `oldest` (the Gtid_list of a source's oldest binlog): the source
/// no longer has the binlogs the replica would need. Returns `(needed, oldest)`.
pub fn purged_past(position: &str, oldest: &str) -> Vec<(MariadbGtid, MariadbGtid)> {
    let have: BTreeMap<u32, MariadbGtid> = parse_list(position)
        .into_iter()
        .map(|g| (g.domain, g))
        .collect();
    let mut missing = Vec::new();
    for start in parse_list(oldest) {
        let needed = have.get(&start.domain).copied().unwrap_or(MariadbGtid {
            domain: start.domain,
            server_id: 0,
            seq: 0,
        });
        if needed.seq < start.seq {
            missing.push((needed, start));
        }
    }
    missing.sort();
    missing.dedup_by_key(|(needed, _)| needed.domain);
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_positions_and_skips_garbage() {
        assert_eq!(
            parse_list("0-1-5, 1-2-3,bad,"),
            vec![
                MariadbGtid {
                    domain: 0,
                    server_id: 1,
                    seq: 5
                },
                MariadbGtid {
                    domain: 1,
                    server_id: 2,
                    seq: 3
                }
            ]
        );
        assert!(parse_list("").is_empty());
    }

    #[test]
    fn a_stray_write_on_a_replica_is_not_covered_by_its_source() {
        // The case REPLICATION-SQL.md describes: replica 1003 wrote locally.
        let replica_state = "0-1001-6,0-1003-7";
        let source_state = "0-1001-6";
        assert_eq!(
            not_covered_by(replica_state, source_state),
            vec![MariadbGtid {
                domain: 0,
                server_id: 1003,
                seq: 7
            }]
        );
        assert!(not_covered_by(source_state, replica_state).is_empty());
    }

    #[test]
    fn union_of_states_takes_the_highest_sequence() {
        assert!(not_covered_by_any("0-1-10", &["0-1-4", "0-1-12"]).is_empty());
        assert_eq!(not_covered_by_any("0-1-10,0-3-2", &["0-1-10"]).len(), 1);
    }

    #[test]
    fn a_lagging_position_has_not_reached_its_source() {
        assert_eq!(not_reached("0-1-5", "0-1-7").len(), 1);
        assert!(not_reached("0-1-7", "0-1-7").is_empty());
        assert_eq!(not_reached("", "0-1-7,1-1-2").len(), 2);
    }

    #[test]
    fn purged_binlogs_are_detected_per_domain() {
        // The source's oldest binlog starts after 0-1-100: a replica at 0-1-50 is stranded.
        assert_eq!(purged_past("0-1-50", "0-1-100").len(), 1);
        assert!(purged_past("0-1-150", "0-1-100").is_empty());
        assert!(purged_past("0-1-100", "0-1-100").is_empty());
        // A domain the replica never saw counts from 0.
        assert_eq!(purged_past("0-1-150", "0-1-100,1-2-5").len(), 1);
        assert!(purged_past("0-1-5", "").is_empty());
    }

    #[test]
    fn domains_are_compared_separately() {
        assert_eq!(
            not_covered_by("0-1-10,1-1-4", "0-1-12,1-1-3")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["1-1-4"]
        );
    }
}
