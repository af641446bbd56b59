//! The planner's vocabulary: what a step is, and what it will do.
//!
//! These are the planner's own types, not a wire format: the plan file and
//! plan JSON (a later issue) get their own versioned types.

use std::fmt;

/// The kinds of step a plan is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepKind {
    Clone,
    StartReplication,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Clone => "clone",
            StepKind::StartReplication => "start-replication",
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneStep {
    pub target: String,
    pub donor: String,
    /// Whether the target holds data that the clone overwrites (`--replace`).
    pub destructive: bool,
    /// What the target holds that would be lost, in words, for destructive clones.
    pub data_at_risk: Option<DataAtRisk>,
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
}

impl Step {
    pub fn kind(&self) -> StepKind {
        match self {
            Step::Clone(_) => StepKind::Clone,
            Step::StartReplication(_) => StepKind::StartReplication,
        }
    }

    /// The server this step changes.
    pub fn target(&self) -> &str {
        match self {
            Step::Clone(s) => &s.target,
            Step::StartReplication(s) => &s.target,
        }
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
        format!("{} {}", self.kind(), self.target())
    }

    /// One line saying what the step does.
    pub fn title(&self) -> String {
        match self {
            Step::Clone(s) => format!("clone {} from {}", s.target, s.donor),
            Step::StartReplication(s) => {
                format!("start replication on {} from {}", s.target, s.source)
            }
        }
    }
}
