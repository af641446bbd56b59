//! Errors of the topology file: one [`Problem`] per broken rule, each pointing
//! at the offending span, gathered into one [`TopologyError`].
//!
//! A file with a single problem renders as that problem; a file with several
//! renders as a summary with every problem as a related diagnostic, so a user
//! fixes them all in one round instead of one per run.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// Why a topology file could not be loaded.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum TopologyError {
    #[error("cannot read topology file `{}`", path.display())]
    #[diagnostic(
        code(flipover::topology::read),
        help("pass the topology file with -f/--file (default: flipover.toml)")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(InvalidTopology),

    /// A change to a topology named a server it does not have.
    #[error("{origin}: no server `{name}` in the topology")]
    #[diagnostic(code(flipover::topology::unknown_server))]
    UnknownServer { origin: String, name: String },
}

impl TopologyError {
    /// The problems found in the file's text (empty when it could not be read).
    pub fn problems(&self) -> &[Problem] {
        match self {
            TopologyError::Read { .. } | TopologyError::UnknownServer { .. } => &[],
            TopologyError::Invalid(invalid) => &invalid.problems,
        }
    }
}

/// A topology file that breaks one or more rules of the file contract.
#[derive(Debug, thiserror::Error)]
pub struct InvalidTopology {
    source_code: NamedSource<String>,
    problems: Vec<Problem>,
}

impl InvalidTopology {
    /// `problems` must not be empty; they are reported in file order.
    pub(crate) fn new(name: String, text: &str, mut problems: Vec<Problem>) -> Self {
        debug_assert!(!problems.is_empty());
        problems.sort_by_key(|problem| problem.position());
        Self {
            source_code: NamedSource::new(name, text.to_string()).with_language("TOML"),
            problems,
        }
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// A file with exactly one problem is reported as that problem.
    fn single(&self) -> Option<&Problem> {
        match self.problems.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

impl fmt::Display for InvalidTopology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.single() {
            Some(problem) => problem.fmt(f),
            None => write!(
                f,
                "{} has {} problems",
                self.source_code.name(),
                self.problems.len()
            ),
        }
    }
}

impl Diagnostic for InvalidTopology {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.single() {
            Some(problem) => problem.code(),
            None => Some(Box::new("flipover::topology::invalid")),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.single().and_then(|problem| problem.help())
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.single().and_then(|problem| problem.labels())
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self.single() {
            Some(_) => None,
            None => Some(Box::new(
                self.problems
                    .iter()
                    .map(|problem| problem as &dyn Diagnostic),
            )),
        }
    }
}

/// The rule a [`Problem`] breaks; each has its own diagnostic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// Not TOML at all.
    Syntax,
    /// A key the file contract does not know.
    UnknownKey,
    /// A known key whose value has the wrong type.
    WrongType,
    /// The file describes nothing at all.
    EmptyFile,
    /// A required key or table is absent.
    MissingKey,
    /// A required string is empty.
    EmptyValue,
    /// A secret that is neither `"literal"`, `{ env = "V" }` nor `{ file = "p" }`.
    BadSecret,
    /// A port outside 1..=65535.
    PortOutOfRange,
    /// A server name outside `[A-Za-z0-9_.-]+`.
    BadServerName,
    /// A `host` that is neither a DNS name nor an IP address.
    BadHost,
    /// No `[servers.NAME]` table at all.
    NoServers,
    /// Every server has a `source`.
    NoPrimary,
    /// More than one server lacks a `source`.
    SeveralPrimaries,
    /// `source` or `clone_from` names a server that does not exist.
    UnknownServer,
    /// `source` names the server itself.
    SelfReplication,
    /// `clone_from` names the server itself.
    CloneFromSelf,
    /// Following `source` leads back to where it started.
    ReplicationCycle,
    /// Two servers on the same `host:port`.
    DuplicateAddress,
    /// A `[cluster]` limit below zero.
    NegativeSeconds,
    /// A number below the least its key accepts (`[journal] keep_applies = 0`).
    TooSmall,
    /// A string key whose value is not one of the words it accepts.
    UnknownValue,
    /// A `[hooks]` list, command or timeout of the wrong form.
    BadHook,
    /// Keys that exclude each other (`insecure = true` with TLS files).
    ConflictingKeys,
    /// The file parsed but did not fit the raw types (a rule the checks above missed).
    InvalidValue,
}

impl ProblemKind {
    /// The last segment of the diagnostic code, e.g. `unknown_key`.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Syntax => "syntax",
            ProblemKind::UnknownKey => "unknown_key",
            ProblemKind::WrongType => "wrong_type",
            ProblemKind::EmptyFile => "empty_file",
            ProblemKind::MissingKey => "missing_key",
            ProblemKind::EmptyValue => "empty_value",
            ProblemKind::BadSecret => "bad_secret",
            ProblemKind::PortOutOfRange => "port_out_of_range",
            ProblemKind::BadServerName => "bad_server_name",
            ProblemKind::BadHost => "bad_host",
            ProblemKind::NoServers => "no_servers",
            ProblemKind::NoPrimary => "no_primary",
            ProblemKind::SeveralPrimaries => "several_primaries",
            ProblemKind::UnknownServer => "unknown_server",
            ProblemKind::SelfReplication => "self_replication",
            ProblemKind::CloneFromSelf => "clone_from_self",
            ProblemKind::ReplicationCycle => "replication_cycle",
            ProblemKind::DuplicateAddress => "duplicate_address",
            ProblemKind::NegativeSeconds => "negative_seconds",
            ProblemKind::TooSmall => "too_small",
            ProblemKind::UnknownValue => "unknown_value",
            ProblemKind::BadHook => "bad_hook",
            ProblemKind::ConflictingKeys => "conflicting_keys",
            ProblemKind::InvalidValue => "invalid_value",
        }
    }
}

/// One broken rule, with labelled spans into the file and a hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    kind: ProblemKind,
    message: String,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl Problem {
    pub(crate) fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    /// Adds a labelled span; the first one added is the primary location.
    pub(crate) fn label(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        let span = (span.start, span.end.saturating_sub(span.start));
        self.labels
            .push(LabeledSpan::new_with_span(Some(text.into()), span));
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the problem starts in the file, used to report problems in file order.
    fn position(&self) -> usize {
        self.labels
            .iter()
            .map(|label| label.offset())
            .min()
            .unwrap_or(0)
    }
}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!(
            "flipover::topology::{}",
            self.kind.name()
        )))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}
