//! Every problem and warning the planner can report has a stable code, so
//! that a CI gate can allow or deny by code instead of matching prose. The
//! codes appear in plan text (`[code]`), JSON (`code`) and Markdown, and
//! `docs/problem-codes.md` lists them (a test keeps that list complete).
//!
//! API boundary: codes are only ever added; one is never renamed or reused
//! for another meaning.

use std::fmt;

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $name:ident = $text:literal,)*) => {
        /// A problem's or warning's stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $($(#[doc = $doc])* $name,)*
        }

        impl Code {
            /// Every code, in the order of this file.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as it is written: kebab-case.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $text,)*
                }
            }

            /// What the code means, in one sentence (for the docs).
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$name => concat!($($doc),*).trim_ascii(),)*
                }
            }
        }
    };
}

codes! {
    // The topology and the observed state.
    /// A server of the topology is missing from the observed state.
    NotObserved = "not-observed",
    /// A server replicates from an address that is no server of the topology.
    ForeignSource = "foreign-source",
    /// The servers replicate in a cycle: none of them is a primary.
    ReplicationCycle = "replication-cycle",
    /// `--replace` names a server the topology does not have.
    UnknownServer = "unknown-server",
    /// `--replace` names the primary: a clone only builds replicas.
    ReplacePrimary = "replace-primary",
    /// The agents are reached in plaintext (`insecure = true`).
    PlaintextAgents = "plaintext-agents",
    /// An earlier apply never recorded its end (killed, or its machine lost).
    InterruptedApply = "interrupted-apply",

    // The primary.
    /// The observed primary does not answer, and no replacement is named.
    PrimaryUnreachable = "primary-unreachable",
    /// The desired primary is empty while other servers hold data.
    EmptyPrimary = "empty-primary",
    /// Another server takes writes and holds transactions the desired primary lacks.
    AnotherPrimaryAhead = "another-primary-ahead",

    // A change of primary.
    /// The candidate is `promotable = false`.
    CandidateNotPromotable = "candidate-not-promotable",
    /// The candidate lacks binary logging or log_replica_updates.
    CandidateWithoutBinlog = "candidate-without-binlog",
    /// The old and the new primary run different flavors.
    MixedFlavors = "mixed-flavors",
    /// The candidate lags more than `max_replica_lag`.
    CandidateLagging = "candidate-lagging",
    /// The candidate's lag is unknown.
    CandidateLagUnknown = "candidate-lag-unknown",
    /// The candidate's replication threads are not both running.
    CandidateReplicationStopped = "candidate-replication-stopped",
    /// The old primary has a transaction open longer than `max_transaction_age`.
    LongTransaction = "long-transaction",
    /// The old primary keeps replicas but has log_replica_updates off.
    OldPrimaryWithoutLogReplicaUpdates = "old-primary-without-log-replica-updates",
    /// The failover candidate is not in the dead primary's tree, or does not answer.
    CandidateNotInTree = "candidate-not-in-tree",
    /// The failover candidate may not become primary (the message says why).
    CandidateUnfit = "candidate-unfit",
    /// The replica the candidate must catch up from cannot serve it.
    CatchUpSourceUnfit = "catch-up-source-unfit",
    /// No surviving replica holds everything the others received.
    NoCompleteReplica = "no-complete-replica",
    /// `--failover` found no server that qualifies to replace the dead primary.
    NoFailoverCandidate = "no-failover-candidate",
    /// The operation is not implemented for this flavor.
    UnsupportedFlavor = "unsupported-flavor",
    /// The dead primary is left alone until it is back.
    DeadPrimaryLeftAlone = "dead-primary-left-alone",

    // Replicas.
    /// A replica holds transactions its source and the primary lack.
    ErrantGtid = "errant-gtid",
    /// A former primary holds writes that never reached the others: it is recloned.
    FormerPrimaryErrantWrites = "former-primary-errant-writes",
    /// The source has purged binary logs a replica still needs.
    PurgedBinlogs = "purged-binlogs",
    /// The source has purged binary logs a server needs to start where it
    /// is; it holds nothing its donor lacks, so it is recloned and nothing is lost.
    PurgedBinlogsReclone = "purged-binlogs-reclone",
    /// A replica's replication stopped on an error.
    ReplicationBroken = "replication-broken",
    /// A replica's desired source does not answer.
    SourceUnreachable = "source-unreachable",
    /// A source has binary logging off.
    SourceWithoutBinlog = "source-without-binlog",
    /// A source that is itself a replica has log_replica_updates off.
    SourceWithoutLogReplicaUpdates = "source-without-log-replica-updates",
    /// A server holds data but does not replicate (`--replace` reclones it).
    DataWithoutReplication = "data-without-replication",
    /// mysqld is stopped over a datadir with files: left alone.
    StoppedWithFiles = "stopped-with-files",
    /// Neither the server nor its agent answers: left alone.
    ServerUnreachable = "server-unreachable",
    /// A server that waits for another with a problem cannot be planned.
    UpstreamBlocked = "upstream-blocked",

    // Clones.
    /// The clone target's agent does not answer.
    AgentUnreachable = "agent-unreachable",
    /// A clone's target or donor has no physical backup tool.
    NoBackupTool = "no-backup-tool",
    /// The donor has (or will have) binary logging off.
    DonorWithoutBinlog = "donor-without-binlog",
    /// The donor does not answer.
    DonorUnreachable = "donor-unreachable",
    /// The donor's agent does not answer.
    DonorAgentUnreachable = "donor-agent-unreachable",
    /// The clone target has too little free disk for the copy.
    NotEnoughDisk = "not-enough-disk",

    // Durability and hooks.
    /// Semi-sync is asked for but the primary has no replica that answers.
    SemiSyncNoReplica = "semi-sync-no-replica",
    /// A server has no semi-synchronous replication (MySQL without the plugins).
    SemiSyncUnavailable = "semi-sync-unavailable",
    /// A server has semi-sync's primary side on while the topology says async.
    SemiSyncUnmanaged = "semi-sync-unmanaged",
    /// A failed post hook of an earlier apply is not run again: its primary is superseded.
    PostHookSuperseded = "post-hook-superseded",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_explained() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{text}"
            );
            assert!(code.meaning().ends_with('.'), "{text}: {}", code.meaning());
        }
    }
}
