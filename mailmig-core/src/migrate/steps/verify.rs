//! Verify: first that the two locations are two storages (Dovecot reports different INBOX paths
//! for them: a Dovecot that ignored the location override would compare a location with
//! itself and pass vacuously); then per mailbox, message count, UIDVALIDITY, UIDNEXT, mailbox
//! GUID and message GUIDs identical, each message's UID, flags and keywords identical, and the
//! subscriptions identical (the live strategy: every source message in the target, UIDVALIDITY
//! equal); on a difference, sync again, at most three times, then fail (and roll back). Nothing
//! to undo.

use crate::migrate::engine::Engine;
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;
use crate::migrate::report::EventKind;
use crate::migrate::verify::{self, Expect};
use crate::migrate::{Location, StepKind};

pub(super) fn forward(e: &mut Engine<'_>) -> Result<StepData, StepError> {
    let (from, to) = (e.from(), e.to());
    let expect = if e.live() {
        Expect::Contains
    } else {
        Expect::Equal
    };
    distinct_storages(e, &from, &to)?;
    let mut attempt = 0;
    loop {
        let source = e.mail_state(&from)?;
        let target = e.mail_state(&to)?;
        let mut findings = verify::compare(&source, &target, expect);
        if expect == Expect::Equal {
            findings.extend(verify::compare_subscriptions(
                &e.subscriptions(&from)?,
                &e.subscriptions(&to)?,
            ));
        }
        if findings.is_empty() {
            return Ok(StepData::Verified {
                mailboxes: source.len(),
                messages: verify::total_messages(&source),
                target_messages: verify::total_messages(&target),
            });
        }
        attempt += 1;
        if attempt >= 3 {
            return Err(StepError::Differs(findings));
        }
        e.report(EventKind::Retry(StepKind::Verify, &findings));
        if e.live() {
            e.doveadm_checked(&e.dsync(&["sync"], &from), 5, None)?;
        } else {
            e.doveadm_checked(&e.dsync(&["backup"], &to), 5, None)?;
        }
    }
}

/// The INBOX path Dovecot reports for each location; equal paths mean the reads would not come
/// from two storages.
fn distinct_storages(e: &Engine<'_>, from: &Location, to: &Location) -> Result<(), StepError> {
    let path = |location: &Location| -> Result<String, StepError> {
        let argv =
            crate::migrate::argv::inbox_path(&e.opts().dovecot_config, e.user(), e.at(location));
        let out = e.doveadm_checked(&argv, 0, None)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let (old, new) = (path(from)?, path(to)?);
    if old.is_empty() || old == new {
        return Err(StepError::SameStorage { old, new });
    }
    Ok(())
}
