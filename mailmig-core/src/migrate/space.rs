//! The disk-space guard: before a user's copy starts, the space the target needs is estimated
//! from the source's size on disk and checked against the free space of the target's file
//! system, keeping a reserve free ([`MinFree`]). A full mail file system stops every user's
//! deliveries, so a user that does not fit is refused and a batch starts no one after them.

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::{Location, PreparedRun};
use crate::safe_fs::{self, FsSpace, SafeFsError, TreeUsage};

/// Extra room on top of the source's size: index files rebuilt by the target format (10 %),
/// plus a fixed 4 MiB for a user's index and control files.
const MARGIN_PERCENT: u64 = 10;
const MARGIN_FIXED: u64 = 4 << 20;

/// How much must stay free on the target's file system after the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MinFree {
    /// A percentage of the file system's size (0–100).
    Percent(u8),
    /// A number of bytes.
    Bytes(u64),
}

impl Default for MinFree {
    /// 5 % of the file system, as ext4 reserves for root by default.
    fn default() -> Self {
        Self::Percent(5)
    }
}

/// A `--min-free` value that is neither `N%` nor a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is neither a percentage (5%) nor a size (10GiB, 500MB, 1048576)")]
pub struct BadMinFree {
    /// What was given.
    pub text: String,
}

impl std::str::FromStr for MinFree {
    type Err = BadMinFree;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMinFree {
            text: s.to_string(),
        };
        if let Some(p) = s.trim().strip_suffix('%') {
            return match p.trim().parse::<u8>() {
                Ok(n) if n <= 100 => Ok(Self::Percent(n)),
                _ => Err(bad()),
            };
        }
        s.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| Self::Bytes(b.as_u64()))
            .map_err(|_| bad())
    }
}

impl TryFrom<String> for MinFree {
    type Error = BadMinFree;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MinFree> for String {
    fn from(m: MinFree) -> String {
        m.to_string()
    }
}

impl std::fmt::Display for MinFree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Percent(n) => write!(f, "{n}%"),
            Self::Bytes(b) => write!(f, "{}", bytes(*b)),
        }
    }
}

impl MinFree {
    /// The bytes to keep free on a file system of `size` bytes.
    pub fn bytes_of(self, size: u64) -> u64 {
        match self {
            Self::Percent(p) => size / 100 * u64::from(p),
            Self::Bytes(b) => b,
        }
    }
}

/// A size for people (IEC units).
pub fn bytes(b: u64) -> String {
    bytesize::ByteSize::b(b).display().iec().to_string()
}

/// What a user's copy needs and what the target's file system has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceEstimate {
    /// The source's storage, measured on disk.
    pub source: TreeUsage,
    /// The estimate of what the target takes: the source plus 10 % and 4 MiB.
    pub needed: u64,
    /// The existing directory whose file system was checked (the target or its nearest
    /// existing parent).
    pub filesystem: Utf8PathBuf,
    /// That file system's size and free space.
    pub space: FsSpace,
    /// What must stay free.
    pub min_free: MinFree,
    /// [`Self::min_free`] in bytes.
    pub reserve: u64,
}

impl SpaceEstimate {
    /// The copy would leave less than the reserve free.
    pub fn is_short(&self) -> bool {
        self.space.available < self.needed.saturating_add(self.reserve)
    }

    /// One line for plans and refusals.
    pub fn render(&self) -> String {
        format!(
            "needs about {} ({} files, {} on disk, + {MARGIN_PERCENT}% + 4 MiB); {} has {} free of {}; --min-free {} keeps {} free{}",
            bytes(self.needed),
            self.source.files,
            bytes(self.source.bytes),
            self.filesystem,
            bytes(self.space.available),
            bytes(self.space.size),
            self.min_free,
            bytes(self.reserve),
            if self.is_short() { ": NOT ENOUGH SPACE" } else { "" }
        )
    }
}

/// Measure what `prepared` will copy and the free space where it goes.
pub fn estimate(prepared: &PreparedRun, min_free: MinFree) -> Result<SpaceEstimate, SafeFsError> {
    let home = &prepared.options.home;
    let source = measure(&prepared.plan.from, home)?;
    let needed = source
        .bytes
        .saturating_add(source.bytes / 100 * MARGIN_PERCENT)
        .saturating_add(MARGIN_FIXED);
    let target = prepared
        .plan
        .to
        .storage_paths(home)
        .into_iter()
        .next()
        .unwrap_or_default();
    let (filesystem, space) = space_at(Utf8Path::new(target.trim_end_matches('/')))?;
    Ok(SpaceEstimate {
        source,
        needed,
        filesystem,
        reserve: min_free.bytes_of(space.size),
        space,
        min_free,
    })
}

/// Every storage directory of `location`, each counted once (one inside another is skipped).
fn measure(location: &Location, home: &str) -> Result<TreeUsage, SafeFsError> {
    let paths: Vec<String> = location
        .storage_paths(home)
        .into_iter()
        .map(|p| p.trim_end_matches('/').to_string())
        .collect();
    let mut total = TreeUsage::default();
    for (i, p) in paths.iter().enumerate() {
        let inside_another = paths
            .iter()
            .enumerate()
            .any(|(j, q)| j != i && (p.starts_with(&format!("{q}/")) || (p == q && j < i)));
        if inside_another {
            continue;
        }
        if let Some(m) = safe_fs::measure(Utf8Path::new(p))? {
            total.add(m.usage);
        }
    }
    Ok(total)
}

/// The file system of `path`, or of its nearest existing parent.
fn space_at(path: &Utf8Path) -> Result<(Utf8PathBuf, FsSpace), SafeFsError> {
    let mut p = path;
    loop {
        match safe_fs::resolve(p) {
            Ok(r) => {
                return match &r.meta {
                    Some(m) if m.is_dir() => {
                        let d = r.dir.open_subdir(&r.name)?;
                        Ok((r.path(), d.space()?))
                    }
                    _ => Ok((r.dir.path().to_owned(), r.dir.space()?)),
                }
            }
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => match p.parent() {
                Some(parent) if parent != p => p = parent,
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_free_reads_percentages_and_sizes() {
        assert_eq!("5%".parse::<MinFree>(), Ok(MinFree::Percent(5)));
        assert_eq!("100%".parse::<MinFree>(), Ok(MinFree::Percent(100)));
        assert_eq!("10GiB".parse::<MinFree>(), Ok(MinFree::Bytes(10 << 30)));
        assert_eq!("1048576".parse::<MinFree>(), Ok(MinFree::Bytes(1 << 20)));
        assert!("101%".parse::<MinFree>().is_err());
        assert!("lots".parse::<MinFree>().is_err());
        assert_eq!(MinFree::Percent(5).bytes_of(1000), 50);
        let json = serde_json::to_string(&MinFree::Percent(7)).expect("json");
        assert_eq!(json, "\"7%\"");
        assert_eq!(
            serde_json::from_str::<MinFree>(&json).expect("back"),
            MinFree::Percent(7)
        );
    }

    #[test]
    fn short_means_the_copy_would_eat_into_the_reserve() {
        let mut e = SpaceEstimate {
            source: TreeUsage::default(),
            needed: 100,
            filesystem: "/".into(),
            space: FsSpace {
                size: 1000,
                available: 150,
            },
            min_free: MinFree::Bytes(50),
            reserve: 50,
        };
        assert!(!e.is_short());
        e.reserve = 51;
        assert!(e.is_short());
        assert!(e.render().ends_with("NOT ENOUGH SPACE"));
    }

    #[test]
    fn the_nearest_existing_parent_is_checked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = Utf8Path::from_path(tmp.path()).expect("utf-8");
        let (fs, space) = space_at(&base.join("a/b/c")).expect("space");
        assert_eq!(fs, base);
        assert!(space.size > 0);
    }
}
