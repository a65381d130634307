//! What a run tells as it goes: typed events sent to a [`Reporter`] the caller implements (the
//! CLI prints text, JSON lines or a progress bar).

use camino::Utf8Path;

use super::error::{MigrateError, StepError};
use super::journal::{RunFigures, StepData};
use super::verify::Finding;
use super::StepKind;

/// One event of a run (or of a batch, for [`EventKind::Refused`] and [`EventKind::MapEdits`]).
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The user (`*` for batch-wide events).
    pub user: &'a str,
    /// The run id (empty before a run exists).
    pub run: &'a str,
    /// What happened.
    pub kind: EventKind<'a>,
}

/// What happened.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum EventKind<'a> {
    /// A step is about to act.
    Started(StepKind),
    /// A step completed, with its results.
    Done(StepKind, Option<&'a StepData>),
    /// A step failed.
    Failed(StepKind, &'a StepError),
    /// The step's check found differences and tries again.
    Retry(StepKind, &'a [Finding]),
    /// Mail the old location got after the final sync is carried over.
    CarryOver(StepKind, &'a [Finding]),
    /// Something the admin should know (a finding of the plan, a postmap warning).
    Warning(Option<StepKind>, &'a str),
    /// A step was undone.
    Undone(StepKind),
    /// The rolled-back copy was moved aside to this path.
    MovedAside(StepKind, &'a Utf8Path),
    /// The release had started: the run completes instead of rolling back.
    Completing,
    /// The user is migrated.
    Migrated(&'a str, Option<&'a RunFigures>),
    /// Every step was undone.
    RolledBack(&'a str),
    /// An undo failed: the message says what is in place and what to do.
    NeedsAdmin(&'a str),
    /// The user was refused before anything changed.
    Refused(&'a MigrateError),
    /// A batch's access-map edits and the transactions (and postmaps) they took.
    MapEdits {
        /// Edits committed.
        edits: u64,
        /// Transactions.
        transactions: u64,
    },
}

/// Receives a run's events. Implemented by the caller; called from the threads of a batch.
pub trait Reporter: Sync {
    /// One event.
    fn event(&self, event: &Event<'_>);
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: &Event<'_>) {}
}
