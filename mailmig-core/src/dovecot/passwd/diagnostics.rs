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

impl PasswdFile {
    /// Every finding, in line order.
    pub fn diagnostics(&self, ids: &dyn IdResolver) -> Vec<PasswdDiagnostic> {
        let loaded = self.load(ids);
        let mut out = Vec::new();
        let mut status = loaded.status.iter().peekable();
        for (i, line) in self.lines().enumerate() {
            let number = i + 1;
            let push = |out: &mut Vec<PasswdDiagnostic>, column: usize, kind| {
                out.push(PasswdDiagnostic {
                    line: number,
                    column,
                    kind,
                })
            };
            let (content, nul) = content_of(line.raw);
            if nul {
                push(&mut out, content.len() + 1, PasswdDiagnosticKind::NulByte);
            }
            let Some(entry) = line.entry() else {
                continue;
            };
            let this_status = match status.peek() {
                Some((j, s)) if *j == i => {
                    status.next();
                    s.clone()
                }
                _ => LoadStatus::Active,
            };
            let user = entry.user();
            let trimmed = user.iter().find(|b| !b.is_ascii_whitespace());
            if user.first().is_some_and(u8::is_ascii_whitespace)
                && matches!(trimmed, None | Some(b'#'))
            {
                push(
                    &mut out,
                    1,
                    PasswdDiagnosticKind::JunkUser {
                        user: user.to_vec(),
                    },
                );
                continue;
            }
            if !user.iter().all(|&b| username_char_ok(b)) {
                push(
                    &mut out,
                    1,
                    PasswdDiagnosticKind::UnreachableName {
                        user: user.to_vec(),
                    },
                );
            } else if self.options.lowercase_requests && user.iter().any(u8::is_ascii_uppercase) {
                push(
                    &mut out,
                    1,
                    PasswdDiagnosticKind::UppercaseName {
                        user: user.to_vec(),
                    },
                );
            }
            if user.contains(&b'+') {
                push(
                    &mut out,
                    1,
                    PasswdDiagnosticKind::PlusInName {
                        user: user.to_vec(),
                    },
                );
            }
            match this_status {
                LoadStatus::Duplicate { first_line } => {
                    push(
                        &mut out,
                        1,
                        PasswdDiagnosticKind::Duplicate {
                            user: user.to_vec(),
                            first_line,
                        },
                    );
                    continue;
                }
                LoadStatus::Dropped { reason } => {
                    push(&mut out, 1, PasswdDiagnosticKind::Dropped { reason });
                    continue;
                }
                LoadStatus::Active => {}
            }
            if self.options.userdb && entry.field_count() < 4 {
                push(
                    &mut out,
                    1,
                    PasswdDiagnosticKind::MissingUserdbInfo {
                        user: user.to_vec(),
                    },
                );
            }
            if entry.legacy_form() {
                if let Some(mail) = entry.legacy_mail() {
                    let column = entry.field_offset(7).unwrap_or(0) + 1;
                    push(
                        &mut out,
                        column,
                        PasswdDiagnosticKind::LegacyMailField {
                            mail: mail.to_vec(),
                        },
                    );
                }
            }
            self.field_diagnostics(&entry, &mut out);
        }
        out
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
