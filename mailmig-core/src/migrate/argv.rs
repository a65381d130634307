//! The commands a run sends to Dovecot: built here only, so that the plan shows exactly what
//! the engine runs.

use camino::Utf8Path;

use super::dialect::override_args;
use super::verify::{fetch_fields, STATUS_FIELDS};
use super::Location;
use crate::dovecot::DovecotVersion;
use crate::process::Argv;

/// `doveadm sync|backup -l SECONDS`: the per-user dsync lock, so that a sync left running by a
/// killed run and the resumed run's sync never work on one user at once.
pub const DSYNC_LOCK: &str = "30";

/// `doveadm -c CONFIG ARGS...`.
pub fn doveadm(config: &Utf8Path, args: &[&str]) -> Argv {
    let mut v = vec!["doveadm", "-c", config.as_str()];
    v.extend_from_slice(args);
    Argv::new(v)
}

/// `doveadm sync|backup [FLAGS] -l 30 -u USER DEST` (`verb` is `["backup"]`, `["sync"]` or
/// `["sync", "-1", "-R"]`). The destination is `FORMAT:PATH` on 2.3 and 2.4 alike.
pub fn dsync(config: &Utf8Path, verb: &[&str], user: &str, dest: &Location) -> Argv {
    let mut args = verb.to_vec();
    args.extend(["-l", DSYNC_LOCK, "-u", user, dest.as_str()]);
    doveadm(config, &args)
}

/// Where a command reads: the Dovecot release (how the override is spelled) and the location.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// The release.
    pub version: DovecotVersion,
    /// The location read instead of the user's own.
    pub location: &'a Location,
}

/// `doveadm -c CONFIG -o ... ARGS...`: a command that reads a location instead of the user's
/// own (2.3 `-o mail_location=`; 2.4 `-o mail_driver= -o mail_path=`).
fn doveadm_at(config: &Utf8Path, at: At<'_>, args: &[&str]) -> Argv {
    let overrides = override_args(at.version, at.location);
    let mut all: Vec<&str> = overrides.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    doveadm(config, &all)
}

/// `doveadm -o LOCATION -f tab mailbox status -u USER FIELDS '*'`.
pub fn mailbox_status(config: &Utf8Path, user: &str, location: At<'_>) -> Argv {
    let args = [
        "-f",
        "tab",
        "mailbox",
        "status",
        "-u",
        user,
        STATUS_FIELDS,
        "*",
    ];
    doveadm_at(config, location, &args)
}

/// `doveadm -o LOCATION -f tab fetch -u USER 'mailbox guid uid flags [pop3.uidl]' ALL`
/// (`pop3.uidl` when POP3 is served).
pub fn message_guids(config: &Utf8Path, user: &str, location: At<'_>, pop3: bool) -> Argv {
    let args = ["-f", "tab", "fetch", "-u", user, fetch_fields(pop3), "ALL"];
    doveadm_at(config, location, &args)
}

/// `doveadm -o LOCATION mailbox path -u USER INBOX`: where Dovecot really reads the location's
/// INBOX (proves a read of LOCATION does not read another location).
pub fn inbox_path(config: &Utf8Path, user: &str, location: At<'_>) -> Argv {
    doveadm_at(config, location, &["mailbox", "path", "-u", user, "INBOX"])
}

/// `doveadm -o LOCATION mailbox list -s -u USER`: the subscribed mailboxes.
pub fn subscriptions(config: &Utf8Path, user: &str, location: At<'_>) -> Argv {
    doveadm_at(config, location, &["mailbox", "list", "-s", "-u", user])
}

/// `doveadm quota recalc -u USER`: usage recounted from the user's (new) location.
pub fn quota_recalc(config: &Utf8Path, user: &str) -> Argv {
    doveadm(config, &["quota", "recalc", "-u", user])
}

/// `doveadm -f tab quota get -u USER`.
pub fn quota_get(config: &Utf8Path, user: &str) -> Argv {
    doveadm(config, &["-f", "tab", "quota", "get", "-u", user])
}

/// `doveadm user -e TEMPLATE USER`: the template with the user's variables expanded, as
/// Dovecot expands them (2.3 `%d/%n`, 2.4 `%{user | domain}`).
pub fn expand(config: &Utf8Path, user: &str, template: &str) -> Argv {
    doveadm(config, &["user", "-e", template, user])
}

/// `doveadm user -f FIELD USER`.
pub fn user_field(config: &Utf8Path, user: &str, field: &str) -> Argv {
    doveadm(config, &["user", "-f", field, user])
}
