//! uid and gid fields as Dovecot's `userdb_parse_uid()` / `userdb_parse_gid()` read them.

use std::collections::HashMap;

use camino::Utf8Path;

/// Resolves system user and group names (Dovecot accepts `vmail` in a uid field).
pub trait IdResolver {
    /// The uid of a system user name.
    fn user_id(&self, name: &[u8]) -> Option<u32>;
    /// The gid of a system group name.
    fn group_id(&self, name: &[u8]) -> Option<u32>;
}

/// Resolves no names: only numeric uid and gid fields are valid.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumericIds;

impl IdResolver for NumericIds {
    fn user_id(&self, _: &[u8]) -> Option<u32> {
        None
    }
    fn group_id(&self, _: &[u8]) -> Option<u32> {
        None
    }
}

/// Names from `/etc/passwd` and `/etc/group` (what `getpwnam`/`getgrnam` read on a system whose
/// NSS uses files).
#[derive(Debug, Clone, Default)]
pub struct SystemIds {
    users: HashMap<Vec<u8>, u32>,
    groups: HashMap<Vec<u8>, u32>,
}

impl SystemIds {
    /// Read `/etc/passwd` and `/etc/group`.
    pub fn load() -> std::io::Result<Self> {
        Self::from_files(Utf8Path::new("/etc/passwd"), Utf8Path::new("/etc/group"))
    }

    /// Read a passwd(5) and a group(5) file.
    pub fn from_files(passwd: &Utf8Path, group: &Utf8Path) -> std::io::Result<Self> {
        Ok(Self {
            users: third_field_ids(&fs_err::read(passwd)?),
            groups: third_field_ids(&fs_err::read(group)?),
        })
    }

    /// Built from lists of `(name, id)`.
    pub fn new(users: &[(&str, u32)], groups: &[(&str, u32)]) -> Self {
        let map = |l: &[(&str, u32)]| l.iter().map(|(n, i)| (n.as_bytes().to_vec(), *i)).collect();
        Self {
            users: map(users),
            groups: map(groups),
        }
    }
}

/// `name:x:ID:...` lines → name → ID.
fn third_field_ids(text: &[u8]) -> HashMap<Vec<u8>, u32> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let mut fields = line.split(|&b| b == b':');
            let name = fields.next()?;
            let id = std::str::from_utf8(fields.nth(1)?).ok()?.parse().ok()?;
            (!name.is_empty() && !name.starts_with(b"#")).then(|| (name.to_vec(), id))
        })
        .collect()
}

impl IdResolver for SystemIds {
    fn user_id(&self, name: &[u8]) -> Option<u32> {
        self.users.get(name).copied()
    }
    fn group_id(&self, name: &[u8]) -> Option<u32> {
        self.groups.get(name).copied()
    }
}

/// Which kind of id a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    User,
    Group,
}

/// Dovecot's parse: decimal digits only (no sign, no blanks), below 2^31; otherwise a system
/// name. `None` when invalid. A result of 0 is returned as `Some(0)`; callers reject it.
pub(crate) fn parse_id(field: &[u8], kind: IdKind, ids: &dyn IdResolver) -> Option<u32> {
    if !field.is_empty() && field.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for &b in field {
            n = n * 10 + u64::from(b - b'0');
            if n >= 1 << 31 {
                return None;
            }
        }
        return u32::try_from(n).ok();
    }
    match kind {
        IdKind::User => ids.user_id(field),
        IdKind::Group => ids.group_id(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_dovecot_reads_them() {
        let ids = SystemIds::new(&[("vmail", 999), ("root", 0)], &[("vmail", 995)]);
        assert_eq!(parse_id(b"1000", IdKind::User, &ids), Some(1000));
        assert_eq!(parse_id(b"0100", IdKind::User, &ids), Some(100));
        assert_eq!(parse_id(b"vmail", IdKind::User, &ids), Some(999));
        assert_eq!(parse_id(b"vmail", IdKind::Group, &ids), Some(995));
        assert_eq!(parse_id(b"root", IdKind::User, &ids), Some(0));
        for bad in [&b"1000 "[..], b"+100", b"2147483648", b"nosuch", b""] {
            assert_eq!(parse_id(bad, IdKind::User, &ids), None, "{bad:?}");
        }
        assert_eq!(
            parse_id(b"2147483647", IdKind::User, &ids),
            Some(2_147_483_647)
        );
        let parsed =
            third_field_ids(b"root:x:0:0::/root:/bin/sh\n# c\nvmail:x:999:995::/x:/y\nbad\n");
        assert_eq!(parsed.get(&b"vmail"[..]), Some(&999));
    }
}
