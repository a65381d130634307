//! Runs of equal hashes, found and settled: which items repeat an earlier item's key. Shared by
//! the duplicate-key search of tables and Dovecot's load of passwd-files, which find their runs
//! by sorting (hash, position) pairs, in two halves for large files.

use std::collections::HashMap;
use std::hash::Hash;

/// Runs longer than this are settled in a randomly seeded table instead of by comparing each key
/// with every first one: only a file made to collide in the fixed hash gives one, and it must
/// not make the settling quadratic.
pub(crate) const LONG_RUN: usize = 8;

/// For each item of one run (in file order) whose key an earlier item has: `repeat(item,
/// first)`, the first being the earliest such item that `may_be_first` accepted. Items without
/// an earlier one that `may_be_first` accepts become firsts.
pub(crate) fn settle<T: Copy, K: Eq + Hash>(
    run: &[T],
    key: impl Fn(T) -> K,
    may_be_first: impl Fn(T) -> bool,
    mut repeat: impl FnMut(T, T),
) {
    let long = run.len() > LONG_RUN;
    let mut table: HashMap<K, T> = HashMap::new();
    let mut list: Vec<(K, T)> = Vec::new();
    for &item in run {
        let k = key(item);
        let first = if long {
            table.get(&k).copied()
        } else {
            list.iter().find(|(f, _)| *f == k).map(|&(_, t)| t)
        };
        match first {
            Some(first) => repeat(item, first),
            None if may_be_first(item) => {
                if long {
                    table.insert(k, item);
                } else {
                    list.push((k, item));
                }
            }
            None => {}
        }
    }
}

/// A key's hash and its item's position, ordered by hash, then position.
pub(crate) trait Keyed: Copy + Default + Ord + Send {
    fn new(hash: u64, at: usize) -> Self;
    /// The hash (of a [`Narrow`] pair, its top 32 bits: equal ones are settled by the keys).
    fn hash(self) -> u64;
    fn at(self) -> usize;
}

/// One word a pair while the table has fewer than 2^32 items (every table that fits in
/// memory): the hash's top 32 bits above the position. Half the memory of a wide pair, so a
/// large `map check` stays under twice its input.
pub(crate) type Narrow = u64;

impl Keyed for Narrow {
    fn new(hash: u64, at: usize) -> Self {
        // Only used when every position fits in 32 bits (checked by the caller).
        (hash & !0xffff_ffff) | (at as u64 & 0xffff_ffff)
    }
    fn hash(self) -> u64 {
        self & !0xffff_ffff
    }
    fn at(self) -> usize {
        (self & 0xffff_ffff) as usize
    }
}

/// A pair for tables of 2^32 items or more.
pub(crate) type Wide = (u64, usize);

impl Keyed for Wide {
    fn new(hash: u64, at: usize) -> Self {
        (hash, at)
    }
    fn hash(self) -> u64 {
        self.0
    }
    fn at(self) -> usize {
        self.1
    }
}

/// The runs of two or more equal hashes among `front` and `back`, both sorted, every front
/// position before every back one: `each(run)` with the run's positions in file order (those of
/// `back` plus `back_base`).
pub(crate) fn equal_hash_runs<K: Keyed>(
    front: Vec<K>,
    back: Vec<K>,
    back_base: usize,
    mut each: impl FnMut(&[usize]),
) {
    // Both in hash order; every front position comes before every back one, so a run of one
    // hash is in file order as the front's members and then the back's.
    let (mut i, mut j) = (0, 0);
    let mut run = Vec::new();
    loop {
        let hash = match (front.get(i), back.get(j)) {
            (Some(a), Some(b)) => a.hash().min(b.hash()),
            (Some(a), None) => a.hash(),
            (None, Some(b)) => b.hash(),
            (None, None) => break,
        };
        let i_end = i + front[i..].iter().take_while(|k| k.hash() == hash).count();
        let j_end = j + back[j..].iter().take_while(|k| k.hash() == hash).count();
        if (i_end - i) + (j_end - j) > 1 {
            run.clear();
            run.extend(front[i..i_end].iter().map(|k| k.at()));
            run.extend(back[j..j_end].iter().map(|k| k.at() + back_base));
            each(&run);
        }
        (i, j) = (i_end, j_end);
    }
}
