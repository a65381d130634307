//! Presync: copy the bulk while the user is online (`doveadm backup`, or two two-way syncs for
//! the live strategy). Undo: the target is a copy nothing was delivered into before the switch
//! (undone first): it is moved aside, never deleted.

use std::time::{Duration, Instant};

use camino::Utf8Path;

use crate::migrate::engine::{failpoint, Engine};
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;
use crate::migrate::report::EventKind;
use crate::migrate::StepKind;
use crate::safe_fs;

/// How long the copy before the hold may take: it holds nothing, so only a hang is bounded.
const PRESYNC_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

pub(super) fn forward(e: &mut Engine<'_>) -> Result<StepData, StepError> {
    let t = Instant::now();
    let to = e.to();
    let long = Some(PRESYNC_TIMEOUT);
    if e.live() {
        e.doveadm_checked(&e.dsync(&["sync"], &to), 5, long)?;
        failpoint("presync:first-sync");
        e.doveadm_checked(&e.dsync(&["sync"], &to), 5, long)?;
    } else {
        e.doveadm_checked(&e.dsync(&["backup"], &to), 5, long)?;
    }
    Ok(StepData::Copied {
        ms: u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Every directory the target wrote (its path, INDEX=, CONTROL=, ALT=) is moved aside.
pub(super) fn undo(e: &mut Engine<'_>) -> Result<(), StepError> {
    for target in e.target_paths() {
        let resolved = safe_fs::resolve(Utf8Path::new(target.trim_end_matches('/')))?;
        if resolved.meta.is_some() {
            let aside = format!("{}.mailmig-rolled-back-{}", resolved.name, e.header.run);
            resolved.dir.rename_noreplace(&resolved.name, &aside)?;
            resolved.dir.sync()?;
            let aside = resolved.dir.path().join(aside);
            e.report(EventKind::MovedAside(StepKind::Presync, &aside));
        }
    }
    Ok(())
}
