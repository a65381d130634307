//! Rebuilding the indexed file of a table with `postmap`.

use std::fmt;
use std::str::FromStr;

use camino::Utf8Path;

use crate::process::{Argv, RunError, Runner};

/// A Postfix lookup-table type whose source file mailmig edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MapType {
    /// `hash:` (Berkeley DB, `FILE.db`).
    Hash,
    /// `btree:` (Berkeley DB, `FILE.db`).
    Btree,
    /// `lmdb:` (`FILE.lmdb`).
    Lmdb,
    /// `cdb:` (`FILE.cdb`).
    Cdb,
    /// `dbm:` (`FILE.dir` + `FILE.pag`).
    Dbm,
    /// `sdbm:` (`FILE.dir` + `FILE.pag`).
    Sdbm,
    /// `texthash:`: read from the source file itself when a daemon starts; no `postmap`, but
    /// running daemons only see an edit after `postfix reload`.
    Texthash,
}

impl MapType {
    /// Whether `postmap` builds an indexed file for it.
    pub fn needs_postmap(self) -> bool {
        self != MapType::Texthash
    }

    /// The indexed files `postmap` writes for `file` (none for texthash).
    pub fn indexed_files(self, file: &Utf8Path) -> Vec<camino::Utf8PathBuf> {
        let with = |ext: &str| camino::Utf8PathBuf::from(format!("{file}.{ext}"));
        match self {
            MapType::Hash | MapType::Btree => vec![with("db")],
            MapType::Lmdb => vec![with("lmdb")],
            MapType::Cdb => vec![with("cdb")],
            MapType::Dbm | MapType::Sdbm => vec![with("dir"), with("pag")],
            MapType::Texthash => Vec::new(),
        }
    }

    /// The type of the indexed file next to `file`: `.lmdb`, `.cdb`, `.dir`+`.pag` (dbm) or
    /// `.db` / nothing (hash, Postfix's usual default).
    pub fn detect(file: &Utf8Path) -> MapType {
        let with = |ext: &str| Utf8Path::new(&format!("{file}.{ext}")).exists();
        if with("lmdb") {
            MapType::Lmdb
        } else if with("cdb") {
            MapType::Cdb
        } else if with("dir") && with("pag") {
            MapType::Dbm
        } else {
            MapType::Hash
        }
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MapType::Hash => "hash",
            MapType::Btree => "btree",
            MapType::Lmdb => "lmdb",
            MapType::Cdb => "cdb",
            MapType::Dbm => "dbm",
            MapType::Sdbm => "sdbm",
            MapType::Texthash => "texthash",
        })
    }
}

/// The text is not a map type mailmig edits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not one of hash, btree, lmdb, cdb, dbm, sdbm, texthash")]
pub struct ParseMapTypeError(pub String);

impl FromStr for MapType {
    type Err = ParseMapTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "hash" => MapType::Hash,
            "btree" => MapType::Btree,
            "lmdb" => MapType::Lmdb,
            "cdb" => MapType::Cdb,
            "dbm" => MapType::Dbm,
            "sdbm" => MapType::Sdbm,
            "texthash" => MapType::Texthash,
            other => return Err(ParseMapTypeError(other.to_string())),
        })
    }
}

/// `postmap [-c DIR] TYPE:FILE`: rebuild the indexed file. Returns postmap's warnings (it exits
/// 0 after skipping bad lines); a non-zero exit is an error with its stderr.
///
/// Running daemons (smtpd, cleanup) notice a rebuilt table by its modification time in whole
/// seconds: a table rebuilt within the same second as its previous version would go unnoticed.
/// When that happens the indexed file's mtime is moved one second on.
pub fn postmap_rebuild(
    runner: &dyn Runner,
    config_dir: Option<&Utf8Path>,
    map_type: MapType,
    file: &Utf8Path,
) -> Result<Vec<String>, RunError> {
    let mut argv = vec!["postmap".to_string()];
    if let Some(dir) = config_dir {
        argv.push("-c".into());
        argv.push(dir.to_string());
    }
    argv.push(format!("{map_type}:{file}"));
    let before: Vec<Option<i64>> = map_type
        .indexed_files(file)
        .iter()
        .map(|f| mtime_secs(f))
        .collect();
    let out = runner.run_expect(&Argv::new(argv), None, &[0])?;
    for (f, old) in map_type.indexed_files(file).iter().zip(before) {
        if let (Some(old), Some(new)) = (old, mtime_secs(f)) {
            if new <= old {
                let later = std::time::SystemTime::UNIX_EPOCH
                    + std::time::Duration::from_secs(u64::try_from(old + 1).unwrap_or(0));
                // Best effort: if this fails the daemons still see the change a second later.
                let _ = fs_err::File::options()
                    .write(true)
                    .open(f)
                    .and_then(|h| h.file().set_modified(later));
            }
        }
    }
    Ok(String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("warning:"))
        .map(str::to_string)
        .collect())
}

fn mtime_secs(path: &Utf8Path) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    fs_err::metadata(path).ok().map(|m| m.mtime())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Output;
    use std::cell::RefCell;

    struct Fake(RefCell<Vec<String>>, Output);
    impl Runner for Fake {
        fn run(&self, argv: &Argv, _: Option<&[u8]>) -> Result<Output, RunError> {
            self.0.borrow_mut().push(argv.to_string());
            Ok(self.1.clone())
        }
    }

    #[test]
    fn argv_and_warnings() {
        let fake = Fake(
            RefCell::new(Vec::new()),
            Output {
                code: Some(0),
                stdout: Vec::new(),
                stderr:
                    b"postmap: warning: /x/virtual, line 3: expected format: key whitespace value\n"
                        .to_vec(),
            },
        );
        let w = postmap_rebuild(
            &fake,
            Some(Utf8Path::new("/etc/pf")),
            MapType::Lmdb,
            Utf8Path::new("/x/virtual"),
        )
        .expect("runs");
        assert_eq!(fake.0.borrow()[0], "postmap -c /etc/pf lmdb:/x/virtual");
        assert_eq!(w.len(), 1);
        let failing = Fake(
            RefCell::new(Vec::new()),
            Output {
                code: Some(1),
                stdout: Vec::new(),
                stderr: b"postmap: fatal: open /etc/postfix/main.cf: No such file or directory\n"
                    .to_vec(),
            },
        );
        let e = postmap_rebuild(&failing, None, MapType::Hash, Utf8Path::new("/x/v"))
            .expect_err("fails");
        assert!(e.to_string().contains("fatal: open /etc/postfix/main.cf"));
        assert_eq!("lmdb".parse(), Ok(MapType::Lmdb));
        assert!("regexp".parse::<MapType>().is_err());
    }
}
