//! Catch-up: after the switch, hold what was queued meanwhile, wait out an LMTP delivery that
//! looked the user up before the switch, and carry any mail the old location got after the
//! final sync over to the new one (`doveadm sync -1 -R`, deleting nothing). Nothing to undo: it
//! only adds mail to the target.

use std::time::Duration;

use crate::migrate::engine::Engine;
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;
use crate::migrate::report::EventKind;
use crate::migrate::verify::{self, Expect};
use crate::migrate::StepKind;

use super::queued;

/// With quota on, the copies counted the user's mail a second time (a `dict` backend keeps one
/// usage for both locations): `doveadm quota recalc` recounts it from the new location, and —
/// with the hold strategy, where no mail arrives meanwhile — the quota's message count must
/// then equal the messages in the new location.
fn recalc_quota(e: &Engine<'_>, messages: u64) -> Result<Option<u64>, StepError> {
    let Some(backend) = e.opts().quota.clone() else {
        return Ok(None);
    };
    if backend == "maildir" {
        return Ok(None);
    }
    let config = &e.opts().dovecot_config;
    e.doveadm_checked(
        &crate::migrate::argv::quota_recalc(config, e.user()),
        0,
        None,
    )?;
    let out = e.doveadm_checked(&crate::migrate::argv::quota_get(config, e.user()), 0, None)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let counted: Option<u64> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|cols| {
            cols.get(1)
                .is_some_and(|t| t.eq_ignore_ascii_case("MESSAGE"))
        })
        .filter_map(|cols| cols.get(2).and_then(|v| v.trim().parse().ok()))
        .max();
    if !e.live() {
        if let Some(n) = counted {
            if n != messages {
                return Err(StepError::Quota {
                    counted: n,
                    messages,
                });
            }
        }
    }
    Ok(counted)
}

pub(super) fn forward(e: &mut Engine<'_>) -> Result<StepData, StepError> {
    let (from, to) = (e.from(), e.to());
    if !e.live() {
        queued::hold(e, StepKind::CatchUp)?;
    }
    // An LMTP delivery that looked the user up before the switch may still be writing into the
    // old location.
    std::thread::sleep(Duration::from_millis(1000));
    let mut passes = 0;
    loop {
        let source = e.mail_state(&from)?;
        let target = e.mail_state(&to)?;
        let missing = verify::compare(&source, &target, Expect::Contains);
        if missing.is_empty() {
            let quota_messages = recalc_quota(e, verify::total_messages(&target))?;
            return Ok(StepData::CaughtUp {
                carried_over_passes: passes,
                messages: verify::total_messages(&target),
                quota_messages,
            });
        }
        if passes == 2 {
            return Err(StepError::NotCarriedOver(missing));
        }
        e.report(EventKind::CarryOver(StepKind::CatchUp, &missing));
        e.doveadm_checked(&e.dsync(&["sync", "-1", "-R"], &from), 5, None)?;
        passes += 1;
    }
}
