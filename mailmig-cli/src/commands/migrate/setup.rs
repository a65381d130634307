//! What a migration needs to know before it starts, found once: the Postfix and Dovecot
//! configuration (setup), each user's facts (preflight), and the plan built from them.

use camino::{Utf8Path, Utf8PathBuf};
use mailmig_core::dovecot::mask::mask_line;
use mailmig_core::dovecot::{IdResolver, PasswdEditError, PasswdFile, PasswdOptions};
use mailmig_core::hold::{apply_hold, plan_hold_keys, HoldAction};
use mailmig_core::login::{self, Dovecot, DovecotSettings, LockMethod};
use mailmig_core::migrate::runs;
use mailmig_core::migrate::{
    validate_user, Location, Plan, PlannedEdit, PlannedStep, StepKind, Strategy,
};
use mailmig_core::postfix::{postconf, Address, MapType, ParseOptions, Table, VirtualMap};
use mailmig_core::process::{Argv, Runner};
use mailmig_core::state::StateDir;
use serde::{Deserialize, Serialize};

use super::super::aliases::{alias_setup, chain, location, reason_text};
use super::super::hold::{access_map, coverage_problems};
use super::super::Context;
use crate::args::{HoldActionArg, HoldMapArgs, LockMethodArg, MigrationOptions, StrategyArg};
use crate::exit;
use crate::report::Failure;

/// Everything a run needs to continue after a crash, stored in its journal header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunOptions {
    pub(crate) dovecot_config: Utf8PathBuf,
    pub(crate) postfix_config: Option<Utf8PathBuf>,
    pub(crate) access_map: Option<Utf8PathBuf>,
    pub(crate) map_type: Option<String>,
    pub(crate) passwd_file: Utf8PathBuf,
    pub(crate) lock: LockMethod,
    pub(crate) hold_action: HoldAction,
    pub(crate) reason: String,
    pub(crate) presync: bool,
    pub(crate) home: String,
    pub(crate) delimiters: String,
    pub(crate) hold_keys: Vec<String>,
    pub(crate) smtputf8: bool,
    pub(crate) auth_cache: bool,
    /// The longest the user's mail may stay held (seconds); older journals: the default.
    #[serde(default = "default_max_hold")]
    pub(crate) max_hold_secs: u64,
}

fn default_max_hold() -> u64 {
    900
}

/// The server's configuration, read once for all users.
pub(crate) struct Setup {
    pub(crate) dovecot_config: Utf8PathBuf,
    pub(crate) postfix_config: Option<Utf8PathBuf>,
    pub(crate) access_map: Option<(Utf8PathBuf, MapType)>,
    pub(crate) passwd_file: Utf8PathBuf,
    pub(crate) settings: DovecotSettings,
    pub(crate) delimiters: String,
    pub(crate) strategy: Strategy,
    pub(crate) lock: LockMethod,
    pub(crate) hold_action: HoldAction,
    pub(crate) reason: String,
    pub(crate) presync: bool,
    pub(crate) max_hold_secs: u64,
}

pub(crate) fn strategy(arg: StrategyArg) -> Strategy {
    match arg {
        StrategyArg::Hold => Strategy::Hold,
        StrategyArg::Live => Strategy::Live,
    }
}

fn unavailable(e: impl std::fmt::Display) -> Failure {
    Failure::new(exit::UNAVAILABLE, format!("error: {e}"))
}

/// Read Postfix's and Dovecot's configuration and refuse what the migration cannot work with.
pub(crate) fn setup(ctx: &Context<'_>, opts: &MigrationOptions) -> Result<Setup, Failure> {
    let strategy = strategy(opts.strategy);
    let dovecot_config = ctx.global.dovecot_config.clone().ok_or_else(|| {
        Failure::new(
            exit::USAGE,
            "error: a migration talks to the running Dovecot: give --dovecot-config FILE",
        )
    })?;
    let dovecot = Dovecot {
        config: dovecot_config.clone(),
        runner: &ctx.runner,
    };
    let settings = dovecot.settings().map_err(unavailable)?;
    let passwd_file = match settings.passwd_files.as_slice() {
        [one] => one.clone(),
        [] => return Err(Failure::new(exit::DATAERR, "error: this Dovecot has no passwd-file passdb/userdb: mailmig switches the mail location in a passwd-file")),
        _ => return Err(Failure::new(exit::DATAERR, "error: this Dovecot has several passwd-files; mailmig supports one (the user's record is edited there)")),
    };
    let lock = match opts.lock {
        LockMethodArg::AllowNets => LockMethod::AllowNets,
        LockMethodArg::Nologin => LockMethod::Nologin,
    };
    if opts.reason.contains(']')
        || opts.reason.contains('%')
        || opts.reason.chars().any(char::is_control)
    {
        return Err(Failure::new(
            exit::DATAERR,
            format!(
                "error: --reason `{}`: `]`, `%` and control characters cannot be stored",
                opts.reason
            ),
        ));
    }
    let mut access = None;
    let mut delimiters = String::new();
    if strategy == Strategy::Hold {
        let Some(dir) = ctx.global.postfix_config.clone() else {
            return Err(Failure::new(
                exit::USAGE,
                "error: the hold strategy holds mail at Postfix: give --postfix-config DIR",
            ));
        };
        let (map, map_type) = access_map(ctx, &HoldMapArgs { map: None })?;
        let problems = coverage_problems(ctx, &dir, &map)?;
        if !problems.is_empty() {
            return Err(Failure::new(
                exit::DATAERR,
                format!(
                    "error: a HOLD in {map} would not hold all SMTP mail; fix the configuration first (see `mailmig hold check`):\n{}",
                    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
                ),
            ));
        }
        if lock == LockMethod::AllowNets && dovecot.lmtp_checks_passdb().map_err(unavailable)? {
            return Err(Failure::new(exit::DATAERR, "error: this Dovecot has `userdb static` without `allow_all_users=yes`: LMTP checks the passdb, so the allow_nets= lock-out would bounce the user's mail; use --lock nologin"));
        }
        access = Some((
            map.clone(),
            map_type.unwrap_or_else(|| MapType::detect(&map)),
        ));
        delimiters = postconf(&ctx.runner, &dir, &["recipient_delimiter"])
            .map_err(unavailable)?
            .get("recipient_delimiter")
            .cloned()
            .unwrap_or_default();
    }
    Ok(Setup {
        dovecot_config,
        postfix_config: ctx.global.postfix_config.clone(),
        access_map: access,
        passwd_file,
        settings,
        delimiters,
        strategy,
        lock,
        hold_action: match opts.hold_action {
            HoldActionArg::Hold => HoldAction::Hold,
            HoldActionArg::Defer => HoldAction::Defer,
        },
        reason: opts.reason.trim().to_string(),
        presync: !opts.no_presync || strategy == Strategy::Live,
        max_hold_secs: opts.max_hold.as_secs().max(1),
    })
}

/// The keys to hold for a user, and warnings about what cannot be held.
pub(crate) type HoldKeys = (Vec<String>, Vec<String>);

/// Every address that reaches each user (one pass over the virtual alias maps for all users),
/// with warnings for what a hold cannot cover.
pub(crate) fn hold_keys(ctx: &Context<'_>, users: &[String]) -> Result<Vec<HoldKeys>, Failure> {
    let (files, tables, options) = alias_setup(ctx, &[], None)?;
    let refs: Vec<&Table> = tables.iter().collect();
    let vm = VirtualMap::new(&refs, options);
    Ok(users
        .iter()
        .map(|user| {
            let closure = vm.reverse_closure(&Address(user.as_bytes().to_vec()));
            let mut keys: Vec<String> = Vec::new();
            for p in &closure.addresses {
                let k = String::from_utf8_lossy(&p.address.external()).into_owned();
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            let mut warnings = Vec::new();
            if !closure.target_receives_own_mail {
                warnings.push(format!("mail addressed to {user} does not reach its mailbox (it is an alias to elsewhere)"));
            }
            for u in &closure.uncoverable {
                warnings.push(format!(
                    "{}: `{}` also reaches {user} ({}) and cannot be held: {}; its mail is carried over by the catch-up step",
                    location(&files, Some(u.source)),
                    String::from_utf8_lossy(&u.key),
                    chain(&u.path),
                    reason_text(u.reason)
                ));
            }
            (keys, warnings)
        })
        .collect())
}

/// One user's facts, found by the preflight checks.
#[derive(Debug, Clone)]
pub(crate) struct UserFacts {
    pub(crate) user: String,
    pub(crate) from: Location,
    pub(crate) to: Location,
    pub(crate) home: String,
    pub(crate) hold_keys: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

/// `doveadm sync|backup -l SECONDS`: the per-user dsync lock, so that a sync left running by a
/// killed run and the resumed run's sync never work on one user at once.
pub(crate) const DSYNC_LOCK: &str = "30";

pub(crate) fn doveadm(config: &Utf8Path, args: &[&str]) -> Argv {
    let mut v = vec!["doveadm", "-c", config.as_str()];
    v.extend_from_slice(args);
    Argv::new(v)
}

/// The commands a run sends to Dovecot: built here only, so that the plan shows exactly what
/// the engine runs.
pub(crate) mod argv {
    use camino::Utf8Path;
    use mailmig_core::migrate::verify::STATUS_FIELDS;
    use mailmig_core::process::Argv;

    use super::{doveadm, DSYNC_LOCK};

    /// `doveadm sync|backup [FLAGS] -l 30 -u USER DEST` (`verb` is `["backup"]`, `["sync"]` or
    /// `["sync", "-1", "-R"]`).
    pub(crate) fn dsync(config: &Utf8Path, verb: &[&str], user: &str, dest: &str) -> Argv {
        let mut args = verb.to_vec();
        args.extend(["-l", DSYNC_LOCK, "-u", user, dest]);
        doveadm(config, &args)
    }

    /// `doveadm -o mail_location=LOCATION -f tab mailbox status -u USER FIELDS '*'`.
    pub(crate) fn mailbox_status(config: &Utf8Path, user: &str, location: &str) -> Argv {
        let loc = format!("mail_location={location}");
        doveadm(
            config,
            &[
                "-o",
                &loc,
                "-f",
                "tab",
                "mailbox",
                "status",
                "-u",
                user,
                STATUS_FIELDS,
                "*",
            ],
        )
    }

    /// `doveadm -o mail_location=LOCATION -f tab fetch -u USER 'mailbox guid' ALL`.
    pub(crate) fn message_guids(config: &Utf8Path, user: &str, location: &str) -> Argv {
        let loc = format!("mail_location={location}");
        doveadm(
            config,
            &[
                "-o",
                &loc,
                "-f",
                "tab",
                "fetch",
                "-u",
                user,
                "mailbox guid",
                "ALL",
            ],
        )
    }

    /// `doveadm user -f FIELD USER`.
    pub(crate) fn user_field(config: &Utf8Path, user: &str, field: &str) -> Argv {
        doveadm(config, &["user", "-f", field, user])
    }
}

/// `doveadm user -f FIELD USER`: the value, or 67 for an unknown user.
pub(crate) fn user_field(
    runner: &dyn Runner,
    config: &Utf8Path,
    user: &str,
    field: &str,
) -> Result<String, Failure> {
    let out = runner
        .run(&argv::user_field(config, user, field), None)
        .map_err(unavailable)?;
    match out.code {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        Some(67) => Err(Failure::new(
            exit::NOUSER,
            format!("error: {user}: Dovecot's userdb does not know this user"),
        )),
        code => Err(Failure::new(
            exit::UNAVAILABLE,
            format!(
                "error: `doveadm user {user}` failed ({}): {}",
                code.map_or("killed by a signal".to_string(), |c| format!(
                    "exit code {c}"
                )),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )),
    }
}

/// The checks that change nothing, for one user; the facts the plan needs.
pub(crate) fn preflight_user(
    runner: &dyn Runner,
    setup: &Setup,
    state: &StateDir,
    inputs: &PlanInputs<'_>,
    user: &str,
    to: &str,
    keys: (Vec<String>, Vec<String>),
) -> Result<UserFacts, Failure> {
    let data = |m: String| Failure::new(exit::DATAERR, format!("error: {m}"));
    validate_user(user).map_err(|e| data(e.to_string()))?;
    let to = Location::parse(to).map_err(|e| data(e.to_string()))?;
    runs::clear_stale_marker(state, user).map_err(|e| super::runs_failure(&e))?;
    if let Some(run) = runs::marker(state, user).map_err(|e| super::runs_failure(&e))? {
        return Err(Failure::new(
            exit::TEMPFAIL,
            format!("error: {user} has an unfinished run {run}: `mailmig resume {run}` or `mailmig rollback {run}` first"),
        ));
    }
    let key = login::state_key(user, &PasswdOptions::default()).map_err(|e| data(e.to_string()))?;
    let lock_state = login::state_file(state, &key);
    if login::is_disabled(state, &key).map_err(|e| data(e.to_string()))? {
        return Err(data(format!(
            "{user} is locked out by `mailmig login disable` ({lock_state}); `mailmig login enable {user}` first (a migration restores the logins it finds)"
        )));
    }
    let mut from = user_field(runner, &setup.dovecot_config, user, "mail")?;
    if from.is_empty() {
        from = setup.settings.mail_location.clone().unwrap_or_default();
    }
    let from = Location::parse(&from).map_err(|e| {
        data(format!(
            "{user}'s current mail location cannot be migrated by mailmig: {e}"
        ))
    })?;
    let home = user_field(runner, &setup.dovecot_config, user, "home")?;
    if (from.path().starts_with('~') || to.path().starts_with('~')) && !home.starts_with('/') {
        return Err(data(format!(
            "{user} has no absolute home directory, so `~` in a mail location has no meaning"
        )));
    }
    if from.same_storage(&to, &home) {
        return Err(data(format!("{user} is already at {to}")));
    }
    if from.format() != to.format()
        && setup
            .settings
            .namespace_separators
            .iter()
            .any(|(_, sep)| sep.is_empty())
    {
        return Err(data(format!(
            "a namespace has no explicit hierarchy separator: {} and {} default to different ones, and dsync refuses to convert between them (exit 78). Set `separator` in every namespace {{}} block first",
            from.format(),
            to.format()
        )));
    }
    if setup.settings.quota_backend.as_deref() == Some("maildir") && to.format() != "maildir" {
        return Err(data(format!(
            "the Maildir++ quota backend (quota = maildir) works only with Maildir, not {}; switch to the count or dict backend first",
            to.format()
        )));
    }
    let target = to.expanded_path(&home);
    if let Ok(mut entries) = fs_err::read_dir(&target) {
        if entries.next().is_some() {
            return Err(data(format!(
                "the target {target} exists and is not empty; mailmig never overwrites mail (move it away first)"
            )));
        }
    } else if Utf8Path::new(&target).exists() {
        return Err(data(format!(
            "the target {target} exists; mailmig never overwrites mail (move it away first)"
        )));
    }
    let Some(entry) = inputs.passwd.lookup(user.as_bytes(), inputs.ids) else {
        return Err(Failure::new(
            exit::NOUSER,
            format!(
                "error: {user} has no record in {}; mailmig switches the mail location there",
                setup.passwd_file
            ),
        ));
    };
    if entry.legacy_mail().is_some_and(|m| !m.is_empty()) {
        return Err(data(format!(
            "{}: {user}'s record sets the mail location in the legacy 8th field; move it to userdb_mail= first",
            setup.passwd_file
        )));
    }
    if let (Some((map, _)), Some(table)) = (&setup.access_map, inputs.access) {
        let key_bytes: Vec<Vec<u8>> = keys.0.iter().map(|k| k.clone().into_bytes()).collect();
        let plan = plan_hold_keys(table, user, &key_bytes);
        if !plan.conflicts.is_empty() {
            return Err(data(format!(
                "{map} already has other rules for addresses of {user} (postmap keeps the first entry, so a HOLD cannot be added): {}",
                plan.conflicts
                    .iter()
                    .map(|(k, v, l)| format!(
                        "line {}: `{} {}`",
                        l.unwrap_or(0),
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(v)
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
    }
    Ok(UserFacts {
        user: user.to_string(),
        from,
        to,
        home,
        hold_keys: keys.0,
        warnings: keys.1,
    })
}

impl Setup {
    /// The options a run of `facts` records in its journal.
    pub(crate) fn run_options(&self, facts: &UserFacts, parse: &ParseOptions) -> RunOptions {
        RunOptions {
            dovecot_config: self.dovecot_config.clone(),
            postfix_config: self.postfix_config.clone(),
            access_map: self.access_map.as_ref().map(|(m, _)| m.clone()),
            map_type: self.access_map.as_ref().map(|(_, t)| t.to_string()),
            passwd_file: self.passwd_file.clone(),
            lock: self.lock,
            hold_action: self.hold_action,
            reason: self.reason.clone(),
            presync: self.presync,
            max_hold_secs: self.max_hold_secs,
            home: facts.home.clone(),
            delimiters: self.delimiters.clone(),
            hold_keys: facts.hold_keys.clone(),
            smtputf8: parse.smtputf8,
            auth_cache: self.settings.auth_cache_enabled,
        }
    }
}

/// What the preflight checks and the plan read, as it is now: read and parsed once for all
/// users.
pub(crate) struct PlanInputs<'a> {
    /// The access map (hold strategy).
    pub(crate) access: Option<&'a Table>,
    /// The passwd-file.
    pub(crate) passwd: &'a PasswdFile,
    /// System user and group names.
    pub(crate) ids: &'a dyn IdResolver,
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

/// The plan for one user: pure (files given), so that its rendering is snapshot-tested.
pub(crate) fn build_plan(
    opts: &RunOptions,
    facts: &UserFacts,
    strategy: Strategy,
    files: &PlanInputs<'_>,
    since: &str,
) -> Result<Plan, Failure> {
    let user = facts.user.as_str();
    let conf = opts.dovecot_config.as_path();
    let to = facts.to.as_str();
    let from = facts.from.as_str();
    let ids = files.ids;
    let edit_failed = |e: PasswdEditError| {
        Failure::new(exit::DATAERR, format!("error: {}: {e}", opts.passwd_file))
    };
    // The passwd-file edits touch the user's record line only: each version of that line is read
    // from one copy of the parsed file, edited in turn, and diffed with its neighbours.
    let number = files
        .passwd
        .lookup(user.as_bytes(), ids)
        .map(|e| e.line())
        .ok_or_else(|| {
            edit_failed(PasswdEditError::NoSuchUser {
                user: user.to_string(),
            })
        })?;
    let line_at = |f: &PasswdFile, n: usize| {
        f.lines()
            .nth(n - 1)
            .map_or(Vec::new(), |l| l.raw().to_vec())
    };
    let original_line = line_at(files.passwd, number);
    // Only the user's own line, its password masked: plans are recorded in the journal, which
    // must hold no password hash and no other user's line.
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
        LockMethod::AllowNets => vec![("allow_nets", Some(""))],
        LockMethod::Nologin => vec![("nologin", Some("y")), ("reason", Some(reason.as_str()))],
    };
    let set = |f: &mut PasswdFile, fields: &[(&str, Option<&str>)]| -> Result<Vec<u8>, Failure> {
        for (k, v) in fields {
            f.set_extra(user.as_bytes(), k.as_bytes(), v.map(str::as_bytes), ids)
                .map_err(edit_failed)?;
        }
        Ok(line_at(f, number))
    };
    let backup = |dest: &str| words(argv::dsync(conf, &["backup"], user, dest));
    let sync = |dest: &str| words(argv::dsync(conf, &["sync"], user, dest));
    let catch_up = || words(argv::dsync(conf, &["sync", "-1", "-R"], user, from));
    let status = |loc: &str| words(argv::mailbox_status(conf, user, loc));
    let fetch = |loc: &str| words(argv::message_guids(conf, user, loc));
    let user_field = |field: &str| words(argv::user_field(conf, user, field));
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
        vec![format!(
            "{user} is at {from} (home {}); target {to} is free; separators, quota and passwd-file record checked{}",
            facts.home,
            if strategy == Strategy::Hold { "; smtpd consults the access map before any permit" } else { "" }
        )],
        vec![user_field("mail"), user_field("home")],
        vec![],
    );
    match strategy {
        Strategy::Hold => {
            let (map, access) = match (&opts.access_map, files.access) {
                (Some(m), Some(a)) => (m.clone(), a),
                _ => {
                    return Err(Failure::new(
                        exit::USAGE,
                        "error: the hold strategy needs the access map",
                    ))
                }
            };
            let pfx = opts.postfix_config.clone().unwrap_or_default();
            let map_type = opts.map_type.clone().unwrap_or_else(|| "hash".into());
            let access_before = access.render();
            let mut table = access.clone();
            let keys: Vec<Vec<u8>> = facts
                .hold_keys
                .iter()
                .map(|k| k.clone().into_bytes())
                .collect();
            let hp = plan_hold_keys(&table, user, &keys);
            apply_hold(&mut table, &hp, opts.hold_action, since, &opts.reason)
                .map_err(|e| Failure::new(exit::DATAERR, format!("error: {e}")))?;
            let access_after = table.render();
            let postmap = words(Argv::new([
                "postmap",
                "-c",
                pfx.as_str(),
                &format!("{map_type}:{map}"),
            ]));
            let postqueue = words(Argv::new(["postqueue", "-c", pfx.as_str(), "-j"]));
            let mut edited = files.passwd.clone();
            let locked = set(&mut edited, &lock_fields)?;
            let locked_switched = set(&mut edited, &[("userdb_mail", Some(to))])?;
            for (k, _) in &lock_fields {
                edited
                    .remove_extra(user.as_bytes(), k.as_bytes(), ids)
                    .map_err(edit_failed)?;
            }
            let switched_unlocked = line_at(&edited, number);
            if opts.presync {
                step(
                    StepKind::Presync,
                    strings(&["copy the bulk while the user is online (exit 2 = retried)"]),
                    vec![backup(to)],
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
                vec![passwd_diff(&original_line, &locked)],
            );
            step(
                StepKind::FinalSync,
                strings(&["hold mail queued meanwhile; last incremental sync (exit 2 = retried)"]),
                vec![postqueue.clone(), backup(to)],
                vec![],
            );
            step(
                StepKind::Verify,
                strings(&["per mailbox: messages, UIDVALIDITY, UIDNEXT, mailbox GUID and message GUIDs identical (else sync again, at most 3 times, then roll back)"]),
                vec![status(from), fetch(from), status(to), fetch(to)],
                vec![],
            );
            step(
                StepKind::Switch,
                vec![format!("userdb_mail={to}; confirmed with doveadm user")],
                vec![user_field("mail")],
                vec![passwd_diff(&locked, &locked_switched)],
            );
            step(
                StepKind::CatchUp,
                strings(&["hold mail queued meanwhile; if the old location got mail after the final sync, carry it over without deleting anything"]),
                vec![status(from), fetch(from), catch_up()],
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
                strings(&["remove the holds, restore the record's lock-out fields exactly, release only the messages this run held"]),
                release_cmds,
                vec![
                    diff(&map, &access_after, &access_before),
                    passwd_diff(&locked_switched, &switched_unlocked),
                ],
            );
        }
        Strategy::Live => {
            let switched = set(&mut files.passwd.clone(), &[("userdb_mail", Some(to))])?;
            step(
                StepKind::Presync,
                strings(&["two-way sync, twice, while the user is online"]),
                vec![sync(to), sync(to)],
                vec![],
            );
            step(
                StepKind::Switch,
                vec![format!(
                    "userdb_mail={to}; confirmed with doveadm user; then kick the user's sessions"
                )],
                vec![user_field("mail"), words(doveadm(conf, &["kick", user]))],
                vec![passwd_diff(&original_line, &switched)],
            );
            step(
                StepKind::FinalSync,
                strings(&["two-way sync against the old location (the new one is local now)"]),
                vec![sync(from)],
                vec![],
            );
            step(
                StepKind::Verify,
                strings(&[
                    "every message of the old location is in the new one, UIDVALIDITY equal",
                ]),
                vec![status(from), fetch(from), status(to), fetch(to)],
                vec![],
            );
            step(
                StepKind::CatchUp,
                strings(&["if the old location got mail after the final sync, carry it over without deleting anything"]),
                vec![catch_up()],
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> RunOptions {
        RunOptions {
            dovecot_config: "/etc/dovecot/dovecot.conf".into(),
            postfix_config: Some("/etc/postfix".into()),
            access_map: Some("/etc/postfix/recipient_maintenance".into()),
            map_type: Some("hash".into()),
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
        }
    }

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
            &mailmig_core::dovecot::PasswdOptions::default(),
        );
        let inputs = PlanInputs {
            access: Some(&access),
            passwd: &passwd,
            ids: &mailmig_core::dovecot::NumericIds,
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
            &mailmig_core::dovecot::PasswdOptions::default(),
        );
        let ids = mailmig_core::dovecot::SystemIds::new(&[("vmail", 999)], &[("vmail", 995)]);
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
}
