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
    // Without an early exit: the compiler checks many bytes at once (most keys need nothing).
    let needs_folding = key.iter().fold(0u8, |any, &b| {
        any | u8::from(b.is_ascii_uppercase()) | (b & 0x80)
    });
    if needs_folding == 0 {
        return Cow::Borrowed(key);
    }
    if smtputf8 && !key.is_ascii() {
        if let Ok(s) = std::str::from_utf8(key) {
            return Cow::Owned(caseless::default_case_fold_str(s).into_bytes());
        }
    }
    Cow::Owned(key.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A key is copied exactly when it has a byte to fold (an ASCII capital or a byte of
        /// 0x80 and above); an ASCII key folds to its lower case.
        #[test]
        fn keys_are_copied_only_to_fold(
            key in proptest::collection::vec(proptest::sample::select(&b"aZ@.\x80\xc3\xa4\xff9"[..]), 0..40),
            smtputf8 in proptest::prelude::any::<bool>(),
        ) {
            let folded = fold_key(&key, smtputf8);
            let needs = key.iter().any(|b| b.is_ascii_uppercase() || *b >= 0x80);
            proptest::prop_assert_eq!(matches!(folded, Cow::Owned(_)), needs);
            if key.is_ascii() {
                proptest::prop_assert_eq!(&*folded, &key.to_ascii_lowercase()[..]);
            }
        }
    }
}
