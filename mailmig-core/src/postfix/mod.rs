//! Postfix lookup-table source files, read exactly as `postmap` reads them.
//!
//! The [`Table`] document owns the bytes of one file and a list of [`Item`]s: blank lines, comment
//! lines, [`Entry`] records and [`Unparsed`] records (lines `postmap` skips, kept byte for byte with
//! the warning `postmap` prints). Untouched items render from their original bytes, so
//! `Table::parse(b).render() == b` for every input.
//!
//! Reading rules (Postfix `readllines()` and `postmap()`):
//! - A logical record starts at a line whose first byte is neither whitespace nor `#`. Following
//!   lines that start with whitespace are appended to it, **leading whitespace included**; comment
//!   lines (first non-blank byte `#`) and blank lines in between are skipped without ending it.
//! - The key ends at the first unquoted whitespace byte (`"` quotes and `\` escapes since Postfix
//!   3.2); the value is the rest with leading and trailing whitespace (`\r` included) trimmed.
//! - Keys fold to lowercase for fixed-key table types; the first of duplicate keys wins.
//!
//! Typed views: [`VirtualAlias`] (`virtual(5)`, with the reverse alias closure in
//! [`VirtualMap`]) and [`AccessRule`] (`access(5)`).

mod access;
mod address;
pub mod delivery;
mod diag;
pub mod discover;
pub use access::{access_value_problem, AccessAction, AccessRule};
pub use address::{
    canonicalize, parse_address_list, quote_local, value_problem, Address, AddressList,
};
mod fold;
mod options;
mod postconf;
mod postmap;
mod table;
mod virtual_map;

pub(crate) use diag::printable as printable_bytes;
pub use diag::{Diagnostic, DiagnosticKind, Severity};
pub use fold::fold_key;
pub use options::{ParseOptions, ParseVersionError, PostfixVersion};
pub use postconf::{parse_options_from_postconf, postconf};
pub use postmap::{postmap_rebuild, MapType, ParseMapTypeError};
pub use table::{
    check_file, check_source, dump_source, DumpSink, Entry, EntryId, Item, ItemKind, Table,
    TableEditError, Unparsed, ValueRules,
};
pub use virtual_map::{
    AliasPath, ClosureOptions, Expansion, KeyForm, ReverseClosure, UncoverableKey,
    UncoverableReason, VirtualAlias, VirtualMap,
};

/// Hash maps keyed by table keys: fast hashing (keys come from the admin's own files).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// Hash sets, likewise.
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// `ISSPACE()` as Postfix defines it: ASCII whitespace only (space, `\t`, `\n`, `\v`, `\f`, `\r`).
/// 8-bit bytes are never whitespace.
#[inline]
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Trim leading and trailing [`is_space`] bytes.
pub(crate) fn trim_space(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_space(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_space(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}
