//! Runs of equal hashes, settled: which items repeat an earlier item's key. Shared by the
//! duplicate-key search of tables and Dovecot's load of passwd-files, which find their runs by
//! sorting (hash, position) pairs.

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
