//! Every exit code flipover returns, in one place (listed in the README too).

/// The command did what was asked (for `status`, also when servers are unreachable:
/// an unreachable server is a fact, not a failure).
pub const SUCCESS: i32 = 0;
/// An error: invalid input, a failed operation, an internal error.
pub const ERROR: i32 = 1;
