//! # mailmig-core
//!
//! The library behind `mailmig`, a tool that converts Dovecot mailboxes between storage formats on a
//! live Postfix + Dovecot server. This crate holds the parts other Rust tools can embed:
//!
//! - [`postfix`]: a **lossless** document model of Postfix lookup-table source files (what `postmap`
//!   reads), with exactly `postmap`'s reading rules (logical lines, key/value split, quoting, case
//!   folding, first-duplicate-wins, the same warnings), and typed views for `virtual(5)`
//!   ([`postfix::VirtualAlias`], the reverse alias closure) and `access(5)` ([`postfix::AccessRule`]).
//!
//! - [`dovecot`]: a lossless document model of Dovecot passwd-files with exactly the auth
//!   process's reading rules, and the passdb and userdb views its lookups produce.
//!
//! - [`hold`], [`queue`], [`login`]: holding a mailbox's mail at Postfix with exact access(5)
//!   lines, holding and releasing exactly its queued messages, locking it out of Dovecot and back
//!   in, each recorded so that it can be undone.
//!
//! - [`migrate`]: the migration as data — validated locations and user names, the plan (typed
//!   steps with argument vectors and diffs), the durable journal a run writes, and the
//!   per-mailbox verification of two locations.
//!
//! Every document renders back to the exact bytes it was parsed from when nothing was edited: CRLF,
//! tabs, trailing blanks, comments inside continuations, 8-bit bytes, NUL bytes and a missing final
//! newline are all data.
//!
//! ```
//! use mailmig_core::postfix::{Table, ParseOptions};
//!
//! let src = b"# aliases\nteam@example.test  alice@example.test,\n# bob left\n    carol@example.test\n";
//! let table = Table::parse(src.to_vec(), &ParseOptions::default());
//! assert_eq!(table.render(), src);
//! let team = table.get(b"Team@Example.TEST", true).expect("present");
//! assert_eq!(team.value(), b"alice@example.test,    carol@example.test");
//! ```
//!
//! # Limitations
//! - The reading rules are those of Postfix 3.2 and later by default (quoted keys); older versions
//!   can be selected with [`postfix::PostfixVersion`]. See `docs/` for every difference we know of.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// `camino`, whose UTF-8 paths appear throughout this crate's signatures.
pub use camino;

/// An error and its causes on one line: `top: cause: cause`. mailmig's errors do not repeat
/// their `source()` in their `Display`; this is how they are shown whole. A cause whose text
/// the line already ends with (an error of another crate that includes its source) is not
/// repeated.
pub fn display_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let t = cause.to_string();
        if !t.is_empty() && !text.ends_with(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        next = cause.source();
    }
    text
}

pub mod dovecot;
pub mod hold;
pub mod login;
pub mod migrate;
mod pieces;
pub mod postfix;
pub mod process;
pub mod queue;
pub mod safe_fs;
pub mod state;
pub mod transaction;
