//! Preflight: checked again when the run starts (or resumes before anything happened): a target
//! that filled up meanwhile would be overwritten by `doveadm backup`. Nothing to undo.

use crate::migrate::engine::Engine;
use crate::migrate::error::StepError;
use crate::migrate::journal::StepData;

pub(super) fn forward(e: &mut Engine<'_>) -> Result<StepData, StepError> {
    for target in e.target_paths() {
        if fs_err::read_dir(&target).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(StepError::TargetNotEmpty { target });
        }
    }
    Ok(StepData::Checked {
        from: e.from().to_string(),
        to: e.to().to_string(),
    })
}
