//! Dovecot's load of a passwd-file: which record each user resolves to, and what happens to the
//! others (a later line of a user already loaded is ignored, a line with a bad uid, gid or
//! password is dropped and a later one taken).
//!
//! Dovecot inserts line by line into a hash table. Here every record's name is hashed in one
//! pass in file order, the (hash, record) pairs are sorted, and the rare runs of equal hashes
//! settled in file order: the same verdicts, without a million inserts at random places (which
//! were most of `passwd check`'s time on a large file; a sort of the pairs touches memory in
//! order). `the_sorted_load_is_the_line_by_line_load` checks both ways agree.

use super::{IdResolver, LoadStatus, PasswdFile};

/// The users Dovecot would load from the file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Every record's user name, one after the other (one allocation, not one a user).
    names: Vec<u8>,
    /// Where record `k`'s name starts in `names` (one more entry: the end).
    starts: Vec<usize>,
    /// (hash of the name, record) for each user Dovecot keeps, sorted.
    kept: Vec<(u64, usize)>,
    /// Each record's line (0-based index) and how it was loaded, in file order.
    status: Vec<(usize, LoadStatus)>,
}

/// A fixed seed: the same file loads the same way on every run.
const LOAD_SEED: u64 = 0x7061_7373_7764_6669;

pub(super) fn name_hash(name: &[u8]) -> u64 {
    use std::hash::BuildHasher as _;
    foldhash::fast::FixedState::with_seed(LOAD_SEED).hash_one(name)
}

impl Loaded {
    /// The 0-based line index of the record Dovecot uses for `user` (exact, case-sensitive).
    pub fn line_of(&self, user: &[u8]) -> Option<usize> {
        let hash = name_hash(user);
        let from = self.kept.partition_point(|&(h, _)| h < hash);
        self.kept[from..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .find(|&&(_, k)| self.name(k) == user)
            .map(|&(_, k)| self.status[k].0)
    }

    /// Each record line (0-based index) and how it was loaded, in file order.
    pub fn statuses(&self) -> &[(usize, LoadStatus)] {
        &self.status
    }

    /// Record `k`'s user name.
    pub(super) fn name(&self, k: usize) -> &[u8] {
        &self.names[self.starts[k]..self.starts[k + 1]]
    }

    /// Settles a run of records whose names hash alike (`run`, record numbers in file order):
    /// a record whose name an earlier kept record has is a duplicate of it, even if Dovecot
    /// would have dropped it (it looks the name up first).
    pub(super) fn settle(&mut self, run: &[usize]) {
        let mut repeats = Vec::new();
        crate::runs::settle(
            run,
            |k| self.name(k),
            |k| self.status[k].1 == LoadStatus::Active,
            |k, first| repeats.push((k, first)),
        );
        for (k, first) in repeats {
            self.status[k].1 = LoadStatus::Duplicate {
                first_line: self.status[first].0 + 1,
            };
        }
    }
}

impl PasswdFile {
    /// Load the file as Dovecot's auth process does.
    pub fn load(&self, ids: &dyn IdResolver) -> Loaded {
        let records = self.lines.len();
        let mut loaded = Loaded {
            names: Vec::new(),
            starts: Vec::with_capacity(records + 1),
            kept: Vec::new(),
            status: Vec::with_capacity(records),
        };
        loaded.starts.push(0);
        let mut pairs = Vec::with_capacity(records);
        for (i, entry) in self
            .lines()
            .enumerate()
            .filter_map(|(i, l)| Some((i, l.entry()?)))
        {
            let user = entry.user();
            pairs.push((name_hash(user), loaded.status.len()));
            loaded.names.extend_from_slice(user);
            loaded.starts.push(loaded.names.len());
            let status = match self.drop_reason(&entry, ids) {
                Some(reason) => LoadStatus::Dropped { reason },
                None => LoadStatus::Active,
            };
            loaded.status.push((i, status));
        }
        pairs.sort_unstable();
        let mut records = Vec::new();
        for run in pairs
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|run| run.len() > 1)
        {
            records.clear();
            records.extend(run.iter().map(|&(_, k)| k));
            loaded.settle(&records);
        }
        pairs.retain(|&(_, k)| loaded.status[k].1 == LoadStatus::Active);
        loaded.kept = pairs;
        loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dovecot::ids::NumericIds;
    use crate::dovecot::passwd::PasswdOptions;
    use crate::runs::LONG_RUN;

    /// Dovecot's way, line by line: look the name up, else drop or insert.
    fn line_by_line(file: &PasswdFile) -> Vec<(usize, LoadStatus)> {
        let mut table: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut out = Vec::new();
        for (i, entry) in file
            .lines()
            .enumerate()
            .filter_map(|(i, l)| Some((i, l.entry()?)))
        {
            let user = entry.user().to_vec();
            let status = if let Some(&first) = table.get(&user) {
                LoadStatus::Duplicate {
                    first_line: first + 1,
                }
            } else if let Some(reason) = file.drop_reason(&entry, &NumericIds) {
                LoadStatus::Dropped { reason }
            } else {
                table.insert(user, i);
                LoadStatus::Active
            };
            out.push((i, status));
        }
        out
    }

    /// Two names whose hashes are equal (made so here; 64-bit foldhash collisions are rare, not
    /// impossible) are two users: each keeps its first line, a repeat of either is its duplicate.
    #[test]
    fn names_that_hash_alike_are_told_apart() {
        let active = LoadStatus::Active;
        let dup = |first_line| LoadStatus::Duplicate { first_line };
        // A short run and a long one (settled in a table): ann, bob, ann, bob, ...
        for copies in [2, 5] {
            let records = copies * 2;
            let mut loaded = Loaded {
                names: b"annbob".repeat(copies),
                starts: (0..=records).map(|k| k * 3).collect(),
                kept: Vec::new(),
                status: (0..records).map(|k| (k * 2, active.clone())).collect(),
            };
            let run: Vec<usize> = (0..records).collect();
            assert_eq!(run.len() > LONG_RUN, copies == 5);
            loaded.settle(&run);
            let verdicts: Vec<LoadStatus> = loaded.status.into_iter().map(|(_, s)| s).collect();
            let mut expected = vec![active.clone(), active.clone()];
            expected.extend((2..records).map(|k| dup(if k % 2 == 0 { 1 } else { 3 })));
            assert_eq!(verdicts, expected, "{copies} copies");
        }
    }

    proptest::proptest! {
        /// The sorted load gives every record the verdict the line-by-line insert gives, and
        /// finds each kept user's line: few names, many repeats, bad uids among them.
        #[test]
        fn the_sorted_load_is_the_line_by_line_load(
            lines in proptest::collection::vec(
                (0..6u8, proptest::sample::select(&["1000", "x", "", "0"][..]), 0..4u8),
                0..40,
            )
        ) {
            let mut text = Vec::new();
            for (name, uid, kind) in &lines {
                match kind {
                    0 => text.extend_from_slice(b"# comment\n"),
                    1 => text.extend_from_slice(format!("u{name}:{{PLAIN}}x\n").as_bytes()),
                    _ => text.extend_from_slice(format!("u{name}:x:{uid}:1000::/h::\n").as_bytes()),
                }
            }
            let file = PasswdFile::parse(text, &PasswdOptions::default());
            let loaded = file.load(&NumericIds);
            let expected = line_by_line(&file);
            proptest::prop_assert_eq!(loaded.statuses(), &expected[..]);
            for (i, status) in &expected {
                let user = file.line_at(*i).entry().map(|e| e.user().to_vec()).unwrap_or_default();
                if *status == LoadStatus::Active {
                    proptest::prop_assert_eq!(loaded.line_of(&user), Some(*i));
                }
            }
            proptest::prop_assert_eq!(loaded.line_of(b"nobody"), None);
        }
    }
}
