//! Running `[hooks]` commands: without a shell, in their own process group
//! (a timeout kills the command and everything it started), with the event
//! as `FLIPOVER_*` variables and as JSON on stdin, and the end of their
//! stderr kept for the error. Each run is journaled (`hook …` entries), so
//! a post hook that failed is planned again by the next `plan`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{Context, Event};
use crate::planner::hooks::JOURNAL_PREFIX;
use crate::topology::HookCommand;
use crate::wire::{HookEventDocument, HookJournalDetail};

/// How much of a command's stderr an error quotes.
const STDERR_TAIL_LINES: usize = 20;
const STDERR_TAIL_BYTES: usize = 4096;
/// After a command exits, how long its output may still take to close (a
/// child it left running may hold it open).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Why a hook failed, in words for the operator (the stderr tail included).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{hook} hook `{command}` {reason}")]
pub struct HookError {
    pub hook: String,
    pub command: String,
    pub reason: String,
}

/// Runs `commands` in order for `event`; the first failure stops the rest.
/// Journals the hook's start and end, and tells the operator what ran.
pub(crate) async fn run(
    context: &Context,
    number: usize,
    event: &HookEventDocument,
    commands: &[HookCommand],
) -> Result<(), HookError> {
    if commands.is_empty() {
        return Ok(());
    }
    let journal_step = format!("{JOURNAL_PREFIX}{}", event.key());
    let detail = |error: Option<&HookError>| {
        serde_json::to_string(&HookJournalDetail {
            event: event.clone(),
            error: error.map(ToString::to_string),
        })
        .expect("a hook event serializes")
    };
    if let Some(journal) = &context.journal {
        journal
            .record(&journal_step, "started", Some(&detail(None)))
            .await;
    }
    let mut result = Ok(());
    for command in commands {
        let begun = Instant::now();
        match run_command(context.topology.base_dir(), event, command).await {
            Ok(()) => context.events.emit(Event::Note {
                number,
                title: event.step.title.clone(),
                text: format!(
                    "{} hook `{}` done in {:.2}s",
                    event.hook,
                    command.display(),
                    begun.elapsed().as_secs_f64()
                ),
            }),
            Err(reason) => {
                result = Err(HookError {
                    hook: event.hook.clone(),
                    command: command.display(),
                    reason,
                });
                break;
            }
        }
    }
    if let Some(journal) = &context.journal {
        match &result {
            Ok(()) => {
                journal
                    .record(&journal_step, "succeeded", Some(&detail(None)))
                    .await
            }
            Err(error) => {
                journal
                    .record(&journal_step, "failed", Some(&detail(Some(error))))
                    .await
            }
        }
    }
    result
}

/// One command, to its end or its timeout. `Err` says why it failed.
async fn run_command(
    base_dir: &Path,
    event: &HookEventDocument,
    command: &HookCommand,
) -> Result<(), String> {
    let (program, args) = command
        .argv
        .split_first()
        .ok_or_else(|| "has no program".to_string())?;
    let program = program_path(base_dir, program);
    let mut child = Command::new(&program)
        .args(args)
        .envs(event.environment())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let group = child.id().and_then(|pid| i32::try_from(pid).ok());

    // A hook that does not read its stdin must not block or fail on it.
    let input = serde_json::to_vec_pretty(event).expect("a hook event serializes");
    let stdin = child.stdin.take();
    tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&input).await;
            let _ = stdin.write_all(b"\n").await;
        }
    });
    let stdout = tokio::spawn(read_tail(child.stdout.take()));
    let stderr = tokio::spawn(read_tail(child.stderr.take()));

    let timeout = Duration::from_secs(command.timeout_seconds);
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => Some(status.map_err(|e| format!("cannot wait for it: {e}"))?),
        Err(_) => {
            kill_group(group);
            let _ = child.wait().await;
            None
        }
    };
    let output = |task: tokio::task::JoinHandle<String>| async move {
        match tokio::time::timeout(OUTPUT_GRACE, task).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        }
    };
    let (stdout, stderr) = (output(stdout).await, output(stderr).await);
    if !stdout.trim().is_empty() {
        tracing::info!(
            "{} hook `{}` said: {}",
            event.hook,
            command.display(),
            stdout.trim_end()
        );
    }
    let with_stderr = |reason: String| {
        let stderr = stderr.trim_end();
        if stderr.is_empty() {
            format!("{reason} (no stderr)")
        } else {
            format!("{reason}; its stderr ends with:\n{stderr}")
        }
    };
    match status {
        None => Err(with_stderr(format!(
            "timed out after {} s and was killed",
            command.timeout_seconds
        ))),
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(with_stderr(match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => format!("was killed ({status})"),
        })),
    }
}

/// A program without `/` is looked up on `PATH`; a relative path is taken
/// from the topology file's directory, like secret files.
fn program_path(base_dir: &Path, program: &str) -> PathBuf {
    let path = Path::new(program);
    if program.contains('/') && path.is_relative() {
        base_dir.join(path)
    } else {
        path.to_path_buf()
    }
}

fn kill_group(group: Option<i32>) {
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(group),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Reads a pipe to its end and keeps its last lines.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > 2 * STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
            }
        }
    }
    let start = tail.len().saturating_sub(STDERR_TAIL_BYTES);
    let text = String::from_utf8_lossy(&tail[start..]).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{HookServer, HookStep, HOOK_EVENT_FORMAT_VERSION};

    fn event() -> HookEventDocument {
        HookEventDocument {
            format_version: HOOK_EVENT_FORMAT_VERSION,
            hook: "post_switchover".into(),
            cluster: "shop".into(),
            step: HookStep {
                kind: "switchover".into(),
                id: "switchover db2".into(),
                title: "switchover db1 -> db2".into(),
            },
            old_primary: Some(HookServer {
                name: "db1".into(),
                host: "10.0.0.1".into(),
                port: 3306,
            }),
            new_primary: Some(HookServer {
                name: "db2".into(),
                host: "10.0.0.2".into(),
                port: 3307,
            }),
            target: None,
            donor: None,
            rerun: false,
        }
    }

    async fn run_sh(script: &str, timeout_seconds: u64) -> Result<(), String> {
        let command = HookCommand {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout_seconds,
        };
        run_command(Path::new("/"), &event(), &command).await
    }

    #[tokio::test]
    async fn gets_the_event_in_its_environment_and_on_stdin() {
        let script = r#"
            json=$(cat)
            test "$FLIPOVER_HOOK" = post_switchover || exit 11
            test "$FLIPOVER_STEP" = switchover || exit 12
            test "$FLIPOVER_NEW_PRIMARY_ADDR" = 10.0.0.2:3307 || exit 13
            test "$FLIPOVER_OLD_PRIMARY_HOST" = 10.0.0.1 || exit 14
            case "$json" in *'"new_primary"'*'"db2"'*) ;; *) exit 15 ;; esac
        "#;
        assert_eq!(run_sh(script, 10).await, Ok(()));
    }

    #[tokio::test]
    async fn a_hook_that_ignores_stdin_succeeds() {
        assert_eq!(run_sh("exit 0", 10).await, Ok(()));
    }

    #[tokio::test]
    async fn a_failure_quotes_the_end_of_stderr() {
        let error = run_sh(
            "i=0; while [ $i -lt 100 ]; do echo line $i >&2; i=$((i+1)); done; exit 4",
            10,
        )
        .await
        .unwrap_err();
        assert!(error.starts_with("exited with status 4"), "{error}");
        assert!(error.ends_with("line 99"), "{error}");
        assert!(!error.contains("line 79\n"), "{error}");
        assert!(error.contains("line 80\n"), "{error}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_hook_and_what_it_started() {
        let begun = Instant::now();
        let error = run_sh("sleep 30 & echo started >&2; sleep 30", 1)
            .await
            .unwrap_err();
        assert!(
            error.starts_with("timed out after 1 s and was killed"),
            "{error}"
        );
        assert!(error.contains("started"), "{error}");
        // The background sleep held stderr open: killing the group closed it.
        assert!(
            begun.elapsed() < Duration::from_secs(5),
            "{:?}",
            begun.elapsed()
        );
    }

    #[tokio::test]
    async fn a_program_that_cannot_start_is_a_failure() {
        let command = HookCommand {
            argv: vec!["hooks/missing".into()],
            timeout_seconds: 5,
        };
        let error = run_command(Path::new("/nonexistent"), &event(), &command)
            .await
            .unwrap_err();
        assert!(
            error.starts_with("cannot start /nonexistent/hooks/missing"),
            "{error}"
        );
    }
}
