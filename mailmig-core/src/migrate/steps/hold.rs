//! Hold: an exact `HOLD` (or `DEFER`) line in the access map for every address that reaches the
//! user, one postmap; then the user's queued mail on hold. Undo: remove the lines this run added
//! (and its tag from shared lines) — nothing when the edit never took effect — and release the
//! mail this run held.

use crate::hold::{apply_hold, list_holds, plan_hold_keys, remove_holds_for_keys};
use crate::migrate::engine::{failpoint, Engine, MapEdit};
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;
use crate::migrate::StepKind;

use super::queued;

/// The pre-image: the keys this run adds or shares, those held already, when.
pub(super) fn start_data(e: &Engine<'_>) -> Result<StepData, StepError> {
    let access = e.read_access()?;
    let plan = plan_hold_keys(&access, e.user(), &key_bytes(e));
    let text = |v: &[Vec<u8>]| {
        v.iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    };
    let mut keys = text(&plan.add);
    keys.extend(text(&plan.share));
    Ok(StepData::HoldPlanned {
        keys,
        already: text(&plan.already),
        since_epoch: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    })
}

pub(super) fn forward(e: &mut Engine<'_>) -> Result<StepData, StepError> {
    let keys = key_bytes(e);
    let since = crate::transaction::utc_now_rfc3339();
    let (action, reason) = (e.opts().hold_action, e.opts().reason.clone());
    let user = e.user().to_string();
    let count = keys.len();
    e.edit_access(
        Box::new(move |table| {
            let plan = plan_hold_keys(table, &user, &keys);
            if !plan.conflicts.is_empty() {
                return Err(StepError::HoldConflicts(
                    plan.conflicts
                        .iter()
                        .map(|(k, v, _)| {
                            format!(
                                "{} {}",
                                String::from_utf8_lossy(k),
                                String::from_utf8_lossy(v)
                            )
                        })
                        .collect(),
                ));
            }
            Ok(apply_hold(table, &plan, action, &since, &reason)? > 0)
        }),
        "hold",
    )?;
    failpoint("hold:postmapped");
    let queued_held = queued::hold(e, StepKind::Hold)?;
    Ok(StepData::Held {
        addresses: count,
        queued_held,
        at_ms: e.elapsed_ms(),
    })
}

pub(super) fn undo(e: &mut Engine<'_>) -> Result<(), StepError> {
    // An edit that never happened needs no undo (and no lock in a directory that may be the
    // reason the hold failed).
    let access = e.read_access()?;
    let user = e.user();
    let ours = list_holds(&access)
        .iter()
        .any(|h| h.users.iter().any(|u| u.eq_ignore_ascii_case(user)));
    if ours {
        e.edit_access(unhold_edit(e), "undo-hold")?;
    }
    // Queue IDs held by later steps are released here too: by now the user is back on the old
    // location and can log in.
    queued::release(e)?;
    Ok(())
}

/// The edit that removes the holds this run added (and its tag from shared lines).
pub(super) fn unhold_edit(e: &Engine<'_>) -> MapEdit {
    let (user, keys) = (e.user().to_string(), added_keys(e));
    Box::new(move |table| Ok(!remove_holds_for_keys(table, &user, &keys)?.is_empty()))
}

/// Every address to hold, from the plan.
fn key_bytes(e: &Engine<'_>) -> Vec<Vec<u8>> {
    e.opts()
        .hold_keys
        .iter()
        .map(|k| k.clone().into_bytes())
        .collect()
}

/// The keys this run added or shared, from its first start record.
fn added_keys(e: &Engine<'_>) -> Vec<Vec<u8>> {
    match e.first_start_data(StepKind::Hold) {
        Some(StepData::HoldPlanned { keys, .. }) => {
            keys.iter().map(|k| k.clone().into_bytes()).collect()
        }
        _ => Vec::new(),
    }
}
