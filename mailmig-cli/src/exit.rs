//! Exit codes (sysexits.h), the contract scripts rely on.

/// Success.
pub(crate) const OK: u8 = 0;
/// `map get`: the key is not in the table.
pub(crate) const NOT_FOUND: u8 = 1;
/// Bad command line.
pub(crate) const USAGE: u8 = 64;
/// Bad input data (a finding in `check`, a record that cannot be used).
pub(crate) const DATAERR: u8 = 65;
/// An input file does not exist or cannot be opened.
pub(crate) const NOINPUT: u8 = 66;
/// The user has no record the daemon would use.
pub(crate) const NOUSER: u8 = 67;
/// A migration step failed and could not be undone automatically: the admin must act.
pub(crate) const SOFTWARE: u8 = 70;
/// An external command (postconf, postmap, doveadm) failed.
pub(crate) const UNAVAILABLE: u8 = 69;
/// A file could not be created (the temporary file next to the target).
pub(crate) const CANTCREAT: u8 = 73;
/// Reading or writing failed.
pub(crate) const IOERR: u8 = 74;
/// Try again: another program changed the file meanwhile.
pub(crate) const TEMPFAIL: u8 = 75;
/// Permission refused: mailmig's state directory is not private to the invoking user, or a
/// path on the way is a link someone else planted.
pub(crate) const NOPERM: u8 = 77;
