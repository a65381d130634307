//! Lock-out: refuse the user's logins in the passwd-file (`allow_nets=` or `nologin`) or with a
//! line in the deny overlay, confirmed
//! with `doveadm auth lookup`, sessions kicked and checked with `doveadm who`. Undo (and the
//! release): restore the recorded fields exactly.

use crate::dovecot::PasswdOptions;
use crate::login::{self, DisableRequest, Enabled};
use crate::migrate::engine::Engine;
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;
use crate::migrate::report::EventKind;
use crate::migrate::StepKind;

pub(super) fn start_data(e: &Engine<'_>) -> Result<StepData, StepError> {
    let key = login::state_key(e.user(), &PasswdOptions::default())?;
    Ok(StepData::LockOutRecord {
        state_file: login::state_file(e.state, &key),
    })
}

pub(super) fn forward(e: &mut Engine<'_>) -> Result<(), StepError> {
    let opts = e.opts().clone();
    login::disable(
        &e.dovecot(),
        e.state,
        &DisableRequest {
            passwd_file: opts.lock_file(),
            options: &PasswdOptions::default(),
            ids: e.ids,
            user: e.user(),
            method: opts.lock,
            reason: &opts.reason,
        },
    )?;
    Ok(())
}

pub(super) fn undo(e: &mut Engine<'_>) -> Result<(), StepError> {
    enable(e)
}

/// Restore the lock-out fields, if a lock-out record says they are in place.
pub(super) fn enable(e: &Engine<'_>) -> Result<(), StepError> {
    let enabled = match login::enable(
        &e.dovecot(),
        e.state,
        &PasswdOptions::default(),
        e.ids,
        e.user(),
        Some(e.opts().lock_file()),
    ) {
        Ok(enabled) => enabled,
        // No record: nothing of the lock-out is in place.
        Err(login::LoginError::NotDisabled { .. }) => return Ok(()),
        Err(other) => return Err(other.into()),
    };
    if let Enabled::NeverLockedOut { state_file } = enabled {
        let text = format!("the lock-out record {state_file} was unreadable; the user's record carries no lock-out, so the lock-out never happened (record removed)");
        e.report(EventKind::Warning(Some(StepKind::LockOut), &text));
    }
    Ok(())
}
