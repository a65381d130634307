//! Dovecot passwd-files, read exactly as Dovecot 2.3's auth process reads them.
//!
//! [`PasswdFile`] owns the bytes of one file as a list of physical lines; untouched lines render
//! from their original bytes, so `PasswdFile::parse(b).render() == b` for every input. Typed
//! views read records as Dovecot does:
//!
//! - a line ends at `\n`, one trailing `\r` is removed, and text after a NUL byte is ignored;
//! - an empty line and a line whose **first byte** is `#` or `:` are skipped — `  # note` and a
//!   whitespace-only line are *users* to Dovecot;
//! - fields are split on every `:` (no escaping): `user:password:uid:gid:gecos:home:shell:extra`;
//!   the extra fields are everything after the 7th `:`, split on **spaces only**;
//! - with the file also a userdb, a bad uid or gid drops the whole line, a line without a gid
//!   field has no userdb data, and (2.2/2.3) an empty 8th field turns the rest into
//!   `userdb_mail=`;
//! - the first valid line of a user wins.
//!
//! [`PasswdFile::load`] gives the users Dovecot would have, [`PasswdEntry::passdb`] and
//! [`PasswdEntry::userdb`] what its passdb and userdb lookups return.

pub mod config;
mod expand;
pub mod generated;
mod ids;
pub mod mask;
pub mod overlay;
mod passwd;
pub mod primary;
mod report;
mod running;

pub use config::{DovecotConfig, DovecotVersion};
pub use expand::ExpandError;
pub use ids::{IdResolver, NumericIds, SystemIds};
pub use passwd::{
    ExtraField, FoundRecord, Line, LineKind, LoadStatus, Loaded, LookupFailure, MailLocation,
    PassdbView, PasswdDiagnostic, PasswdDiagnosticKind, PasswdEditError, PasswdEntry, PasswdFile,
    PasswdOptions, UserdbView,
};
pub use report::{Extra, Fields, RecordReport};
pub use running::{Dovecot, DovecotError, DovecotSettings};
