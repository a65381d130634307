//! Reading table source bytes into items: logical lines, keys and values, as postmap does,
//! in two halves for large files.

use super::*;

#[cfg(test)]
pub(super) fn is_record_start(src: &[u8], at: usize) -> bool {
    at > 0 && at < src.len() && src[at - 1] == b'\n' && !is_space(src[at]) && src[at] != b'#'
}

/// Files at least this large are read in two halves at once.
pub(super) const PARALLEL_MIN: usize = 4 << 20;

/// Where to split a large file for reading in two halves: the start of a line that starts a
/// record (first byte neither whitespace nor `#`), near the middle, with a record before it.
/// `None` for small files or when the machine has one core.
pub(super) fn parallel_split(src: &[u8]) -> Option<usize> {
    if src.len() < PARALLEL_MIN || !crate::cores::two() {
        return None;
    }
    let mut at = src.len() / 2;
    while let Some(nl) = memchr::memchr(b'\n', &src[at..]) {
        let next = at + nl + 1;
        match src.get(next) {
            Some(&b) if !is_space(b) && b != b'#' => {
                return record_before(src, next).then_some(next)
            }
            Some(_) => at = next,
            None => return None,
        }
    }
    None
}

/// Whether a record starts before `at` in `src`. The front half of a split must hold one:
/// `readllines()` reads the lines before a file's first record with it, and a NUL in them is
/// that record's (Postfix 3.9 and later), not a file's without records. A scan only when half
/// of the file comes before its first record.
pub(super) fn record_before(src: &[u8], at: usize) -> bool {
    let starts = |b: u8| !is_space(b) && b != b'#';
    src.first().is_some_and(|&b| starts(b))
        || memchr::memchr_iter(b'\n', &src[..at.min(src.len())])
            .any(|nl| nl + 1 < at && src.get(nl + 1).is_some_and(|&b| starts(b)))
}

/// The items of a table, in file order, in one or more parts (one per half of a file read in
/// parallel, so that the halves never have to be copied together).
#[derive(Debug, Clone, Default)]
pub(super) struct Items {
    parts: Vec<Vec<ItemData>>,
}

impl Items {
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &ItemData> + '_ {
        self.parts.iter().flatten()
    }

    pub(super) fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.parts.iter().all(Vec::is_empty)
    }

    /// The part and the index in it of item `i`; `i == len()` is the end of the last part.
    pub(super) fn locate(&self, mut i: usize) -> (usize, usize) {
        for (p, part) in self.parts.iter().enumerate() {
            if i < part.len() {
                return (p, i);
            }
            i -= part.len();
        }
        let last = self.parts.len().saturating_sub(1);
        (last, self.parts.get(last).map_or(0, Vec::len))
    }

    pub(super) fn last(&self) -> Option<&ItemData> {
        self.parts.iter().rev().find_map(|p| p.last())
    }

    pub(super) fn push(&mut self, item: ItemData) {
        match self.parts.last_mut() {
            Some(part) => part.push(item),
            None => self.parts.push(vec![item]),
        }
    }

    pub(super) fn insert(&mut self, i: usize, item: ItemData) {
        if self.parts.is_empty() {
            self.parts.push(Vec::new());
        }
        let (p, j) = self.locate(i);
        self.parts[p].insert(j, item);
    }

    pub(super) fn remove(&mut self, i: usize) -> ItemData {
        let (p, j) = self.locate(i);
        self.parts[p].remove(j)
    }
}

impl std::ops::Index<usize> for Items {
    type Output = ItemData;

    fn index(&self, i: usize) -> &ItemData {
        let (p, j) = self.locate(i);
        &self.parts[p][j]
    }
}

impl std::ops::IndexMut<usize> for Items {
    fn index_mut(&mut self, i: usize) -> &mut ItemData {
        let (p, j) = self.locate(i);
        &mut self.parts[p][j]
    }
}

/// Reads one range of a file into items (`readllines()` + `postmap()`), with its own side
/// buffer and aux records. Source spans are absolute offsets into the whole file.
pub(super) struct Chunk<'s> {
    src: &'s [u8],
    options: ParseOptions,
    items: Vec<ItemData>,
    side: Vec<u8>,
    aux: Vec<Aux>,
    far: Vec<Span>,
    /// See `Table::near`.
    near: usize,
    next_id: u32,
    /// Physical lines read.
    lines: usize,
}

impl<'s> Chunk<'s> {
    pub(super) fn parse(
        src: &'s [u8],
        start: usize,
        end: usize,
        first_line: usize,
        options: &ParseOptions,
        near: usize,
    ) -> Self {
        let mut chunk = Chunk {
            src,
            options: *options,
            // About one item a line; reserving generously costs only address space.
            items: Vec::with_capacity((end - start) / 32 + 1),
            side: Vec::new(),
            aux: Vec::new(),
            far: Vec::new(),
            near,
            next_id: u32::try_from(first_line)
                .unwrap_or(u32::MAX)
                .saturating_sub(1),
            lines: 0,
        };
        chunk.run(start, end, first_line);
        chunk
    }

    pub(super) fn run(&mut self, start: usize, end_of_range: usize, first_line: usize) {
        let line_no = walk_lines(self.src, start, end_of_range, first_line, self);
        self.lines = line_no + 1 - first_line;
    }

    /// The parsed chunk as a table's items, side buffer, aux records and last entry id.
    pub(super) fn into_parts(self) -> ChunkParts {
        ChunkParts {
            items: Items {
                parts: vec![self.items],
            },
            side: self.side,
            aux: self.aux,
            far: self.far,
            next_id: self.next_id,
        }
    }

    /// The parts of two consecutive chunks: the second's aux and far indices and side-buffer
    /// spans are moved past the first's.
    pub(super) fn join(self, second: Chunk<'_>) -> ChunkParts {
        let first_lines = u32::try_from(self.lines).unwrap_or(u32::MAX);
        let ChunkParts {
            mut items,
            mut side,
            mut aux,
            mut far,
            next_id: first_id,
        } = self.into_parts();
        let aux_base = aux.len();
        let side_base = side.len();
        let far_base = u32::try_from(far.len()).unwrap_or(u32::MAX);
        far.extend_from_slice(&second.far);
        let mut second_items = second.items;
        for item in &mut second_items {
            if item.raw.start == Raw::FAR {
                item.raw.end = item.raw.end.saturating_add(far_base);
            }
            item.line = item.line.saturating_add(first_lines);
            if item.tag == Tag::Entry {
                item.id = item.id.saturating_add(first_id);
            }
            if item.aux != NO_AUX {
                item.aux = u32::try_from(item.aux as usize + aux_base).unwrap_or(NO_AUX);
            }
        }
        let shift = |span: Span| match span.buf() {
            Buf::Side => Span::side(span.begin() + side_base, span.end + side_base),
            Buf::Src => span,
        };
        for mut a in second.aux {
            a.spans = a.spans.map(|(k, v)| (shift(k), shift(v)));
            if let Some(rare) = &mut a.rare {
                rare.restore_prev = rare.restore_prev.map(shift);
            }
            aux.push(a);
        }
        side.extend_from_slice(&second.side);
        items.parts.push(second_items);
        ChunkParts {
            items,
            side,
            aux,
            far,
            next_id: first_id.saturating_add(second.next_id),
        }
    }
}

impl Records for Chunk<'_> {
    fn record(&mut self, rec: &Rec, content: &[(usize, usize)]) {
        let src = self.src;
        let single_line = content.len() == 1;
        let logical = if single_line {
            Span::src(content[0].0, content[0].1)
        } else {
            let start = self.side.len();
            for &(s, e) in content {
                self.side.extend_from_slice(&src[s..e]);
            }
            Span::side(start, self.side.len())
        };
        let text = match logical.buf() {
            Buf::Src => &src[logical.begin()..logical.end],
            Buf::Side => &self.side[logical.begin()..logical.end],
        };
        let first_line_len = content[0].1 - content[0].0;
        let parsed = parse_logical(
            text,
            first_line_len,
            rec.orphan,
            rec.nul_beside,
            &self.options,
        );
        let raw = Raw::pack(Span::src(rec.start, rec.end), &mut self.far, self.near);
        let mut item = ItemData::plain(raw, rec.line, LineClass::Start);
        match parsed {
            Parsed::Unparsed { data, warnings } => {
                item.tag = Tag::Unparsed;
                item.aux = push_aux(
                    &mut self.aux,
                    Aux::rare(AuxRare {
                        unparsed: Some(data),
                        warnings,
                        ..AuxRare::default()
                    }),
                );
            }
            Parsed::Entry {
                key_end,
                value,
                warnings,
            } => {
                item.tag = Tag::Entry;
                self.next_id = self.next_id.saturating_add(1);
                item.id = self.next_id;
                if !single_line {
                    item.aux = push_aux(
                        &mut self.aux,
                        Aux {
                            spans: Some((logical.sub(0, key_end), logical.sub(value.0, value.1))),
                            value_offset_in_first_line: (value.0 < first_line_len)
                                .then_some(value.0),
                            rare: (!warnings.is_empty()).then(|| {
                                Box::new(AuxRare {
                                    warnings,
                                    ..AuxRare::default()
                                })
                            }),
                        },
                    );
                } else if !warnings.is_empty() {
                    item.aux = push_aux(
                        &mut self.aux,
                        Aux::rare(AuxRare {
                            warnings,
                            ..AuxRare::default()
                        }),
                    );
                }
            }
        }
        self.items.push(item);
    }

    fn plain(&mut self, line: usize, start: usize, end: usize, class: LineClass) {
        let raw = Raw::pack(Span::src(start, end), &mut self.far, self.near);
        self.items.push(ItemData::plain(raw, line, class));
    }

    fn stray_nul(&mut self, line: usize) {
        if !self.options.version.warns_on_nul() {
            return;
        }
        // The warning goes with the last line's item (the walk ended on it).
        if let Some(item) = self.items.last_mut().filter(|i| i.line as usize == line) {
            item.aux = push_aux(
                &mut self.aux,
                Aux::rare(AuxRare {
                    warnings: vec![(
                        1,
                        DiagnosticKind::NulByte {
                            postmap_warns: true,
                        },
                    )],
                    ..AuxRare::default()
                }),
            );
        }
    }
}

/// What reading a file (or two halves of it, joined) gives a table.
pub(super) struct ChunkParts {
    pub(super) items: Items,
    pub(super) side: Vec<u8>,
    pub(super) aux: Vec<Aux>,
    pub(super) far: Vec<Span>,
    pub(super) next_id: u32,
}

/// Append an aux record; its index (saturating: four billion records do not fit in memory).
pub(super) fn push_aux(aux: &mut Vec<Aux>, record: Aux) -> u32 {
    aux.push(record);
    u32::try_from(aux.len() - 1).unwrap_or(NO_AUX)
}

/// A line's role in `readllines()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineClass {
    /// Empty or whitespace only: skipped, does not end a record.
    Blank,
    /// First non-blank byte `#`: skipped, does not end a record.
    Comment,
    /// Starts with whitespace and has content: continues the record before it.
    Continuation,
    /// Starts with a byte that is neither whitespace nor `#`: starts a record.
    Start,
}

pub(super) fn classify(content: &[u8]) -> LineClass {
    match content.first() {
        None => LineClass::Blank,
        Some(&b) if !is_space(b) && b != b'#' => LineClass::Start,
        Some(_) => match content.iter().find(|&&b| !is_space(b)) {
            None => LineClass::Blank,
            Some(b'#') => LineClass::Comment,
            Some(_) => LineClass::Continuation,
        },
    }
}

/// What walking the lines of a range gives its reader, in file order.
pub(super) trait Records {
    /// A record: its first line, its physical lines' span, and its content lines (start, end
    /// without `\n`), the lines to join into its logical line.
    fn record(&mut self, rec: &Rec, content: &[(usize, usize)]);
    /// A comment or blank line that is no record's content (those inside a record come after
    /// it).
    fn plain(&mut self, line: usize, start: usize, end: usize, class: LineClass);
    /// The range holds no record, and a comment line of it a NUL byte: Postfix 3.9 and later
    /// warn about its last line, `line`.
    fn stray_nul(&mut self, line: usize);
}

/// Reads `src[start..end_of_range]` line by line as `readllines()` does, numbering its first
/// line `first_line`, and hands each record and other line to `sink`. Returns the last line's
/// number.
pub(super) fn walk_lines(
    src: &[u8],
    start: usize,
    end_of_range: usize,
    first_line: usize,
    sink: &mut impl Records,
) -> usize {
    let mut open = OpenRecord::default();
    // A NUL in a comment line before the range's first record: `readllines()` reads those
    // lines with that record (only at a file's start: other ranges start at a record line).
    let mut nul_before = false;
    let mut any_record = false;
    let mut pos = start;
    let mut line_no = first_line - 1;
    let mut newlines = memchr::memchr_iter(b'\n', &src[start..end_of_range]);
    while pos < end_of_range {
        line_no += 1;
        let (content_end, end) = match newlines.next() {
            Some(i) => (start + i, start + i + 1),
            None => (end_of_range, end_of_range),
        };
        let class = classify(&src[pos..content_end]);
        match class {
            LineClass::Start => {
                open.close(sink);
                open.rec = Some(Rec {
                    orphan: false,
                    line: line_no,
                    start: pos,
                    end,
                    nul_beside: std::mem::take(&mut nul_before),
                });
                any_record = true;
                open.content.push((pos, content_end));
            }
            LineClass::Continuation => {
                match &mut open.rec {
                    Some(rec) => {
                        rec.end = end;
                        open.pending.clear();
                    }
                    None => {
                        open.rec = Some(Rec {
                            orphan: true,
                            line: line_no,
                            start: pos,
                            end,
                            nul_beside: std::mem::take(&mut nul_before),
                        });
                        any_record = true;
                    }
                }
                open.content.push((pos, content_end));
            }
            LineClass::Blank | LineClass::Comment => {
                // Only a comment line can hold a NUL (it is no whitespace).
                let nul = class == LineClass::Comment
                    && memchr::memchr(0, &src[pos..content_end]).is_some();
                match &mut open.rec {
                    Some(rec) => {
                        rec.nul_beside |= nul;
                        open.pending.push((line_no, pos, end, class));
                    }
                    None => {
                        nul_before |= nul;
                        sink.plain(line_no, pos, end, class);
                    }
                }
            }
        }
        pos = end;
    }
    open.close(sink);
    if nul_before && !any_record {
        sink.stray_nul(line_no);
    }
    line_no
}

/// The record being read, and the lines after it that may still turn out to be inside it.
#[derive(Default)]
struct OpenRecord {
    rec: Option<Rec>,
    /// Comment and blank lines seen after the open record's last content line.
    pending: Vec<(usize, usize, usize, LineClass)>,
    /// The open record's content lines (start, end without `\n`).
    content: Vec<(usize, usize)>,
}

impl OpenRecord {
    /// Hands the open record, then the lines after it, to `sink`.
    fn close(&mut self, sink: &mut impl Records) {
        let Some(rec) = self.rec.take() else {
            return;
        };
        sink.record(&rec, &self.content);
        self.content.clear();
        for (line, start, end, class) in self.pending.drain(..) {
            sink.plain(line, start, end, class);
        }
    }
}

/// A record's place: its first line, and the span of its physical lines.
pub(super) struct Rec {
    /// Starts with a continuation line (no record before it to continue).
    pub(super) orphan: bool,
    pub(super) line: usize,
    pub(super) start: usize,
    pub(super) end: usize,
    /// A comment line that `readllines()` reads with this record holds a NUL byte: one inside
    /// it, one of those after it (up to the next record), or — for a file's first record — one
    /// before it. Postfix 3.9 and later warn about the record then, as for a NUL in its text.
    pub(super) nul_beside: bool,
}

pub(super) enum Parsed {
    Entry {
        key_end: usize,
        value: (usize, usize),
        warnings: Vec<(usize, DiagnosticKind)>,
    },
    Unparsed {
        data: UnparsedData,
        /// The NUL warning of a record postmap then skips.
        warnings: Vec<(usize, DiagnosticKind)>,
    },
}

/// Scan a key as `postmap` does: up to the first unquoted whitespace byte; with `quoting`
/// (Postfix ≥ 3.2) `\` escapes the next byte and `"` toggles quoting. Returns the key's length and
/// whether a quote was left open.
pub(super) fn scan_key(s: &[u8], quoting: bool) -> (usize, bool) {
    // Nothing before the first byte that may be special changes the scan.
    scan_key_from(s, before_special(s), quoting)
}

/// [`scan_key`] from byte `start` on, outside quotes (a byte at a time).
fn scan_key_from(s: &[u8], start: usize, quoting: bool) -> (usize, bool) {
    let mut in_quotes = false;
    let mut i = start;
    while i < s.len() {
        let c = s[i];
        if !KEY_SPECIAL[usize::from(c)] {
            i += 1;
            continue;
        }
        if quoting && c == b'\\' {
            i += 1;
            if i >= s.len() {
                break;
            }
        } else if is_space(c) {
            if !in_quotes {
                break;
            }
        } else if quoting && c == b'"' {
            in_quotes = !in_quotes;
        }
        i += 1;
    }
    (i.min(s.len()), in_quotes)
}

/// Whether `b` may end or change the key scan: below `!`, a `"` or a `\\` (every
/// [`KEY_SPECIAL`] byte is one).
fn may_be_special(b: u8) -> bool {
    b < b'!' || b == b'"' || b == b'\\'
}

/// Where the first byte of `s` that [`may_be_special`] is (`s.len()` if none). Eight bytes at a
/// time in a word: a key's bytes one at a time were half of the records' parse.
fn before_special(s: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    // The high bit of each byte that is zero, or below `n`: exact for the first such byte
    // (the borrow can mark only bytes after it) and never marking bytes of 0x80 and above.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let found = below(word, b'!')
            | below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1);
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = chunks.remainder();
    at + tail
        .iter()
        .position(|&b| may_be_special(b))
        .unwrap_or(tail.len())
}

/// Bytes that can end or change the key scan: whitespace, `"` and `\\`.
pub(super) const KEY_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let specials = *b" \t\n\x0b\x0c\r\"\\";
    let mut i = 0;
    while i < specials.len() {
        t[specials[i] as usize] = true;
        i += 1;
    }
    t
};

/// Split one logical line (content lines joined) as `postmap()` does.
/// `nul_beside`: a comment line read with the record holds a NUL ([`Rec::nul_beside`]).
pub(super) fn parse_logical(
    text: &[u8],
    first_line_len: usize,
    orphan: bool,
    nul_beside: bool,
    opts: &ParseOptions,
) -> Parsed {
    let nul = memchr::memchr(0, text);
    let cstr = &text[..nul.unwrap_or(text.len())];
    // `readllines()` warns about a NUL in any line it read (3.9 and later) before postmap reads
    // the record; a NUL in the text cuts it there in every release (mailmig warns of that).
    let mut warnings = Vec::new();
    let nul_column = match nul {
        Some(at) if at < first_line_len => Some(at + 1),
        Some(_) => Some(1),
        None => (nul_beside && opts.version.warns_on_nul()).then_some(1),
    };
    if let Some(column) = nul_column {
        warnings.push((
            column,
            DiagnosticKind::NulByte {
                postmap_warns: opts.version.warns_on_nul(),
            },
        ));
    }
    let unparsed = |column: usize, kind: DiagnosticKind| Parsed::Unparsed {
        data: UnparsedData { column, kind },
        warnings: warnings.clone(),
    };
    if orphan {
        const MAX: usize = 30;
        return unparsed(
            1,
            DiagnosticKind::LeadingWhitespace {
                excerpt: cstr[..cstr.len().min(MAX)].to_vec(),
                truncated: text.len() > MAX,
            },
        );
    }
    if opts.smtputf8 && !cstr.is_ascii() && std::str::from_utf8(text).is_err() {
        return unparsed(
            1,
            DiagnosticKind::NonUtf8 {
                line: cstr.to_vec(),
            },
        );
    }
    let (key_end, in_quotes) = scan_key(cstr, opts.version.quoted_keys());
    if in_quotes {
        return unparsed(
            1,
            DiagnosticKind::UnbalancedQuote {
                line: cstr.to_vec(),
            },
        );
    }
    let rest_start = (key_end + 1).min(cstr.len());
    let rest = &cstr[rest_start..];
    let lead = rest.iter().take_while(|&&b| is_space(b)).count();
    let value = trim_space(rest);
    if key_end == 0 || value.is_empty() {
        let column = if key_end == 0 {
            1
        } else {
            (key_end + 1).min(first_line_len.max(1))
        };
        return unparsed(column, DiagnosticKind::ExpectedKeyValue);
    }
    let value_start = rest_start + lead;
    if cstr[key_end - 1] == b':' {
        warnings.push((key_end.min(first_line_len).max(1), DiagnosticKind::ColonKey));
    }
    Parsed::Entry {
        key_end,
        value: (value_start, value_start + value.len()),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every byte value at every place of a word and of the tail: found exactly when it is
    /// below `!`, a `"` or a `\`.
    #[test]
    fn each_byte_value_in_each_place() {
        for len in [8, 16, 13] {
            for at in 0..len {
                for b in 0..=u8::MAX {
                    let mut s = vec![b'k'; len];
                    s[at] = b;
                    let special = b < b'!' || b == b'"' || b == b'\\';
                    assert_eq!(
                        before_special(&s),
                        if special { at } else { len },
                        "{b:#x} at {at}"
                    );
                }
            }
        }
    }

    proptest! {
        /// The word-at-a-time key scan is the byte-at-a-time one, on keys of letters, every
        /// special byte, controls and high bytes, with quoting or not.
        #[test]
        fn the_key_scan_is_the_bytewise_scan(
            s in proptest::collection::vec(
                proptest::sample::select(&b"ab@.\x01\x1f \t\n\x0b\x0c\r\"\\\x80\xff!#"[..]),
                0..40,
            ),
            quoting in any::<bool>(),
        ) {
            // From the first byte on, a byte at a time: the scan as it was.
            prop_assert_eq!(scan_key(&s, quoting), scan_key_from(&s, 0, quoting));
            let first = s.iter().position(|&b| b < b'!' || b == b'"' || b == b'\\');
            prop_assert_eq!(before_special(&s), first.unwrap_or(s.len()));
        }
    }
}
