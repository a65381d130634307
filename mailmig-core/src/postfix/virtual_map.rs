//! `virtual(5)` alias maps: typed entries, Postfix's forward expansion, and the reverse closure
//! ("which addresses end up at this mailbox?").
//!
//! Forward expansion follows cleanup(8) (`cleanup_map1n_internal`): every result address is
//! looked up again (lookup order `user+ext@domain`, `user@domain`, then `user+ext` and `user` for
//! local domains, then `@domain`), an address that lists itself is expanded only once, and going
//! past a limit defers the mail. The reverse closure finds candidates through a reverse index of
//! every map's values (a batch) or a scan of them (one mailbox) and **confirms each one by
//! forward expansion**, so it never reports an address whose mail would not reach the mailbox.

mod forward;
mod words;

use std::collections::VecDeque;
use std::hash::BuildHasher;

use super::address::{canonicalize, parse_address_list, quote_local, Address, AddressList};
use super::fold::fold_key;
use super::table::{Entry, Table};
use super::{FastMap as HashMap, FastSet as HashSet};
use forward::Forward;
use words::{is_word_at, plain_breaks, word_hits, ByteFrequency};

/// The shape of a virtual alias key (proto/virtual, "TABLE SEARCH ORDER").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyForm {
    /// `user@domain`: matches that address (and, with a recipient delimiter, `user+ext@domain`).
    Address,
    /// `user` without `@`: matches `user@D` only for local domains D (`$myorigin`,
    /// `$mydestination`). The same text is also a *virtual alias domain marker* when it names a
    /// domain (`example.com anything`).
    Bare,
    /// `@domain`: the catch-all for every address in the domain not matched otherwise.
    CatchAll,
}

/// A typed view of one virtual alias entry.
#[derive(Debug, Clone)]
pub struct VirtualAlias<'a> {
    entry: Entry<'a>,
    form: KeyForm,
    destinations: AddressList,
}

/// The form of a key.
fn key_form(key: &[u8]) -> KeyForm {
    if key.first() == Some(&b'@') {
        KeyForm::CatchAll
    } else if key.contains(&b'@') {
        KeyForm::Address
    } else {
        KeyForm::Bare
    }
}

/// Whether a lookup can ever ask for `key`. The domain of an address is what follows its last
/// `@` (Postfix's `strrchr`), so a catch-all key `@a@b` names a domain no address has: the
/// walk must not derive addresses from it (each would add a domain to the local part and the
/// walk would never end).
fn is_looked_up(key: &[u8]) -> bool {
    key_form(key) != KeyForm::CatchAll || !key[1..].contains(&b'@')
}

/// Whether an entry's value rewrites the domain only (`@otherdomain`).
fn rewrites_domain(entry: &Entry<'_>) -> bool {
    entry.value().first() == Some(&b'@')
}

/// Whether a value could list an address whose folded, extension-stripped local part is
/// `local`: it holds those bytes (ASCII case ignored) as a whole word — not inside a longer
/// local part, though an extension may follow after one of the `delimiters` — or something that
/// parsing could turn into them: quoting, escapes, comments, angle brackets, a dot beside a
/// blank (`a . b` is `a.b`), or non-ASCII bytes (Unicode case folding).
/// `plain`: the whole table was found to hold none of those, and the value is not looked at
/// for them again.
fn could_list(value: &[u8], local: &[u8], delimiters: &[u8], plain: bool) -> bool {
    if !plain && !is_plain(value) {
        return true;
    }
    let Some(&first) = local.first() else {
        return true;
    };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, value).any(|i| is_word_at(value, i, local, delimiters))
}

/// Whether bytes hold nothing that parsing could turn into other address bytes: no quotes,
/// escapes, comments, angle brackets, dots beside blanks or non-ASCII bytes.
fn is_plain(bytes: &[u8]) -> bool {
    bytes.is_ascii()
        && memchr::memchr3(b'"', b'\\', b'(', bytes).is_none()
        && memchr::memchr(b'<', bytes).is_none()
        && !memchr::memchr_iter(b'.', bytes).any(|k| {
            k > 0 && bytes[k - 1].is_ascii_whitespace()
                || bytes.get(k + 1).is_some_and(u8::is_ascii_whitespace)
        })
}

/// What the value scans of [`Reverse::Scan`] know of each table: whether its records are
/// plain throughout ([`is_plain`]; the whole table at once, else its records, comments apart),
/// and then a sample of its bytes' frequencies.
fn scan_setup(tables: &[&Table]) -> Vec<Option<ByteFrequency>> {
    tables
        .iter()
        .map(|t| {
            let plain = match plain_breaks(t.buffers()[0]) {
                Some(breaks) => t
                    .entries_holding(&breaks, |raw| !is_plain(raw))
                    .all(|e| is_plain(e.raw())),
                None => t.entries_where(|raw| !is_plain(raw)).next().is_none(),
            };
            plain.then(|| ByteFrequency::sample(t.buffers()[0]))
        })
        .collect()
}

/// Whether a record (its bytes, the key at their start) could have a catch-all or bare key
/// (its first word starts with `@` or holds none) or rewrite a domain (an `@` after a blank or
/// colon could start the value).
fn may_be_wide_or_rewrite(raw: &[u8]) -> bool {
    let first = forward::first_word(raw);
    if memchr::memchr(b'@', first).is_none_or(|at| at == 0) {
        return true;
    }
    // The first word's `@`s follow neither a blank nor a colon, and the byte that ends it is no
    // `@`: the value's search starts after that byte.
    let rest = first.len() + 1;
    memchr::memchr_iter(b'@', raw.get(rest..).unwrap_or_default())
        .any(|i| raw[rest + i - 1] <= b' ' || raw[rest + i - 1] == b':')
}

impl<'a> VirtualAlias<'a> {
    /// Read an entry as a virtual alias.
    pub fn new(entry: Entry<'a>) -> Self {
        Self {
            destinations: parse_address_list(entry.value()),
            form: key_form(entry.key()),
            entry,
        }
    }

    /// The entry.
    pub fn entry(&self) -> &Entry<'a> {
        &self.entry
    }

    /// The key's form.
    pub fn form(&self) -> &KeyForm {
        &self.form
    }

    /// The destination addresses as Postfix parses the value (before canonicalization).
    pub fn destinations(&self) -> &AddressList {
        &self.destinations
    }

    /// Whether the value rewrites the domain only (`@otherdomain`).
    pub fn is_domain_rewrite(&self) -> bool {
        rewrites_domain(&self.entry)
    }
}

/// Postfix settings that change how addresses expand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureOptions {
    /// `$myorigin`: appended to destinations without `@`; also a local domain for bare keys.
    pub myorigin: Option<Vec<u8>>,
    /// `$mydestination` domains (local domains for bare `user` keys).
    pub mydestination: Vec<Vec<u8>>,
    /// `recipient_delimiter`: a set of bytes; empty for none.
    pub recipient_delimiter: Vec<u8>,
    /// `propagate_unmatched_extensions` includes `virtual` (the default).
    pub propagate_extensions: bool,
    /// `smtputf8_enable` (Unicode case folding of keys).
    pub smtputf8: bool,
    /// `virtual_alias_recursion_limit`.
    pub recursion_limit: usize,
    /// `virtual_alias_expansion_limit`.
    pub expansion_limit: usize,
    /// `virtual_alias_address_length_limit`.
    pub address_length_limit: usize,
}

impl Default for ClosureOptions {
    fn default() -> Self {
        Self {
            myorigin: None,
            mydestination: Vec::new(),
            recipient_delimiter: Vec::new(),
            propagate_extensions: true,
            smtputf8: true,
            recursion_limit: 1000,
            expansion_limit: 1000,
            address_length_limit: 1000,
        }
    }
}

/// Where a lookup matched.
#[derive(Debug, Clone)]
struct Hit<'t> {
    entry: Entry<'t>,
    /// The extension split off by a lookup without it (`+ext`).
    extension: Option<Vec<u8>>,
}

/// The outcome of expanding one address as cleanup(8) would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// Final recipients, each with the chain of addresses that led to it (first = the address
    /// expanded, last = the recipient).
    pub recipients: Vec<Vec<Address>>,
    /// Set when Postfix would defer the mail instead ("4.6.0 Alias expansion error").
    pub deferred: Option<String>,
}

/// One address whose mail reaches the mailbox, with the way it gets there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasPath {
    /// The address (internal form); holding this exact key holds its mail.
    pub address: Address,
    /// The chain from `address` to the mailbox, both included.
    pub path: Vec<Address>,
    /// File index (in the order given) and line of the key that starts the chain; `None` for
    /// the mailbox address itself when no key matches it.
    pub source: Option<(usize, usize)>,
}

/// Why a key reaching the mailbox cannot be held by an exact access(5) key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UncoverableReason {
    /// `@domain`: any unlisted address in the domain reaches the mailbox.
    CatchAll,
    /// A bare `user` key: `user@D` for every local domain D reaches the mailbox.
    BareUser,
}

/// A key that reaches the mailbox but is not one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncoverableKey {
    /// The key as written.
    pub key: Vec<u8>,
    /// File index and line.
    pub source: (usize, usize),
    /// What kind of key.
    pub reason: UncoverableReason,
    /// A sample chain that shows it reaches the mailbox.
    pub path: Vec<Address>,
}

/// Everything that reaches one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseClosure {
    /// The mailbox address asked about (canonical form).
    pub target: Address,
    /// Addresses whose mail reaches the mailbox, the mailbox itself first when its own mail
    /// reaches it, then in discovery order.
    pub addresses: Vec<AliasPath>,
    /// Keys that reach the mailbox but are not single addresses.
    pub uncoverable: Vec<UncoverableKey>,
    /// Whether mail addressed to the mailbox itself reaches it (false when the mailbox address is
    /// an alias to somewhere else).
    pub target_receives_own_mail: bool,
    /// Addresses whose expansion Postfix would defer (loops, limits), found on the way.
    pub deferred: Vec<(Address, String)>,
}

/// How the reverse walk finds the entries whose value lists an address.
enum Reverse<'t> {
    /// (hash of a folded, extension-stripped destination, table, the entry's place among the
    /// table's kept entries, entry that lists it), sorted by hash, then file order. A hash
    /// collision only adds a candidate, and every candidate is confirmed by forward expansion;
    /// a flat sorted vector avoids a million small allocations. Built once for many closures
    /// (a batch).
    Indexed(Vec<(u64, u32, u32, Entry<'t>)>),
    /// No index: each address the walk reaches scans the values, parsing only those that could
    /// list it. For one closure (one mailbox) this is far cheaper than indexing every value.
    /// Per table: whether its records are plain throughout ([`is_plain`]), and then a sample
    /// of its bytes' frequencies (one search of all its bytes finds a word).
    Scan(Vec<Option<ByteFrequency>>),
}

/// A set of virtual alias maps, searched in order like `virtual_alias_maps`.
pub struct VirtualMap<'t> {
    /// Which entry each table keeps for a folded key.
    forward: Forward<'t>,
    options: ClosureOptions,
    /// How the walk finds the entries that list an address.
    reverse: Reverse<'t>,
    /// destination domain of `@domain` rewrites → catch-all or address keys that rewrite to it.
    rewrites: HashMap<Vec<u8>, Vec<(usize, Entry<'t>)>>,
    /// catch-all keys and bare keys, which are reached by any matching address.
    wide_keys: Vec<(usize, Entry<'t>)>,
}

impl<'t> VirtualMap<'t> {
    /// Index the tables (fixed-key tables: keys fold) for many closures: the forward index and
    /// a reverse index of every value. One pass over every entry.
    pub fn new(tables: &[&'t Table], options: ClosureOptions) -> Self {
        Self::build(tables, options, true)
    }

    /// Prepare the tables for one closure (one mailbox: `aliases`, `hold add`, a single plan):
    /// no reverse index (the walk scans the values) and the forward index only if the walk
    /// makes many lookups (it scans the keys until then). The same closures as
    /// [`VirtualMap::new`], in the same order.
    pub fn for_one_mailbox(tables: &[&'t Table], options: ClosureOptions) -> Self {
        Self::build(tables, options, false)
    }

    /// The preparation that pays for `mailboxes` closures: [`VirtualMap::for_one_mailbox`] for
    /// one or two, [`VirtualMap::new`] (indexed once for all) from three on.
    pub fn for_mailboxes(tables: &[&'t Table], options: ClosureOptions, mailboxes: usize) -> Self {
        Self::build(tables, options, mailboxes > 2)
    }

    fn build(tables: &[&'t Table], options: ClosureOptions, reverse_index: bool) -> Self {
        // The entries postmap keeps (first of each folded key, in file order): all of them
        // for the reverse index, else only the few the walk needs up front — and then what the
        // value scans know of each table, which needs nothing of them: side by side.
        let ((forward, kept), scan) = if reverse_index {
            (Forward::indexed(tables), None)
        } else {
            let (lazy, scan) = crate::cores::side_by_side(
                || {
                    Forward::lazy(tables, may_be_wide_or_rewrite, |e| {
                        key_form(e.key()) != KeyForm::Address || rewrites_domain(e)
                    })
                },
                || scan_setup(tables),
            );
            (lazy, Some(scan))
        };
        let mut map = Self {
            forward,
            options,
            reverse: Reverse::Scan(Vec::new()),
            rewrites: HashMap::default(),
            wide_keys: Vec::new(),
        };
        let mut reverse = Vec::new();
        for (ti, effective) in kept.into_iter().enumerate() {
            for (place, entry) in effective.into_iter().enumerate() {
                if key_form(entry.key()) != KeyForm::Address {
                    map.wide_keys.push((ti, entry));
                }
                if rewrites_domain(&entry) {
                    if is_looked_up(entry.key()) {
                        let value = &entry.value()[1..];
                        let domain = fold_key(value, map.options.smtputf8).into_owned();
                        map.rewrites.entry(domain).or_default().push((ti, entry));
                    }
                    continue;
                }
                if !reverse_index {
                    continue;
                }
                for dest in &parse_address_list(entry.value()).addresses {
                    let norm = map.destination_norm(dest);
                    let table = u32::try_from(ti).unwrap_or(u32::MAX);
                    let place = u32::try_from(place).unwrap_or(u32::MAX);
                    reverse.push((hash_key(&norm), table, place, entry));
                }
            }
        }
        map.reverse = match scan {
            Some(scan) => Reverse::Scan(scan),
            None => {
                // File order among equal hashes: the walk meets an address's sources as a scan
                // does.
                reverse.sort_unstable_by_key(|(h, t, place, _)| (*h, *t, *place));
                Reverse::Indexed(reverse)
            }
        };
        map
    }

    /// What a destination address is known by: canonical, folded, extension stripped.
    fn destination_norm(&self, dest: &Address) -> Vec<u8> {
        self.normalize(&canonicalize(dest, self.options.myorigin.as_deref()))
    }

    /// The entries postmap keeps whose value lists an address known by `norm` (domain
    /// rewrites apart), in file order, table by table: through the reverse index, or by
    /// scanning the values (only those that could list it are parsed).
    fn listing(&self, norm: &[u8]) -> Vec<(usize, Entry<'t>)> {
        match &self.reverse {
            Reverse::Indexed(reverse) => {
                let h = hash_key(norm);
                let from = reverse.partition_point(|(k, _, _, _)| *k < h);
                reverse[from..]
                    .iter()
                    .take_while(|(k, _, _, _)| *k == h)
                    .map(|(_, ti, _, e)| (*ti as usize, *e))
                    .collect()
            }
            Reverse::Scan(tables) => {
                let at = norm.iter().rposition(|&b| b == b'@').unwrap_or(norm.len());
                let local = &norm[..at];
                let delimiters = &self.options.recipient_delimiter;
                let mut found = Vec::new();
                for (ti, t) in self.forward.tables().iter().enumerate() {
                    let frequency = tables.get(ti).and_then(Option::as_ref);
                    let plain = frequency.is_some();
                    // A value's bytes are in its record's (continuation lines joined keep
                    // their leading whitespace, so no word spans a join). In a plain table,
                    // one search of the parsed bytes finds the records that hold the word.
                    let may_list = |raw: &[u8]| could_list(raw, local, delimiters, plain);
                    let hits =
                        frequency.and_then(|f| word_hits(t.buffers()[0], local, delimiters, f));
                    let candidates: Box<dyn Iterator<Item = Entry<'t>>> = match &hits {
                        Some(hits) => Box::new(t.entries_holding(hits, may_list)),
                        None => Box::new(t.entries_where(may_list)),
                    };
                    for e in candidates {
                        let value = e.value();
                        if rewrites_domain(&e) || !could_list(value, local, delimiters, plain) {
                            continue;
                        }
                        if parse_address_list(value)
                            .addresses
                            .iter()
                            .any(|d| self.destination_norm(d) == norm)
                            && self.forward.is_kept(ti, &e)
                        {
                            found.push((ti, e));
                        }
                    }
                }
                found
            }
        }
    }

    /// The options in force.
    pub fn options(&self) -> &ClosureOptions {
        &self.options
    }

    /// Folded form with the recipient-delimiter extension removed: what a mailbox is known by.
    fn normalize(&self, a: &Address) -> Vec<u8> {
        let (bare, _) = self.strip_extension(&a.0);
        fold_key(bare.as_deref().unwrap_or(&a.0), self.options.smtputf8).into_owned()
    }

    /// Postfix `strip_addr()`: split the local part at the first delimiter byte.
    fn strip_extension(&self, addr: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let delims = &self.options.recipient_delimiter;
        if delims.is_empty() {
            return (None, None);
        }
        let at = addr.iter().rposition(|&b| b == b'@').unwrap_or(addr.len());
        let local = &addr[..at];
        let lower = local.to_ascii_lowercase();
        if lower == b"postmaster" || lower == b"mailer-daemon" || lower == b"double-bounce" {
            return (None, None);
        }
        if delims.contains(&b'-')
            && local.len() > 8
            && (lower.starts_with(b"owner-") || lower.ends_with(b"-request"))
        {
            return (None, None);
        }
        match local.iter().position(|b| delims.contains(b)) {
            Some(0) | None => (None, None),
            Some(i) => {
                let mut bare = local[..i].to_vec();
                bare.extend_from_slice(&addr[at..]);
                (Some(bare), Some(local[i..].to_vec()))
            }
        }
    }

    fn is_local_domain(&self, domain: &[u8]) -> bool {
        let d = domain.strip_suffix(b".").unwrap_or(domain);
        self.options
            .myorigin
            .iter()
            .chain(self.options.mydestination.iter())
            .any(|o| o.eq_ignore_ascii_case(d) || o.eq_ignore_ascii_case(domain))
    }

    fn query(&self, key: &[u8]) -> Option<Entry<'t>> {
        let folded = fold_key(key, self.options.smtputf8);
        (0..self.forward.tables().len()).find_map(|ti| self.forward.first_in(ti, &folded))
    }

    /// `mail_addr_find()`: the lookup order for one address.
    fn lookup(&self, addr: &[u8]) -> Option<Hit<'t>> {
        let (bare, ext) = self.strip_extension(addr);
        let hit = |entry, extension| Some(Hit { entry, extension });
        if let Some(e) = self.query(&quote_local(addr, false)) {
            return hit(e, None);
        }
        if let Some(b) = &bare {
            if let Some(e) = self.query(&quote_local(b, false)) {
                return hit(e, ext.clone());
            }
        }
        let at = addr.iter().rposition(|&b| b == b'@')?;
        let domain = &addr[at + 1..];
        if self.is_local_domain(domain) {
            if let Some(e) = self.query(&quote_local(&addr[..at], true)) {
                return hit(e, None);
            }
            if let Some(b) = &bare {
                let bat = b.iter().rposition(|&c| c == b'@').unwrap_or(b.len());
                if let Some(e) = self.query(&quote_local(&b[..bat], true)) {
                    return hit(e, ext.clone());
                }
            }
        }
        let mut catch_all = b"@".to_vec();
        catch_all.extend_from_slice(domain);
        self.query(&catch_all).map(|e| Hit {
            entry: e,
            extension: None,
        })
    }

    /// `mail_addr_map()`: the result addresses of one lookup hit for `addr`.
    fn results(&self, addr: &[u8], hit: &Hit<'t>) -> Vec<Address> {
        let mut value = hit.entry.value().to_vec();
        if value.first() == Some(&b'@') {
            let at = addr.iter().rposition(|&b| b == b'@').unwrap_or(addr.len());
            let mut user = addr[..at].to_vec();
            if let Some(ext) = &hit.extension {
                user.truncate(user.len().saturating_sub(ext.len()));
            }
            user.extend_from_slice(&value);
            value = quote_local(&user, false);
        }
        let ext = hit
            .extension
            .as_ref()
            .filter(|_| self.options.propagate_extensions);
        parse_address_list(&value)
            .addresses
            .iter()
            .map(|a| {
                let mut c = canonicalize(a, self.options.myorigin.as_deref());
                if let Some(ext) = ext {
                    let at = c.0.iter().rposition(|&b| b == b'@').unwrap_or(c.0.len());
                    c.0.splice(at..at, ext.iter().copied());
                }
                c
            })
            .collect()
    }

    /// Expand one address as cleanup(8) would, with the chain to each final recipient.
    pub fn expand(&self, address: &Address) -> Expansion {
        let opts = &self.options;
        let mut argv: Vec<Vec<Address>> = vec![vec![address.clone()]];
        let mut seen: HashSet<Vec<u8>> = HashSet::default();
        let defer = |reason: String| Expansion {
            recipients: vec![vec![address.clone()]],
            deferred: Some(reason),
        };
        let mut arg = 0;
        while arg < argv.len() {
            if argv.len() > opts.expansion_limit {
                return defer(format!(
                    "more than {} addresses (virtual_alias_expansion_limit)",
                    opts.expansion_limit
                ));
            }
            let mut count = 0;
            loop {
                let current = argv[arg].last().map(|a| a.0.clone()).unwrap_or_default();
                if seen.contains(&fold_key(&current, opts.smtputf8).into_owned()) {
                    break;
                }
                if count >= opts.recursion_limit {
                    return defer(format!(
                        "nesting deeper than {} (virtual_alias_recursion_limit): an alias loop",
                        opts.recursion_limit
                    ));
                }
                let Some(hit) = self.lookup(&current) else {
                    break;
                };
                let results = self.results(&current, &hit);
                if results.is_empty() {
                    return defer(format!(
                        "`{}` returns a non-address result",
                        String::from_utf8_lossy(hit.entry.key())
                    ));
                }
                let chain = argv[arg].clone();
                for (i, r) in results.into_iter().enumerate() {
                    if r.0.len() > opts.address_length_limit {
                        return defer(format!(
                            "an address longer than {} bytes (virtual_alias_address_length_limit)",
                            opts.address_length_limit
                        ));
                    }
                    let same = fold_key(&current, opts.smtputf8) == fold_key(&r.0, opts.smtputf8);
                    let mut next = chain.clone();
                    next.push(r);
                    if i == 0 {
                        argv[arg] = next;
                    } else {
                        argv.push(next);
                    }
                    if same {
                        seen.insert(fold_key(&current, opts.smtputf8).into_owned());
                    }
                }
                count += 1;
            }
            arg += 1;
        }
        // Duplicates are delivered once (cleanup_out_recipient).
        let mut unique = HashSet::default();
        argv.retain(|chain| {
            chain
                .last()
                .is_some_and(|a| unique.insert(fold_key(&a.0, opts.smtputf8).into_owned()))
        });
        Expansion {
            recipients: argv,
            deferred: None,
        }
    }

    /// Every address whose mail reaches `mailbox`, directly or through nested aliases, each
    /// confirmed by forward expansion; plus catch-all and bare-user keys that reach it.
    pub fn reverse_closure(&self, mailbox: &Address) -> ReverseClosure {
        let target = canonicalize(mailbox, self.options.myorigin.as_deref());
        let target_norm = self.normalize(&target);
        let reaches = |exp: &Expansion| -> Option<Vec<Address>> {
            if exp.deferred.is_some() {
                return None;
            }
            exp.recipients
                .iter()
                .find(|chain| {
                    chain
                        .last()
                        .is_some_and(|a| self.normalize(a) == target_norm)
                })
                .cloned()
        };
        let mut closure = ReverseClosure {
            target: target.clone(),
            addresses: Vec::new(),
            uncoverable: Vec::new(),
            target_receives_own_mail: false,
            deferred: Vec::new(),
        };
        // Candidate discovery: walk the reverse index from the mailbox.
        let mut queue: VecDeque<Vec<u8>> = VecDeque::from([target_norm.clone()]);
        let mut visited: HashSet<Vec<u8>> = HashSet::default();
        visited.insert(target_norm.clone());
        let mut candidates: Vec<(Address, Option<(usize, usize)>)> = vec![(target.clone(), None)];
        let mut wide: HashSet<(usize, usize)> = HashSet::default();
        while let Some(norm) = queue.pop_front() {
            let mut sources: Vec<(usize, Entry<'t>, Option<Vec<u8>>)> = self
                .listing(&norm)
                .into_iter()
                .map(|(ti, e)| (ti, e, None))
                .collect();
            // `@d1 → @d2` and `user@d1 → @d2` rewrites: local@d2 comes from local@d1.
            if let Some(at) = norm.iter().rposition(|&b| b == b'@') {
                for (ti, e) in self.rewrites.get(&norm[at + 1..]).into_iter().flatten() {
                    let key = e.key();
                    let derived = if key.first() == Some(&b'@') {
                        let mut d = norm[..at].to_vec();
                        d.extend_from_slice(key);
                        Some(d)
                    } else {
                        None
                    };
                    sources.push((*ti, *e, derived));
                }
            }
            for (ti, entry, derived) in sources {
                let line = entry.line().unwrap_or(0);
                let key = entry.key().to_vec();
                let form = key_form(&key);
                let address = match (&form, derived) {
                    (_, Some(d)) => Address(d),
                    (KeyForm::Address, None) => Address(unquote_key(&key)),
                    (KeyForm::CatchAll | KeyForm::Bare, None) => {
                        wide.insert((ti, line));
                        continue;
                    }
                };
                let n = self.normalize(&address);
                if visited.insert(n.clone()) {
                    candidates.push((address, Some((ti, line))));
                    queue.push_back(n);
                }
            }
        }
        // Confirmation by forward expansion.
        for (address, source) in candidates {
            let exp = self.expand(&address);
            if let Some(reason) = &exp.deferred {
                closure.deferred.push((address.clone(), reason.clone()));
                continue;
            }
            if let Some(path) = reaches(&exp) {
                if source.is_none() {
                    closure.target_receives_own_mail = true;
                }
                closure.addresses.push(AliasPath {
                    address,
                    path,
                    source: source.or_else(|| self.source_of(&target)),
                });
            }
        }
        // Catch-all and bare keys: probe them with a sample address.
        for (ti, entry) in &self.wide_keys {
            let key = entry.key();
            let line = entry.line().unwrap_or(0);
            let (probe, reason) = if key.first() == Some(&b'@') {
                let mut p = b"mailmig-probe".to_vec();
                p.extend_from_slice(key);
                (p, UncoverableReason::CatchAll)
            } else {
                let Some(origin) = self
                    .options
                    .myorigin
                    .clone()
                    .or_else(|| self.options.mydestination.first().cloned())
                else {
                    if wide.contains(&(*ti, line)) {
                        closure.uncoverable.push(UncoverableKey {
                            key: key.to_vec(),
                            source: (*ti, line),
                            reason: UncoverableReason::BareUser,
                            path: Vec::new(),
                        });
                    }
                    continue;
                };
                let mut p = key.to_vec();
                p.push(b'@');
                p.extend_from_slice(&origin);
                (p, UncoverableReason::BareUser)
            };
            let probe = Address(probe);
            // A probe that an exact key answers says nothing about the wide key.
            if let Some(hit) = self.lookup(&probe.0) {
                if hit.entry.key() != key {
                    continue;
                }
            }
            if let Some(path) = reaches(&self.expand(&probe)) {
                closure.uncoverable.push(UncoverableKey {
                    key: key.to_vec(),
                    source: (*ti, line),
                    reason,
                    path,
                });
            }
        }
        closure
    }

    fn source_of(&self, address: &Address) -> Option<(usize, usize)> {
        let key = fold_key(&quote_local(&address.0, false), self.options.smtputf8).into_owned();
        (0..self.forward.tables().len()).find_map(|ti| {
            self.forward
                .first_in(ti, &key)
                .map(|e| (ti, e.line().unwrap_or(0)))
        })
    }
}

/// A fixed-seed hash for the reverse index (deterministic across runs).
fn hash_key(bytes: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x6d61_696c_6d69_6721).hash_one(bytes)
}

/// A key's internal form: the quoted local part unquoted.
fn unquote_key(key: &[u8]) -> Vec<u8> {
    let at = key.iter().rposition(|&b| b == b'@').unwrap_or(key.len());
    let mut out = Vec::with_capacity(key.len());
    let mut i = 0;
    while i < at {
        match key[i] {
            b'"' => {}
            b'\\' if i + 1 < at => {
                i += 1;
                out.push(key[i]);
            }
            b => out.push(b),
        }
        i += 1;
    }
    out.extend_from_slice(&key[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postfix::ParseOptions;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The pre-check of a record's bytes says what the plain reading of its definition
        /// says: the first word starts with `@` or has none, or an `@` follows a blank or colon.
        #[test]
        fn the_wide_or_rewrite_check_is_its_definition(raw in prop::collection::vec(prop::sample::select(b"a@ :\x7f".to_vec()), 0..10)) {
            let first = forward::first_word(&raw);
            let defined = first.first() == Some(&b'@')
                || !first.contains(&b'@')
                || (1..raw.len()).any(|i| raw[i] == b'@' && (raw[i - 1] <= b' ' || raw[i - 1] == b':'));
            prop_assert_eq!(may_be_wide_or_rewrite(&raw), defined);
        }
    }

    fn table(s: &str) -> Table {
        Table::parse(s.as_bytes().to_vec(), &ParseOptions::default())
    }

    fn addrs(c: &ReverseClosure) -> Vec<String> {
        c.addresses.iter().map(|p| p.address.to_string()).collect()
    }

    const MAP: &str = "\
al@x.test alice@x.test
alice.smith@x.test alice@x.test
team@x.test alice@x.test, bob@x.test
staff@x.test team@x.test
# continued
big@x.test carol@x.test,
# inner comment
    Alice <ALICE@x.test>
self@x.test self@x.test, alice@x.test
loop1@x.test loop2@x.test
loop2@x.test loop1@x.test, alice@x.test
@c.test catch@y.test
@old.test @x.test
jimbob@x.test jim@x.test
";

    #[test]
    fn reverse_closure_nested_multi_and_continued() {
        let t = table(MAP);
        let vm = VirtualMap::new(&[&t], ClosureOptions::default());
        let c = vm.reverse_closure(&Address(b"alice@x.test".to_vec()));
        let mut got = addrs(&c);
        got.sort();
        assert_eq!(
            got,
            [
                "al@old.test",
                "al@x.test",
                "alice.smith@old.test",
                "alice.smith@x.test",
                "alice@old.test",
                "alice@x.test",
                "big@old.test",
                "big@x.test",
                "self@old.test",
                "self@x.test",
                "staff@old.test",
                "staff@x.test",
                "team@old.test",
                "team@x.test"
            ]
        );
        assert!(c.target_receives_own_mail);
        // loop1/loop2 (and their old.test twins) defer: they never deliver to alice.
        assert_eq!(c.deferred.len(), 4, "{:?}", c.deferred);
        let staff = c
            .addresses
            .iter()
            .find(|p| p.address.0 == b"staff@x.test")
            .expect("staff");
        let chain: Vec<String> = staff.path.iter().map(ToString::to_string).collect();
        assert_eq!(chain, ["staff@x.test", "team@x.test", "alice@x.test"]);
        assert!(c.uncoverable.is_empty());
    }

    #[test]
    fn catch_all_reported() {
        let t = table(MAP);
        let vm = VirtualMap::new(&[&t], ClosureOptions::default());
        let c = vm.reverse_closure(&Address(b"catch@y.test".to_vec()));
        assert_eq!(c.uncoverable.len(), 1, "{:?}", c.uncoverable);
        assert!(c
            .uncoverable
            .iter()
            .all(|u| u.reason == UncoverableReason::CatchAll));
    }

    #[test]
    fn substring_is_not_a_match() {
        let t = table(MAP);
        let vm = VirtualMap::new(&[&t], ClosureOptions::default());
        let c = vm.reverse_closure(&Address(b"bob@x.test".to_vec()));
        let mut got = addrs(&c);
        got.sort();
        assert_eq!(
            got,
            [
                "bob@old.test",
                "bob@x.test",
                "staff@old.test",
                "staff@x.test",
                "team@old.test",
                "team@x.test"
            ]
        );
    }

    #[test]
    fn extensions_propagate() {
        let t = table("a@x.test alice@x.test\n");
        let opts = ClosureOptions {
            recipient_delimiter: b"+".to_vec(),
            ..ClosureOptions::default()
        };
        let vm = VirtualMap::new(&[&t], opts);
        let e = vm.expand(&Address(b"a+lists@x.test".to_vec()));
        let last: Vec<String> = e
            .recipients
            .iter()
            .map(|c| c.last().map(ToString::to_string).unwrap_or_default())
            .collect();
        assert_eq!(last, ["alice+lists@x.test"]);
        let c = vm.reverse_closure(&Address(b"alice@x.test".to_vec()));
        assert_eq!(addrs(&c), ["alice@x.test", "a@x.test"]);
    }

    #[test]
    fn aliased_away_mailbox() {
        let t = table("alice@x.test bob@x.test\nal@x.test alice@x.test\n");
        let vm = VirtualMap::new(&[&t], ClosureOptions::default());
        let c = vm.reverse_closure(&Address(b"alice@x.test".to_vec()));
        assert!(!c.target_receives_own_mail);
        assert!(c.addresses.is_empty());
    }

    /// Fuzz find (table_views, oom-9029906d8896): a `@domain` key holding a second `@` rewrote
    /// to the domain it was found through, and the walk grew `a@x` into `a@b@x`, `a@b@b@x`, …
    /// until memory ran out. No address has that key's domain, so it derives nothing.
    #[test]
    fn a_catch_all_key_with_two_at_signs_derives_nothing() {
        let t = table("a@x b@x\n@B@X @x\n");
        let vm = VirtualMap::new(&[&t], ClosureOptions::default());
        let c = vm.reverse_closure(&Address(b"b@x".to_vec()));
        assert_eq!(addrs(&c), ["b@x", "a@x"]);
        let e = vm.expand(&Address(b"a@b@x".to_vec()));
        assert_eq!(e.recipients.len(), 1);
        assert_eq!(
            e.recipients[0].last().map(ToString::to_string).as_deref(),
            Some("\"a@b\"@x")
        );
    }

    #[test]
    fn bare_user_keys_with_myorigin() {
        let t = table("alice alice@x.test\n");
        let opts = ClosureOptions {
            myorigin: Some(b"mx.test".to_vec()),
            ..ClosureOptions::default()
        };
        let vm = VirtualMap::new(&[&t], opts);
        let c = vm.reverse_closure(&Address(b"alice@x.test".to_vec()));
        assert_eq!(c.uncoverable.len(), 1);
        assert_eq!(c.uncoverable[0].reason, UncoverableReason::BareUser);
    }
}
