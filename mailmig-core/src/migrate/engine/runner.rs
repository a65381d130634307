//! The runner a run uses: measures the time spent in doveadm and bounds every command.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::process::{self, Argv, Output, RunError, Runner};

/// A runner that measures the time spent in doveadm (for the "mailmig's own time" figure) and
/// bounds every command: by [`process::DEFAULT_TIMEOUT`], and while the user's mail is held by
/// the time left until the run's `--max-hold` deadline (a hung doveadm is killed, and the run
/// rolls back instead of keeping the mail held).
pub struct TimedRunner<'r> {
    inner: &'r (dyn Runner + Sync),
    doveadm_us: AtomicU64,
    deadline: Mutex<Option<Instant>>,
}

impl<'r> TimedRunner<'r> {
    /// Wrap a runner.
    pub fn new(inner: &'r (dyn Runner + Sync)) -> Self {
        Self {
            inner,
            doveadm_us: AtomicU64::new(0),
            deadline: Mutex::new(None),
        }
    }

    /// Time spent in doveadm so far.
    pub fn doveadm_time(&self) -> Duration {
        Duration::from_micros(self.doveadm_us.load(Ordering::Relaxed))
    }

    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = deadline;
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.lock().ok().and_then(|d| *d)
    }

    /// Run with a limit of our own (a long copy before the hold).
    pub(crate) fn run_long(&self, argv: &Argv, limit: Duration) -> Result<Output, RunError> {
        self.timed(argv, || self.inner.run_within(argv, None, limit))
    }

    fn timed(
        &self,
        argv: &Argv,
        f: impl FnOnce() -> Result<Output, RunError>,
    ) -> Result<Output, RunError> {
        let start = Instant::now();
        let out = f();
        if argv.0.first().is_some_and(|p| p == "doveadm") {
            let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.doveadm_us.fetch_add(us, Ordering::Relaxed);
        }
        out
    }
}

impl Runner for TimedRunner<'_> {
    fn run(&self, argv: &Argv, stdin: Option<&[u8]>) -> Result<Output, RunError> {
        let limit = match self.deadline() {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(process::DEFAULT_TIMEOUT),
            None => process::DEFAULT_TIMEOUT,
        };
        self.timed(argv, || self.inner.run_within(argv, stdin, limit))
    }
}
