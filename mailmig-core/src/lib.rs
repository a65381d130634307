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
//! # Examples
//!
//! Edit a Postfix table: the entry postmap uses for the key is replaced, every other byte stays.
//!
//! ```
//! use mailmig_core::postfix::{ParseOptions, Table};
//!
//! let src = b"# virtual\nsales@example.test  bob@example.test\n";
//! let mut table = Table::parse(src.to_vec(), &ParseOptions::default());
//! table.set(b"Sales@example.test", b"alice@example.test", true)?;
//! assert_eq!(table.render(), b"# virtual\nsales@example.test  alice@example.test\n");
//! # Ok::<(), mailmig_core::postfix::TableEditError>(())
//! ```
//!
//! Every address whose mail reaches a mailbox through `virtual_alias_maps` (the mailbox itself
//! and nested aliases included), as Postfix's virtual(5) expansion would deliver it:
//!
//! ```
//! use mailmig_core::postfix::{Address, ClosureOptions, ParseOptions, Table, VirtualMap};
//!
//! let src = b"team@example.test sales@example.test\nsales@example.test alice@example.test\n";
//! let table = Table::parse(src.to_vec(), &ParseOptions::default());
//! let map = VirtualMap::new(&[&table], ClosureOptions::default());
//! let closure = map.reverse_closure(&Address(b"alice@example.test".to_vec()));
//! let mut reaching: Vec<_> = closure
//!     .addresses
//!     .iter()
//!     .map(|a| String::from_utf8_lossy(&a.address.0).into_owned())
//!     .collect();
//! reaching.sort();
//! assert_eq!(reaching, ["alice@example.test", "sales@example.test", "team@example.test"]);
//! ```
//!
//! Read a Dovecot passwd-file as the auth process does, and set an extra field of the record
//! Dovecot uses (here the lock-out `allow_nets=`), keeping every other byte:
//!
//! ```
//! use mailmig_core::dovecot::{NumericIds, PasswdFile, PasswdOptions};
//!
//! let src = b"alice@example.test:{PLAIN}secret:1000:1000::/home/alice::userdb_mail=maildir:~/Maildir\n";
//! let mut file = PasswdFile::parse(src.to_vec(), &PasswdOptions::default());
//! let alice = file.lookup(b"Alice@Example.test", &NumericIds).expect("found (%Lu lowercases)");
//! let userdb = alice.userdb(&NumericIds).expect("valid").expect("has userdb fields");
//! assert_eq!(userdb.get(b"mail"), Some(Some(&b"maildir:~/Maildir"[..])));
//! file.set_extra(b"alice@example.test", b"allow_nets", Some(b""), &NumericIds)?;
//! assert!(file.render().ends_with(b"userdb_mail=maildir:~/Maildir allow_nets=\n"));
//! # Ok::<(), mailmig_core::dovecot::PasswdEditError>(())
//! ```
//!
//! A whole migration (the server discovered from `postconf` and `doveconf`, each user's plan,
//! the journaled run) is shown in [`migrate`] and in `examples/migrate.rs`.
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

mod cores;
pub mod dovecot;
pub mod hold;
pub mod login;
pub mod migrate;
mod pieces;
pub mod postfix;
pub mod process;
pub mod queue;
mod read_at;
mod runs;
pub mod safe_fs;
pub mod state;
pub mod transaction;

/// The examples of this crate's README, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
