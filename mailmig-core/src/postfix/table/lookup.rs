//! One lookup straight from the source bytes, without building the table: what `map get` and
//! other single-key readers need on a large map.

use std::io::Read;

use super::{fold_key, is_space, Table, NEAR};
use crate::postfix::ParseOptions;

impl Table {
    /// Look `key` up in table source bytes as `postmap -q` does — the same answer as
    /// `Table::parse(src, options).get(key, fold)`, the value's bytes — without parsing the
    /// records that cannot be the answer.
    ///
    /// A record starts at a line whose first byte is neither white space nor `#`. Only records
    /// that could have the key are parsed, each with its continuation lines, by the table's
    /// own reader: a first line that starts with the (folded) key up to its first white space
    /// (ASCII case ignored when `fold`), or, when `fold`, one holding a non-ASCII byte (Unicode
    /// case folding can turn those into ASCII). The first such record that is an entry with
    /// the key is the answer, as the first entry wins in `postmap`.
    pub fn lookup_source(
        src: &[u8],
        key: &[u8],
        fold: bool,
        options: &ParseOptions,
    ) -> Option<Vec<u8>> {
        Wanted::new(key, fold, options).scan(src)
    }

    /// [`Table::lookup_source`] over a reader, a chunk of whole records at a time, stopping at
    /// the answer: the file is never held whole.
    pub fn lookup_reader(
        mut reader: impl Read,
        key: &[u8],
        fold: bool,
        options: &ParseOptions,
    ) -> std::io::Result<Option<Vec<u8>>> {
        let wanted = Wanted::new(key, fold, options);
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                // One record longer than the buffer: make room for the rest of it.
                buf.resize(buf.len() * 2, 0);
            }
            let n = reader.read(&mut buf[filled..])?;
            filled += n;
            if n == 0 {
                return Ok(wanted.scan(&buf[..filled]));
            }
            // Whole records only: up to the last line that starts one (its continuation lines
            // may still be unread).
            let Some(cut) = last_record_start(&buf[..filled]) else {
                continue;
            };
            if let Some(value) = wanted.scan(&buf[..cut]) {
                return Ok(Some(value));
            }
            buf.copy_within(cut..filled, 0);
            filled -= cut;
        }
    }
}

/// How much of a map [`Table::lookup_reader`] holds at once (grown for a longer record).
const CHUNK: usize = 1 << 20;

/// The start of the last line of `held` that starts a record and is not its first byte (so
/// that something is before it), if any.
fn last_record_start(held: &[u8]) -> Option<usize> {
    memchr::memrchr_iter(b'\n', held)
        .map(|nl| nl + 1)
        .find(|&start| start < held.len() && starts_record(held[start]))
}

/// The key looked up, and what a record's first line must start with to be read.
struct Wanted<'k> {
    key: &'k [u8],
    fold: bool,
    options: ParseOptions,
    /// The (folded) key up to its first white space: a key may hold escaped white space, and a
    /// continuation line may carry the rest; these bytes are on the record's first line.
    head: Vec<u8>,
}

impl<'k> Wanted<'k> {
    fn new(key: &'k [u8], fold: bool, options: &ParseOptions) -> Self {
        let folded = if fold {
            fold_key(key, options.smtputf8)
        } else {
            std::borrow::Cow::Borrowed(key)
        };
        let head_len = folded
            .iter()
            .position(|&b| is_space(b))
            .unwrap_or(folded.len());
        Self {
            key,
            fold,
            options: *options,
            head: folded[..head_len].to_vec(),
        }
    }

    /// The answer among the whole records in `src` (which starts at a record, or at the start
    /// of the file).
    fn scan(&self, src: &[u8]) -> Option<Vec<u8>> {
        // Bytes of ASCII alone (the usual map) need no per-line look for non-ASCII bytes.
        let any_non_ascii = self.fold && !src.is_ascii();
        let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', src).map(|nl| nl + 1));
        let mut skip_to = 0;
        for at in starts {
            if at < skip_to || at >= src.len() || !starts_record(src[at]) {
                continue;
            }
            // The head holds no white space, so a match never runs past the line's end.
            let line = if any_non_ascii {
                &src[at..next_line(src, at)]
            } else {
                &src[at..]
            };
            if !could_be(line, &self.head, self.fold, any_non_ascii) {
                continue;
            }
            let mut end = next_line(src, at);
            while end < src.len() && !starts_record(src[end]) {
                end = next_line(src, end);
            }
            let record = Table::parse_split(
                std::sync::Arc::new(src[at..end].to_vec()),
                &self.options,
                None,
                NEAR,
            );
            if let Some(entry) = record.get(self.key, self.fold) {
                return Some(entry.value().to_vec());
            }
            skip_to = end;
        }
        None
    }
}

/// Where the line after the one starting at `at` starts.
fn next_line(src: &[u8], at: usize) -> usize {
    memchr::memchr(b'\n', &src[at..]).map_or(src.len(), |i| at + i + 1)
}

fn starts_record(first: u8) -> bool {
    !is_space(first) && first != b'#'
}

/// Whether the record whose first line is `line` could have a lookup key that starts with
/// `head` (folded when `fold`): the line starts with it (ASCII case ignored when folding), or,
/// when folding, the line holds a non-ASCII byte (an ASCII line folds to ASCII; a file without
/// any, `any_non_ascii` false, is not looked at again).
fn could_be(line: &[u8], head: &[u8], fold: bool, any_non_ascii: bool) -> bool {
    let start = line.get(..head.len());
    if fold {
        start.is_some_and(|s| s.eq_ignore_ascii_case(head)) || (any_non_ascii && !line.is_ascii())
    } else {
        start == Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out two bytes at a time.
    struct Slow<'a>(&'a [u8]);

    impl Read for Slow<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = out.len().min(2).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// The source lookup (checked against the reader's, two bytes at a time) and the table's.
    fn both(src: &str, key: &str, fold: bool) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let opts = ParseOptions::default();
        let table = Table::parse(src.as_bytes().to_vec(), &opts);
        let fast = Table::lookup_source(src.as_bytes(), key.as_bytes(), fold, &opts);
        let streamed =
            Table::lookup_reader(Slow(src.as_bytes()), key.as_bytes(), fold, &opts).expect("read");
        assert_eq!(fast, streamed, "{key} {fold}");
        (
            fast,
            table.get(key.as_bytes(), fold).map(|e| e.value().to_vec()),
        )
    }

    #[test]
    fn the_first_entry_wins_continuations_and_skipped_records_included() {
        let src = "# c\nb@x y\nA@X: bad\na@x first\n  more\n# note\n\tstill\na@x second\nK@x k\n";
        for (key, fold) in [("a@x", true), ("A@X", true), ("a@x", false), ("A@X", false)] {
            let (fast, full) = both(src, key, fold);
            assert_eq!(fast, full, "{key} {fold}");
        }
        assert_eq!(
            both(src, "a@x", true).0.as_deref(),
            Some(&b"first  more\tstill"[..])
        );
        assert_eq!(both(src, "nobody", true), (None, None));
    }

    /// Found by the property test: a key with an escaped space.
    #[test]
    fn a_key_with_an_escaped_space_is_found() {
        let src = "j.smith\\ x@y.test v\n";
        for fold in [true, false] {
            let (fast, full) = both(src, "j.smith\\ x@y.test", fold);
            assert_eq!(fast, full);
            assert_eq!(fast.as_deref(), Some(&b"v"[..]));
        }
    }

    /// Found by the property test: a key that goes on across a continuation line.
    #[test]
    fn a_key_across_a_continuation_is_found() {
        let src = "aa\\\n\ra\ra";
        let opts = ParseOptions::default();
        let table = Table::parse(src.as_bytes().to_vec(), &opts);
        for e in table.entries() {
            for fold in [true, false] {
                let want = table.get(e.key(), fold).map(|e| e.value().to_vec());
                assert!(want.is_some());
                assert_eq!(
                    Table::lookup_source(src.as_bytes(), e.key(), fold, &opts),
                    want
                );
            }
        }
    }

    #[test]
    fn a_non_ascii_first_word_is_read_when_folding() {
        // KELVIN SIGN folds to `k`, both in the file and in the key asked for.
        let src = "\u{212a}@x kelvin\nk@x plain\n";
        for key in ["k@x", "\u{212a}@x"] {
            let (fast, full) = both(src, key, true);
            assert_eq!(fast, full, "{key}");
        }
    }
}
