//! Which entries repeat an earlier entry's key (postmap keeps the first), found with a word of
//! index per key: a hash table of item positions, the keys compared only when hashes meet.

use std::hash::BuildHasher;

use super::{Entry, Table, Tag};

/// A fixed seed: the same table gives the same walk on every run.
const SEED: u64 = 0x6669_7273_745f_6b65;

/// An item position in the hash table: 32 bits while the table has fewer than 2^32 items (every
/// table that fits in memory), so that the index costs 5 bytes a bucket instead of 9.
trait Position: Copy {
    fn new(i: usize) -> Self;
    fn get(self) -> usize;
}

impl Position for u32 {
    fn new(i: usize) -> Self {
        // Only used when every position fits (checked by the caller).
        u32::try_from(i).unwrap_or(u32::MAX)
    }
    fn get(self) -> usize {
        self as usize
    }
}

impl Position for usize {
    fn new(i: usize) -> Self {
        i
    }
    fn get(self) -> usize {
        self
    }
}

impl Table {
    /// Every entry in file order with, when an earlier entry has the same (folded, when `fold`)
    /// lookup key, that earlier entry: `each(entry, first)`.
    pub(super) fn walk_first_keys<'s>(
        &'s self,
        fold: bool,
        each: impl FnMut(Entry<'s>, Option<Entry<'s>>),
    ) {
        if u32::try_from(self.items.len()).is_ok() {
            self.walk_first_keys_with::<u32>(fold, each);
        } else {
            self.walk_first_keys_with::<usize>(fold, each);
        }
    }

    fn walk_first_keys_with<'s, P: Position>(
        &'s self,
        fold: bool,
        mut each: impl FnMut(Entry<'s>, Option<Entry<'s>>),
    ) {
        let hasher = foldhash::fast::FixedState::with_seed(SEED);
        let entries = self.items.iter().filter(|i| i.tag == Tag::Entry).count();
        let mut first: hashbrown::HashTable<P> = hashbrown::HashTable::with_capacity(entries);
        let entry_at = |i: P| Entry::new(self, &self.items[i.get()]);
        for (i, item) in self.items.iter().enumerate() {
            if item.tag != Tag::Entry {
                continue;
            }
            let entry = Entry::new(self, item);
            let key = entry.lookup_key(fold);
            let hash = hasher.hash_one(key.as_ref());
            let earlier = first
                .find(hash, |&j| entry_at(j).lookup_key(fold) == key)
                .map(|&j| entry_at(j));
            if earlier.is_none() {
                first.insert_unique(hash, P::new(i), |&j| {
                    hasher.hash_one(entry_at(j).lookup_key(fold).as_ref())
                });
            }
            each(entry, earlier);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ParseOptions, Table};

    /// The walk of every table in memory uses 32-bit positions; the word-sized ones (tables of
    /// 2^32 items and more) must walk the same.
    #[test]
    fn both_position_widths_find_the_same_first_keys() {
        let src = b"a 1\nB 2\n# c\n\nb 3\na 4\nlong\n  value\nA 5\nc 6\n".to_vec();
        let t = Table::parse(src, &ParseOptions::default());
        for fold in [false, true] {
            let walk = |wide: bool| {
                let mut seen = Vec::new();
                let mut note = |e: super::Entry<'_>, first: Option<super::Entry<'_>>| {
                    seen.push((e.line().unwrap_or(0), first.and_then(|f| f.line())));
                };
                if wide {
                    t.walk_first_keys_with::<usize>(fold, &mut note);
                } else {
                    t.walk_first_keys_with::<u32>(fold, &mut note);
                }
                seen
            };
            assert_eq!(walk(true), walk(false));
            let expected: Vec<_> = if fold {
                vec![
                    (1, None),
                    (2, None),
                    (5, Some(2)),
                    (6, Some(1)),
                    (7, None),
                    (9, Some(1)),
                    (10, None),
                ]
            } else {
                vec![
                    (1, None),
                    (2, None),
                    (5, None),
                    (6, Some(1)),
                    (7, None),
                    (9, None),
                    (10, None),
                ]
            };
            assert_eq!(walk(false), expected);
        }
    }
}
