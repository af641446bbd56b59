//! Why a step failed, typed: what went wrong ([`Failure`]) and the state it
//! left the servers in ([`ServersLeft`]). The CLI shows the message; the
//! JSON apply report carries the code and the state, so a script can tell a
//! switchover that rolled back from one that left the cluster half-changed.

use crate::db::DbError;

/// What went wrong, as a stable code (`Failure::code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A check made when the step ran refused it (a candidate's lag, an old
    /// transaction, a dead primary that answers again, a donor too big).
    Precheck,
    /// A `pre_*` hook vetoed the step.
    HookVeto,
    /// A server did not accept a connection.
    Unreachable,
    /// A statement failed on a server.
    Statement,
    /// A server stopped answering within a statement's or a phase's limit.
    Timeout,
    /// An agent refused or failed a request, or could not be reached.
    Agent,
    /// The agents' clone job failed.
    Clone,
    /// Replication did not start, or stopped on an error.
    Replication,
    /// A replica did not reach a position within its limit.
    CatchUp,
    /// A hook the step runs (a `run-hook` step) failed.
    Hook,
    /// Credentials or TLS files could not be read.
    Access,
}

impl Failure {
    pub fn code(self) -> &'static str {
        match self {
            Failure::Precheck => "precheck",
            Failure::HookVeto => "hook-veto",
            Failure::Unreachable => "unreachable",
            Failure::Statement => "statement",
            Failure::Timeout => "timeout",
            Failure::Agent => "agent",
            Failure::Clone => "clone",
            Failure::Replication => "replication",
            Failure::CatchUp => "catch-up",
            Failure::Hook => "hook",
            Failure::Access => "access",
        }
    }
}

/// The state a failed step left its servers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServersLeft {
    /// It failed before changing anything.
    Unchanged,
    /// It changed something, then put it back: the servers are as the plan
    /// found them (a switchover's rollback, a rechain back to its source).
    RolledBack,
    /// What it changed stays; the next plan starts from there.
    Changed,
}

impl ServersLeft {
    pub fn code(self) -> &'static str {
        match self {
            ServersLeft::Unchanged => "unchanged",
            ServersLeft::RolledBack => "rolled-back",
            ServersLeft::Changed => "changed",
        }
    }
}

/// Why a step failed: the failure, the servers' state, and in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub failure: Failure,
    pub left: ServersLeft,
    pub message: String,
}

impl StepError {
    /// A failure that may have changed something (the safe assumption for
    /// a helper that does not know where in its step it runs).
    pub fn new(failure: Failure, message: impl Into<String>) -> StepError {
        StepError {
            failure,
            left: ServersLeft::Changed,
            message: message.into(),
        }
    }

    /// A failure before anything changed.
    pub fn unchanged(failure: Failure, message: impl Into<String>) -> StepError {
        StepError {
            left: ServersLeft::Unchanged,
            ..StepError::new(failure, message)
        }
    }

    /// A failure after which the step put back what it had changed.
    pub fn restored(failure: Failure, message: impl Into<String>) -> StepError {
        StepError {
            left: ServersLeft::RolledBack,
            ..StepError::new(failure, message)
        }
    }

    /// This error, known to have happened before the step changed anything.
    pub fn nothing_changed(self) -> StepError {
        StepError {
            left: ServersLeft::Unchanged,
            ..self
        }
    }

    /// This error, after the step put back what it had changed; `message`
    /// replaces the text (it says what was put back).
    pub fn rolled_back(self, message: impl Into<String>) -> StepError {
        StepError {
            left: ServersLeft::RolledBack,
            message: message.into(),
            ..self
        }
    }

    /// This error with `context` before its text.
    pub fn context(self, context: impl std::fmt::Display) -> StepError {
        StepError {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }

    /// This error with `more` after its text.
    pub fn and(self, more: impl std::fmt::Display) -> StepError {
        StepError {
            message: format!("{}{more}", self.message),
            ..self
        }
    }
}

impl From<DbError> for StepError {
    fn from(error: DbError) -> StepError {
        let failure = match &error {
            DbError::Connect { .. } => Failure::Unreachable,
            DbError::ConnectTimeout { .. } | DbError::Timeout { .. } | DbError::GivenUp { .. } => {
                Failure::Timeout
            }
            DbError::Query { .. } => Failure::Statement,
        };
        StepError::new(failure, error.to_string())
    }
}

impl From<crate::sql::ParseError> for StepError {
    fn from(error: crate::sql::ParseError) -> StepError {
        StepError::new(Failure::Statement, error.to_string())
    }
}

impl From<crate::secrets::SecretError> for StepError {
    fn from(error: crate::secrets::SecretError) -> StepError {
        StepError::unchanged(Failure::Access, error.to_string())
    }
}

impl From<crate::agents::AgentAccessError> for StepError {
    fn from(error: crate::agents::AgentAccessError) -> StepError {
        StepError::unchanged(Failure::Access, error.to_string())
    }
}

impl From<flipover_agent::client::AgentError> for StepError {
    fn from(error: flipover_agent::client::AgentError) -> StepError {
        StepError::new(Failure::Agent, error.to_string())
    }
}
