//! Run bookkeeping in the state directory: which user has an unfinished run, and which process
//! is working on a user.
//!
//! - `users/USER.run` names the user's unfinished run; it is written *before* the run's journal
//!   is created, so a crash between the two leaves a marker without a journal: a run that never
//!   started ([`clear_stale_marker`]);
//! - `users/USER.lock` is flocked by the process running the user's run.
//!
//! Every user name is validated ([`super::validate_user`]) before it becomes a file name.

use camino::Utf8PathBuf;

use super::journal;
use crate::state::{StateDir, StateError};

/// The subdirectory of markers and locks.
const USERS: &str = "users";

/// Why bookkeeping failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunsError {
    /// The state directory refused.
    #[error(transparent)]
    State(#[from] StateError),
    /// The user name cannot be used.
    #[error(transparent)]
    User(#[from] super::InputError),
    /// A journal could not be read.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    /// Another process holds the user's lock.
    #[error("another mailmig process is working on {user} ({path} is locked)")]
    Busy {
        /// The user.
        user: String,
        /// The lock file.
        path: Utf8PathBuf,
    },
    /// Taking the lock failed.
    #[error("cannot lock {path}")]
    Lock {
        /// The lock file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn marker_name(user: &str) -> Result<String, RunsError> {
    super::validate_user(user)?;
    Ok(format!("{user}.run"))
}

fn lock_name(user: &str) -> Result<String, RunsError> {
    super::validate_user(user)?;
    Ok(format!("{user}.lock"))
}

/// The user's unfinished run, if a marker names one.
pub fn marker(state: &StateDir, user: &str) -> Result<Option<String>, RunsError> {
    Ok(state
        .read(USERS, &marker_name(user)?)?
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|r| !r.is_empty()))
}

/// Record `run` as the user's unfinished run (whole or not at all).
pub fn set_marker(state: &StateDir, user: &str, run: &str) -> Result<(), RunsError> {
    crate::state::file_name(run)?;
    state.write(USERS, &marker_name(user)?, run.as_bytes())?;
    Ok(())
}

/// Forget the user's unfinished run.
pub fn clear_marker(state: &StateDir, user: &str) -> Result<(), RunsError> {
    state.remove(USERS, &marker_name(user)?)?;
    Ok(())
}

/// A user marker naming a run whose journal was never created (a crash between the two): the
/// run never started; the marker is removed. Returns the run id when it was stale.
pub fn clear_stale_marker(state: &StateDir, user: &str) -> Result<Option<String>, RunsError> {
    let Some(run) = marker(state, user)? else {
        return Ok(None);
    };
    if journal::exists(state, &run).unwrap_or(false) {
        return Ok(None);
    }
    clear_marker(state, user)?;
    Ok(Some(run))
}

/// The users with a marker (an unfinished run, or one that never started), sorted.
pub fn marked_users(state: &StateDir) -> Result<Vec<String>, RunsError> {
    Ok(state
        .names(USERS)?
        .into_iter()
        .filter_map(|n| n.strip_suffix(".run").map(str::to_string))
        .filter(|u| super::validate_user(u).is_ok())
        .collect())
}

/// The flock of the process working on a user; released on drop.
#[derive(Debug)]
#[must_use = "the user is locked only while the handle lives"]
pub struct UserLock {
    _file: fs_err::File,
}

/// Take the user's lock without waiting: another process working on the user is
/// [`RunsError::Busy`].
pub fn lock_user(state: &StateDir, user: &str) -> Result<UserLock, RunsError> {
    let name = lock_name(user)?;
    let path = state.file_path(USERS, &name);
    let file = state.lock_file(USERS, &name)?;
    match file.file().try_lock() {
        Ok(()) => Ok(UserLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(RunsError::Busy {
            user: user.to_string(),
            path,
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(RunsError::Lock { path, source }),
    }
}

/// Whether a process holds the user's lock now.
pub fn is_running(state: &StateDir, user: &str) -> bool {
    let Ok(name) = lock_name(user) else {
        return false;
    };
    state
        .existing_lock_file(USERS, &name)
        .ok()
        .flatten()
        .is_some_and(|f| matches!(f.file().try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}
