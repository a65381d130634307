//! Findings about a table file: the warnings `postmap` prints, and mailmig's semantic checks.

use std::fmt;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The record is used, but probably not as intended (for example a `key:` record).
    Warning,
    /// The daemon ignores the record, or the record cannot do what it is there for.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// What was found. The `Display` text is `postmap`'s own wording where `postmap` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// Text continues a logical line but nothing precedes it; `postmap` drops it.
    LeadingWhitespace {
        /// The first bytes of the dropped logical line, as `postmap` quotes them (30 at most).
        excerpt: Vec<u8>,
        /// Whether the logical line was longer than the excerpt.
        truncated: bool,
    },
    /// A non-ASCII line that is not valid UTF-8 while `smtputf8_enable` is on; dropped.
    NonUtf8 {
        /// The logical line (up to a NUL byte).
        line: Vec<u8>,
    },
    /// An unbalanced `"` in the key; dropped.
    UnbalancedQuote {
        /// The logical line (up to a NUL byte).
        line: Vec<u8>,
    },
    /// No key or no value; dropped.
    ExpectedKeyValue,
    /// The key ends with `:` (alias-file syntax). The record is stored with the colon in its key.
    ColonKey,
    /// A NUL byte: `postmap` ignores everything after it on the logical line.
    NulByte {
        /// Whether this Postfix version prints the warning (3.9 and later).
        postmap_warns: bool,
    },
    /// A later record with the same (folded) key; `postmap` keeps the first.
    DuplicateEntry {
        /// The key as stored (folded).
        key: Vec<u8>,
        /// The line of the record that wins.
        first_line: usize,
    },
    /// An `access(5)` value that is not an action: smtpd would run it as restriction names.
    AccessNotAnAction {
        /// Why it is not an action.
        reason: String,
    },
    /// A virtual alias value that yields no address, or a token that is not an address.
    VirtualBadValue {
        /// What is wrong.
        reason: String,
    },
}

impl DiagnosticKind {
    /// The severity mailmig gives this kind of finding.
    pub fn severity(&self) -> Severity {
        match self {
            DiagnosticKind::ColonKey
            | DiagnosticKind::DuplicateEntry { .. }
            | DiagnosticKind::NulByte { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// Whether `postmap` itself prints this finding (as opposed to mailmig's semantic checks).
    pub fn reported_by_postmap(&self) -> bool {
        match self {
            DiagnosticKind::NulByte { postmap_warns } => *postmap_warns,
            DiagnosticKind::AccessNotAnAction { .. } | DiagnosticKind::VirtualBadValue { .. } => {
                false
            }
            _ => true,
        }
    }

    /// A short stable identifier, for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            DiagnosticKind::LeadingWhitespace { .. } => "leading-whitespace",
            DiagnosticKind::NonUtf8 { .. } => "non-utf8",
            DiagnosticKind::UnbalancedQuote { .. } => "unbalanced-quote",
            DiagnosticKind::ExpectedKeyValue => "expected-key-value",
            DiagnosticKind::ColonKey => "colon-key",
            DiagnosticKind::NulByte { .. } => "nul-byte",
            DiagnosticKind::DuplicateEntry { .. } => "duplicate-entry",
            DiagnosticKind::AccessNotAnAction { .. } => "access-not-an-action",
            DiagnosticKind::VirtualBadValue { .. } => "virtual-bad-value",
        }
    }
}

impl fmt::Display for DiagnosticKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lossy = |b: &[u8]| printable(b);
        match self {
            DiagnosticKind::LeadingWhitespace { excerpt, truncated } => write!(
                f,
                "logical line must not start with whitespace: \"{}{}\"",
                lossy(excerpt),
                if *truncated { "..." } else { "" }
            ),
            DiagnosticKind::NonUtf8 { line } => {
                write!(
                    f,
                    "non-UTF-8 input \"{}\" -- ignoring this line",
                    lossy(line)
                )
            }
            DiagnosticKind::UnbalancedQuote { line } => {
                write!(
                    f,
                    "unbalanced '\"' in '{}' -- ignoring this line",
                    lossy(line)
                )
            }
            DiagnosticKind::ExpectedKeyValue => {
                f.write_str("expected format: key whitespace value")
            }
            DiagnosticKind::ColonKey => {
                f.write_str("record is in \"key: value\" format; is this an alias file?")
            }
            DiagnosticKind::NulByte { .. } => f.write_str("text after null byte may be ignored"),
            DiagnosticKind::DuplicateEntry { key, first_line } => write!(
                f,
                "duplicate entry: \"{}\" (the entry on line {first_line} wins)",
                lossy(key)
            ),
            DiagnosticKind::AccessNotAnAction { reason } => {
                write!(f, "not an access(5) action: {reason}")
            }
            DiagnosticKind::VirtualBadValue { reason } => f.write_str(reason),
        }
    }
}

/// One finding, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based physical line number where the logical record starts (the line `postmap` names).
    pub line: usize,
    /// 1-based byte column on that line.
    pub column: usize,
    /// What was found.
    pub kind: DiagnosticKind,
}

impl Diagnostic {
    /// The severity of the finding.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.line,
            self.column,
            self.severity(),
            self.kind
        )
    }
}

/// Render bytes for a message the way Postfix's logging does: printable text kept, every other
/// byte (control bytes, invalid UTF-8) shown as `?`.
pub(crate) fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c == char::REPLACEMENT_CHARACTER || c.is_control() {
                '?'
            } else {
                c
            }
        })
        .collect()
}
