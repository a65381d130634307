//! Which entries repeat an earlier entry's key (postmap keeps the first), found with a word of
//! index per key: a hash table of item positions, the keys compared only when hashes meet.

use std::hash::BuildHasher;

use super::{Entry, Table, Tag};

/// A fixed seed: the same table gives the same walk on every run.
const SEED: u64 = 0x6669_7273_745f_6b65;

impl Table {
    /// Every entry in file order with, when an earlier entry has the same (folded, when `fold`)
    /// lookup key, that earlier entry: `each(entry, first)`.
    pub(super) fn walk_first_keys<'s>(
        &'s self,
        fold: bool,
        mut each: impl FnMut(Entry<'s>, Option<Entry<'s>>),
    ) {
        let hasher = foldhash::fast::FixedState::with_seed(SEED);
        let mut first: hashbrown::HashTable<usize> =
            hashbrown::HashTable::with_capacity(self.items.len());
        let entry_at = |i: usize| Entry::new(self, &self.items[i]);
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
                first.insert_unique(hash, i, |&j| {
                    hasher.hash_one(entry_at(j).lookup_key(fold).as_ref())
                });
            }
            each(entry, earlier);
        }
    }
}
