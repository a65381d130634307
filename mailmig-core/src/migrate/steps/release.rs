//! Release: remove the run's holds, restore the lock-out fields exactly, release the mail the
//! run held (handing over what another run still needs held). Past its start a run completes
//! instead of rolling back, so it has no undo.

use crate::migrate::engine::{failpoint, Engine};
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;

use super::{hold, lock_out, queued};

pub(super) fn forward(e: &mut Engine<'_>) -> Result<StepData, StepError> {
    e.edit_access(hold::unhold_edit(e), "release")?;
    failpoint("release:holds-removed");
    lock_out::enable(e)?;
    failpoint("release:login-enabled");
    let released = queued::release(e)?;
    failpoint("release:queue-released");
    Ok(StepData::Released {
        released: released.released,
        kept_for_other_runs: released.kept,
        at_ms: e.elapsed_ms(),
    })
}
