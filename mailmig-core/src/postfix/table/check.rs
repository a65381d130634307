//! Checking a table's source in one pass: postmap's findings and the values' checks, without
//! building the [`Table`].
//!
//! A [`Table`] keeps every record so that it can be edited and written back; a check needs only
//! each record's findings and its key's hash. Reading each record once, while its bytes are in
//! the cache, and keeping twelve bytes an entry, is what makes `map check` of a large map cost
//! less than building the table it would throw away. [`Table::findings`] is the same check on
//! a parsed table; a property test holds the two to the same answer.

use std::borrow::Cow;
use std::hash::BuildHasher;

use super::first_keys::{equal_hash_runs, Keyed, Narrow, Wide, SEED};
use super::*;
use crate::postfix::{access_value_problem, value_problem};
use crate::read_at::{line_start_after, read_retrying, read_through, ReadAt};

/// What a map's values are checked for, beside postmap's own findings: what the map is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRules {
    /// Nothing: only postmap's findings.
    Plain,
    /// virtual(5): values are address lists ([`value_problem`]).
    Virtual,
    /// access(5): values are actions ([`access_value_problem`]).
    Access,
}

impl ValueRules {
    /// The finding on one entry's value, if any.
    fn problem(self, value: &[u8]) -> Option<DiagnosticKind> {
        match self {
            ValueRules::Plain => None,
            ValueRules::Virtual => {
                value_problem(value).map(|reason| DiagnosticKind::VirtualBadValue { reason })
            }
            ValueRules::Access => access_value_problem(value)
                .map(|reason| DiagnosticKind::AccessNotAnAction { reason }),
        }
    }
}

impl Table {
    /// Every finding of the table: [`Table::diagnostics`], then the problem of each value under
    /// `values` for every entry postmap keeps (not for a duplicate), in line and column order.
    /// [`check_source`] gives the same from the source without building the table.
    pub fn findings(&self, fold: bool, values: ValueRules) -> Vec<Diagnostic> {
        // postmap's findings and the values' checks need nothing of each other: side by side.
        let (mut out, semantic) = if values == ValueRules::Plain {
            (self.diagnostics(fold), Vec::new())
        } else {
            crate::cores::side_by_side(|| self.diagnostics(fold), || self.value_findings(values))
        };
        // The entries postmap keeps: every entry but the duplicates just found.
        let duplicate_lines: std::collections::HashSet<usize> = out
            .iter()
            .filter(|d| matches!(d.kind, DiagnosticKind::DuplicateEntry { .. }))
            .map(|d| d.line)
            .collect();
        out.extend(
            semantic
                .into_iter()
                .filter(|d| !duplicate_lines.contains(&d.line)),
        );
        out.sort_by_key(|d| (d.line, d.column));
        out
    }

    /// The problem of every entry's value under `values`, in file order.
    fn value_findings(&self, values: ValueRules) -> Vec<Diagnostic> {
        self.entries()
            .filter_map(|entry| {
                values.problem(entry.value()).map(|kind| Diagnostic {
                    line: entry.line().unwrap_or(0),
                    column: entry.key().len() + 2,
                    kind,
                })
            })
            .collect()
    }
}

/// The findings of the table `src` holds, read with `options`: what [`Table::findings`] gives
/// for `Table::parse(src, options)`, found in one pass over the records (two halves side by side
/// for a large source), keeping only each entry's key place and hash.
pub fn check_source(
    src: &[u8],
    options: &ParseOptions,
    fold: bool,
    values: ValueRules,
) -> Vec<Diagnostic> {
    let split = parallel_split(src);
    // Positions are entry numbers; fewer than 2^32 of them unless the source is that large.
    if u32::try_from(src.len()).is_ok() {
        check_split::<Narrow>(src, options, fold, values, split)
    } else {
        check_split::<Wide>(src, options, fold, values, split)
    }
}

/// What a half reads at a time when a table is read through a buffer (it grows to hold a
/// longer stretch without a record's first line).
const BUFFER: usize = 1 << 20;

/// The findings of the table `file` holds, read with `options`: what [`check_source`] gives for
/// its bytes, found while the file is read through a buffer (two halves side by side for a
/// large file), as sed reads — nothing of the file is kept but each entry's key, hash and line.
/// A file changed while it is read is checked as read.
pub fn check_file(
    file: &fs_err::File,
    options: &ParseOptions,
    fold: bool,
    values: ValueRules,
) -> std::io::Result<Vec<Diagnostic>> {
    let len = file.metadata()?.len();
    let split = if len >= PARALLEL_MIN as u64 && crate::cores::two() {
        // A record line near the middle, if the front half holds a record (`record_before`).
        let split = line_start_after(file, len / 2, starts_record)?;
        let mut first = [0u8; 1];
        let first_record = if read_retrying(file, &mut first, 0)? == 1 && starts_record(first[0]) {
            Some(0)
        } else {
            line_start_after(file, 0, starts_record)?
        };
        split.filter(|&at| Some(at) != first_record)
    } else {
        None
    };
    // Positions are entry numbers, fewer than 2^32 unless the file is that large (one that
    // grows past 8 GiB while it is read could misnumber only its repeats).
    let read = Reading { len, split };
    if u32::try_from(len).is_ok() {
        check_read::<Narrow>(file, options, fold, values, read, BUFFER)
    } else {
        check_read::<Wide>(file, options, fold, values, read, BUFFER)
    }
}

/// Whether a line whose first byte is `b` starts a record.
fn starts_record(b: u8) -> bool {
    !is_space(b) && b != b'#'
}

/// How a source is read: its size when opened, and where its back half starts (a record
/// line), if it is read in two halves.
#[derive(Clone, Copy)]
struct Reading {
    len: u64,
    split: Option<u64>,
}

/// The check of a source read `buffer` bytes at a time, in two halves side by side when
/// `reading` has a split.
fn check_read<K: Keyed>(
    src: &(impl ReadAt + ?Sized),
    options: &ParseOptions,
    fold: bool,
    values: ValueRules,
    reading: Reading,
    buffer: usize,
) -> std::io::Result<Vec<Diagnostic>> {
    let read = |start: u64, end: Option<u64>| {
        // The half's size, to size what is kept of its entries.
        let len = end.unwrap_or(reading.len).saturating_sub(start);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let mut half = Checker::<K>::new(&[], len, options, fold, values);
        half.read(src, start, end, buffer)?;
        half.pairs.sort_unstable();
        Ok::<_, std::io::Error>(half)
    };
    let (front, back) = match reading.split {
        Some(at) => {
            let (front, back) = crate::cores::side_by_side(|| read(0, Some(at)), || read(at, None));
            (front?, Some(back?))
        }
        None => (read(0, None)?, None),
    };
    Ok(Halves { front, back }.findings())
}

/// What [`dump_source`] hands its reader.
pub trait DumpSink {
    /// The records postmap skips, in line order (what [`Table::errors`] gives), before any
    /// entry.
    fn skipped(&mut self, errors: Vec<Diagnostic>);
    /// One entry postmap keeps, in file order: its lookup key (folded when asked) and its value.
    fn entry(&mut self, key: &[u8], value: &[u8]);
}

/// The entries `postmap -s` lists for the table `src` holds, read with `options`: what
/// [`Table::for_each_effective_entry`] gives, found in one pass over the records (two halves
/// side by side for a large source) without building the table.
pub fn dump_source(src: &[u8], options: &ParseOptions, fold: bool, sink: &mut impl DumpSink) {
    let split = parallel_split(src);
    if u32::try_from(src.len()).is_ok() {
        dump_split::<Narrow>(src, options, fold, split, sink);
    } else {
        dump_split::<Wide>(src, options, fold, split, sink);
    }
}

fn dump_split<K: Keyed>(
    src: &[u8],
    options: &ParseOptions,
    fold: bool,
    split: Option<usize>,
    sink: &mut impl DumpSink,
) {
    let mut halves = read_halves::<K>(src, options, fold, ValueRules::Plain, true, split);
    let repeats = halves.repeats();
    let errors: Vec<Diagnostic> = halves
        .found()
        .into_iter()
        .filter(|d| d.severity() == Severity::Error)
        .collect();
    // In line order already: a record has at most one such finding.
    sink.skipped(errors);
    let mut repeated = repeats.iter().map(|&(at, _)| at).peekable();
    for at in 0..halves.entries() {
        if repeated.next_if_eq(&at).is_none() {
            let (half, i) = halves.locate(at);
            sink.entry(half.lookup_key(i), half.value(i));
        }
    }
}

/// The check, in two halves side by side when `split` (the start of a record line) is given.
fn check_split<K: Keyed>(
    src: &[u8],
    options: &ParseOptions,
    fold: bool,
    values: ValueRules,
    split: Option<usize>,
) -> Vec<Diagnostic> {
    read_halves::<K>(src, options, fold, values, false, split).findings()
}

/// The source read, in two halves side by side when `split` is given; with `keep_values`, each
/// entry's value is kept too.
fn read_halves<'s, K: Keyed>(
    src: &'s [u8],
    options: &ParseOptions,
    fold: bool,
    values: ValueRules,
    keep_values: bool,
    split: Option<usize>,
) -> Halves<'s, K> {
    let read = |start: usize, end: usize| {
        let mut half = Checker::<K>::new(src, src.len(), options, fold, values);
        if keep_values {
            half.values_at = Some(Vec::with_capacity(half.keys.capacity()));
        }
        half.lines = walk_lines(src, start, end, 1, &mut half);
        half.pairs.sort_unstable();
        half
    };
    let (front, back) = match split {
        Some(split) => {
            let (front, back) =
                crate::cores::side_by_side(|| read(0, split), || read(split, src.len()));
            (front, Some(back))
        }
        None => (read(0, src.len()), None),
    };
    Halves { front, back }
}

/// A key's place as it is looked up, folded when asked (in the source or the checker's side
/// buffer), and its entry's first line.
#[derive(Clone, Copy)]
struct KeyAt {
    key: Raw,
    line: u32,
}

/// The reader of one range of the source: its findings, and each entry's key and hash.
struct Checker<'s, K> {
    /// The whole source when it is in memory (keys and values of one-line records are found
    /// there); empty when it is read through a buffer (every key is copied to `side`).
    whole: &'s [u8],
    options: ParseOptions,
    fold: bool,
    values: ValueRules,
    hasher: foldhash::fast::FixedState,
    /// The logical line of a record of several lines.
    joined: Vec<u8>,
    /// The keys (and kept values) that are not in `whole` as they are: those of records of
    /// several lines or read through a buffer, and keys folded.
    side: Vec<u8>,
    far: Vec<Span>,
    keys: Vec<KeyAt>,
    /// When kept: each entry's value (in the source or the side buffer).
    values_at: Option<Vec<Raw>>,
    /// (hash, entry number), sorted once the range is read.
    pairs: Vec<K>,
    /// postmap's findings, in file order (lines counted from the range's start).
    found: Vec<Diagnostic>,
    /// The values' findings and their entry numbers, in file order.
    semantic: Vec<(usize, Diagnostic)>,
    /// Lines read (the last line's number).
    lines: usize,
}

impl<'s, K: Keyed> Checker<'s, K> {
    /// A reader of `whole` (empty when the source is read through a buffer) of about `len`
    /// bytes.
    fn new(
        whole: &'s [u8],
        len: usize,
        options: &ParseOptions,
        fold: bool,
        values: ValueRules,
    ) -> Self {
        Checker {
            whole,
            options: *options,
            fold,
            values,
            hasher: foldhash::fast::FixedState::with_seed(SEED),
            joined: Vec::new(),
            side: Vec::new(),
            far: Vec::new(),
            // About one entry a line of 48 bytes; reserving generously costs only address space.
            keys: Vec::with_capacity(len / 96 + 1),
            pairs: Vec::with_capacity(len / 96 + 1),
            values_at: None,
            found: Vec::new(),
            semantic: Vec::new(),
            lines: 0,
        }
    }

    fn bytes(&self, raw: Raw) -> &[u8] {
        let span = raw.unpack(&self.far);
        match span.buf() {
            Buf::Src => &self.whole[span.begin()..span.end],
            Buf::Side => &self.side[span.begin()..span.end],
        }
    }

    /// The key of entry `at` as it is looked up.
    fn lookup_key(&self, at: usize) -> &[u8] {
        self.bytes(self.keys[at].key)
    }

    /// The value of entry `at`, when values are kept.
    fn value(&self, at: usize) -> &[u8] {
        match &self.values_at {
            Some(values) => self.bytes(values[at]),
            None => &[],
        }
    }
}

/// `key` as postmap looks it up: folded when `fold`.
fn lookup_key<'k>(key: &'k [u8], fold: bool, options: &ParseOptions) -> Cow<'k, [u8]> {
    if fold {
        fold_key(key, options.smtputf8)
    } else {
        Cow::Borrowed(key)
    }
}

impl<K: Keyed> Records for Checker<'_, K> {
    fn record(&mut self, rec: &Rec, content: &[(usize, usize)]) {
        self.record_in(self.whole, rec, content);
    }

    fn plain(&mut self, _line: usize, _start: usize, _end: usize, _class: LineClass) {}

    fn stray_nul(&mut self, line: usize) {
        self.note_stray_nul(line);
    }
}

impl<K: Keyed> Checker<'_, K> {
    /// Reads `start..end` of `src` (to its end without `end`) through a buffer of `buffer`
    /// bytes. The records of each buffer up to its last record line are read; that line and
    /// what follows it start the next buffer (a record goes on over its continuation lines).
    fn read(
        &mut self,
        src: &(impl ReadAt + ?Sized),
        start: u64,
        end: Option<u64>,
        buffer: usize,
    ) -> std::io::Result<()> {
        // Whole records: up to the last record line (a stretch without one makes it grow).
        read_through(src, start, end, buffer, last_record_line, |records| {
            let first_line = self.lines + 1;
            let mut reader = InBuffer {
                buf: records,
                checker: self,
            };
            let last = walk_lines(records, 0, records.len(), first_line, &mut reader);
            self.lines = last;
        })
    }
}

/// Where the last line of `bytes` that starts a record starts, if the line before it ends in
/// `bytes` and a record starts before it (0 when there is none): the records before it are
/// complete. A part is never only the lines before a file's first record: a NUL in them goes
/// with that record (Postfix 3.9 and later), not with a file without records.
fn last_record_line(bytes: &[u8]) -> usize {
    let is_record_line = |nl: usize| bytes.get(nl + 1).is_some_and(|&b| starts_record(b));
    let Some(last) = memchr::memrchr_iter(b'\n', bytes).find(|&nl| is_record_line(nl)) else {
        return 0;
    };
    // Every part after the first starts at a record line, so this is a scan only at the start.
    let record_before = bytes.first().is_some_and(|&b| starts_record(b))
        || memchr::memrchr_iter(b'\n', &bytes[..last]).any(is_record_line);
    if record_before {
        last + 1
    } else {
        0
    }
}

/// A [`Checker`] reading the records of one buffer of a source read through a buffer.
struct InBuffer<'b, 'c, 's, K> {
    buf: &'b [u8],
    checker: &'c mut Checker<'s, K>,
}

impl<K: Keyed> Records for InBuffer<'_, '_, '_, K> {
    fn record(&mut self, rec: &Rec, content: &[(usize, usize)]) {
        self.checker.record_in(self.buf, rec, content);
    }

    fn plain(&mut self, _line: usize, _start: usize, _end: usize, _class: LineClass) {}

    fn stray_nul(&mut self, line: usize) {
        self.checker.note_stray_nul(line);
    }
}

impl<K: Keyed> Checker<'_, K> {
    /// A file without records whose comment lines hold a NUL: Postfix 3.9 and later warn about
    /// its last line.
    fn note_stray_nul(&mut self, line: usize) {
        if self.options.version.warns_on_nul() {
            self.found.push(Diagnostic {
                line,
                column: 1,
                kind: DiagnosticKind::NulByte {
                    postmap_warns: true,
                },
            });
        }
    }

    /// One record of `src` (the whole source, or the buffer it is read through).
    fn record_in(&mut self, src: &[u8], rec: &Rec, content: &[(usize, usize)]) {
        let single_line = content.len() == 1;
        // Kept in place only when the source stays in memory.
        let in_place = single_line && !self.whole.is_empty();
        if !single_line {
            self.joined.clear();
            for &(s, e) in content {
                self.joined.extend_from_slice(&src[s..e]);
            }
        }
        let text: &[u8] = if single_line {
            &src[content[0].0..content[0].1]
        } else {
            &self.joined
        };
        let line = u32::try_from(rec.line).unwrap_or(u32::MAX);
        let first_line_len = content[0].1 - content[0].0;
        match parse_logical(
            text,
            first_line_len,
            rec.orphan,
            rec.nul_beside,
            &self.options,
        ) {
            Parsed::Unparsed { data, warnings } => {
                self.found
                    .extend(warnings.into_iter().map(|(column, kind)| Diagnostic {
                        line: line as usize,
                        column,
                        kind,
                    }));
                self.found.push(Diagnostic {
                    line: line as usize,
                    column: data.column,
                    kind: data.kind,
                });
            }
            Parsed::Entry {
                key_end,
                value,
                warnings,
            } => {
                self.found
                    .extend(warnings.into_iter().map(|(column, kind)| Diagnostic {
                        line: line as usize,
                        column,
                        kind,
                    }));
                // The key as it is looked up is what is kept: folded once, here.
                let key = lookup_key(&text[..key_end], self.fold, &self.options);
                let at = self.keys.len();
                let hash = self.hasher.hash_one(key.as_ref());
                self.pairs.push(K::new(hash, at));
                if let Some(kind) = self.values.problem(&text[value.0..value.1]) {
                    self.semantic.push((
                        at,
                        Diagnostic {
                            line: line as usize,
                            column: key_end + 2,
                            kind,
                        },
                    ));
                }
                let span = if in_place && matches!(key, Cow::Borrowed(_)) {
                    Span::src(content[0].0, content[0].0 + key_end)
                } else {
                    let start = self.side.len();
                    self.side.extend_from_slice(&key);
                    Span::side(start, self.side.len())
                };
                let key = Raw::pack(span, &mut self.far, NEAR);
                self.keys.push(KeyAt { key, line });
                if let Some(values_at) = &mut self.values_at {
                    let span = if in_place {
                        Span::src(content[0].0 + value.0, content[0].0 + value.1)
                    } else {
                        let start = self.side.len();
                        self.side.extend_from_slice(&text[value.0..value.1]);
                        Span::side(start, self.side.len())
                    };
                    values_at.push(Raw::pack(span, &mut self.far, NEAR));
                }
            }
        }
    }
}

/// The checkers of a source's halves (or of the whole of a small one).
struct Halves<'s, K> {
    front: Checker<'s, K>,
    back: Option<Checker<'s, K>>,
}

impl<K: Keyed> Halves<'_, K> {
    /// The back half's lines are counted after the front's.
    fn back_line(&self, line: usize) -> usize {
        let front_lines = u32::try_from(self.front.lines).unwrap_or(u32::MAX);
        u32::try_from(line)
            .unwrap_or(u32::MAX)
            .saturating_add(front_lines) as usize
    }

    /// Entry `at` (numbered through both halves): its checker and number there.
    fn locate(&self, at: usize) -> (&Checker<'_, K>, usize) {
        let base = self.front.keys.len();
        match &self.back {
            Some(back) if at >= base => (back, at - base),
            _ => (&self.front, at),
        }
    }

    fn line_of(&self, at: usize) -> usize {
        let (half, i) = self.locate(at);
        let line = half.keys[i].line as usize;
        if at >= self.front.keys.len() {
            self.back_line(line)
        } else {
            line
        }
    }

    fn lookup_key(&self, at: usize) -> &[u8] {
        let (half, i) = self.locate(at);
        half.lookup_key(i)
    }

    /// Entries numbered through both halves.
    fn entries(&self) -> usize {
        self.front.keys.len() + self.back.as_ref().map_or(0, |b| b.keys.len())
    }

    /// Every entry whose key an earlier one has, and that first entry: (repeat, first), in file
    /// order.
    fn repeats(&mut self) -> Vec<(usize, usize)> {
        let base = self.front.keys.len();
        let front_pairs = std::mem::take(&mut self.front.pairs);
        let back_pairs = self
            .back
            .as_mut()
            .map(|b| std::mem::take(&mut b.pairs))
            .unwrap_or_default();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        equal_hash_runs(front_pairs, back_pairs, base, |run| {
            crate::runs::settle(
                run,
                |at| self.lookup_key(at),
                |_| true,
                |at, first| repeats.push((at, first)),
            );
        });
        repeats.sort_unstable();
        repeats
    }

    /// postmap's findings of both halves (the back's lines counted after the front's), in file
    /// order, taken out of the halves.
    fn found(&mut self) -> Vec<Diagnostic> {
        let mut out = std::mem::take(&mut self.front.found);
        if let Some(back) = self.back.as_mut() {
            let found = std::mem::take(&mut back.found);
            out.extend(found.into_iter().map(|mut d| {
                d.line = self.back_line(d.line);
                d
            }));
        }
        out
    }

    /// The values' findings of both halves with their entry numbers, taken out of the halves.
    fn semantic(&mut self) -> Vec<(usize, Diagnostic)> {
        let base = self.front.keys.len();
        let mut out = std::mem::take(&mut self.front.semantic);
        if let Some(back) = self.back.as_mut() {
            let semantic = std::mem::take(&mut back.semantic);
            out.extend(semantic.into_iter().map(|(at, mut d)| {
                d.line = self.back_line(d.line);
                (at + base, d)
            }));
        }
        out
    }

    /// The findings of both halves, in the order [`Table::findings`] gives them.
    fn findings(mut self) -> Vec<Diagnostic> {
        let repeats = self.repeats();
        let mut out = self.found();
        let semantic = self.semantic();
        out.extend(repeats.iter().map(|&(at, first)| Diagnostic {
            line: self.line_of(at),
            column: 1,
            kind: DiagnosticKind::DuplicateEntry {
                key: self.lookup_key(at).to_vec(),
                first_line: self.line_of(first),
            },
        }));
        out.sort_by_key(|d| (d.line, d.column));
        // The values of the entries postmap keeps: both lists are in entry order.
        let mut dropped = repeats.iter().map(|&(at, _)| at).peekable();
        out.extend(semantic.into_iter().filter_map(|(at, d)| {
            while dropped.next_if(|&r| r < at).is_some() {}
            dropped.next_if_eq(&at).is_none().then_some(d)
        }));
        out.sort_by_key(|d| (d.line, d.column));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postfix::PostfixVersion;
    use proptest::prelude::*;

    /// Lines of every kind a table has: entries whose keys repeat in other cases and spellings,
    /// values the checks of each kind accept and refuse, continuations, comments, blank lines,
    /// records postmap skips, NUL bytes in records and comment lines.
    const LINES: &[&str] = &[
        "a@x b@y",
        "A@X b@y",
        "a@x\tbad value",
        "\"a\"@x c@y",
        "\"a b\"@x c@y",
        "\"unbalanced v",
        "key: v@x",
        "k@x OK",
        "k@x REJECT",
        "k@x 550 no",
        "k@x FILTER smtp",
        "k@x REDIRECT a@b",
        "k@x permit_mynetworks",
        "k@x a@b, c@d",
        "novalue",
        "  continued@x",
        "\tmore, c@y",
        "  trailing@x \t",
        "k@x v  ",
        "# comment",
        "  # inner comment",
        "",
        "   ",
        "n\u{0}ul@x v",
        "# with a \u{0} NUL",
        "  # inner \u{0}",
        "  nul\u{0} continued",
        "\u{e4}@x v@y",
        "\u{c4}@x v@y",
        "K@X 1",
        "k@x 2",
    ];

    fn source() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(prop::sample::select(LINES), 0..24),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(lines, final_newline, latin1)| {
                let mut out = lines.join("\n").into_bytes();
                if latin1 {
                    out.extend_from_slice(b"\nlatin\xe9@x v");
                }
                if final_newline {
                    out.push(b'\n');
                }
                out
            })
    }

    /// What a dump handed its sink.
    #[derive(Debug, Default, PartialEq)]
    struct Listed {
        skipped: Option<Vec<Diagnostic>>,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    }

    impl DumpSink for Listed {
        fn skipped(&mut self, errors: Vec<Diagnostic>) {
            assert!(self.skipped.is_none() && self.entries.is_empty());
            self.skipped = Some(errors);
        }
        fn entry(&mut self, key: &[u8], value: &[u8]) {
            self.entries.push((key.to_vec(), value.to_vec()));
        }
    }

    fn rules() -> impl Strategy<Value = ValueRules> {
        prop::sample::select(vec![
            ValueRules::Plain,
            ValueRules::Virtual,
            ValueRules::Access,
        ])
    }

    /// A large file whose first record comes after its middle: it is not split there (the
    /// front half would hold no record), so the NUL in a comment before that record is the
    /// record's, as in the document (Postfix 3.9 and later).
    #[test]
    fn a_file_is_not_split_before_its_first_record() {
        let mut src = b"# a NUL \x00 before the first record\n".to_vec();
        while src.len() < PARALLEL_MIN {
            src.extend_from_slice(b"# a long preamble of comment lines\n");
        }
        let first_line = src.iter().filter(|&&b| b == b'\n').count() + 1;
        src.extend_from_slice(b"a@x b@y\nc@x d@y\n");
        assert_eq!(parallel_split(&src), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map");
        fs_err::write(&path, &src).expect("write");
        let file = fs_err::File::open(&path).expect("open");
        let options = ParseOptions::default();
        let found = check_file(&file, &options, true, ValueRules::Plain).expect("read");
        let expected = Table::parse(src, &options).findings(true, ValueRules::Plain);
        assert_eq!(found, expected);
        assert_eq!(
            found,
            [Diagnostic {
                line: first_line,
                column: 1,
                kind: DiagnosticKind::NulByte {
                    postmap_warns: true
                }
            }]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// The one-pass check finds what the table finds, read whole or in two halves split
        /// at any record, with narrow and wide positions.
        #[test]
        fn one_pass_finds_what_the_table_finds(
            src in source(),
            fold in any::<bool>(),
            smtputf8 in any::<bool>(),
            old in any::<bool>(),
            values in rules(),
            split_at in any::<prop::sample::Index>(),
            buffer in 1..64usize,
        ) {
            let options = ParseOptions {
                smtputf8,
                version: if old {
                    PostfixVersion::new(3, 1)
                } else {
                    PostfixVersion::default()
                },
            };
            let expected = Table::parse(src.clone(), &options).findings(fold, values);
            let starts: Vec<usize> =
                (0..src.len()).filter(|&at| is_record_start(&src, at) && record_before(&src, at)).collect();
            let split = (!starts.is_empty()).then(|| starts[split_at.index(starts.len())]);
            for split in [None, split] {
                let reading = Reading { len: src.len() as u64, split: split.map(|at| at as u64) };
                let read = check_read::<Narrow>(&src[..], &options, fold, values, reading, buffer)
                    .expect("read from memory");
                prop_assert_eq!(&read, &expected, "read, split {:?}, buffer {}", split, buffer);
                let narrow = check_split::<Narrow>(&src, &options, fold, values, split);
                prop_assert_eq!(&narrow, &expected, "narrow, split {:?}", split);
                let wide = check_split::<Wide>(&src, &options, fold, values, split);
                prop_assert_eq!(&wide, &expected, "wide, split {:?}", split);
            }
        }

        /// The one-pass dump lists the entries the table keeps and the records it skips, read
        /// whole or in two halves split at any record, with narrow and wide positions.
        #[test]
        fn one_pass_dump_lists_what_the_table_keeps(
            src in source(),
            fold in any::<bool>(),
            smtputf8 in any::<bool>(),
            split_at in any::<prop::sample::Index>(),
        ) {
            let options = ParseOptions {
                smtputf8,
                version: PostfixVersion::default(),
            };
            let table = Table::parse(src.clone(), &options);
            let mut expected = Listed {
                skipped: Some(table.errors()),
                ..Listed::default()
            };
            table.for_each_effective_entry(fold, |e| {
                expected.entry(&e.lookup_key(fold), e.value());
            });
            let starts: Vec<usize> =
                (0..src.len()).filter(|&at| is_record_start(&src, at) && record_before(&src, at)).collect();
            let split = (!starts.is_empty()).then(|| starts[split_at.index(starts.len())]);
            for split in [None, split] {
                let mut narrow = Listed::default();
                dump_split::<Narrow>(&src, &options, fold, split, &mut narrow);
                prop_assert_eq!(&narrow, &expected, "narrow, split {:?}", split);
                let mut wide = Listed::default();
                dump_split::<Wide>(&src, &options, fold, split, &mut wide);
                prop_assert_eq!(&wide, &expected, "wide, split {:?}", split);
            }
        }
    }
}
