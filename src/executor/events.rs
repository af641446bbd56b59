//! What the executor tells its caller while it works. The CLI renders these
//! (progress bars on a terminal, plain lines elsewhere); the executor itself
//! never prints.

use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Event {
    StepStarted {
        number: usize,
        total: usize,
        title: String,
    },
    /// A long step's progress (bytes streamed by a clone).
    Progress {
        number: usize,
        phase: String,
        bytes: u64,
        total_bytes: Option<u64>,
    },
    /// Something measured or worth knowing, e.g. a switchover's write-block.
    Note {
        number: usize,
        title: String,
        text: String,
    },
    StepSucceeded {
        number: usize,
        title: String,
        elapsed: Duration,
    },
    StepFailed {
        number: usize,
        title: String,
        error: String,
    },
    /// A post hook failed after its step succeeded (the apply will fail).
    HookFailed {
        number: usize,
        title: String,
        error: String,
    },
}

/// Where events go: any thread-safe callback.
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(Event) + Send + Sync>);

impl EventSink {
    pub fn new(callback: impl Fn(Event) + Send + Sync + 'static) -> EventSink {
        EventSink(Arc::new(callback))
    }

    /// Drops every event (for callers that only want the report).
    pub fn ignore() -> EventSink {
        EventSink::new(|_| {})
    }

    pub fn emit(&self, event: Event) {
        (self.0)(event)
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}
