//! `%` variables in passwd-file extra-field values, as Dovecot 2.3's `var_expand()` treats them
//! for an auth lookup: `%%` is `%`, a `%` at the very end is dropped, `%u`/`%n`/`%d` (and
//! `%{user}`, `%{username}`, `%{domain}`, with the `L`/`U` case modifiers) are the user, its
//! local part and its domain, an unknown variable fails the lookup. Variables that depend on the
//! connection (`%r`, `%s`, `%{rip}`, ...) cannot be known offline: mailmig reports them and keeps
//! the value as written.

use std::fmt;

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// Dovecot does not know the variable: the lookup fails ("Unknown variable").
    Unknown(String),
    /// A variable whose value depends on the request (remote IP, service, ...).
    Contextual(String),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Unknown(v) => write!(f, "Unknown variable '{v}'"),
            ExpandError::Contextual(v) => write!(
                f,
                "'{v}' depends on the connection; mailmig shows the value unexpanded"
            ),
        }
    }
}

/// Short variables of Dovecot's auth table that mailmig cannot know offline.
const CONTEXT_SHORT: &[u8] = b"slrpw!mcabk";
const MODIFIERS: &[u8] = b"LUEXRHNMDT";

/// Expand `value` for `user`.
pub(crate) fn expand(value: &[u8], user: &[u8]) -> Result<Vec<u8>, ExpandError> {
    let at = user.iter().position(|&b| b == b'@');
    let local = at.map_or(user, |i| &user[..i]);
    let domain: &[u8] = at.map_or(&[], |i| &user[i + 1..]);
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let c = value[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        match value.get(i) {
            None => break, // a trailing `%` is dropped
            Some(b'%') => {
                out.push(b'%');
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let start = i - 1;
        let mut case: Option<u8> = None;
        let mut unsupported_modifier = false;
        while let Some(&m) = value.get(i) {
            if !MODIFIERS.contains(&m) {
                break;
            }
            match m {
                b'L' | b'U' => case = Some(m),
                _ => unsupported_modifier = true,
            }
            i += 1;
        }
        while value
            .get(i)
            .is_some_and(|b| b.is_ascii_digit() || *b == b'.' || *b == b'-')
        {
            unsupported_modifier = true;
            i += 1;
        }
        let (name, text): (Vec<u8>, String) = match value.get(i) {
            None => break,
            Some(b'{') => {
                let close = value[i..].iter().position(|&b| b == b'}');
                let end = close.map_or(value.len(), |c| i + c);
                let name = value[i + 1..end].to_vec();
                i = (end + 1).min(value.len());
                let text = String::from_utf8_lossy(&value[start..i]).into_owned();
                (name, text)
            }
            Some(&v) => {
                i += 1;
                let text = String::from_utf8_lossy(&value[start..i]).into_owned();
                (vec![v], text)
            }
        };
        let base: Option<&[u8]> = match name.as_slice() {
            b"u" | b"user" => Some(user),
            b"n" | b"username" => Some(local),
            b"d" | b"domain" => Some(domain),
            b"h" => Some(b""),
            [c] if CONTEXT_SHORT.contains(c) => return Err(ExpandError::Contextual(text)),
            [_] => return Err(ExpandError::Unknown(text)),
            _ => return Err(ExpandError::Contextual(text)),
        };
        if unsupported_modifier {
            return Err(ExpandError::Contextual(text));
        }
        let base = base.unwrap_or_default();
        match case {
            Some(b'L') => out.extend(base.iter().map(u8::to_ascii_lowercase)),
            Some(b'U') => out.extend(base.iter().map(u8::to_ascii_uppercase)),
            _ => out.extend_from_slice(base),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(v: &str) -> Result<String, ExpandError> {
        expand(v.as_bytes(), b"Alice@Example.test").map(|b| String::from_utf8(b).expect("utf8"))
    }

    #[test]
    fn dovecot_examples() {
        // Confirmed against Dovecot 2.3.19.1 (research notes, table rows 24, 25, 37).
        assert_eq!(ex("100%%").as_deref(), Ok("100%"));
        assert_eq!(ex("%u").as_deref(), Ok("Alice@Example.test"));
        assert_eq!(ex("end%").as_deref(), Ok("end"));
        assert_eq!(ex("%%u").as_deref(), Ok("%u"));
        assert_eq!(
            ex("maildir:/m/%d/%n").as_deref(),
            Ok("maildir:/m/Example.test/Alice")
        );
        assert_eq!(ex("%Lu").as_deref(), Ok("alice@example.test"));
        assert_eq!(ex("%{domain}").as_deref(), Ok("Example.test"));
        assert_eq!(ex("50%off"), Err(ExpandError::Unknown("%o".into())));
        assert!(matches!(ex("%r"), Err(ExpandError::Contextual(_))));
        assert!(matches!(ex("%{rip}"), Err(ExpandError::Contextual(_))));
        assert!(matches!(ex("%2u"), Err(ExpandError::Contextual(_))));
        assert_eq!(ex("plain").as_deref(), Ok("plain"));
    }
}
