//! Finding an address's local part as a whole word: in one record's bytes, or in one search of
//! a whole table's bytes that looks for the needle's rarest byte.

/// The bytes a local part can hold (RFC 5322 atext and the dot), as a table: a whole-table
/// search asks about millions of bytes.
const ATOM: [bool; 256] = {
    let mut atom = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        atom[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let specials = b"!#$%&'*+-/=?^_`{|}~.";
    let mut k = 0;
    while k < specials.len() {
        atom[specials[k] as usize] = true;
        k += 1;
    }
    atom
};

/// A byte that a local part can hold (RFC 5322 atext and the dot).
pub(super) fn is_atom(b: u8) -> bool {
    ATOM[usize::from(b)]
}

/// Whether `local` (ASCII case ignored) is at `i` in `bytes` as a whole word: no local-part
/// byte before it, none after it but a recipient delimiter. (The byte before is looked at
/// first: in a search of a whole table it turns most places away.)
pub(super) fn is_word_at(bytes: &[u8], i: usize, local: &[u8], delimiters: &[u8]) -> bool {
    let end = i + local.len();
    (i == 0 || bytes.get(i - 1).is_some_and(|&b| !is_atom(b)))
        && bytes
            .get(i..end)
            .is_some_and(|w| w.eq_ignore_ascii_case(local))
        && bytes
            .get(end)
            .is_none_or(|&b| !is_atom(b) || delimiters.contains(&b))
}

/// How often each byte occurs in a sample of a table's bytes: which byte of a needle to
/// search for. Only speed depends on it, never an answer.
#[derive(Debug, Clone)]
pub(super) struct ByteFrequency([u32; 256]);

/// The sample: this many slices of [`SLICE`] bytes, spread evenly over the bytes.
const SLICES: usize = 64;
const SLICE: usize = 16 * 1024;

impl ByteFrequency {
    /// Count the bytes of up to [`SLICES`] evenly spread slices of `bytes` (all of them when
    /// small).
    pub(super) fn sample(bytes: &[u8]) -> Self {
        let mut counts = [0u32; 256];
        let step = (bytes.len() / SLICES).max(SLICE);
        for start in (0..bytes.len()).step_by(step) {
            for &b in &bytes[start..(start + SLICE).min(bytes.len())] {
                counts[usize::from(b)] = counts[usize::from(b)].saturating_add(1);
            }
        }
        Self(counts)
    }

    /// The place in `local` of the byte whose two cases are the rarest together.
    fn rarest(&self, local: &[u8]) -> usize {
        let cases = |b: u8| {
            let (l, u) = (b.to_ascii_lowercase(), b.to_ascii_uppercase());
            let count = |c: u8| u64::from(self.0[usize::from(c)]);
            count(l) + if u == l { 0 } else { count(u) }
        };
        (0..local.len())
            .min_by_key(|&j| cases(local[j]))
            .unwrap_or(0)
    }
}

/// Where `local` is a whole word in `bytes` (as [`is_word_at`] says), in one search of all the
/// bytes for the needle's rarest byte (per `frequency`); ascending. `None` when such a search
/// could miss a record whose own bytes hold the word: an empty local part, or one holding a
/// line break (a record's bytes end with one, and the word could run into the next record).
pub(super) fn word_hits(
    bytes: &[u8],
    local: &[u8],
    delimiters: &[u8],
    frequency: &ByteFrequency,
) -> Option<Vec<usize>> {
    if local.is_empty() || local.contains(&b'\n') {
        return None;
    }
    let j = frequency.rarest(local);
    let cut = (bytes.len() >= HALVES_FROM && crate::cores::two()).then_some(bytes.len() / 2);
    Some(hits_by(bytes, local, delimiters, j, cut))
}

/// From this many bytes on, with a second core, [`word_hits`] searches the two halves side by
/// side (below it a thread costs more than it saves).
const HALVES_FROM: usize = 4 << 20;

/// Where `local` is a whole word in `bytes`, found through its byte `j` (either case); with
/// `cut`, the bytes before and after it searched side by side (each word read in all of
/// `bytes`, so one across the cut is found). Ascending.
fn hits_by(
    bytes: &[u8],
    local: &[u8],
    delimiters: &[u8],
    j: usize,
    cut: Option<usize>,
) -> Vec<usize> {
    let (lower, upper) = (local[j].to_ascii_lowercase(), local[j].to_ascii_uppercase());
    let search = |from: usize, to: usize| -> Vec<usize> {
        memchr::memchr2_iter(lower, upper, &bytes[from..to])
            .filter_map(|p| (from + p).checked_sub(j))
            .filter(|&i| is_word_at(bytes, i, local, delimiters))
            .collect()
    };
    let Some(cut) = cut.map(|c| c.min(bytes.len())) else {
        return search(0, bytes.len());
    };
    let (mut hits, back) =
        crate::cores::side_by_side(|| search(0, cut), || search(cut, bytes.len()));
    hits.extend(back);
    hits
}

/// The places in `bytes` that could make a record holding them other than plain (what
/// `is_plain` turns away: quotes, escapes, parentheses, angle brackets, dots beside a blank),
/// ascending: a table's records are plain if those holding these places are. `None` when the
/// bytes are not all ASCII (then every record is looked at). A dot that starts a record counts
/// here (the line break before it is a blank), not in the record: it only costs the search.
pub(super) fn plain_breaks(bytes: &[u8]) -> Option<Vec<usize>> {
    if !bytes.is_ascii() {
        return None;
    }
    let mut breaks: Vec<usize> = memchr::memchr3_iter(b'"', b'\\', b'(', bytes)
        .chain(memchr::memchr_iter(b'<', bytes))
        .chain(memchr::memchr_iter(b'.', bytes).filter(|&k| {
            k > 0 && bytes[k - 1].is_ascii_whitespace()
                || bytes.get(k + 1).is_some_and(u8::is_ascii_whitespace)
        }))
        .collect();
    breaks.sort_unstable();
    Some(breaks)
}

#[cfg(test)]
mod tests {
    use super::super::{could_list, is_plain};
    use super::*;
    use crate::postfix::{ParseOptions, Table};
    use proptest::prelude::*;

    /// Records of words that could be local parts, or hide them in longer words, domains,
    /// extensions and case changes; some continued over lines, some behind comments.
    fn plain_table() -> impl Strategy<Value = Vec<u8>> {
        let word = prop::sample::select(vec![
            "a", "A", "al", "aL", "b", "ab", "xa", "a.a", "a-z", "a+z", "z-a", "a@x", "x@a", "-a",
            "a-", ".a", "a.", "#a", "a#a",
        ]);
        let record = (
            prop::collection::vec(word, 1..5),
            prop::sample::select(vec![" ", "\t", ", ", ",\n\t", "\n# a\n ", ":"]),
        );
        prop::collection::vec(record, 0..12).prop_map(|records| {
            let mut out = Vec::new();
            for (words, sep) in records {
                out.extend_from_slice(words.join(sep).as_bytes());
                out.push(b'\n');
            }
            out
        })
    }

    proptest! {
        /// A search of the whole table finds exactly the records that a look at each record's
        /// bytes finds, for every needle and both delimiter settings.
        #[test]
        fn one_search_finds_the_records_each_record_would(bytes in plain_table(), plus in any::<bool>()) {
            let t = Table::parse(bytes, &ParseOptions::default());
            let delimiters: &[u8] = if plus { b"+-" } else { b"" };
            let frequency = ByteFrequency::sample(t.buffers()[0]);
            for local in [&b"a"[..], b"al", b"ab", b"a.a", b"z", b"x", b"a-z"] {
                let each: Vec<_> = t
                    .entries_where(|raw| could_list(raw, local, delimiters, true))
                    .map(|e| e.id())
                    .collect();
                let hits = word_hits(t.buffers()[0], local, delimiters, &frequency).expect("searchable");
                let once: Vec<_> = t
                    .entries_holding(&hits, |_| unreachable!("nothing edited"))
                    .map(|e| e.id())
                    .collect();
                prop_assert_eq!(once, each, "{:?}", String::from_utf8_lossy(local));
            }
        }
    }

    /// Records of plain words and of the bytes that make a record other than plain, some of
    /// them in comment lines (which do not count).
    fn mixed_table() -> impl Strategy<Value = Vec<u8>> {
        let word = prop::sample::select(vec![
            "a", "a.b", ".a", "a.", "\"a\"", "a\\b", "(c)", "<a>", "#.", "# (", "@", "b",
        ]);
        let record = (
            prop::collection::vec(word, 1..4),
            prop::sample::select(vec![" ", "\t", ", ", ",\n\t", "\n# (\n ", "\n"]),
        );
        let records = prop::collection::vec(record, 0..6);
        (records, any::<bool>()).prop_map(|(records, unicode)| {
            let mut out = Vec::new();
            for (words, sep) in records {
                out.extend_from_slice(words.join(sep).as_bytes());
                out.push(b'\n');
            }
            if unicode {
                out.extend_from_slice("\u{e4} b\n".as_bytes());
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// The records holding a break are the ones to look at: a table is found plain through
        /// them exactly when every record is.
        #[test]
        fn the_breaks_tell_a_plain_table(bytes in mixed_table()) {
            let t = Table::parse(bytes, &ParseOptions::default());
            let each = t.entries().all(|e| is_plain(e.raw()));
            if let Some(breaks) = plain_breaks(t.buffers()[0]) {
                let found = t
                    .entries_holding(&breaks, |_| unreachable!("nothing edited"))
                    .all(|e| is_plain(e.raw()));
                prop_assert_eq!(found, each);
            } else {
                prop_assert!(!t.buffers()[0].is_ascii());
            }
        }
    }

    proptest! {
        /// Searched in two parts side by side, cut anywhere (inside a word too), the bytes give
        /// the places one search gives, for every byte of the needle it could go by.
        #[test]
        fn a_search_in_two_parts_is_one_search(bytes in plain_table(), cut in any::<prop::sample::Index>(), plus in any::<bool>()) {
            let delimiters: &[u8] = if plus { b"+-" } else { b"" };
            let cut = cut.index(bytes.len() + 1);
            for local in [&b"a"[..], b"al", b"ab", b"a.a", b"a-z", b"xa"] {
                for j in 0..local.len() {
                    let whole = hits_by(&bytes, local, delimiters, j, None);
                    prop_assert_eq!(hits_by(&bytes, local, delimiters, j, Some(cut)), whole);
                }
            }
        }
    }

    #[test]
    fn the_rarest_byte_of_the_needle_is_searched() {
        let f = ByteFrequency::sample(b"aaaaaaaAAAAbbbc");
        assert_eq!(f.rarest(b"abc"), 2);
        assert_eq!(f.rarest(b"ab"), 1);
        // Both cases count: `a` alone (2) is rarer than `b` (3), `a` and `A` (7) are not.
        let f = ByteFrequency::sample(b"aaAAAAAbbb");
        assert_eq!(f.rarest(b"ab"), 1);
    }

    #[test]
    fn a_needle_with_a_line_break_or_none_is_not_searched_as_a_whole() {
        let f = ByteFrequency::sample(b"a\nb");
        assert_eq!(word_hits(b"a\nb", b"a\nb", b"", &f), None);
        assert_eq!(word_hits(b"a\nb", b"", b"", &f), None);
        assert_eq!(word_hits(b"a\nb", b"b", b"", &f), Some(vec![2]));
    }
}
