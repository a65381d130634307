//! Key case folding, as Postfix does it for fixed-key tables.

use std::borrow::Cow;

/// Fold a lookup key the way `postmap` does for fixed-key tables (`hash`, `btree`, `lmdb`, `cdb`,
/// ...): with `smtputf8` on, UTF-8 keys get Unicode full case folding (Postfix `casefold()`, ICU);
/// otherwise only ASCII letters are lowercased and 8-bit bytes pass unchanged.
///
/// ```
/// use mailmig_core::postfix::fold_key;
/// assert_eq!(&*fold_key(b"Alice@Example.TEST", true), b"alice@example.test");
/// assert_eq!(&*fold_key("Jürgen@X".as_bytes(), true), "jürgen@x".as_bytes());
/// assert_eq!(&*fold_key(b"J\xdcrgen@X", false), b"j\xdcrgen@x");
/// ```
pub fn fold_key(key: &[u8], smtputf8: bool) -> Cow<'_, [u8]> {
    if !key.iter().any(|b| b.is_ascii_uppercase() || *b >= 0x80) {
        return Cow::Borrowed(key);
    }
    if smtputf8 && !key.is_ascii() {
        if let Ok(s) = std::str::from_utf8(key) {
            return Cow::Owned(caseless::default_case_fold_str(s).into_bytes());
        }
    }
    Cow::Owned(key.to_ascii_lowercase())
}
