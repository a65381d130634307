//! What mailmig reads of a running Postfix's configuration (`postconf -c DIR`): the virtual
//! alias maps and the settings their expansion depends on, the access map smtpd consults for
//! recipients, and whether a HOLD there would cover all mail arriving over SMTP.

use camino::{Utf8Path, Utf8PathBuf};

use super::{postconf, Address, ClosureOptions, MapType, ParseOptions, Table, UncoverableReason};
use crate::process::{Argv, RunError, Runner};
use crate::safe_fs::{self, SafeFsError};

/// Table types whose source file mailmig can read: fixed-key types built by postmap, and
/// texthash.
pub const FILE_TYPES: &[&str] = &["hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"];

/// Why Postfix's configuration could not be read as mailmig needs it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// `postconf` failed.
    #[error(transparent)]
    Postconf(#[from] RunError),
    /// A map file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: SafeFsError,
    },
    /// No virtual alias map was given or configured.
    #[error("no virtual alias map: give the map files or the Postfix configuration directory")]
    NoAliasMap,
    /// `smtpd_recipient_restrictions` has no `check_recipient_access` file map.
    #[error("smtpd_recipient_restrictions has no check_recipient_access file map to hold in; add one (see `mailmig hold check`) or give the map")]
    NoAccessMap,
}

/// The virtual alias maps, read as tables, and how their expansion behaves.
#[derive(Debug, Clone)]
pub struct AliasMaps {
    /// The source files, in lookup order.
    pub files: Vec<Utf8PathBuf>,
    /// Each file parsed.
    pub tables: Vec<Table>,
    /// Expansion settings (`myorigin`, `mydestination`, `recipient_delimiter`, ...).
    pub options: ClosureOptions,
    /// `virtual_alias_maps` entries that are not files mailmig can read (their aliases are not
    /// included).
    pub unreadable: Vec<String>,
}

impl AliasMaps {
    /// `FILE:LINE` of a record (`-` when none).
    pub fn location(&self, source: Option<(usize, usize)>) -> String {
        location(&self.files, source)
    }
}

/// Where an alias came from, for messages: `FILE:LINE`, or `-`.
pub fn location(files: &[Utf8PathBuf], source: Option<(usize, usize)>) -> String {
    match source.and_then(|(ti, line)| Some((files.get(ti)?, line))) {
        Some((file, line)) => format!("{file}:{line}"),
        None => "-".into(),
    }
}

/// A chain of addresses, `a -> b -> c`.
pub fn chain(path: &[Address]) -> String {
    path.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Why an alias key cannot be held, in words.
pub fn reason_text(reason: UncoverableReason) -> &'static str {
    match reason {
        UncoverableReason::CatchAll => {
            "a catch-all: every unlisted address of the domain reaches the mailbox, and no exact access(5) key can hold them all without holding the whole domain"
        }
        UncoverableReason::BareUser => {
            "a bare user key: it matches the user in every local domain ($myorigin, $mydestination); hold each such address explicitly"
        }
    }
}

/// A Postfix list value split on commas and blanks.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Which virtual alias maps to read and how their expansion behaves, before any is read.
#[derive(Debug, Clone)]
pub struct AliasMapSettings {
    /// The source files, in lookup order.
    pub files: Vec<Utf8PathBuf>,
    /// Expansion settings (`myorigin`, `mydestination`, `recipient_delimiter`, ...).
    pub options: ClosureOptions,
    /// `virtual_alias_maps` entries that are not files mailmig can read.
    pub unreadable: Vec<String>,
}

impl AliasMapSettings {
    /// Read and parse each file.
    pub fn read(self, parse: &ParseOptions) -> Result<AliasMaps, DiscoverError> {
        let tables = self
            .files
            .iter()
            .map(|f| {
                safe_fs::read_regular(f)
                    .map(|bytes| Table::parse(bytes, parse))
                    .map_err(|source| DiscoverError::Read {
                        path: f.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AliasMaps {
            files: self.files,
            tables,
            options: self.options,
            unreadable: self.unreadable,
        })
    }
}

/// Read the virtual alias maps: the `given` files, else `virtual_alias_maps` of
/// `postfix_config`; with `postfix_config`, the expansion settings come from it too
/// (`recipient_delimiter` overrides its value).
pub fn alias_maps(
    runner: &dyn Runner,
    postfix_config: Option<&Utf8Path>,
    given: &[Utf8PathBuf],
    recipient_delimiter: Option<&str>,
    parse: &ParseOptions,
) -> Result<AliasMaps, DiscoverError> {
    alias_map_settings(runner, postfix_config, given, recipient_delimiter, parse)?.read(parse)
}

/// [`alias_maps`] without reading the files: which ones, and the expansion settings.
pub fn alias_map_settings(
    runner: &dyn Runner,
    postfix_config: Option<&Utf8Path>,
    given: &[Utf8PathBuf],
    recipient_delimiter: Option<&str>,
    parse: &ParseOptions,
) -> Result<AliasMapSettings, DiscoverError> {
    let mut options = ClosureOptions {
        smtputf8: parse.smtputf8,
        ..ClosureOptions::default()
    };
    let mut files = given.to_vec();
    let mut unreadable = Vec::new();
    if let Some(dir) = postfix_config {
        let values = postconf(
            runner,
            dir,
            &[
                "virtual_alias_maps",
                "myorigin",
                "mydestination",
                "recipient_delimiter",
                "propagate_unmatched_extensions",
            ],
        )?;
        let get = |k: &str| values.get(k).cloned().unwrap_or_default();
        options.myorigin = Some(get("myorigin").into_bytes()).filter(|o| !o.is_empty());
        options.mydestination = split_list(&get("mydestination"))
            .into_iter()
            .filter(|d| !d.contains(':'))
            .map(String::into_bytes)
            .collect();
        options.recipient_delimiter = get("recipient_delimiter").into_bytes();
        options.propagate_extensions = split_list(&get("propagate_unmatched_extensions"))
            .iter()
            .any(|v| v == "virtual");
        if files.is_empty() {
            for map in split_list(&get("virtual_alias_maps")) {
                match map.split_once(':') {
                    Some((kind, path)) if FILE_TYPES.contains(&kind) => {
                        files.push(Utf8PathBuf::from(path));
                    }
                    _ => unreadable.push(map),
                }
            }
        }
    }
    if let Some(d) = recipient_delimiter {
        options.recipient_delimiter = d.as_bytes().to_vec();
    }
    if files.is_empty() {
        return Err(DiscoverError::NoAliasMap);
    }
    Ok(AliasMapSettings {
        files,
        options,
        unreadable,
    })
}

/// The first `check_recipient_access` file map of `smtpd_recipient_restrictions`, with its type.
pub fn access_map(
    runner: &dyn Runner,
    postfix_config: &Utf8Path,
) -> Result<(Utf8PathBuf, MapType), DiscoverError> {
    let values = postconf(runner, postfix_config, &["smtpd_recipient_restrictions"])?;
    let words = split_list(
        values
            .get("smtpd_recipient_restrictions")
            .map_or("", String::as_str),
    );
    for pair in words.windows(2) {
        if pair[0] == "check_recipient_access" {
            if let Some((kind, path)) = pair[1].split_once(':') {
                if let Ok(t) = kind.parse::<MapType>() {
                    return Ok((Utf8PathBuf::from(path), t));
                }
            }
        }
    }
    Err(DiscoverError::NoAccessMap)
}

/// A restriction list consults `spec` before anything accepts.
fn consulted_first(list: &str, spec_matches: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let words = split_list(list);
    let check = words
        .windows(2)
        .position(|w| w[0] == "check_recipient_access" && spec_matches(&w[1]));
    let permit = words.iter().position(|w| w.starts_with("permit"));
    match (check, permit) {
        (None, _) => Err("does not consult the map (no `check_recipient_access` for it)".into()),
        (Some(c), Some(p)) if p < c => Err(format!(
            "consults the map only after `{}`: mail that it accepts is not held",
            words[p]
        )),
        _ => Ok(()),
    }
}

/// What makes a HOLD in `map_path` miss mail arriving over SMTP: smtpd_recipient_restrictions
/// (main.cf and master.cf overrides) not consulting it before any `permit`, and proxy filters.
/// Empty when a HOLD there covers all SMTP mail.
pub fn coverage_problems(
    runner: &dyn Runner,
    postfix_config: &Utf8Path,
    map_path: &Utf8Path,
) -> Result<Vec<String>, DiscoverError> {
    let spec_matches = |spec: &str| {
        spec.split_once(':')
            .is_some_and(|(_, path)| Utf8Path::new(path) == map_path)
    };
    let values = postconf(
        runner,
        postfix_config,
        &["smtpd_recipient_restrictions", "smtpd_proxy_filter"],
    )?;
    let main_list = values
        .get("smtpd_recipient_restrictions")
        .cloned()
        .unwrap_or_default();
    let mut problems = Vec::new();
    if let Err(e) = consulted_first(&main_list, &spec_matches) {
        problems.push(format!("smtpd_recipient_restrictions {e}"));
    }
    if values
        .get("smtpd_proxy_filter")
        .is_some_and(|v| !v.is_empty())
    {
        problems.push("smtpd_proxy_filter is set: HOLD is unavailable with a proxy filter (smtpd logs a warning and treats it as DUNNO)".into());
    }
    // Services in master.cf with their own restrictions or proxy filter (-o overrides).
    let overrides = runner.run_expect(
        &Argv::new(["postconf", "-c", postfix_config.as_str(), "-P"]),
        None,
        &[0],
    )?;
    for line in String::from_utf8_lossy(&overrides.stdout).lines() {
        let Some((name, value)) = line.split_once(" = ") else {
            continue;
        };
        let mut parts = name.rsplitn(2, '/');
        let (param, service) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        match param {
            "smtpd_recipient_restrictions" => {
                if let Err(e) = consulted_first(value, &spec_matches) {
                    problems.push(format!("master.cf service {service} overrides smtpd_recipient_restrictions and {e}"));
                }
            }
            "smtpd_proxy_filter" if !value.trim().is_empty() => problems.push(format!(
                "master.cf service {service} sets smtpd_proxy_filter: HOLD is unavailable there"
            )),
            _ => {}
        }
    }
    Ok(problems)
}
