//! What a run tells as it goes: typed events sent to a [`Reporter`] the caller implements (the
//! CLI prints text, JSON lines or a progress bar).

use camino::Utf8Path;

use super::error::{MigrateError, StepError};
use super::journal::{RunFigures, StepData};
use super::verify::Finding;
use super::StepKind;

/// One event of a run (or of a batch, for [`EventKind::Refused`] and [`EventKind::MapEdits`], [`EventKind::PasswdEdits`]).
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
    /// The user is already at the target; nothing was done.
    AlreadyDone(&'a str),
    /// The batch stopped before this user's run started (the reason).
    NotStarted(&'a str),
    /// A batch's access-map edits and the transactions (and postmaps) they took.
    MapEdits {
        /// Edits committed.
        edits: u64,
        /// Transactions.
        transactions: u64,
    },
    /// A batch's passwd-file edits (lock-outs, switches, re-enables) and the rewrites they took.
    PasswdEdits {
        /// Edits committed.
        edits: u64,
        /// Rewrites of a passwd-file.
        transactions: u64,
    },
}

impl EventKind<'_> {
    /// The event's name in mailmig's outputs (`start`, `done`, `failed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Started(_) => "start",
            Self::Done(..) => "done",
            Self::Failed(..) => "failed",
            Self::Retry(..) => "retry",
            Self::CarryOver(..) => "carry-over",
            Self::Warning(..) => "warning",
            Self::Undone(_) => "undone",
            Self::MovedAside(..) => "moved-aside",
            Self::Completing => "completing",
            Self::Migrated(..) => "migrated",
            Self::RolledBack(_) => "rolled-back",
            Self::NeedsAdmin(_) => "needs-admin",
            Self::Refused(_) => "refused",
            Self::AlreadyDone(_) => "already-done",
            Self::NotStarted(_) => "not-started",
            Self::MapEdits { .. } => "map-edits",
            Self::PasswdEdits { .. } => "passwd-edits",
        }
    }

    /// The step it is about, if any.
    pub fn step(&self) -> Option<StepKind> {
        match self {
            Self::Started(s)
            | Self::Done(s, _)
            | Self::Failed(s, _)
            | Self::Retry(s, _)
            | Self::CarryOver(s, _)
            | Self::Undone(s)
            | Self::MovedAside(s, _) => Some(*s),
            Self::Warning(s, _) => *s,
            _ => None,
        }
    }

    /// What it says, in words (`None` when the name says it all or the detail is data).
    pub fn text(&self) -> Option<String> {
        let findings = |f: &[Finding]| {
            f.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self {
            Self::Failed(_, e) => Some(crate::display_chain(*e)),
            Self::Retry(_, f) | Self::CarryOver(_, f) => Some(findings(f)),
            Self::Warning(_, m)
            | Self::Migrated(m, _)
            | Self::RolledBack(m)
            | Self::NeedsAdmin(m)
            | Self::AlreadyDone(m)
            | Self::NotStarted(m) => Some((*m).to_string()),
            Self::MovedAside(_, p) => Some(p.to_string()),
            Self::Completing => Some(
                "the release had started: completing the migration instead of rolling back".into(),
            ),
            Self::Refused(e) => Some(format!("error: {}", crate::display_chain(*e))),
            _ => None,
        }
    }
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
