//! mailmig's state directory: private, owned by the invoking user, written whole or not at all.
//!
//! Layout (each directory 0700, each file 0600, whatever the umask):
//! - `runs/RUN/journal.jsonl`: one journal per run ([`crate::migrate::journal`]);
//! - `users/USER.lock`, `users/USER.run`: the flock of the process running a user, and the
//!   user's unfinished run;
//! - `login/USER.json`: what a lock-out changed ([`crate::login`]);
//! - `queue/USER.json`, `queue/handover/ID`: messages mailmig held;
//! - `locks/postfix-maps.lock`: serializes access-map edits and postmap across processes.
//!
//! [`StateDir::open`] refuses an existing directory that is not owned by the invoking user or is
//! writable by its group or others ([`StateError::NotPrivate`]): anyone who can write there
//! could plant runs that a root `resume` would act on. Every name that becomes a file name is
//! checked by [`file_name`] first.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;

use camino::{Utf8Path, Utf8PathBuf};

use crate::safe_fs::{self, Dir, SafeFsError};

/// Mode of the directories mailmig creates in its state directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files mailmig creates in its state directory.
pub const FILE_MODE: u32 = 0o600;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The state directory (or a directory in it) may be written by others.
    #[error("state directory `{path}` {reason}; it must be owned by uid {euid} and not writable by group or others (fix with `chown {euid} {path} && chmod 0700 {path}` once you trust its content)")]
    NotPrivate {
        /// The directory.
        path: Utf8PathBuf,
        /// What is wrong.
        reason: String,
        /// The invoking user.
        euid: u32,
    },
    /// A name cannot become a file name in the state directory.
    #[error("`{name}` cannot name a state file: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A state file is not what mailmig wrote (not a regular file owned by the invoking user).
    #[error("state file `{path}` {reason}; mailmig did not write it: remove it after checking")]
    Foreign {
        /// The file.
        path: Utf8PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file-system operation failed.
    #[error(transparent)]
    Fs(#[from] SafeFsError),
}

/// Check that `name` can be a file name in the state directory: 1 to 200 bytes, printable, no
/// `/`, not starting with `.`. Returns it unchanged.
pub fn file_name(name: &str) -> Result<&str, StateError> {
    let bad = |reason| StateError::BadName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > 200 {
        return Err(bad("must be 1 to 200 bytes long"));
    }
    if name.starts_with('.') {
        return Err(bad("must not start with `.`"));
    }
    if name.contains('/') {
        return Err(bad("must not contain `/`"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    Ok(name)
}

/// The opened state directory.
#[derive(Debug)]
pub struct StateDir {
    root: Dir,
}

fn private_check(dir: &Dir) -> Result<(), StateError> {
    let meta = dir.metadata()?;
    let euid = safe_fs::euid();
    let reason = if meta.uid() != euid {
        Some(format!("is owned by uid {}", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "has mode {:04o} (writable by group or others)",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StateError::NotPrivate {
            path: dir.path().to_owned(),
            reason,
            euid,
        }),
        None => Ok(()),
    }
}

impl StateDir {
    /// Open the state directory, creating it (0700) when missing — its parent must exist. An
    /// existing one must be owned by the invoking user and not writable by group or others.
    pub fn open(path: &Utf8Path) -> Result<Self, StateError> {
        let r = safe_fs::resolve(path)?;
        let root = match r.meta {
            None => {
                let (dir, _) = r.dir.create_subdir(&r.name, DIR_MODE)?;
                dir
            }
            Some(_) => r.dir.open_subdir(&r.name)?,
        };
        private_check(&root)?;
        Ok(Self { root })
    }

    /// Open the state directory only if it exists (read-only commands): `Ok(None)` otherwise.
    pub fn open_existing(path: &Utf8Path) -> Result<Option<Self>, StateError> {
        let r = safe_fs::resolve(path)?;
        if r.meta.is_none() {
            return Ok(None);
        }
        let root = r.dir.open_subdir(&r.name)?;
        private_check(&root)?;
        Ok(Some(Self { root }))
    }

    /// Where it is.
    pub fn path(&self) -> &Utf8Path {
        self.root.path()
    }

    /// A subdirectory (`runs`, `users`, `queue/handover`...), created 0700 when missing;
    /// an existing one must be private too.
    pub fn dir(&self, sub: &str) -> Result<Dir, StateError> {
        let mut dir = None::<Dir>;
        for part in sub.split('/') {
            let parent = dir.as_ref().unwrap_or(&self.root);
            let (d, _) = parent.create_subdir(file_name(part)?, DIR_MODE)?;
            private_check(&d)?;
            dir = Some(d);
        }
        dir.ok_or(StateError::BadName {
            name: sub.to_string(),
            reason: "is empty",
        })
    }

    /// An existing subdirectory, or `None` (never created).
    pub fn existing_dir(&self, sub: &str) -> Result<Option<Dir>, StateError> {
        let mut dir = None::<Dir>;
        for part in sub.split('/') {
            let parent = dir.as_ref().unwrap_or(&self.root);
            let name = file_name(part)?;
            match parent.lstat(name)? {
                None => return Ok(None),
                Some(_) => {
                    let d = parent.open_subdir(name)?;
                    private_check(&d)?;
                    dir = Some(d);
                }
            }
        }
        Ok(dir)
    }

    /// The path of `sub/name` (for messages).
    pub fn file_path(&self, sub: &str, name: &str) -> Utf8PathBuf {
        self.root.path().join(sub).join(name)
    }

    /// Write `sub/name` whole or not at all (mode 0600).
    pub fn write(&self, sub: &str, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let dir = self.dir(sub)?;
        dir.write_atomic(file_name(name)?, bytes, FILE_MODE)?;
        Ok(())
    }

    /// Read `sub/name`: `None` when it does not exist. A link, a non-regular file or a file of
    /// another owner is refused.
    pub fn read(&self, sub: &str, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let Some(dir) = self.existing_dir(sub)? else {
            return Ok(None);
        };
        read_owned(&dir, file_name(name)?)
    }

    /// Whether `sub/name` exists.
    pub fn exists(&self, sub: &str, name: &str) -> Result<bool, StateError> {
        Ok(match self.existing_dir(sub)? {
            Some(dir) => dir.lstat(file_name(name)?)?.is_some(),
            None => false,
        })
    }

    /// Remove `sub/name` (absent is fine).
    pub fn remove(&self, sub: &str, name: &str) -> Result<(), StateError> {
        if let Some(dir) = self.existing_dir(sub)? {
            dir.remove_file(file_name(name)?)?;
            dir.sync()?;
        }
        Ok(())
    }

    /// The names in `sub` (none when it does not exist).
    pub fn names(&self, sub: &str) -> Result<Vec<String>, StateError> {
        Ok(match self.existing_dir(sub)? {
            Some(dir) => dir.names()?,
            None => Vec::new(),
        })
    }

    /// Open (creating, 0600) the lock file `sub/name`; the caller takes the flock.
    pub fn lock_file(&self, sub: &str, name: &str) -> Result<fs_err::File, StateError> {
        let dir = self.dir(sub)?;
        let name = file_name(name)?;
        if let Some(f) = dir.create_new(name, FILE_MODE)? {
            return Ok(f);
        }
        let f = dir.open_rw(name)?;
        owned_regular(&f, &dir.path().join(name))?;
        Ok(f)
    }

    /// Open an existing lock file `sub/name` (for probing whether it is held).
    pub fn existing_lock_file(
        &self,
        sub: &str,
        name: &str,
    ) -> Result<Option<fs_err::File>, StateError> {
        let Some(dir) = self.existing_dir(sub)? else {
            return Ok(None);
        };
        let name = file_name(name)?;
        if dir.lstat(name)?.is_none() {
            return Ok(None);
        }
        let f = dir.open_rw(name)?;
        owned_regular(&f, &dir.path().join(name))?;
        Ok(Some(f))
    }
}

fn owned_regular(f: &fs_err::File, path: &Utf8Path) -> Result<(), StateError> {
    let meta = f.metadata().map_err(|source| SafeFsError::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.uid() != safe_fs::euid() {
        return Err(StateError::Foreign {
            path: path.to_owned(),
            reason: format!("is owned by uid {}", meta.uid()),
        });
    }
    if meta.nlink() != 1 {
        return Err(StateError::Foreign {
            path: path.to_owned(),
            reason: format!("has {} hard links", meta.nlink()),
        });
    }
    Ok(())
}

/// Read a state file of ours from `dir`.
pub(crate) fn read_owned(dir: &Dir, name: &str) -> Result<Option<Vec<u8>>, StateError> {
    if dir.lstat(name)?.is_none() {
        return Ok(None);
    }
    let path = dir.path().join(name);
    let mut f = dir.open_read(name)?;
    owned_regular(&f, &path)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|source| SafeFsError::Io { path, source })?;
    Ok(Some(bytes))
}
