//! What a migration is asked to do ([`MigrationOptions`]) and what a run records to continue
//! after a crash ([`RunOptions`], in its journal header).

use std::time::Duration;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use super::Strategy;
use crate::dovecot::DovecotVersion;
use crate::hold::HoldAction;
use crate::login::LockMethod;
use crate::postfix::MapType;

/// How to migrate: the choices an administrator makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationOptions {
    /// Hold mail and lock logins out during the final sync, or Dovecot's hold-free conversion.
    pub strategy: Strategy,
    /// Copy the bulk before the hold (always for the live strategy).
    pub presync: bool,
    /// How logins are refused (hold strategy).
    pub lock: LockMethod,
    /// HOLD or DEFER at Postfix.
    pub hold_action: HoldAction,
    /// The reason recorded in the access map and shown by `nologin`.
    pub reason: String,
    /// The longest the user's mail may stay held; a step still running then is killed and the
    /// run rolled back (past the start of the release, completed).
    pub max_hold: Duration,
    /// What must stay free on the target's file system after a user's copy: a user that does
    /// not fit is refused, and a batch starts no one after them.
    pub min_free: super::space::MinFree,
}

impl Default for MigrationOptions {
    fn default() -> Self {
        Self {
            strategy: Strategy::Hold,
            presync: true,
            lock: LockMethod::AllowNets,
            hold_action: HoldAction::Hold,
            reason: "Mailbox maintenance".into(),
            max_hold: Duration::from_secs(15 * 60),
            min_free: super::space::MinFree::default(),
        }
    }
}

/// Everything a run needs to continue after a crash, stored in its journal header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Dovecot's configuration file.
    pub dovecot_config: Utf8PathBuf,
    /// Postfix's configuration directory (hold strategy).
    pub postfix_config: Option<Utf8PathBuf>,
    /// The access map holds are written to (hold strategy).
    pub access_map: Option<Utf8PathBuf>,
    /// Its type.
    pub map_type: Option<MapType>,
    /// The passwd-file whose record the switch edits: the primary one, or the overlay's
    /// location file.
    pub passwd_file: Utf8PathBuf,
    /// How logins are refused.
    pub lock: LockMethod,
    /// HOLD or DEFER.
    pub hold_action: HoldAction,
    /// The reason text.
    pub reason: String,
    /// Whether a presync runs.
    pub presync: bool,
    /// The user's home (for `~/` locations).
    pub home: String,
    /// Postfix's `recipient_delimiter`.
    pub delimiters: String,
    /// Every address to hold.
    pub hold_keys: Vec<String>,
    /// `smtputf8_enable` when the run started.
    pub smtputf8: bool,
    /// Whether Dovecot's auth cache is on (edits flush it).
    pub auth_cache: bool,
    /// The longest the user's mail may stay held, in seconds.
    pub max_hold_secs: u64,
    /// The Dovecot release the run was planned for: how the location is spelled in the
    /// userdb fields and doveadm overrides (journals written before 2.4 support: 2.3).
    #[serde(default)]
    pub dovecot_version: DovecotVersion,
    /// The quota backend (`count`, `dict`, ...) when quota is on: usage is recalculated for the
    /// new location after the catch-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// POP3 is served: the verification compares stored POP3 UIDLs too.
    #[serde(default)]
    pub pop3: bool,
    /// The global `mail_driver` (2.4) or the format of the global `mail_location` (2.3): what
    /// a userdb answer without a location reads as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_driver: Option<String>,
    /// What must stay free on the target's file system (journals before the disk-space guard:
    /// the default).
    #[serde(default)]
    pub min_free: super::space::MinFree,
    /// The overlay files when Dovecot reads them: the lock-out is a line in the deny file and
    /// the switch a record in the location file ([`Self::passwd_file`] is then the location
    /// file); the primary userdb is not touched. `None`: the passwd-file is edited in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<crate::dovecot::overlay::OverlayFiles>,
}

impl RunOptions {
    /// The file the lock-out edits: the deny overlay, or the passwd-file.
    pub fn lock_file(&self) -> &camino::Utf8Path {
        match &self.overlay {
            Some(o) if self.lock == LockMethod::Deny => &o.deny,
            _ => &self.passwd_file,
        }
    }
}
