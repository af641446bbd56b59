//! The one path every error takes to the terminal (jj's `CommandError`):
//! what happened, the exit code it means, and what to do next. Every hint is
//! spelled `hint:`, whether it comes from flipover's own words or from a
//! diagnostic that points into a file.

use std::fmt::Write as _;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

use crate::exit_codes;

/// What a command returns: its exit code when it did its job (0, or 2 for
/// "changes" with `--detailed-exitcode`), else the error.
pub type CommandResult = Result<i32, CommandError>;

/// An error on its way to the terminal.
#[derive(Debug)]
pub struct CommandError {
    /// One of `exit_codes`.
    pub exit_code: i32,
    /// What happened: a plain message, or a diagnostic that points into a
    /// file (a topology error).
    report: miette::Report,
    /// Lines after the message that say more (the facts a stale plan changed).
    details: Vec<String>,
    /// What to do next.
    hints: Vec<String>,
}

impl CommandError {
    /// An error with `exit_code` and the message `message`.
    pub fn new(exit_code: i32, message: impl std::fmt::Display) -> CommandError {
        CommandError::from_report(exit_code, miette::miette!("{message}"))
    }

    /// A failure of the command (exit code 1).
    pub fn failed(message: impl std::fmt::Display) -> CommandError {
        CommandError::new(exit_codes::ERROR, message)
    }

    pub fn from_report(exit_code: i32, report: miette::Report) -> CommandError {
        CommandError {
            exit_code,
            report,
            details: Vec::new(),
            hints: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CommandError {
        self.hints.push(hint.into());
        self
    }

    pub fn detail(mut self, line: impl Into<String>) -> CommandError {
        self.details.push(line.into());
        self
    }

    /// The error as the terminal shows it: `error: …`, the details, the
    /// causes, then `hint: …` lines. A diagnostic with source code keeps
    /// miette's drawing of the file, its `help` spelled `hint`.
    pub fn render(&self, color: bool) -> String {
        let diagnostic: &dyn Diagnostic = self.report.as_ref();
        let mut out = String::new();
        let has_source = diagnostic.source_code().is_some()
            || diagnostic.related().is_some_and(|mut r| r.next().is_some());
        if has_source {
            let theme = if color {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            let mut drawn = String::new();
            let _ = GraphicalReportHandler::new_themed(theme)
                .with_width(100)
                .render_report(&mut drawn, diagnostic);
            out.push_str(&spell_hints(&drawn));
            for line in &self.details {
                let _ = writeln!(out, "  {line}");
            }
        } else {
            let _ = writeln!(out, "error: {}", self.report);
            let mut cause = std::error::Error::source(diagnostic);
            while let Some(error) = cause {
                let _ = writeln!(out, "  caused by: {error}");
                cause = error.source();
            }
            for line in &self.details {
                let _ = writeln!(out, "  {line}");
            }
            if let Some(help) = diagnostic.help() {
                let _ = writeln!(out, "hint: {help}");
            }
        }
        for hint in &self.hints {
            let _ = writeln!(out, "hint: {hint}");
        }
        out
    }
}

/// miette writes `help:`; flipover says `hint:` everywhere.
fn spell_hints(drawn: &str) -> String {
    drawn
        .lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            match line.trim_start().strip_prefix("help:") {
                Some(rest) => format!("{}hint:{rest}\n", &line[..indent]),
                None => format!("{line}\n"),
            }
        })
        .collect()
}

impl From<miette::Report> for CommandError {
    fn from(report: miette::Report) -> CommandError {
        CommandError::from_report(exit_codes::ERROR, report)
    }
}

impl From<crate::topology::TopologyError> for CommandError {
    fn from(error: crate::topology::TopologyError) -> CommandError {
        CommandError::from_report(exit_codes::ERROR, miette::Report::new(error))
    }
}

impl From<crate::sandbox::SandboxError> for CommandError {
    fn from(error: crate::sandbox::SandboxError) -> CommandError {
        CommandError::from_report(exit_codes::ERROR, miette::Report::new(error))
    }
}

/// The message alone (for a JSON report's `message`).
impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.report)
    }
}

impl From<std::io::Error> for CommandError {
    fn from(error: std::io::Error) -> CommandError {
        CommandError::failed(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hint_is_spelled_hint() {
        let error = CommandError::from_report(
            exit_codes::STALE_PLAN,
            miette::miette!(help = "make a new plan", "plan.json is stale"),
        )
        .detail("db2: source db1 -> db3")
        .hint("then apply it");
        assert_eq!(
            error.render(false),
            "error: plan.json is stale\n  db2: source db1 -> db3\nhint: make a new plan\nhint: then apply it\n"
        );
        let topology = crate::topology::parse(
            "[cluster]\nname = \"x\"\n[servers.a]\nhost = \"10.0.0.1\"\nsource = \"b\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap_err();
        let drawn = CommandError::from(topology).render(false);
        assert!(drawn.contains("hint:"), "{drawn}");
        assert!(!drawn.contains("help:"), "{drawn}");
    }
}
