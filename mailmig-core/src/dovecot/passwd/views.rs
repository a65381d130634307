//! What Dovecot's passdb and userdb lookups of a record give.

/// What a passdb lookup of the user gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassdbView {
    /// The user after any renaming by `user=`, `username=`, `domain=` or `userdb_user=`.
    pub user: Vec<u8>,
    /// The stored password (`{SCHEME}body` after the `[NN]` suffix rule), if the line has one.
    pub password: Option<Vec<u8>>,
    /// Unprefixed fields, in order (a repeated key keeps its first position with the last
    /// value); `None` for a bare key or an empty value.
    pub fields: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// `userdb_*` fields (prefix removed) the passdb hands to a prefetch userdb.
    pub userdb_prefetch: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Values mailmig left unexpanded because they depend on the connection.
    pub unexpanded: Vec<String>,
}

impl PassdbView {
    /// The value of a passdb field (`Some(None)` for a bare key).
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }

    /// Whether an empty or non-matching `allow_nets` makes a lookup without a remote IP (doveadm,
    /// LMTP with a `userdb static` setup) answer "user doesn't exist".
    pub fn allow_nets_denies_local(&self) -> bool {
        match self.get(b"allow_nets") {
            None => false,
            Some(None) => true,
            Some(Some(v)) => !v.split(|&b| b == b',' || b == b' ').any(|n| n == b"local"),
        }
    }

    /// The fields `doveadm auth lookup` prints: without the hidden ones (`allow_nets`,
    /// `allow_real_nets`, `login_user`, `fail`, `delay_until`, renames) and without `nopassword`
    /// and `noauthenticate`, which are removed from the reply.
    pub fn visible_fields(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        const HIDDEN: &[&[u8]] = &[
            b"allow_nets",
            b"allow_real_nets",
            b"login_user",
            b"fail",
            b"delay_until",
            b"user",
            b"username",
            b"domain",
            b"nopassword",
            b"noauthenticate",
        ];
        self.fields
            .iter()
            .filter(|(k, _)| !HIDDEN.contains(&k.as_slice()))
            .cloned()
            .collect()
    }
}

/// What a userdb lookup of the user gives (`uid`, `gid`, `home`, then `userdb_*` fields with the
/// prefix removed, and `mail` from the legacy format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserdbView {
    /// The user after renaming.
    pub user: Vec<u8>,
    /// Fields in reply order; `None` for a bare key or empty value.
    pub fields: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Values mailmig left unexpanded because they depend on the connection.
    pub unexpanded: Vec<String>,
}

/// Where a user's mail is, as the userdb says (the fields that override the global setting).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailLocation {
    /// Dovecot 2.2/2.3: `mail` (`userdb_mail=mdbox:~/mdbox`, or the legacy 8th field).
    pub mail: Option<Vec<u8>>,
    /// Dovecot 2.4: `mail_driver` (`mdbox`, `maildir`, ...).
    pub driver: Option<Vec<u8>>,
    /// Dovecot 2.4: `mail_path`.
    pub path: Option<Vec<u8>>,
}

impl MailLocation {
    /// Whether the userdb sets none of them (the global `mail_location` / `mail_driver` apply).
    pub fn is_default(&self) -> bool {
        self.mail.is_none() && self.driver.is_none() && self.path.is_none()
    }
}

impl UserdbView {
    /// The mail location fields of 2.2/2.3 (`mail`) and 2.4 (`mail_driver`, `mail_path`).
    ///
    /// ```
    /// use mailmig_core::dovecot::{NumericIds, PasswdFile, PasswdOptions};
    /// let f = PasswdFile::parse(
    ///     b"a:x:1000:1000::/h::userdb_mail_driver=mdbox userdb_mail_path=~/mdbox\n".to_vec(),
    ///     &PasswdOptions::default(),
    /// );
    /// let u = f.lookup(b"a", &NumericIds).unwrap().userdb(&NumericIds).unwrap().unwrap();
    /// let loc = u.mail_location();
    /// assert_eq!(loc.driver.as_deref(), Some(&b"mdbox"[..]));
    /// assert_eq!(loc.path.as_deref(), Some(&b"~/mdbox"[..]));
    /// assert!(loc.mail.is_none());
    /// ```
    pub fn mail_location(&self) -> MailLocation {
        let get = |k: &[u8]| self.get(k).map(|v| v.unwrap_or_default().to_vec());
        MailLocation {
            mail: get(b"mail"),
            driver: get(b"mail_driver"),
            path: get(b"mail_path"),
        }
    }

    /// The value of a userdb field.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }
}
