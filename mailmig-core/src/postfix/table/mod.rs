//! The lossless table document.

use super::diag::{Diagnostic, DiagnosticKind, Severity};
use super::fold::fold_key;
use super::options::ParseOptions;
use super::{is_space, trim_space, FastMap};

mod check;
mod edit;
mod first_keys;
mod lookup;
mod parse;

pub use check::{check_file, check_source, dump_source, DumpSink, ValueRules};
pub use edit::TableEditError;
use parse::*;

/// Which buffer a [`Span`] points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Buf {
    /// The bytes the table was parsed from.
    Src,
    /// Bytes the table derived or was given later (joined logical lines, edited records).
    Side,
}

/// A byte range in one of the table's buffers. Spans keep parsing allocation-free for the common
/// single-line record. The buffer is kept in the top bit of `start` (16 bytes a span: a table of a
/// million records holds three million of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

const SIDE_BIT: usize = 1 << (usize::BITS - 1);

impl Span {
    fn src(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    fn side(start: usize, end: usize) -> Self {
        Self {
            start: start | SIDE_BIT,
            end,
        }
    }

    fn buf(self) -> Buf {
        if self.start & SIDE_BIT == 0 {
            Buf::Src
        } else {
            Buf::Side
        }
    }

    fn begin(self) -> usize {
        self.start & !SIDE_BIT
    }

    fn sub(self, start: usize, end: usize) -> Self {
        Self {
            start: self.start + start,
            end: self.begin() + end,
        }
    }
}

/// A stable handle on an entry, valid across edits of other records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(u64);

#[derive(Debug, Clone)]
struct UnparsedData {
    column: usize,
    kind: DiagnosticKind,
}

/// What an item is (the data of entries lives in the item's offsets and, when rare, in [`Aux`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Blank,
    Comment,
    Entry,
    Unparsed,
}

// Keep items small: this is what a large table costs per record.
const _: () = assert!(std::mem::size_of::<ItemData>() <= 24);

/// No [`Aux`] record.
const NO_AUX: u32 = u32::MAX;

/// Offsets below this fit in a [`Raw`]: 31 bits (the top bit tells the buffer). Unit tests
/// parse with a lower limit (`Table::near`) to compare the far path with the near one.
const NEAR: usize = (1 << 31) - 1;

/// A [`Span`] in 8 bytes: begin (top bit: the side buffer) and end as 32-bit offsets. A span
/// with an offset at or past [`NEAR`] (tables of 2 GiB and more) is kept in `Table::far`, and
/// the `Raw` holds its index there, marked by a `start` of `u32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raw {
    start: u32,
    end: u32,
}

impl Raw {
    const FAR: u32 = u32::MAX;

    /// The span packed into 32-bit offsets when both are below `near` (at most [`NEAR`]), else
    /// kept in `far` (pushed there).
    fn pack(span: Span, far: &mut Vec<Span>, near: usize) -> Self {
        let fits = |n: usize| {
            u32::try_from(n)
                .ok()
                .filter(|&n| (n as usize) < near.min(NEAR))
        };
        match (fits(span.begin()), fits(span.end)) {
            (Some(begin), Some(end)) => Raw {
                start: match span.buf() {
                    Buf::Src => begin,
                    Buf::Side => begin | 1 << 31,
                },
                end,
            },
            _ => {
                far.push(span);
                // Four billion far spans (records past the first 2 GiB) do not fit in memory;
                // saturating keeps this panic-free.
                Raw {
                    start: Self::FAR,
                    end: u32::try_from(far.len() - 1).unwrap_or(u32::MAX),
                }
            }
        }
    }

    /// The span, looked up in `far` when it is kept there.
    fn unpack(self, far: &[Span]) -> Span {
        if self.start == Self::FAR {
            return far
                .get(self.end as usize)
                .copied()
                .unwrap_or(Span::src(0, 0));
        }
        let begin = (self.start & !(1 << 31)) as usize;
        if self.start & 1 << 31 == 0 {
            Span::src(begin, self.end as usize)
        } else {
            Span::side(begin, self.end as usize)
        }
    }
}

/// One item: 24 bytes, so that a table of a million records stays small and fast to build (the
/// cost of a large table is mostly the memory its items touch). The key and value of a one-line
/// entry are not stored: reading the line again with the same rules gives them; joined
/// continuation lines and anything unusual live in an [`Aux`] record.
#[derive(Debug, Clone)]
struct ItemData {
    /// Every physical line of the item, line terminators included (see [`Table::raw`]).
    raw: Raw,
    /// 1-based line number of the item's first physical line in the parsed file; 0 for items
    /// created by an edit (saturates on absurdly long files).
    line: u32,
    /// Entries: the handle.
    id: u32,
    /// Index into `Table::aux`, or [`NO_AUX`].
    aux: u32,
    tag: Tag,
}

/// Rare per-item data.
#[derive(Debug, Clone, Default)]
struct Aux {
    /// Key and value of an entry whose logical line is not its first physical line (continuation
    /// lines joined into the side buffer), or whose offsets do not fit in 32 bits.
    spans: Option<(Span, Span)>,
    /// With `spans`: where the value starts in the record's first line, if it starts there.
    value_offset_in_first_line: Option<usize>,
    /// Rarer still (boxed: continued records need only the fields above, and there may be a
    /// hundred thousand of them).
    rare: Option<Box<AuxRare>>,
}

#[derive(Debug, Clone, Default)]
struct AuxRare {
    /// Findings that do not drop the record (`key:`, NUL).
    warnings: Vec<(usize, DiagnosticKind)>,
    /// Why `postmap` skips the record.
    unparsed: Option<UnparsedData>,
    /// For an item appended to a file without a final newline: the previous item's bytes before
    /// a line ending was added to it, so that removing this item restores the file exactly.
    restore_prev: Option<Span>,
}

impl Aux {
    fn rare(rare: AuxRare) -> Self {
        Self {
            rare: Some(Box::new(rare)),
            ..Self::default()
        }
    }

    fn warnings(&self) -> &[(usize, DiagnosticKind)] {
        self.rare.as_ref().map_or(&[], |r| &r.warnings)
    }

    fn unparsed(&self) -> Option<&UnparsedData> {
        self.rare.as_ref().and_then(|r| r.unparsed.as_ref())
    }

    fn restore_prev(&self) -> Option<Span> {
        self.rare.as_ref().and_then(|r| r.restore_prev)
    }
}

/// A Postfix lookup-table source file as a lossless document.
///
/// `Table::parse(bytes, opts).render() == bytes` for every input. Edits go through
/// [`Table::set`], [`Table::insert`], [`Table::replace_value`] and [`Table::remove`] and change only
/// the records they touch.
#[derive(Debug, Clone)]
pub struct Table {
    /// The parsed bytes, never changed (edits go to `side`): shared with the transaction that
    /// read them, so that editing a large table holds one copy of it.
    src: std::sync::Arc<Vec<u8>>,
    side: Vec<u8>,
    items: Items,
    aux: Vec<Aux>,
    /// Item spans that do not fit in a [`Raw`].
    far: Vec<Span>,
    /// Offsets from which spans are kept in `far`: [`NEAR`], lower in unit tests.
    near: usize,
    options: ParseOptions,
    next_id: u32,
}

/// One item of a table: a blank line, a comment line, an entry, or an unparsed record.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    table: &'a Table,
    data: &'a ItemData,
}

/// What an [`Item`] is.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ItemKind<'a> {
    /// An empty or whitespace-only line outside any record.
    Blank,
    /// A comment line (first non-blank byte `#`) outside any record.
    Comment,
    /// A record `postmap` stores.
    Entry(Entry<'a>),
    /// A record `postmap` skips with a warning, kept byte for byte.
    Unparsed(Unparsed<'a>),
}

/// A record `postmap` stores: a key and a value.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    table: &'a Table,
    item: &'a ItemData,
    key: Span,
    value: Span,
}

/// A record `postmap` skips, with the warning it prints.
#[derive(Debug, Clone, Copy)]
pub struct Unparsed<'a> {
    table: &'a Table,
    item: &'a ItemData,
}

impl Table {
    /// Parse table source bytes. Never fails: records `postmap` would skip become
    /// [`ItemKind::Unparsed`] items carrying the warning.
    pub fn parse(src: Vec<u8>, options: &ParseOptions) -> Table {
        Self::parse_shared(std::sync::Arc::new(src), options)
    }

    /// Parse bytes held elsewhere too (such as [`FileTransaction::shared_original`]), without
    /// copying them. Never fails.
    ///
    /// [`FileTransaction::shared_original`]: crate::transaction::FileTransaction::shared_original
    pub fn parse_shared(src: std::sync::Arc<Vec<u8>>, options: &ParseOptions) -> Table {
        let split = parallel_split(&src);
        Self::parse_split(src, options, split, NEAR)
    }

    /// Parse, in two halves at once when `split` (the start of a record line) is given; spans
    /// with offsets from `near` on are kept in `far`.
    fn parse_split(
        src: std::sync::Arc<Vec<u8>>,
        options: &ParseOptions,
        split: Option<usize>,
        near: usize,
    ) -> Table {
        let ChunkParts {
            items,
            side,
            aux,
            far,
            next_id,
        } = match split {
            // Large files: two halves, split at a line that starts a record, read at once.
            Some(split) => {
                let (a, b) = std::thread::scope(|scope| {
                    // The second half numbers its lines and entries from 1; `join` moves them
                    // past the first half's.
                    let second =
                        scope.spawn(|| Chunk::parse(&src, split, src.len(), 1, options, near));
                    let first = Chunk::parse(&src, 0, split, 1, options, near);
                    (first, second.join())
                });
                match b {
                    Ok(b) => a.join(b),
                    // A panic in the reader is a bug; read the file in one piece instead.
                    Err(_) => Chunk::parse(&src, 0, src.len(), 1, options, near).into_parts(),
                }
            }
            None => Chunk::parse(&src, 0, src.len(), 1, options, near).into_parts(),
        };
        Table {
            src,
            side,
            items,
            aux,
            far,
            near,
            options: *options,
            next_id,
        }
    }

    /// The options the table was parsed with.
    pub fn options(&self) -> &ParseOptions {
        &self.options
    }

    /// The bytes of the document: the parsed bytes when nothing was edited.
    pub fn render(&self) -> Vec<u8> {
        crate::pieces::render(&self.src, self.pieces(), self.src.len() + self.side.len())
    }

    /// Write the document's bytes to `out` without building them in memory first: runs of
    /// untouched items are written straight from the parsed bytes.
    pub fn write_to<W: std::io::Write>(&self, out: &mut W) -> std::io::Result<()> {
        crate::pieces::each_run(&self.src, self.pieces(), |bytes| out.write_all(bytes))
    }

    fn pieces(&self) -> impl Iterator<Item = crate::pieces::Piece<'_>> + '_ {
        self.items.iter().map(move |item| {
            let raw = self.raw(item);
            match raw.buf() {
                Buf::Src => crate::pieces::Piece::Src(raw.begin(), raw.end),
                Buf::Side => crate::pieces::Piece::Owned(self.bytes(raw)),
            }
        })
    }

    /// The table's bytes as read and as edits added them (not in file order): for searches
    /// over the whole table before record by record.
    pub fn buffers(&self) -> [&[u8]; 2] {
        [&self.src, &self.side]
    }

    /// How many items (entries, comments, blank lines, unparsed records) the table holds: an
    /// upper bound of its entries, to size indexes up front.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// Every item, in file order.
    pub fn items(&self) -> impl Iterator<Item = Item<'_>> + '_ {
        self.items
            .iter()
            .map(move |data| Item { table: self, data })
    }

    /// The diagnostic of a record postmap skips whose first word is `key` (after folding): an
    /// edit of `key` would add a second record beside it, so editors refuse it.
    pub fn unparsed_record_for(&self, key: &[u8]) -> Option<Diagnostic> {
        let wanted = fold_key(key, self.options.smtputf8);
        self.items().find_map(|item| {
            let ItemKind::Unparsed(u) = item.kind() else {
                return None;
            };
            let raw = u.raw();
            let first = raw
                .split(|b| b.is_ascii_whitespace())
                .next()
                .unwrap_or_default();
            let first = first.strip_suffix(b":").unwrap_or(first);
            (fold_key(first, self.options.smtputf8) == wanted).then(|| u.diagnostic())
        })
    }

    /// Every entry (stored record), in file order, duplicates included.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        self.items
            .iter()
            .filter(|item| item.tag == Tag::Entry)
            .map(move |item| Entry::new(self, item))
    }

    /// The entries whose record `keep` accepts, in file order. `keep` sees the record's bytes
    /// (its physical lines, the key at their start) before the entry is read, so that a scan
    /// for a few entries reads only the records that could be them.
    pub fn entries_where<'s, 'k>(
        &'s self,
        keep: impl Fn(&[u8]) -> bool + 'k,
    ) -> impl Iterator<Item = Entry<'s>> + 'k
    where
        's: 'k,
    {
        self.entries_of(move |item| keep(self.bytes(self.raw(item))))
    }

    /// The entries whose item `wanted` accepts, in file order.
    fn entries_of<'s, 'k>(
        &'s self,
        wanted: impl Fn(&ItemData) -> bool + 'k,
    ) -> impl Iterator<Item = Entry<'s>> + 'k
    where
        's: 'k,
    {
        self.items
            .iter()
            .filter(move |item| item.tag == Tag::Entry && wanted(item))
            .map(move |item| Entry::new(self, item))
    }

    /// The entries whose record holds one of `hits` (byte offsets into the parsed bytes,
    /// `buffers()[0]`, ascending), in file order; records written by an edit since (in the side
    /// buffer) are offered to `keep` instead, as in [`Table::entries_where`]. With a search of
    /// the whole parsed bytes, a scan for a few entries does not look at every record's bytes.
    pub fn entries_holding<'s, 'k>(
        &'s self,
        hits: &'k [usize],
        keep: impl Fn(&[u8]) -> bool + 'k,
    ) -> impl Iterator<Item = Entry<'s>> + 'k
    where
        's: 'k,
    {
        self.entries_of(move |item| {
            let raw = self.raw(item);
            match raw.buf() {
                Buf::Src => {
                    let from = hits.partition_point(|&h| h < raw.begin());
                    hits.get(from).is_some_and(|&h| h < raw.end)
                }
                Buf::Side => keep(self.bytes(raw)),
            }
        })
    }

    /// The entries `postmap` would keep: the first of each (folded, when `fold`) key, in source
    /// order. This is what `postmap -s` prints, in source order instead of database order.
    pub fn effective_entries(&self, fold: bool) -> Vec<Entry<'_>> {
        let mut kept = Vec::new();
        self.for_each_effective_entry(fold, |entry| kept.push(entry));
        kept
    }

    /// [`Table::effective_entries`] one at a time, without collecting them (for output as large
    /// as the table).
    pub fn for_each_effective_entry<'s>(&'s self, fold: bool, mut each: impl FnMut(Entry<'s>)) {
        self.walk_first_keys(fold, |entry, earlier| {
            if earlier.is_none() {
                each(entry);
            }
        });
    }

    /// An index from lookup key to the entry `postmap` keeps, for many lookups.
    pub fn index(
        &self,
        fold: bool,
    ) -> std::collections::HashMap<Vec<u8>, Entry<'_>, foldhash::fast::RandomState> {
        let mut map = FastMap::default();
        for e in self.entries() {
            map.entry(e.lookup_key(fold).into_owned()).or_insert(e);
        }
        map
    }

    /// Look `key` up as `postmap -q` does: one exact lookup after folding (when `fold`); the first
    /// entry wins.
    pub fn get(&self, key: &[u8], fold: bool) -> Option<Entry<'_>> {
        let wanted = self.fold(key, fold);
        self.entries().find(|e| e.lookup_key(fold) == wanted)
    }

    /// The entry with this handle.
    pub fn entry(&self, id: EntryId) -> Option<Entry<'_>> {
        self.entries().find(|e| e.id() == id)
    }

    /// Every finding, in line order: what `postmap` warns about (dropped records, `key:` records,
    /// duplicates under folding when `fold`) and NUL bytes. A record an edit wrote is judged by
    /// its own lines: a NUL in a comment line beside it, which Postfix 3.9 and later report
    /// with the record, shows in a fresh parse of the written file.
    pub fn diagnostics(&self, fold: bool) -> Vec<Diagnostic> {
        let mut out: Vec<Diagnostic> = self
            .items
            .iter()
            .flat_map(|item| self.item_findings(item))
            .collect();
        out.extend(self.duplicates(fold));
        out.sort_by_key(|d| (d.line, d.column));
        out
    }

    /// The findings of [`Severity::Error`] (records postmap skips), in line order: what
    /// [`Table::diagnostics`] gives of that severity, without looking for duplicates (a warning),
    /// which costs a hash of every key.
    pub fn errors(&self) -> Vec<Diagnostic> {
        let mut out: Vec<Diagnostic> = self
            .items
            .iter()
            .flat_map(|item| self.item_findings(item))
            .filter(|d| d.severity() == Severity::Error)
            .collect();
        out.sort_by_key(|d| (d.line, d.column));
        out
    }

    /// What one item says of itself: its warnings (an entry's; the NUL warning of a record
    /// postmap skips, or of a file without records on its last line), an unparsed record's
    /// reason.
    fn item_findings(&self, item: &ItemData) -> Vec<Diagnostic> {
        let line = item.line as usize;
        let aux = self.aux_of(item);
        let warnings = aux
            .iter()
            .flat_map(|a| a.warnings())
            .map(|(column, kind)| Diagnostic {
                line,
                column: *column,
                kind: kind.clone(),
            });
        let unparsed = aux
            .and_then(Aux::unparsed)
            .filter(|_| item.tag == Tag::Unparsed)
            .map(|data| Diagnostic {
                line,
                column: data.column,
                kind: data.kind.clone(),
            });
        warnings.chain(unparsed).collect()
    }

    /// Entries whose (folded, when `fold`) key an earlier entry has: postmap keeps the first.
    /// One hash per key, a word of index per key.
    pub fn duplicates(&self, fold: bool) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        self.walk_first_keys(fold, |entry, earlier| {
            if let Some(first) = earlier {
                out.push(Diagnostic {
                    line: entry.item.line as usize,
                    column: 1,
                    kind: DiagnosticKind::DuplicateEntry {
                        key: entry.lookup_key(fold).into_owned(),
                        first_line: first.item.line as usize,
                    },
                });
            }
        });
        out
    }

    fn fold<'k>(&self, key: &'k [u8], fold: bool) -> std::borrow::Cow<'k, [u8]> {
        if fold {
            fold_key(key, self.options.smtputf8)
        } else {
            std::borrow::Cow::Borrowed(key)
        }
    }

    fn bytes(&self, span: Span) -> &[u8] {
        match span.buf() {
            Buf::Src => &self.src[span.begin()..span.end],
            Buf::Side => &self.side[span.begin()..span.end],
        }
    }

    /// Every physical line of an item: its span.
    fn raw(&self, item: &ItemData) -> Span {
        item.raw.unpack(&self.far)
    }

    /// Set the span of item `i`.
    fn set_raw(&mut self, i: usize, span: Span) {
        self.items[i].raw = self.pack(span);
    }

    /// A span as an item holds it.
    fn pack(&mut self, span: Span) -> Raw {
        Raw::pack(span, &mut self.far, self.near)
    }

    fn fresh_id(&mut self) -> u32 {
        // Four billion entries do not fit in memory; saturating keeps this panic-free.
        self.next_id = self.next_id.saturating_add(1);
        self.next_id
    }

    fn aux_of(&self, item: &ItemData) -> Option<&Aux> {
        self.aux.get(item.aux as usize)
    }

    fn new_aux(&mut self, aux: Aux) -> u32 {
        push_aux(&mut self.aux, aux)
    }

    /// The key and value spans of an entry: from its `Aux`, or by reading its one line again.
    fn entry_spans(&self, item: &ItemData) -> (Span, Span) {
        if let Some((key, value)) = self.aux_of(item).and_then(|a| a.spans) {
            return (key, value);
        }
        let span = self.raw(item);
        let raw = self.bytes(span);
        let content = raw.strip_suffix(b"\n").unwrap_or(raw);
        match parse_logical(content, content.len(), false, false, &self.options) {
            Parsed::Entry { key_end, value, .. } => {
                (span.sub(0, key_end), span.sub(value.0, value.1))
            }
            // Not reached: an item is tagged Entry only when this same reading gave an entry.
            Parsed::Unparsed { .. } => (span.sub(0, 0), span.sub(0, 0)),
        }
    }

    fn key_span(&self, item: &ItemData) -> Span {
        self.entry_spans(item).0
    }

    fn value_offset_in_first_line(&self, item: &ItemData) -> Option<usize> {
        match self.aux_of(item) {
            Some(a) if a.spans.is_some() => a.value_offset_in_first_line,
            _ => Some(self.entry_spans(item).1.begin() - self.raw(item).begin()),
        }
    }
}

impl crate::transaction::Document for Table {
    fn render(&self) -> Vec<u8> {
        Table::render(self)
    }

    fn write_document(&self, mut out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.write_to(&mut out)
    }
}

// ---------------------------------------------------------------------- views

impl ItemData {
    /// A blank or comment item (or the start of a record, refined by the caller).
    fn plain(raw: Raw, line: usize, class: LineClass) -> Self {
        Self {
            raw,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            id: 0,
            aux: NO_AUX,
            tag: match class {
                LineClass::Blank => Tag::Blank,
                _ => Tag::Comment,
            },
        }
    }
}

impl<'a> Item<'a> {
    /// What the item is.
    pub fn kind(&self) -> ItemKind<'a> {
        let (table, item) = (self.table, self.data);
        match item.tag {
            Tag::Blank => ItemKind::Blank,
            Tag::Comment => ItemKind::Comment,
            Tag::Entry => ItemKind::Entry(Entry::new(table, item)),
            Tag::Unparsed => ItemKind::Unparsed(Unparsed { table, item }),
        }
    }

    /// The item's bytes: all its physical lines, line terminators included.
    pub fn raw(&self) -> &'a [u8] {
        self.table.bytes(self.table.raw(self.data))
    }

    /// 1-based line number of the item's first line in the parsed file; `None` for an item an
    /// edit created.
    pub fn line(&self) -> Option<usize> {
        (self.data.line != 0).then_some(self.data.line as usize)
    }
}

impl<'a> Entry<'a> {
    fn new(table: &'a Table, item: &'a ItemData) -> Self {
        let (key, value) = table.entry_spans(item);
        Self {
            table,
            item,
            key,
            value,
        }
    }

    /// The entry's handle, for edits.
    pub fn id(&self) -> EntryId {
        EntryId(u64::from(self.item.id))
    }

    /// The key as `postmap` stores it before folding (quotes and backslashes included).
    pub fn key(&self) -> &'a [u8] {
        self.table.bytes(self.key)
    }

    /// The key as it is looked up: folded when `fold` (the default for fixed-key tables).
    pub fn lookup_key(&self, fold: bool) -> std::borrow::Cow<'a, [u8]> {
        let key = self.key();
        if fold {
            fold_key(key, self.table.options.smtputf8)
        } else {
            std::borrow::Cow::Borrowed(key)
        }
    }

    /// The value as `postmap` stores it: continuation lines joined (their leading whitespace
    /// kept), leading and trailing whitespace trimmed, text after a NUL byte dropped.
    pub fn value(&self) -> &'a [u8] {
        self.table.bytes(self.value)
    }

    /// The record's bytes: its physical lines, including comment and blank lines inside it.
    pub fn raw(&self) -> &'a [u8] {
        self.table.bytes(self.table.raw(self.item))
    }

    /// 1-based line number of the record's first line; `None` for an entry an edit created.
    pub fn line(&self) -> Option<usize> {
        (self.item.line != 0).then_some(self.item.line as usize)
    }
}

impl<'a> Unparsed<'a> {
    /// The record's bytes, exactly as in the file.
    pub fn raw(&self) -> &'a [u8] {
        self.table.bytes(self.table.raw(self.item))
    }

    /// 1-based line number of the record's first line.
    pub fn line(&self) -> usize {
        self.item.line as usize
    }

    /// Why `postmap` skips it, located.
    pub fn diagnostic(&self) -> Diagnostic {
        let data = self.table.aux_of(self.item).and_then(Aux::unparsed);
        Diagnostic {
            line: self.item.line as usize,
            column: data.map_or(1, |d| d.column),
            kind: data.map_or(DiagnosticKind::ExpectedKeyValue, |d| d.kind.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Table {
        Table::parse(s.to_vec(), &ParseOptions::default())
    }

    fn dump(t: &Table) -> Vec<(String, String)> {
        t.effective_entries(true)
            .iter()
            .map(|e| {
                (
                    String::from_utf8_lossy(&e.lookup_key(true)).into_owned(),
                    String::from_utf8_lossy(e.value()).into_owned(),
                )
            })
            .collect()
    }

    fn kinds(t: &Table) -> String {
        t.items()
            .map(|i| match i.kind() {
                ItemKind::Blank => 'b',
                ItemKind::Comment => 'c',
                ItemKind::Entry(_) => 'e',
                ItemKind::Unparsed(_) => 'u',
            })
            .collect()
    }

    #[test]
    fn continuation_with_comment_and_blank_inside() {
        let src = b"g@x a@x,\n# b@x removed\n\n    c@x\n# trailing\nh@x d\n";
        let t = parse(src);
        assert_eq!(t.render(), src);
        assert_eq!(kinds(&t), "ece");
        assert_eq!(
            dump(&t),
            [
                ("g@x".into(), "a@x,    c@x".into()),
                ("h@x".into(), "d".into())
            ]
        );
    }

    #[test]
    fn orphan_continuations_are_unparsed() {
        let t = parse(b" orphan first\n  more cont\na b");
        assert_eq!(kinds(&t), "ue");
        let d = t.diagnostics(true);
        assert_eq!(
            d[0].kind.to_string(),
            "logical line must not start with whitespace: \" orphan first  more cont\""
        );
    }

    #[test]
    fn oracle_cases_match_postmap_3_7() {
        // Verified against postmap 3.7.11 (see tests/ for the live differential tests).
        let t = Table::parse(ORACLE_CASES.to_vec(), &options_3_7());
        assert_eq!(t.render(), ORACLE_CASES.to_vec());
        let mut got = dump(&t);
        got.sort();
        let mut want: Vec<(String, String)> = [
            ("a", "b orphan?"),
            ("x@y", "val ue"),
            ("\"john doe\"@x", "v"),
            ("a\\ b@x", "v"),
            ("key:", "val"),
            ("k2", "cont"),
            ("a@y", "dup"),
            ("jürgen@x", "utf"),
            ("strasse@x", "ss"),
            ("last", "nonl"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        want.sort();
        assert_eq!(got, want);
        let lines: Vec<(usize, String)> = t
            .diagnostics(true)
            .iter()
            .filter(|d| d.kind.reported_by_postmap())
            .map(|d| (d.line, d.kind.to_string()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    9,
                    "unbalanced '\"' in '\"unb@x v' -- ignoring this line".to_string()
                ),
                (
                    11,
                    "record is in \"key: value\" format; is this an alias file?".into()
                ),
                (12, "expected format: key whitespace value".into()),
                (13, "expected format: key whitespace value".into()),
                (
                    17,
                    "non-UTF-8 input \"?t? latin\" -- ignoring this line".into()
                ),
                (20, "expected format: key whitespace value".into()),
            ]
        );
    }

    /// The source of the oracle cases.
    const ORACLE_CASES: &[u8] = b"a b\n orphan?\n#c\n  # ic\n\n   \nX@Y  val ue  \r\n\"john doe\"@x v\n\"unb@x v\na\\ b@x v\nkey:\tval\nnovalue\nnovalue2   \nk2\n  cont\nA@Y dup\n\xe9t\xe9 latin\nJ\xc3\x9cRGEN@x utf\nStra\xc3\x9fe@x ss\nn\x00ul val\nlast nonl";

    fn options_3_7() -> ParseOptions {
        ParseOptions {
            smtputf8: true,
            version: crate::postfix::PostfixVersion::DEBIAN_12,
        }
    }

    /// The lines and texts of what postmap reports.
    fn postmap_reports(t: &Table) -> Vec<(usize, String)> {
        t.diagnostics(true)
            .iter()
            .filter(|d| d.kind.reported_by_postmap())
            .map(|d| (d.line, d.kind.to_string()))
            .collect()
    }

    #[test]
    fn oracle_cases_match_postmap_3_10() {
        // Verified against postmap 3.10.13 (Debian 13): `readllines()` warns of a NUL in any
        // line it reads with a record — also a comment line before, inside or after it — and
        // of one in a file without records, at its last line; before postmap skips a record.
        let t = parse(ORACLE_CASES);
        let reports = postmap_reports(&t);
        assert_eq!(
            reports[reports.len() - 2..],
            [
                (20, "text after null byte may be ignored".to_string()),
                (20, "expected format: key whitespace value".into()),
            ]
        );
        let t = parse(b"# a\x00b\n# c\n");
        assert_eq!(
            postmap_reports(&t),
            [(2, "text after null byte may be ignored".to_string())]
        );
        assert!(
            postmap_reports(&Table::parse(b"# a\x00b\n# c\n".to_vec(), &options_3_7())).is_empty()
        );
        let t = parse(b"# a\x00b\n\n k v\n# x\nk2 v\n");
        assert_eq!(
            postmap_reports(&t),
            [
                (3, "text after null byte may be ignored".to_string()),
                (
                    3,
                    "logical line must not start with whitespace: \" k v\"".into()
                ),
            ]
        );
        let t = parse(b"k v\n# x\x00\nk2 v,\n# y\n  w\x00\n# z\x00\nk3 v\n");
        assert_eq!(
            postmap_reports(&t),
            [
                (1, "text after null byte may be ignored".to_string()),
                (3, "text after null byte may be ignored".into()),
            ]
        );
    }

    #[test]
    fn crlf_inside_continuation_stays_in_value() {
        let t = parse(b"k a,\r\n  b\r\n");
        assert_eq!(dump(&t), [("k".into(), "a,\r  b".into())]);
    }

    #[test]
    fn duplicates_first_wins() {
        let t = parse(b"a@x 1\nA@X 2\n");
        assert_eq!(dump(&t), [("a@x".into(), "1".into())]);
        let d = t.diagnostics(true);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, 2);
        assert!(t.diagnostics(false).is_empty());
    }

    #[test]
    fn pre_3_2_has_no_quoting() {
        let opts = ParseOptions {
            version: crate::postfix::PostfixVersion::new(3, 1),
            ..ParseOptions::default()
        };
        let t = Table::parse(b"\"john doe\"@x v\n".to_vec(), &opts);
        assert_eq!(
            t.entries().next().map(|e| e.key().to_vec()),
            Some(b"\"john".to_vec())
        );
    }

    #[test]
    fn set_then_remove_restores_bytes() {
        for src in [
            &b"a\tb\r\nc d"[..],
            b"a   b\n# end\n",
            b"",
            b"# only comment",
            b"k v\n  cont\n",
        ] {
            let mut t = parse(src);
            let id = t.set(b"new@x", b"dest@y", true).expect("valid");
            let rendered = t.render();
            let reparsed = parse(&rendered);
            assert_eq!(
                reparsed.get(b"new@x", true).map(|e| e.value().to_vec()),
                Some(b"dest@y".to_vec()),
                "{}",
                String::from_utf8_lossy(&rendered)
            );
            t.remove(id).expect("present");
            assert_eq!(t.render(), src, "{}", String::from_utf8_lossy(src));
        }
    }

    #[test]
    fn replace_value_keeps_separator_and_comments() {
        let mut t = parse(b"x 1\ng@x   a@x,\n# gone\n    c@x\ny 2\n");
        let id = t.get(b"g@x", true).map(|e| e.id()).expect("present");
        t.replace_value(id, b"d@x").expect("valid");
        assert_eq!(t.render(), b"x 1\ng@x   d@x\n# gone\ny 2\n");
    }

    #[test]
    fn new_entries_align_with_the_previous_one() {
        let mut t = parse(b"al@x      alice@x\n");
        t.insert(b"b@x", b"bob@x").expect("valid");
        assert_eq!(t.render(), b"al@x      alice@x\nb@x       bob@x\n");
    }

    #[test]
    fn invalid_edits_are_refused() {
        let mut t = parse(b"a b\n");
        assert!(t.insert(b"two words", b"v").is_err());
        assert!(t.insert(b"#k", b"v").is_err());
        assert!(t.insert(b"k", b" v").is_err());
        assert!(t.insert(b"k", b"").is_err());
        assert!(t.insert(b"k", b"a\nb").is_err());
        assert!(t.insert(b"\"k", b"v").is_err());
        assert!(t.insert(b"k\xff", b"v").is_err());
        assert!(t.insert(b"\"john doe\"@x", b"v").is_ok());
        assert_eq!(t.render(), b"a b\n\"john doe\"@x v\n");
    }

    /// Regression (found by proptest): a file that is only `\r` with no newline; appending then
    /// removing must restore the lone `\r` (the added ending was taken for a CRLF).
    #[test]
    fn regression_lone_cr_set_then_remove() {
        let mut t = parse(b"\r");
        let id = t.set(b"k@x", b"v", true).expect("valid");
        t.remove(id).expect("present");
        assert_eq!(t.render(), b"\r");
    }

    /// Regression (found by proptest): replacing the value of an unterminated last record whose
    /// continuation had blank lines left an empty item and gained a final newline.
    #[test]
    fn regression_replace_unterminated_record_with_inner_blanks() {
        let mut t = parse(b"k a,\n\n\tb\n\n    c\n# note\n\td");
        let id = t.entries().next().map(|e| e.id()).expect("entry");
        t.replace_value(id, b"new").expect("valid");
        assert_eq!(t.render(), b"k new\n# note");
        assert!(t.items().all(|i| !i.raw().is_empty()));
    }

    /// Reading a file in two halves gives exactly what reading it in one piece gives, wherever
    /// the split falls, and edits work across the boundary; so does a table whose spans are
    /// kept in `far` from any offset on (as in tables of 2 GiB and more).
    #[test]
    fn two_halves_read_like_one() {
        let inputs: [&[u8]; 5] = [
            b"a b\n orphan?\n#c\n  # ic\n\n   \nX@Y  val ue  \r\n\"john doe\"@x v\n\"unb@x v\nkey:\tval\nnovalue\nk2\n  cont\nA@Y dup\nx@y again\nlast nonl",
            b"g@x a@x,\n# b@x removed\n\n    c@x\n# trailing\nh@x d\n a\nk v\n",
            b"n\x00ul val\nlatin\xe9@x v\nutf\xc3\xa9@x v\nA@x 1\na@x 2\n",
            b"# only\n# comments\nthen k v\n",
            b"# a\x00\n\n k v\n# x\nk2 v\n# n\x00\nk3 v\n  # \x00\n w\nk4 v\n",
        ];
        let opts = ParseOptions::default();
        for src in inputs {
            let whole = Table::parse_split(std::sync::Arc::new(src.to_vec()), &opts, None, NEAR);
            let splits = (0..src.len())
                .filter(|&at| is_record_start(src, at) && record_before(src, at))
                .map(Some)
                .chain([None]);
            for (at, near) in splits.flat_map(|at| [NEAR, 0, 7, 40].map(|near| (at, near))) {
                let halves = Table::parse_split(std::sync::Arc::new(src.to_vec()), &opts, at, near);
                let at = format!("{at:?}, far from {near}");
                assert_eq!(halves.render(), src);
                assert_eq!(
                    halves.diagnostics(true),
                    whole.diagnostics(true),
                    "split at {at}"
                );
                type Described = Vec<(Option<usize>, Vec<u8>, Vec<u8>, Vec<u8>)>;
                let describe = |t: &Table| -> Described {
                    t.items()
                        .map(|i| match i.kind() {
                            ItemKind::Entry(e) => (
                                i.line(),
                                i.raw().to_vec(),
                                e.key().to_vec(),
                                e.value().to_vec(),
                            ),
                            _ => (i.line(), i.raw().to_vec(), Vec::new(), Vec::new()),
                        })
                        .collect()
                };
                assert_eq!(describe(&halves), describe(&whole), "split at {at}");
                let ids: Vec<EntryId> = halves.entries().map(|e| e.id()).collect();
                let mut unique = ids.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), ids.len(), "entry ids are unique");
                // Edit every entry and add one: the two readings stay identical.
                let (mut a, mut b) = (halves.clone(), whole.clone());
                for (ea, eb) in a
                    .entries()
                    .map(|e| e.id())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .zip(b.entries().map(|e| e.id()).collect::<Vec<_>>())
                {
                    a.replace_value(ea, b"new").expect("valid");
                    b.replace_value(eb, b"new").expect("valid");
                }
                let na = a.insert(b"added@x", b"v").expect("valid");
                let nb = b.insert(b"added@x", b"v").expect("valid");
                assert_eq!(a.render(), b.render());
                a.remove(na).expect("present");
                b.remove(nb).expect("present");
                assert_eq!(a.render(), b.render());
                let first = |t: &Table| t.entries().next().map(|e| e.id());
                if let (Some(ea), Some(eb)) = (first(&a), first(&b)) {
                    a.remove(ea).expect("present");
                    b.remove(eb).expect("present");
                }
                assert_eq!(a.render(), b.render(), "split at {at}");
            }
        }
    }

    #[test]
    fn large_files_split_at_a_record_start() {
        let mut src = Vec::new();
        let mut records = 0;
        while src.len() < PARALLEL_MIN + 100 {
            src.extend_from_slice(
                b"key@example.test  value@example.test,\n# c\n    more@example.test\n\n",
            );
            records += 1;
        }
        let at = parallel_split(&src);
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            let at = at.expect("a split point");
            assert!(is_record_start(&src, at));
            let t = Table::parse(src.clone(), &ParseOptions::default());
            assert_eq!(t.render(), src);
            assert_eq!(t.entries().count(), records);
            assert_eq!(t.items().count(), 2 * records);
            let last_line = t.items().last().and_then(|i| i.line());
            assert_eq!(last_line, Some(4 * records));
        }
    }
}
