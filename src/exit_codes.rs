//! Every exit code flipover returns, in one place (listed in the README too).

/// The command did what was asked. For `status`, also when servers are
/// unreachable (an unreachable server is a fact, not a failure); for `plan`
/// (without `--detailed-exitcode`), also when the plan has changes.
pub const SUCCESS: i32 = 0;
/// An error: an invalid topology file or command line, a plan with
/// problems, a failed step, an apply refused for want of confirmation.
pub const ERROR: i32 = 1;
/// `plan --detailed-exitcode` only: the plan has changes to apply (as
/// Terraform's `-detailed-exitcode`; 0 then means nothing to do).
pub const CHANGES: i32 = 2;
/// `apply PLANFILE`: the servers changed since the plan was made; re-plan.
pub const STALE_PLAN: i32 = 3;
/// `apply`: another apply holds the cluster's lock.
pub const LOCK_HELD: i32 = 4;
/// `apply PLANFILE` / `show PLANFILE`: the file is not a plan this flipover
/// can use: unreadable, truncated, edited, foreign, or another format version.
pub const INVALID_PLAN_FILE: i32 = 5;
