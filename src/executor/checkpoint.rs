//! Named checkpoints between the phases of the steps that change the most
//! (`switchover.fenced`, `failover.promoted`, `clone.streamed`, …), and the
//! documented fault-injection points on them:
//!
//! - `FLIPOVER_KILL_AT=<checkpoint>[:<n>]`: flipover SIGKILLs itself the
//!   n-th time (default: the first) it reaches that checkpoint, as a crash or
//!   an operator's `kill -9` would, so tests can prove that the next apply
//!   converges from every point.
//! - `FLIPOVER_PAUSE_AT=<checkpoint>` with `FLIPOVER_PAUSE_DIR=<dir>`: at
//!   that checkpoint flipover creates `<dir>/<checkpoint>.paused` and waits
//!   until `<dir>/<checkpoint>.resume` exists, so a test can inject a fault
//!   (a link going down, a restart) at a known point.
//!
//! Both are read once; when neither is set a checkpoint only emits its event.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{Context, Event};

/// Every checkpoint, in the order each operation reaches them.
pub const SWITCHOVER: &[&str] = &[
    "switchover.replicas_moved",
    "switchover.fenced",
    "switchover.caught_up",
    "switchover.promoted",
    "switchover.rejoined",
];
pub const FAILOVER: &[&str] = &[
    "failover.io_stopped",
    "failover.drained",
    "failover.caught_up",
    "failover.promoted",
    "failover.repointed",
];
pub const CLONE: &[&str] = &[
    "clone.streamed",
    "clone.prepared",
    "clone.started",
    "clone.replication_started",
    "clone.confirmed",
];
pub const RECHAIN: &[&str] = &["rechain.stopped", "rechain.repointed"];

/// How often a paused apply looks for its resume file.
const PAUSE_POLL: Duration = Duration::from_millis(20);

struct Faults {
    kill_at: Option<(String, u32)>,
    pause_at: Option<(String, PathBuf)>,
    /// Times each checkpoint was reached in this process.
    reached: Mutex<BTreeMap<String, u32>>,
}

fn faults() -> &'static Faults {
    static FAULTS: OnceLock<Faults> = OnceLock::new();
    FAULTS.get_or_init(|| {
        let kill_at = std::env::var("FLIPOVER_KILL_AT")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|value| parse_kill_at(&value));
        let pause_at = std::env::var("FLIPOVER_PAUSE_AT")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|name| {
                let dir = std::env::var_os("FLIPOVER_PAUSE_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir);
                (name, dir)
            });
        Faults {
            kill_at,
            pause_at,
            reached: Mutex::new(BTreeMap::new()),
        }
    })
}

/// `<checkpoint>[:<n>]`: the checkpoint and which time reaching it kills.
fn parse_kill_at(value: &str) -> (String, u32) {
    match value.rsplit_once(':') {
        Some((name, n)) => match n.parse::<u32>() {
            Ok(n) => (name.to_string(), n.max(1)),
            Err(_) => (value.to_string(), 1),
        },
        None => (value.to_string(), 1),
    }
}

/// Step `number` reached checkpoint `name`.
pub(crate) async fn reach(context: &Context, number: usize, name: &str) {
    context.events.emit(Event::Checkpoint {
        number,
        name: name.to_string(),
    });
    let faults = faults();
    if faults.kill_at.is_none() && faults.pause_at.is_none() {
        return;
    }
    let times = {
        let mut reached = faults.reached.lock().expect("checkpoint counts");
        let count = reached.entry(name.to_string()).or_insert(0);
        *count += 1;
        *count
    };
    if let Some((kill_name, n)) = &faults.kill_at {
        if kill_name == name && *n == times {
            tracing::warn!("FLIPOVER_KILL_AT={name}:{n}: killing flipover");
            let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGKILL);
        }
    }
    if let Some((pause_name, dir)) = &faults.pause_at {
        if pause_name == name && times == 1 {
            let paused = dir.join(format!("{name}.paused"));
            let resume = dir.join(format!("{name}.resume"));
            tracing::warn!(
                "FLIPOVER_PAUSE_AT={name}: paused until {} exists",
                resume.display()
            );
            if let Err(e) = std::fs::write(&paused, b"") {
                tracing::warn!("cannot create {}: {e}", paused.display());
            }
            while !resume.exists() {
                tokio::time::sleep(PAUSE_POLL).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_at_names_a_checkpoint_and_optionally_which_time() {
        assert_eq!(
            parse_kill_at("switchover.fenced"),
            ("switchover.fenced".into(), 1)
        );
        assert_eq!(
            parse_kill_at("failover.repointed:2"),
            ("failover.repointed".into(), 2)
        );
        assert_eq!(
            parse_kill_at("clone.started:0"),
            ("clone.started".into(), 1)
        );
        assert_eq!(parse_kill_at("odd:name"), ("odd:name".into(), 1));
    }

    #[test]
    fn every_checkpoint_is_named_once() {
        let all: Vec<&str> = [SWITCHOVER, FAILOVER, CLONE, RECHAIN].concat();
        let unique: std::collections::BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len());
    }
}
