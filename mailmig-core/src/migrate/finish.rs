//! `mailmig finish`: the end of a campaign. When every user of the server (or of a domain) is
//! on the target, the admin makes the target the global default (mailmig prints the exact
//! setting; it never edits `dovecot.conf`), and the per-user overrides the migrations wrote
//! then repeat the default: [`finish`] removes those, in one passwd-file transaction, checking
//! with `doveadm user` that every user's location is the same before and after (otherwise the
//! file is put back as it was).

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use super::error::{read_file, MigrateError, Refusal};
use super::lookup::Lookup;
use super::{argv, dialect, unfinished_runs, Location};
use crate::dovecot::{DovecotVersion, IdResolver, PasswdFile, PasswdOptions};
use crate::login::{Dovecot, DovecotSettings};
use crate::process::Runner;
use crate::state::StateDir;
use crate::transaction::{CommitOptions, FileTransaction};

/// How long Dovecot may take to show the edited passwd-file.
const SHOWN_WITHIN: Duration = Duration::from_secs(10);

/// What `finish` is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishOptions {
    /// Dovecot's configuration file.
    pub dovecot_config: Utf8PathBuf,
    /// The campaign's target: a location or a template (`mdbox:~/mdbox`).
    pub to: String,
    /// Only the users of this domain (`*@DOMAIN`).
    pub domain: Option<String>,
    /// Remove the per-user overrides that equal the global default.
    pub remove_overrides: bool,
}

/// A user not on the target yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserElsewhere {
    /// The user.
    pub user: String,
    /// Where Dovecot has them.
    pub location: String,
}

/// One setting to put in `dovecot.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalSetting {
    /// The setting (`mail_location`; 2.4 `mail_driver`, `mail_path`).
    pub key: String,
    /// Its value.
    pub value: String,
}

/// A user's override fields that repeat the global default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The user.
    pub user: String,
    /// The fields (`userdb_mail=...`; 2.4 `userdb_mail_driver=...`, `userdb_mail_path=...`).
    pub fields: Vec<String>,
}

/// Where the campaign stands, and what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinishReport {
    /// The Dovecot release (how the global setting is spelled).
    pub version: DovecotVersion,
    /// Users considered.
    pub users: usize,
    /// Users on the target.
    pub on_target: usize,
    /// The others.
    pub elsewhere: Vec<UserElsewhere>,
    /// The global setting that makes the target the default.
    pub global_change: Vec<GlobalSetting>,
    /// The global default already puts every user at the target.
    pub global_is_target: bool,
    /// Overrides that repeat the global default (removable once it is the target).
    pub overrides: Vec<Override>,
    /// They were removed (and every user checked).
    pub removed: bool,
    /// Where the removal is recorded (its fields, to put them back by hand).
    pub record: Option<Utf8PathBuf>,
}

/// Why `finish` cannot remove the overrides.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FinishError {
    /// The campaign has not ended.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// Not every user is on the target.
    #[error("{} of {users} user(s) are not on {to} yet (first: {} on {}); finish the campaign first", elsewhere.len(), elsewhere[0].user, elsewhere[0].location)]
    NotFinished {
        /// Users considered.
        users: usize,
        /// The target.
        to: String,
        /// The others.
        elsewhere: Vec<UserElsewhere>,
    },
    /// The global default is not the target yet: removing overrides would move users.
    #[error("the global default is not {to} yet ({}): set {} in dovecot.conf, reload Dovecot, then run finish again", current.as_deref().unwrap_or("unset"), change.iter().map(|s| format!("`{} = {}`", s.key, s.value)).collect::<Vec<_>>().join(" and "))]
    GlobalNotTarget {
        /// The target.
        to: String,
        /// The global location now.
        current: Option<String>,
        /// What to set.
        change: Vec<GlobalSetting>,
    },
    /// The passwd-file cannot be edited.
    #[error(transparent)]
    Transaction(#[from] crate::transaction::TransactionError),
    /// After the removal a user's location changed: the file was put back.
    #[error("after the removal Dovecot has {user} on {after} instead of {before}; {passwd_file} was put back as it was")]
    Moved {
        /// The user.
        user: String,
        /// Before.
        before: String,
        /// After.
        after: String,
        /// The passwd-file.
        passwd_file: Utf8PathBuf,
    },
}

/// The global settings that make `to` the default.
pub fn global_change(version: DovecotVersion, to: &Location) -> Vec<GlobalSetting> {
    dialect::location_fields(version, to)
        .into_iter()
        .map(|f| GlobalSetting {
            key: match f.key {
                "userdb_mail" => "mail_location".to_string(),
                k => k.trim_start_matches("userdb_").to_string(),
            },
            value: f.value,
        })
        .collect()
}

/// See where every user is, and (with `remove_overrides`) remove the overrides that repeat the
/// global default.
pub fn finish(
    runner: &dyn Runner,
    state: &StateDir,
    ids: &dyn IdResolver,
    options: &FinishOptions,
) -> Result<FinishReport, FinishError> {
    if let Some(run) = unfinished_runs(state)?.runs.first() {
        let user = super::journal::read(state, run)
            .map(|(h, _)| h.plan.user)
            .unwrap_or_default();
        return Err(MigrateError::Unfinished {
            user,
            run: run.clone(),
        }
        .into());
    }
    let settings = Dovecot::new(options.dovecot_config.clone(), runner)
        .settings()
        .map_err(MigrateError::from)?;
    let passwd_file = match settings.passwd_files.as_slice() {
        [one] => one.clone(),
        [] => return Err(MigrateError::from(Refusal::NoPasswdFile).into()),
        _ => return Err(MigrateError::from(Refusal::SeveralPasswdFiles).into()),
    };
    let lookup = Lookup::new(runner, &options.dovecot_config, &settings);
    let to = Location::parse(&options.to).map_err(MigrateError::from)?;
    let users = list_users(runner, options)?;
    let mut report = FinishReport {
        version: settings.version,
        users: users.len(),
        on_target: 0,
        elsewhere: Vec::new(),
        global_change: global_change(settings.version, &to),
        global_is_target: true,
        overrides: Vec::new(),
        removed: false,
        record: None,
    };
    let bytes = read_file(&passwd_file)?;
    let file = PasswdFile::parse(bytes.clone(), &PasswdOptions::default());
    let mut before = Vec::with_capacity(users.len());
    for user in &users {
        let now = lookup.location(user)?;
        let home = lookup.field(user, "home")?;
        let target = expanded(&lookup, user, &options.to)?;
        let global = match settings.mail_location.as_deref() {
            Some(g) => Some(expanded(&lookup, user, g)?),
            None => None,
        };
        let global_ok = global
            .as_ref()
            .is_some_and(|g| same_location(g, &target, &home));
        report.global_is_target &= global_ok;
        if same_location(&now, &target, &home) {
            report.on_target += 1;
        } else {
            report.elsewhere.push(UserElsewhere {
                user: user.clone(),
                location: now.to_string(),
            });
        }
        if let Some(o) = repeated_override(&file, ids, &lookup, &settings, user, &home, &target)? {
            report.overrides.push(o);
        }
        before.push(now);
    }
    if !options.remove_overrides || report.overrides.is_empty() {
        return Ok(report);
    }
    if !report.elsewhere.is_empty() {
        return Err(FinishError::NotFinished {
            users: report.users,
            to: options.to.clone(),
            elsewhere: report.elsewhere,
        });
    }
    if !report.global_is_target {
        return Err(FinishError::GlobalNotTarget {
            to: options.to.clone(),
            current: settings.mail_location.clone(),
            change: report.global_change,
        });
    }
    report.record = Some(record(state, &passwd_file, &report.overrides)?);
    remove_overrides(
        runner,
        ids,
        &lookup,
        &passwd_file,
        &report.overrides,
        &users,
        &before,
    )?;
    report.removed = true;
    Ok(report)
}

/// The same storage with the same options (`INDEX=`, `LAYOUT=`, ...): where the user's mail
/// and indexes are, exactly.
fn same_location(a: &Location, b: &Location, home: &str) -> bool {
    let options = |l: &Location| l.as_str().splitn(3, ':').nth(2).map(str::to_string);
    a.same_storage(b, home) && options(a) == options(b)
}

/// A location or template, expanded for `user`.
fn expanded(lookup: &Lookup<'_>, user: &str, text: &str) -> Result<Location, MigrateError> {
    let text = if text.contains('%') {
        lookup.expand(user, text)?
    } else {
        text.to_string()
    };
    Ok(Location::parse(&text)?)
}

/// `doveadm user '*'` (or `'*@DOMAIN'`): every user the userdb iterates.
fn list_users(runner: &dyn Runner, options: &FinishOptions) -> Result<Vec<String>, MigrateError> {
    let mask = match &options.domain {
        Some(d) => {
            super::validate_user(&format!("x@{d}"))?;
            format!("*@{d}")
        }
        None => "*".to_string(),
    };
    let out = runner.run_expect(
        &argv::doveadm(&options.dovecot_config, &["user", &mask]),
        None,
        &[0],
    )?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// The user's location fields in the passwd-file, when they are all there and put the user
/// where the global default (expanded for the user) does.
fn repeated_override(
    file: &PasswdFile,
    ids: &dyn IdResolver,
    lookup: &Lookup<'_>,
    settings: &DovecotSettings,
    user: &str,
    home: &str,
    target: &Location,
) -> Result<Option<Override>, MigrateError> {
    let Some(entry) = file.lookup(user.as_bytes(), ids) else {
        return Ok(None);
    };
    let extra = entry.extra();
    let mut values = Vec::new();
    for key in dialect::location_keys(settings.version) {
        match extra.iter().find(|f| f.key.as_ref() == key.as_bytes()) {
            Some(f) => values
                .push(String::from_utf8_lossy(f.value.as_deref().unwrap_or_default()).into_owned()),
            None => return Ok(None),
        }
    }
    let text = match values.as_slice() {
        [mail] => mail.clone(),
        [driver, path] => format!("{driver}:{path}"),
        _ => return Ok(None),
    };
    let location = expanded(lookup, user, &text)?;
    if !same_location(&location, target, home) {
        return Ok(None);
    }
    let fields = dialect::location_keys(settings.version)
        .iter()
        .zip(&values)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Ok(Some(Override {
        user: user.to_string(),
        fields,
    }))
}

/// Record what is removed (fields only, no password) in `STATE/finish/TIME.json`.
fn record(
    state: &StateDir,
    passwd_file: &Utf8PathBuf,
    overrides: &[Override],
) -> Result<Utf8PathBuf, MigrateError> {
    #[derive(Serialize)]
    struct Record<'a> {
        time: String,
        passwd_file: &'a Utf8PathBuf,
        removed: &'a [Override],
    }
    let time = crate::transaction::utc_now_rfc3339();
    let name: String = format!("{}.json", time.replace([':', '-'], ""));
    let bytes = serde_json::to_vec_pretty(&Record {
        time,
        passwd_file,
        removed: overrides,
    })
    .unwrap_or_default();
    state.write("finish", &name, &bytes)?;
    Ok(state.path().join("finish").join(name))
}

/// Remove the overrides in one transaction, then check every user is where they were; put the
/// file back otherwise.
fn remove_overrides(
    runner: &dyn Runner,
    ids: &dyn IdResolver,
    lookup: &Lookup<'_>,
    passwd_file: &Utf8PathBuf,
    overrides: &[Override],
    users: &[String],
    before: &[Location],
) -> Result<(), FinishError> {
    let edit_error = |source| MigrateError::Edit {
        passwd_file: passwd_file.clone(),
        source,
    };
    let tx = FileTransaction::prepare(passwd_file)?;
    let original = tx.shared_original();
    let mut file = PasswdFile::parse_shared(original.clone(), &PasswdOptions::default());
    for o in overrides {
        for field in &o.fields {
            let key = field.split_once('=').map_or(field.as_str(), |(k, _)| k);
            file.remove_extra(o.user.as_bytes(), key.as_bytes(), ids)
                .map_err(edit_error)?;
        }
    }
    tx.commit_document(&file, &CommitOptions::default())?;
    let dovecot = Dovecot::new(lookup.config().to_owned(), runner);
    let flush = || {
        for o in overrides {
            dovecot
                .flush_auth_cache(&o.user)
                .map_err(MigrateError::from)?;
        }
        Ok::<(), MigrateError>(())
    };
    flush()?;
    for (user, was) in users.iter().zip(before) {
        if let Err(after) = wait_same(lookup, user, was) {
            let put_back = FileTransaction::prepare(passwd_file)
                .and_then(|t| t.commit(&original, &CommitOptions::default()));
            flush()?;
            put_back?;
            return Err(FinishError::Moved {
                user: user.clone(),
                before: was.to_string(),
                after,
                passwd_file: passwd_file.clone(),
            });
        }
    }
    Ok(())
}

/// Wait until Dovecot shows `user` at `was` again; `Err` with where it shows them instead.
pub(super) fn wait_same(lookup: &Lookup<'_>, user: &str, was: &Location) -> Result<(), String> {
    let deadline = Instant::now() + SHOWN_WITHIN;
    let home = lookup
        .field(user, "home")
        .map_err(|e| crate::display_chain(&e))?;
    loop {
        let now = lookup
            .location(user)
            .map_err(|e| crate::display_chain(&e))?;
        if same_location(&now, was, &home) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(now.to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_change_is_spelled_for_each_release() {
        let to = Location::parse("mdbox:~/mdbox").expect("valid");
        let keys = |v| {
            global_change(v, &to)
                .into_iter()
                .map(|s| format!("{} = {}", s.key, s.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(DovecotVersion::V2_3),
            ["mail_location = mdbox:~/mdbox"]
        );
        assert_eq!(
            keys(DovecotVersion::V2_4),
            ["mail_driver = mdbox", "mail_path = ~/mdbox"]
        );
    }
}
