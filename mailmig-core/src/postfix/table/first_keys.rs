//! Which entries repeat an earlier entry's key (postmap keeps the first), found with a word of
//! index per key: a hash table of item positions, the keys compared only when hashes meet.

use std::hash::BuildHasher;

use super::{Entry, Table, Tag};

/// A fixed seed: the same table gives the same walk on every run.
const SEED: u64 = 0x6669_7273_745f_6b65;

/// An item position in the hash table: 32 bits while the table has fewer than 2^32 items (every
/// table that fits in memory), so that the index costs 5 bytes a bucket instead of 9.
trait Position: Copy + Send {
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

/// From this many items on, with a second core, the search runs on two threads (below it a
/// thread costs more than it saves).
const SPLIT_FROM: usize = 1 << 16;

/// The hash bit that tells the two threads' keys apart: neither among the bits that place a
/// key in a table of fewer than 2^40 buckets nor among the top seven that tag it, so that each
/// thread's table spreads and tells its keys apart as one table would.
const SIDE_BIT: u32 = 40;

impl Table {
    /// Every entry in file order with, when an earlier entry has the same (folded, when `fold`)
    /// lookup key, that earlier entry: `each(entry, first)`.
    pub(super) fn walk_first_keys<'s>(
        &'s self,
        fold: bool,
        each: impl FnMut(Entry<'s>, Option<Entry<'s>>),
    ) {
        let split = self.items.len() >= SPLIT_FROM && crate::cores::two();
        if u32::try_from(self.items.len()).is_ok() {
            self.walk_first_keys_with::<u32>(fold, split, each);
        } else {
            self.walk_first_keys_with::<usize>(fold, split, each);
        }
    }

    /// The walk, its search on one thread or (`split`) on two.
    fn walk_first_keys_with<'s, P: Position>(
        &'s self,
        fold: bool,
        split: bool,
        mut each: impl FnMut(Entry<'s>, Option<Entry<'s>>),
    ) {
        let entries = self.items.iter().filter(|i| i.tag == Tag::Entry).count();
        let mut repeats = if split {
            self.repeats_on_two_threads::<P>(fold, entries)
        } else {
            self.repeats::<P>(fold, None, entries)
        }
        .into_iter()
        .peekable();
        for (i, item) in self.items.iter().enumerate() {
            if item.tag != Tag::Entry {
                continue;
            }
            let earlier = repeats
                .next_if(|r| r.at.get() == i)
                .map(|r| Entry::new(self, &self.items[r.first.get()]));
            each(Entry::new(self, item), earlier);
        }
    }

    /// The repeats of the keys whose hash has [`SIDE_BIT`] clear on this thread, of the others on
    /// a second one, merged in file order.
    fn repeats_on_two_threads<P: Position>(&self, fold: bool, entries: usize) -> Vec<Repeat<P>> {
        // A side holds about half the keys; its table grows if it holds more.
        let expected = entries / 2 + entries / 64;
        let (clear, set) = crate::cores::side_by_side(
            || self.repeats::<P>(fold, Some(false), expected),
            || self.repeats::<P>(fold, Some(true), expected),
        );
        let mut merged = Vec::with_capacity(clear.len() + set.len());
        let (mut clear, mut set) = (clear.into_iter().peekable(), set.into_iter().peekable());
        loop {
            let next = match (clear.peek(), set.peek()) {
                (Some(a), Some(b)) if a.at.get() < b.at.get() => clear.next(),
                (Some(_), Some(_)) | (None, Some(_)) => set.next(),
                (Some(_), None) => clear.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        merged
    }

    /// The entries that repeat an earlier entry's key, in file order, among the keys whose hash
    /// has [`SIDE_BIT`] as `side` (all of them for `None`); `expected` keys sizes the table.
    fn repeats<P: Position>(
        &self,
        fold: bool,
        side: Option<bool>,
        expected: usize,
    ) -> Vec<Repeat<P>> {
        let hasher = foldhash::fast::FixedState::with_seed(SEED);
        let mut first: hashbrown::HashTable<P> = hashbrown::HashTable::with_capacity(expected);
        let key_at = |i: P| Entry::new(self, &self.items[i.get()]).lookup_key(fold);
        let mut repeats = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            if item.tag != Tag::Entry {
                continue;
            }
            let key = Entry::new(self, item).lookup_key(fold);
            let hash = hasher.hash_one(key.as_ref());
            if side.is_some_and(|side| (hash >> SIDE_BIT & 1 == 1) != side) {
                continue;
            }
            match first.find(hash, |&j| key_at(j) == key) {
                Some(&j) => repeats.push(Repeat {
                    at: P::new(i),
                    first: j,
                }),
                None => {
                    first.insert_unique(hash, P::new(i), |&j| hasher.hash_one(key_at(j).as_ref()));
                }
            }
        }
        repeats
    }
}

/// An entry (its item position) whose key an earlier entry has, and that first entry's.
struct Repeat<P> {
    at: P,
    first: P,
}

#[cfg(test)]
mod tests {
    use super::super::{ParseOptions, Table};
    use proptest::prelude::*;

    /// Each entry's line and the line of the entry whose key it repeats.
    fn walk(t: &Table, fold: bool, wide: bool, split: bool) -> Vec<(usize, Option<usize>)> {
        let mut seen = Vec::new();
        let mut note = |e: super::Entry<'_>, first: Option<super::Entry<'_>>| {
            seen.push((e.line().unwrap_or(0), first.and_then(|f| f.line())));
        };
        if wide {
            t.walk_first_keys_with::<usize>(fold, split, &mut note);
        } else {
            t.walk_first_keys_with::<u32>(fold, split, &mut note);
        }
        seen
    }

    /// The walk of every table in memory uses 32-bit positions; the word-sized ones (tables of
    /// 2^32 items and more) must walk the same, on one thread or two.
    #[test]
    fn both_position_widths_find_the_same_first_keys() {
        let src = b"a 1\nB 2\n# c\n\nb 3\na 4\nlong\n  value\nA 5\nc 6\n".to_vec();
        let t = Table::parse(src, &ParseOptions::default());
        for fold in [false, true] {
            let one = walk(&t, fold, false, false);
            for (wide, split) in [(true, false), (false, true), (true, true)] {
                assert_eq!(walk(&t, fold, wide, split), one, "{wide} {split}");
            }
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
            assert_eq!(one, expected);
        }
    }

    const KEYS: &[&str] = &[
        "a", "A", "b", "B", "ab", "aB", "x@y", "X@Y", "\u{c4}@y", "\u{e4}@y",
    ];

    proptest! {
        /// The keys split between two threads by their hash find the same first entries as
        /// one thread finds.
        #[test]
        fn two_threads_find_the_first_keys_one_finds(
            picks in proptest::collection::vec((0..KEYS.len(), 0..4usize), 0..300),
            fold in any::<bool>(),
            smtputf8 in any::<bool>(),
        ) {
            let text: String = picks
                .iter()
                .map(|&(k, form)| match form {
                    0 => format!("{} v\n", KEYS[k]),
                    1 => format!("{} v,\n  w\n", KEYS[k]),
                    2 => format!("# {}\n", KEYS[k]),
                    _ => format!("{}: v\n", KEYS[k]),
                })
                .collect();
            let options = ParseOptions {
                smtputf8,
                ..ParseOptions::default()
            };
            let t = Table::parse(text.into_bytes(), &options);
            let one = walk(&t, fold, false, false);
            prop_assert_eq!(&walk(&t, fold, false, true), &one);
            prop_assert_eq!(&walk(&t, fold, true, true), &one);
        }
    }
}
