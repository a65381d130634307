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
            return Ok(StepData::CaughtUp {
                carried_over_passes: passes,
                messages: verify::total_messages(&target),
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
