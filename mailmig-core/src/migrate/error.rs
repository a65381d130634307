//! What can go wrong before and during a migration, as data: the CLI maps these to exit codes,
//! an embedder matches on them.

use camino::Utf8PathBuf;

use super::journal::JournalError;
use super::runs::RunsError;
use super::verify::Finding;
use super::{InputError, StepKind};
use crate::dovecot::{DovecotError, PasswdEditError};
use crate::hold::HoldError;
use crate::login::LoginError;
use crate::postfix::discover::DiscoverError;
use crate::postfix::TableEditError;
use crate::process::RunError;
use crate::queue::QueueError;
use crate::safe_fs::SafeFsError;
use crate::state::StateError;
use crate::transaction::TransactionError;

/// Why a migration cannot be planned or started. Nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// Something the migration needs was not given (the Dovecot or Postfix configuration).
    #[error("{0}")]
    Missing(&'static str),
    /// The preflight refused: the message names the setting and what to change.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Dovecot's userdb does not know the user.
    #[error("{user}: Dovecot's userdb does not know this user")]
    UnknownUser {
        /// The user.
        user: String,
    },
    /// A batch stopped before this user's run started; nothing was done for them.
    #[error("{user}: not started: {reason}; nothing was done for this user (run the batch again to continue)")]
    NotStarted {
        /// The user.
        user: String,
        /// Why the batch stopped.
        reason: String,
    },
    /// The user is already at the target: nothing to do (a batch re-run reports it as done).
    #[error("{user} is already at {to}: already-done, nothing to do")]
    AlreadyDone {
        /// The user.
        user: String,
        /// The location.
        to: String,
    },
    /// The passwd-file has no record for the user.
    #[error("{user} has no record in {passwd_file}; mailmig switches the mail location there")]
    NoRecord {
        /// The user.
        user: String,
        /// The passwd-file.
        passwd_file: Utf8PathBuf,
    },
    /// The user has an unfinished run.
    #[error("{user} has an unfinished run {run}: `mailmig resume {run}` or `mailmig rollback {run}` first")]
    Unfinished {
        /// The user.
        user: String,
        /// The run.
        run: String,
    },
    /// The run finished: a finished migration is not undone.
    #[error("run {run} finished: {user} is on {to}; mailmig does not undo a finished migration (migrate back instead)")]
    Finished {
        /// The run.
        run: String,
        /// The user.
        user: String,
        /// Where the user is now.
        to: String,
    },
    /// A user name, location or run id cannot be used.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Reading Postfix's configuration failed.
    #[error(transparent)]
    Postfix(#[from] DiscoverError),
    /// A command (doveconf, doveadm, postconf) failed.
    #[error(transparent)]
    Command(#[from] RunError),
    /// Dovecot's configuration cannot be read.
    #[error(transparent)]
    Dovecot(#[from] DovecotError),
    /// An input file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        #[source]
        source: SafeFsError,
    },
    /// The state directory refused.
    #[error(transparent)]
    State(#[from] StateError),
    /// Run bookkeeping failed (another process works on the user, ...).
    #[error(transparent)]
    Runs(#[from] RunsError),
    /// A journal cannot be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A planned edit of the passwd-file is refused.
    #[error("{passwd_file}")]
    Edit {
        /// The passwd-file.
        passwd_file: Utf8PathBuf,
        /// Why.
        #[source]
        source: PasswdEditError,
    },
    /// A planned hold is refused.
    #[error(transparent)]
    Hold(#[from] HoldError),
    /// The lock-out records cannot be read.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The source or the target's file system cannot be measured.
    #[error("{user}: cannot measure the disk space the copy needs")]
    Space {
        /// The user.
        user: String,
        /// Why.
        #[source]
        source: SafeFsError,
    },
}

/// What the preflight refuses, each with the facts that make it unsafe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No passwd-file passdb/userdb.
    #[error("this Dovecot has no passwd-file passdb/userdb: mailmig switches the mail location in a passwd-file, or through its overlay files over any userdb (see `mailmig overlay show`)")]
    NoPasswdFile,
    /// Several passwd-files.
    #[error("this Dovecot has several passwd-files; mailmig edits one in place (the user's record is edited there), or uses its overlay files over any userdb (see `mailmig overlay show`)")]
    SeveralPasswdFiles,
    /// The overlay is configured in part: a migration through it would not be exact.
    #[error("Dovecot reads mailmig's overlay files, but not as measured (see `mailmig overlay check`):\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    OverlayIncomplete {
        /// What is wrong, each naming the setting.
        problems: Vec<crate::dovecot::overlay::OverlayProblem>,
    },
    /// An overlay file cannot be used.
    #[error("the overlay file {path} cannot be used: {reason} (create it empty, owned by root, mode 0644: see `mailmig overlay show`)")]
    OverlayFile {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        reason: String,
    },
    /// The deny lock-out asked for without the overlay.
    #[error("--lock deny refuses logins through the deny overlay, which this Dovecot does not read (see `mailmig overlay check`)")]
    DenyWithoutOverlay,
    /// The reason text cannot be stored.
    #[error("--reason `{0}`: `]`, `%` and control characters cannot be stored")]
    BadReason(String),
    /// A HOLD in the access map would not hold all SMTP mail.
    #[error("a HOLD in {map} would not hold all SMTP mail; fix the configuration first (see `mailmig hold check`):\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    HoldNotCovering {
        /// The access map.
        map: Utf8PathBuf,
        /// What misses it.
        problems: Vec<String>,
    },
    /// `userdb static` without `allow_all_users=yes` with the allow_nets lock-out.
    #[error("this Dovecot has `userdb static` without `allow_all_users=yes`: LMTP checks the passdb, so the allow_nets= or deny lock-out would bounce the user's mail; use --lock nologin (in place) or set allow_all_users=yes")]
    LmtpChecksPassdb,
    /// The user was locked out by hand.
    #[error("{user} is locked out by `mailmig login disable` ({state_file}); `mailmig login enable {user}` first (a migration restores the logins it finds)")]
    LockedOut {
        /// The user.
        user: String,
        /// The lock-out record.
        state_file: Utf8PathBuf,
    },
    /// The current location cannot be migrated.
    #[error("{user}'s current mail location cannot be migrated by mailmig: {reason}")]
    BadSource {
        /// The user.
        user: String,
        /// Why.
        reason: InputError,
    },
    /// `~` without a home.
    #[error("{user} has no absolute home directory, so `~` in a mail location has no meaning")]
    NoHome {
        /// The user.
        user: String,
    },
    /// The passwd-file is written by another program: the switch would be undone.
    #[error("{passwd_file} is written by {by} ({evidence}): a switch written into it would be undone the next time it is generated, leaving the user's mail where no client reads it; {advice}")]
    GeneratedPasswdFile {
        /// The passwd-file.
        passwd_file: Utf8PathBuf,
        /// Who writes it.
        by: String,
        /// How that was seen.
        evidence: String,
        /// What to do instead.
        advice: &'static str,
    },
    /// POP3 with UIDLs that a conversion changes.
    #[error("POP3 is enabled with pop3_uidl_format = {format}, which depends on the storage (file names, header MD5): after the conversion leave-on-server POP3 clients would download every message again; use a format built from %u, %v and %g (2.4: %{{uid}}, %{{uidvalidity}}, %{{guid}}) first")]
    Pop3Uidl {
        /// The format.
        format: String,
    },
    /// A namespace dsync does not convert with the user's mail.
    #[error("namespace `{name}` ({kind}) has a location of its own ({location}): dsync converts only the user's own storage, and a {kind} namespace naming the old format would show stale or hidden mail after the switch; convert it separately or remove it first")]
    Namespace {
        /// The namespace.
        name: String,
        /// Its type.
        kind: String,
        /// Its location.
        location: String,
    },
    /// ACLs are kept per folder in the storage.
    #[error("the acl plugin is loaded (mail_plugins): ACLs kept in the old storage's folders (vfile dovecot-acl files) are not converted by dsync, so shared folders would lose their rights; mailmig does not convert servers with ACLs yet")]
    Acl,
    /// Something other than Dovecot writes the user's mail.
    #[error("{user}: new mail would not follow the switch: {explanation}. mailmig converts only mailboxes Dovecot delivers to (LMTP or dovecot-lda); point the transport at Dovecot first (e.g. virtual_transport = lmtp:unix:private/dovecot-lmtp)")]
    NotDeliveredByDovecot {
        /// The user.
        user: String,
        /// What delivers, in words.
        explanation: String,
    },
    /// The target cannot be written in this Dovecot's userdb fields.
    #[error("{0}")]
    Target(String),
    /// The copy would fill the target's file system past the reserve.
    #[error("{user}: not enough disk space: the copy {}; free space first or lower --min-free", estimate.render())]
    DiskSpace {
        /// The user.
        user: String,
        /// What was measured.
        estimate: Box<crate::migrate::space::SpaceEstimate>,
    },

    /// A namespace without separator between formats with different defaults.
    #[error("a namespace has no explicit hierarchy separator: {from} and {to} default to different ones, and dsync refuses to convert between them (exit 78). Set `separator` in every namespace {{}} block first")]
    NoSeparator {
        /// Source format.
        from: String,
        /// Target format.
        to: String,
    },
    /// Maildir++ quota with another format.
    #[error("the Maildir++ quota backend (quota = maildir) works only with Maildir, not {format}; switch to the count or dict backend first")]
    MaildirQuota {
        /// The target format.
        format: String,
    },
    /// The target holds something.
    #[error("the target {target} exists and is not empty; mailmig never overwrites mail (move it away first)")]
    TargetNotEmpty {
        /// The target path.
        target: String,
    },
    /// The target exists and is not a directory.
    #[error("the target {target} exists; mailmig never overwrites mail (move it away first)")]
    TargetExists {
        /// The target path.
        target: String,
    },
    /// The record uses the legacy 8th field.
    #[error("{passwd_file}: {user}'s record sets the mail location in the legacy 8th field; move it to userdb_mail= first")]
    LegacyMailField {
        /// The passwd-file.
        passwd_file: Utf8PathBuf,
        /// The user.
        user: String,
    },
    /// The access map has other rules for the user's addresses.
    #[error("{map} already has other rules for addresses of {user} (postmap keeps the first entry, so a HOLD cannot be added): {}", conflicts.join("; "))]
    HoldConflicts {
        /// The access map.
        map: Utf8PathBuf,
        /// The user.
        user: String,
        /// `line N: `key value`` for each.
        conflicts: Vec<String>,
    },
    /// A user listed twice.
    #[error("{0} is listed twice")]
    Duplicate(String),
}

/// Why a step (or its undo) failed; the run then rolls back or needs the admin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// A command could not run, failed or timed out.
    #[error(transparent)]
    Command(#[from] RunError),
    /// Dovecot's configuration cannot be read.
    #[error(transparent)]
    Dovecot(#[from] DovecotError),
    /// doveadm failed (or printed errors with exit 0).
    #[error("`{argv}` failed ({status}){}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Doveadm {
        /// The command.
        argv: String,
        /// `exit N` or `killed by a signal`.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A file edit failed.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// A lock-out or its undo failed.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// Holding or releasing queued mail failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A hold line could not be written.
    #[error(transparent)]
    Hold(#[from] HoldError),
    /// An access-map edit was refused.
    #[error(transparent)]
    Table(#[from] TableEditError),
    /// A passwd-file edit was refused.
    #[error(transparent)]
    Edit(#[from] PasswdEditError),
    /// The access map has other rules for the user's addresses now.
    #[error("the access map has other rules for: {}", .0.join("; "))]
    HoldConflicts(Vec<String>),
    /// The verification found differences after every retry.
    #[error("old and new location differ: {}", join(.0))]
    Differs(Vec<Finding>),
    /// Dovecot reads both locations from one storage: a comparison would be vacuous.
    #[error("Dovecot reports the same INBOX path for the old and the new location (`{old}`, `{new}`): it does not read the new location separately (a location override it ignores?), so nothing could be verified")]
    SameStorage {
        /// The old location's INBOX path.
        old: String,
        /// The new location's INBOX path.
        new: String,
    },
    /// Mail in the old location could not be carried over.
    #[error("mail in the old location could not be carried over: {}", join(.0))]
    NotCarriedOver(Vec<Finding>),
    /// Mail that reached the new location could not be carried back.
    #[error("mail that reached {to} could not be carried back to {from}: {}", join(.findings))]
    NotCarriedBack {
        /// The new location.
        to: String,
        /// The old location.
        from: String,
        /// What is missing.
        findings: Vec<Finding>,
    },
    /// Dovecot's output could not be read.
    #[error(transparent)]
    Output(#[from] super::verify::ParseStateError),
    /// The quota's message count after the recalculation is not the new location's.
    #[error("after `doveadm quota recalc` the quota counts {counted} message(s), the new location holds {messages}")]
    Quota {
        /// What the quota counts.
        counted: u64,
        /// What the new location holds.
        messages: u64,
    },
    /// Dovecot does not show the new location in time.
    #[error("Dovecot does not show mail location {want} for {user} after {seconds} s")]
    NotShown {
        /// The location expected.
        want: String,
        /// The user.
        user: String,
        /// How long mailmig waited.
        seconds: u64,
    },
    /// The target filled up before the run started.
    #[error("the target {target} exists and is not empty; mailmig never overwrites mail")]
    TargetNotEmpty {
        /// The target.
        target: String,
    },
    /// The user's mail has been held longer than `--max-hold`.
    #[error("step {step} not started: the user's mail has been held longer than --max-hold ({seconds} s)")]
    MaxHold {
        /// The step not started.
        step: StepKind,
        /// The limit.
        seconds: u64,
    },
    /// A recorded fact the step needs is missing (a journal written by another version).
    #[error("the run's journal does not record {0}")]
    NotRecorded(&'static str),
    /// The user's record is gone from the passwd-file.
    #[error("{user} has no record in {passwd_file}")]
    NoRecord {
        /// The user.
        user: String,
        /// The passwd-file.
        passwd_file: Utf8PathBuf,
    },
    /// A shared commit of access-map edits (several runs of a batch) failed.
    #[error("{0}")]
    Batch(String),
    /// The journal could not be written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The state directory refused.
    #[error(transparent)]
    State(#[from] StateError),
    /// A file could not be read or moved safely.
    #[error(transparent)]
    Fs(#[from] SafeFsError),
    /// Taking the map lock failed.
    #[error("cannot lock the state directory's map lock")]
    Lock(#[source] std::io::Error),
}

fn join(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A regular file's bytes (no link followed), a failure naming the file.
pub(crate) fn read_file(path: &camino::Utf8Path) -> Result<Vec<u8>, MigrateError> {
    crate::safe_fs::read_regular(path).map_err(|source| MigrateError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Refused when a tool generates `passwd_file` (whose `bytes` these are): an edit would be
/// undone the next time it is generated.
pub(crate) fn refuse_generated(
    passwd_file: &camino::Utf8Path,
    bytes: &[u8],
) -> Result<(), MigrateError> {
    match crate::dovecot::generated::generated_by(passwd_file, bytes, camino::Utf8Path::new("/")) {
        Some(g) => Err(Refusal::GeneratedPasswdFile {
            passwd_file: passwd_file.to_owned(),
            by: g.by,
            evidence: g.evidence,
            advice: g.advice,
        }
        .into()),
        None => Ok(()),
    }
}
