//! Final sync: with the mail held and the user locked out, hold what was queued meanwhile and
//! run the last incremental `doveadm backup`; for the live strategy, kick the sessions still on
//! the old location and sync two-way against it. Nothing of its own to undo: it writes only
//! into the target, which the presync's undo moves aside.

use std::time::Instant;

use crate::migrate::engine::{failpoint, Engine};
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;
use crate::migrate::StepKind;

use super::queued;

pub(super) fn forward(e: &mut Engine<'_>) -> Result<StepData, StepError> {
    let t = Instant::now();
    if e.live() {
        // The new location is local now; kick sessions still on the old one, then a two-way
        // sync against the old location.
        e.dovecot().kick(e.user())?;
        e.doveadm_checked(&e.dsync(&["sync"], &e.from()), 5, None)?;
    } else {
        queued::hold(e, StepKind::FinalSync)?;
        e.doveadm_checked(&e.dsync(&["backup"], &e.to()), 5, None)?;
    }
    failpoint("final-sync:synced");
    Ok(StepData::Copied {
        ms: u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}
