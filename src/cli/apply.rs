//! `flipover apply -f FILE`: plan, show the plan, confirm, execute.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::apply::{self, ApplyError};
use crate::executor::{Event, EventSink, Outcome};
use crate::exit_codes;
use crate::observe::Observed;
use crate::planner::{self, human_bytes, Plan, PlanOptions};
use crate::render;
use crate::topology::{self, Topology};
use crate::wire::{ApplyReportDocument, Fingerprint, RefusalDocument};

use super::error::{CommandError, CommandResult};
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

    /// Print the apply report as JSON on stdout when done (the plan goes to
    /// stderr): each step's outcome, error code, the state it left the
    /// servers in, and timings (`schemas/apply-report.schema.json`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> CommandResult {
    if let Some(path) = &args.plan_file {
        return apply_saved(&args, path);
    }
    let topology = topology::load(&args.topology.file)?;
    let observed = args.observe.observe(&topology)?;
    let plan = planner::plan(&topology, &observed, &args.replace.options());
    show_plan(
        &render::plan_text::render(&topology, &observed, &plan),
        args.json,
    )?;
    let desired = plan.desired(&topology);

    if plan.has_problems() {
        refusal_report(args.json, desired, &plan, "plan-has-problems", || {
            super::plan::problems_error(&plan)
        })?;
    }
    if plan.is_empty() {
        return no_changes(args.json, desired, &plan);
    }
    if !args.auto_approve && !confirmed()? {
        return Err(CommandError::failed("apply cancelled: nothing was applied"));
    }
    execute(
        desired,
        &observed,
        &plan,
        &Execution {
            connect_timeout: args.observe.options().connect_timeout,
            catch_up_timeout: Duration::from_secs(args.catch_up_timeout),
            json: args.json,
        },
    )
}

/// How `execute` runs and reports.
pub struct Execution {
    pub connect_timeout: Duration,
    pub catch_up_timeout: Duration,
    /// Print the apply report (JSON) on stdout at the end.
    pub json: bool,
}

/// The plan text for people: on stdout, or on stderr when stdout carries
/// the JSON report.
fn show_plan(text: &str, json: bool) -> Result<(), CommandError> {
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// With `--json`, a report saying nothing ran and why; then the error.
fn refusal_report(
    json: bool,
    topology: &Topology,
    plan: &Plan,
    code: &str,
    error: impl FnOnce() -> CommandError,
) -> Result<(), CommandError> {
    let error = error();
    if json {
        let refusal = RefusalDocument {
            code: code.to_string(),
            message: error.to_string(),
            problems: render::plan_json::notes(&plan.problems),
        };
        print!(
            "{}",
            ApplyReportDocument::refused(&topology.cluster().name, plan.summary().line(), refusal)
                .to_json()
        );
    }
    Err(error)
}

fn no_changes(json: bool, topology: &Topology, plan: &Plan) -> CommandResult {
    if json {
        let mut report = ApplyReportDocument::new(
            &topology.cluster().name,
            "no-changes",
            plan.summary().line(),
            Vec::new(),
            0,
        );
        report.outcome = "no-changes".to_string();
        print!("{}", report.to_json());
    }
    Ok(exit_codes::SUCCESS)
}

/// `apply PLANFILE`: the saved plan's topology and options, observed again;
/// refused as stale when a structural fact changed or the plan would now
/// differ, else run without a prompt (the plan was the review).
fn apply_saved(args: &Args, path: &Path) -> CommandResult {
    let document = super::show::read_plan(path)?;
    if !document.problems.is_empty() {
        return Err(CommandError::failed(format!(
            "{} was saved with problems; it cannot be applied",
            path.display()
        ))
        .hint("solve the problems, then make a new plan"));
    }
    // The document is sealed (every field hashed): its topology text and
    // options are the ones it was planned from.
    let topology = topology::parse(
        &document.topology.text,
        Path::new(&document.topology.file_name),
    )?;
    let options = PlanOptions {
        replace: document.options.replace.iter().cloned().collect(),
        failover: document.options.failover,
    };
    let observed = args.observe.observe(&topology)?;
    let stale = |message: String| {
        CommandError::new(exit_codes::STALE_PLAN, message)
            .hint("make a new plan (`flipover plan --out FILE`), review it, apply it")
    };
    let changed = document
        .fingerprint
        .differences(&Fingerprint::of(&topology, &observed));
    if !changed.is_empty() {
        let mut error = stale(format!(
            "{} is stale: the servers changed since it was made:",
            path.display()
        ));
        for change in changed {
            error = error.detail(change);
        }
        return Err(error);
    }
    let plan = planner::plan(&topology, &observed, &options);
    let desired = plan.desired(&topology);
    let desired_now: BTreeMap<String, Option<String>> = desired
        .servers()
        .values()
        .map(|s| (s.name.clone(), s.source.clone()))
        .collect();
    if desired_now != document.desired {
        return Err(stale(format!(
            "{} is stale: planned now, the desired tree would be {}, not {}",
            path.display(),
            describe_tree(&desired_now),
            describe_tree(&document.desired)
        )));
    }
    let now: Vec<(String, String)> = plan
        .ordered()
        .iter()
        .map(|n| (plan.graph[*n].id(), plan.graph[*n].title()))
        .collect();
    let saved: Vec<(String, String)> = document
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.title.clone()))
        .collect();
    if now != saved || plan.has_problems() {
        let titles = |steps: &[(String, String)]| {
            steps
                .iter()
                .map(|(_, title)| title.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(stale(format!(
            "{} is stale: planned now, the steps would be [{}], not [{}]",
            path.display(),
            titles(&now),
            titles(&saved)
        )));
    }
    show_plan(
        &render::plan_text::render(&topology, &observed, &plan),
        args.json,
    )?;
    if plan.is_empty() {
        return no_changes(args.json, desired, &plan);
    }
    execute(
        desired,
        &observed,
        &plan,
        &Execution {
            connect_timeout: args.observe.options().connect_timeout,
            catch_up_timeout: Duration::from_secs(args.catch_up_timeout),
            json: args.json,
        },
    )
}

/// `db1: primary, db2 <- db1, …`.
fn describe_tree(tree: &BTreeMap<String, Option<String>>) -> String {
    tree.iter()
        .map(|(name, source)| match source {
            Some(source) => format!("{name} <- {source}"),
            None => format!("{name}: primary"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a confirmed plan through the library's apply lifecycle with
/// progress on stderr, and reports the outcome (shared with `flipover-cmd`).
pub fn execute(
    topology: &Topology,
    observed: &Observed,
    plan: &Plan,
    execution: &Execution,
) -> CommandResult {
    let options = apply::executor_options(execution.connect_timeout, execution.catch_up_timeout);
    let runtime = tokio::runtime::Runtime::new()?;
    let report = match runtime.block_on(apply::apply(
        topology,
        observed,
        plan,
        &options,
        progress_sink(),
    )) {
        Ok(report) => report,
        Err(error @ ApplyError::LockHeld { .. }) => {
            return refusal_report(execution.json, topology, plan, "lock-held", || {
                CommandError::new(exit_codes::LOCK_HELD, error)
                    .hint("wait for it to finish, or find who runs it from the connection named")
            })
            .map(|()| exit_codes::LOCK_HELD);
        }
        Err(other) => return Err(CommandError::failed(other)),
    };
    if execution.json {
        print!(
            "{}",
            apply::report_document(topology, plan, &report).to_json()
        );
    }
    if report.succeeded() {
        eprintln!(
            "Apply complete: {} steps in {:.1}s.",
            report.steps.len(),
            report.elapsed.as_secs_f64()
        );
        return Ok(exit_codes::SUCCESS);
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
    let mut error = match failed.as_slice() {
        [(number, title, step_error), ..] => CommandError::failed(format!(
            "step {number} ({title}) failed [{}; servers {}]: {step_error}",
            step_error.failure.code(),
            step_error.left.code()
        )),
        [] => CommandError::failed("a post hook failed"),
    };
    for (number, title, step_error) in failed.iter().skip(1) {
        error = error.detail(format!(
            "step {number} ({title}) failed [{}; servers {}]: {step_error}",
            step_error.failure.code(),
            step_error.left.code()
        ));
    }
    if skipped > 0 {
        error = error.detail(format!(
            "{skipped} step(s) not started because of the failure."
        ));
    }
    for (number, title, hook_error) in &report.hook_failures {
        error = error.detail(format!(
            "step {number} ({title}) was done, but its {hook_error}"
        ));
    }
    if !report.hook_failures.is_empty() {
        error = error.hint(
            "the servers did change, but what the failed hook does did not happen: \
             fix the hook, then run apply again (the plan runs it again as a run-hook step)",
        );
    }
    Err(error)
}

/// Asks for "yes" on the terminal; without one, refuses instead of hanging.
pub fn confirmed() -> Result<bool, CommandError> {
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::failed(
            "refusing to apply without confirmation: standard input is not a terminal",
        )
        .hint("review the plan, then run again with --auto-approve"));
    }
    eprint!("\nDo you want to apply this plan? Only 'yes' will be accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
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
