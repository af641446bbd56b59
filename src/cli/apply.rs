//! `flipover apply -f FILE`: plan, show the plan, confirm, execute.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::executor::journal::Journal;
use crate::executor::lock::LockError;
use crate::executor::{self, Event, EventSink, ExecutorOptions, Outcome};
use crate::exit_codes;
use crate::observe::Observed;
use crate::planner::PlanOptions;
use crate::planner::{self, human_bytes, Plan};
use crate::render;
use crate::topology::{self, Topology};
use crate::wire::Fingerprint;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use miette::IntoDiagnostic;

use super::plan::ReplaceArg;
use super::{ObserveArgs, TopologyFileArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub topology: TopologyFileArg,

    #[command(flatten)]
    pub observe: ObserveArgs,

    #[command(flatten)]
    pub replace: ReplaceArg,

    /// Apply without asking. Without it, apply asks for "yes" on a terminal
    /// and refuses to run when there is none.
    #[arg(long)]
    pub auto_approve: bool,

    /// How long a new replica may take to catch up with its source.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub catch_up_timeout: u64,

    /// A plan saved with `flipover plan --out FILE`: applied without a
    /// prompt, after checking the servers have not changed since (exit 3
    /// when they have).
    #[arg(value_name = "PLANFILE", conflicts_with_all = ["names", "failover"])]
    pub plan_file: Option<PathBuf>,
}

pub fn run(args: Args) -> miette::Result<i32> {
    if let Some(path) = &args.plan_file {
        return apply_saved(&args, path);
    }
    let topology = topology::load(&args.topology.file)?;
    let observed = args.observe.observe(&topology)?;
    let topology = args.replace.desired(topology, &observed, true)?;
    let plan = planner::plan(&topology, &observed, &args.replace.options());
    print!("{}", render::plan_text::render(&topology, &observed, &plan));
    std::io::stdout().flush().into_diagnostic()?;

    if plan.has_problems() {
        eprintln!("error: the plan has problems; nothing was applied");
        return Ok(exit_codes::ERROR);
    }
    if plan.is_empty() {
        return Ok(exit_codes::SUCCESS);
    }
    if !args.auto_approve && !confirmed()? {
        return Ok(exit_codes::ERROR);
    }

    execute(
        &topology,
        &observed,
        &plan,
        args.observe.options().connect_timeout,
        Duration::from_secs(args.catch_up_timeout),
    )
}

/// `apply PLANFILE`: the saved plan's topology and options, observed again;
/// refused as stale when a structural fact changed or the plan would now
/// differ, else run without a prompt (the plan was the review).
fn apply_saved(args: &Args, path: &Path) -> miette::Result<i32> {
    let document = match super::show::read_plan(path) {
        Ok(document) => document,
        Err(report) => return Ok(super::show::report_invalid_plan(report)),
    };
    if !document.problems.is_empty() {
        eprintln!(
            "error: {} was saved with problems; it cannot be applied",
            path.display()
        );
        return Ok(exit_codes::ERROR);
    }
    let topology = topology::parse(
        &document.topology.text,
        Path::new(&document.topology.file_name),
    )?;
    // The primary the plan chose (`--failover`) is part of the plan.
    let topology = topology.with_sources(&document.desired, "the saved plan's desired tree")?;
    let observed = args.observe.observe(&topology)?;
    let changed = document
        .fingerprint
        .differences(&Fingerprint::of(&topology, &observed));
    if !changed.is_empty() {
        eprintln!(
            "error: {} is stale: the servers changed since it was made:",
            path.display()
        );
        for change in &changed {
            eprintln!("  {change}");
        }
        eprintln!("hint: make a new plan (`flipover plan --out FILE`), review it, apply it");
        return Ok(exit_codes::STALE_PLAN);
    }
    let options = PlanOptions {
        replace: document.options.replace.iter().cloned().collect(),
    };
    let plan = planner::plan(&topology, &observed, &options);
    let now: Vec<String> = plan.ordered().iter().map(|n| plan.graph[*n].id()).collect();
    let saved: Vec<String> = document.steps.iter().map(|s| s.id.clone()).collect();
    if now != saved || plan.has_problems() {
        eprintln!(
            "error: {} is stale: planned now, the steps would be [{}], not [{}]",
            path.display(),
            now.join(", "),
            saved.join(", ")
        );
        return Ok(exit_codes::STALE_PLAN);
    }
    print!("{}", render::plan_text::render(&topology, &observed, &plan));
    std::io::stdout().flush().into_diagnostic()?;
    if plan.is_empty() {
        return Ok(exit_codes::SUCCESS);
    }
    execute(
        &topology,
        &observed,
        &plan,
        args.observe.options().connect_timeout,
        Duration::from_secs(args.catch_up_timeout),
    )
}

/// Runs a confirmed plan with progress on stderr and reports the outcome as
/// an exit code (shared with `flipover-cmd`).
pub fn execute(
    topology: &Topology,
    observed: &Observed,
    plan: &Plan,
    connect_timeout: Duration,
    catch_up_timeout: Duration,
) -> miette::Result<i32> {
    let options = ExecutorOptions {
        connect_timeout: connect_timeout.max(Duration::from_secs(5)),
        probe_timeout: connect_timeout,
        catch_up_timeout,
        ..ExecutorOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
    let lock = match runtime.block_on(executor::lock::acquire(
        topology,
        observed,
        options.connect_timeout,
    )) {
        Ok(lock) => lock,
        Err(LockError::Held {
            cluster,
            server,
            holder,
        }) => {
            eprintln!("error: another apply is running on cluster {cluster}: its lock on {server} is held by {holder}; nothing was applied");
            return Ok(exit_codes::LOCK_HELD);
        }
        Err(other) => return Err(other).into_diagnostic(),
    };
    let journal =
        std::sync::Arc::new(runtime.block_on(Journal::begin(lock, &plan.summary().line())));
    let report = runtime.block_on(executor::apply(
        topology,
        plan,
        &options,
        progress_sink(),
        Some(journal.clone()),
    ));
    let outcome = if report.succeeded() {
        "complete"
    } else {
        "failed"
    };
    if let Ok(journal) = std::sync::Arc::try_unwrap(journal) {
        runtime.block_on(async { journal.finish(outcome).await.release().await });
    }

    let failed: Vec<_> = report
        .steps
        .iter()
        .filter_map(|(n, title, o)| match o {
            Outcome::Failed { error } => Some((n, title, error)),
            _ => None,
        })
        .collect();
    let skipped = report
        .steps
        .iter()
        .filter(|(_, _, o)| *o == Outcome::Skipped)
        .count();
    if failed.is_empty() && skipped == 0 && report.hook_failures.is_empty() {
        eprintln!(
            "Apply complete: {} steps in {:.1}s.",
            report.steps.len(),
            report.elapsed.as_secs_f64()
        );
        Ok(exit_codes::SUCCESS)
    } else {
        for (number, title, error) in &failed {
            eprintln!("error: step {number} ({title}) failed: {error}");
        }
        if skipped > 0 {
            eprintln!("{skipped} step(s) not started because of the failure.");
        }
        for (number, title, error) in &report.hook_failures {
            eprintln!("error: step {number} ({title}) was done, but its {error}");
        }
        if !report.hook_failures.is_empty() {
            eprintln!(
                "hint: the servers did change, but what the failed hook does did not happen: \
                 fix the hook, then run apply again (the plan runs it again as a run-hook step)"
            );
        }
        Ok(exit_codes::ERROR)
    }
}

/// Asks for "yes" on the terminal; without one, refuses instead of hanging.
pub fn confirmed() -> miette::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(miette::miette!(
            help = "review the plan, then run again with --auto-approve",
            "refusing to apply without confirmation: standard input is not a terminal"
        ));
    }
    eprint!("\nDo you want to apply this plan? Only 'yes' will be accepted: ");
    std::io::stderr().flush().into_diagnostic()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .into_diagnostic()?;
    if answer.trim() == "yes" {
        Ok(true)
    } else {
        eprintln!("Apply cancelled.");
        Ok(false)
    }
}

/// Progress on stderr: bars on a terminal, a line every few seconds elsewhere.
pub fn progress_sink() -> EventSink {
    let interactive = std::io::stderr().is_terminal();
    let bars: Mutex<BTreeMap<usize, (ProgressBar, Instant)>> = Mutex::new(BTreeMap::new());
    EventSink::new(move |event| {
        let mut bars = bars.lock().expect("progress lock");
        match event {
            Event::StepStarted {
                number,
                total,
                title,
            } => {
                eprintln!("[{number}/{total}] {title}: started");
                let bar = if interactive {
                    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                } else {
                    ProgressBar::hidden()
                };
                bar.set_style(
                    ProgressStyle::with_template(
                        "    {msg} {bytes}/{total_bytes} ({binary_bytes_per_sec}, eta {eta})",
                    )
                    .expect("valid progress template"),
                );
                bars.insert(number, (bar, Instant::now()));
            }
            Event::Progress {
                number,
                phase,
                bytes,
                total_bytes,
            } => {
                if let Some((bar, last_line)) = bars.get_mut(&number) {
                    if let Some(total) = total_bytes {
                        bar.set_length(total.max(bytes));
                    }
                    bar.set_position(bytes);
                    bar.set_message(phase.clone());
                    if !interactive && last_line.elapsed() >= Duration::from_secs(5) {
                        let total = total_bytes
                            .map(|t| format!(" of about {}", human_bytes(t)))
                            .unwrap_or_default();
                        eprintln!("    step {number}: {phase}, {}{total}", human_bytes(bytes));
                        *last_line = Instant::now();
                    }
                }
            }
            Event::Note {
                number,
                title,
                text,
            } => {
                eprintln!("[{number}] {title}: {text}");
            }
            Event::Checkpoint { number, name } => {
                tracing::debug!("step {number}: checkpoint {name}");
            }
            Event::StepSucceeded {
                number,
                title,
                elapsed,
            } => {
                if let Some((bar, _)) = bars.remove(&number) {
                    bar.finish_and_clear();
                }
                eprintln!("[{number}] {title}: done in {:.2}s", elapsed.as_secs_f64());
            }
            Event::StepFailed {
                number,
                title,
                error,
            } => {
                if let Some((bar, _)) = bars.remove(&number) {
                    bar.abandon();
                }
                eprintln!("[{number}] {title}: FAILED: {error}");
            }
            Event::HookFailed {
                number,
                title,
                error,
            } => {
                eprintln!("[{number}] {title}: done, but HOOK FAILED: {error}");
            }
        }
    })
}
