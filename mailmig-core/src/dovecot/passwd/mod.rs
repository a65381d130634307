//! The lossless passwd-file document, its typed records, and Dovecot's passdb/userdb views.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use super::expand::{expand, ExpandError};
use super::ids::{parse_id, IdKind, IdResolver};
use crate::postfix::Severity;
use fields::Fields;
pub use load::Loaded;

mod check;
mod diagnostics;
mod edit;
mod fields;
mod find;
mod load;
mod views;

pub use diagnostics::{PasswdDiagnostic, PasswdDiagnosticKind};
pub use edit::PasswdEditError;
pub use find::FoundRecord;
pub use views::{MailLocation, PassdbView, UserdbView};

/// How Dovecot is set up to use the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswdOptions {
    /// The same path is also a userdb: bad uid/gid drop the line, home and the legacy mail field
    /// are read. (Dovecot shares one parsed file between a passdb and a userdb of the same path.)
    pub userdb: bool,
    /// Exactly one userdb is configured: a line without userdb fields is logged as "missing
    /// userdb info".
    pub single_userdb: bool,
    /// Dovecot 2.2/2.3: an empty 8th field makes the rest of the line the mail location
    /// (removed in 2.4).
    pub legacy_mail_field: bool,
    /// `auth_username_format` lowercases request names (the default `%Lu`): entries with
    /// uppercase letters can never be found.
    pub lowercase_requests: bool,
}

impl Default for PasswdOptions {
    fn default() -> Self {
        Self {
            userdb: true,
            single_userdb: true,
            legacy_mail_field: true,
            lowercase_requests: true,
        }
    }
}

#[derive(Debug, Clone)]
enum LineRaw {
    Src { start: usize, end: usize },
    Owned(Vec<u8>),
}

/// From this many bytes on, with a second core, the lines are found in two halves at once
/// (one thread spent 30 ms on the 180 MB benchmark file while the other core waited).
const SPLIT_LINES_FROM: usize = 4 << 20;

/// The lines of `src[range]` (the range starts a line; the last may lack its newline).
fn split_lines(src: &[u8], range: std::ops::Range<usize>) -> Vec<LineRaw> {
    let mut lines = Vec::with_capacity(range.len() / 64 + 1);
    let mut start = range.start;
    for nl in memchr::memchr_iter(b'\n', &src[range.clone()]) {
        let end = range.start + nl + 1;
        lines.push(LineRaw::Src { start, end });
        start = end;
    }
    if start < range.end {
        lines.push(LineRaw::Src {
            start,
            end: range.end,
        });
    }
    lines
}

/// A Dovecot passwd-file as a lossless document: one item per physical line.
#[derive(Debug, Clone)]
pub struct PasswdFile {
    /// The parsed bytes, never changed (edits replace lines): shared with the transaction that
    /// read them, so that editing a large file holds one copy of it.
    src: std::sync::Arc<Vec<u8>>,
    lines: Vec<LineRaw>,
    options: PasswdOptions,
    /// Lines an edit padded with `:` up to the extra fields (line index → colons added), so
    /// that removing the last extra field again restores the line exactly.
    padded: HashMap<usize, usize>,
    /// While [`PasswdFile::atomically`] runs: the lines its edit replaced, as they were.
    undo: Option<Vec<(usize, LineRaw)>>,
}

/// What a line is to Dovecot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineKind {
    /// Empty (after removing one `\r`, and text after a NUL): skipped.
    Blank,
    /// First byte `#`: skipped.
    Comment,
    /// First byte `:`: skipped.
    ColonSkipped,
    /// A user record (including junk such as `  # note`).
    Record,
}

/// One physical line.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    number: usize,
    raw: &'a [u8],
    options: PasswdOptions,
}

/// A user record, read as Dovecot reads it.
#[derive(Debug, Clone)]
pub struct PasswdEntry<'a> {
    line: usize,
    raw: &'a [u8],
    content: &'a [u8],
    fields: Fields<'a>,
    options: PasswdOptions,
}

/// One extra field: `key=value` or a bare `key` (value `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraField<'a> {
    /// The key, as written.
    pub key: Cow<'a, [u8]>,
    /// The value, as written (not expanded); `None` for a bare key.
    pub value: Option<Cow<'a, [u8]>>,
    /// Byte offset of the field in the line; `None` for the `userdb_mail=` Dovecot makes from the
    /// legacy format.
    pub offset: Option<usize>,
}

/// How Dovecot loaded a record line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadStatus {
    /// In Dovecot's table: lookups find it.
    Active,
    /// An earlier valid line has the same user: ignored ("exists more than once").
    Duplicate {
        /// The line that wins.
        first_line: usize,
    },
    /// Dropped when loading (bad uid/gid, bad `[56]` password).
    Dropped {
        /// Dovecot's message.
        reason: String,
    },
}

/// Why a lookup fails instead of returning fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupFailure {
    /// A value has a variable Dovecot does not know: the lookup fails (doveadm exit 75).
    Expansion {
        /// The field.
        key: String,
        /// The error.
        error: String,
    },
    /// A key Dovecot's auth process asserts on (empty, or containing a TAB): it crashes and the
    /// lookup fails (exit 75).
    AuthPanic {
        /// What is wrong.
        reason: String,
    },
    /// A `uid`/`gid` userdb field that does not resolve: temporary failure (exit 75).
    InvalidId {
        /// The field and value.
        reason: String,
    },
}

impl fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupFailure::Expansion { key, error } => {
                write!(f, "Failed to expand extra field {key}: {error}")
            }
            LookupFailure::AuthPanic { reason } => {
                write!(f, "the auth process crashes on this record: {reason}")
            }
            LookupFailure::InvalidId { reason } => f.write_str(reason),
        }
    }
}

/// Bytes Dovecot accepts in request names by default (`auth_username_chars`).
fn username_char_ok(b: u8) -> bool {
    // Not `b"-_.@".contains(&b)`: that is a library memchr call a byte.
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@')
}

/// A line without its `\n` and one `\r` before it.
fn without_terminator(raw: &[u8]) -> &[u8] {
    let line = raw.strip_suffix(b"\n").unwrap_or(raw);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Line content as Dovecot's istream gives it: without `\n`, without one `\r`, cut at NUL.
fn content_of(raw: &[u8]) -> (&[u8], bool) {
    let line = without_terminator(raw);
    match memchr::memchr(0, line) {
        Some(i) => (&line[..i], true),
        None => (line, false),
    }
}

/// What a line is, from its content (see [`content_of`]).
fn kind_of(content: &[u8]) -> LineKind {
    match content.first() {
        None => LineKind::Blank,
        Some(b'#') => LineKind::Comment,
        Some(b':') => LineKind::ColonSkipped,
        Some(_) => LineKind::Record,
    }
}

impl<'a> Line<'a> {
    /// 1-based line number in the parsed file (or position, after edits).
    pub fn number(&self) -> usize {
        self.number
    }

    /// The line's bytes, terminator included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// What the line is.
    pub fn kind(&self) -> LineKind {
        kind_of(content_of(self.raw).0)
    }

    /// The record on this line, if it is one.
    pub fn entry(&self) -> Option<PasswdEntry<'a>> {
        self.entry_of(content_of(self.raw).0)
    }

    /// The record on this line, given its content (see [`content_of`]).
    fn entry_of(&self, content: &'a [u8]) -> Option<PasswdEntry<'a>> {
        if kind_of(content) != LineKind::Record {
            return None;
        }
        Some(PasswdEntry {
            line: self.number,
            raw: self.raw,
            content,
            fields: Fields::split(content),
            options: self.options,
        })
    }
}

/// Password suffixes of libpam-pwdfile, as Dovecot maps them.
fn stored_password(pass: &[u8]) -> Result<Vec<u8>, ()> {
    match bracket_scheme(pass)? {
        Some(b) => Ok([b.scheme, b.body].concat()),
        None => Ok(pass.to_vec()),
    }
}

/// A password written `body[NN]`: the scheme `NN` names, and the body.
struct Bracketed<'a> {
    scheme: &'static [u8],
    body: &'a [u8],
}

/// A password written `body[NN]` (no `{` or `$` first): its scheme and body; `Err` when Dovecot
/// rejects it (`[56]` with a body that is not 32 bytes).
fn bracket_scheme(pass: &[u8]) -> Result<Option<Bracketed<'_>>, ()> {
    let n = pass.len();
    if n > 4 && pass[0] != b'{' && pass[0] != b'$' && pass[n - 1] == b']' && pass[n - 4] == b'[' {
        let num = (i32::from(pass[n - 3]) - i32::from(b'0')) * 10
            + (i32::from(pass[n - 2]) - i32::from(b'0'));
        let body = &pass[..n - 4];
        let scheme: &[u8] = match num {
            34 => b"{PLAIN-MD5}",
            56 => b"{DIGEST-MD5}",
            _ => b"{CRYPT}",
        };
        if num == 56 && body.len() != 32 {
            return Err(());
        }
        return Ok(Some(Bracketed { scheme, body }));
    }
    Ok(None)
}

/// Set a field as Dovecot's auth fields do: `:protected` sets only when unset, `:remove`
/// deletes, a repeated key replaces the value in place, an empty value is a bare key.
fn set_field(fields: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>, key: &[u8], value: Option<Vec<u8>>) {
    let value = value.filter(|v| !v.is_empty());
    if let Some(k) = key.strip_suffix(b":protected") {
        if !fields.iter().any(|(f, _)| f == k) {
            fields.push((k.to_vec(), value));
        }
        return;
    }
    if let Some(k) = key.strip_suffix(b":remove") {
        fields.retain(|(f, _)| f != k);
        return;
    }
    match fields.iter_mut().find(|(f, _)| f == key) {
        Some(slot) => slot.1 = value,
        None => fields.push((key.to_vec(), value)),
    }
}

impl<'a> PasswdEntry<'a> {
    /// 1-based line number.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The line's bytes, terminator included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The user name (field 1), as written.
    pub fn user(&self) -> &'a [u8] {
        self.fields.first()
    }

    /// The password field as written; `None` when the line has no `:`.
    pub fn password(&self) -> Option<&'a [u8]> {
        self.fields.get(1)
    }

    /// The uid field as written.
    pub fn uid_field(&self) -> Option<&'a [u8]> {
        self.fields.get(2)
    }

    /// The gid field as written.
    pub fn gid_field(&self) -> Option<&'a [u8]> {
        self.fields.get(3)
    }

    /// The home field as written.
    pub fn home_field(&self) -> Option<&'a [u8]> {
        self.fields.get(5)
    }

    /// The number of `:`-separated fields.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// Byte offset, in the line, where field `n` (0-based) starts.
    fn field_offset(&self, n: usize) -> Option<usize> {
        self.fields.offset(n)
    }

    /// Whether the legacy 2.2/2.3 form applies: the 8th field is empty and more fields follow
    /// (a line that simply ends after the 7th colon is the normal form with no extra fields).
    fn legacy_form(&self) -> bool {
        self.options.legacy_mail_field
            && self.fields.len() > 8
            && self.fields.get(7).is_some_and(<[u8]>::is_empty)
    }

    /// With the legacy form: what becomes `userdb_mail` (fields 9.. joined), if anything.
    pub fn legacy_mail(&self) -> Option<&'a [u8]> {
        if !self.legacy_form() {
            return None;
        }
        let start = self.field_offset(8)?;
        let rest = &self.content[start..];
        (!rest.is_empty()).then_some(rest)
    }

    /// The extra fields in file order, as Dovecot splits them (spaces only; runs of spaces give
    /// no empty fields). With the legacy form and a userdb, the single synthesized
    /// `userdb_mail=...` (itself split on spaces).
    pub fn extra(&self) -> Vec<ExtraField<'a>> {
        if self.legacy_form() {
            return match self.legacy_mail() {
                Some(mail) if self.options.userdb => {
                    let joined = [&b"userdb_mail="[..], mail].concat();
                    joined
                        .split(|&b| b == b' ')
                        .filter(|t| !t.is_empty())
                        .map(|t| split_token(Cow::Owned(t.to_vec()), None))
                        .collect()
                }
                _ => Vec::new(),
            };
        }
        let Some(start) = self.field_offset(7) else {
            return Vec::new();
        };
        let text = &self.content[start..];
        let mut out = Vec::new();
        let mut pos = 0;
        for token in text.split(|&b| b == b' ') {
            if !token.is_empty() {
                out.push(split_token(Cow::Borrowed(token), Some(start + pos)));
            }
            pos += token.len() + 1;
        }
        out
    }

    /// What Dovecot's passdb lookup returns for this record.
    pub fn passdb(&self) -> Result<PassdbView, LookupFailure> {
        let mut user = self.user().to_vec();
        let mut fields = Vec::new();
        let mut prefetch = Vec::new();
        let mut unexpanded = Vec::new();
        let password = match self.password() {
            Some(p) => stored_password(p).ok(),
            None => None,
        };
        for f in &self.extra() {
            check_key(&f.key)?;
            let value = expand_field(f, &user, &mut unexpanded)?;
            let key: &[u8] = &f.key;
            if let Some(k) = key.strip_prefix(b"userdb_") {
                if k.is_empty() {
                    return Err(LookupFailure::AuthPanic {
                        reason: "empty field name after `userdb_`".into(),
                    });
                }
                if k == b"user" {
                    if let Some(v) = &value {
                        user.clone_from(v);
                    }
                }
                set_field(&mut prefetch, k, value);
                continue;
            }
            match (key, &value) {
                (b"password" | b"password_noscheme", _) => continue, // "Multiple password values"
                (b"user", Some(v)) => user.clone_from(v),
                (b"username", Some(v)) => {
                    let domain = user
                        .iter()
                        .position(|&b| b == b'@')
                        .map(|i| user[i..].to_vec());
                    user.clone_from(v);
                    if let (false, Some(d)) = (v.contains(&b'@'), domain) {
                        user.extend_from_slice(&d);
                    }
                }
                (b"domain", Some(v)) => {
                    let at = user.iter().position(|&b| b == b'@').unwrap_or(user.len());
                    user.truncate(at);
                    user.push(b'@');
                    user.extend_from_slice(v);
                }
                _ => {}
            }
            set_field(&mut fields, key, value);
        }
        Ok(PassdbView {
            user,
            password,
            fields,
            userdb_prefetch: prefetch,
            unexpanded,
        })
    }

    /// What Dovecot's userdb lookup returns; `Ok(None)` when the record has no userdb data
    /// (fewer than 4 fields: unknown user to the userdb).
    pub fn userdb(&self, ids: &dyn IdResolver) -> Result<Option<UserdbView>, LookupFailure> {
        if self.fields.len() < 4 {
            return Ok(None);
        }
        let mut user = self.user().to_vec();
        let mut fields = Vec::new();
        let mut unexpanded = Vec::new();
        let number = |f: &[u8], kind| {
            parse_id(f, kind, ids)
                .filter(|&n| n != 0)
                .map(|n| n.to_string().into_bytes())
        };
        if let Some(uid) = self.uid_field().filter(|f| !f.is_empty()) {
            fields.push((b"uid".to_vec(), number(uid, IdKind::User)));
        }
        if let Some(gid) = self.gid_field().filter(|f| !f.is_empty()) {
            fields.push((b"gid".to_vec(), number(gid, IdKind::Group)));
        }
        if let Some(home) = self.home_field().filter(|f| !f.is_empty()) {
            fields.push((b"home".to_vec(), Some(home.to_vec())));
        }
        for f in &self.extra() {
            let Some(k) = f.key.strip_prefix(b"userdb_") else {
                continue;
            };
            if k.is_empty() || k.contains(&b'\t') {
                return Err(LookupFailure::AuthPanic {
                    reason: format!("field name `{}`", show(&f.key)),
                });
            }
            let value = expand_field(f, &user, &mut unexpanded)?;
            let value = match (k, value) {
                (b"uid" | b"gid", Some(v)) => {
                    let kind = if k == b"uid" {
                        IdKind::User
                    } else {
                        IdKind::Group
                    };
                    match parse_id(&v, kind, ids) {
                        Some(n) => Some(n.to_string().into_bytes()),
                        None => {
                            return Err(LookupFailure::InvalidId {
                                reason: format!(
                                    "Invalid {} value '{}'",
                                    if k == b"uid" { "UID" } else { "GID" },
                                    show(&v)
                                ),
                            })
                        }
                    }
                }
                (b"user", Some(v)) => {
                    user.clone_from(&v);
                    Some(v)
                }
                (_, v) => v,
            };
            set_field(&mut fields, k, value);
        }
        Ok(Some(UserdbView {
            user,
            fields,
            unexpanded,
        }))
    }
}

/// A field's value as a lookup expands it for `user`; a connection-dependent variable leaves the
/// value as written (noted in `unexpanded`), an unknown one fails the lookup.
fn expand_field(
    f: &ExtraField<'_>,
    user: &[u8],
    unexpanded: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, LookupFailure> {
    let Some(v) = &f.value else {
        return Ok(None);
    };
    match expand(v, user) {
        Ok(x) => Ok(Some(x)),
        Err(ExpandError::Contextual(what)) => {
            unexpanded.push(what);
            Ok(Some(v.to_vec()))
        }
        Err(e @ ExpandError::Unknown(_)) => Err(LookupFailure::Expansion {
            key: show(&f.key),
            error: e.to_string(),
        }),
    }
}

/// Keys Dovecot's auth process asserts on: empty, or containing a TAB.
fn check_key(key: &[u8]) -> Result<(), LookupFailure> {
    if key.is_empty() {
        return Err(LookupFailure::AuthPanic {
            reason: "an extra field with an empty name (`=value`)".into(),
        });
    }
    if key.contains(&b'\t') {
        return Err(LookupFailure::AuthPanic {
            reason: format!("a TAB in the field name `{}`", show(key)),
        });
    }
    Ok(())
}

fn split_token(token: Cow<'_, [u8]>, offset: Option<usize>) -> ExtraField<'_> {
    match token.iter().position(|&b| b == b'=') {
        Some(eq) => match token {
            Cow::Borrowed(t) => ExtraField {
                key: Cow::Borrowed(&t[..eq]),
                value: Some(Cow::Borrowed(&t[eq + 1..])),
                offset,
            },
            Cow::Owned(t) => ExtraField {
                key: Cow::Owned(t[..eq].to_vec()),
                value: Some(Cow::Owned(t[eq + 1..].to_vec())),
                offset,
            },
        },
        None => ExtraField {
            key: token,
            value: None,
            offset,
        },
    }
}

/// Bare fields Dovecot and its login processes know; another bare word after a `key=value` is
/// probably the rest of a value split at a space.
const KNOWN_FLAGS: &[&[u8]] = &[
    b"nopassword",
    b"noauthenticate",
    b"nologin",
    b"nodelay",
    b"proxy",
    b"proxy_maybe",
    b"proxy_always",
    b"starttls",
    b"nopipelining",
    b"master",
    b"pass",
    b"fail",
    b"skip",
    b"allow_nets",
];

fn show(b: &[u8]) -> String {
    crate::postfix::printable_bytes(b)
}

impl PasswdFile {
    /// Parse passwd-file bytes. Never fails.
    pub fn parse(src: Vec<u8>, options: &PasswdOptions) -> Self {
        Self::parse_shared(std::sync::Arc::new(src), options)
    }

    /// Parse bytes held elsewhere too (such as [`FileTransaction::shared_original`]), without
    /// copying them. Never fails.
    ///
    /// [`FileTransaction::shared_original`]: crate::transaction::FileTransaction::shared_original
    pub fn parse_shared(src: std::sync::Arc<Vec<u8>>, options: &PasswdOptions) -> Self {
        let middle = (src.len() >= SPLIT_LINES_FROM && crate::cores::two())
            .then(|| memchr::memchr(b'\n', &src[src.len() / 2..]))
            .flatten()
            .map(|nl| src.len() / 2 + nl + 1);
        let lines = match middle {
            Some(middle) => {
                let (mut lines, back) = crate::cores::side_by_side(
                    || split_lines(&src, 0..middle),
                    || split_lines(&src, middle..src.len()),
                );
                lines.extend(back);
                lines
            }
            None => split_lines(&src, 0..src.len()),
        };
        Self {
            src,
            lines,
            options: *options,
            padded: HashMap::new(),
            undo: None,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &PasswdOptions {
        &self.options
    }

    fn raw(&self, i: usize) -> &[u8] {
        match &self.lines[i] {
            LineRaw::Src { start, end } => &self.src[*start..*end],
            LineRaw::Owned(v) => v,
        }
    }

    /// The document's bytes.
    pub fn render(&self) -> Vec<u8> {
        crate::pieces::render(&self.src, self.pieces(), self.src.len())
    }

    /// Write the document's bytes, untouched runs straight from the parsed bytes.
    pub fn write_to<W: std::io::Write>(&self, out: &mut W) -> std::io::Result<()> {
        crate::pieces::each_run(&self.src, self.pieces(), |b| out.write_all(b))
    }

    fn pieces(&self) -> impl Iterator<Item = crate::pieces::Piece<'_>> + '_ {
        self.lines.iter().map(|line| match line {
            LineRaw::Src { start, end } => crate::pieces::Piece::Src(*start, *end),
            LineRaw::Owned(v) => crate::pieces::Piece::Owned(v),
        })
    }

    /// Every physical line.
    pub fn lines(&self) -> impl Iterator<Item = Line<'_>> + '_ {
        (0..self.lines.len()).map(move |i| self.line_at(i))
    }

    /// Line `i` (0-based).
    fn line_at(&self, i: usize) -> Line<'_> {
        Line {
            number: i + 1,
            raw: self.raw(i),
            options: self.options,
        }
    }

    /// Every record line, in order (including ones Dovecot drops or ignores).
    pub fn records(&self) -> impl Iterator<Item = PasswdEntry<'_>> + '_ {
        self.lines().filter_map(|l| l.entry())
    }

    /// Why Dovecot drops a record when loading, if it does.
    fn drop_reason(&self, entry: &PasswdEntry<'_>, ids: &dyn IdResolver) -> Option<String> {
        let user = || show(entry.user());
        if let Some(p) = entry.password() {
            if bracket_scheme(p).is_err() {
                return Some(format!("User {} has invalid password", user()));
            }
        }
        if !self.options.userdb {
            return None;
        }
        for (n, kind, label) in [(2, IdKind::User, "UID"), (3, IdKind::Group, "GID")] {
            if let Some(f) = entry.fields.get(n).filter(|f| !f.is_empty()) {
                if parse_id(f, kind, ids).filter(|&v| v != 0).is_none() {
                    let (user, value) = (user(), show(f));
                    return Some(format!("User {user} has invalid {label} '{value}'"));
                }
            }
        }
        None
    }

    /// The name a request for `name` is looked up under: lowercased with `%Lu`; `None` when a
    /// byte is outside `auth_username_chars` (Dovecot answers "user doesn't exist").
    pub fn request_key(&self, name: &[u8]) -> Option<Vec<u8>> {
        if name.is_empty() || !name.iter().all(|&b| username_char_ok(b)) {
            return None;
        }
        Some(if self.options.lowercase_requests {
            name.to_ascii_lowercase()
        } else {
            name.to_vec()
        })
    }

    /// Why `name` has no record Dovecot would use, in words: characters outside
    /// `auth_username_chars`, no line for it, or which of its lines are dropped and why.
    pub fn explain_missing(&self, name: &[u8], ids: &dyn IdResolver) -> String {
        let Some(key) = self.request_key(name) else {
            return "the name has characters outside auth_username_chars".to_string();
        };
        let loaded = self.load(ids);
        let lines: Vec<String> = self
            .records()
            .filter(|e| e.user() == key.as_slice())
            .map(|e| {
                let status = loaded
                    .statuses()
                    .iter()
                    .find(|(i, _)| *i + 1 == e.line())
                    .map(|(_, s)| s.clone());
                match status {
                    Some(LoadStatus::Dropped { reason }) => {
                        format!("line {} is dropped: {reason}", e.line())
                    }
                    _ => format!("line {}", e.line()),
                }
            })
            .collect();
        if lines.is_empty() {
            format!("no line for `{}`", String::from_utf8_lossy(&key))
        } else {
            lines.join("; ")
        }
    }

    /// The record Dovecot uses when `name` is requested (after lowercasing with `%Lu`), if any.
    pub fn lookup(&self, name: &[u8], ids: &dyn IdResolver) -> Option<PasswdEntry<'_>> {
        let key = self.request_key(name)?;
        self.effective(&key, ids).map(|(_, e)| e)
    }

    /// The record Dovecot uses for the exact key `user`: the first line of that user it does not
    /// drop (a dropped line never enters its table, so a later one is taken). One pass without
    /// building the whole table.
    fn effective(&self, user: &[u8], ids: &dyn IdResolver) -> Option<(usize, PasswdEntry<'_>)> {
        (0..self.lines.len()).find_map(|i| {
            let raw = self.raw(i);
            if !raw.starts_with(user) {
                return None;
            }
            let line = Line {
                number: i + 1,
                raw,
                options: self.options,
            };
            let entry = line.entry()?;
            (entry.user() == user && self.drop_reason(&entry, ids).is_none()).then_some((i, entry))
        })
    }
}

impl crate::transaction::Document for PasswdFile {
    fn render(&self) -> Vec<u8> {
        PasswdFile::render(self)
    }

    fn write_document(&self, mut out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.write_to(&mut out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A line has an entry exactly when it is a record.
        #[test]
        fn a_line_has_an_entry_when_it_is_a_record(
            raw in proptest::collection::vec(proptest::sample::select(&b":ab#\r\n\0 "[..]), 0..24)
        ) {
            let line = Line { number: 1, raw: &raw, options: PasswdOptions::default() };
            proptest::prop_assert_eq!(line.entry().is_some(), line.kind() == LineKind::Record);
        }

        /// The lines found in two halves, split at any line start, are the lines found in one.
        #[test]
        fn lines_split_in_halves_are_the_lines_of_one_pass(
            raw in proptest::collection::vec(proptest::sample::select(&b"a:\n"[..]), 0..40)
        ) {
            let spans = |lines: Vec<LineRaw>| -> Vec<(usize, usize)> {
                lines.iter().map(|l| match l {
                    LineRaw::Src { start, end } => (*start, *end),
                    LineRaw::Owned(_) => (usize::MAX, 0),
                }).collect()
            };
            let one = spans(split_lines(&raw, 0..raw.len()));
            let starts = std::iter::once(0)
                .chain(raw.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1));
            for middle in starts {
                let mut halves = split_lines(&raw, 0..middle);
                halves.extend(split_lines(&raw, middle..raw.len()));
                proptest::prop_assert_eq!(&spans(halves), &one, "split at {}", middle);
            }
        }
    }
    use crate::dovecot::SystemIds;

    fn ids() -> SystemIds {
        SystemIds::new(&[("vmail", 999), ("root", 0)], &[("vmail", 995)])
    }

    fn file(s: &str) -> PasswdFile {
        PasswdFile::parse(s.as_bytes().to_vec(), &PasswdOptions::default())
    }

    fn fields(f: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<String> {
        f.iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{}={}", show(k), show(v)),
                None => show(k),
            })
            .collect()
    }

    fn userdb(f: &PasswdFile, user: &str) -> Option<Vec<String>> {
        let e = f.lookup(user.as_bytes(), &ids())?;
        e.userdb(&ids()).expect("lookup").map(|u| fields(&u.fields))
    }

    fn codes(f: &PasswdFile) -> Vec<(usize, &'static str)> {
        f.diagnostics(&ids())
            .iter()
            .map(|d| (d.line, d.kind.code()))
            .collect()
    }

    /// Rows of the research table (docs/dovecot-passwd-file.md), confirmed on Dovecot 2.3.19.1.
    #[test]
    fn records_as_dovecot_reads_them() {
        let f = file(concat!(
            "carol\n",
            "bob:{PLAIN}x\n",
            "bob3:{PLAIN}x:\n",
            "bob4:{PLAIN}x::\n",
            "bob5:{PLAIN}x:::\n",
            "u0:{PLAIN}x:0:0::/home/u0\n",
            "ur:{PLAIN}x:root:1000::/h\n",
            "uv:{PLAIN}x:vmail:vmail::/home/u\n",
            "us:{PLAIN}x:1000 :1000::/h\n",
            "legacy:{PLAIN}x:1000:1000:Gecos:/home/u:/bin/sh::maildir:~/Mail:LAYOUT=fs\n",
            "trap:{PLAIN}x:1000:1000::/h:::nologin=y\n",
            "maint:p::::::nologin=y reason=Maintenance\n",
            "  # note\n",
            "crlf:{PLAIN}x:1000:1000::/home/u\r\n",
            "dup:{PLAIN}first:1000:1000::/dup1\n",
            "dup:{PLAIN}second:1001:1001::/dup2\n",
            "Upper:{PLAIN}x:1000:1000::/h\n",
            "split:{PLAIN}x:1000:1000::/h::reason=Back soon\n",
            "pct:{PLAIN}x:1000:1000::/h::p1=100%% p2=%u p3=end% userdb_q=%%u\n",
            "bad:{PLAIN}x:1000:1000::/h::p=50%off\n",
            "ovr:{PLAIN}x:1000:1000::/home/orig::userdb_home=/srv/%u userdb_uid=vmail\n",
            "nets:{PLAIN}x:1000:1000::/h::allow_nets=\n",
            "nopw:{PLAIN}secret:1000:1000::/h::nopassword\n",
            "md5:xxx[34]:1000:1000::/h\n",
            "nul:{PLAIN}x\0junk:1000:1000::/h\n",
            "# comment\n",
            ":skipped\n",
            "\n",
        ));
        assert_eq!(userdb(&f, "carol"), None);
        assert!(f.lookup(b"carol", &ids()).is_some(), "passdb has carol");
        assert_eq!(userdb(&f, "bob"), None);
        assert_eq!(userdb(&f, "bob3"), None);
        assert_eq!(userdb(&f, "bob4"), Some(vec![]));
        assert_eq!(userdb(&f, "bob5"), Some(vec![]));
        assert!(f.lookup(b"u0", &ids()).is_none());
        assert!(f.lookup(b"ur", &ids()).is_none());
        assert_eq!(
            userdb(&f, "uv"),
            Some(vec![
                "uid=999".into(),
                "gid=995".into(),
                "home=/home/u".into()
            ])
        );
        assert!(f.lookup(b"us", &ids()).is_none());
        assert_eq!(
            userdb(&f, "legacy").expect("found").last().cloned(),
            Some("mail=maildir:~/Mail:LAYOUT=fs".to_string())
        );
        assert_eq!(
            userdb(&f, "trap").expect("found").last().cloned(),
            Some("mail=nologin=y".to_string())
        );
        let maint = f.lookup(b"maint", &ids()).expect("maint");
        assert_eq!(
            fields(&maint.passdb().expect("ok").fields),
            ["nologin=y", "reason=Maintenance"]
        );
        assert_eq!(userdb(&f, "maint"), Some(vec![]));
        assert_eq!(
            userdb(&f, "crlf"),
            Some(vec![
                "uid=1000".into(),
                "gid=1000".into(),
                "home=/home/u".into()
            ])
        );
        assert_eq!(userdb(&f, "dup").expect("dup")[2], "home=/dup1");
        assert!(f.lookup(b"Upper", &ids()).is_none());
        assert!(f.lookup(b"upper", &ids()).is_none());
        let split = f.lookup(b"split", &ids()).expect("split");
        assert_eq!(
            fields(&split.passdb().expect("ok").fields),
            ["reason=Back", "soon"]
        );
        let pct = f.lookup(b"pct", &ids()).expect("pct");
        assert_eq!(
            fields(&pct.passdb().expect("ok").fields),
            ["p1=100%", "p2=pct", "p3=end"]
        );
        assert_eq!(
            userdb(&f, "pct").expect("pct").last().cloned(),
            Some("q=%u".into())
        );
        let bad = f.lookup(b"bad", &ids()).expect("bad");
        assert!(matches!(bad.passdb(), Err(LookupFailure::Expansion { .. })));
        assert_eq!(
            userdb(&f, "ovr"),
            Some(vec![
                "uid=999".into(),
                "gid=1000".into(),
                "home=/srv/ovr".into()
            ])
        );
        let nets = f
            .lookup(b"nets", &ids())
            .expect("nets")
            .passdb()
            .expect("ok");
        assert!(nets.allow_nets_denies_local());
        assert!(nets.visible_fields().is_empty());
        let md5 = f.lookup(b"md5", &ids()).expect("md5").passdb().expect("ok");
        assert_eq!(md5.password.as_deref(), Some(&b"{PLAIN-MD5}xxx"[..]));
        let nul = f.lookup(b"nul", &ids()).expect("nul");
        assert_eq!(nul.password(), Some(&b"{PLAIN}x"[..]));
        assert_eq!(userdb(&f, "nul"), None);
        assert_eq!(
            codes(&f),
            [
                (1, "missing-userdb-info"),
                (2, "missing-userdb-info"),
                (3, "missing-userdb-info"),
                (6, "dropped"),
                (7, "dropped"),
                (9, "dropped"),
                (10, "legacy-mail-field"),
                (11, "legacy-mail-field"),
                (13, "junk-user"),
                (16, "duplicate-user"),
                (17, "uppercase-name"),
                (18, "suspicious-field"),
                (20, "broken-field"),
                (23, "suspicious-field"),
                (25, "nul-byte"),
                (25, "missing-userdb-info"),
            ]
        );
        assert_eq!(f.render(), f.render());
    }

    #[test]
    fn round_trip_is_exact() {
        for src in [
            &b""[..],
            b"a",
            b"a\r",
            b"a:b\r\n\r\n#x\n:y\n  \n",
            b"\0\n\xff:\xfe",
        ] {
            let f = PasswdFile::parse(src.to_vec(), &PasswdOptions::default());
            assert_eq!(f.render(), src);
        }
    }

    #[test]
    fn edits_touch_only_their_field() {
        let src = "# users\nalice@x:{PLAIN}a:999:995::/home/a::userdb_mail=mdbox:~/mdbox  quota=1G\r\nbob@x:{PLAIN}b:999:995::/home/b\nnofields@x:{PLAIN}c:999:995::/home/c::\n";
        let mut f = file(src);
        let ids = ids();
        f.set_extra(b"alice@x", b"allow_nets", Some(b""), &ids)
            .expect("set");
        assert_eq!(
            f.render(),
            src.replace("quota=1G\r\n", "quota=1G allow_nets=\r\n")
                .as_bytes()
        );
        assert!(f
            .remove_extra(b"alice@x", b"allow_nets", &ids)
            .expect("remove"));
        assert_eq!(f.render(), src.as_bytes());
        // bob has 6 colons: padded to 7, and the padding goes again with the field.
        f.set_extra(b"bob@x", b"nologin", Some(b"y"), &ids)
            .expect("set");
        assert!(f.remove_extra(b"bob@x", b"nologin", &ids).expect("remove"));
        assert_eq!(f.render(), src.as_bytes());
        f.set_extra(b"bob@x", b"nologin", Some(b"y"), &ids)
            .expect("set");
        assert!(f
            .render()
            .windows(28)
            .any(|w| w == b"bob@x:{PLAIN}b:999:995::/hom"));
        let bob = f.lookup(b"bob@x", &ids).expect("bob");
        assert_eq!(fields(&bob.passdb().expect("ok").fields), ["nologin=y"]);
        // Replace in place keeps the other fields and their spacing.
        f.set_extra(b"alice@x", b"quota", Some(b"2G"), &ids)
            .expect("set");
        assert!(String::from_utf8_lossy(&f.render()).contains("mdbox:~/mdbox  quota=2G\r\n"));
        f.set_extra(b"nofields@x", b"k", Some(b"v"), &ids)
            .expect("set");
        assert!(String::from_utf8_lossy(&f.render()).contains("/home/c::k=v\n"));
    }

    /// Regression (found by proptest): extra fields ending in `:` (`_=:`) got the new field
    /// glued to them without a space.
    #[test]
    fn regression_append_after_a_value_ending_in_colon() {
        let mut f = file("a:{PLAIN}:1000:1000::/home/a::_=:\n");
        f.set_extra(b"a", b"k", Some(b""), &ids()).expect("set");
        assert_eq!(f.render(), b"a:{PLAIN}:1000:1000::/home/a::_=: k=\n");
        assert!(f.remove_extra(b"a", b"k", &ids()).expect("remove"));
        assert_eq!(f.render(), b"a:{PLAIN}:1000:1000::/home/a::_=:\n");
    }

    /// Regressions (found by the fuzzer): set then remove of a new field must restore a record
    /// that had fewer than 7 colons (padding) or whose extra fields end in a space.
    #[test]
    fn regression_set_remove_restores_padding_and_trailing_space() {
        for src in [
            "dup:p:1:1::/first\n",
            "u:p:1:1::/h::a=1 \n",
            "u:p:1:1::/h::a=1  \r\n",
        ] {
            let mut f = file(src);
            f.set_extra(b"dup", b"k", Some(b"v"), &ids()).ok();
            f.set_extra(b"u", b"k", Some(b"v"), &ids()).ok();
            let edited = PasswdFile::parse(f.render(), &PasswdOptions::default());
            let user: &[u8] = if src.starts_with("dup") { b"dup" } else { b"u" };
            let p = edited
                .lookup(user, &ids())
                .expect("user")
                .passdb()
                .expect("ok");
            assert_eq!(p.get(b"k"), Some(Some(&b"v"[..])), "{src:?}");
            assert!(f.remove_extra(user, b"k", &ids()).expect("remove"));
            assert_eq!(f.render(), src.as_bytes(), "{src:?}");
        }
    }

    #[test]
    fn edits_refuse_what_dovecot_would_misread() {
        let src = "p:{PLAIN}x\nt:{PLAIN}x:1:1::/h:::a=b\nd:{PLAIN}x:1:1::/h::k=1 k=2\nu:{PLAIN}x:1:1::/h::\n";
        let mut f = file(src);
        let ids = ids();
        let errs = [
            f.set_extra(b"p", b"k", Some(b"v"), &ids),
            f.set_extra(b"t", b"k", Some(b"v"), &ids),
            f.set_extra(b"d", b"k", Some(b"v"), &ids),
            f.set_extra(b"u", b"k", Some(b"two words"), &ids),
            f.set_extra(b"u", b"k", Some(b"50%off"), &ids),
            f.set_extra(b"u", b"k", Some(b"end%"), &ids),
            f.set_extra(b"u", b"k", Some(b"a\nb"), &ids),
            f.set_extra(b"u", b"", Some(b"v"), &ids),
            f.set_extra(b"u", b"a=b", Some(b"v"), &ids),
            f.set_extra(b"u:x", b"k", Some(b"v"), &ids),
            f.set_extra(b"nobody", b"k", Some(b"v"), &ids),
        ];
        for (i, e) in errs.iter().enumerate() {
            assert!(e.is_err(), "edit {i} should be refused");
        }
        assert_eq!(f.render(), src.as_bytes(), "nothing was written");
        f.set_extra(b"u", b"k", Some(b"100%%"), &ids)
            .expect("%% is a literal %");
    }

    /// A failing atomic edit takes back every line it changed or added (padding included);
    /// a succeeding one nested in it is taken back with it; a succeeding one stays.
    #[test]
    fn a_failing_atomic_edit_changes_nothing() {
        let src = "u:{PLAIN}x:1:1::/h\nv:{PLAIN}x:1:1::/h::a=1\n";
        let mut f = file(src);
        let ids = ids();
        let r: Result<(), PasswdEditError> = f.atomically(|f| {
            f.set_extra(b"u", b"k", Some(b"1"), &ids)?;
            f.atomically(|f| f.set_extra(b"v", b"a", Some(b"2"), &ids))?;
            f.add_record(b"w", &[])?;
            f.remove_records(b"v")?;
            f.set_extra(b"u", b"k", Some(b"two words"), &ids)
        });
        assert!(r.is_err());
        assert_eq!(f.render(), src.as_bytes());
        // The padding record went back too: a later set and remove restore the line.
        f.atomically(|f| f.set_extra(b"u", b"k", Some(b"1"), &ids))
            .expect("set");
        assert_eq!(
            f.render(),
            b"u:{PLAIN}x:1:1::/h::k=1\nv:{PLAIN}x:1:1::/h::a=1\n"
        );
        assert!(f.remove_extra(b"u", b"k", &ids).expect("remove"));
        assert_eq!(f.render(), src.as_bytes());
    }
}
