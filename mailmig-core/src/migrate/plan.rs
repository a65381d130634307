//! The plan of one user's migration, built from the preflight's facts and the files as they
//! are now: pure (the files are given), so that its rendering is snapshot-tested and `plan`
//! shows exactly what `migrate` does.

use camino::Utf8Path;

use super::argv::{self, doveadm};
use super::dialect;
use super::error::MigrateError;
use super::server::UserFacts;
use super::{Plan, PlannedEdit, PlannedStep, RunOptions, StepKind, Strategy};
use crate::dovecot::mask::mask_line;
use crate::dovecot::{IdResolver, PasswdEditError, PasswdFile};
use crate::hold::{apply_hold, plan_hold_keys};
use crate::login::LockMethod;
use crate::postfix::Table;
use crate::process::Argv;

/// What the preflight checks and the plan read, as it is now: read and parsed once for all
/// users.
pub struct PlanInputs<'a> {
    /// The access map (hold strategy).
    pub access: Option<&'a Table>,
    /// The passwd-file the switch edits (the overlay's location file when it is active).
    pub passwd: &'a PasswdFile,
    /// The deny overlay, when the overlay is active.
    pub deny: Option<&'a PasswdFile>,
    /// System user and group names.
    pub ids: &'a dyn IdResolver,
}

/// The unified diff (one line of context) of a change confined to the lines `old_mid` →
/// `new_mid`, given the context lines around them (`before`, `after`) and the line number of the
/// window's first line: the diff is computed on the window only, and its hunk headers carry the
/// file's line numbers. For one line replaced by a line the file does not have (a passwd-file
/// record edit) that is the diff of the whole files, at the cost of three lines instead of two
/// copies of the file.
fn window_diff(
    path: &Utf8Path,
    before: &[u8],
    (old_mid, new_mid): (&[u8], &[u8]),
    after: &[u8],
    first_line: usize,
) -> PlannedEdit {
    let old = String::from_utf8_lossy(&[before, old_mid, after].concat()).into_owned();
    let new = String::from_utf8_lossy(&[before, new_mid, after].concat()).into_owned();
    let name = path.as_str().trim_start_matches('/');
    let text = similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(1)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string();
    PlannedEdit {
        path: path.to_owned(),
        diff: shift_hunks(&text, first_line.saturating_sub(1)),
    }
}

/// Add `by` to the line numbers of every `@@ -A[,B] +C[,D] @@` header.
fn shift_hunks(diff: &str, by: usize) -> String {
    let shift = |range: &str| -> Option<String> {
        let (start, len) = match range.split_once(',') {
            Some((a, l)) => (a, Some(l)),
            None => (range, None),
        };
        let start = start.parse::<usize>().ok()? + by;
        Some(match len {
            Some(l) => format!("{start},{l}"),
            None => start.to_string(),
        })
    };
    diff.split_inclusive('\n')
        .map(|line| {
            let header = line.strip_prefix("@@ -").and_then(|rest| {
                let (old, rest) = rest.split_once(" +")?;
                let (new, tail) = rest.split_once(" @@")?;
                Some(format!("@@ -{} +{} @@{tail}", shift(old)?, shift(new)?))
            });
            header.unwrap_or_else(|| line.to_string())
        })
        .collect()
}

/// The diff of two versions of a (small) file: the access map.
fn diff(path: &Utf8Path, old: &[u8], new: &[u8]) -> PlannedEdit {
    window_diff(path, b"", (old, new), b"", 1)
}

fn words(a: Argv) -> Vec<String> {
    a.0.iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// The record edits a run makes, as diffs: the lock-out, the switch after it, the release of
/// the lock-out after both (hold strategy), and the switch alone (live strategy).
struct RecordEdits {
    lock: PlannedEdit,
    switch: PlannedEdit,
    unlock: PlannedEdit,
    live_switch: PlannedEdit,
}

/// The line `number` (1-based) of `f`, or nothing.
fn line_at(f: &PasswdFile, number: usize) -> Vec<u8> {
    f.lines()
        .nth(number.wrapping_sub(1))
        .map_or(Vec::new(), |l| l.raw().to_vec())
}

/// In place: every edit touches the user's record line only: each version of that line is read
/// from one copy of the parsed file, edited in turn, and diffed on its own, the password masked
/// (plans are recorded in the journal, which must hold no password hash and no other user's
/// line).
fn in_place_edits(
    opts: &RunOptions,
    user: &str,
    switch_fields: &[(&str, Option<&str>)],
    files: &PlanInputs<'_>,
) -> Result<RecordEdits, MigrateError> {
    let ids = files.ids;
    let edit_failed = |source: PasswdEditError| MigrateError::Edit {
        passwd_file: opts.passwd_file.clone(),
        source,
    };
    let number = files
        .passwd
        .lookup(user.as_bytes(), ids)
        .map(|e| e.line())
        .ok_or_else(|| {
            edit_failed(PasswdEditError::NoSuchUser {
                user: user.to_string(),
            })
        })?;
    let original_line = line_at(files.passwd, number);
    // The edits of the user's record need the record alone: a one-line document of it (the
    // effective record of the whole file, so the one the edits would change there), never a copy
    // of the whole file (180 MB per user on a server with a million users).
    let alone = || PasswdFile::parse(original_line.clone(), files.passwd.options());
    let passwd_diff = |old: &[u8], new: &[u8]| {
        window_diff(
            &opts.passwd_file,
            b"",
            (&mask_line(old), &mask_line(new)),
            b"",
            number,
        )
    };
    let reason = opts.reason.replace(' ', "_");
    let lock_fields: Vec<(&str, Option<&str>)> = match opts.lock {
        LockMethod::Nologin => vec![("nologin", Some("y")), ("reason", Some(reason.as_str()))],
        _ => vec![("allow_nets", Some(""))],
    };
    let set =
        |f: &mut PasswdFile, fields: &[(&str, Option<&str>)]| -> Result<Vec<u8>, MigrateError> {
            for (k, v) in fields {
                f.set_extra(user.as_bytes(), k.as_bytes(), v.map(str::as_bytes), ids)
                    .map_err(edit_failed)?;
            }
            Ok(line_at(f, 1))
        };
    let mut edited = alone();
    let locked = set(&mut edited, &lock_fields)?;
    let locked_switched = set(&mut edited, switch_fields)?;
    for (k, _) in &lock_fields {
        edited
            .remove_extra(user.as_bytes(), k.as_bytes(), ids)
            .map_err(edit_failed)?;
    }
    let switched_unlocked = line_at(&edited, 1);
    let switched = set(&mut alone(), switch_fields)?;
    Ok(RecordEdits {
        lock: passwd_diff(&original_line, &locked),
        switch: passwd_diff(&locked, &locked_switched),
        unlock: passwd_diff(&locked_switched, &switched_unlocked),
        live_switch: passwd_diff(&original_line, &switched),
    })
}

/// How one line of a small overlay file changes: `old` at line `number` becomes `new` (an empty
/// `old` past the end: appended; an empty `new`: removed), with the line before as context.
fn overlay_diff(
    path: &Utf8Path,
    f: &PasswdFile,
    number: usize,
    old: &[u8],
    new: &[u8],
) -> PlannedEdit {
    // Line 0 is no line: the first line has no context before it.
    let mut before = line_at(f, number.saturating_sub(1));
    if !before.is_empty() && !before.ends_with(b"\n") {
        before.push(b'\n');
    }
    let first = if before.is_empty() {
        number
    } else {
        number - 1
    };
    window_diff(path, &before, (old, new), b"", first.max(1))
}

/// Through the overlay: a line for the user appended to the deny file (the lock-out) and
/// removed again (the release); the user's record in the location file created, or its location
/// fields set (the switch). The primary userdb is not touched.
fn overlay_edits(
    opts: &RunOptions,
    overlay: &crate::dovecot::overlay::OverlayFiles,
    user: &str,
    switch_fields: &[(&str, Option<&str>)],
    files: &PlanInputs<'_>,
) -> Result<RecordEdits, MigrateError> {
    let ids = files.ids;
    let failed = |path: &Utf8Path| {
        let path = path.to_owned();
        move |source: PasswdEditError| MigrateError::Edit {
            passwd_file: path.clone(),
            source,
        }
    };
    // The name as Dovecot looks it up (the preflight validated it).
    let key = crate::login::state_key(user, &crate::dovecot::PasswdOptions::default())
        .unwrap_or_else(|_| user.to_ascii_lowercase());
    let empty = PasswdFile::parse(Vec::new(), &crate::dovecot::PasswdOptions::default());
    let deny = files.deny.unwrap_or(&empty);
    let (lock, unlock) = match deny.records().find(|e| e.user() == key.as_bytes()) {
        // Listed by the admin already: it stays.
        Some(_) => {
            let unchanged = window_diff(&overlay.deny, b"", (b"", b""), b"", 1);
            (unchanged.clone(), unchanged)
        }
        None => {
            let line = format!("{key}\n").into_bytes();
            let number = deny.lines().count() + 1;
            (
                overlay_diff(&overlay.deny, deny, number, b"", &line),
                overlay_diff(&overlay.deny, deny, number, &line, b""),
            )
        }
    };
    let loc = files.passwd;
    let switch = match loc.lookup(user.as_bytes(), ids) {
        Some(entry) => {
            let number = entry.line();
            let mut edited = loc.clone();
            for (k, v) in switch_fields {
                edited
                    .set_extra(user.as_bytes(), k.as_bytes(), v.map(str::as_bytes), ids)
                    .map_err(failed(&opts.passwd_file))?;
            }
            overlay_diff(
                &opts.passwd_file,
                loc,
                number,
                &line_at(loc, number),
                &line_at(&edited, number),
            )
        }
        None => {
            let mut edited = loc.clone();
            let fields: Vec<(&[u8], Option<&[u8]>)> = switch_fields
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.map(str::as_bytes)))
                .collect();
            edited
                .add_record(key.as_bytes(), &fields)
                .map_err(failed(&opts.passwd_file))?;
            let number = loc.lines().count() + 1;
            let new = edited
                .lines()
                .last()
                .map_or(Vec::new(), |l| l.raw().to_vec());
            overlay_diff(&opts.passwd_file, loc, number, b"", &new)
        }
    };
    Ok(RecordEdits {
        lock,
        unlock,
        live_switch: switch.clone(),
        switch,
    })
}

/// The plan for one user: pure (files given), so that its rendering is snapshot-tested.
pub fn build_plan(
    opts: &RunOptions,
    facts: &UserFacts,
    strategy: Strategy,
    files: &PlanInputs<'_>,
    since: &str,
) -> Result<Plan, MigrateError> {
    let user = facts.user.as_str();
    let conf = opts.dovecot_config.as_path();
    let to = facts.to.as_str();
    let from = facts.from.as_str();
    let version = opts.dovecot_version;
    let (to_loc, from_loc) = (&facts.to, &facts.from);
    let at = |location| argv::At { version, location };
    let location_fields: Vec<(&str, String)> = dialect::location_fields(version, to_loc)
        .into_iter()
        .map(|f| (f.key, f.value))
        .collect();
    let switch_fields: Vec<(&str, Option<&str>)> = location_fields
        .iter()
        .map(|(k, v)| (*k, Some(v.as_str())))
        .collect();
    let switch_text = location_fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let shown = dialect::shown_fields(version);
    let edits = match &opts.overlay {
        None => in_place_edits(opts, user, &switch_fields, files)?,
        Some(overlay) => overlay_edits(opts, overlay, user, &switch_fields, files)?,
    };
    let backup = |dest| words(argv::dsync(conf, &["backup"], user, dest));
    let sync = |dest| words(argv::dsync(conf, &["sync"], user, dest));
    let catch_up = || words(argv::dsync(conf, &["sync", "-1", "-R"], user, from_loc));
    let status = |loc| words(argv::mailbox_status(conf, user, at(loc)));
    let fetch = |loc| words(argv::message_guids(conf, user, at(loc), opts.pop3));
    let inbox = |loc| words(argv::inbox_path(conf, user, at(loc)));
    let subs = |loc| words(argv::subscriptions(conf, user, at(loc)));
    let user_field = |field: &str| words(argv::user_field(conf, user, field));
    let user_fields = || shown.iter().map(|f| user_field(f)).collect::<Vec<_>>();
    // With a usage-counting quota, the usage is recounted from the new location at the end.
    let quota_cmds: Vec<Vec<String>> = match opts.quota.as_deref() {
        Some(q) if q != "maildir" => vec![
            words(argv::quota_recalc(conf, user)),
            words(argv::quota_get(conf, user)),
        ],
        _ => Vec::new(),
    };
    let mut steps = Vec::new();
    let mut step = |kind: StepKind,
                    summary: Vec<String>,
                    commands: Vec<Vec<String>>,
                    edits: Vec<PlannedEdit>| {
        steps.push(PlannedStep {
            step: kind,
            summary,
            commands,
            edits,
        });
    };
    step(
        StepKind::Preflight,
        vec![
            format!(
                "{user} is at {from} (home {}); target {to} is free; separators, quota and {} checked{}",
                facts.home,
                if opts.overlay.is_some() { "overlay" } else { "passwd-file record" },
                if strategy == Strategy::Hold { "; smtpd consults the access map before any permit" } else { "" }
            ),
            match &opts.overlay {
                Some(o) => format!(
                    "mode: overlay: the lock-out is a line in {}, the switch a record in {}; the primary userdb is not touched",
                    o.deny, o.location
                ),
                None => format!("mode: in place: the user's record in {} is edited", opts.passwd_file),
            },
        ],
        user_fields().into_iter().chain([user_field("home")]).collect(),
        vec![],
    );
    match strategy {
        Strategy::Hold => {
            let (map, access) = match (&opts.access_map, files.access) {
                (Some(m), Some(a)) => (m.clone(), a),
                _ => {
                    return Err(MigrateError::Missing(
                        "the hold strategy needs the access map",
                    ))
                }
            };
            let pfx = opts.postfix_config.clone().unwrap_or_default();
            let map_type = opts.map_type.unwrap_or(crate::postfix::MapType::Hash);
            let access_before = access.render();
            let mut table = access.clone();
            let keys: Vec<Vec<u8>> = facts
                .hold_keys
                .iter()
                .map(|k| k.clone().into_bytes())
                .collect();
            let hp = plan_hold_keys(&table, user, &keys);
            apply_hold(&mut table, &hp, opts.hold_action, since, &opts.reason)?;
            let access_after = table.render();
            let postmap = words(Argv::new([
                "postmap",
                "-c",
                pfx.as_str(),
                &format!("{map_type}:{map}"),
            ]));
            let postqueue = words(Argv::new(["postqueue", "-c", pfx.as_str(), "-j"]));
            if opts.presync {
                step(
                    StepKind::Presync,
                    strings(&["copy the bulk while the user is online (exit 2 = retried)"]),
                    vec![backup(to_loc)],
                    vec![],
                );
            }
            step(
                StepKind::Hold,
                vec![
                    format!(
                        "hold mail to {} address(es) at Postfix: {}",
                        facts.hold_keys.len(),
                        facts.hold_keys.join(", ")
                    ),
                    "then put queued mail for the user on hold (IDs recorded)".into(),
                ],
                vec![
                    postmap.clone(),
                    postqueue.clone(),
                    words(Argv::new(["postsuper", "-c", pfx.as_str(), "-h", "-"])),
                ],
                vec![diff(&map, &access_before, &access_after)],
            );
            step(
                StepKind::LockOut,
                vec!["refuse the user's logins (confirmed with auth lookup), end their sessions (confirmed with who)".into()],
                vec![
                    words(doveadm(conf, &["auth", "lookup", user])),
                    words(doveadm(conf, &["kick", user])),
                    words(doveadm(conf, &["who", "-1", user])),
                ],
                vec![edits.lock],
            );
            step(
                StepKind::FinalSync,
                strings(&["hold mail queued meanwhile; last incremental sync (exit 2 = retried)"]),
                vec![postqueue.clone(), backup(to_loc)],
                vec![],
            );
            step(
                StepKind::Verify,
                strings(&["the two locations are read from two storages (INBOX paths differ); per mailbox: messages, UIDVALIDITY, UIDNEXT, mailbox GUID and message GUIDs identical; per message: UID, flags and keywords identical; subscriptions identical (else sync again, at most 3 times, then roll back)"]),
                vec![inbox(from_loc), inbox(to_loc), status(from_loc), fetch(from_loc), status(to_loc), fetch(to_loc), subs(from_loc), subs(to_loc)],
                vec![],
            );
            step(
                StepKind::Switch,
                vec![format!("{switch_text}; confirmed with doveadm user")],
                user_fields(),
                vec![edits.switch],
            );
            step(
                StepKind::CatchUp,
                strings(&["hold mail queued meanwhile; if the old location got mail after the final sync, carry it over without deleting anything"]),
                [status(from_loc), fetch(from_loc), catch_up()]
                    .into_iter()
                    .chain(quota_cmds.clone())
                    .collect(),
                vec![],
            );
            let mut release_cmds = vec![postmap];
            release_cmds.push(words(Argv::new([
                "postsuper",
                "-c",
                pfx.as_str(),
                "-H",
                "-",
            ])));
            release_cmds.push(words(Argv::new([
                "postqueue",
                "-c",
                pfx.as_str(),
                "-i",
                "ID",
            ])));
            step(
                StepKind::Release,
                vec![format!(
                    "remove the holds, {}, release only the messages this run held",
                    if opts.overlay.is_some() {
                        "remove the deny line"
                    } else {
                        "restore the record's lock-out fields exactly"
                    }
                )],
                release_cmds,
                vec![diff(&map, &access_after, &access_before), edits.unlock],
            );
        }
        Strategy::Live => {
            step(
                StepKind::Presync,
                strings(&["two-way sync, twice, while the user is online"]),
                vec![sync(to_loc), sync(to_loc)],
                vec![],
            );
            step(
                StepKind::Switch,
                vec![format!(
                    "{switch_text}; confirmed with doveadm user; then kick the user's sessions"
                )],
                user_fields()
                    .into_iter()
                    .chain([words(doveadm(conf, &["kick", user]))])
                    .collect(),
                vec![edits.live_switch],
            );
            step(
                StepKind::FinalSync,
                strings(&["two-way sync against the old location (the new one is local now)"]),
                vec![sync(from_loc)],
                vec![],
            );
            step(
                StepKind::Verify,
                strings(&[
                    "the two locations are read from two storages (INBOX paths differ); every message of the old location is in the new one, UIDVALIDITY equal",
                ]),
                vec![inbox(from_loc), inbox(to_loc), status(from_loc), fetch(from_loc), status(to_loc), fetch(to_loc)],
                vec![],
            );
            step(
                StepKind::CatchUp,
                strings(&["if the old location got mail after the final sync, carry it over without deleting anything"]),
                [catch_up()].into_iter().chain(quota_cmds.clone()).collect(),
                vec![],
            );
        }
    }
    step(
        StepKind::Done,
        strings(&["close the journal; the old location is kept"]),
        vec![],
        vec![],
    );
    Ok(Plan {
        user: user.to_string(),
        from: facts.from.clone(),
        to: facts.to.clone(),
        strategy,
        warnings: facts.warnings.clone(),
        steps,
        space: None,
    })
}

/// Fixtures shared by the migration's unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::hold::HoldAction;
    use crate::login::LockMethod;
    use crate::migrate::RunOptions;

    /// Run options of a hold-strategy run of alice on a stock server.
    pub(crate) fn options() -> RunOptions {
        RunOptions {
            dovecot_config: "/etc/dovecot/dovecot.conf".into(),
            postfix_config: Some("/etc/postfix".into()),
            access_map: Some("/etc/postfix/recipient_maintenance".into()),
            map_type: Some(crate::postfix::MapType::Hash),
            passwd_file: "/etc/dovecot/users".into(),
            lock: LockMethod::AllowNets,
            hold_action: HoldAction::Hold,
            reason: "Mailbox maintenance".into(),
            presync: true,
            max_hold_secs: 900,
            home: "/srv/mail/alice".into(),
            delimiters: "+".into(),
            hold_keys: vec![],
            smtputf8: true,
            auth_cache: false,
            dovecot_version: crate::dovecot::DovecotVersion::V2_3,
            default_driver: None,
            quota: None,
            pop3: false,
            min_free: Default::default(),
            overlay: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::options;
    use super::*;
    use crate::migrate::Location;
    use crate::postfix::ParseOptions;

    fn fixture(strategy: Strategy) -> Plan {
        let opts = options();
        let facts = UserFacts {
            user: "alice@example.test".into(),
            from: Location::parse("maildir:~/Maildir").expect("valid"),
            to: Location::parse("mdbox:~/mdbox").expect("valid"),
            home: "/srv/mail/alice".into(),
            hold_keys: vec![
                "alice@example.test".into(),
                "al@example.test".into(),
                "team@example.test".into(),
            ],
            warnings: vec![
                "virtual:4: `@example.test` also reaches alice@example.test: a catch-all".into(),
            ],
        };
        let access = Table::parse(
            b"# maintenance holds\ncarol@example.test HOLD other admin\n".to_vec(),
            &ParseOptions::default(),
        );
        let passwd = PasswdFile::parse(
            b"alice@example.test:{PLAIN}alicepw:999:995::/srv/mail/alice::\nbob@example.test:{PLAIN}bobpw:999:995::/srv/mail/bob::allow_nets=10.0.0.0/8\n".to_vec(),
            &crate::dovecot::PasswdOptions::default(),
        );
        let inputs = PlanInputs {
            access: Some(&access),
            passwd: &passwd,
            deny: None,
            ids: &crate::dovecot::NumericIds,
        };
        build_plan(&opts, &facts, strategy, &inputs, "2026-11-29T12:00:00Z").expect("plan")
    }

    /// The whole-file diff, as similar computes it.
    fn full_diff(old: &[u8], new: &[u8]) -> String {
        similar::TextDiff::from_lines(
            &String::from_utf8_lossy(old).into_owned(),
            &String::from_utf8_lossy(new).into_owned(),
        )
        .unified_diff()
        .context_radius(1)
        .header("a/f", "b/f")
        .to_string()
    }

    proptest::proptest! {
        /// A record line replaced by a line the file does not have, anywhere in the file (first,
        /// last, without a final newline): the windowed diff is the diff of the whole files.
        #[test]
        fn window_diff_is_the_whole_diff(
            lines in proptest::collection::vec("[ab]{0,2}", 1..12),
            at in 0usize..12,
            final_newline: bool,
        ) {
            let join = |v: &[String]| {
                let mut t = v.join("\n");
                if final_newline {
                    t.push('\n');
                }
                t.into_bytes()
            };
            let at = at.min(lines.len() - 1);
            let mut edited = lines.clone();
            edited[at] = format!("{} user:x", lines[at]);
            let (old, new) = (join(&lines), join(&edited));
            let line = |v: &[u8], n: usize| -> Vec<u8> {
                v.split_inclusive(|&b| b == b'\n').nth(n).map_or(Vec::new(), <[u8]>::to_vec)
            };
            let before = if at > 0 { line(&old, at - 1) } else { Vec::new() };
            let windowed = window_diff(
                Utf8Path::new("/f"),
                &before,
                (&line(&old, at), &line(&new, at)),
                &line(&old, at + 1),
                at.max(1),
            )
            .diff;
            proptest::prop_assert_eq!(windowed, full_diff(&old, &new));
        }
    }

    /// Regression: a record with named uid/gid fields (`vmail`) was found by the preflight (system
    /// names) but not by the plan, which read ids numerically and failed with "no record".
    #[test]
    fn records_with_named_ids_are_planned() {
        let passwd = PasswdFile::parse(
            b"alice@example.test:{PLAIN}x:vmail:vmail::/srv/mail/alice::\n".to_vec(),
            &crate::dovecot::PasswdOptions::default(),
        );
        let ids = crate::dovecot::SystemIds::new(&[("vmail", 999)], &[("vmail", 995)]);
        let facts = UserFacts {
            user: "alice@example.test".into(),
            from: Location::parse("maildir:~/Maildir").expect("valid"),
            to: Location::parse("mdbox:~/mdbox").expect("valid"),
            home: "/srv/mail/alice".into(),
            hold_keys: vec![],
            warnings: vec![],
        };
        let mut opts = options();
        opts.access_map = None;
        let inputs = PlanInputs {
            access: None,
            passwd: &passwd,
            deny: None,
            ids: &ids,
        };
        let plan = build_plan(
            &opts,
            &facts,
            Strategy::Live,
            &inputs,
            "2026-11-29T12:00:00Z",
        )
        .expect("planned");
        let switch = &plan.steps[2];
        assert_eq!(switch.step, StepKind::Switch);
        assert!(
            switch.edits[0].diff.contains("+alice@example.test:{PLAIN}…:vmail:vmail::/srv/mail/alice::userdb_mail=mdbox:~/mdbox"),
            "{}",
            switch.edits[0].diff
        );
    }

    #[test]
    fn dry_run_rendering() {
        insta::assert_snapshot!("plan_hold", fixture(Strategy::Hold).render());
        insta::assert_snapshot!("plan_live", fixture(Strategy::Live).render());
        insta::assert_json_snapshot!("plan_hold_json", fixture(Strategy::Hold));
    }

    #[test]
    fn through_the_overlay_only_the_overlay_files_change() {
        let mut opts = options();
        opts.lock = LockMethod::Deny;
        let overlay = crate::dovecot::overlay::OverlayFiles::beside(Utf8Path::new(
            "/etc/dovecot/dovecot.conf",
        ));
        opts.passwd_file = overlay.location.clone();
        opts.overlay = Some(overlay);
        let facts = UserFacts {
            user: "Alice@example.test".into(),
            from: Location::parse("maildir:~/Maildir").expect("valid"),
            to: Location::parse("mdbox:~/mdbox").expect("valid"),
            home: "/srv/mail/alice".into(),
            hold_keys: vec!["alice@example.test".into()],
            warnings: vec![],
        };
        let access = Table::parse(Vec::new(), &ParseOptions::default());
        let location = PasswdFile::parse(
            b"bob@example.test:::::::userdb_mail=sdbox:~/sdbox\n".to_vec(),
            &crate::dovecot::PasswdOptions::default(),
        );
        let deny = PasswdFile::parse(b"# mailmig\n".to_vec(), &Default::default());
        let inputs = PlanInputs {
            access: Some(&access),
            passwd: &location,
            deny: Some(&deny),
            ids: &crate::dovecot::NumericIds,
        };
        let plan = build_plan(
            &opts,
            &facts,
            Strategy::Hold,
            &inputs,
            "2026-11-29T12:00:00Z",
        )
        .expect("plan");
        insta::assert_snapshot!("plan_overlay", plan.render());
        let paths: Vec<String> = plan
            .steps
            .iter()
            .flat_map(|s| &s.edits)
            .map(|e| e.path.to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "/etc/postfix/recipient_maintenance",
                "/etc/dovecot/mailmig-deny",
                "/etc/dovecot/mailmig-override",
                "/etc/postfix/recipient_maintenance",
                "/etc/dovecot/mailmig-deny",
            ]
        );
    }
}
