//! Switch: the location fields of the user's record set to the target (`userdb_mail=`, or on
//! Dovecot 2.4 `userdb_mail_driver=` and `userdb_mail_path=` in one edit) — in the passwd-file,
//! or through the overlay in the user's record of the location file — confirmed with
//! `doveadm user` (the auth cache flushed when it is on); the live strategy kicks the sessions.
//! Undo: the previous fields back, confirmed, and mail the new location got meanwhile carried
//! back to the old one (`doveadm sync -1 -R`, deleting nothing).

use std::time::{Duration, Instant};

use crate::dovecot::{IdResolver, PasswdFile, PasswdOptions};
use crate::login::{FieldBefore, PreviousField};
use crate::migrate::dialect;
use crate::migrate::engine::{failpoint, Engine};
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;
use crate::migrate::verify::{self, Expect};
use crate::migrate::{Location, StepKind};
use crate::safe_fs;

pub(super) fn start_data(e: &Engine<'_>) -> Result<StepData, StepError> {
    Ok(StepData::PreviousLocation {
        fields: fields_now(e)?,
        previous: None,
    })
}

pub(super) fn forward(e: &mut Engine<'_>) -> Result<(), StepError> {
    let to = e.to();
    let target: Vec<PreviousField> = dialect::location_fields(e.opts().dovecot_version, &to)
        .into_iter()
        .map(|f| PreviousField {
            key: f.key.to_string(),
            before: FieldBefore::Value(f.value),
        })
        .collect();
    set_fields(e, &target, "switch")?;
    wait_location(e, &to, false)?;
    if e.live() {
        e.dovecot().kick(e.user())?;
    }
    Ok(())
}

pub(super) fn undo(e: &mut Engine<'_>) -> Result<(), StepError> {
    let (from, to) = (e.from(), e.to());
    let previous = previous_fields(e);
    let target = dialect::location_fields(e.opts().dovecot_version, &to);
    let now = fields_now(e)?;
    let switched = target.iter().any(|t| {
        now.iter()
            .any(|n| n.key == t.key && n.before == FieldBefore::Value(t.value.clone()))
    });
    if switched {
        set_fields(e, &previous, "undo-switch")?;
    }
    let unset_key = dialect::location_keys(e.opts().dovecot_version)[0];
    let driver_unset = previous
        .iter()
        .any(|p| p.key == unset_key && p.before == FieldBefore::Absent);
    wait_location(e, &from, driver_unset)?;
    // Mail the new location got after the switch goes back with the user.
    let source = e.mail_state(&from)?;
    let target = e.mail_state(&to)?;
    if !verify::compare(&target, &source, Expect::Contains).is_empty() {
        e.doveadm_checked(&e.dsync(&["sync", "-1", "-R"], &to), 5, None)?;
        let source = e.mail_state(&from)?;
        let findings = verify::compare(&target, &source, Expect::Contains);
        if !findings.is_empty() {
            return Err(StepError::NotCarriedBack {
                to: to.to_string(),
                from: from.to_string(),
                findings,
            });
        }
    }
    Ok(())
}

/// The location fields as the switch's first start record found them (a journal of a mailmig
/// before 2.4 support recorded `userdb_mail` alone; without a record, every field was absent).
fn previous_fields(e: &Engine<'_>) -> Vec<PreviousField> {
    let keys = dialect::location_keys(e.opts().dovecot_version);
    let absent = |key: &str| PreviousField {
        key: key.to_string(),
        before: FieldBefore::Absent,
    };
    match e.first_start_data(StepKind::Switch) {
        Some(StepData::PreviousLocation {
            previous: Some(old),
            ..
        }) => vec![PreviousField {
            key: "userdb_mail".into(),
            before: old.clone(),
        }],
        Some(StepData::PreviousLocation { fields, .. }) if !fields.is_empty() => fields.clone(),
        _ => keys.iter().map(|k| absent(k)).collect(),
    }
}

/// Write the fields (each to its value, bare, or removed for [`FieldBefore::Absent`]) in one
/// edit of the passwd-file — group-committed with the other runs' edits in a batch. Through the
/// overlay, the user's record there is created for the switch and removed again when the undo
/// leaves it without fields.
fn set_fields(e: &Engine<'_>, fields: &[PreviousField], point: &str) -> Result<(), StepError> {
    let user = e.user().to_string();
    let overlay = e.opts().overlay.is_some();
    // The name as Dovecot looks it up, as the deny line is written.
    let key = crate::login::state_key(e.user(), &PasswdOptions::default())?;
    let fields = fields.to_vec();
    e.edit_passwd(
        &e.opts().passwd_file,
        Box::new(move |doc, env| set_fields_in(doc, env.ids, &user, &key, &fields, overlay)),
    )?;
    failpoint(&format!("{point}:passwd-written"));
    if e.opts().auth_cache {
        e.dovecot().flush_auth_cache(e.user())?;
    }
    Ok(())
}

/// [`set_fields`] on the document.
fn set_fields_in(
    file: &mut PasswdFile,
    ids: &dyn IdResolver,
    user: &str,
    key: &str,
    fields: &[PreviousField],
    overlay: bool,
) -> Result<(), StepError> {
    let user = user.as_bytes();
    if overlay && file.lookup(user, ids).is_none() {
        let values: Vec<(&[u8], Option<&[u8]>)> = fields
            .iter()
            .filter_map(|f| match &f.before {
                FieldBefore::Value(v) => Some((f.key.as_bytes(), Some(v.as_bytes()))),
                FieldBefore::Bare => Some((f.key.as_bytes(), None)),
                FieldBefore::Absent => None,
            })
            .collect();
        if !values.is_empty() {
            file.add_record(key.as_bytes(), &values)?;
        }
        return Ok(());
    }
    for f in fields {
        let k = f.key.as_bytes();
        match &f.before {
            FieldBefore::Value(v) => file.set_extra(user, k, Some(v.as_bytes()), ids)?,
            FieldBefore::Bare => file.set_extra(user, k, None, ids)?,
            FieldBefore::Absent => {
                file.remove_extra(user, k, ids)?;
            }
        }
    }
    if overlay && overlay_record_is_empty(file, user, ids) {
        file.remove_records(user)?;
    }
    Ok(())
}

/// An overlay record that sets nothing (`user:::::::`): it would only shadow the primary.
fn overlay_record_is_empty(file: &PasswdFile, user: &[u8], ids: &dyn IdResolver) -> bool {
    file.lookup(user, ids).is_some_and(|entry| {
        entry.extra().is_empty()
            && entry.password().is_none_or(<[u8]>::is_empty)
            && [entry.uid_field(), entry.gid_field(), entry.home_field()]
                .iter()
                .all(|f| f.is_none_or(<[u8]>::is_empty))
    })
}

/// The location fields in the user's record now (through the overlay, a user without a record
/// there has none).
fn fields_now(e: &Engine<'_>) -> Result<Vec<PreviousField>, StepError> {
    let bytes = safe_fs::read_regular(&e.opts().passwd_file)?;
    let file = PasswdFile::parse(bytes, &PasswdOptions::default());
    let keys = dialect::location_keys(e.opts().dovecot_version);
    let Some(entry) = file.lookup(e.user().as_bytes(), e.ids) else {
        if e.opts().overlay.is_some() {
            return Ok(keys
                .iter()
                .map(|key| PreviousField {
                    key: (*key).to_string(),
                    before: FieldBefore::Absent,
                })
                .collect());
        }
        return Err(StepError::NoRecord {
            user: e.user().to_string(),
            passwd_file: e.opts().passwd_file.clone(),
        });
    };
    Ok(keys
        .iter()
        .map(|key| PreviousField {
            key: (*key).to_string(),
            before: match entry
                .extra()
                .iter()
                .find(|f| f.key.as_ref() == key.as_bytes())
            {
                None => FieldBefore::Absent,
                Some(f) => match &f.value {
                    None => FieldBefore::Bare,
                    Some(v) => FieldBefore::Value(String::from_utf8_lossy(v).into_owned()),
                },
            },
        })
        .collect())
}

/// Wait until Dovecot shows the user at `want` (`driver_unset`: on 2.4 the userdb sets no
/// driver, so the global one applies).
fn wait_location(e: &Engine<'_>, want: &Location, driver_unset: bool) -> Result<(), StepError> {
    let limit = Duration::from_secs(10);
    let deadline = Instant::now() + limit;
    let version = e.opts().dovecot_version;
    let default_driver = if driver_unset {
        e.opts().default_driver.as_deref()
    } else {
        None
    };
    loop {
        let mut answers = Vec::new();
        for field in dialect::shown_fields(version) {
            let argv = crate::migrate::argv::user_field(&e.opts().dovecot_config, e.user(), field);
            let out = crate::process::Runner::run(e.runner, &argv, None)?;
            answers.push(if out.code == Some(0) {
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            } else {
                String::new()
            });
        }
        if dialect::shows(version, &answers, want, &e.opts().home, default_driver) {
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
