//! What `mailmig --version` prints: the package version and the commit it was built from
//! (recorded by `build.rs`).

/// `0.1.0 (commit 1a2b3c4d5e6f)`.
pub(crate) const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MAILMIG_COMMIT"),
    ")"
);

/// The date of that commit (`YYYY-MM-DD`), empty when unknown: the date of the man pages.
pub(crate) const DATE: &str = env!("MAILMIG_COMMIT_DATE");
