//! Every exit code flipover returns, in one place (listed in the README too).

/// The command did what was asked (for `status`, also when servers are unreachable:
/// an unreachable server is a fact, not a failure).
pub const SUCCESS: i32 = 0;
/// An error: an invalid topology file or command line, a plan with
/// problems, a failed step, an apply refused for want of confirmation.
pub const ERROR: i32 = 1;
