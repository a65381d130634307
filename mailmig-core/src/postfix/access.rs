//! `access(5)` values as smtpd's `check_table_result()` reads them.

use nom::bytes::complete::{take_till, take_while};
use nom::IResult;
use nom::Parser;

use super::table::Entry;

/// What smtpd does with an `access(5)` value. The command word is matched case-insensitively;
/// the text after it is kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessAction {
    /// `OK`: accept.
    Ok,
    /// `RELAY`: accept and relay.
    Relay,
    /// An all-digits value (`554` alone) means OK, not reject.
    AllDigits,
    /// `4NN text` / `5NN text`: reject with that code and text.
    Code(u16),
    /// `REJECT [text]`.
    Reject,
    /// `DEFER [text]`.
    Defer,
    /// `DEFER_IF_PERMIT [text]`.
    DeferIfPermit,
    /// `DEFER_IF_REJECT [text]`.
    DeferIfReject,
    /// `DUNNO`: as if not found; stop trying less specific keys.
    Dunno,
    /// `HOLD [text]`: put the whole message on hold.
    Hold,
    /// `DISCARD [text]`.
    Discard,
    /// `FILTER transport:destination`.
    Filter,
    /// `REDIRECT user@domain`.
    Redirect,
    /// `BCC user@domain` (Postfix 3.0+).
    Bcc,
    /// `PREPEND header: value`.
    Prepend,
    /// `INFO [text]` (Postfix 3.0+).
    Info,
    /// `WARN [text]`.
    Warn,
    /// Anything else: smtpd runs the words as restriction names (`permit_mynetworks, reject`).
    Restrictions(Vec<String>),
}

impl AccessAction {
    /// Whether the action puts the message on hold.
    pub fn is_hold(&self) -> bool {
        matches!(self, AccessAction::Hold)
    }
}

/// A typed view of one access-map entry.
#[derive(Debug, Clone)]
pub struct AccessRule<'a> {
    entry: Entry<'a>,
    action: AccessAction,
    text: &'a [u8],
}

/// Known smtpd restriction names that may stand in an access value (lowercase).
const KNOWN_RESTRICTIONS: &[&str] = &[
    "permit",
    "reject",
    "defer",
    "defer_if_permit",
    "defer_if_reject",
    "warn_if_reject",
    "permit_mynetworks",
    "permit_sasl_authenticated",
    "permit_tls_clientcerts",
    "permit_tls_all_clientcerts",
    "permit_inet_interfaces",
    "permit_auth_destination",
    "permit_mx_backup",
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject_unauth_pipelining",
    "reject_unknown_recipient_domain",
    "reject_unknown_sender_domain",
    "reject_unknown_client_hostname",
    "reject_unknown_reverse_client_hostname",
    "reject_unknown_helo_hostname",
    "reject_unverified_recipient",
    "reject_unverified_sender",
    "reject_non_fqdn_recipient",
    "reject_non_fqdn_sender",
    "reject_non_fqdn_helo_hostname",
    "reject_invalid_helo_hostname",
    "reject_unlisted_recipient",
    "reject_unlisted_sender",
    "reject_multi_recipient_bounce",
    "reject_plaintext_session",
    "reject_sender_login_mismatch",
    "reject_authenticated_sender_login_mismatch",
    "reject_unauthenticated_sender_login_mismatch",
    "reject_known_sender_login_mismatch",
    "reject_rbl_client",
    "reject_rhsbl_client",
    "reject_rhsbl_sender",
    "reject_rhsbl_recipient",
    "reject_rhsbl_helo",
    "reject_rhsbl_reverse_client",
    "permit_dnswl_client",
    "permit_rhswl_client",
    "reject_unauth_pipelining",
    "sleep",
];

impl<'a> AccessRule<'a> {
    /// Read an entry as an access rule.
    pub fn new(entry: Entry<'a>) -> Self {
        let (action, text) = parse_action(entry.value());
        Self {
            entry,
            action,
            text,
        }
    }

    /// The entry this rule reads.
    pub fn entry(&self) -> &Entry<'a> {
        &self.entry
    }

    /// The action.
    pub fn action(&self) -> &AccessAction {
        &self.action
    }

    /// The text after the command word (leading whitespace skipped), as written. For
    /// [`AccessAction::Code`] this is the reply text; for restrictions, the whole value.
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// Why smtpd would not treat this value as the action it looks like, or would fail on it; `None`
    /// for a well-formed action or a list of known restriction names.
    pub fn problem(&self) -> Option<String> {
        action_problem(&self.action, self.text)
    }
}

/// Why smtpd would not treat an access map's `value` as the action it looks like, or would fail
/// on it: what [`AccessRule::problem`] says of an entry with this value.
pub fn access_value_problem(value: &[u8]) -> Option<String> {
    let (action, text) = parse_action(value);
    action_problem(&action, text)
}

/// The problem of `action` with its `text` (see [`AccessRule::problem`]).
fn action_problem(action: &AccessAction, raw_text: &[u8]) -> Option<String> {
    match action {
        AccessAction::Filter if !raw_text.contains(&b':') => {
            Some("FILTER needs `transport:destination`".into())
        }
        AccessAction::Redirect | AccessAction::Bcc if !raw_text.contains(&b'@') => {
            Some("REDIRECT and BCC need an address with `@`".into())
        }
        AccessAction::Prepend if !valid_header(raw_text) => Some(format!(
            "PREPEND needs a header `Name: value`, got `{}`",
            String::from_utf8_lossy(raw_text)
        )),
        AccessAction::Code(_) if raw_text.is_empty() => Some("a reply code needs text".into()),
        AccessAction::Restrictions(words) => {
            for word in words {
                if word.contains(':') {
                    return Some(format!(
                        "`{word}` is no action; smtpd would run the value as restriction names and fail with a server configuration error (451 4.3.5) on the `:`"
                    ));
                }
                if word.contains('@') {
                    return Some(format!(
                        "`{word}` is no action; smtpd would run the value as restriction names and fail with a server configuration error (451 4.3.5)"
                    ));
                }
                if !KNOWN_RESTRICTIONS.contains(&word.to_ascii_lowercase().as_str()) {
                    return Some(format!(
                        "`{word}` is neither an action nor a known restriction name; smtpd fails with a server configuration error unless it names a restriction class"
                    ));
                }
            }
            None
        }
        _ => None,
    }
}

fn valid_header(text: &[u8]) -> bool {
    match text.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(i) => text[..i].iter().all(|&b| b.is_ascii_graphic() && b != b':'),
    }
}

fn word(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_till(|c| c == b' ' || c == b'\t').parse(input)
}

fn blanks(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while(|c| c == b' ' || c == b'\t').parse(input)
}

/// Split an access value into its action and text, as `check_table_result()` does.
fn parse_action(value: &[u8]) -> (AccessAction, &[u8]) {
    // Both parsers accept any input (complete-input `take_till`/`take_while`), so this cannot fail.
    let (rest, command) = match (word, blanks).parse(value) {
        Ok((rest, (command, _))) => (rest, command),
        Err(_) => (&value[value.len()..], value),
    };
    let named = [
        ("OK", AccessAction::Ok),
        ("RELAY", AccessAction::Relay),
        ("REJECT", AccessAction::Reject),
        ("DEFER", AccessAction::Defer),
        ("DEFER_IF_PERMIT", AccessAction::DeferIfPermit),
        ("DEFER_IF_REJECT", AccessAction::DeferIfReject),
        ("DUNNO", AccessAction::Dunno),
        ("HOLD", AccessAction::Hold),
        ("DISCARD", AccessAction::Discard),
        ("FILTER", AccessAction::Filter),
        ("REDIRECT", AccessAction::Redirect),
        ("BCC", AccessAction::Bcc),
        ("PREPEND", AccessAction::Prepend),
        ("INFO", AccessAction::Info),
        ("WARN", AccessAction::Warn),
    ];
    for (name, action) in named {
        if command.eq_ignore_ascii_case(name.as_bytes()) {
            return (action, rest);
        }
    }
    if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
        return (AccessAction::AllDigits, b"");
    }
    if command.len() == 3
        && command.iter().all(u8::is_ascii_digit)
        && matches!(command[0], b'4' | b'5')
        && !rest.is_empty()
    {
        let code = u16::from(command[0] - b'0') * 100
            + u16::from(command[1] - b'0') * 10
            + u16::from(command[2] - b'0');
        return (AccessAction::Code(code), rest);
    }
    let words = String::from_utf8_lossy(value)
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    (AccessAction::Restrictions(words), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postfix::{ParseOptions, Table};

    fn rule_of(value: &str) -> (AccessAction, String, Option<String>) {
        let t = Table::parse(
            format!("k {value}\n").into_bytes(),
            &ParseOptions::default(),
        );
        let e = t.entries().next().expect("one entry");
        let r = AccessRule::new(e);
        (
            r.action().clone(),
            String::from_utf8_lossy(r.text()).into_owned(),
            r.problem(),
        )
    }

    #[test]
    fn actions_from_formats_edge_case_18() {
        assert_eq!(rule_of("OK").0, AccessAction::Ok);
        assert_eq!(rule_of("ok").0, AccessAction::Ok);
        assert_eq!(rule_of("RELAY").0, AccessAction::Relay);
        assert_eq!(rule_of("REJECT").0, AccessAction::Reject);
        assert_eq!(rule_of("reject text").1, "text");
        assert_eq!(rule_of("554 5.7.1 text").0, AccessAction::Code(554));
        assert_eq!(rule_of("554").0, AccessAction::AllDigits);
        assert_eq!(rule_of("HOLD").0, AccessAction::Hold);
        assert_eq!(rule_of("HOLD reason text").1, "reason text");
        assert_eq!(
            rule_of("DEFER_IF_PERMIT text").0,
            AccessAction::DeferIfPermit
        );
        assert_eq!(rule_of("FILTER smtp:[host]:25").2, None);
        assert!(rule_of("FILTER smtp").2.is_some());
        assert_eq!(rule_of("REDIRECT a@x").2, None);
        assert_eq!(rule_of("PREPEND X-Tag: y").2, None);
        assert_eq!(rule_of("permit_mynetworks, reject").2, None);
        assert!(rule_of("alice@x, HOLD Planned maintenance").2.is_some());
        assert!(rule_of("hash:/etc/postfix/x").2.is_some());
        assert!(rule_of("250 ok").2.is_some());
    }
}
