//! The planner's vocabulary: what a step is, and what it will do.
//!
//! These are the planner's own types, not a wire format: the plan file and
//! plan JSON (a later issue) get their own versioned types.

use std::fmt;

use crate::topology::HookEvent;
use crate::wire::HookEventDocument;

/// The kinds of step a plan is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepKind {
    Clone,
    StartReplication,
    Rechain,
    Switchover,
    Failover,
    SetReadOnly,
    SetDurability,
    RunHook,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Clone => "clone",
            StepKind::StartReplication => "start-replication",
            StepKind::Rechain => "rechain",
            StepKind::Switchover => "switchover",
            StepKind::Failover => "failover",
            StepKind::SetReadOnly => "set-read-only",
            StepKind::SetDurability => "set-durability",
            StepKind::RunHook => "run-hook",
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a plan, with everything the executor needs besides the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Replace `target`'s datadir with a physical copy streamed from `donor`.
    Clone(CloneStep),
    /// Point `target` at `source` by GTID and start replicating.
    StartReplication(StartReplicationStep),
    /// Move a running replica from one source to another, by GTID.
    Rechain(RechainStep),
    /// Planned change of primary: fence the old, let the new catch up,
    /// promote it, make the old one its replica.
    Switchover(SwitchoverStep),
    /// Replace a dead primary: drain the replicas, bring the new primary up
    /// to the most advanced of them, promote it, move the others under it.
    Failover(FailoverStep),
    /// Make a server read-only (replicas) or writable (the primary).
    SetReadOnly(SetReadOnlyStep),
    /// Configure semi-synchronous replication: replicas acknowledge, the
    /// primary waits for an acknowledgement (AFTER_SYNC), nobody else does.
    SetDurability(SemiSyncStep),
    /// Run again a post hook that failed in an earlier apply (from the journal).
    RunHook(RunHookStep),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemiSyncStep {
    /// The server whose commits wait for a replica's acknowledgement.
    pub primary: String,
    /// Servers whose replica side must be on, re-checked when the step runs:
    /// turned on where it is off, their IO thread restarted so that it
    /// takes effect.
    pub replicas: Vec<String>,
    /// Servers whose primary side is turned off (a former primary).
    pub primary_side_off: Vec<String>,
    /// Whether the primary's side is set up and proven: only with a replica
    /// that can acknowledge (without one, commits would stall, then go async).
    pub enable_primary: bool,
    /// `rpl_semi_sync_master_timeout` for the primary.
    pub timeout_ms: u64,
    /// What differs from the topology at plan time, per server, in words.
    pub reasons: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunHookStep {
    pub hook: HookEvent,
    /// The server the original step was about (its new primary or target).
    pub target: String,
    /// The event as the failed run was told it (`rerun` set); boxed, being
    /// far larger than the other steps.
    pub event: Box<HookEventDocument>,
    /// Why it failed, as the journal recorded it.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverStep {
    /// The unreachable primary; left alone.
    pub old_primary: String,
    pub new_primary: String,
    /// The other reachable servers that replicated from the old primary's
    /// tree: drained, then pointed at the new primary.
    pub replicas: Vec<String>,
    /// At plan time, the replica whose received position is the most
    /// advanced when the new primary is behind it (checked again at run time).
    pub catch_up_from: Option<String>,
    /// How long relay logs may take to drain, in seconds.
    pub drain_timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RechainStep {
    pub target: String,
    /// Its source now.
    pub from: String,
    /// Its source after the step.
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchoverStep {
    pub old_primary: String,
    pub new_primary: String,
    /// The candidate's replication lag when planned, in seconds.
    pub candidate_lag_seconds: Option<u64>,
    /// Limits from `[cluster]`, re-checked when the step runs.
    pub max_replica_lag: u64,
    pub max_transaction_age: u64,
    /// How long writes may stay blocked waiting for the candidate.
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetReadOnlyStep {
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneStep {
    pub target: String,
    pub donor: String,
    /// Whether the target holds data that the clone overwrites (`--replace`).
    pub destructive: bool,
    /// What the target holds that would be lost, in words, for destructive clones.
    pub data_at_risk: Option<DataAtRisk>,
    /// A non-destructive clone's target schemas that hold nothing (no
    /// tables, views, routines or events): the copy replaces them, and the
    /// step checks again that they are still empty before it does.
    pub empty_schemas: Vec<String>,
    /// The donor's datadir size as its agent reported it (the amount to stream).
    pub estimated_bytes: Option<u64>,
}

/// What a destructive step throws away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataAtRisk {
    pub schemas: Vec<String>,
    /// GTIDs the target holds that its donor lacks: these are lost for good.
    pub gtids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartReplicationStep {
    pub target: String,
    pub source: String,
    /// How the replica's starting position is known.
    pub position: StartPosition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    /// The GTID of the backup the preceding clone step restored.
    FromClone,
    /// The GTID of the backup this server was restored from earlier, by a
    /// clone whose replication never started (an interrupted apply).
    FromRestoredBackup { gtid: String },
    /// The replica already has replication configured (threads stopped):
    /// just start it where it is.
    Configured,
    /// The replica already runs from a copy an interrupted apply cloned but
    /// never confirmed (its agent still keeps the previous datadir): prove
    /// its replication, then let the agent discard the previous datadir.
    FinishClone,
    /// A server holding only part of its source's history and nothing of
    /// its own (a former primary whose every write reached the others, a
    /// replica whose replication was reset): it starts after its own
    /// position (`gtid_current_pos`).
    OwnPosition,
}

impl Step {
    pub fn kind(&self) -> StepKind {
        match self {
            Step::Clone(_) => StepKind::Clone,
            Step::StartReplication(_) => StepKind::StartReplication,
            Step::Rechain(_) => StepKind::Rechain,
            Step::Switchover(_) => StepKind::Switchover,
            Step::Failover(_) => StepKind::Failover,
            Step::SetReadOnly(_) => StepKind::SetReadOnly,
            Step::SetDurability(_) => StepKind::SetDurability,
            Step::RunHook(_) => StepKind::RunHook,
        }
    }

    /// The server this step changes.
    pub fn target(&self) -> &str {
        match self {
            Step::Clone(s) => &s.target,
            Step::StartReplication(s) => &s.target,
            Step::Rechain(s) => &s.target,
            Step::Switchover(s) => &s.new_primary,
            Step::Failover(s) => &s.new_primary,
            Step::SetReadOnly(s) => &s.target,
            Step::SetDurability(s) => &s.primary,
            Step::RunHook(s) => &s.target,
        }
    }

    /// Every server this step changes.
    pub fn servers(&self) -> Vec<&str> {
        match self {
            Step::Switchover(s) => vec![s.old_primary.as_str(), s.new_primary.as_str()],
            Step::Failover(s) => std::iter::once(s.new_primary.as_str())
                .chain(s.replicas.iter().map(String::as_str))
                .collect(),
            Step::SetDurability(s) => std::iter::once(s.primary.as_str())
                .chain(s.replicas.iter().map(String::as_str))
                .chain(s.primary_side_off.iter().map(String::as_str))
                .collect(),
            // A hook changes no server itself.
            Step::RunHook(_) => Vec::new(),
            other => vec![other.target()],
        }
    }

    /// Whether the step stops writes to the cluster for a moment.
    pub fn blocks_writes(&self) -> bool {
        matches!(self, Step::Switchover(_))
    }

    pub fn destructive(&self) -> bool {
        matches!(
            self,
            Step::Clone(CloneStep {
                destructive: true,
                ..
            })
        )
    }

    /// A short, stable name: `clone db2`, `start-replication db2`.
    pub fn id(&self) -> String {
        if let Step::RunHook(s) = self {
            return format!("{} {} {}", self.kind(), s.hook, s.target);
        }
        format!("{} {}", self.kind(), self.target())
    }

    /// One line saying what the step does.
    pub fn title(&self) -> String {
        match self {
            Step::Clone(s) => format!("clone {} from {}", s.target, s.donor),
            Step::StartReplication(s) => {
                format!("start replication on {} from {}", s.target, s.source)
            }
            Step::Rechain(s) => format!("rechain {} from {} to {}", s.target, s.from, s.to),
            Step::Switchover(s) => format!("switchover {} -> {}", s.old_primary, s.new_primary),
            Step::Failover(s) => format!("failover {} -> {}", s.old_primary, s.new_primary),
            Step::SetReadOnly(s) => format!(
                "make {} {}",
                s.target,
                if s.read_only { "read-only" } else { "writable" }
            ),
            Step::SetDurability(s) => format!(
                "make {}'s commits wait for a replica (semi-sync, AFTER_SYNC)",
                s.primary
            ),
            Step::RunHook(s) => format!(
                "run the {} hook again (it did not succeed after {})",
                s.hook, s.event.step.title
            ),
        }
    }
}
