//! Whole directory trees, handled through directory handles: measured (the disk-space guard)
//! and removed (`mailmig cleanup`) without ever following a link, leaving the file system the
//! tree started on, or being redirected by a directory renamed meanwhile.

use std::os::fd::{AsFd as _, BorrowedFd};

use camino::{Utf8Path, Utf8PathBuf};
use rustix::fs::{AtFlags, FileType};

use super::{io_at, open_dir_at, Dir, SafeFsError};

/// The deepest tree mailmig walks: mail stores are a few levels deep; a deeper tree is refused
/// before anything is removed (each level holds a directory handle).
pub const MAX_DEPTH: usize = 128;

/// What a tree holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeUsage {
    /// Bytes allocated on disk (`st_blocks` × 512), directories included.
    pub bytes: u64,
    /// Files that are not directories (links and special files counted, never followed).
    pub files: u64,
    /// Directories, the top one included.
    pub dirs: u64,
}

impl TreeUsage {
    /// Add another tree's figures to these.
    pub fn add(&mut self, other: TreeUsage) {
        self.bytes += other.bytes;
        self.files += other.files;
        self.dirs += other.dirs;
    }
}

/// A file system's size and free space (`fstatvfs`), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FsSpace {
    /// The whole file system.
    pub size: u64,
    /// Free for unprivileged processes (`f_bavail`): what a doveadm running as the mail user
    /// may fill.
    pub available: u64,
}

fn entries(fd: BorrowedFd<'_>, path: &Utf8Path) -> Result<Vec<std::ffi::CString>, SafeFsError> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(fd).map_err(io_at(path))? {
        let entry = entry.map_err(io_at(path))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Walk the tree under the directory `fd` (at `path`, on device `dev`), calling `leave` on
/// each entry after its subtree: `remove` unlinks as it goes.
fn walk(
    fd: BorrowedFd<'_>,
    path: &Utf8Path,
    dev: u64,
    depth: usize,
    remove: bool,
) -> Result<TreeUsage, SafeFsError> {
    if depth > MAX_DEPTH {
        return Err(SafeFsError::Unsafe {
            path: path.to_owned(),
            reason: format!("is more than {MAX_DEPTH} directories deep"),
        });
    }
    let mut usage = TreeUsage::default();
    for name in entries(fd, path)? {
        let child = path.join(name.to_string_lossy().as_ref());
        let Some(st) = stat_entry(fd, &name, &child, remove)? else {
            continue;
        };
        let bytes = u64::try_from(st.st_blocks).unwrap_or(0) * 512;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if st.st_dev != dev {
                return Err(SafeFsError::Unsafe {
                    path: child,
                    reason: "is another file system mounted inside the tree".into(),
                });
            }
            let sub = match open_dir_at(fd, name.as_c_str(), &child) {
                Ok(sub) => sub,
                Err(e) if !remove && e.io_kind() == Some(std::io::ErrorKind::NotFound) => continue,
                Err(e) => return Err(e),
            };
            usage.add(walk(sub.as_fd(), &child, dev, depth + 1, remove)?);
            usage.bytes += bytes;
            usage.dirs += 1;
            if remove {
                rustix::fs::unlinkat(fd, name.as_c_str(), AtFlags::REMOVEDIR)
                    .map_err(io_at(&child))?;
            }
        } else {
            usage.bytes += bytes;
            usage.files += 1;
            if remove {
                rustix::fs::unlinkat(fd, name.as_c_str(), AtFlags::empty())
                    .map_err(io_at(&child))?;
            }
        }
    }
    Ok(usage)
}

/// An entry's status, not following a link. `None` when measuring (not `remove`) and the entry
/// is gone since its directory was read: a live mailbox's files come and go (Dovecot's
/// `dovecot.index.tmp`, maildir's `tmp/`), and what is gone holds nothing.
fn stat_entry(
    fd: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    child: &Utf8Path,
    remove: bool,
) -> Result<Option<rustix::fs::Stat>, SafeFsError> {
    match rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) if !remove => Ok(None),
        Err(e) => Err(io_at(child)(e)),
    }
}

/// What a path holds, and where it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// The path, resolved (no symbolic link in it).
    pub path: Utf8PathBuf,
    /// A directory's tree ([`Dir::tree_usage`]), or a single file (an mbox).
    pub usage: TreeUsage,
}

/// Measure what `path` holds without following an untrusted link; `None` when it does not
/// exist.
pub fn measure(path: &Utf8Path) -> Result<Option<Measured>, SafeFsError> {
    let r = super::resolve(path)?;
    let usage = match &r.meta {
        None => return Ok(None),
        Some(m) if m.is_dir() => r.dir.tree_usage(&r.name)?,
        Some(m) => {
            use std::os::unix::fs::MetadataExt as _;
            TreeUsage {
                bytes: m.blocks() * 512,
                files: 1,
                dirs: 0,
            }
        }
    };
    Ok(Some(Measured {
        path: r.path(),
        usage,
    }))
}

impl Dir {
    /// The file system this directory is on: size and space free for unprivileged writers.
    pub fn space(&self) -> Result<FsSpace, SafeFsError> {
        let v = rustix::fs::fstatvfs(self.fd.as_fd()).map_err(io_at(&self.path))?;
        Ok(FsSpace {
            size: v.f_blocks.saturating_mul(v.f_frsize),
            available: v.f_bavail.saturating_mul(v.f_frsize),
        })
    }

    /// What the subdirectory `name` holds, walked without following links; a file system
    /// mounted inside it, or a tree deeper than [`MAX_DEPTH`], is an error.
    pub fn tree_usage(&self, name: &str) -> Result<TreeUsage, SafeFsError> {
        self.tree(name, false)
    }

    /// Remove the subdirectory `name` and everything in it, through directory handles (never
    /// following a link: a link inside is removed itself). The tree is measured first, so a
    /// tree that cannot be walked whole is refused before anything is removed. Returns what
    /// was removed.
    pub fn remove_tree(&self, name: &str) -> Result<TreeUsage, SafeFsError> {
        self.tree(name, false)?;
        let usage = self.tree(name, true)?;
        rustix::fs::unlinkat(self.fd.as_fd(), name, AtFlags::REMOVEDIR)
            .map_err(io_at(&self.path.join(name)))?;
        self.sync()?;
        Ok(usage)
    }

    fn tree(&self, name: &str, remove: bool) -> Result<TreeUsage, SafeFsError> {
        let path: Utf8PathBuf = self.path.join(name);
        let top = self.open_subdir(name)?;
        let st = rustix::fs::fstat(top.fd.as_fd()).map_err(io_at(&path))?;
        let mut usage = walk(top.fd.as_fd(), &path, st.st_dev, 1, remove)?;
        usage.bytes += u64::try_from(st.st_blocks).unwrap_or(0) * 512;
        usage.dirs += 1;
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = Utf8Path::from_path(tmp.path()).expect("utf-8").to_owned();
        fs_err::create_dir_all(base.join("store/cur/sub")).expect("mkdir");
        fs_err::write(base.join("store/cur/1"), vec![b'x'; 10_000]).expect("write");
        fs_err::write(base.join("store/cur/sub/2"), b"y").expect("write");
        fs_err::create_dir_all(base.join("outside")).expect("mkdir");
        fs_err::write(base.join("outside/keep"), b"keep").expect("write");
        std::os::unix::fs::symlink(base.join("outside"), base.join("store/link")).expect("link");
        std::os::unix::fs::symlink(base.join("outside/keep"), base.join("store/cur/flink"))
            .expect("link");
        let dir = super::super::resolve(&base.join("x")).expect("resolve").dir;
        (tmp, dir)
    }

    #[test]
    fn usage_counts_files_and_directories_without_following_links() {
        let (_tmp, dir) = tree();
        let u = dir.tree_usage("store").expect("usage");
        // 1, 2 and the two links; store, cur, sub.
        assert_eq!((u.files, u.dirs), (4, 3));
        assert!(u.bytes >= 10_000, "{u:?}");
    }

    /// Regression: the disk-space estimate of a live maildir failed when Dovecot removed
    /// `dovecot.index.tmp` between reading the directory and looking at the file.
    #[test]
    fn an_entry_gone_since_the_directory_was_read_holds_nothing() {
        let (_tmp, dir) = tree();
        let store = dir.open_subdir("store").expect("store");
        let gone = c"dovecot.index.tmp";
        let path = store.path.join("dovecot.index.tmp");
        let measured = stat_entry(store.fd.as_fd(), gone, &path, false).expect("measuring");
        assert!(measured.is_none());
        // Removing is strict: what it was asked to remove is not silently skipped.
        assert!(stat_entry(store.fd.as_fd(), gone, &path, true).is_err());
        let here = stat_entry(store.fd.as_fd(), c"cur", &store.path.join("cur"), false);
        assert!(matches!(here, Ok(Some(_))));
    }

    #[test]
    fn remove_tree_removes_links_never_their_targets() {
        let (_tmp, dir) = tree();
        let u = dir.remove_tree("store").expect("remove");
        assert_eq!((u.files, u.dirs), (4, 3));
        assert!(dir.lstat("store").expect("lstat").is_none());
        let keep = dir.open_subdir("outside").expect("outside");
        assert_eq!(keep.names().expect("names"), vec!["keep".to_string()]);
    }

    #[test]
    fn a_link_as_the_top_of_the_tree_is_refused() {
        let (_tmp, dir) = tree();
        std::os::unix::fs::symlink(dir.path().join("outside"), dir.path().join("top"))
            .expect("link");
        assert!(dir.remove_tree("top").is_err());
        assert_eq!(
            dir.open_subdir("outside")
                .expect("outside")
                .names()
                .expect("n")
                .len(),
            1
        );
    }

    #[test]
    fn the_file_system_reports_space() {
        let (_tmp, dir) = tree();
        let s = dir.space().expect("statvfs");
        assert!(s.size >= s.available && s.size > 0, "{s:?}");
    }
}
