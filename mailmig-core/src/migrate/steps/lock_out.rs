//! Lock-out: refuse the user's logins in the passwd-file (`allow_nets=` or `nologin`) or with a
//! line in the deny overlay, confirmed
//! with `doveadm auth lookup`, sessions kicked and checked with `doveadm who`. Undo (and the
//! release): restore the recorded fields exactly.

use crate::dovecot::PasswdOptions;
use crate::login::{self, DisableRequest, Enabled, ToEnable};
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
    let dovecot = e.dovecot();
    let edit = login::prepare_disable(
        &dovecot,
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
    let key = edit.key().to_string();
    // Group-committed with the other runs' passwd-file edits in a batch.
    e.edit_passwd(
        opts.lock_file(),
        Box::new(move |doc, env| {
            edit.apply(doc, env.path.to_owned(), env.state, env.ids)?;
            Ok(())
        }),
    )?;
    login::confirm_disabled(&dovecot, &key, opts.lock)?;
    Ok(())
}

pub(super) fn undo(e: &mut Engine<'_>) -> Result<(), StepError> {
    enable(e)
}

/// Restore the lock-out fields, if a lock-out record says they are in place.
pub(super) fn enable(e: &Engine<'_>) -> Result<(), StepError> {
    let (key, record) = match login::to_enable(
        e.state,
        &PasswdOptions::default(),
        e.ids,
        e.user(),
        Some(e.opts().lock_file()),
    ) {
        Ok(ToEnable::Locked { key, record }) => (key, record),
        Ok(ToEnable::Finished(Enabled::NeverLockedOut { state_file })) => {
            let text = format!("the lock-out record {state_file} was unreadable; the user's record carries no lock-out, so the lock-out never happened (record removed)");
            e.report(EventKind::Warning(Some(StepKind::LockOut), &text));
            return Ok(());
        }
        Ok(ToEnable::Finished(_)) => return Ok(()),
        // No record: nothing of the lock-out is in place.
        Err(login::LoginError::NotDisabled { .. }) => return Ok(()),
        Err(other) => return Err(other.into()),
    };
    let restoring = record.clone();
    // Group-committed with the other runs' passwd-file edits in a batch.
    e.edit_passwd(
        &record.passwd_file,
        Box::new(move |doc, env| {
            login::restore(doc, &restoring, env.ids)?;
            Ok(())
        }),
    )?;
    login::confirm_enabled(&e.dovecot(), e.state, &key, &record)?;
    Ok(())
}
