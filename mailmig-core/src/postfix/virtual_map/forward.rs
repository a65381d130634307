//! The forward lookup of a set of alias tables: which entry postmap keeps for a folded key
//! (the first of that key, in file order).
//!
//! Indexed up front for many closures (a batch), or lazily for one: a closure of one mailbox
//! makes a handful of lookups, and scanning the keys for each is far cheaper than hashing a
//! million of them. A walk that keeps asking (long chains, many catch-alls) gets the index
//! after [`SCANS_BEFORE_INDEX`] scans, so no map costs more than the index plus those scans.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use super::super::table::{Entry, Table};
use super::super::FastMap as HashMap;

/// Scans (of distinct keys) a lazy lookup makes before it builds the index.
const SCANS_BEFORE_INDEX: usize = 16;

/// Each table's index: folded key (borrowed from the table when folding changes nothing) →
/// the entry postmap keeps.
type Index<'t> = Vec<HashMap<Cow<'t, [u8]>, Entry<'t>>>;

/// What scans found: (table, folded key) → the entry kept, if any.
type Found<'t> = HashMap<(usize, Vec<u8>), Option<Entry<'t>>>;

/// The forward lookup of the tables, in `virtual_alias_maps` order.
pub(super) struct Forward<'t> {
    tables: Vec<&'t Table>,
    /// Per table: whether it has non-ASCII bytes, which Unicode folding may change.
    unicode: Vec<bool>,
    index: OnceLock<Index<'t>>,
    scans: AtomicUsize,
    /// What the scans found: (table, folded key) → the entry kept. A walk asks for the same
    /// keys again and again (every expansion that confirms a candidate).
    found: Mutex<Found<'t>>,
}

impl<'t> Forward<'t> {
    /// Index every table now; also returns each table's kept entries, in file order.
    pub(super) fn indexed(tables: &[&'t Table]) -> (Self, Vec<Vec<Entry<'t>>>) {
        let (index, kept) = build_index(tables);
        let forward = Self {
            tables: tables.to_vec(),
            unicode: Vec::new(),
            index: OnceLock::from(index),
            scans: AtomicUsize::new(0),
            found: Mutex::default(),
        };
        (forward, kept)
    }

    /// Index nothing yet; also returns each table's kept entries among those `wanted` picks
    /// (few: catch-alls, bare keys, domain rewrites), in file order. `may_be_wanted` sees a
    /// record's bytes first and must accept every record `wanted` could pick.
    pub(super) fn lazy(
        tables: &[&'t Table],
        may_be_wanted: fn(&[u8]) -> bool,
        wanted: impl Fn(&Entry<'t>) -> bool,
    ) -> (Self, Vec<Vec<Entry<'t>>>) {
        let forward = Self {
            tables: tables.to_vec(),
            unicode: tables
                .iter()
                .map(|t| !t.buffers().iter().all(|b| b.is_ascii()))
                .collect(),
            index: OnceLock::new(),
            scans: AtomicUsize::new(0),
            found: Mutex::default(),
        };
        let kept = tables
            .iter()
            .enumerate()
            .map(|(ti, t)| {
                t.entries_where(may_be_wanted)
                    .filter(|e| wanted(e) && forward.is_kept(ti, e))
                    .collect()
            })
            .collect();
        (forward, kept)
    }

    /// The tables, in order.
    pub(super) fn tables(&self) -> &[&'t Table] {
        &self.tables
    }

    /// The entry table `ti` keeps for the folded key `folded`.
    pub(super) fn first_in(&self, ti: usize, folded: &[u8]) -> Option<Entry<'t>> {
        if let Some(index) = self.index.get() {
            return index.get(ti)?.get(folded).copied();
        }
        let key = (ti, folded.to_vec());
        if let Some(found) = self.found.lock().ok().and_then(|f| f.get(&key).copied()) {
            return found;
        }
        if let Some(index) = self.ready_index() {
            return index.get(ti)?.get(folded).copied();
        }
        let unicode = self.unicode.get(ti).copied().unwrap_or(true);
        let found = scan_first(self.tables.get(ti)?, folded, unicode);
        if let Ok(mut f) = self.found.lock() {
            f.insert(key, found);
        }
        found
    }

    /// Whether `entry` of table `ti` is the one postmap keeps for its key.
    pub(super) fn is_kept(&self, ti: usize, entry: &Entry<'t>) -> bool {
        self.first_in(ti, &entry.lookup_key(true))
            .is_some_and(|k| k.id() == entry.id())
    }

    /// The index, once scanning has gone on long enough to build it.
    fn ready_index(&self) -> Option<&Index<'t>> {
        if self.scans.fetch_add(1, Ordering::Relaxed) < SCANS_BEFORE_INDEX {
            return None;
        }
        Some(self.index.get_or_init(|| build_index(&self.tables).0))
    }
}

/// One pass per table: the lookup index and the entries postmap keeps (first of each folded
/// key, in file order) together, one hash per key, the index sized up front.
fn build_index<'t>(tables: &[&'t Table]) -> (Index<'t>, Vec<Vec<Entry<'t>>>) {
    let mut indexes = Vec::with_capacity(tables.len());
    let mut kept = Vec::with_capacity(tables.len());
    for &t in tables {
        let mut index: HashMap<Cow<'t, [u8]>, Entry<'t>> =
            HashMap::with_capacity_and_hasher(t.item_count(), Default::default());
        let mut effective = Vec::new();
        for e in t.entries() {
            if let std::collections::hash_map::Entry::Vacant(v) = index.entry(e.lookup_key(true)) {
                v.insert(e);
                effective.push(e);
            }
        }
        indexes.push(index);
        kept.push(effective);
    }
    (indexes, kept)
}

/// The first entry of `t` whose folded key is `folded`. A record's key starts its bytes, and
/// ASCII folding keeps bytes and length, so only records that start with `folded` (ASCII case
/// ignored) or, in a table with `unicode` bytes, whose first word has some are read.
fn scan_first<'t>(t: &'t Table, folded: &[u8], unicode: bool) -> Option<Entry<'t>> {
    t.entries_where(|raw| {
        raw.get(..folded.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(folded))
            || (unicode && !first_word(raw).is_ascii())
    })
    .find(|e| e.lookup_key(true).as_ref() == folded)
}

/// The bytes of a record before its first control byte, space or colon: a prefix of its key.
pub(super) fn first_word(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .position(|&b| b <= b' ' || b == b':' || b == 0x7f)
        .unwrap_or(raw.len());
    &raw[..end]
}
