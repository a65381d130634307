//! Opening files as root in directories other accounts may write, without being tricked.
//!
//! mailmig runs as root and writes into directories that are often writable by others (a
//! vmail-owned tree of passwd-files, a map directory delegated to a mail admin). Every path it
//! writes through is resolved here, one component at a time, relative to directory handles:
//!
//! - a symbolic link is followed only when it belongs to root or to the invoking user (an
//!   administrator made it); a link owned by anyone else is refused with
//!   [`SafeFsError::UntrustedLink`], naming it and its owner;
//! - every directory is opened with `O_NOFOLLOW | O_DIRECTORY`, so a component swapped for a link
//!   between two checks makes the open fail instead of leading elsewhere; everything after that
//!   is done relative to the opened directory (`openat`, `renameat`, `linkat`, `unlinkat`), so a
//!   later swap of a parent directory cannot redirect it either;
//! - files are opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a FIFO planted under a file's name
//!   cannot block), new files with `O_CREAT | O_EXCL` and an exact mode: mailmig changes the
//!   owner or mode only of files it has just created itself.
//!
//! [`read_regular`] is the one way input files are read: regular files only (a FIFO, a device or
//! `/dev/zero` is refused instead of blocking forever or filling memory).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt as _;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use rustix::fs::{AtFlags, Mode, OFlags};

mod read;
mod tree;
pub(crate) use read::read_whole;
pub use tree::{measure, FsSpace, Measured, TreeUsage, MAX_DEPTH};

/// How many symbolic links one resolution may follow (as the kernel's `ELOOP` limit).
const MAX_LINKS: usize = 40;

/// Why a path could not be used safely.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafeFsError {
    /// A symbolic link on the way belongs to someone other than root or the invoking user.
    #[error("`{path}` is a symbolic link owned by uid {owner}; mailmig follows only links owned by root or by itself (replace it by the real path)")]
    UntrustedLink {
        /// The link.
        path: Utf8PathBuf,
        /// Its owner.
        owner: u32,
    },
    /// Too many links, or a link that does not lead to a usable path.
    #[error("`{path}`: {reason}")]
    BadLink {
        /// The link.
        path: Utf8PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// The file is not a regular file (a directory, FIFO, device or socket).
    #[error("`{path}` is not a regular file ({kind})")]
    NotRegular {
        /// The file.
        path: Utf8PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A file or directory is not what mailmig may take over.
    #[error("`{path}` {reason}; mailmig leaves it alone (remove it if it is not yours)")]
    Unsafe {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        reason: String,
    },
    /// An operating-system error on a path.
    #[error("`{path}`")]
    Io {
        /// The path.
        path: Utf8PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl SafeFsError {
    /// The I/O error kind, when this is an I/O error.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

fn io_at(path: &Utf8Path) -> impl FnOnce(rustix::io::Errno) -> SafeFsError + '_ {
    move |e| SafeFsError::Io {
        path: path.to_owned(),
        source: e.into(),
    }
}

/// An `openat` result as a file that names its path in errors. The one place a raw descriptor
/// becomes a file: `fs_err::File` has no constructor from a descriptor of its own.
#[allow(clippy::disallowed_types)]
fn file_from(fd: OwnedFd, path: &Utf8Path) -> fs_err::File {
    fs_err::File::from_parts(std::fs::File::from(fd), path)
}

/// Whether a link or file owned by `uid` was made by an administrator (root or us).
pub fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// The invoking user's effective uid.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// What kind of file a mode is, for messages.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "a regular file"
    }
}

/// A directory opened without following an untrusted link. Everything done through it is
/// relative to the opened directory, whatever happens to its path afterwards.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: Utf8PathBuf,
}

/// A path resolved to its directory and final name.
#[derive(Debug)]
pub struct Resolved {
    /// The directory that holds the final name.
    pub dir: Dir,
    /// The final name (never `.`, `..` or containing `/`).
    pub name: String,
    /// What the final name is now, not following a link (`None`: it does not exist).
    pub meta: Option<std::fs::Metadata>,
}

impl Resolved {
    /// The resolved path (no symbolic link in it).
    pub fn path(&self) -> Utf8PathBuf {
        self.dir.path.join(&self.name)
    }
}

fn open_dir_at<P: rustix::path::Arg>(
    fd: BorrowedFd<'_>,
    name: P,
    path: &Utf8Path,
) -> Result<OwnedFd, SafeFsError> {
    rustix::fs::openat(
        fd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            SafeFsError::BadLink {
                path: path.to_owned(),
                reason: "became a symbolic link while mailmig resolved it",
            }
        } else {
            io_at(path)(e)
        }
    })
}

/// Metadata of `name` in `dir`, not following a link; `None` when it does not exist.
fn lstat_at(
    fd: BorrowedFd<'_>,
    name: &str,
    path: &Utf8Path,
) -> Result<Option<std::fs::Metadata>, SafeFsError> {
    match rustix::fs::openat(
        fd,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(h) => file_from(h, path)
            .metadata()
            .map(Some)
            .map_err(|source| SafeFsError::Io {
                path: path.to_owned(),
                source,
            }),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Resolve `path` to the directory holding its last component and that component's name,
/// following only trusted links (the last component too, when it is one).
pub fn resolve(path: &Utf8Path) -> Result<Resolved, SafeFsError> {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        let cwd = std::env::current_dir().map_err(|source| SafeFsError::Io {
            path: path.to_owned(),
            source,
        })?;
        let cwd = Utf8PathBuf::try_from(cwd).map_err(|e| SafeFsError::Io {
            path: path.to_owned(),
            source: e.into_io_error(),
        })?;
        cwd.join(path)
    };
    let mut queue: std::collections::VecDeque<String> = components(&absolute);
    let root = Utf8PathBuf::from("/");
    let mut dir = Dir::root()?;
    let mut links = 0;
    let mut last: Option<(String, Option<std::fs::Metadata>)> = None;
    while let Some(c) = queue.pop_front() {
        if let Some((name, _)) = last.take() {
            // The previous component was not the last one: it must be a directory.
            let here = dir.path.join(&name);
            let fd = open_dir_at(dir.fd.as_fd(), &name, &here)?;
            dir = Dir { fd, path: here };
        }
        if c == ".." {
            let parent = dir.path.parent().map_or(root.clone(), Utf8Path::to_owned);
            let fd = open_dir_at(dir.fd.as_fd(), "..", &parent)?;
            dir = Dir { fd, path: parent };
            continue;
        }
        let here = dir.path.join(&c);
        let meta = lstat_at(dir.fd.as_fd(), &c, &here)?;
        match &meta {
            Some(m) if m.file_type().is_symlink() => {
                if !trusted_owner(m.uid()) {
                    return Err(SafeFsError::UntrustedLink {
                        path: here,
                        owner: m.uid(),
                    });
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(SafeFsError::BadLink {
                        path: here,
                        reason: "too many levels of symbolic links",
                    });
                }
                let target = rustix::fs::readlinkat(dir.fd.as_fd(), c.as_str(), Vec::new())
                    .map_err(io_at(&here))?;
                let target =
                    String::from_utf8(target.into_bytes()).map_err(|_| SafeFsError::BadLink {
                        path: here.clone(),
                        reason: "its target is not UTF-8",
                    })?;
                let target = Utf8PathBuf::from(target);
                if target.is_absolute() {
                    dir = Dir::root()?;
                }
                for (i, t) in components(&target).into_iter().enumerate() {
                    queue.insert(i, t);
                }
            }
            _ => last = Some((c, meta)),
        }
    }
    match last {
        Some((name, meta)) => Ok(Resolved { dir, name, meta }),
        None => Err(SafeFsError::Unsafe {
            path: absolute,
            reason: "does not name a file".into(),
        }),
    }
}

/// The normal components of a path, `..` kept, `.` and the root dropped.
fn components(path: &Utf8Path) -> std::collections::VecDeque<String> {
    path.components()
        .filter_map(|c| match c {
            Utf8Component::Normal(n) => Some(n.to_string()),
            Utf8Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// Read a whole input file: regular files only, following links (a read is not an attack on
/// the target of a link). A FIFO, socket or device is refused before anything is read.
pub fn read_regular(path: &Utf8Path) -> Result<Vec<u8>, SafeFsError> {
    let file = open_regular(path)?;
    let len = file.metadata().map_or(0, |m| m.len());
    read::read_whole(&file, len).map_err(|source| SafeFsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Open an input file for reading as [`read_regular`] does (regular files only, links
/// followed), for readers that stream it.
pub fn open_regular(path: &Utf8Path) -> Result<fs_err::File, SafeFsError> {
    let fd = rustix::fs::open(
        path.as_str(),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(io_at(path))?;
    let file = file_from(fd, path);
    let meta = file.metadata().map_err(|source| SafeFsError::Io {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(SafeFsError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(&meta),
        });
    }
    Ok(file)
}

impl Dir {
    /// The root directory.
    pub fn root() -> Result<Self, SafeFsError> {
        let path = Utf8PathBuf::from("/");
        let fd = rustix::fs::open(
            "/",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_at(&path))?;
        Ok(Self { fd, path })
    }

    /// The path this directory was opened at.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// The directory's own metadata.
    pub fn metadata(&self) -> Result<std::fs::Metadata, SafeFsError> {
        let fd = self.fd.try_clone().map_err(|source| SafeFsError::Io {
            path: self.path.clone(),
            source,
        })?;
        file_from(fd, &self.path)
            .metadata()
            .map_err(|source| SafeFsError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Open the subdirectory `name` (never a link).
    pub fn open_subdir(&self, name: &str) -> Result<Dir, SafeFsError> {
        let path = self.path.join(name);
        let fd = open_dir_at(self.fd.as_fd(), name, &path)?;
        Ok(Dir { fd, path })
    }

    /// Create the subdirectory `name` with `mode` (exactly, whatever the umask), or open it
    /// when it exists. Returns the directory and whether it was created.
    pub fn create_subdir(&self, name: &str, mode: u32) -> Result<(Dir, bool), SafeFsError> {
        let path = self.path.join(name);
        match rustix::fs::mkdirat(self.fd.as_fd(), name, Mode::from_raw_mode(mode)) {
            Ok(()) => {
                let d = self.open_subdir(name)?;
                // Ours: give it exactly the mode asked for (the umask may have removed bits).
                rustix::fs::fchmod(d.fd.as_fd(), Mode::from_raw_mode(mode))
                    .map_err(io_at(&path))?;
                Ok((d, true))
            }
            Err(rustix::io::Errno::EXIST) => Ok((self.open_subdir(name)?, false)),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Metadata of `name`, not following a link; `None` when absent.
    pub fn lstat(&self, name: &str) -> Result<Option<std::fs::Metadata>, SafeFsError> {
        lstat_at(self.fd.as_fd(), name, &self.path.join(name))
    }

    fn open_flags(&self, name: &str, flags: OFlags) -> Result<fs_err::File, SafeFsError> {
        let path = self.path.join(name);
        let fd = rustix::fs::openat(
            self.fd.as_fd(),
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| {
            if e == rustix::io::Errno::LOOP {
                SafeFsError::Unsafe {
                    path: path.clone(),
                    reason: "is a symbolic link".into(),
                }
            } else {
                io_at(&path)(e)
            }
        })?;
        let file = file_from(fd, &path);
        let meta = file.metadata().map_err(|source| SafeFsError::Io {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(SafeFsError::NotRegular {
                path,
                kind: kind_of(&meta),
            });
        }
        // Back to blocking I/O for regular files (O_NONBLOCK only guarded the open).
        let flags = rustix::fs::fcntl_getfl(file.file()).map_err(io_at(&path))?;
        rustix::fs::fcntl_setfl(file.file(), flags - OFlags::NONBLOCK).map_err(io_at(&path))?;
        Ok(file)
    }

    /// Open the regular file `name` for reading (never through a link).
    pub fn open_read(&self, name: &str) -> Result<fs_err::File, SafeFsError> {
        self.open_flags(name, OFlags::RDONLY)
    }

    /// Open the existing regular file `name` for reading and writing (never through a link).
    pub fn open_rw(&self, name: &str) -> Result<fs_err::File, SafeFsError> {
        self.open_flags(name, OFlags::RDWR)
    }

    /// Open the existing regular file `name` for appending (never through a link).
    pub fn open_append(&self, name: &str) -> Result<fs_err::File, SafeFsError> {
        self.open_flags(name, OFlags::WRONLY | OFlags::APPEND)
    }

    /// Create the new file `name` (`O_EXCL`: an existing name, link or not, is an error) with
    /// exactly `mode`. `Ok(None)` when the name exists.
    pub fn create_new(&self, name: &str, mode: u32) -> Result<Option<fs_err::File>, SafeFsError> {
        let path = self.path.join(name);
        let fd = match rustix::fs::openat(
            self.fd.as_fd(),
            name,
            OFlags::RDWR
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC
                | OFlags::NOCTTY,
            Mode::from_raw_mode(mode),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::EXIST) => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        // Ours: exactly the mode asked for, whatever the umask.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_at(&path))?;
        Ok(Some(file_from(fd, &path)))
    }

    /// Rename `from` to `to`, both in this directory (links are renamed, never followed).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), SafeFsError> {
        rustix::fs::renameat(self.fd.as_fd(), from, self.fd.as_fd(), to)
            .map_err(io_at(&self.path.join(to)))
    }

    /// Rename `from` in this directory to `to` in this directory, failing when `to` exists.
    pub fn rename_noreplace(&self, from: &str, to: &str) -> Result<(), SafeFsError> {
        rustix::fs::renameat_with(
            self.fd.as_fd(),
            from,
            self.fd.as_fd(),
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(io_at(&self.path.join(to)))
    }

    /// Make `to` a new hard link to `from` (a link named `from` is linked itself, not its
    /// target).
    pub fn hard_link(&self, from: &str, to: &str) -> Result<(), SafeFsError> {
        rustix::fs::linkat(self.fd.as_fd(), from, self.fd.as_fd(), to, AtFlags::empty())
            .map_err(io_at(&self.path.join(to)))
    }

    /// Remove the name `name` (a file or a link, never what a link points to). Absent: `Ok`.
    pub fn remove_file(&self, name: &str) -> Result<(), SafeFsError> {
        match rustix::fs::unlinkat(self.fd.as_fd(), name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(io_at(&self.path.join(name))(e)),
        }
    }

    /// The names in this directory (`.` and `..` left out), sorted.
    pub fn names(&self) -> Result<Vec<String>, SafeFsError> {
        let fd = rustix::fs::openat(
            self.fd.as_fd(),
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_at(&self.path))?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd).map_err(io_at(&self.path))? {
            let entry = entry.map_err(io_at(&self.path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// `fsync` the directory (after a rename or a new name in it).
    pub fn sync(&self) -> Result<(), SafeFsError> {
        rustix::fs::fsync(self.fd.as_fd()).map_err(io_at(&self.path))
    }

    /// Write `bytes` to `name` whole or not at all: a new temporary file (mode `mode`, created
    /// by us), fsynced, renamed over `name`, the directory fsynced. A reader sees the old
    /// content or the new, never a part; a crash leaves at most a temporary file.
    pub fn write_atomic(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), SafeFsError> {
        use std::io::Write as _;
        let temp = format!(".{name}.mailmig-new-{}", std::process::id());
        // A leftover of an earlier process with the same pid is a name we may remove: it is in
        // a directory mailmig owns (state) or it is our own naming scheme (checked on take-over).
        self.remove_file(&temp)?;
        let mut file = self
            .create_new(&temp, mode)?
            .ok_or_else(|| SafeFsError::Unsafe {
                path: self.path.join(&temp),
                reason: "appeared while mailmig was writing".into(),
            })?;
        let result = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| SafeFsError::Io {
                path: self.path.join(&temp),
                source,
            })
            .and_then(|()| self.rename(&temp, name))
            .and_then(|()| self.sync());
        if result.is_err() {
            let _ = self.remove_file(&temp);
        }
        result
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
