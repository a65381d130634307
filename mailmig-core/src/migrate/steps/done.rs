//! Done: the run's figures; the old location is kept (see `mailmig cleanup` in the docs).

use crate::migrate::engine::Engine;
use crate::migrate::journal::{RunFigures, StepData};
use crate::migrate::StepKind;

/// How long the run took and how long mail was held, from its records.
pub(crate) fn figures(e: &Engine<'_>) -> RunFigures {
    let at = |step| match e.done_data(step) {
        Some(StepData::Held { at_ms, .. } | StepData::Released { at_ms, .. }) => Some(*at_ms),
        _ => None,
    };
    let copy = |step| match e.done_data(step) {
        Some(StepData::Copied { ms }) => Some(*ms),
        _ => None,
    };
    RunFigures {
        total_ms: e.elapsed_ms(),
        doveadm_ms: u64::try_from(e.runner.doveadm_time().as_millis()).unwrap_or(u64::MAX),
        held_ms: match (at(StepKind::Hold), at(StepKind::Release)) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        presync_ms: copy(StepKind::Presync),
        final_sync_ms: copy(StepKind::FinalSync),
    }
}
