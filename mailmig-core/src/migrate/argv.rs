//! The commands a run sends to Dovecot: built here only, so that the plan shows exactly what
//! the engine runs.

use camino::Utf8Path;

use super::verify::STATUS_FIELDS;
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
/// `["sync", "-1", "-R"]`).
pub fn dsync(config: &Utf8Path, verb: &[&str], user: &str, dest: &str) -> Argv {
    let mut args = verb.to_vec();
    args.extend(["-l", DSYNC_LOCK, "-u", user, dest]);
    doveadm(config, &args)
}

/// `doveadm -c CONFIG -o mail_location=LOCATION ARGS...`: a command that reads LOCATION instead
/// of the user's own. The one place the location override is spelled.
fn doveadm_at(config: &Utf8Path, location: &str, args: &[&str]) -> Argv {
    let loc = format!("mail_location={location}");
    let mut all = vec!["-o", loc.as_str()];
    all.extend_from_slice(args);
    doveadm(config, &all)
}

/// `doveadm -o mail_location=LOCATION -f tab mailbox status -u USER FIELDS '*'`.
pub fn mailbox_status(config: &Utf8Path, user: &str, location: &str) -> Argv {
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

/// `doveadm -o mail_location=LOCATION -f tab fetch -u USER 'mailbox guid' ALL`.
pub fn message_guids(config: &Utf8Path, user: &str, location: &str) -> Argv {
    let args = ["-f", "tab", "fetch", "-u", user, "mailbox guid", "ALL"];
    doveadm_at(config, location, &args)
}

/// `doveadm -o mail_location=LOCATION mailbox path -u USER INBOX`: where Dovecot really reads
/// the location's INBOX (proves a read of LOCATION does not read another location).
pub fn inbox_path(config: &Utf8Path, user: &str, location: &str) -> Argv {
    doveadm_at(config, location, &["mailbox", "path", "-u", user, "INBOX"])
}

/// `doveadm user -f FIELD USER`.
pub fn user_field(config: &Utf8Path, user: &str, field: &str) -> Argv {
    doveadm(config, &["user", "-f", field, user])
}
