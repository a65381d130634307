//! What a migration needs to know before it starts, found once for all users: the Postfix and
//! Dovecot configuration ([`Server::discover`]), each user's facts (the preflight), and the plan
//! built from them ([`Server::prepare`]).

use camino::{Utf8Path, Utf8PathBuf};

use super::dialect;
use super::error::{read_file, refuse_generated, MigrateError, Refusal};
use super::lookup::{Answers, Lookup, Question};
use super::plan::{build_plan, PlanInputs};
use super::runs;
use super::{validate_user, Location, MigrationOptions, Plan, RunOptions, Strategy};
use crate::dovecot::config::uidl_format_survives;
use crate::dovecot::overlay::{self, OverlayFiles, OverlayMode};
use crate::dovecot::DovecotConfig;
use crate::dovecot::{DovecotVersion, IdResolver, PasswdFile, PasswdOptions};
use crate::hold::plan_hold_keys;
use crate::login::{self, Dovecot, DovecotSettings};
use crate::postfix::delivery::DeliveryConfig;
use crate::postfix::discover::{self, chain, reason_text, AliasMaps};
use crate::postfix::{postconf, Address, MapType, ParseOptions, Table, VirtualMap};
use crate::process::Runner;
use crate::safe_fs;
use crate::state::StateDir;

/// Where the server's configuration is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Dovecot's configuration file (`doveconf -c`, `doveadm -c`).
    pub dovecot_config: Utf8PathBuf,
    /// Postfix's configuration directory (`postconf -c`); required by the hold strategy.
    pub postfix_config: Option<Utf8PathBuf>,
    /// How Postfix reads its tables (from `postconf`: see
    /// [`crate::postfix::parse_options_from_postconf`]).
    pub parse: ParseOptions,
}

/// The server as a migration sees it: found once, used for every user.
#[derive(Debug, Clone)]
pub struct Server {
    /// Where its configuration is.
    pub config: ServerConfig,
    /// What to do.
    pub options: MigrationOptions,
    /// The access map holds go to, and its type (hold strategy).
    pub access_map: Option<(Utf8PathBuf, MapType)>,
    /// The passwd-file whose records the switch edits (the overlay's location file when the
    /// overlay is active).
    pub passwd_file: Utf8PathBuf,
    /// The overlay files, when Dovecot reads them as measured: lock-outs and switches go
    /// through them and the primary userdb is not touched.
    pub overlay: Option<OverlayFiles>,
    /// What Dovecot's configuration says.
    pub settings: DovecotSettings,
    /// Postfix's `recipient_delimiter`.
    pub delimiters: String,
    /// The virtual alias maps (hold strategy): every address reaching a user is held.
    pub aliases: Option<AliasMaps>,
    /// What Postfix's delivery depends on: each user's mail must be delivered by Dovecot.
    pub delivery: DeliveryConfig,
}

/// The files the preflight and the plans read, parsed once for all users.
struct Inputs {
    access: Option<Table>,
    passwd: PasswdFile,
    deny: Option<PasswdFile>,
}

impl Inputs {
    /// The inputs as the plans read them.
    fn plan_inputs<'a>(&'a self, ids: &'a dyn IdResolver) -> PlanInputs<'a> {
        PlanInputs {
            access: self.access.as_ref(),
            passwd: &self.passwd,
            deny: self.deny.as_ref(),
            ids,
        }
    }
}

/// One user's facts, found by the preflight checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    /// The user.
    pub user: String,
    /// The current location.
    pub from: Location,
    /// The target.
    pub to: Location,
    /// The user's home.
    pub home: String,
    /// Every address to hold.
    pub hold_keys: Vec<String>,
    /// What the plan warns about (addresses that cannot be held...).
    pub warnings: Vec<String>,
}

/// A user's run, ready to start: the facts, what the journal records, the plan.
#[derive(Debug, Clone)]
#[must_use = "a prepared run changes nothing until it is started"]
pub struct PreparedRun {
    /// The preflight's facts.
    pub facts: UserFacts,
    /// What the run records in its journal header.
    pub options: RunOptions,
    /// The plan.
    pub plan: Plan,
}

/// The addresses to hold for a user, and warnings about what cannot be held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldKeys {
    /// Every address that reaches the user and can be held.
    pub keys: Vec<String>,
    /// What a hold cannot cover, in words.
    pub warnings: Vec<String>,
}

/// Two runs of one batch must not write into one storage, nor one's target into another's
/// source (a template without a per-user variable, or two users expanding alike): each later run
/// that would is refused, naming the earlier user.
fn refuse_collisions(
    prepared: Vec<Result<PreparedRun, MigrateError>>,
) -> Vec<Result<PreparedRun, MigrateError>> {
    let path = |l: &Location, home: &str| l.expanded_path(home).trim_end_matches('/').to_string();
    let mut seen: Vec<(String, String, String)> = Vec::new(); // (user, target, source)
    prepared
        .into_iter()
        .map(|p| {
            let Ok(run) = p else { return p };
            let f = &run.facts;
            let (target, source) = (path(&f.to, &f.home), path(&f.from, &f.home));
            let nested = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
            if let Some((other, ..)) = seen.iter().find(|(_, t, s)| {
                nested(&target, t) || nested(t, &target) || nested(&target, s) || nested(&source, t)
            }) {
                return Err(Refusal::Target(format!(
                    "{}'s target {target} overlaps the storage of {other} in this batch (does the template name a per-user directory?)",
                    f.user
                ))
                .into());
            }
            seen.push((f.user.clone(), target, source));
            Ok(run)
        })
        .collect()
}

/// The target inside the source's tree is fine only where the source's layout does not list it
/// as a folder: Maildir++ (maildir without `LAYOUT=`) lists only `.name` directories, so
/// `/var/vmail/d/n/mdbox` inside the maildir `/var/vmail/d/n` is invisible to it; anything else
/// would show the copy to the user as folders (and copy it into itself). The source inside the
/// target is always refused.
fn check_nesting(from: &Location, to: &Location, home: &str) -> Result<(), MigrateError> {
    let (f, t) = (from.expanded_path(home), to.expanded_path(home));
    let (f, t) = (f.trim_end_matches('/'), t.trim_end_matches('/'));
    if let Some(rest) = t.strip_prefix(f).and_then(|r| r.strip_prefix('/')) {
        let first = rest.split('/').next().unwrap_or_default();
        let maildir_pp = from.format() == "maildir" && from.option("LAYOUT").is_none();
        if !maildir_pp || first.starts_with('.') || matches!(first, "cur" | "new" | "tmp") {
            return Err(Refusal::Target(format!(
                "the target {t} is inside the source {f}, where {} would show it as a folder; choose a path outside",
                from.format()
            ))
            .into());
        }
    }
    if f.strip_prefix(t).is_some_and(|r| r.starts_with('/')) {
        return Err(Refusal::Target(format!(
            "the source {f} is inside the target {t}; choose a target outside the source"
        ))
        .into());
    }
    Ok(())
}

/// What in Dovecot's configuration a conversion cannot carry, for every user.
fn refuse_settings(c: &DovecotConfig) -> Result<(), MigrateError> {
    if c.protocols().contains(&"pop3") {
        let format = c.pop3_uidl_format.clone().unwrap_or_default();
        if !format.is_empty() && !uidl_format_survives(&format) {
            return Err(Refusal::Pop3Uidl { format }.into());
        }
    }
    if let Some(ns) = c.namespaces.iter().find(|ns| ns.location.is_some()) {
        return Err(Refusal::Namespace {
            name: ns.name.clone(),
            kind: ns.kind.clone(),
            location: ns.location.clone().unwrap_or_default(),
        }
        .into());
    }
    if c.acl {
        return Err(Refusal::Acl.into());
    }
    Ok(())
}

/// The one passwd-file edited in place, unless mailmig would rewrite what a tool generates.
fn in_place_passwd_file(
    settings: &DovecotSettings,
    lock: login::LockMethod,
) -> Result<Utf8PathBuf, MigrateError> {
    if lock == login::LockMethod::Deny {
        return Err(Refusal::DenyWithoutOverlay.into());
    }
    let passwd_file = match settings.passwd_files.as_slice() {
        [one] => one.clone(),
        [] => return Err(Refusal::NoPasswdFile.into()),
        _ => return Err(Refusal::SeveralPasswdFiles.into()),
    };
    refuse_generated(&passwd_file, &read_file(&passwd_file)?)?;
    Ok(passwd_file)
}

/// The overlay files exist as regular files mailmig can replace atomically.
fn check_overlay_files(files: &OverlayFiles) -> Result<(), MigrateError> {
    for path in [&files.deny, &files.location] {
        if let Err(e) = safe_fs::read_regular(path) {
            return Err(Refusal::OverlayFile {
                path: path.clone(),
                reason: crate::display_chain(&e),
            }
            .into());
        }
    }
    Ok(())
}

fn reason_ok(reason: &str) -> bool {
    !(reason.contains(']') || reason.contains('%') || reason.chars().any(char::is_control))
}

/// The rest of the discovery (`rest`), with the alias maps read and parsed beside it when
/// `hold` (they are the largest read); their errors still come after the rest's, where the
/// discovery reaches them.
fn beside_alias_maps(
    runner: &dyn Runner,
    postfix_dir: &Utf8Path,
    parse: ParseOptions,
    hold: bool,
    rest: impl FnOnce() -> Result<Server, MigrateError>,
) -> Result<Server, MigrateError> {
    let aliases =
        hold.then(|| discover::alias_map_settings(runner, Some(postfix_dir), &[], None, &parse));
    std::thread::scope(|scope| {
        let reading = aliases.map(|a| a.map(|s| scope.spawn(move || s.read(&parse))));
        let found = rest();
        let read = reading.map(|r| {
            r.and_then(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        });
        let mut server = found?;
        if let Some(read) = read {
            server.aliases = Some(read?);
        }
        Ok(server)
    })
}

impl Server {
    /// Read Postfix's and Dovecot's configuration and refuse what the migration cannot work
    /// with (exit 65 in the CLI, naming the setting).
    pub fn discover(
        runner: &dyn Runner,
        config: ServerConfig,
        mut options: MigrationOptions,
    ) -> Result<Self, MigrateError> {
        let dovecot = Dovecot::new(config.dovecot_config.clone(), runner);
        let settings = dovecot.settings()?;
        refuse_settings(dovecot.configuration()?)?;
        let files = OverlayFiles::beside(&config.dovecot_config);
        let overlay = match overlay::mode(dovecot.configuration()?, &files) {
            OverlayMode::Active => Some(files),
            OverlayMode::Off => None,
            OverlayMode::Incomplete(problems) => {
                return Err(Refusal::OverlayIncomplete { problems }.into())
            }
        };
        let passwd_file = match &overlay {
            Some(files) => {
                check_overlay_files(files)?;
                options.lock = login::LockMethod::Deny;
                files.location.clone()
            }
            None => in_place_passwd_file(&settings, options.lock)?,
        };
        if !reason_ok(&options.reason) {
            return Err(Refusal::BadReason(options.reason.clone()).into());
        }
        options.reason = options.reason.trim().to_string();
        if options.strategy == Strategy::Live {
            options.presync = true;
        }
        let Some(postfix_dir) = config.postfix_config.clone() else {
            return Err(MigrateError::Missing(
                "mailmig checks that Postfix hands the user's mail to Dovecot (mail written by anything else would land in the old location after the switch): give the Postfix configuration directory (--postfix-config DIR)",
            ));
        };
        let hold = options.strategy == Strategy::Hold;
        let parse = config.parse;
        beside_alias_maps(runner, &postfix_dir, parse, hold, || {
            let delivery = DeliveryConfig::read(runner, &postfix_dir)?;
            let mut server = Self {
                config,
                options,
                access_map: None,
                passwd_file,
                overlay,
                settings,
                delimiters: String::new(),
                aliases: None,
                delivery,
            };
            if hold {
                server.discover_postfix(runner, &dovecot, &postfix_dir)?;
            }
            Ok(server)
        })
    }

    /// The hold strategy's Postfix side: the access map, that smtpd consults it first, the
    /// delimiter (the alias maps are read beside it: [`Server::discover`]).
    fn discover_postfix(
        &mut self,
        runner: &dyn Runner,
        dovecot: &Dovecot<'_>,
        dir: &Utf8Path,
    ) -> Result<(), MigrateError> {
        let (map, map_type) = discover::access_map(runner, dir)?;
        let problems = discover::coverage_problems(runner, dir, &map)?;
        if !problems.is_empty() {
            return Err(Refusal::HoldNotCovering { map, problems }.into());
        }
        if self.options.lock.refuses_lmtp_passdb_lookups() && dovecot.lmtp_checks_passdb()? {
            return Err(Refusal::LmtpChecksPassdb.into());
        }
        self.access_map = Some((map, map_type));
        self.delimiters = postconf(runner, dir, &["recipient_delimiter"])?
            .get("recipient_delimiter")
            .cloned()
            .unwrap_or_default();
        Ok(())
    }

    /// Every address that reaches each user (one pass over the virtual alias maps for all
    /// users), with warnings for what a hold cannot cover. Empty without alias maps.
    pub fn hold_keys(&self, users: &[String]) -> Vec<HoldKeys> {
        let Some(aliases) = &self.aliases else {
            return users.iter().map(|_| HoldKeys::default()).collect();
        };
        let refs: Vec<&Table> = aliases.tables.iter().collect();
        // A single plan or migration walks the values; a batch indexes once for everyone.
        let vm = VirtualMap::for_mailboxes(&refs, aliases.options.clone(), users.len());
        users
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
                        aliases.location(Some(u.source)),
                        String::from_utf8_lossy(&u.key),
                        chain(&u.path),
                        reason_text(u.reason)
                    ));
                }
                HoldKeys { keys, warnings }
            })
            .collect()
    }

    /// Check and plan a run for each user (changes nothing): the preflight's refusals per user,
    /// the files read and parsed once for all.
    pub fn prepare(
        &self,
        runner: &dyn Runner,
        state: &StateDir,
        ids: &dyn IdResolver,
        users: &[String],
        to: &str,
    ) -> Result<Vec<Result<PreparedRun, MigrateError>>, MigrateError> {
        let since = crate::transaction::utc_now_rfc3339();
        // The alias walk (the large part for one user on a large map) runs beside the files'
        // reading and the checks that ask Postfix and Dovecot; only the hold keys' check waits.
        let (checked, keys) = std::thread::scope(|scope| {
            let keys = scope.spawn(|| self.hold_keys(users));
            let checked = self.read_inputs().map(|inputs| {
                let plan_inputs = inputs.plan_inputs(ids);
                let known = self.ask_many(runner, users, to);
                let facts: Vec<_> = users
                    .iter()
                    .map(|user| self.preflight(runner, &known, state, &plan_inputs, user, to))
                    .collect();
                (inputs, facts)
            });
            let keys = keys
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (checked, keys)
        });
        let (inputs, facts) = checked?;
        let plan_inputs = inputs.plan_inputs(ids);
        let prepared: Vec<Result<PreparedRun, MigrateError>> = facts
            .into_iter()
            .zip(keys)
            .map(|(facts, keys)| {
                let facts = self.with_hold_keys(&plan_inputs, facts?, keys)?;
                let options = self.run_options(&facts);
                let plan = build_plan(
                    &options,
                    &facts,
                    self.options.strategy,
                    &plan_inputs,
                    &since,
                )?;
                Ok(PreparedRun {
                    facts,
                    options,
                    plan,
                })
            })
            .collect();
        Ok(refuse_collisions(prepared))
    }

    /// The access map (hold strategy), the passwd-file (or the overlay's location file) and the
    /// deny overlay, read and parsed.
    fn read_inputs(&self) -> Result<Inputs, MigrateError> {
        let access = match &self.access_map {
            Some((m, _)) => Some(Table::parse(read_file(m)?, &self.config.parse)),
            None => None,
        };
        let passwd = PasswdFile::parse(read_file(&self.passwd_file)?, &self.passwd_options());
        let deny = match &self.overlay {
            Some(o) => Some(PasswdFile::parse(
                read_file(&o.deny)?,
                &self.passwd_options(),
            )),
            None => None,
        };
        Ok(Inputs {
            access,
            passwd,
            deny,
        })
    }

    /// How this Dovecot reads the passwd-file.
    fn passwd_options(&self) -> PasswdOptions {
        PasswdOptions {
            legacy_mail_field: self.settings.version.legacy_mail_field(),
            ..PasswdOptions::default()
        }
    }

    /// Lookups of users in the running Dovecot.
    pub fn lookup<'a>(&'a self, runner: &'a dyn Runner) -> Lookup<'a> {
        Lookup::new(runner, &self.config.dovecot_config, &self.settings)
    }

    /// For a batch, what the preflight asks Dovecot about every user (the fields of the
    /// location and the home; the target and the global location expanded, when templates),
    /// asked once for all; nothing for one user.
    fn ask_many(&self, runner: &dyn Runner, users: &[String], to: &str) -> Answers {
        if users.len() < 2 {
            return Answers::default();
        }
        let mut questions: Vec<Question> = dialect::shown_fields(self.settings.version)
            .iter()
            .chain(&["home"])
            .map(|f| Question::Field((*f).to_string()))
            .collect();
        let templates = [Some(to), self.settings.mail_location.as_deref()];
        questions.extend(
            templates
                .into_iter()
                .flatten()
                .filter(|t| t.contains('%'))
                .map(|t| Question::Expand(t.to_string())),
        );
        self.lookup(runner).ask_many(users, &questions)
    }

    /// A location that may be a template (`maildir:/var/vmail/%d/%n`, 2.4
    /// `mdbox:/var/vmail/%{user | domain}/%{user | username}/mdbox`): expanded for `user` by
    /// Dovecot itself (`doveadm user -e`), then validated as a location of that user.
    fn user_location(
        &self,
        lookup: Lookup<'_>,
        user: &str,
        text: &str,
    ) -> Result<Location, MigrateError> {
        if !text.contains('%') {
            return Ok(Location::parse(text)?);
        }
        let expanded = lookup.expand(user, text)?;
        if expanded.contains('%') {
            return Err(Refusal::Target(format!(
                "`{text}` expands to `{expanded}` for {user}: Dovecot {} does not know a variable in it{}",
                self.settings.version,
                if self.settings.version == DovecotVersion::V2_4 {
                    " (2.4 writes %{user | domain}, %{user | username}, ...)"
                } else {
                    ""
                }
            ))
            .into());
        }
        Ok(Location::parse(&expanded)?)
    }

    /// The checks that change nothing, for one user; the facts the plan needs (the hold keys
    /// apart: [`Server::with_hold_keys`]).
    fn preflight(
        &self,
        runner: &dyn Runner,
        known: &Answers,
        state: &StateDir,
        inputs: &PlanInputs<'_>,
        user: &str,
        to: &str,
    ) -> Result<UserFacts, MigrateError> {
        validate_user(user)?;
        let lookup = self.lookup(runner).knowing(known);
        let to = self.user_location(lookup, user, to)?;
        runs::clear_stale_marker(state, user)?;
        if let Some(run) = runs::marker(state, user)? {
            return Err(MigrateError::Unfinished {
                user: user.to_string(),
                run,
            });
        }
        let key = login::state_key(user, &PasswdOptions::default())?;
        if login::is_disabled(state, &key)? {
            return Err(Refusal::LockedOut {
                user: user.to_string(),
                state_file: login::state_file(state, &key),
            }
            .into());
        }
        let version = self.settings.version;
        dialect::check_target(version, &to).map_err(Refusal::Target)?;
        let from = lookup.location(user)?;
        let home = lookup.field(user, "home")?;
        self.check_locations(user, &from, &to, &home)?;
        if let Some(dir) = &self.config.postfix_config {
            let delivery = self.delivery.delivery_of(runner, dir, user)?;
            if !delivery.by_dovecot {
                return Err(Refusal::NotDeliveredByDovecot {
                    user: user.to_string(),
                    explanation: delivery.explanation,
                }
                .into());
            }
        }
        if self.overlay.is_none() {
            self.check_record(inputs, user)?;
        }
        Ok(UserFacts {
            user: user.to_string(),
            from,
            to,
            home,
            hold_keys: Vec::new(),
            warnings: Vec::new(),
        })
    }

    /// The addresses to hold for the user, checked against the access map's records: none may
    /// already say something else for them.
    fn with_hold_keys(
        &self,
        inputs: &PlanInputs<'_>,
        facts: UserFacts,
        keys: HoldKeys,
    ) -> Result<UserFacts, MigrateError> {
        let user = &facts.user;
        if let (Some((map, _)), Some(table)) = (&self.access_map, inputs.access) {
            let key_bytes: Vec<Vec<u8>> =
                keys.keys.iter().map(|k| k.clone().into_bytes()).collect();
            let plan = plan_hold_keys(table, user, &key_bytes);
            if !plan.conflicts.is_empty() {
                return Err(Refusal::HoldConflicts {
                    map: map.clone(),
                    user: user.to_string(),
                    conflicts: plan
                        .conflicts
                        .iter()
                        .map(|(k, v, l)| {
                            format!(
                                "line {}: `{} {}`",
                                l.unwrap_or(0),
                                String::from_utf8_lossy(k),
                                String::from_utf8_lossy(v)
                            )
                        })
                        .collect(),
                }
                .into());
            }
        }
        Ok(UserFacts {
            hold_keys: keys.keys,
            warnings: keys.warnings,
            ..facts
        })
    }

    /// In place: the user's record is in the passwd-file and can take the location fields.
    fn check_record(&self, inputs: &PlanInputs<'_>, user: &str) -> Result<(), MigrateError> {
        let Some(entry) = inputs.passwd.lookup(user.as_bytes(), inputs.ids) else {
            return Err(MigrateError::NoRecord {
                user: user.to_string(),
                passwd_file: self.passwd_file.clone(),
            });
        };
        if entry.legacy_mail().is_some_and(|m| !m.is_empty()) {
            return Err(Refusal::LegacyMailField {
                passwd_file: self.passwd_file.clone(),
                user: user.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// The source, the target and the settings dsync needs agree; the target is free.
    fn check_locations(
        &self,
        user: &str,
        from: &Location,
        to: &Location,
        home: &str,
    ) -> Result<(), MigrateError> {
        if (from.path().starts_with('~') || to.path().starts_with('~')) && !home.starts_with('/') {
            return Err(Refusal::NoHome {
                user: user.to_string(),
            }
            .into());
        }
        if from.same_storage(to, home) {
            return Err(MigrateError::AlreadyDone {
                user: user.to_string(),
                to: to.to_string(),
            });
        }
        check_nesting(from, to, home)?;
        if from.format() != to.format()
            && self
                .settings
                .namespaces
                .iter()
                .any(|ns| ns.separator.is_empty())
        {
            return Err(Refusal::NoSeparator {
                from: from.format().to_string(),
                to: to.format().to_string(),
            }
            .into());
        }
        if self.settings.quota_backend.as_deref() == Some("maildir") && to.format() != "maildir" {
            return Err(Refusal::MaildirQuota {
                format: to.format().to_string(),
            }
            .into());
        }
        if matches!(to.format(), "mdbox" | "sdbox") && to.option("INDEX") == Some("MEMORY") {
            return Err(Refusal::Target(format!(
                "`{to}`: INDEX=MEMORY with {}: dbox keeps message data in its indexes (mdbox's map, sdbox's GUIDs and flags), so in-memory indexes lose them; give INDEX= a directory or leave it out",
                to.format()
            ))
            .into());
        }
        // Every directory the target writes (INDEX=, CONTROL=, ALT= too) must be free.
        for target in to.storage_paths(home) {
            if let Ok(mut entries) = fs_err::read_dir(&target) {
                if entries.next().is_some() {
                    return Err(Refusal::TargetNotEmpty { target }.into());
                }
            } else if Utf8Path::new(&target).exists() {
                return Err(Refusal::TargetExists { target }.into());
            }
        }
        Ok(())
    }

    /// What the admin must do after converting users to `format` on this server (mdbox needs
    /// `doveadm purge` scheduled; full-text search indexes are rebuilt with `fts rescan`).
    pub fn reminders(&self, format: &str) -> Vec<String> {
        let mut out = Vec::new();
        if format == "mdbox" {
            out.push("mdbox keeps expunged messages' space until `doveadm purge`: schedule `doveadm purge -A` (e.g. nightly)".to_string());
        }
        if self.settings.fts {
            out.push("a full-text search plugin is loaded: its indexes describe the old location; run `doveadm fts rescan -u USER` for each migrated user (or -A)".to_string());
        }
        out
    }

    /// The options a run of `facts` records in its journal.
    pub fn run_options(&self, facts: &UserFacts) -> RunOptions {
        RunOptions {
            dovecot_config: self.config.dovecot_config.clone(),
            postfix_config: self.config.postfix_config.clone(),
            access_map: self.access_map.as_ref().map(|(m, _)| m.clone()),
            map_type: self.access_map.as_ref().map(|(_, t)| *t),
            passwd_file: self.passwd_file.clone(),
            lock: self.options.lock,
            hold_action: self.options.hold_action,
            reason: self.options.reason.clone(),
            presync: self.options.presync,
            max_hold_secs: self.options.max_hold.as_secs().max(1),
            home: facts.home.clone(),
            delimiters: self.delimiters.clone(),
            hold_keys: facts.hold_keys.clone(),
            smtputf8: self.config.parse.smtputf8,
            auth_cache: self.settings.auth_cache_enabled,
            dovecot_version: self.settings.version,
            quota: self.settings.quota_backend.clone(),
            pop3: self.settings.pop3,
            min_free: self.options.min_free,
            overlay: self.overlay.clone(),
            default_driver: self
                .settings
                .mail_location
                .as_deref()
                .and_then(|l| l.split_once(':'))
                .map(|(driver, _)| driver.to_string()),
        }
    }
}
