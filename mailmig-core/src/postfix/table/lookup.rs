//! One lookup straight from the source bytes, without building the table: what `map get` and
//! other single-key readers need on a large map.

use super::{fold_key, is_space, Table};
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
    /// case folding can turn those into ASCII). The first such record that is an entry with the key is the answer, as the first
    /// entry wins in `postmap`.
    pub fn lookup_source(
        src: &[u8],
        key: &[u8],
        fold: bool,
        options: &ParseOptions,
    ) -> Option<Vec<u8>> {
        // The key up to its first white space (a key may hold escaped white space, and a
        // continuation line may carry the rest): those bytes are on the record's first line.
        let wanted = if fold {
            fold_key(key, options.smtputf8)
        } else {
            std::borrow::Cow::Borrowed(key)
        };
        let head = &wanted[..wanted
            .iter()
            .position(|&b| is_space(b))
            .unwrap_or(wanted.len())];
        // A file of ASCII alone (the usual one) needs no per-line look for non-ASCII bytes.
        let any_non_ascii = fold && !src.is_ascii();
        let mut at = 0;
        while at < src.len() {
            let line_end = next_line(src, at);
            if starts_record(src[at]) && could_be(&src[at..line_end], head, fold, any_non_ascii) {
                let mut end = line_end;
                while end < src.len() && !starts_record(src[end]) {
                    end = next_line(src, end);
                }
                let record = Table::parse_split(src[at..end].to_vec(), options, None);
                if let Some(entry) = record.get(key, fold) {
                    return Some(entry.value().to_vec());
                }
                at = end;
            } else {
                at = line_end;
            }
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

    fn both(src: &str, key: &str, fold: bool) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let opts = ParseOptions::default();
        let table = Table::parse(src.as_bytes().to_vec(), &opts);
        (
            Table::lookup_source(src.as_bytes(), key.as_bytes(), fold, &opts),
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
