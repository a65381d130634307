//! Findings about a passwd-file: every line Dovecot skips, drops or misreads.

use std::fmt;

use super::*;

/// A finding about one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdDiagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    /// What was found.
    pub kind: PasswdDiagnosticKind,
}

impl PasswdDiagnostic {
    /// How bad it is.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}

/// What was found in a passwd-file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswdDiagnosticKind {
    /// A comment not in column 0, or a whitespace-only line: Dovecot reads a user of that name.
    JunkUser {
        /// The "user name".
        user: Vec<u8>,
    },
    /// The user name has bytes outside `auth_username_chars` or is empty: no request can reach it.
    UnreachableName {
        /// The name.
        user: Vec<u8>,
    },
    /// Uppercase letters while requests are lowercased (`auth_username_format=%Lu`).
    UppercaseName {
        /// The name.
        user: Vec<u8>,
    },
    /// A `+` in the name: LMTP strips `+ext` before its userdb lookup.
    PlusInName {
        /// The name.
        user: Vec<u8>,
    },
    /// A later line for the same user: Dovecot keeps the first.
    Duplicate {
        /// The user.
        user: Vec<u8>,
        /// The line that wins.
        first_line: usize,
    },
    /// Dovecot drops the line (bad uid, gid or `[56]` password).
    Dropped {
        /// Dovecot's message.
        reason: String,
    },
    /// No gid field: the user exists for the passdb only; userdb lookups (LMTP) say unknown user.
    MissingUserdbInfo {
        /// The user.
        user: Vec<u8>,
    },
    /// An empty 8th field: Dovecot 2.2/2.3 read the rest as the mail location.
    LegacyMailField {
        /// What becomes `userdb_mail`.
        mail: Vec<u8>,
    },
    /// A NUL byte: the rest of the line is ignored.
    NulByte,
    /// An extra field the auth process crashes on, or whose expansion fails the lookup.
    BrokenField {
        /// Why.
        reason: String,
    },
    /// A field that is ignored or probably not what was meant.
    SuspiciousField {
        /// Why.
        reason: String,
    },
    /// Dovecot 2.4 ignores `userdb_mail=` (measured on 2.4.1): the user reads the global
    /// `mail_driver`/`mail_path`, not the location this field names.
    IgnoredMailField {
        /// The location the field names.
        mail: Vec<u8>,
    },
    /// Dovecot 2.4: one of `userdb_mail_driver` / `userdb_mail_path` without the other — the
    /// driver alone reads the global path with another format, the path alone the global format.
    LoneLocationField {
        /// The field present.
        present: &'static str,
        /// The field missing.
        missing: &'static str,
    },
}

impl PasswdDiagnosticKind {
    /// The severity mailmig gives it.
    pub fn severity(&self) -> Severity {
        match self {
            PasswdDiagnosticKind::Duplicate { .. }
            | PasswdDiagnosticKind::Dropped { .. }
            | PasswdDiagnosticKind::BrokenField { .. }
            | PasswdDiagnosticKind::JunkUser { .. }
            | PasswdDiagnosticKind::IgnoredMailField { .. }
            | PasswdDiagnosticKind::LoneLocationField { .. } => Severity::Error,
            _ => Severity::Warning,
        }
    }

    /// A short stable identifier, for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            PasswdDiagnosticKind::JunkUser { .. } => "junk-user",
            PasswdDiagnosticKind::UnreachableName { .. } => "unreachable-name",
            PasswdDiagnosticKind::UppercaseName { .. } => "uppercase-name",
            PasswdDiagnosticKind::PlusInName { .. } => "plus-in-name",
            PasswdDiagnosticKind::Duplicate { .. } => "duplicate-user",
            PasswdDiagnosticKind::Dropped { .. } => "dropped",
            PasswdDiagnosticKind::MissingUserdbInfo { .. } => "missing-userdb-info",
            PasswdDiagnosticKind::LegacyMailField { .. } => "legacy-mail-field",
            PasswdDiagnosticKind::NulByte => "nul-byte",
            PasswdDiagnosticKind::BrokenField { .. } => "broken-field",
            PasswdDiagnosticKind::SuspiciousField { .. } => "suspicious-field",
            PasswdDiagnosticKind::IgnoredMailField { .. } => "ignored-mail-field",
            PasswdDiagnosticKind::LoneLocationField { .. } => "lone-location-field",
        }
    }
}

impl fmt::Display for PasswdDiagnosticKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswdDiagnosticKind::JunkUser { user } => write!(
                f,
                "Dovecot reads this line as a user named '{}' (comments start with `#` in column 0)",
                show(user)
            ),
            PasswdDiagnosticKind::UnreachableName { user } => write!(
                f,
                "user '{}' can never be looked up: requests may only use the characters of auth_username_chars",
                show(user)
            ),
            PasswdDiagnosticKind::UppercaseName { user } => write!(
                f,
                "user '{}' is never found: requests are lowercased (auth_username_format = %Lu) and the match is case-sensitive",
                show(user)
            ),
            PasswdDiagnosticKind::PlusInName { user } => write!(
                f,
                "user '{}' has a `+`: LMTP strips +extension (recipient_delimiter) before its userdb lookup, so mail is never delivered through this entry",
                show(user)
            ),
            PasswdDiagnosticKind::Duplicate { user, first_line } => write!(
                f,
                "User {} exists more than once (the line {first_line} wins; this one is ignored)",
                show(user)
            ),
            PasswdDiagnosticKind::Dropped { reason } => {
                write!(f, "{reason} (Dovecot drops the whole line)")
            }
            PasswdDiagnosticKind::MissingUserdbInfo { user } => write!(
                f,
                "User {} is missing userdb info (no gid field): userdb lookups and LMTP delivery say unknown user",
                show(user)
            ),
            PasswdDiagnosticKind::LegacyMailField { mail } => write!(
                f,
                "the 8th field is empty, so Dovecot 2.2/2.3 read the rest as the mail location userdb_mail={} (extra fields start after exactly 7 colons)",
                show(mail)
            ),
            PasswdDiagnosticKind::NulByte => {
                f.write_str("NUL byte: Dovecot ignores the rest of the line")
            }
            PasswdDiagnosticKind::BrokenField { reason }
            | PasswdDiagnosticKind::SuspiciousField { reason } => f.write_str(reason),
            PasswdDiagnosticKind::IgnoredMailField { mail } => write!(
                f,
                "Dovecot 2.4 ignores userdb_mail={} (the user reads the global mail_driver/mail_path): write userdb_mail_driver= and userdb_mail_path= instead",
                show(mail)
            ),
            PasswdDiagnosticKind::LoneLocationField { present, missing } => write!(
                f,
                "{present} without {missing}: Dovecot 2.4 combines it with the global {}, a location that is not the one meant; set both or neither",
                missing.trim_start_matches("userdb_")
            ),
        }
    }
}

/// Whether a finding is about a line's bytes or its record's name: these come before the
/// load's verdict, the others only for a record Dovecot keeps.
fn is_head(kind: &PasswdDiagnosticKind) -> bool {
    matches!(
        kind,
        PasswdDiagnosticKind::NulByte
            | PasswdDiagnosticKind::JunkUser { .. }
            | PasswdDiagnosticKind::UnreachableName { .. }
            | PasswdDiagnosticKind::UppercaseName { .. }
            | PasswdDiagnosticKind::PlusInName { .. }
    )
}

/// From this many lines on, with a second core, [`PasswdFile::diagnostics`] checks the lines on
/// a second thread while the load runs (below it, a thread costs more than it saves).
const SIDE_BY_SIDE_LINES: usize = 10_000;

impl PasswdFile {
    /// Every finding, in line order.
    ///
    /// Two passes that need nothing of each other: the load (the users Dovecot keeps, in one
    /// table, in file order) and the checks of each line on its own. On a large file they run
    /// side by side; the load's verdicts (duplicates, dropped lines) are then put in their
    /// places, where a line's findings about its record stop.
    pub fn diagnostics(&self, ids: &dyn IdResolver) -> Vec<PasswdDiagnostic> {
        let threads = self.lines.len() >= SIDE_BY_SIDE_LINES && crate::cores::two();
        self.diagnostics_side_by_side(ids, threads)
    }

    fn diagnostics_side_by_side(
        &self,
        ids: &dyn IdResolver,
        threads: bool,
    ) -> Vec<PasswdDiagnostic> {
        let (loaded, lines) = if threads {
            crate::cores::side_by_side(|| self.load(ids), || self.line_findings())
        } else {
            (self.load(ids), self.line_findings())
        };
        merge_verdicts(lines, load_verdicts(&loaded))
    }

    /// Each line's findings, the load aside: for a record, those about its name (the head)
    /// and, unless the name is junk, those about the rest of it (the tail).
    fn line_findings(&self) -> Vec<PasswdDiagnostic> {
        let mut out = Vec::new();
        for line in self.lines() {
            if let Some(entry) = self.head_findings(&line, line.entry(), &mut out) {
                self.tail_findings(&entry, &mut out);
            }
        }
        out
    }

    /// The line's findings that come before the load's verdict: a NUL byte, and for a record
    /// (`entry`, the line's) its name. The record, when its findings go on.
    pub(super) fn head_findings<'a>(
        &self,
        line: &Line<'a>,
        entry: Option<PasswdEntry<'a>>,
        out: &mut Vec<PasswdDiagnostic>,
    ) -> Option<PasswdEntry<'a>> {
        let number = line.number;
        let push = |out: &mut Vec<PasswdDiagnostic>, kind| {
            out.push(PasswdDiagnostic {
                line: number,
                column: 1,
                kind,
            })
        };
        // A record's content is known: cut at a NUL when shorter than the line.
        let (content, nul) = match &entry {
            Some(e) => (
                e.content,
                e.content.len() < without_terminator(line.raw).len(),
            ),
            None => content_of(line.raw),
        };
        if nul {
            out.push(PasswdDiagnostic {
                line: number,
                column: content.len() + 1,
                kind: PasswdDiagnosticKind::NulByte,
            });
        }
        let entry = entry?;
        let user = entry.user();
        let trimmed = user.iter().find(|b| !b.is_ascii_whitespace());
        if user.first().is_some_and(u8::is_ascii_whitespace) && matches!(trimmed, None | Some(b'#'))
        {
            let user = user.to_vec();
            push(out, PasswdDiagnosticKind::JunkUser { user });
            return None;
        }
        // One pass over the name for its three questions (no early exit: names are short).
        let (mut unreachable, mut upper, mut plus) = (false, false, false);
        for &b in user {
            unreachable |= !username_char_ok(b);
            upper |= b.is_ascii_uppercase();
            plus |= b == b'+';
        }
        if unreachable {
            let user = user.to_vec();
            push(out, PasswdDiagnosticKind::UnreachableName { user });
        } else if self.options.lowercase_requests && upper {
            let user = user.to_vec();
            push(out, PasswdDiagnosticKind::UppercaseName { user });
        }
        if plus {
            let user = user.to_vec();
            push(out, PasswdDiagnosticKind::PlusInName { user });
        }
        Some(entry)
    }

    /// The findings about a record Dovecot keeps, after its name's.
    pub(super) fn tail_findings(&self, entry: &PasswdEntry<'_>, out: &mut Vec<PasswdDiagnostic>) {
        if self.options.userdb && entry.field_count() < 4 {
            out.push(PasswdDiagnostic {
                line: entry.line,
                column: 1,
                kind: PasswdDiagnosticKind::MissingUserdbInfo {
                    user: entry.user().to_vec(),
                },
            });
        }
        if entry.legacy_form() {
            if let Some(mail) = entry.legacy_mail() {
                out.push(PasswdDiagnostic {
                    line: entry.line,
                    column: entry.field_offset(7).unwrap_or(0) + 1,
                    kind: PasswdDiagnosticKind::LegacyMailField {
                        mail: mail.to_vec(),
                    },
                });
            }
        }
        self.field_diagnostics(entry, out);
    }

    /// Dovecot 2.4's location fields: `userdb_mail` ignored, a driver or path alone.
    fn location_diagnostics(&self, entry: &PasswdEntry<'_>, out: &mut Vec<PasswdDiagnostic>) {
        if self.options.legacy_mail_field {
            return;
        }
        let extra = entry.extra();
        let find = |key: &[u8]| extra.iter().find(|f| f.key.as_ref() == key);
        let column = |f: &ExtraField<'_>| f.offset.map_or(1, |o| o + 1);
        if let Some(f) = find(b"userdb_mail") {
            out.push(PasswdDiagnostic {
                line: entry.line,
                column: column(f),
                kind: PasswdDiagnosticKind::IgnoredMailField {
                    mail: f.value.as_deref().unwrap_or_default().to_vec(),
                },
            });
        }
        let driver = find(b"userdb_mail_driver");
        let path = find(b"userdb_mail_path");
        let lone = match (driver, path) {
            (Some(f), None) => Some((f, "userdb_mail_driver", "userdb_mail_path")),
            (None, Some(f)) => Some((f, "userdb_mail_path", "userdb_mail_driver")),
            _ => None,
        };
        if let Some((f, present, missing)) = lone {
            out.push(PasswdDiagnostic {
                line: entry.line,
                column: column(f),
                kind: PasswdDiagnosticKind::LoneLocationField { present, missing },
            });
        }
    }

    fn field_diagnostics(&self, entry: &PasswdEntry<'_>, out: &mut Vec<PasswdDiagnostic>) {
        self.location_diagnostics(entry, out);
        let extra = entry.extra();
        let mut previous_had_value = false;
        for f in &extra {
            let column = f.offset.map_or(1, |o| o + 1);
            let push = |out: &mut Vec<PasswdDiagnostic>, kind| {
                out.push(PasswdDiagnostic {
                    line: entry.line,
                    column,
                    kind,
                })
            };
            let key: &[u8] = &f.key;
            if let Err(e) = check_key(key) {
                push(
                    out,
                    PasswdDiagnosticKind::BrokenField {
                        reason: e.to_string(),
                    },
                );
                continue;
            }
            if key == b"userdb_" {
                push(
                    out,
                    PasswdDiagnosticKind::BrokenField {
                        reason:
                            "an empty field name after `userdb_`: the auth process crashes on it"
                                .into(),
                    },
                );
                continue;
            }
            if let Some(v) = &f.value {
                match expand(v, entry.user()) {
                    Err(ExpandError::Unknown(var)) => push(
                        out,
                        PasswdDiagnosticKind::BrokenField {
                            reason: format!(
                                "Failed to expand extra field {}: Unknown variable '{var}' (lookups of this user fail; write a literal % as %%)",
                                show(key)
                            ),
                        },
                    ),
                    Err(ExpandError::Contextual(var)) => push(
                        out,
                        PasswdDiagnosticKind::SuspiciousField {
                            reason: format!("{} uses {var}, which depends on the connection", show(key)),
                        },
                    ),
                    Ok(_) => {}
                }
            }
            match key {
                b"password" | b"password_noscheme" => push(
                    out,
                    PasswdDiagnosticKind::SuspiciousField {
                        reason: "a password extra field is ignored (Multiple password values not supported)".into(),
                    },
                ),
                b"nopassword" => {
                    let p = entry.password().unwrap_or_default();
                    let body = match (p.first(), p.iter().position(|&b| b == b'}')) {
                        (Some(b'{'), Some(end)) => &p[end + 1..],
                        _ => p,
                    };
                    if !body.is_empty() {
                        push(
                            out,
                            PasswdDiagnosticKind::SuspiciousField {
                                reason: "nopassword set but password is non-empty: Dovecot ignores nopassword".into(),
                            },
                        );
                    }
                }
                _ => {}
            }
            if f.value.is_none() && previous_had_value && !KNOWN_FLAGS.contains(&key) {
                push(
                    out,
                    PasswdDiagnosticKind::SuspiciousField {
                        reason: format!(
                            "bare field `{}` after a `key=value`: values cannot contain spaces, so this is probably the rest of the previous value",
                            show(key)
                        ),
                    },
                );
            }
            previous_had_value = f.value.as_ref().is_some_and(|v| !v.is_empty());
        }
    }
}

/// The finding for the load's verdict on line `index` (0-based) of `user`'s record, if it is
/// not kept.
pub(super) fn verdict_finding(
    index: usize,
    status: &LoadStatus,
    user: &[u8],
) -> Option<PasswdDiagnostic> {
    let kind = match status {
        LoadStatus::Active => return None,
        LoadStatus::Duplicate { first_line } => PasswdDiagnosticKind::Duplicate {
            user: user.to_vec(),
            first_line: *first_line,
        },
        LoadStatus::Dropped { reason } => PasswdDiagnosticKind::Dropped {
            reason: reason.clone(),
        },
    };
    Some(PasswdDiagnostic {
        line: index + 1,
        column: 1,
        kind,
    })
}

/// The findings of the records `loaded` does not keep, in line order.
fn load_verdicts(loaded: &Loaded) -> impl Iterator<Item = PasswdDiagnostic> + '_ {
    loaded
        .statuses()
        .iter()
        .enumerate()
        .filter_map(|(k, (i, s))| verdict_finding(*i, s, loaded.name(k)))
}

/// Puts the load's verdicts (`verdicts`, the findings of the records it does not keep, in line
/// order) among the lines' findings (`lines`, in line order): a record that is not kept gets its
/// head, the verdict, and no tail; a junk name gets no verdict.
pub(super) fn merge_verdicts(
    lines: impl IntoIterator<Item = PasswdDiagnostic>,
    verdicts: impl IntoIterator<Item = PasswdDiagnostic>,
) -> Vec<PasswdDiagnostic> {
    let lines = lines.into_iter();
    let mut verdicts = verdicts.into_iter().peekable();
    let mut out = Vec::with_capacity(lines.size_hint().0);
    let mut findings = lines.peekable();
    while let Some(first) = findings.peek() {
        let number = first.line;
        while let Some(v) = verdicts.next_if(|v| v.line < number) {
            out.push(v);
        }
        let this = verdicts.next_if(|v| v.line == number);
        let mut group = Vec::new();
        while let Some(d) = findings.next_if(|d| d.line == number) {
            group.push(d);
        }
        let junk = group
            .iter()
            .any(|d| matches!(d.kind, PasswdDiagnosticKind::JunkUser { .. }));
        match this {
            Some(v) if !junk => {
                out.extend(group.into_iter().filter(|d| is_head(&d.kind)));
                out.push(v);
            }
            _ => out.extend(group),
        }
    }
    out.extend(verdicts);
    out
}

#[cfg(test)]
mod tests_24 {
    use super::*;
    use crate::dovecot::NumericIds;

    fn codes(text: &str, legacy: bool) -> Vec<(usize, usize, &'static str)> {
        let options = PasswdOptions {
            legacy_mail_field: legacy,
            ..PasswdOptions::default()
        };
        PasswdFile::parse(text.as_bytes().to_vec(), &options)
            .diagnostics(&NumericIds)
            .iter()
            .map(|d| (d.line, d.column, d.kind.code()))
            .collect()
    }

    #[test]
    fn dovecot_24_location_fields() {
        let text = "a:x:1:1::/h::userdb_mail=mdbox:~/mdbox\nb:x:1:1::/h::userdb_mail_driver=mdbox\nc:x:1:1::/h::quota=1 userdb_mail_path=~/m\nd:x:1:1::/h::userdb_mail_driver=mdbox userdb_mail_path=~/mdbox\n";
        assert_eq!(
            codes(text, false),
            [
                (1, 14, "ignored-mail-field"),
                (2, 14, "lone-location-field"),
                (3, 22, "lone-location-field"),
            ]
        );
        // 2.3 reads userdb_mail, and has no driver/path fields to pair
        assert!(codes(text, true).is_empty(), "{:?}", codes(text, true));
    }
}

#[cfg(test)]
pub(super) mod side_by_side {
    use super::*;
    use crate::dovecot::NumericIds;
    use proptest::prelude::*;

    /// The findings in one pass, each line's verdict taken where its head ends (the shape
    /// `diagnostics` had before the load and the checks ran side by side).
    fn in_one_pass(file: &PasswdFile) -> Vec<PasswdDiagnostic> {
        let loaded = file.load(&NumericIds);
        let mut statuses = loaded.statuses().iter().enumerate().peekable();
        let mut out = Vec::new();
        for (i, line) in file.lines().enumerate() {
            let status = statuses.next_if(|(_, (j, _))| *j == i);
            let Some(entry) = file.head_findings(&line, line.entry(), &mut out) else {
                continue;
            };
            match status.and_then(|(k, (_, s))| verdict_finding(i, s, loaded.name(k))) {
                Some(verdict) => out.push(verdict),
                None => file.tail_findings(&entry, &mut out),
            }
        }
        out
    }

    /// Lines of every kind a passwd-file has, for generated files (also the read check's).
    pub(in crate::dovecot::passwd) const LINES: &[&str] = &[
        "alice:{PLAIN}x:1000:1000::/home/alice::\n",
        "alice:{PLAIN}y:1000:1000::/h::\n",
        "ALICE:{PLAIN}y:1000:1000::/h::\n",
        "bob:{PLAIN}x:0:1000::/h::\n",
        "bob:{PLAIN}x:1:1::/h::\n",
        "bob:{PLAIN}x:1:1::/h::quota=%z password=x\n",
        "  # junk:x:1:1::/h::\n",
        "   \n",
        "d+e:x:1:1::/h::\n",
        "f:x\n",
        "f:x:1:1::/h:/m:\n",
        "g:x:1:1::/h::userdb_mail=mdbox:~/m userdb_mail_driver=sdbox\n",
        "h\u{e9}:x:1:1::/h::\n",
        "j:x:1:1::/h::\0tail\n",
        "j:x:1:x::/h::\n",
        "k:{SSHA}!!:1:1::/h::nopassword\n",
        "# comment\n",
        "\n",
        "\0\n",
    ];

    proptest! {
        #[test]
        fn the_verdicts_land_where_one_pass_puts_them(
            picks in proptest::collection::vec(0..LINES.len(), 0..40),
            userdb in any::<bool>(),
            legacy in any::<bool>(),
            lowercase in any::<bool>(),
        ) {
            let text: String = picks.iter().map(|&i| LINES[i]).collect();
            let options = PasswdOptions {
                userdb,
                legacy_mail_field: legacy,
                lowercase_requests: lowercase,
                ..PasswdOptions::default()
            };
            let file = PasswdFile::parse(text.into_bytes(), &options);
            let expected = in_one_pass(&file);
            prop_assert_eq!(&file.diagnostics_side_by_side(&NumericIds, false), &expected);
            prop_assert_eq!(&file.diagnostics_side_by_side(&NumericIds, true), &expected);
        }
    }
}
