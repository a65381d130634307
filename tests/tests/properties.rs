//! Properties of the lossless table document, over arbitrary bytes and realistic maps.

use mailmig_core::postfix::{
    Address, ClosureOptions, DiagnosticKind, ItemKind, ParseOptions, PostfixVersion, Severity,
    Table, VirtualMap,
};
use mailmig_tests::gen::{tricky_map, Rng};
use proptest::prelude::*;

/// Bytes biased towards what matters to the reader: line ends, blanks, `#`, quotes, NUL, 8-bit.
fn table_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"ab@x.:".to_vec()),
        3 => prop::sample::select(b"\n\r \t#\"\\".to_vec()),
        1 => prop::sample::select(vec![0u8, 0x0b, 0x0c, 0xc3, 0xa9, 0xe9, 0xff]),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..300)
}

fn options() -> impl Strategy<Value = ParseOptions> {
    (
        any::<bool>(),
        prop::sample::select(vec![(3, 1), (3, 7), (3, 10)]),
    )
        .prop_map(|(u, (a, b))| ParseOptions {
            smtputf8: u,
            version: PostfixVersion::new(a, b),
        })
}

/// The addresses of small alias maps full of chains: cases, extensions, bare users, catch-alls,
/// domain rewrites, quoting, Unicode case folding (the Kelvin sign folds to `k`).
const ALIAS_WORDS: &[&str] = &[
    "a@x.test",
    "A@X.TEST",
    "b@x.test",
    "c@y.test",
    "a+z@x.test",
    "b+z@x.test",
    "a",
    "b",
    "@x.test",
    "@y.test",
    "\"a\"@x.test",
    "c@x.test",
    "d@y.test",
    "B@x.test",
    "k@x.test",
    "\u{212A}@x.test",
    "ä@x.test",
    "Ä@X.test",
    "xa@x.test",
    "a.a@x.test",
    "a . a@x.test",
    "a-z@x.test",
];

/// The words of [`ALIAS_WORDS`] that hold nothing parsing could turn into other address bytes
/// (no quotes, non-ASCII bytes or a dot beside a blank): a map of only these is searched as a
/// whole, not record by record, by the closure of one mailbox.
fn plain_words() -> Vec<&'static str> {
    ALIAS_WORDS
        .iter()
        .copied()
        .filter(|w| w.is_ascii() && !w.contains('"') && !w.contains(" ."))
        .collect()
}

/// A virtual map of records over [`ALIAS_WORDS`] (only [`plain_words`] when `plain`), some
/// values spread over continuation lines.
fn alias_map(plain: bool) -> impl Strategy<Value = Vec<u8>> {
    let words = if plain {
        plain_words()
    } else {
        ALIAS_WORDS.to_vec()
    };
    let word = prop::sample::select(words);
    let record = (
        word.clone(),
        prop::collection::vec(word, 1..4),
        any::<bool>(),
    );
    prop::collection::vec(record, 0..14).prop_map(|records| {
        let mut out = Vec::new();
        for (key, values, continued) in records {
            let sep = if continued { ",\n\t" } else { ", " };
            out.extend_from_slice(format!("{key} {}\n", values.join(sep)).as_bytes());
        }
        out
    })
}

/// A reader that hands out `.1` bytes at a time.
struct Steps<'a>(&'a [u8], usize);

impl std::io::Read for Steps<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(self.1).min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn raws(t: &Table) -> Vec<Vec<u8>> {
    t.items().map(|i| i.raw().to_vec()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn render_parse_is_identity(bytes in table_bytes(), opts in options()) {
        let t = Table::parse(bytes.clone(), &opts);
        prop_assert_eq!(t.render(), bytes);
        // Every item is made of whole lines and items tile the input.
        let total: usize = t.items().map(|i| i.raw().len()).sum();
        prop_assert_eq!(total, t.render().len());
    }

    /// The fast paths agree with the full one: `errors()` is `diagnostics()`'s errors, and the
    /// entries postmap keeps are the entries `duplicates()` does not name (issue 16).
    #[test]
    fn fast_paths_agree_with_the_full_diagnostics(seed in any::<u64>(), lines in 0usize..60, fold in any::<bool>()) {
        let bytes = tricky_map(&mut Rng::new(seed), lines);
        let t = Table::parse(bytes, &ParseOptions::default());
        let all = t.diagnostics(fold);
        let errors: Vec<_> = all.iter().filter(|d| d.severity() == Severity::Error).cloned().collect();
        prop_assert_eq!(t.errors(), errors);
        let dup_lines: Vec<usize> = t.duplicates(fold).iter().map(|d| d.line).collect();
        let kept: Vec<usize> = t.entries().filter_map(|e| e.line()).filter(|l| !dup_lines.contains(l)).collect();
        let effective: Vec<usize> = t.effective_entries(fold).iter().filter_map(|e| e.line()).collect();
        prop_assert_eq!(&kept, &effective);
        // And both are what a plain map of every key says (the walk keeps a word per key and
        // compares keys only when their hashes meet).
        let mut first = std::collections::HashMap::new();
        let mut naive_dups = Vec::new();
        for e in t.entries() {
            let line = e.line().unwrap_or(0);
            match first.entry(e.lookup_key(fold).into_owned()) {
                std::collections::hash_map::Entry::Occupied(o) => naive_dups.push((line, *o.get())),
                std::collections::hash_map::Entry::Vacant(v) => { v.insert(line); }
            }
        }
        let dups: Vec<(usize, usize)> = t.duplicates(fold).iter().map(|d| match &d.kind {
            DiagnosticKind::DuplicateEntry { first_line, .. } => (d.line, *first_line),
            _ => (0, 0),
        }).collect();
        prop_assert_eq!(&dups, &naive_dups);
        let naive_kept: Vec<usize> = t.entries().filter_map(|e| e.line()).filter(|l| !naive_dups.iter().any(|(d, _)| d == l)).collect();
        prop_assert_eq!(effective, naive_kept);
    }

    /// The lookup straight from the source bytes answers as the parsed table does, for a key
    /// the map holds (in any case) and for arbitrary bytes.
    #[test]
    fn the_source_lookup_agrees_with_the_table(seed in any::<u64>(), lines in 0usize..60, fold in any::<bool>(), pick in any::<usize>(), upper in any::<bool>(), bytes in table_bytes(), opts in options(), step in 1usize..40) {
        let map = tricky_map(&mut Rng::new(seed), lines);
        for (src, opts) in [(map, ParseOptions::default()), (bytes, opts)] {
            let t = Table::parse(src.clone(), &opts);
            let keys: Vec<Vec<u8>> = t.entries().map(|e| e.key().to_vec()).collect();
            let mut key = if keys.is_empty() { b"a@x".to_vec() } else { keys[pick % keys.len()].clone() };
            if upper {
                key.make_ascii_uppercase();
            }
            let want = t.get(&key, fold).map(|e| e.value().to_vec());
            prop_assert_eq!(Table::lookup_source(&src, &key, fold, &opts), want.clone());
            // Streamed, `step` bytes a read: records cut anywhere by the reads.
            let streamed = Table::lookup_reader(Steps(&src, step), &key, fold, &opts).expect("read");
            prop_assert_eq!(streamed, want);
        }
    }

    #[test]
    fn realistic_maps_round_trip(seed in any::<u64>(), lines in 0usize..60) {
        let bytes = tricky_map(&mut Rng::new(seed), lines);
        let t = Table::parse(bytes.clone(), &ParseOptions::default());
        prop_assert_eq!(t.render(), bytes);
    }

    #[test]
    fn set_new_key_then_remove_restores_bytes(bytes in table_bytes(), opts in options()) {
        let mut t = Table::parse(bytes.clone(), &opts);
        let key = b"mailmig-new@example.test";
        prop_assume!(t.get(key, true).is_none());
        let id = t.set(key, b"dest@example.test", true).expect("valid edit");
        let edited = Table::parse(t.render(), &opts);
        prop_assert_eq!(
            edited.get(key, true).map(|e| e.value().to_vec()),
            Some(b"dest@example.test".to_vec())
        );
        t.remove(id).expect("present");
        prop_assert_eq!(t.render(), bytes);
    }

    #[test]
    fn an_edit_changes_only_its_record(seed in any::<u64>(), lines in 1usize..40, pick in any::<usize>()) {
        let bytes = tricky_map(&mut Rng::new(seed), lines);
        let opts = ParseOptions::default();
        let t = Table::parse(bytes, &opts);
        let ids: Vec<_> = t.entries().map(|e| e.id()).collect();
        prop_assume!(!ids.is_empty());
        let id = ids[pick % ids.len()];
        let index = t.items().position(|i| matches!(i.kind(), ItemKind::Entry(e) if e.id() == id)).expect("entry");
        let before = raws(&t);

        // Replace the value: items before stay; the record changes; items after stay (inner
        // comment lines of the record reappear after it).
        let mut replaced = t.clone();
        replaced.replace_value(id, b"new@example.test").expect("valid value");
        let after = raws(&replaced);
        prop_assert_eq!(&after[..index], &before[..index]);
        prop_assert_eq!(&after[after.len() - (before.len() - index - 1)..], &before[index + 1..]);
        let reparsed = Table::parse(replaced.render(), &opts);
        let key = t.entry(id).expect("entry").key().to_vec();
        let at_index = reparsed.items().nth(index).map(|i| match i.kind() {
            ItemKind::Entry(e) => (e.key().to_vec(), e.value().to_vec()),
            _ => (Vec::new(), Vec::new()),
        });
        prop_assert_eq!(at_index, Some((key, b"new@example.test".to_vec())));
        prop_assert_eq!(reparsed.items().count(), replaced.items().count());

        // Remove: exactly that item goes (the last item may lose a final newline it was given).
        let mut removed = t.clone();
        removed.remove(id).expect("present");
        let after = raws(&removed);
        prop_assert_eq!(after.len(), before.len() - 1);
        prop_assert_eq!(&after[..index.min(after.len().saturating_sub(1))], &before[..index.min(after.len().saturating_sub(1))]);
        prop_assert_eq!(&after[index..], &before[index + 1..]);
    }
}

proptest! {
    // Each case expands every address of the alphabet twice over maps full of loops: fewer
    // cases, and limits small enough that a loop stops after a few rounds (the limits apply
    // alike to both paths; the loops and their order are what is compared).
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// One closure without the reverse index (a scan of the values) is the indexed one, order
    /// included, for every address of the alphabet and every setting that changes addresses.
    /// Half the maps are plain: the scan searches them as a whole instead of record by record.
    #[test]
    fn the_scanned_closure_is_the_indexed_one(map in any::<bool>().prop_flat_map(alias_map), delimiter in any::<bool>(), origin in any::<bool>(), smtputf8 in any::<bool>()) {
        let t = Table::parse(map, &ParseOptions { smtputf8, ..ParseOptions::default() });
        let options = ClosureOptions {
            smtputf8,
            recipient_delimiter: if delimiter { b"+-".to_vec() } else { Vec::new() },
            myorigin: origin.then(|| b"x.test".to_vec()),
            mydestination: vec![b"x.test".to_vec()],
            recursion_limit: 8,
            expansion_limit: 40,
            ..ClosureOptions::default()
        };
        let indexed = VirtualMap::new(&[&t], options.clone());
        let scanned = VirtualMap::for_one_mailbox(&[&t], options);
        for word in ALIAS_WORDS.iter().filter(|w| !w.starts_with('@')) {
            let a = Address(word.as_bytes().to_vec());
            prop_assert_eq!(scanned.reverse_closure(&a), indexed.reverse_closure(&a), "{}", word);
        }
    }
}
