//! Passwords out of what mailmig shows and records.
//!
//! Plans, dry-run diffs and journals show passwd-file lines; the second field of a line is a
//! password (usually a hash). [`mask_line`] replaces it by its scheme prefix and `…`
//! (`{SHA512-CRYPT}…`), [`mask_file`] does so for every line.

/// What replaces a password: the `{SCHEME}` prefix, when there is one, then this.
pub const MASK: &str = "…";

/// `line` (one physical line, with or without its line end) with the password field masked: an
/// empty password stays empty (no secret), a line without a password field is unchanged.
pub fn mask_line(line: &[u8]) -> Vec<u8> {
    let Some(first) = memchr::memchr(b':', line) else {
        return line.to_vec();
    };
    let start = first + 1;
    let end_of_line = line.len()
        - line
            .iter()
            .rev()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
    let end = memchr::memchr(b':', &line[start..]).map_or(end_of_line.max(start), |i| start + i);
    let password = &line[start..end];
    if password.is_empty() {
        return line.to_vec();
    }
    let scheme = match (password.first(), memchr::memchr(b'}', password)) {
        (Some(b'{'), Some(close)) => &password[..=close],
        _ => &[][..],
    };
    let mut out = Vec::with_capacity(line.len());
    out.extend_from_slice(&line[..start]);
    out.extend_from_slice(scheme);
    out.extend_from_slice(MASK.as_bytes());
    out.extend_from_slice(&line[end..]);
    out
}

/// Every line of a passwd-file with its password masked.
pub fn mask_file(bytes: &[u8]) -> Vec<u8> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .flat_map(mask_line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_password_field_only() {
        assert_eq!(
            mask_line(b"alice@x:{SHA512-CRYPT}$6$abc:1000:1000::/home/a::userdb_mail=x\n"),
            "alice@x:{SHA512-CRYPT}…:1000:1000::/home/a::userdb_mail=x\n".as_bytes()
        );
        assert_eq!(mask_line(b"bob:secret\r\n"), "bob:…\r\n".as_bytes());
        assert_eq!(mask_line(b"bob::1:1\n"), b"bob::1:1\n");
        assert_eq!(mask_line(b"no-colon\n"), b"no-colon\n");
        assert_eq!(
            mask_file(b"a:{PLAIN}p\nb:q:1\n"),
            "a:{PLAIN}…\nb:…:1\n".as_bytes()
        );
    }

    proptest::proptest! {
        /// No byte of a password survives masking, and the other fields are unchanged.
        #[test]
        fn no_password_byte_survives(user in "[a-z]{1,8}", pw in "[A-Za-z0-9$./]{1,40}", rest in "(:[0-9a-z=/]{0,6}){0,6}") {
            let line = format!("{user}:{pw}{rest}\n");
            let masked = String::from_utf8(mask_line(line.as_bytes())).expect("utf8");
            proptest::prop_assert_eq!(masked, format!("{user}:…{rest}\n"));
        }
    }
}
