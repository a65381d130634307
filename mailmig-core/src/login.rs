//! Locking a user out of Dovecot (and letting them back in) through the passwd-file, verified
//! against the running Dovecot.
//!
//! `disable` records the user's exact record line in a state file first (so that a crash at any
//! point leaves a recorded way back), adds `allow_nets=` (no network may authenticate) or
//! `nologin=y reason=...`, flushes the user's cached auth results when `auth_cache_size` is on,
//! waits until `doveadm auth lookup` shows it, kicks the user's sessions and checks `doveadm who`.
//! `enable` restores the fields exactly as they were.

use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

pub use crate::dovecot::{Dovecot, DovecotSettings};
use crate::dovecot::{DovecotError, IdResolver, PasswdEditError, PasswdFile, PasswdOptions};
use crate::process::RunError;
use crate::state::StateDir;
use crate::transaction::{CommitOptions, FileTransaction, TransactionError};

/// How logins are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum LockMethod {
    /// `allow_nets=` (empty): every authentication fails, as for a wrong password (IMAP, POP3,
    /// submission, Postfix SASL). LMTP and doveadm are not affected — unless a `userdb static`
    /// without `allow_all_users=yes` makes LMTP do a passdb lookup.
    AllowNets,
    /// `nologin=y reason=...`: Dovecot's login processes refuse with the reason; Postfix SASL
    /// still authenticates.
    Nologin,
    /// The user's name in the deny overlay (a passwd-file passdb with `deny = yes`, first; see
    /// [`crate::dovecot::overlay`]): every authentication fails as with `allow_nets=`, whatever
    /// the primary passdb is; the primary database is not touched.
    Deny,
}

impl LockMethod {
    /// Whether the method makes passdb lookups fail, so that an LMTP that checks the passdb
    /// (`userdb static` without `allow_all_users=yes`) would bounce the user's mail.
    pub fn refuses_lmtp_passdb_lookups(self) -> bool {
        matches!(self, Self::AllowNets | Self::Deny)
    }
}

impl std::fmt::Display for LockMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AllowNets => "allow-nets",
            Self::Nologin => "nologin",
            Self::Deny => "deny",
        })
    }
}

/// What a lock-out field was before mailmig set it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "was", content = "value")]
pub enum FieldBefore {
    /// The field was not in the record.
    Absent,
    /// A bare key (`nologin`).
    Bare,
    /// `key=value`.
    Value(String),
}

/// One field a lock-out set, and what it was before.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreviousField {
    /// The field's key (`allow_nets`, `nologin`, `reason`).
    pub key: String,
    /// What it was.
    pub before: FieldBefore,
}

/// The version of [`LockRecord`] this build writes.
pub const LOCK_RECORD_VERSION: u32 = 2;

/// What was there before, to restore exactly — without the record line itself (it holds the
/// password hash): only the fields mailmig changed and a digest of the line to detect other
/// changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockRecord {
    /// The format version ([`LOCK_RECORD_VERSION`]).
    pub version: u32,
    /// The user, as the passwd-file record names it.
    pub user: String,
    /// The passwd-file.
    pub passwd_file: Utf8PathBuf,
    /// The method used.
    pub method: LockMethod,
    /// SHA-256 (hex) of the record line before the lock-out.
    pub line_sha256: String,
    /// The fields the lock-out set, with their previous values.
    pub previous: Vec<PreviousField>,
    /// [`LockMethod::Deny`]: the user was in the deny overlay before mailmig added them (the
    /// line stays when they are let back in).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub listed_before: bool,
}

/// What `enable` did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Enabled {
    /// The recorded fields were restored; `exact` when the record line is again byte for byte
    /// what it was before the lock-out (otherwise someone else changed it meanwhile).
    Restored {
        /// The record that was restored.
        record: LockRecord,
        /// The line is back to its digest.
        exact: bool,
    },
    /// The state file was unreadable (written by an older mailmig that was interrupted): the
    /// lock-out it guards never happened, and the record carries no lock-out field. The state
    /// file was removed.
    NeverLockedOut {
        /// The state file removed.
        state_file: Utf8PathBuf,
    },
}

/// Why a lock-out step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The passwd-file edit was refused.
    #[error(transparent)]
    Edit(#[from] PasswdEditError),
    /// Writing a file failed.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// A doveadm command failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Dovecot's configuration cannot be read.
    #[error(transparent)]
    Dovecot(#[from] DovecotError),
    /// Dovecot did not show the change in time.
    #[error(
        "Dovecot did not {what} within {seconds} s (is the passwd-file the one Dovecot reads?)"
    )]
    NotConfirmed {
        /// What was expected.
        what: &'static str,
        /// The bound.
        seconds: u64,
    },
    /// The state file cannot be read or written.
    #[error("state file `{path}`: {reason}")]
    State {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        reason: String,
    },
    /// `allow_nets` would make LMTP reject the user's mail.
    #[error("this Dovecot has `userdb static` without `allow_all_users=yes`: LMTP checks the passdb, so allow_nets= would bounce the user's mail with 550; use --method nologin")]
    AllowNetsBouncesMail,
    /// The reason text cannot be stored.
    #[error("the reason cannot contain control bytes or `%`: `{0}`")]
    BadReason(String),
    /// The user is locked out already, by another method.
    #[error("{user} is already locked out with {method}: `mailmig login enable {user}` first")]
    AlreadyDisabled {
        /// The user.
        user: String,
        /// The method recorded.
        method: LockMethod,
    },
    /// Nothing records a lock-out of the user.
    #[error(
        "no lock-out of {user} is recorded in {state_file} (was the user disabled by mailmig?)"
    )]
    NotDisabled {
        /// The user.
        user: String,
        /// Where the record would be.
        state_file: Utf8PathBuf,
    },
    /// The state file cannot be read, and the record carries lock-out fields.
    #[error("the lock-out state file {state_file} cannot be read ({reason}) and {user}'s record carries `{field}`: check the record (`mailmig passwd show`), remove what mailmig added with `mailmig passwd unset`, then remove {state_file}")]
    StateUnreadable {
        /// The user.
        user: String,
        /// The state file.
        state_file: Utf8PathBuf,
        /// Why it cannot be read.
        reason: String,
        /// A lock-out field present in the record.
        field: String,
    },
    /// The user name cannot be used.
    #[error(transparent)]
    User(#[from] crate::migrate::InputError),
    /// Not exactly one passwd-file passdb.
    #[error("this Dovecot has {count} passwd-file passdbs; give the passwd-file (--passwd-file)")]
    PasswdFiles {
        /// How many.
        count: usize,
    },
    /// The deny lock-out without the overlay in place.
    #[error("the deny lock-out needs Dovecot to read {file} as the first passdb with deny = yes (see `mailmig overlay check`)")]
    NoOverlay {
        /// The deny file.
        file: Utf8PathBuf,
    },
    /// The state directory cannot be used.
    #[error(transparent)]
    StateDir(#[from] crate::state::StateError),
}

impl Dovecot<'_> {
    /// The passwd-file of the one passwd-file passdb ([`LoginError::PasswdFiles`] when there is
    /// none or several).
    pub fn the_passwd_file(&self) -> Result<Utf8PathBuf, LoginError> {
        match self.passwd_files()?.as_slice() {
            [one] => Ok(one.clone()),
            files => Err(LoginError::PasswdFiles { count: files.len() }),
        }
    }

    /// The file a lock-out with `method` edits: the deny overlay for [`LockMethod::Deny`]
    /// ([`LoginError::NoOverlay`] unless Dovecot reads it as measured), else
    /// [`Self::the_passwd_file`].
    pub fn lock_file(&self, method: LockMethod) -> Result<Utf8PathBuf, LoginError> {
        if method != LockMethod::Deny {
            return self.the_passwd_file();
        }
        let files = self.overlay_files();
        match crate::dovecot::overlay::mode(self.configuration()?, &files) {
            crate::dovecot::overlay::OverlayMode::Active => Ok(files.deny),
            _ => Err(LoginError::NoOverlay { file: files.deny }),
        }
    }
}

fn wait_for(
    limit: Duration,
    mut f: impl FnMut() -> Result<bool, RunError>,
) -> Result<bool, RunError> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(true);
        }
        if start.elapsed() > limit {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The state-directory subdirectory of lock-out records.
const STATE_SUB: &str = "login";

/// The key a user's lock-out is recorded under: the name as Dovecot looks it up (lowercased
/// when `auth_username_format` does), validated as a file name.
pub fn state_key(user: &str, options: &PasswdOptions) -> Result<String, LoginError> {
    crate::migrate::validate_user(user)?;
    Ok(if options.lowercase_requests {
        user.to_ascii_lowercase()
    } else {
        user.to_string()
    })
}

fn state_name(key: &str) -> String {
    format!("{key}.json")
}

/// Where a user's lock-out record is (for messages).
pub fn state_file(state: &StateDir, key: &str) -> Utf8PathBuf {
    state.file_path(STATE_SUB, &state_name(key))
}

/// What the state directory holds for a user's lock-out.
#[derive(Debug)]
pub enum StateRead {
    /// No lock-out recorded.
    Absent,
    /// The record.
    Record(LockRecord),
    /// A file that cannot be read as a record (why).
    Unreadable(String),
}

/// Read the lock-out record of the user recorded under `key` (see [`state_key`]).
pub fn read_state(state: &StateDir, key: &str) -> Result<StateRead, LoginError> {
    let Some(bytes) = state.read(STATE_SUB, &state_name(key))? else {
        return Ok(StateRead::Absent);
    };
    Ok(match serde_json::from_slice::<LockRecord>(&bytes) {
        Ok(r) if r.version == LOCK_RECORD_VERSION => StateRead::Record(r),
        Ok(r) => StateRead::Unreadable(format!(
            "format version {} (this mailmig reads {LOCK_RECORD_VERSION})",
            r.version
        )),
        Err(e) if bytes.is_empty() => StateRead::Unreadable(format!("empty file ({e})")),
        Err(e) => StateRead::Unreadable(e.to_string()),
    })
}

/// Whether a lock-out of the user is recorded.
pub fn is_disabled(state: &StateDir, key: &str) -> Result<bool, LoginError> {
    Ok(state.exists(STATE_SUB, &state_name(key))?)
}

/// SHA-256 of a record line, hex.
fn digest(line: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(line)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How to lock a user out.
#[derive(Clone, Copy)]
pub struct DisableRequest<'a> {
    /// The passwd-file to edit.
    pub passwd_file: &'a Utf8Path,
    /// How Dovecot reads it.
    pub options: &'a PasswdOptions,
    /// How uid/gid names resolve.
    pub ids: &'a dyn IdResolver,
    /// The user, as given.
    pub user: &'a str,
    /// The method.
    pub method: LockMethod,
    /// The reason shown with `nologin`.
    pub reason: &'a str,
}

/// Lock a user out: record, edit, confirm, kick. Returns the record written to the state file.
/// Safe to repeat after an interruption: an existing state file for the user (same method) is
/// kept, as it holds the record from before the first attempt; another method is refused.
/// The state is written only once the record was found and the edit computed.
pub fn disable(
    dovecot: &Dovecot<'_>,
    state: &StateDir,
    req: &DisableRequest<'_>,
) -> Result<LockRecord, LoginError> {
    let edit = prepare_disable(dovecot, state, req)?;
    let method = edit.method;
    let tx = FileTransaction::prepare(req.passwd_file)?;
    let mut file = PasswdFile::parse_shared(tx.shared_original(), req.options);
    let record = edit.apply(&mut file, tx.path(), state, req.ids)?;
    tx.commit_document(&file, &CommitOptions::default())?;
    confirm_disabled(dovecot, &record.user, method)?;
    Ok(record)
}

/// A lock-out checked and ready to be applied to the passwd-file's document (see [`disable`];
/// the migration engine applies it within a group commit).
pub(crate) struct LockEdit {
    key: String,
    user: String,
    method: LockMethod,
    reason: String,
    earlier: Option<LockRecord>,
}

/// Everything [`disable`] checks before it edits: the reason, the user's key, an earlier record
/// (kept; another method refused), whether the method would bounce mail.
pub(crate) fn prepare_disable(
    dovecot: &Dovecot<'_>,
    state: &StateDir,
    req: &DisableRequest<'_>,
) -> Result<LockEdit, LoginError> {
    let method = req.method;
    if req.reason.chars().any(char::is_control) || req.reason.contains('%') {
        return Err(LoginError::BadReason(req.reason.to_string()));
    }
    let key = state_key(req.user, req.options)?;
    let earlier = match read_state(state, &key)? {
        StateRead::Record(r) if r.method != method => {
            return Err(LoginError::AlreadyDisabled {
                user: r.user,
                method: r.method,
            })
        }
        StateRead::Record(r) => Some(r),
        // Written whole before the edit, so an unreadable one guards an edit that never
        // happened (an older mailmig's torn write): replaced below.
        StateRead::Absent | StateRead::Unreadable(_) => None,
    };
    if method.refuses_lmtp_passdb_lookups() && dovecot.lmtp_checks_passdb()? {
        return Err(LoginError::AllowNetsBouncesMail);
    }
    Ok(LockEdit {
        key,
        user: req.user.to_string(),
        method,
        reason: req.reason.to_string(),
        earlier,
    })
}

impl LockEdit {
    /// The name Dovecot looks the user up by (what the confirmation asks for).
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Edit the document (`path`: the file it is, for the record) and record the way back in
    /// the state directory before anything is committed. Returns the record of what the
    /// fields were before the first lock-out.
    pub(crate) fn apply(
        self,
        file: &mut PasswdFile,
        path: Utf8PathBuf,
        state: &StateDir,
        ids: &dyn IdResolver,
    ) -> Result<LockRecord, LoginError> {
        let record = match self.method {
            LockMethod::Deny => deny_edit(file, path, &self.key)?,
            _ => field_edit(file, path, &self, ids)?,
        };
        // The way back is recorded before anything changes. A record left by an interrupted
        // run holds the fields as they were before *that* lock-out: keep it (the record read
        // now may already carry the lock-out fields).
        Ok(match self.earlier {
            Some(earlier) => earlier,
            None => {
                let json = serde_json::to_vec_pretty(&record).map_err(|e| LoginError::State {
                    path: state_file(state, &self.key),
                    reason: e.to_string(),
                })?;
                state.write(STATE_SUB, &state_name(&self.key), &json)?;
                record
            }
        })
    }
}

/// After the lock-out is committed: Dovecot refuses the user (the auth cache flushed first),
/// then the user's sessions are kicked and gone.
pub(crate) fn confirm_disabled(
    dovecot: &Dovecot<'_>,
    user: &str,
    method: LockMethod,
) -> Result<(), LoginError> {
    dovecot.flush_auth_cache(user)?;
    let limit = Duration::from_secs(5);
    let seen = match method {
        LockMethod::AllowNets | LockMethod::Deny => {
            wait_for(limit, || Ok(dovecot.auth_lookup(user)?.0 == 67))?
        }
        LockMethod::Nologin => wait_for(limit, || {
            let (code, out) = dovecot.auth_lookup(user)?;
            Ok(code == 0 && out.lines().any(|l| l.trim_start().starts_with("nologin")))
        })?,
    };
    if !seen {
        return Err(LoginError::NotConfirmed {
            what: "refuse the user's logins",
            seconds: limit.as_secs(),
        });
    }
    dovecot.kick(user)?;
    if !wait_for(limit, || Ok(dovecot.sessions(user)?.is_empty()))? {
        return Err(LoginError::NotConfirmed {
            what: "end the user's sessions",
            seconds: limit.as_secs(),
        });
    }
    Ok(())
}

/// The lock-out fields set in the user's record (`allow_nets=`, `nologin`): the record of what
/// they were.
fn field_edit(
    file: &mut PasswdFile,
    path: Utf8PathBuf,
    req: &LockEdit,
    ids: &dyn IdResolver,
) -> Result<LockRecord, LoginError> {
    let reason = req.reason.trim().replace(' ', "_");
    let fields: Vec<(&str, Option<&str>)> = match req.method {
        LockMethod::Nologin => vec![("nologin", Some("y")), ("reason", Some(reason.as_str()))],
        _ => vec![("allow_nets", Some(""))],
    };
    let entry =
        file.lookup(req.user.as_bytes(), ids)
            .ok_or_else(|| PasswdEditError::NoSuchUser {
                user: req.user.to_string(),
            })?;
    let user = String::from_utf8_lossy(entry.user()).into_owned();
    let extra = entry.extra();
    let previous: Vec<PreviousField> = fields
        .iter()
        .map(|(k, _)| PreviousField {
            key: (*k).to_string(),
            before: match extra.iter().find(|f| f.key.as_ref() == k.as_bytes()) {
                None => FieldBefore::Absent,
                Some(f) => match &f.value {
                    None => FieldBefore::Bare,
                    Some(v) => FieldBefore::Value(String::from_utf8_lossy(v).into_owned()),
                },
            },
        })
        .collect();
    let record = LockRecord {
        version: LOCK_RECORD_VERSION,
        user: user.clone(),
        passwd_file: path,
        method: req.method,
        line_sha256: digest(entry.raw()),
        previous,
        listed_before: false,
    };
    for (k, v) in &fields {
        file.set_extra(user.as_bytes(), k.as_bytes(), v.map(str::as_bytes), ids)?;
    }
    Ok(record)
}

/// The user's line added to the deny overlay (the name as Dovecot looks it up); a user listed
/// there already stays listed afterwards.
fn deny_edit(
    file: &mut PasswdFile,
    path: Utf8PathBuf,
    key: &str,
) -> Result<LockRecord, LoginError> {
    let listed = file.records().find(|e| e.user() == key.as_bytes());
    let record = LockRecord {
        version: LOCK_RECORD_VERSION,
        user: key.to_string(),
        passwd_file: path,
        method: LockMethod::Deny,
        line_sha256: digest(listed.as_ref().map_or(b"".as_slice(), |e| e.raw())),
        previous: Vec::new(),
        listed_before: listed.is_some(),
    };
    if !record.listed_before {
        file.add_record(key.as_bytes(), &[])?;
    }
    Ok(record)
}

/// Let a user log in again: restore the recorded fields exactly, confirm, forget the state.
pub fn enable(
    dovecot: &Dovecot<'_>,
    state: &StateDir,
    options: &PasswdOptions,
    ids: &dyn IdResolver,
    user: &str,
    passwd_file: Option<&Utf8Path>,
) -> Result<Enabled, LoginError> {
    let (key, record) = match to_enable(state, options, ids, user, passwd_file)? {
        ToEnable::Locked { key, record } => (key, record),
        ToEnable::Finished(enabled) => return Ok(enabled),
    };
    let tx = FileTransaction::prepare(&record.passwd_file)?;
    let mut file = PasswdFile::parse_shared(tx.shared_original(), options);
    let exact = restore(&mut file, &record, ids)?;
    tx.commit_document(&file, &CommitOptions::default())?;
    confirm_enabled(dovecot, state, &key, &record)?;
    Ok(Enabled::Restored { record, exact })
}

/// What letting a user in again starts from.
pub(crate) enum ToEnable {
    /// A lock-out is recorded (under `key`): restore it.
    Locked {
        /// The state key.
        key: String,
        /// The record.
        record: LockRecord,
    },
    /// Nothing is left to restore (an unreadable record of a lock-out that never happened).
    Finished(Enabled),
}

/// Read the user's lock-out record for [`enable`]: no record is [`LoginError::NotDisabled`].
pub(crate) fn to_enable(
    state: &StateDir,
    options: &PasswdOptions,
    ids: &dyn IdResolver,
    user: &str,
    passwd_file: Option<&Utf8Path>,
) -> Result<ToEnable, LoginError> {
    let key = state_key(user, options)?;
    match read_state(state, &key)? {
        StateRead::Record(record) => Ok(ToEnable::Locked { key, record }),
        StateRead::Absent => Err(LoginError::NotDisabled {
            user: user.to_string(),
            state_file: state_file(state, &key),
        }),
        StateRead::Unreadable(reason) => {
            forget_unreadable(state, &key, user, reason, options, ids, passwd_file)
                .map(ToEnable::Finished)
        }
    }
}

/// Undo the recorded lock-out in the document (the deny line removed unless the admin had
/// written it, or the fields restored); whether the record line is byte for byte what it was.
pub(crate) fn restore(
    file: &mut PasswdFile,
    record: &LockRecord,
    ids: &dyn IdResolver,
) -> Result<bool, LoginError> {
    if record.method == LockMethod::Deny {
        if !record.listed_before {
            file.remove_records(record.user.as_bytes())?;
        }
        return Ok(true);
    }
    restore_fields(file, record, ids)
}

/// After the restore is committed: Dovecot accepts the user again (the auth cache flushed
/// first), then the record is forgotten.
pub(crate) fn confirm_enabled(
    dovecot: &Dovecot<'_>,
    state: &StateDir,
    key: &str,
    record: &LockRecord,
) -> Result<(), LoginError> {
    let user = record.user.as_str();
    dovecot.flush_auth_cache(user)?;
    // With an allow_nets of its own restored (or a deny line of the admin's kept), a lookup
    // may still be denied: then the committed file is the confirmation; otherwise Dovecot must
    // accept the user.
    let own_denial = record.listed_before
        || record
            .previous
            .iter()
            .any(|f| f.key == "allow_nets" && f.before != FieldBefore::Absent);
    let limit = Duration::from_secs(5);
    let ok = own_denial
        || wait_for(limit, || {
            let (code, out) = dovecot.auth_lookup(user)?;
            Ok(code == 0 && !out.lines().any(|l| l.trim_start().starts_with("nologin")))
        })?;
    if !ok {
        return Err(LoginError::NotConfirmed {
            what: "accept the user again",
            seconds: limit.as_secs(),
        });
    }
    state.remove(STATE_SUB, &state_name(key))?;
    Ok(())
}

/// The recorded fields back in the record; whether the line is byte for byte what it was.
fn restore_fields(
    file: &mut PasswdFile,
    record: &LockRecord,
    ids: &dyn IdResolver,
) -> Result<bool, LoginError> {
    let user = record.user.as_bytes();
    for field in &record.previous {
        let key = field.key.as_bytes();
        match &field.before {
            FieldBefore::Absent => {
                file.remove_extra(user, key, ids)?;
            }
            FieldBefore::Bare => file.set_extra(user, key, None, ids)?,
            FieldBefore::Value(v) => file.set_extra(user, key, Some(v.as_bytes()), ids)?,
        }
    }
    Ok(file
        .lookup(user, ids)
        .is_some_and(|e| digest(e.raw()) == record.line_sha256))
}

/// An unreadable state file: the lock-out it guards never happened (it is written whole before
/// the edit) — unless the record carries a lock-out field, which needs the admin.
fn forget_unreadable(
    state: &StateDir,
    key: &str,
    user: &str,
    reason: String,
    options: &PasswdOptions,
    ids: &dyn IdResolver,
    passwd_file: Option<&Utf8Path>,
) -> Result<Enabled, LoginError> {
    let path = state_file(state, key);
    if let Some(file) = passwd_file {
        let bytes = crate::safe_fs::read_regular(file).map_err(|e| LoginError::State {
            path: file.to_owned(),
            reason: crate::display_chain(&e),
        })?;
        let parsed = PasswdFile::parse(bytes, options);
        if let Some(entry) = parsed.lookup(user.as_bytes(), ids) {
            let lock_field = entry.extra().iter().find_map(|f| {
                let k = String::from_utf8_lossy(&f.key).into_owned();
                let locks = (k == "allow_nets" && f.value.as_deref() == Some(b"".as_slice()))
                    || k == "nologin";
                locks.then_some(k)
            });
            if let Some(field) = lock_field {
                return Err(LoginError::StateUnreadable {
                    user: user.to_string(),
                    state_file: path,
                    reason,
                    field,
                });
            }
        }
    }
    state.remove(STATE_SUB, &state_name(key))?;
    Ok(Enabled::NeverLockedOut { state_file: path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Argv, Output, Runner};

    /// A Dovecot that reads the passwd-file like the real one for the answers `disable` and
    /// `enable` wait for: a record with `allow_nets=` (empty) is refused (67), `nologin` shows.
    struct FakeDovecot(Utf8PathBuf);

    impl Runner for FakeDovecot {
        fn run(&self, argv: &Argv, _: Option<&[u8]>) -> Result<Output, RunError> {
            let args: Vec<String> = argv
                .0
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let ok = |stdout: &str, code: i32| {
                Ok(Output {
                    code: Some(code),
                    stdout: stdout.as_bytes().to_vec(),
                    stderr: Vec::new(),
                })
            };
            match args
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["doveconf", ..] => ok("# 2.3.19.1 (9b53102964): /c\n", 0),
                ["doveadm", _, _, "auth", "lookup", user] => {
                    let file = PasswdFile::parse(
                        fs_err::read(&self.0).expect("read"),
                        &PasswdOptions::default(),
                    );
                    let Some(e) = file.lookup(user.as_bytes(), &crate::dovecot::NumericIds) else {
                        return ok("", 67);
                    };
                    let extra = e.extra();
                    let has = |k: &str, empty: bool| {
                        extra.iter().any(|f| {
                            f.key.as_ref() == k.as_bytes()
                                && (!empty || f.value.as_deref() == Some(b"".as_slice()))
                        })
                    };
                    if has("allow_nets", true) {
                        ok("", 67)
                    } else if has("nologin", false) {
                        ok("  nologin  : y\n", 0)
                    } else {
                        ok("  user  : x\n", 0)
                    }
                }
                ["doveadm", _, _, "kick", ..] => ok("", 68),
                ["doveadm", ..] => ok("username\tproto\n", 0),
                _ => ok("", 1),
            }
        }
    }

    const PASSWD: &str = "alice@x.test:{SHA512-CRYPT}$6$secret:1000:1000::/h/a::\nbob@x.test:{PLAIN}bobpw:1000:1000::/h/b::\n";

    fn setup() -> (tempfile::TempDir, Utf8PathBuf, StateDir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Utf8PathBuf::try_from(tmp.path().to_path_buf()).expect("utf8");
        let users = dir.join("users");
        fs_err::write(&users, PASSWD).expect("write");
        let state = StateDir::open(&dir.join("state")).expect("state");
        (tmp, users, state)
    }

    fn request<'a>(users: &'a Utf8Path, user: &'a str, method: LockMethod) -> DisableRequest<'a> {
        DisableRequest {
            passwd_file: users,
            options: &OPTIONS,
            ids: &crate::dovecot::NumericIds,
            user,
            method,
            reason: "maintenance",
        }
    }

    static OPTIONS: PasswdOptions = PasswdOptions {
        userdb: true,
        single_userdb: true,
        legacy_mail_field: true,
        lowercase_requests: true,
    };

    /// Regression (reproduced): `login disable ALICE@EXAMPLE.TEST` exited 67 but left a state
    /// file with alice's line that `login enable` could not clear. The record Dovecot uses is
    /// found first; the state is keyed and the edit made under its name.
    #[test]
    fn an_uppercase_request_locks_out_the_record_dovecot_uses() {
        let (_t, users, state) = setup();
        let fake = FakeDovecot(users.clone());
        let d = Dovecot::new("/x".into(), &fake);
        let r = disable(
            &d,
            &state,
            &request(&users, "ALICE@X.TEST", LockMethod::AllowNets),
        )
        .expect("disabled");
        assert_eq!(r.user, "alice@x.test");
        let json =
            fs_err::read_to_string(state.file_path("login", "alice@x.test.json")).expect("state");
        assert!(
            !json.contains("secret") && !json.contains("bobpw"),
            "{json}"
        );
        let e = enable(
            &d,
            &state,
            &OPTIONS,
            &crate::dovecot::NumericIds,
            "Alice@X.test",
            None,
        )
        .expect("enabled");
        assert!(matches!(e, Enabled::Restored { exact: true, .. }), "{e:?}");
        assert_eq!(fs_err::read_to_string(&users).expect("read"), PASSWD);
        assert!(state.names("login").expect("names").is_empty());
        // A user Dovecot does not know leaves nothing behind.
        assert!(matches!(
            disable(
                &d,
                &state,
                &request(&users, "nobody@x.test", LockMethod::AllowNets)
            ),
            Err(LoginError::Edit(PasswdEditError::NoSuchUser { .. }))
        ));
        assert!(state.names("login").expect("names").is_empty());
    }

    /// Regression (reproduced): `login disable --method nologin` on a user already disabled
    /// with allow_nets overwrote the saved record, and `login enable` could not restore it.
    #[test]
    fn a_second_lock_out_with_another_method_is_refused() {
        let (_t, users, state) = setup();
        let fake = FakeDovecot(users.clone());
        let d = Dovecot::new("/x".into(), &fake);
        disable(
            &d,
            &state,
            &request(&users, "alice@x.test", LockMethod::AllowNets),
        )
        .expect("disabled");
        let saved = state.read("login", "alice@x.test.json").expect("read");
        assert!(matches!(
            disable(
                &d,
                &state,
                &request(&users, "alice@x.test", LockMethod::Nologin)
            ),
            Err(LoginError::AlreadyDisabled { .. })
        ));
        assert_eq!(
            state.read("login", "alice@x.test.json").expect("read"),
            saved
        );
        // The same method again (an interrupted run resumed) keeps the first record.
        disable(
            &d,
            &state,
            &request(&users, "alice@x.test", LockMethod::AllowNets),
        )
        .expect("again");
        enable(
            &d,
            &state,
            &OPTIONS,
            &crate::dovecot::NumericIds,
            "alice@x.test",
            None,
        )
        .expect("enabled");
        assert_eq!(fs_err::read_to_string(&users).expect("read"), PASSWD);
    }

    /// Regression (reproduced): ENOSPC while the state file was written left a 0-byte file and
    /// every later `enable`/`rollback`/`resume` failed. An unreadable state file guards an edit
    /// that did not happen: it is cleared — unless the record carries a lock-out field.
    #[test]
    fn an_unreadable_state_file_means_the_lock_out_never_happened() {
        let (_t, users, state) = setup();
        let fake = FakeDovecot(users.clone());
        let d = Dovecot::new("/x".into(), &fake);
        let ids = crate::dovecot::NumericIds;
        state
            .write("login", "alice@x.test.json", b"")
            .expect("write");
        let e = enable(&d, &state, &OPTIONS, &ids, "alice@x.test", Some(&users)).expect("ok");
        assert!(matches!(e, Enabled::NeverLockedOut { .. }), "{e:?}");
        assert!(!is_disabled(&state, "alice@x.test").expect("read"));
        // With the lock-out field in the record, the admin must look.
        let locked = PASSWD.replace("/h/a::", "/h/a::allow_nets=");
        fs_err::write(&users, &locked).expect("write");
        state
            .write("login", "alice@x.test.json", b"{")
            .expect("write");
        assert!(matches!(
            enable(&d, &state, &OPTIONS, &ids, "alice@x.test", Some(&users)),
            Err(LoginError::StateUnreadable { .. })
        ));
        // `disable` over an unreadable record takes a fresh one.
        fs_err::write(&users, PASSWD).expect("write");
        disable(
            &d,
            &state,
            &request(&users, "alice@x.test", LockMethod::Nologin),
        )
        .expect("disabled");
        enable(&d, &state, &OPTIONS, &ids, "alice@x.test", Some(&users)).expect("enabled");
        assert_eq!(fs_err::read_to_string(&users).expect("read"), PASSWD);
    }
}
