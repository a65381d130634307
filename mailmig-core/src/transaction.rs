//! Prepare → commit edits of configuration files: the one way mailmig writes to `/etc/postfix`
//! and `/etc/dovecot`.
//!
//! ```no_run
//! use camino::Utf8Path;
//! use mailmig_core::transaction::{CommitOptions, FileTransaction};
//!
//! let tx = FileTransaction::prepare(Utf8Path::new("/etc/postfix/virtual"))?; // locked, read
//! let mut new = tx.original().to_vec();
//! new.extend_from_slice(b"al@example.com alice@example.com\n");
//! tx.commit(&new, &CommitOptions::default())?; // or drop `tx`: nothing changes
//! # Ok::<(), mailmig_core::transaction::TransactionError>(())
//! ```
//!
//! The protocol (Postfix's `edit_file()` convention, with fsyncs):
//!
//! 1. **Lock.** Open `FILE.mailmig.tmp` in the file's directory (created with mode 0600), take an
//!    exclusive `flock`, and make sure the name still refers to the locked file (another mailmig
//!    may have just renamed it into place); otherwise start again. The temporary file *is* the
//!    lock, so concurrent mailmig processes exclude each other and no lock file is left behind.
//! 2. **Read** the target under the lock. Edits are computed from these bytes.
//! 3. **Commit.** Check the target is still what was read (same inode, size, mtime — and the same
//!    bytes if those moved): a writer that does not take the lock (an editor) makes the commit
//!    fail instead of losing its update. Write the new bytes to the temporary file with the
//!    target's owner, group and mode (it was 0600 until then: never readable by more users than
//!    the target), `fsync` it, optionally hard-link the old file as `FILE.mailmig-TIMESTAMP`,
//!    `rename` it over the target, `fsync` the directory.
//! 4. **Drop** without commit removes the temporary file; the target is untouched. A process
//!    killed in between leaves `FILE.mailmig.tmp` behind; the next transaction on the file takes
//!    it over (it is locked by nobody) and so cleans it.
//!
//! A symlinked target is edited at its real path and the link is kept. A target whose
//! rename fails with `EBUSY`/`EXDEV` (a single-file bind mount) is an error unless
//! [`CommitOptions::copy_in_place_fallback`] is set (then the file is rewritten in place: not
//! atomic, said so in its documentation). When the size does not change and the clock is still
//! in the old modification second, the new file's mtime is set one second later: Dovecot
//! re-reads a passwd-file only when its mtime second or size changed.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use fs_err::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};

/// What went wrong. Nothing was changed when a transaction returns an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The target cannot be read (missing, not a regular file, permissions).
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The target is not a regular file.
    #[error("`{path}` is not a regular file")]
    NotAFile {
        /// The file.
        path: Utf8PathBuf,
    },
    /// The temporary file (and lock) cannot be created in the target's directory.
    #[error(
        "cannot create the temporary file `{path}` (the directory must be writable): {source}"
    )]
    Temp {
        /// The temporary file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another writer changed the file after it was read (it did not take mailmig's lock).
    #[error("`{path}` was changed by another program after mailmig read it; nothing was written (run the command again)")]
    Changed {
        /// The file.
        path: Utf8PathBuf,
    },
    /// The owner, group or mode of the original cannot be given to the new file.
    #[error("cannot give `{path}` the original owner {uid}:{gid} and mode {mode:o}: {source}")]
    Ownership {
        /// The temporary file.
        path: Utf8PathBuf,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Mode.
        mode: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing, syncing or renaming failed.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The target cannot be replaced by rename (a single-file bind mount).
    #[error("cannot replace `{path}` by rename ({source}); it is probably a single-file bind mount: use the copy-in-place fallback if you accept a non-atomic write")]
    RenameImpossible {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How to commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Keep the previous version as `FILE.mailmig-YYYYmmddTHHMMSS.NNN` (a hard link).
    pub backup: bool,
    /// When rename is impossible (bind mount), rewrite the file in place instead of failing.
    pub copy_in_place_fallback: bool,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// The file written (the real path, symlinks resolved).
    pub path: Utf8PathBuf,
    /// Whether the bytes changed at all (an unchanged file is not rewritten).
    pub changed: bool,
    /// The backup made, if any.
    pub backup: Option<Utf8PathBuf>,
    /// Whether the copy-in-place fallback was used.
    pub in_place: bool,
}

/// A locked, read file, ready to be committed.
#[derive(Debug)]
pub struct FileTransaction {
    target: Utf8PathBuf,
    temp_path: Utf8PathBuf,
    temp: Option<fs_err::File>,
    original: Vec<u8>,
    meta: Stamp,
}

/// What identifies a version of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
        }
    }
}

/// The temporary file and lock of a target.
pub fn temp_path_for(target: &Utf8Path) -> Utf8PathBuf {
    let name = target.file_name().unwrap_or("file");
    target.with_file_name(format!("{name}.mailmig.tmp"))
}

impl FileTransaction {
    /// Lock the file against other mailmig processes and read it.
    pub fn prepare(path: &Utf8Path) -> Result<Self, TransactionError> {
        let read_err = |source| TransactionError::Read {
            path: path.to_owned(),
            source,
        };
        let real = fs_err::canonicalize(path).map_err(read_err)?;
        let target = Utf8PathBuf::try_from(real).map_err(|e| read_err(e.into_io_error()))?;
        if !fs_err::metadata(&target).map_err(read_err)?.is_file() {
            return Err(TransactionError::NotAFile { path: target });
        }
        let temp_path = temp_path_for(&target);
        let temp = lock_temp(&temp_path)?;
        // Read under the lock: the bytes and the version they belong to.
        let mut file = fs_err::File::open(&target).map_err(|source| TransactionError::Read {
            path: target.clone(),
            source,
        })?;
        let meta = Stamp::of(&file.metadata().map_err(|source| TransactionError::Read {
            path: target.clone(),
            source,
        })?);
        let mut original = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        file.read_to_end(&mut original)
            .map_err(|source| TransactionError::Read {
                path: target.clone(),
                source,
            })?;
        Ok(Self {
            target,
            temp_path,
            temp: Some(temp),
            original,
            meta,
        })
    }

    /// The file's bytes as read under the lock.
    pub fn original(&self) -> &[u8] {
        &self.original
    }

    /// The real path of the file (symlinks resolved).
    pub fn path(&self) -> &Utf8Path {
        &self.target
    }

    /// Replace the file with `new`. Unchanged bytes are not rewritten.
    pub fn commit(
        mut self,
        new: &[u8],
        options: &CommitOptions,
    ) -> Result<CommitReport, TransactionError> {
        let mut report = CommitReport {
            path: self.target.clone(),
            changed: new != self.original.as_slice(),
            backup: None,
            in_place: false,
        };
        self.check_unchanged()?;
        if !report.changed {
            return Ok(report);
        }
        let write_err = |path: &Utf8Path| {
            let path = path.to_owned();
            move |source| TransactionError::Write { path, source }
        };
        let temp = self.temp.as_mut().ok_or_else(|| TransactionError::Write {
            path: self.temp_path.clone(),
            source: std::io::Error::other("transaction already finished"),
        })?;
        temp.set_len(0).map_err(write_err(&self.temp_path))?;
        // Owner and group first (chown may clear set-id bits), then the exact mode.
        let m = self.meta;
        std::os::unix::fs::fchown(temp.file(), Some(m.uid), Some(m.gid)).map_err(|source| {
            TransactionError::Ownership {
                path: self.temp_path.clone(),
                uid: m.uid,
                gid: m.gid,
                mode: m.mode & 0o7777,
                source,
            }
        })?;
        temp.file()
            .set_permissions(std::fs::Permissions::from_mode(m.mode & 0o7777))
            .map_err(|source| TransactionError::Ownership {
                path: self.temp_path.clone(),
                uid: m.uid,
                gid: m.gid,
                mode: m.mode & 0o7777,
                source,
            })?;
        temp.write_all(new).map_err(write_err(&self.temp_path))?;
        // Dovecot re-reads a passwd-file only when the mtime second or the size changed.
        if new.len() as u64 == m.size {
            let now = SystemTime::now();
            let now_secs = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            if now_secs <= m.mtime {
                let later = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(m.mtime + 1).unwrap_or(0));
                temp.file()
                    .set_modified(later)
                    .map_err(write_err(&self.temp_path))?;
            }
        }
        temp.sync_all().map_err(write_err(&self.temp_path))?;
        self.check_unchanged()?;
        if options.backup {
            let stamp = backup_suffix();
            let backup = self.target.with_file_name(format!(
                "{}.mailmig-{stamp}",
                self.target.file_name().unwrap_or("file")
            ));
            fs_err::hard_link(&self.target, &backup).map_err(write_err(&backup))?;
            report.backup = Some(backup);
        }
        match fs_err::rename(&self.temp_path, &self.target) {
            Ok(()) => {}
            // fs-err wraps the OS error, so match its kind (EBUSY, EXDEV), not its number.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ResourceBusy | std::io::ErrorKind::CrossesDevices
                ) =>
            {
                if !options.copy_in_place_fallback {
                    return Err(TransactionError::RenameImpossible {
                        path: self.target.clone(),
                        source: e,
                    });
                }
                let mut f = fs_err::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&self.target)
                    .map_err(write_err(&self.target))?;
                f.write_all(new).map_err(write_err(&self.target))?;
                f.sync_all().map_err(write_err(&self.target))?;
                report.in_place = true;
                // The temporary file is removed on drop.
                return Ok(report);
            }
            Err(e) => return Err(write_err(&self.target)(e)),
        }
        // The temporary name is gone: nothing to remove on drop; the lock goes with the handle.
        self.temp = None;
        if let Some(dir) = self.target.parent() {
            fs_err::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(write_err(dir))?;
        }
        Ok(report)
    }

    /// The target must still be the version that was read.
    fn check_unchanged(&self) -> Result<(), TransactionError> {
        let changed = || TransactionError::Changed {
            path: self.target.clone(),
        };
        let now = fs_err::metadata(&self.target).map_err(|_| changed())?;
        let stamp = Stamp::of(&now);
        if stamp == self.meta {
            return Ok(());
        }
        // Metadata moved (a touch, a chmod): only different bytes are a conflict.
        let bytes = fs_err::read(&self.target).map_err(|_| changed())?;
        if bytes == self.original
            && (stamp.uid, stamp.gid, stamp.mode) == (self.meta.uid, self.meta.gid, self.meta.mode)
        {
            Ok(())
        } else {
            Err(changed())
        }
    }
}

impl Drop for FileTransaction {
    fn drop(&mut self) {
        if self.temp.take().is_some() {
            // Still holding the lock: the temporary file is ours to remove. Nothing to report if
            // it is already gone.
            let _ = fs_err::remove_file(&self.temp_path);
        }
    }
}

/// Write `bytes` to `path` through a transaction, creating the file (mode 0600) and its
/// directory when missing: mailmig's own state files.
pub fn write_state_file(path: &Utf8Path, bytes: &[u8]) -> Result<(), TransactionError> {
    let write_err = |source| TransactionError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).map_err(write_err)?;
    }
    if !path.exists() {
        fs_err::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(write_err)?;
    }
    FileTransaction::prepare(path)?.commit(bytes, &CommitOptions::default())?;
    Ok(())
}

/// Open and lock the temporary file, making sure the name still refers to the locked file.
fn lock_temp(temp_path: &Utf8Path) -> Result<fs_err::File, TransactionError> {
    let temp_err = |source| TransactionError::Temp {
        path: temp_path.to_owned(),
        source,
    };
    loop {
        let file = fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(temp_path)
            .map_err(temp_err)?;
        file.file().lock().map_err(temp_err)?;
        let locked = file.metadata().map_err(temp_err)?;
        match fs_err::metadata(temp_path) {
            Ok(named) if named.dev() == locked.dev() && named.ino() == locked.ino() => {
                return Ok(file)
            }
            // Renamed into place or removed by the previous holder: try again.
            _ => continue,
        }
    }
}

/// `YYYYmmddTHHMMSS.NNN` (UTC) for backup names.
fn backup_suffix() -> String {
    let (y, m, d, hh, mm, ss, ms) = utc_now();
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}.{ms:03}")
}

/// The current time in UTC as RFC 3339 (`2026-11-29T16:10:00Z`), for what mailmig records.
pub fn utc_now_rfc3339() -> String {
    let (y, m, d, hh, mm, ss, _) = utc_now();
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// (year, month, day, hour, minute, second, millisecond) now, in UTC.
fn utc_now() -> (i64, u32, u32, u64, u64, u64, u32) {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = t.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    (
        y,
        m,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        t.subsec_millis(),
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, Utf8PathBuf) {
        let d = tempfile::tempdir().expect("tempdir");
        let p = Utf8PathBuf::try_from(d.path().to_path_buf()).expect("utf8");
        (d, p)
    }

    #[test]
    fn commit_replaces_and_drop_rolls_back() {
        let (_d, p) = dir();
        let f = p.join("virtual");
        fs_err::write(&f, b"a b\n").expect("write");
        let tx = FileTransaction::prepare(&f).expect("prepare");
        assert_eq!(tx.original(), b"a b\n");
        assert!(temp_path_for(&f).exists());
        drop(tx);
        assert!(
            !temp_path_for(&f).exists(),
            "drop removes the temporary file"
        );
        assert_eq!(fs_err::read(&f).expect("read"), b"a b\n");
        let tx = FileTransaction::prepare(&f).expect("prepare");
        let r = tx
            .commit(b"a c\n", &CommitOptions::default())
            .expect("commit");
        assert!(r.changed);
        assert_eq!(fs_err::read(&f).expect("read"), b"a c\n");
        assert!(!temp_path_for(&f).exists());
    }

    #[test]
    fn a_writer_without_the_lock_makes_the_commit_fail() {
        let (_d, p) = dir();
        let f = p.join("users");
        fs_err::write(&f, b"one\n").expect("write");
        let tx = FileTransaction::prepare(&f).expect("prepare");
        fs_err::write(&f, b"two, written by an editor\n").expect("write");
        assert!(matches!(
            tx.commit(b"three\n", &CommitOptions::default()),
            Err(TransactionError::Changed { .. })
        ));
        assert_eq!(
            fs_err::read(&f).expect("read"),
            b"two, written by an editor\n"
        );
        assert!(!temp_path_for(&f).exists());
    }

    #[test]
    fn same_size_edit_moves_the_mtime_second() {
        let (_d, p) = dir();
        let f = p.join("users");
        fs_err::write(&f, b"AAAA\n").expect("write");
        let before = fs_err::metadata(&f).expect("meta").mtime();
        let tx = FileTransaction::prepare(&f).expect("prepare");
        tx.commit(b"BBBB\n", &CommitOptions::default())
            .expect("commit");
        let after = fs_err::metadata(&f).expect("meta").mtime();
        assert_ne!(before, after);
    }

    #[test]
    fn symlinks_are_followed_and_kept_and_backups_made() {
        let (_d, p) = dir();
        let real = p.join("real");
        let link = p.join("link");
        fs_err::write(&real, b"x\n").expect("write");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let tx = FileTransaction::prepare(&link).expect("prepare");
        let opts = CommitOptions {
            backup: true,
            ..CommitOptions::default()
        };
        let r = tx.commit(b"y\n", &opts).expect("commit");
        assert!(fs_err::symlink_metadata(&link)
            .expect("meta")
            .file_type()
            .is_symlink());
        assert_eq!(fs_err::read(&link).expect("read"), b"y\n");
        assert_eq!(
            fs_err::read(r.backup.expect("backup")).expect("read"),
            b"x\n"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
    }
}
