//! The sections of the man pages clap does not know: EXIT STATUS, FILES, EXAMPLES, SEE ALSO.

use roff::{bold, italic, roman, Roff};

use super::man::{page_name, SECTION};
use crate::exit;

/// Every exit code with what it means (the contract of docs/cli.md); a test checks that each
/// constant of `exit.rs` is here.
const EXIT_STATUS: &[(u8, &str)] = &[
    (exit::OK, "Success."),
    (
        exit::NOT_FOUND,
        "Not found: map get found no such key, hold remove found no hold, hold check found the hold not effective, status found a run interrupted or needing the admin.",
    ),
    (exit::USAGE, "Bad command line."),
    (
        exit::DATAERR,
        "Bad input data: a finding of map check or passwd check, a record or configuration that cannot be used, a refused migration.",
    ),
    (
        exit::NOINPUT,
        "An input file does not exist, cannot be opened, or is not a regular file (a FIFO, device or directory is refused before anything is read).",
    ),
    (exit::NOUSER, "The user has no record Dovecot would use."),
    (
        exit::UNAVAILABLE,
        "An external command failed (postconf, postmap, postsuper, doveconf, doveadm).",
    ),
    (
        exit::SOFTWARE,
        "A migration step failed and could not be undone automatically: the admin must act (see mailmig status).",
    ),
    (exit::CANTCREAT, "A file could not be created."),
    (exit::IOERR, "Reading or writing failed."),
    (
        exit::TEMPFAIL,
        "Try again: a file changed or was locked meanwhile, a migration step failed and was rolled back, or a batch stopped before starting some users.",
    ),
    (
        exit::NOPERM,
        "Permission refused: the state directory is not private to the invoking user, or a path on the way is a link someone else owns.",
    ),
];

/// The files mailmig keeps (see docs/migration.md, "The journal").
const FILES: &[(&str, &str)] = &[
    (
        "/var/lib/mailmig",
        "The state directory (--state-dir): what mailmig did, to resume or undo it. Created 0700, files 0600; refused (exit 77) when others could write it. It never holds a password hash.",
    ),
    (
        "/var/lib/mailmig/runs/RUN/journal.jsonl",
        "The journal of a migration run: its header (plan and options), then one record per step started, done, failed or undone.",
    ),
    (
        "/var/lib/mailmig/users/USER.run, USER.lock",
        "The unfinished run of a user, and the lock held while a process works on the user.",
    ),
    (
        "/var/lib/mailmig/login/USER.json",
        "What login disable (or a migration's lock-out) changed in the passwd-file record, to restore it exactly.",
    ),
    (
        "/var/lib/mailmig/queue/USER.json, queue/handover/ID",
        "The queue IDs held for a user, and held messages another user's run still needs held.",
    ),
    (
        "/var/lib/mailmig/stop",
        "When it exists, a batch migration starts no new user.",
    ),
    (
        "/etc/postfix",
        "The Postfix configuration directory read when --postfix-config is not given (as postconf(1) does).",
    ),
    (
        "/etc/dovecot/dovecot.conf",
        "The Dovecot configuration read when --dovecot-config is not given (as doveconf(1) does).",
    ),
];

/// Examples per command path (a command without any has no EXAMPLES section).
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "",
        &[
            (
                "What mailmig reads from the server, and where each fact comes from:",
                "mailmig config",
            ),
            (
                "The plan for one user, then the migration (exit 0 done, 75 rolled back, 70 admin needed):",
                "mailmig plan alice@example.com --to mdbox:~/mdbox\nmailmig migrate alice@example.com --to mdbox:~/mdbox",
            ),
            (
                "After a crash: where runs stand, then continue or undo them:",
                "mailmig status\nmailmig resume\nmailmig rollback",
            ),
        ],
    ),
    (
        "migrate",
        &[
            (
                "One user, holding mail at Postfix during the final sync:",
                "mailmig migrate alice@example.com --to mdbox:~/mdbox",
            ),
            (
                "A batch, four users at a time, stopping after two failures:",
                "mailmig migrate --users-from users.txt --jobs 4 --max-failures 2 --to mdbox:~/mdbox",
            ),
        ],
    ),
    (
        "plan",
        &[(
            "The steps, commands and diffs of a migration, changing nothing:",
            "mailmig plan alice@example.com --to mdbox:~/mdbox",
        )],
    ),
    (
        "map check",
        &[(
            "What postmap would warn about in a virtual(5) map:",
            "mailmig map check --kind virtual /etc/postfix/virtual",
        )],
    ),
    (
        "map set",
        &[(
            "Add or replace an alias, showing the change first:",
            "mailmig map set --dry-run /etc/postfix/virtual sales@example.com alice@example.com\nmailmig map set --backup /etc/postfix/virtual sales@example.com alice@example.com",
        )],
    ),
    (
        "aliases",
        &[(
            "Every address whose mail reaches alice through virtual_alias_maps:",
            "mailmig aliases alice@example.com",
        )],
    ),
    (
        "passwd check",
        &[(
            "What Dovecot would log or misread in a passwd-file:",
            "mailmig passwd check /etc/dovecot/users",
        )],
    ),
    (
        "hold add",
        &[(
            "Hold alice's mail at Postfix, then release the hold:",
            "mailmig hold add alice@example.com\nmailmig hold remove alice@example.com",
        )],
    ),
];

/// The sections after OPTIONS (and SUBCOMMANDS) of the page of `path`, whose visible
/// subcommands are `children`.
pub(crate) fn render(path: &[String], children: &[String]) -> Roff {
    let mut roff = Roff::new();
    exit_status(&mut roff, path.is_empty());
    if path.is_empty() {
        files(&mut roff);
    }
    examples(&mut roff, &path.join(" "));
    see_also(&mut roff, path, children);
    roff
}

fn exit_status(roff: &mut Roff, full: bool) {
    roff.control("SH", ["EXIT STATUS"]);
    if !full {
        roff.text([
            roman("As in the sysexits(3) convention; the codes are listed in "),
            bold("mailmig"),
            roman("(8)."),
        ]);
        return;
    }
    for (code, meaning) in EXIT_STATUS {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*meaning)]);
    }
}

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    for (path, what) in FILES {
        roff.control("TP", []);
        roff.text([italic(*path)]);
        roff.text([roman(*what)]);
    }
}

fn examples(roff: &mut Roff, key: &str) {
    let Some((_, list)) = EXAMPLES.iter().find(|(k, _)| *k == key) else {
        return;
    };
    roff.control("SH", ["EXAMPLES"]);
    for (what, commands) in *list {
        roff.control("PP", []);
        roff.text([roman(*what)]);
        roff.control("PP", []);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        for line in commands.lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
        roff.control("RE", []);
    }
}

/// The parent's page, the children's pages, and the daemons' tools (on mailmig(8)).
fn see_also(roff: &mut Roff, path: &[String], children: &[String]) {
    let mut refs: Vec<String> = Vec::new();
    if let Some((_, parent)) = path.split_last() {
        refs.push(format!("{}({SECTION})", page_name(parent)));
    }
    for child in children {
        let mut child_path = path.to_vec();
        child_path.push(child.clone());
        refs.push(format!("{}({SECTION})", page_name(&child_path)));
    }
    if path.is_empty() {
        for tool in [
            "postconf(1)",
            "postmap(1)",
            "postsuper(1)",
            "postqueue(1)",
            "access(5)",
            "virtual(5)",
            "doveconf(1)",
            "doveadm(1)",
        ] {
            refs.push(tool.to_owned());
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(refs.join(", "))]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `pub(crate) const NAME: u8 = N;` of exit.rs is described, once.
    #[test]
    fn every_exit_code_is_described() {
        let source = include_str!("../exit.rs");
        let codes: Vec<u8> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub(crate) const "))
            .filter_map(|l| l.split_once(": u8 = "))
            .map(|(_, v)| v.trim_end_matches(';').parse().expect("a number"))
            .collect();
        assert!(codes.len() >= 12, "{codes:?}");
        for code in &codes {
            let n = EXIT_STATUS.iter().filter(|(c, _)| c == code).count();
            assert_eq!(n, 1, "exit code {code} described {n} times");
        }
        assert_eq!(EXIT_STATUS.len(), codes.len());
    }

    #[test]
    fn examples_name_commands_that_exist() {
        use crate::args::Cli;
        use clap::CommandFactory;
        let cmd = Cli::command();
        for (key, _) in EXAMPLES {
            let mut at = &cmd;
            for name in key.split_whitespace() {
                at = at
                    .find_subcommand(name)
                    .unwrap_or_else(|| panic!("no command `{key}`"));
            }
        }
    }
}
