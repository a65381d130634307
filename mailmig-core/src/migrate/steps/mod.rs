//! The steps of a migration, one module each, with its forward action and its undo side by
//! side. Every forward action is safe to repeat (resume re-runs an interrupted step); every undo
//! is safe to repeat and succeeds when what it undoes never happened.

mod catch_up;
pub(crate) mod done;
mod final_sync;
mod hold;
mod lock_out;
mod preflight;
mod presync;
mod queued;
mod release;
mod switch;
#[cfg(test)]
mod tests;
mod verify;

use super::engine::Engine;
use super::error::StepError;
use super::journal::StepData;
use super::StepKind;

/// What a step journals in its `start` record before it acts (its undo's pre-image).
pub(crate) fn start_data(e: &Engine<'_>, step: StepKind) -> Result<Option<StepData>, StepError> {
    match step {
        StepKind::Hold => hold::start_data(e).map(Some),
        StepKind::Switch => switch::start_data(e).map(Some),
        StepKind::LockOut => lock_out::start_data(e).map(Some),
        _ => Ok(None),
    }
}

/// Run a step; its results for the `done` record.
pub(crate) fn forward(e: &mut Engine<'_>, step: StepKind) -> Result<Option<StepData>, StepError> {
    match step {
        StepKind::Preflight => preflight::forward(e).map(Some),
        StepKind::Presync => presync::forward(e).map(Some),
        StepKind::Hold => hold::forward(e).map(Some),
        StepKind::LockOut => lock_out::forward(e).map(|()| None),
        StepKind::FinalSync => final_sync::forward(e).map(Some),
        StepKind::Verify => verify::forward(e).map(Some),
        StepKind::Switch => switch::forward(e).map(|()| None),
        StepKind::CatchUp => catch_up::forward(e).map(Some),
        StepKind::Release => release::forward(e).map(Some),
        StepKind::Done => Ok(Some(StepData::Finished(done::figures(e)))),
    }
}

/// Undo a step that started.
pub(crate) fn undo(e: &mut Engine<'_>, step: StepKind) -> Result<(), StepError> {
    match step {
        StepKind::Presync => presync::undo(e),
        StepKind::Hold => hold::undo(e),
        StepKind::LockOut => lock_out::undo(e),
        StepKind::Switch => switch::undo(e),
        // The others change nothing that needs undoing: final sync and verify write only into
        // the target (moved aside by the presync's undo), catch-up only adds mail to it, and a
        // run past the release's start completes instead of rolling back.
        _ => Ok(()),
    }
}
