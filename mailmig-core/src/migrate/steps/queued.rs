//! The user's queued mail: put on hold by the hold, final-sync and catch-up steps (IDs journaled
//! before postsuper runs), released by the release and by the hold's undo.

use crate::hold::list_holds;
use crate::migrate::engine::{failpoint, Engine};
use crate::migrate::error::StepError;
use crate::migrate::journal::{Event, StepData};
use crate::migrate::StepKind;
use crate::queue;

const HANDOVER: &str = "queue/handover";

/// Put queued mail for the user that is not on hold yet on hold; the IDs are journaled before
/// postsuper runs. Returns how many were held.
pub(super) fn hold(e: &mut Engine<'_>, step: StepKind) -> Result<usize, StepError> {
    let dir = e.postfix_dir()?;
    let pending = queue::pending_for_user(e.runner, &dir, e.user(), &e.opts().delimiters)?;
    if pending.is_empty() {
        return Ok(0);
    }
    e.record(
        Some(step),
        Event::Start,
        Some(StepData::QueueIds {
            queue_ids: pending.clone(),
        }),
        None,
    )?;
    failpoint(&format!("{step}:queue-ids-recorded"));
    Ok(queue::hold_ids(e.runner, &dir, &pending)?.len())
}

/// Every queue ID the run journaled.
fn recorded_ids(e: &Engine<'_>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for r in e.records.iter().filter(|r| r.event == Event::Start) {
        if let Some(StepData::QueueIds { queue_ids }) = &r.data {
            for id in queue_ids {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
    }
    ids
}

/// What the release of the queue did.
pub(super) struct Released {
    /// Messages released.
    pub(super) released: usize,
    /// Messages handed over to other runs.
    pub(super) kept: usize,
}

/// Release the messages this run held (and messages other runs handed over), except those with
/// a recipient still under another mailmig hold: those are handed over to that run.
///
/// Runs under the map lock: which users are still held and which messages are handed over must
/// not change between reading them and acting on them.
pub(super) fn release(e: &Engine<'_>) -> Result<Released, StepError> {
    let dir = e.postfix_dir()?;
    let _lock = crate::migrate::engine::MapLock::take(e.state)?;
    let mut ids = recorded_ids(e);
    // What smtpd held because of this run's HOLD lines: held mail for the user that arrived
    // after they were written.
    if let Some(StepData::HoldPlanned { since_epoch, .. }) = e.first_start_data(StepKind::Hold) {
        let since = i64::try_from(*since_epoch).unwrap_or(i64::MAX);
        for id in queue::held_for_user_since(e.runner, &dir, e.user(), &e.opts().delimiters, since)?
        {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    for name in e.state.names(HANDOVER)? {
        if queue::is_queue_id(&name) && !ids.contains(&name) {
            ids.push(name);
        }
    }
    let access = e.read_access()?;
    let others: Vec<String> = list_holds(&access)
        .into_iter()
        .flat_map(|h| h.users)
        .filter(|u| !u.eq_ignore_ascii_case(e.user()))
        .collect();
    let (released, kept) = queue::release(e.runner, &dir, &ids, &others, &e.opts().delimiters)?;
    for id in &kept {
        e.state.write(HANDOVER, id, e.user().as_bytes())?;
    }
    for id in ids.iter().filter(|i| !kept.contains(i)) {
        let _ = e.state.remove(HANDOVER, id);
    }
    Ok(Released {
        released: released.len(),
        kept: kept.len(),
    })
}
