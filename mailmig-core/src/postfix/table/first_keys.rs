//! Which entries repeat an earlier entry's key (postmap keeps the first): every entry's key
//! hashed, the (hash, position) pairs sorted, and the keys compared only within the rare runs
//! of equal hashes. A sort touches memory in order; a hash table of a million keys touches it
//! at a million random places, which cost more than the sort (the floor harness,
//! `benches/src/bin/floor.rs`, measures both).

use std::hash::BuildHasher;
use std::ops::Range;

pub(super) use crate::runs::{equal_hash_runs, Keyed, Narrow, Wide};

use super::{Entry, Table, Tag};
#[cfg(test)]
use crate::runs::LONG_RUN;

/// A fixed seed: the same table gives the same walk on every run.
pub(super) const SEED: u64 = 0x6669_7273_745f_6b65;

/// From this many items on, with a second core, the keys are hashed and sorted on two threads,
/// each over half the items (below it a thread costs more than it saves).
const SPLIT_FROM: usize = 1 << 16;

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
            self.walk_first_keys_with::<Narrow>(fold, split, each);
        } else {
            self.walk_first_keys_with::<Wide>(fold, split, each);
        }
    }

    /// The walk, its pairs made on one thread or (`split`) on two.
    fn walk_first_keys_with<'s, K: Keyed>(
        &'s self,
        fold: bool,
        split: bool,
        mut each: impl FnMut(Entry<'s>, Option<Entry<'s>>),
    ) {
        let mut repeats = self.repeats::<K>(fold, split).into_iter().peekable();
        for (i, item) in self.items.iter().enumerate() {
            if item.tag != Tag::Entry {
                continue;
            }
            let earlier = repeats
                .next_if(|r| r.at == i)
                .map(|r| Entry::new(self, &self.items[r.first]));
            each(Entry::new(self, item), earlier);
        }
    }

    /// The entries that repeat an earlier entry's key, in file order.
    fn repeats<K: Keyed>(&self, fold: bool, split: bool) -> Vec<Repeat> {
        let all = 0..self.items.len();
        let (front, back) = if split {
            let middle = all.end / 2;
            crate::cores::side_by_side(
                || self.sorted_keys::<K>(fold, 0..middle),
                || self.sorted_keys::<K>(fold, middle..all.end),
            )
        } else {
            (self.sorted_keys::<K>(fold, all), Vec::new())
        };
        let mut repeats = Vec::new();
        equal_hash_runs(front, back, 0, |run| self.settle(fold, run, &mut repeats));
        repeats.sort_unstable_by_key(|r| r.at);
        repeats
    }

    /// The (hash, position) pairs of the entries among `items`, sorted.
    fn sorted_keys<K: Keyed>(&self, fold: bool, items: Range<usize>) -> Vec<K> {
        let hasher = foldhash::fast::FixedState::with_seed(SEED);
        let mut pairs = Vec::with_capacity(items.len());
        for i in items {
            let item = &self.items[i];
            if item.tag == Tag::Entry {
                let key = Entry::new(self, item).lookup_key(fold);
                pairs.push(K::new(hasher.hash_one(key.as_ref()), i));
            }
        }
        pairs.sort_unstable();
        pairs
    }

    /// The repeats among entries whose keys hash alike (`run`, in file order): an entry whose
    /// key an earlier one in the run has repeats the first of them.
    fn settle(&self, fold: bool, run: &[usize], repeats: &mut Vec<Repeat>) {
        crate::runs::settle(
            run,
            |i| Entry::new(self, &self.items[i]).lookup_key(fold),
            |_| true,
            |at, first| repeats.push(Repeat { at, first }),
        );
    }
}

/// An entry (its item position) whose key an earlier entry has, and that first entry's.
struct Repeat {
    at: usize,
    first: usize,
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
            t.walk_first_keys_with::<super::Wide>(fold, split, &mut note);
        } else {
            t.walk_first_keys_with::<super::Narrow>(fold, split, &mut note);
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

    /// Keys whose hashes meet (as if they did: real collisions are rare) are told apart by
    /// their bytes, in a short run and in a long one settled in a table.
    #[test]
    fn keys_that_hash_alike_are_told_apart() {
        for copies in [2, 5] {
            let text = "a 1\nb 2\nA 3\n".repeat(copies);
            let t = Table::parse(text.into_bytes(), &ParseOptions::default());
            let run: Vec<usize> = (0..t.items.len()).collect();
            assert!(run.len() > super::LONG_RUN || copies == 2);
            for fold in [false, true] {
                let mut repeats = Vec::new();
                t.settle(fold, &run, &mut repeats);
                repeats.sort_unstable_by_key(|r| r.at);
                let got: Vec<(usize, usize)> = repeats.iter().map(|r| (r.at, r.first)).collect();
                let expected: Vec<(usize, usize)> = (3..run.len())
                    .map(|at| (at, at % 3))
                    .chain(if fold { vec![(2, 0)] } else { vec![] })
                    .map(|(at, first)| (at, if fold && first == 2 { 0 } else { first }))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                assert_eq!(got, expected, "{copies} copies, fold {fold}");
            }
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
