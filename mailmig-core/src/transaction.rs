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
//! The protocol (Postfix's `edit_file()` convention, with fsyncs, hardened for directories
//! other accounts may write — see [`crate::safe_fs`] and `docs/security.md`):
//!
//! 1. **Resolve** the path one component at a time, following only links owned by root or the
//!    invoking user; the directory is opened (`O_NOFOLLOW`) and everything below happens
//!    relative to it.
//! 2. **Lock.** Create `FILE.mailmig.tmp` with `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600, and
//!    take an exclusive `flock` (waiting at most [`LOCK_WAIT`]). When the name exists, it is
//!    another mailmig's lock or a leftover of a killed one: it is examined without following a
//!    link and taken only if it is a regular file with one link, owned by root, the invoking
//!    user or the target's owner (anything else is refused, naming it); once its lock is
//!    free it is removed and a fresh one created. The temporary file *is* the lock, so
//!    concurrent mailmig processes exclude each other and no lock file is left behind.
//! 3. **Read** the target under the lock (opened `O_NOFOLLOW`, regular files only).
//! 4. **Commit.** Check the target is still what was read (same inode, size, mtime — and the same
//!    bytes if those moved): a writer that does not take the lock (an editor) makes the commit
//!    fail instead of losing its update. Write the new bytes to the temporary file — created by
//!    this process, so it alone is ever given the target's owner, group and mode (set-id bits
//!    dropped) — `fsync` it, optionally hard-link the old file as `FILE.mailmig-TIMESTAMP`,
//!    check the target name once more, `renameat` over it, `fsync` the directory.
//! 5. **Drop** without commit removes the temporary file; the target is untouched.
//!
//! [`FileTransaction::commit_document`] (and [`FileTransaction::commit_with`]) stream a
//! [`Document`] into the temporary file instead of building its bytes first, and write nothing
//! while they are the bytes read: an edit of a large file holds one copy of it, shared with the
//! document ([`FileTransaction::shared_original`], `PasswdFile::parse_shared`,
//! `Table::parse_shared`).
//!
//! A symlinked target (a link owned by root) is edited at its real path and the link is kept.
//! A target whose rename fails with `EBUSY`/`EXDEV` (a single-file bind mount) is an error
//! unless [`CommitOptions::copy_in_place_fallback`] is set (then the file is rewritten in place:
//! not atomic, said so in its documentation). When the clock is still in the old version's
//! modification second (or before it), the new file's mtime is set one second after it, whatever
//! its size: Dovecot re-reads a passwd-file only when its mtime second or size differ from the
//! version it loaded.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};

use crate::safe_fs::{self, Dir, SafeFsError};

/// How long [`FileTransaction::prepare`] waits for another process's lock on the same file.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// What went wrong. Nothing was changed when a transaction returns an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The target cannot be read (missing, not a regular file, permissions).
    #[error("cannot read `{path}`")]
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
    /// The path cannot be used safely (an untrusted link, a planted temporary file...).
    #[error(transparent)]
    Unsafe(#[from] SafeFsError),
    /// The temporary file (and lock) cannot be created in the target's directory.
    #[error("cannot create the temporary file `{path}` (the directory must be writable)")]
    Temp {
        /// The temporary file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the file's lock for longer than [`LOCK_WAIT`].
    #[error("`{path}` is locked by another process for more than {seconds} s (another mailmig, or a stuck one: see who holds it with `fuser {path}`)")]
    Locked {
        /// The lock (temporary) file.
        path: Utf8PathBuf,
        /// How long mailmig waited.
        seconds: u64,
    },
    /// Another writer changed the file after it was read (it did not take mailmig's lock).
    #[error("`{path}` was changed by another program after mailmig read it; nothing was written (run the command again)")]
    Changed {
        /// The file.
        path: Utf8PathBuf,
    },
    /// The owner, group or mode of the original cannot be given to the new file.
    #[error("cannot give `{path}` the original owner {uid}:{gid} and mode {mode:o}")]
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
    #[error("cannot write `{path}`")]
    Write {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The target cannot be replaced by rename (a single-file bind mount).
    #[error("cannot replace `{path}` by rename; it is probably a single-file bind mount: use the copy-in-place fallback if you accept a non-atomic write")]
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
#[must_use = "a prepared transaction changes nothing until it is committed"]
pub struct FileTransaction {
    dir: Dir,
    name: String,
    temp_name: String,
    temp: Option<fs_err::File>,
    original: Arc<Vec<u8>>,
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
    target.with_file_name(temp_name_for(name))
}

fn temp_name_for(name: &str) -> String {
    format!("{name}.mailmig.tmp")
}

impl FileTransaction {
    /// Lock the file against other mailmig processes and read it.
    pub fn prepare(path: &Utf8Path) -> Result<Self, TransactionError> {
        let resolved = safe_fs::resolve(path)?;
        let target = resolved.path();
        match &resolved.meta {
            None => {
                return Err(TransactionError::Read {
                    path: target,
                    source: std::io::ErrorKind::NotFound.into(),
                })
            }
            Some(m) if !m.is_file() => return Err(TransactionError::NotAFile { path: target }),
            Some(_) => {}
        }
        let (dir, name) = (resolved.dir, resolved.name);
        let target_uid = resolved.meta.as_ref().map_or(0, MetadataExt::uid);
        let temp_name = temp_name_for(&name);
        let temp = lock_temp(&dir, &temp_name, target_uid)?;
        // Read under the lock: the bytes and the version they belong to.
        let read_err = |source| TransactionError::Read {
            path: target.clone(),
            source,
        };
        let file = dir.open_read(&name).map_err(|e| match e {
            SafeFsError::NotRegular { path, .. } => TransactionError::NotAFile { path },
            other => TransactionError::Unsafe(other),
        })?;
        let meta = Stamp::of(&file.metadata().map_err(read_err)?);
        let original = safe_fs::read_whole(&file, meta.size).map_err(read_err)?;
        Ok(Self {
            dir,
            name,
            temp_name,
            temp: Some(temp),
            original: Arc::new(original),
            meta,
        })
    }

    /// The file's bytes as read under the lock.
    pub fn original(&self) -> &[u8] {
        &self.original
    }

    /// The same bytes, shared: a document parsed from them (`PasswdFile::parse_shared`) holds
    /// no second copy of a large file.
    pub fn shared_original(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.original)
    }

    /// The real path of the file (symlinks resolved).
    pub fn path(&self) -> Utf8PathBuf {
        self.dir.path().join(&self.name)
    }

    fn temp_path(&self) -> Utf8PathBuf {
        self.dir.path().join(&self.temp_name)
    }

    /// Replace the file with `new`. Unchanged bytes are not rewritten.
    pub fn commit(
        self,
        new: &[u8],
        options: &CommitOptions,
    ) -> Result<CommitReport, TransactionError> {
        self.commit_with(|out| out.write_all(new), options)
    }

    /// Replace the file with `doc`'s bytes, streamed (see [`FileTransaction::commit_with`]).
    pub fn commit_document(
        self,
        doc: &impl Document,
        options: &CommitOptions,
    ) -> Result<CommitReport, TransactionError> {
        self.commit_with(|out| doc.write_document(out), options)
    }

    /// Replace the file with the bytes `write` writes, streamed into the temporary file instead
    /// of built in memory first. When they are the bytes read, nothing is written or renamed and
    /// the report says unchanged.
    pub fn commit_with(
        mut self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
        options: &CommitOptions,
    ) -> Result<CommitReport, TransactionError> {
        self.check_unchanged()?;
        let changed = self.fill_temp(write)?;
        self.check_unchanged()?;
        let mut report = CommitReport {
            path: self.path(),
            changed,
            backup: None,
            in_place: false,
        };
        if !changed {
            return Ok(report);
        }
        if options.backup {
            let backup = format!("{}.mailmig-{}", self.name, backup_suffix());
            self.dir.hard_link(&self.name, &backup)?;
            report.backup = Some(self.dir.path().join(backup));
        }
        // The name is checked once more right before the rename: still the file that was read.
        self.check_unchanged()?;
        match self.dir.rename(&self.temp_name, &self.name) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.io_kind(),
                    Some(std::io::ErrorKind::ResourceBusy | std::io::ErrorKind::CrossesDevices)
                ) =>
            {
                let SafeFsError::Io { source, .. } = e else {
                    return Err(e.into());
                };
                if !options.copy_in_place_fallback {
                    return Err(TransactionError::RenameImpossible {
                        path: self.path(),
                        source,
                    });
                }
                self.copy_in_place()?;
                report.in_place = true;
                // The temporary file is removed on drop.
                return Ok(report);
            }
            Err(e) => return Err(e.into()),
        }
        // The temporary name is gone: nothing to remove on drop; the lock goes with the handle.
        self.temp = None;
        self.dir.sync()?;
        Ok(report)
    }

    /// Rewrite the target in place with the temporary file's bytes (not atomic: the rename was
    /// impossible and the caller allowed it).
    fn copy_in_place(&mut self) -> Result<(), TransactionError> {
        let path = self.path();
        let write_err = |source| TransactionError::Write {
            path: path.clone(),
            source,
        };
        let mut f = self.dir.open_rw(&self.name)?;
        let temp = self.temp.as_mut().ok_or_else(|| TransactionError::Write {
            path: path.clone(),
            source: std::io::Error::other("transaction already finished"),
        })?;
        temp.rewind().map_err(write_err)?;
        f.set_len(0).map_err(write_err)?;
        std::io::copy(temp, &mut f).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        Ok(())
    }

    /// Write the new bytes into the temporary file, which this process created (mode 0600):
    /// only it is given the target's owner, group and mode (set-id bits dropped), once the
    /// bytes are known to differ from those read. Whether they differ; when they do not, the
    /// temporary file was neither written nor changed.
    fn fill_temp(
        &mut self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<bool, TransactionError> {
        let temp_path = self.temp_path();
        let write_err = |source| TransactionError::Write {
            path: temp_path.clone(),
            source,
        };
        let temp = self.temp.as_mut().ok_or_else(|| TransactionError::Write {
            path: temp_path.clone(),
            source: std::io::Error::other("transaction already finished"),
        })?;
        temp.set_len(0).map_err(write_err)?;
        temp.rewind().map_err(write_err)?;
        let mut out = Compare {
            out: std::io::BufWriter::with_capacity(1 << 20, &mut *temp),
            original: &self.original,
            written: 0,
            diverged: false,
        };
        write(&mut out).map_err(write_err)?;
        let changed = out.finish().map_err(write_err)?;
        drop(out);
        if !changed {
            return Ok(false);
        }
        give_target_stamp(temp, &temp_path, self.meta)?;
        temp.sync_all().map_err(write_err)?;
        Ok(true)
    }

    /// The target must still be the version that was read (and still a regular file: a name
    /// swapped for a link is a change).
    fn check_unchanged(&self) -> Result<(), TransactionError> {
        let changed = || TransactionError::Changed { path: self.path() };
        let now = match self.dir.lstat(&self.name) {
            Ok(Some(m)) if m.is_file() => m,
            _ => return Err(changed()),
        };
        let stamp = Stamp::of(&now);
        if stamp == self.meta {
            return Ok(());
        }
        // Metadata moved (a touch, a chmod): only different bytes are a conflict.
        let mut bytes = Vec::new();
        self.dir
            .open_read(&self.name)
            .ok()
            .and_then(|mut f| f.read_to_end(&mut bytes).ok())
            .ok_or_else(changed)?;
        if bytes == *self.original
            && (stamp.uid, stamp.gid, stamp.mode) == (self.meta.uid, self.meta.gid, self.meta.mode)
        {
            Ok(())
        } else {
            Err(changed())
        }
    }
}

/// Give the written temporary file the target's owner and group (first: chown may clear set-id
/// bits), then its exact mode without set-id bits, and an mtime second after the target's when
/// the clock is not past it yet.
fn give_target_stamp(
    temp: &fs_err::File,
    temp_path: &Utf8Path,
    target: Stamp,
) -> Result<(), TransactionError> {
    let mode = target.mode & 0o1777;
    let ownership = |source| TransactionError::Ownership {
        path: temp_path.to_owned(),
        uid: target.uid,
        gid: target.gid,
        mode,
        source,
    };
    std::os::unix::fs::fchown(temp.file(), Some(target.uid), Some(target.gid))
        .map_err(ownership)?;
    use std::os::unix::fs::PermissionsExt as _;
    temp.file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(ownership)?;
    // Dovecot re-reads a passwd-file when its mtime second or size differ from the version it
    // loaded last, checking at most once a second. A version written in the second of the one
    // it replaces is stamped one second after it — whatever its size: a size that comes back
    // within one second (a field added, then removed) would otherwise look like a version
    // Dovecot loaded in that second, and it would keep that version until the next change. So
    // every version's mtime second is later than the one before.
    let now_secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if now_secs <= target.mtime {
        let later = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(target.mtime + 1).unwrap_or(0));
        temp.file()
            .set_modified(later)
            .map_err(|source| TransactionError::Write {
                path: temp_path.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// A document a transaction writes: its bytes whole (for a diff) or streamed (for the commit).
/// `Table` and `PasswdFile` are documents.
pub trait Document {
    /// The document's bytes.
    fn render(&self) -> Vec<u8>;
    /// Write the document's bytes to `out`.
    fn write_document(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// A writer that writes nothing while the bytes are the original's: at the first difference it
/// writes the original's bytes so far, then passes everything on. Unchanged bytes are never
/// written to the temporary file.
struct Compare<'a, W: Write> {
    out: W,
    original: &'a [u8],
    /// Bytes given so far.
    written: usize,
    /// Whether they stopped being the original's (and the temporary file holds them).
    diverged: bool,
}

impl<W: Write> Compare<'_, W> {
    fn diverge(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.original[..self.written])?;
        self.diverged = true;
        Ok(())
    }

    /// Flush, and whether the bytes differ from the original's (a prefix of them does).
    fn finish(&mut self) -> std::io::Result<bool> {
        if !self.diverged && self.written != self.original.len() {
            self.diverge()?;
        }
        self.out.flush()?;
        Ok(self.diverged)
    }
}

impl<W: Write> Write for Compare<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.diverged {
            let end = self.written.saturating_add(buf.len());
            if self.original.get(self.written..end) == Some(buf) {
                self.written = end;
                return Ok(buf.len());
            }
            self.diverge()?;
        }
        self.out.write_all(buf)?;
        self.written = self.written.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.diverged {
            self.out.flush()?;
        }
        Ok(())
    }
}

impl Drop for FileTransaction {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // Still holding the lock: the temporary name is ours to remove — if it still names
            // our file (never remove what someone else put there).
            let ours = temp.metadata().ok();
            let named = self.dir.lstat(&self.temp_name).ok().flatten();
            if let (Some(a), Some(b)) = (ours, named) {
                if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                    let _ = self.dir.remove_file(&self.temp_name);
                }
            }
        }
    }
}

/// Create, lock and return the temporary file `temp` in `dir`: always a file this process
/// created. An existing one is another mailmig's (wait for its lock) or a leftover (taken
/// over, i.e. removed, only when it is a plain file of a trusted owner).
fn lock_temp(dir: &Dir, temp: &str, target_uid: u32) -> Result<fs_err::File, TransactionError> {
    let path = dir.path().join(temp);
    let temp_err = |source| TransactionError::Temp {
        path: path.clone(),
        source,
    };
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        if let Some(file) = dir.create_new(temp, 0o600).map_err(|e| match e {
            SafeFsError::Io { source, .. } => temp_err(source),
            other => TransactionError::Unsafe(other),
        })? {
            if try_lock_until(&file, deadline, &path)? && same_file(dir, temp, &file) {
                return Ok(file);
            }
            continue;
        }
        // The name exists: examine it without following anything.
        let Some(meta) = dir.lstat(temp)? else {
            continue;
        };
        let taken = TakenTemp {
            regular: meta.file_type().is_file(),
            links: meta.nlink(),
            owner: meta.uid(),
        };
        match taken.judge(target_uid) {
            Judgement::Examine => {}
            Judgement::LookAgain => continue,
            Judgement::Refuse(reason) => {
                return Err(TransactionError::Unsafe(SafeFsError::Unsafe {
                    path: path.clone(),
                    reason,
                }))
            }
        }
        let existing = match dir.open_rw(temp) {
            Ok(f) => f,
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => continue,
            Err(e) => return Err(e.into()),
        };
        if !try_lock_until(&existing, deadline, &path)? {
            continue;
        }
        if same_file(dir, temp, &existing) {
            // Locked by nobody and still named: a leftover of a killed process. Remove it
            // under its lock and create a fresh one.
            dir.remove_file(temp)?;
        }
    }
}

/// What `lstat` told of a temporary name found taken.
struct TakenTemp {
    regular: bool,
    links: u64,
    owner: u32,
}

/// What to do about a taken temporary name.
#[derive(Debug, PartialEq, Eq)]
enum Judgement {
    /// Another writer's or a leftover: open it and take its lock.
    Examine,
    /// The name is being removed as it was looked at (no link left): look again.
    LookAgain,
    /// Not something mailmig made: refuse, saying why.
    Refuse(String),
}

impl TakenTemp {
    fn judge(&self, target_uid: u32) -> Judgement {
        if !self.regular {
            return Judgement::Refuse(
                "exists and is not a regular file (a symbolic link or worse)".into(),
            );
        }
        if self.links == 0 {
            // A writer removing a leftover under its lock, seen between the name's lookup
            // and the unlink's end: nothing to refuse.
            return Judgement::LookAgain;
        }
        if self.links != 1 {
            return Judgement::Refuse(format!(
                "exists with {} hard links (it may be another file's name)",
                self.links
            ));
        }
        if !safe_fs::trusted_owner(self.owner) && self.owner != target_uid {
            return Judgement::Refuse(format!(
                "exists and is owned by uid {}, neither root, mailmig's user nor the owner of the file it would replace",
                self.owner
            ));
        }
        Judgement::Examine
    }
}

/// Take the flock, polling until `deadline`. `Ok(false)`: never (the caller starts again).
fn try_lock_until(
    file: &fs_err::File,
    deadline: Instant,
    path: &Utf8Path,
) -> Result<bool, TransactionError> {
    loop {
        match file.file().try_lock() {
            Ok(()) => return Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => {
                if Instant::now() > deadline {
                    return Err(TransactionError::Locked {
                        path: path.to_owned(),
                        seconds: LOCK_WAIT.as_secs(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(TransactionError::Temp {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Whether `name` in `dir` still names the open `file`.
fn same_file(dir: &Dir, name: &str, file: &fs_err::File) -> bool {
    match (file.metadata(), dir.lstat(name)) {
        (Ok(a), Ok(Some(b))) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
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

    /// CI find (concurrent_writers_lose_no_update, three writers): one writer removed a
    /// leftover-looking temporary name under its lock while another looked at the name, saw
    /// no link left, and refused the file as "exists with 0 hard links". A name with no link
    /// left is going away: look again. Two links or more are still refused.
    #[test]
    fn a_temporary_name_being_removed_is_looked_at_again() {
        let taken = |regular, links, owner| TakenTemp {
            regular,
            links,
            owner,
        };
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(taken(true, 0, me).judge(me), Judgement::LookAgain);
        assert_eq!(taken(true, 1, me).judge(me), Judgement::Examine);
        assert!(matches!(
            taken(true, 2, me).judge(me),
            Judgement::Refuse(r) if r.contains("2 hard links")
        ));
        assert!(matches!(
            taken(false, 1, me).judge(me),
            Judgement::Refuse(_)
        ));
        assert!(matches!(
            taken(true, 1, 4242).judge(4343),
            Judgement::Refuse(r) if r.contains("uid 4242")
        ));
        assert_eq!(taken(true, 1, 4242).judge(4242), Judgement::Examine);
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

    /// A streamed commit writes what the writer gives, in pieces; bytes equal to the original
    /// (however they were cut) replace nothing, and a prefix or an extension of the original is
    /// a change.
    #[test]
    fn a_streamed_commit_tells_unchanged_bytes_from_a_prefix_or_an_extension() {
        let (_d, p) = dir();
        let f = p.join("users");
        fs_err::write(&f, b"alice:x\nbob:y\n").expect("write");
        let ino = |f: &Utf8Path| fs_err::metadata(f).expect("stat").ino();
        let before = ino(&f);
        let pieces = |parts: &'static [&'static [u8]]| {
            move |out: &mut dyn Write| parts.iter().try_for_each(|p| out.write_all(p))
        };
        let tx = FileTransaction::prepare(&f).expect("prepare");
        let r = tx
            .commit_with(
                pieces(&[b"alice:", b"x\nbob", b":y\n"]),
                &CommitOptions::default(),
            )
            .expect("commit");
        assert!(!r.changed);
        assert_eq!(ino(&f), before, "an unchanged file is not replaced");
        assert!(!temp_path_for(&f).exists());
        for (parts, expected) in [
            (&[&b"alice:x\n"[..]][..], &b"alice:x\n"[..]),
            (
                &[&b"alice:x\n"[..], b"bob:y\n", b"carol:z\n"][..],
                b"alice:x\nbob:y\ncarol:z\n",
            ),
            (&[&b"alice:x\nbob:Y\n"[..]][..], b"alice:x\nbob:Y\n"),
        ] {
            fs_err::write(&f, b"alice:x\nbob:y\n").expect("write");
            let tx = FileTransaction::prepare(&f).expect("prepare");
            let r = tx
                .commit_with(
                    |out| parts.iter().try_for_each(|p| out.write_all(p)),
                    &CommitOptions::default(),
                )
                .expect("commit");
            assert!(r.changed, "{expected:?}");
            assert_eq!(fs_err::read(&f).expect("read"), expected);
            assert!(!temp_path_for(&f).exists());
        }
        // A writer that fails leaves the target as it was.
        let tx = FileTransaction::prepare(&f).expect("prepare");
        let failed = tx.commit_with(
            |out| {
                out.write_all(b"half")?;
                Err(std::io::Error::other("the document could not be written"))
            },
            &CommitOptions::default(),
        );
        assert!(matches!(failed, Err(TransactionError::Write { .. })));
        assert_eq!(fs_err::read(&f).expect("read"), b"alice:x\nbob:Y\n");
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

    /// Regression: three versions within one second, the third of the first's size. Dovecot,
    /// having loaded the first in that second, compares (mtime second, size) and would take the
    /// third for the first — it kept a lock-out or a switch out of sight for 5 s and more (seen
    /// in the downtime harness, overlay mode, four jobs: runs ended "needs admin").
    #[test]
    fn no_two_versions_written_in_one_second_share_their_stamp() {
        let (_d, p) = dir();
        let f = p.join("users");
        let stamp = |f: &Utf8Path| {
            let m = fs_err::metadata(f).expect("meta");
            (m.mtime(), m.size())
        };
        fs_err::write(&f, b"u:x::quota=1G\n").expect("write");
        let mut seen = vec![stamp(&f)];
        for new in [
            &b"u:x::quota=10G\n"[..],
            b"u:x::quota=2G\n",
            b"u:x::quota=20G\n",
        ] {
            let tx = FileTransaction::prepare(&f).expect("prepare");
            tx.commit(new, &CommitOptions::default()).expect("commit");
            let now = stamp(&f);
            assert!(!seen.contains(&now), "{now:?} repeats one of {seen:?}");
            assert!(
                now.0 > seen.last().expect("a version").0,
                "the mtime second moves on"
            );
            seen.push(now);
        }
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

    /// An error's Display does not repeat its source; `display_chain` shows both once.
    #[test]
    fn errors_show_their_cause_once() {
        let e = TransactionError::Write {
            path: "/x".into(),
            source: std::io::Error::other("disk on fire"),
        };
        assert!(!e.to_string().contains("disk on fire"), "{e}");
        let wrapped = crate::migrate::StepError::from(e);
        assert_eq!(
            crate::display_chain(&wrapped),
            "cannot write `/x`: disk on fire"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
    }
}
