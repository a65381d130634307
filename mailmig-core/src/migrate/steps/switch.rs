//! Switch: `userdb_mail=TARGET` in the user's record, confirmed with `doveadm user` (the auth
//! cache flushed when it is on); the live strategy kicks the sessions. Undo: the previous
//! `userdb_mail` back, confirmed, and mail the new location got meanwhile carried back to the
//! old one (`doveadm sync -1 -R`, deleting nothing).

use std::time::{Duration, Instant};

use crate::dovecot::{PasswdFile, PasswdOptions};
use crate::login::FieldBefore;
use crate::migrate::engine::{failpoint, Engine};
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;
use crate::migrate::verify::{self, Expect};
use crate::migrate::StepKind;
use crate::safe_fs;
use crate::transaction::{CommitOptions, FileTransaction};

const FIELD: &[u8] = b"userdb_mail";

pub(super) fn start_data(e: &Engine<'_>) -> Result<StepData, StepError> {
    Ok(StepData::PreviousLocation {
        previous: field_now(e)?,
    })
}

pub(super) fn forward(e: &mut Engine<'_>) -> Result<(), StepError> {
    let to = e.to();
    set_field(e, &FieldBefore::Value(to.clone()), "switch")?;
    wait_location(e, &to)?;
    if e.live() {
        e.dovecot().kick(e.user())?;
    }
    Ok(())
}

pub(super) fn undo(e: &mut Engine<'_>) -> Result<(), StepError> {
    let (from, to) = (e.from(), e.to());
    let previous = match e.first_start_data(StepKind::Switch) {
        Some(StepData::PreviousLocation { previous }) => previous.clone(),
        _ => FieldBefore::Absent,
    };
    if field_now(e)? == FieldBefore::Value(to.clone()) {
        set_field(e, &previous, "undo-switch")?;
    }
    wait_location(e, &from)?;
    // Mail the new location got after the switch goes back with the user.
    let source = e.mail_state(&from)?;
    let target = e.mail_state(&to)?;
    if !verify::compare(&target, &source, Expect::Contains).is_empty() {
        e.doveadm_checked(&e.dsync(&["sync", "-1", "-R"], &to), 5, None)?;
        let source = e.mail_state(&from)?;
        let findings = verify::compare(&target, &source, Expect::Contains);
        if !findings.is_empty() {
            return Err(StepError::NotCarriedBack { to, from, findings });
        }
    }
    Ok(())
}

/// Write the location field (or remove it, for [`FieldBefore::Absent`]).
fn set_field(e: &Engine<'_>, value: &FieldBefore, point: &str) -> Result<(), StepError> {
    let tx = FileTransaction::prepare(&e.opts().passwd_file)?;
    let mut file = PasswdFile::parse(tx.original().to_vec(), &PasswdOptions::default());
    let user = e.user().as_bytes();
    match value {
        FieldBefore::Value(v) => file.set_extra(user, FIELD, Some(v.as_bytes()), e.ids)?,
        FieldBefore::Bare => file.set_extra(user, FIELD, None, e.ids)?,
        FieldBefore::Absent => {
            file.remove_extra(user, FIELD, e.ids)?;
        }
    }
    let new = file.render();
    if new != tx.original() {
        tx.commit(&new, &CommitOptions::default())?;
    }
    failpoint(&format!("{point}:passwd-written"));
    if e.opts().auth_cache {
        e.dovecot().flush_auth_cache(e.user())?;
    }
    Ok(())
}

/// The location field in the user's record now.
fn field_now(e: &Engine<'_>) -> Result<FieldBefore, StepError> {
    let bytes = safe_fs::read_regular(&e.opts().passwd_file)?;
    let file = PasswdFile::parse(bytes, &PasswdOptions::default());
    let entry = file
        .lookup(e.user().as_bytes(), e.ids)
        .ok_or_else(|| StepError::NoRecord {
            user: e.user().to_string(),
            passwd_file: e.opts().passwd_file.clone(),
        })?;
    Ok(
        match entry.extra().iter().find(|f| f.key.as_ref() == FIELD) {
            None => FieldBefore::Absent,
            Some(f) => match &f.value {
                None => FieldBefore::Bare,
                Some(v) => FieldBefore::Value(String::from_utf8_lossy(v).into_owned()),
            },
        },
    )
}

/// Wait until Dovecot shows the user at `want`.
fn wait_location(e: &Engine<'_>, want: &str) -> Result<(), StepError> {
    let limit = Duration::from_secs(10);
    let deadline = Instant::now() + limit;
    let argv = crate::migrate::argv::user_field(&e.opts().dovecot_config, e.user(), "mail");
    loop {
        let out = crate::process::Runner::run(e.runner, &argv, None)?;
        if out.code == Some(0) && String::from_utf8_lossy(&out.stdout).trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(StepError::NotShown {
                want: want.to_string(),
                user: e.user().to_string(),
                seconds: limit.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
