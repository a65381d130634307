//! RFC 822 address lists as Postfix's `tok822` parser reads a virtual alias result.
//!
//! Postfix tokenizes the value (atoms, quoted strings, comments, domain literals, operators),
//! then groups tokens into addresses walking **right to left**: two words with no operator
//! between them get a comma inserted ("the parser adds missing commas"), `phrase <addr>` keeps
//! only `addr`, `group: a, b;` drops the group name, comments are ignored. Each address is then
//! canonicalized like trivial-rewrite's "local" context (source route dropped, `a!b` and `a%b`
//! rewritten, `@$myorigin` appended to a bare user, a trailing dot dropped).
//!
//! Addresses are kept in Postfix's **internal** (unquoted) form; [`quote_local`] gives the
//! external form used as a lookup key.

/// One recipient address produced from a value, in internal (unquoted) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address(pub Vec<u8>);

impl Address {
    /// The local part: everything before the last `@` (the whole address if there is none).
    pub fn local_part(&self) -> &[u8] {
        match self.0.iter().rposition(|&b| b == b'@') {
            Some(i) => &self.0[..i],
            None => &self.0,
        }
    }

    /// The domain: everything after the last `@`, if there is one.
    pub fn domain(&self) -> Option<&[u8]> {
        self.0
            .iter()
            .rposition(|&b| b == b'@')
            .map(|i| &self.0[i + 1..])
    }

    /// The external (quoted) form, as Postfix uses for table lookups.
    pub fn external(&self) -> Vec<u8> {
        quote_local(&self.0, false)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.external()))
    }
}

/// The addresses of one value, before canonicalization, and what looked wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressList {
    /// Each address, internal form, not yet canonicalized (see [`canonicalize`]).
    pub addresses: Vec<Address>,
    suspicious: Vec<String>,
}

impl AddressList {
    /// Why this value probably does not do what its author meant: no address at all (Postfix
    /// defers the mail), or words that became extra recipients (`a@x # note`).
    pub fn problem(&self) -> Option<String> {
        if self.addresses.is_empty() {
            return Some(
                "the value yields no address; cleanup would defer mail for this key (\"returns non-address result\")"
                    .into(),
            );
        }
        self.suspicious.first().cloned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Head,
    Tail,
    Atom(Vec<u8>),
    QString(Vec<u8>),
    DomLit(Vec<u8>),
    Comment,
    Op(u8),
    StartGroup,
    Addr(Vec<Tok>),
}

impl Tok {
    fn is_word(&self) -> bool {
        matches!(self, Tok::Atom(_) | Tok::QString(_) | Tok::DomLit(_))
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_opchar(b: u8) -> bool {
    b"|%!()<>@,;:\\\".[]".contains(&b)
}

/// The tokenizer (`tok822_scan`).
fn scan(s: &[u8]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if is_ws(c) {
            i += 1;
            continue;
        }
        match c {
            b'(' => {
                // Nested comment; `\` copies the next byte; unterminated runs to the end.
                let mut depth = 0usize;
                while i < s.len() {
                    match s[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                toks.push(Tok::Comment);
            }
            b'[' | b'"' => {
                let close = if c == b'[' { b']' } else { b'"' };
                let mut text = Vec::new();
                i += 1;
                while i < s.len() && s[i] != close {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                        text.push(if is_ws(s[i]) { b' ' } else { s[i] });
                    } else if is_ws(s[i]) {
                        text.push(b' ');
                    } else {
                        text.push(s[i]);
                    }
                    i += 1;
                }
                i += 1; // the closing byte, if any
                toks.push(if c == b'[' {
                    Tok::DomLit(text)
                } else {
                    Tok::QString(text)
                });
            }
            _ if c != b'\\' && is_opchar(c) => {
                toks.push(Tok::Op(c));
                i += 1;
            }
            _ => {
                let mut text = Vec::new();
                while i < s.len() {
                    let b = s[i];
                    if b == b'\\' {
                        i += 1;
                        if i < s.len() {
                            text.push(if is_ws(s[i]) { b' ' } else { s[i] });
                            i += 1;
                        }
                        continue;
                    }
                    if is_ws(b) || is_opchar(b) {
                        break;
                    }
                    text.push(b);
                    i += 1;
                }
                let quoted = text
                    .iter()
                    .any(|&b| b == b' ' || b.is_ascii_control() || is_opchar(b));
                toks.push(if quoted {
                    Tok::QString(text)
                } else {
                    Tok::Atom(text)
                });
            }
        }
    }
    toks
}

/// Move the tokens strictly between `l` and `r` into one address node after `l`; with `comma`,
/// put a `,` before it. Returns `l`.
fn group(v: &mut Vec<Tok>, l: usize, r: usize, comma: bool) -> usize {
    if r > l + 1 {
        let inner: Vec<Tok> = v.drain(l + 1..r).collect();
        v.insert(l + 1, Tok::Addr(inner));
        if comma {
            v.insert(l + 1, Tok::Op(b','));
        }
    }
    l
}

/// The right-to-left parser (`tok822_parse`): returns the top-level address nodes' tokens.
fn parse_tokens(toks: Vec<Tok>) -> Vec<Vec<Tok>> {
    const WORD: u8 = 1;
    const GROUP: u8 = 2;
    let mut v = Vec::with_capacity(toks.len() + 2);
    v.push(Tok::Head);
    v.extend(toks);
    v.push(Tok::Tail);
    let mut tp = v.len() - 2;
    let mut right = v.len() - 1;
    let mut state = WORD;
    while tp > 0 {
        match &v[tp] {
            Tok::Comment => {
                let c = v.remove(tp);
                right -= 1;
                v.insert(right, c);
                tp -= 1;
                continue;
            }
            Tok::Op(b';') => {
                right = group(&mut v, tp, right, true);
                state = GROUP | WORD;
            }
            Tok::Op(b':') if state & GROUP != 0 => {
                v[tp] = Tok::StartGroup;
                group(&mut v, tp, right, false);
                while tp > 0 && v[tp] != Tok::Op(b',') {
                    tp -= 1;
                }
                right = tp;
                continue;
            }
            Tok::Op(b'>') => {
                right = group(&mut v, tp, right, true);
                while tp > 0 && v[tp] != Tok::Op(b'<') {
                    if v[tp] == Tok::Comment {
                        let c = v.remove(tp);
                        right -= 1;
                        v.insert(right, c);
                    }
                    tp -= 1;
                }
                group(&mut v, tp, right, false);
                while tp > 0 && !matches!(v[tp], Tok::Op(b'>' | b';' | b',' | b':')) {
                    tp -= 1;
                }
                right = tp;
                state |= WORD;
                continue;
            }
            t if t.is_word() => {
                if state & WORD == 0 {
                    let before = v.len();
                    group(&mut v, tp, right, true);
                    // The inserted comma (if any) sits right after tp.
                    right = if v.len() > before || right > tp + 1 {
                        tp + 1
                    } else {
                        right
                    };
                }
                state &= !WORD;
            }
            Tok::Op(b',') => {
                right = group(&mut v, tp, right, false);
                state |= WORD;
            }
            Tok::Op(_) => state |= WORD,
            _ => {}
        }
        tp -= 1;
    }
    group(&mut v, 0, right, false);
    v.into_iter()
        .filter_map(|t| match t {
            Tok::Addr(inner) => Some(inner),
            _ => None,
        })
        .collect()
}

/// Internal form of an address's tokens: raw texts concatenated (quoted strings unquoted,
/// domain literals with brackets), comments dropped.
fn internalize(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        match t {
            Tok::Atom(s) | Tok::QString(s) => out.extend_from_slice(s),
            Tok::DomLit(s) => {
                out.push(b'[');
                out.extend_from_slice(s);
                out.push(b']');
            }
            Tok::Op(b',') => out.extend_from_slice(b", "),
            Tok::Op(c) => out.push(*c),
            Tok::Addr(inner) => out.extend_from_slice(&internalize(inner)),
            _ => {}
        }
    }
    out
}

/// Parse a virtual alias value into its addresses (internal form, not canonicalized), the way
/// `mail_addr_crunch()` does. An empty value or `<>` is the null address `""`.
///
/// ```
/// use mailmig_core::postfix::parse_address_list;
/// let l = parse_address_list(b"Alice <alice@x>, bob@y carol@z (note)");
/// let got: Vec<String> = l.addresses.iter().map(|a| a.to_string()).collect();
/// assert_eq!(got, ["alice@x", "bob@y", "carol@z"]);
/// ```
pub fn parse_address_list(value: &[u8]) -> AddressList {
    if let Some(fast) = plain_list(value) {
        return fast;
    }
    let value: &[u8] = if value.is_empty() || value == b"<>" {
        b"\"\""
    } else {
        value
    };
    let toks = scan(value);
    let mut suspicious = Vec::new();
    for t in &toks {
        if let Tok::Atom(a) = t {
            if a.first() == Some(&b'#') {
                suspicious.push(format!(
                    "`{}` is not a comment in a virtual value: postfix takes it as another recipient (comments in tables must be on their own line)",
                    String::from_utf8_lossy(a)
                ));
            }
        }
    }
    let addresses = parse_tokens(toks)
        .iter()
        .map(|inner| Address(internalize(inner)))
        .collect();
    AddressList {
        addresses,
        suspicious,
    }
}

/// A plain `local@domain` with dot-atom parts: what the tokenizer and canonicalization would
/// give back unchanged.
fn is_plain_address(a: &[u8]) -> bool {
    let Some(at) = memchr::memchr(b'@', a) else {
        return false;
    };
    is_dot_atom(&a[..at]) && is_dot_atom(&a[at + 1..])
}

/// Bytes of a dot-atom as [`is_plain_address`] takes them: letters, digits, `._+=-`.
const DOT_ATOM: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'=' | b'-');
        b += 1;
    }
    table
};

/// A non-empty run of [`DOT_ATOM`] bytes that neither starts nor ends with a dot nor holds two
/// dots in a row; one pass over the bytes (this is most of `map check`'s value checks).
fn is_dot_atom(part: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (part.first(), part.last()) else {
        return false;
    };
    if first == b'.' || last == b'.' {
        return false;
    }
    let mut dot = false;
    for &b in part {
        if !DOT_ATOM[usize::from(b)] || (dot && b == b'.') {
            return false;
        }
        dot = b == b'.';
    }
    true
}

/// Why a virtual value probably does not do what its author meant ([`AddressList::problem`]),
/// without building the list when the value is the common shape: plain addresses separated by
/// commas and/or whitespace.
pub fn value_problem(value: &[u8]) -> Option<String> {
    if all_plain_addresses(value) {
        return None;
    }
    parse_address_list(value).problem()
}

/// The byte classes of [`all_plain_addresses`]: between words (a comma or [`is_ws`]), `@`, `.`,
/// any other [`DOT_ATOM`] byte, anything else.
const GAP: u8 = 0;
const AT: u8 = 1;
const DOT: u8 = 2;
const ATOM: u8 = 3;
const OTHER: u8 = 4;

const PLAIN_BYTES: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b',' | b' ' | b'\t' | b'\r' | b'\n' => GAP,
            b'@' => AT,
            b'.' => DOT,
            _ if DOT_ATOM[b] => ATOM,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// The states of [`all_plain_addresses`]: before any word; between words after one; in the
/// local part (last byte an atom byte, a dot); just after `@`; in the domain (last byte an atom
/// byte, a dot); not the common shape.
const START: u8 = 0;
const BETWEEN: u8 = 8;
const LOCAL: u8 = 16;
const LOCAL_DOT: u8 = 24;
const AFTER_AT: u8 = 32;
const DOMAIN: u8 = 40;
const DOMAIN_DOT: u8 = 48;
const FAIL: u8 = 56;

/// The next state: `PLAIN_STEPS[state + class]` (the states are multiples of 8, so that a
/// step is one addition and one lookup).
const PLAIN_STEPS: [u8; 64] = {
    // (state, class, next); every other step fails.
    const STEPS: [(u8, u8, u8); 13] = [
        (START, GAP, START),
        (START, ATOM, LOCAL),
        (BETWEEN, GAP, BETWEEN),
        (BETWEEN, ATOM, LOCAL),
        (LOCAL, AT, AFTER_AT),
        (LOCAL, DOT, LOCAL_DOT),
        (LOCAL, ATOM, LOCAL),
        (LOCAL_DOT, ATOM, LOCAL),
        (AFTER_AT, ATOM, DOMAIN),
        (DOMAIN, GAP, BETWEEN),
        (DOMAIN, DOT, DOMAIN_DOT),
        (DOMAIN, ATOM, DOMAIN),
        (DOMAIN_DOT, ATOM, DOMAIN),
    ];
    let mut steps = [FAIL; 64];
    let mut i = 0;
    while i < STEPS.len() {
        let (state, class, next) = STEPS[i];
        steps[(state + class) as usize] = next;
        i += 1;
    }
    steps
};

/// The classes of two bytes as one number: `first * 5 + second` (25 of them).
const CLASSES: u8 = 5;

/// The next state after two bytes: `PLAIN_PAIR_STEPS[state * 4 + pair]`, where the state and
/// the result are times 4 (a state, a multiple of 8, then has 32 entries, room for the 25
/// pairs): one lookup for two steps of [`PLAIN_STEPS`].
const PLAIN_PAIR_STEPS: [u8; 256] = {
    let mut table = [FAIL * 4; 256];
    let mut state = START;
    while state <= FAIL {
        let mut first = 0;
        while first < CLASSES {
            let mut second = 0;
            while second < CLASSES {
                let middle = PLAIN_STEPS[(state + first) as usize];
                let next = PLAIN_STEPS[(middle + second) as usize];
                table[(state * 4 + first * CLASSES + second) as usize] = next * 4;
                second += 1;
            }
            first += 1;
        }
        state += 8;
    }
    table
};

/// Whether `value` has at least one word and each of its [`plain_words`] is a plain address
/// ([`is_plain_address`]): one pass over the bytes, two at a time, and no branch on a byte
/// (this is most of a virtual map's check). Each step waits for the one before it, so a step
/// for two bytes halves the wait.
fn all_plain_addresses(value: &[u8]) -> bool {
    let mut pairs = value.chunks_exact(2);
    let mut state = usize::from(START) * 4;
    for pair in &mut pairs {
        let pair = PLAIN_BYTES[usize::from(pair[0])] * CLASSES + PLAIN_BYTES[usize::from(pair[1])];
        state = usize::from(PLAIN_PAIR_STEPS[state + usize::from(pair)]);
        if state == usize::from(FAIL) * 4 {
            return false;
        }
    }
    let mut state = u8::try_from(state / 4).unwrap_or(FAIL);
    if let [last] = pairs.remainder() {
        state = PLAIN_STEPS[usize::from(state + PLAIN_BYTES[usize::from(*last)])];
    }
    matches!(state, BETWEEN | DOMAIN)
}

/// The words of a value split at commas and whitespace, as the common value shape has them.
fn plain_words(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',' || is_ws(b))
        .filter(|w| !w.is_empty())
}

/// The common value shape — plain addresses separated by commas and/or whitespace — parsed
/// without the general tokenizer. `None` when the value needs the full parser.
fn plain_list(value: &[u8]) -> Option<AddressList> {
    let mut addresses = Vec::new();
    for token in plain_words(value) {
        if !is_plain_address(token) {
            return None;
        }
        addresses.push(Address(token.to_vec()));
    }
    if addresses.is_empty() {
        return None;
    }
    Some(AddressList {
        addresses,
        suspicious: Vec::new(),
    })
}

/// Canonicalize one address as trivial-rewrite's "local" context does (with Postfix's defaults
/// `swap_bangpath = yes`, `allow_percent_hack = yes`, `append_at_myorigin = yes`,
/// `append_dot_mydomain = no`). `myorigin` is appended to an address without `@`.
pub fn canonicalize(address: &Address, myorigin: Option<&[u8]>) -> Address {
    if is_plain_address(&address.0) {
        return address.clone();
    }
    let external = quote_local(&address.0, false);
    let mut toks = scan(&external);
    // 1. the null address stays.
    if toks.len() == 1 && toks[0] == Tok::QString(Vec::new()) {
        return Address(Vec::new());
    }
    // 2. a lone `@` is the null address.
    if toks.len() == 1 && toks[0] == Tok::Op(b'@') {
        return Address(Vec::new());
    }
    // 3. source route: drop everything through the first `:`.
    if toks.first() == Some(&Tok::Op(b'@')) {
        if let Some(colon) = toks.iter().position(|t| *t == Tok::Op(b':')) {
            if colon + 1 < toks.len() {
                toks.drain(..=colon);
            }
        }
    }
    // 4. no `@`: bang path, percent hack, or append @myorigin.
    if !toks.contains(&Tok::Op(b'@')) {
        if let Some(bang) = toks.iter().position(|t| *t == Tok::Op(b'!')) {
            let domain: Vec<Tok> = toks.drain(..bang).collect();
            toks.remove(0);
            toks.push(Tok::Op(b'@'));
            toks.extend(domain);
        } else if let Some(pct) = toks.iter().rposition(|t| *t == Tok::Op(b'%')) {
            toks[pct] = Tok::Op(b'@');
        } else if let Some(origin) = myorigin.filter(|o| !o.is_empty()) {
            toks.push(Tok::Op(b'@'));
            toks.extend(scan(origin));
        }
    }
    // 6. a trailing dot goes, unless it follows `.` or `@`.
    if toks.len() >= 2 && toks[toks.len() - 1] == Tok::Op(b'.') {
        let before = &toks[toks.len() - 2];
        if *before != Tok::Op(b'.') && *before != Tok::Op(b'@') {
            toks.pop();
        }
    }
    Address(internalize(&toks))
}

/// Postfix `quote_822_local()`: quote the local part (up to the last `@`, or the whole string
/// when `bare`) unless it is a plain dot-string. A leading `@route:` is left alone.
pub fn quote_local(addr: &[u8], bare: bool) -> Vec<u8> {
    let (route, rest) = if addr.first() == Some(&b'@') {
        match addr.iter().position(|&b| b == b':') {
            Some(i) => addr.split_at(i + 1),
            None => (&addr[..0], addr),
        }
    } else {
        (&addr[..0], addr)
    };
    let split = if bare {
        rest.len()
    } else {
        rest.iter().rposition(|&b| b == b'@').unwrap_or(rest.len())
    };
    let (local, domain) = rest.split_at(split);
    let needs_quotes = local.is_empty()
        || local[0] == b'.'
        || local[local.len() - 1] == b'.'
        || local.windows(2).any(|w| w == b"..")
        || local
            .iter()
            .any(|&b| b == b' ' || b.is_ascii_control() || b"()<>@,;:\\\"[]".contains(&b));
    let mut out = route.to_vec();
    if needs_quotes {
        out.push(b'"');
        for &b in local {
            if matches!(b, b'"' | b'\\' | b'\r') {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(local);
    }
    out.extend_from_slice(domain);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(value: &str) -> Vec<String> {
        parse_address_list(value.as_bytes())
            .addresses
            .iter()
            .map(|a| String::from_utf8_lossy(&canonicalize(a, Some(b"example.org")).0).into_owned())
            .collect()
    }

    /// The examples worked out from Postfix's tok822_parse.c / mail_addr_crunch.c /
    /// trivial-rewrite (docs/virtual-parsing.md, table in section 8).
    #[test]
    fn postfix_examples() {
        let cases: &[(&str, &[&str])] = &[
            ("alice@x, bob@y", &["alice@x", "bob@y"]),
            ("a@x b@y", &["a@x", "b@y"]),
            ("a@x,,b@y,", &["a@x", "b@y"]),
            ("Alice Smith <alice@x>", &["alice@x"]),
            ("\"Smith, Alice\" <alice@x>", &["alice@x"]),
            ("Alice <a@x> Bob <b@y>", &["a@x", "b@y"]),
            ("a@x <b@y>", &["b@y"]),
            ("<a@x> b@y", &["a@x", "b@y"]),
            (
                "Alice Smith alice@x",
                &["Alice@example.org", "Smith@example.org", "alice@x"],
            ),
            ("\"john doe\"@x", &["john doe@x"]),
            ("john\\ doe@x", &["john doe@x"]),
            ("john doe@x", &["john@example.org", "doe@x"]),
            ("a@x (comment) , b@y", &["a@x", "b@y"]),
            ("a@x (unterminated, b@y", &["a@x"]),
            ("group: a@x, b@y;", &["a@x", "b@y"]),
            ("group: a@x, b@y", &["group:a@x", "b@y"]),
            ("x@y g: a@z;", &["a@z"]),
            ("bob", &["bob@example.org"]),
            (
                "a@x # not a comment",
                &[
                    "a@x",
                    "#@example.org",
                    "not@example.org",
                    "a@example.org",
                    "comment@example.org",
                ],
            ),
            ("<>", &[""]),
            ("u@[1.2.3.4]", &["u@[1.2.3.4]"]),
            ("host!user", &["user@host"]),
            ("user%host", &["user@host"]),
            ("u%h@x", &["u%h@x"]),
            ("<@relay:u@x>", &["u@x"]),
            ("\"a@b\"@x", &["a@b@x"]),
            ("a@X.Com.", &["a@X.Com"]),
            ("foo: <a@x>", &["foo@example.org", "a@x"]),
            ("b@y, @other", &["b@y", "@other"]),
        ];
        for (value, want) in cases {
            assert_eq!(list(value), *want, "value {value:?}");
        }
        for empty in ["group:;", ",", "(c)", "Al <>"] {
            assert!(
                parse_address_list(empty.as_bytes()).problem().is_some(),
                "{empty:?} yields no address"
            );
        }
    }

    #[test]
    fn fast_path_agrees_with_the_tokenizer() {
        for value in [
            "a@x, b@y",
            "a@x,b@y c.d+e@f.g",
            "A.B-c_d=e@Example.TEST\t,\r\n x@y",
            "a@x,,b@y,",
        ] {
            let fast = plain_list(value.as_bytes()).expect("plain");
            let toks = parse_tokens(scan(value.as_bytes()));
            let slow: Vec<Address> = toks.iter().map(|t| Address(internalize(t))).collect();
            assert_eq!(fast.addresses, slow, "{value}");
            for a in &slow {
                let mut via_rewrite = quote_local(&a.0, false);
                via_rewrite = internalize(&scan(&via_rewrite));
                assert_eq!(a.0, via_rewrite);
            }
        }
        for not_plain in [
            "bob",
            "a@b@c",
            "a..b@x",
            "a@x.",
            "Name <a@x>",
            "\"q\"@x",
            "a@x # c",
        ] {
            assert!(plain_list(not_plain.as_bytes()).is_none(), "{not_plain}");
        }
    }

    proptest::proptest! {
        /// The one-pass check of a plain address is the plain definition (a dot-atom on each
        /// side of the first `@`), and the value check without the list is the list's.
        #[test]
        fn the_quick_value_checks_are_the_lists(
            value in proptest::collection::vec(
                proptest::sample::select(&b"ab.@,# <>\"\t+=-_\r\nZ9\xc3"[..]), 0..16)
        ) {
            let dot_atom = |p: &[u8]| {
                !p.is_empty()
                    && p[0] != b'.'
                    && p[p.len() - 1] != b'.'
                    && !p.windows(2).any(|w| w == b"..")
                    && p.iter().all(|&b| b.is_ascii_alphanumeric() || b"._+=-".contains(&b))
            };
            let plain = match value.iter().position(|&b| b == b'@') {
                Some(at) => dot_atom(&value[..at]) && dot_atom(&value[at + 1..]),
                None => false,
            };
            proptest::prop_assert_eq!(is_plain_address(&value), plain);
            proptest::prop_assert_eq!(value_problem(&value), parse_address_list(&value).problem());
        }
    }

    /// The step for two bytes is two steps for one, in every state: every value of up to eight
    /// bytes of one byte of each class, odd lengths and even.
    #[test]
    fn two_bytes_a_step_are_two_steps() {
        let one_at_a_time = |value: &[u8]| {
            let mut state = START;
            for &b in value {
                state = PLAIN_STEPS[usize::from(state + PLAIN_BYTES[usize::from(b)])];
            }
            matches!(state, BETWEEN | DOMAIN)
        };
        let bytes = [b',', b'@', b'.', b'a', b'#'];
        let mut values: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 0..=8 {
            for value in &values {
                assert_eq!(
                    all_plain_addresses(value),
                    one_at_a_time(value),
                    "{value:?}"
                );
            }
            if len < 8 {
                values = values
                    .iter()
                    .flat_map(|v| bytes.iter().map(move |&b| [&v[..], &[b]].concat()))
                    .collect();
            }
        }
    }

    #[test]
    fn one_pass_words_examples() {
        for (value, plain) in [
            (&b"a@b"[..], true),
            (b" a@b, c.d@e.f\t", true),
            (b"a.@b", false),
            (b"a@.b", false),
            (b"a@b.", false),
            (b".a@b", false),
            (b"a..b@c", false),
            (b"a@b@c", false),
            (b"@b", false),
            (b"a@", false),
            (b"a", false),
            (b" , ", false),
            (b"", false),
            (b"a@b #c", false),
        ] {
            assert_eq!(all_plain_addresses(value), plain, "{value:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// The one-pass word check agrees with splitting the value into words and checking
        /// each, on values of words that are nearly addresses.
        #[test]
        fn one_pass_words_are_the_split_words(
            value in proptest::string::bytes_regex(
                "(?s-u)([ab.Z9=-]{0,3}@{0,2}[a.b-]{0,3}[, \t\r\n]{0,2}[#<\"\\xc3]?){0,4}"
            ).expect("regex")
        ) {
            let mut words = plain_words(&value).peekable();
            proptest::prop_assert_eq!(
                all_plain_addresses(&value),
                words.peek().is_some() && words.all(is_plain_address)
            );
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_local(b"john doe@x", false), b"\"john doe\"@x");
        assert_eq!(quote_local(b"a@b@c@d", false), b"\"a@b@c\"@d");
        assert_eq!(quote_local(b"", false), b"\"\"");
        assert_eq!(quote_local(b"a@b", true), b"\"a@b\"");
        assert_eq!(quote_local(b"plain.user@x", false), b"plain.user@x");
    }
}
