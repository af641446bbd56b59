//! The `--log-format` choice both binaries (`flipover`, `flipover-agent`)
//! offer: readable text, or one JSON object per line for log collectors.

/// How log lines on stderr are written. (The variants have no doc comments
/// on purpose: clap would turn every `--help` into the long layout.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    // Human-readable lines (coloured on a terminal unless NO_COLOR is set).
    #[default]
    Text,
    // One JSON object per line: timestamp, level, target, message and fields.
    Json,
}
