//! `mailmig cleanup`: what finished runs left behind, removed once it is safe.
//!
//! A migrated user's old location is kept after the run (the way back, and what an admin checks
//! first when a user misses mail); a rolled-back run's copy is moved aside, never deleted. Both
//! are removed here, and only when:
//! - the run ended (`done`, or `rolled back` for its moved-aside copy) at least `older_than` ago;
//! - for an old location, Dovecot reports the user on the run's new location now;
//! - nothing else lives inside the tree: no path Dovecot gives for the user (home, sieve, a
//!   namespace's location, the current location and its index/control directories) is inside
//!   it, and no sieve script sits at its top.
//!
//! Otherwise the item is kept and the reason said. Removal is journaled in the run's journal
//! (`cleanup-start` with the paths and sizes before anything is removed, `cleaned-up` after), so
//! an interrupted cleanup is finished by the next one. Trees are removed through directory
//! handles, never following a link ([`crate::safe_fs::Dir::remove_tree`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use camino::Utf8PathBuf;
use serde::Serialize;

use super::error::MigrateError;
use super::journal::{self, Event, Journal, Outcome, Record, RunHeader, RunState, StepData};
use super::lookup::Lookup;
use super::runs;
use crate::login::{Dovecot, DovecotSettings};
use crate::process::Runner;
use crate::safe_fs::{self, TreeUsage};
use crate::state::StateDir;

/// Names at the top of a mail tree that are not mail: a sieve script or its compiled form.
const NOT_MAIL: &[&str] = &[
    "sieve",
    ".dovecot.sieve",
    ".dovecot.svbin",
    "dovecot.sieve",
    ".sieve",
];

/// What to clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupOptions {
    /// Only runs that ended at least this long ago.
    pub older_than: Duration,
    /// List what would go; remove nothing.
    pub dry_run: bool,
}

/// What a run left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Leftover {
    /// The old location of a migrated user.
    OldLocation,
    /// The target copy of a rolled-back run, moved aside.
    RolledBackCopy,
}

/// Why a leftover stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum KeepReason {
    /// The run ended too recently.
    TooRecent {
        /// When it ended.
        ended: String,
    },
    /// Dovecot does not report the user on the run's new location.
    NotOnNewLocation {
        /// Where Dovecot has the user now.
        now: String,
    },
    /// Something else lives inside the tree.
    SomethingInside {
        /// What (a `doveadm user` field, a namespace, a file name).
        what: String,
        /// Its path.
        path: Utf8PathBuf,
    },
    /// Dovecot cannot tell where the user is (unknown user, doveadm failing).
    NoAnswer {
        /// The error, in words.
        error: String,
    },
}

impl std::fmt::Display for KeepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooRecent { ended } => write!(f, "the run ended at {ended}, within --older-than"),
            Self::NotOnNewLocation { now } => {
                write!(
                    f,
                    "Dovecot has the user on {now}, not on the run's new location"
                )
            }
            Self::SomethingInside { what, path } => {
                write!(f, "{what} ({path}) is inside it")
            }
            Self::NoAnswer { error } => write!(f, "Dovecot cannot say where the user is: {error}"),
        }
    }
}

/// What happens to a leftover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Verdict {
    /// Removed (or, with `dry_run`, would be).
    Remove,
    /// Kept, for this reason.
    Keep(KeepReason),
}

/// One leftover of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanupItem {
    /// The run.
    pub run: String,
    /// The user.
    pub user: String,
    /// What it is.
    pub kind: Leftover,
    /// Its trees (or mbox files) that still exist.
    pub paths: Vec<Utf8PathBuf>,
    /// What they hold.
    pub usage: TreeUsage,
    /// Removed or kept.
    pub verdict: Verdict,
}

/// Every ended run's leftovers, each removed when safe (unless `dry_run`). Runs whose journal
/// cannot be read are skipped by [`journal::runs`]' caller's choice: their error is returned
/// beside the others.
pub fn cleanup(
    runner: &dyn Runner,
    state: &StateDir,
    options: CleanupOptions,
) -> Result<Vec<Result<CleanupItem, MigrateError>>, MigrateError> {
    let mut settings: HashMap<Utf8PathBuf, DovecotSettings> = HashMap::new();
    let mut out = Vec::new();
    for run in journal::runs(state)? {
        let item = (|| {
            let (header, records) = journal::read(state, &run)?;
            let Some(mut item) = leftover(&header, &records)? else {
                return Ok(None);
            };
            let s = RunState::of(&records);
            let config = &header.options.dovecot_config;
            if !settings.contains_key(config) {
                let found = Dovecot::new(config.clone(), runner).settings()?;
                settings.insert(config.clone(), found);
            }
            let lookup = Lookup::new(runner, config, &settings[config]);
            if let Some(reason) = keep_reason(&lookup, &header, &s, &item, options.older_than) {
                item.verdict = Verdict::Keep(reason);
            } else if !options.dry_run {
                remove(state, &header, &mut item)?;
            }
            Ok(Some(item))
        })();
        match item {
            Ok(Some(i)) => out.push(Ok(i)),
            Ok(None) => {}
            Err(e) => out.push(Err(e)),
        }
    }
    Ok(out)
}

/// What an ended run left that still exists, not yet judged (`None`: nothing, or the run has
/// not ended).
fn leftover(header: &RunHeader, records: &[Record]) -> Result<Option<CleanupItem>, MigrateError> {
    let s = RunState::of(records);
    let home = &header.options.home;
    let (kind, paths): (Leftover, Vec<String>) = match s.outcome {
        Some(Outcome::Done) => (Leftover::OldLocation, header.plan.from.storage_paths(home)),
        Some(Outcome::RolledBack) => (
            Leftover::RolledBackCopy,
            header
                .plan
                .to
                .storage_paths(home)
                .into_iter()
                .map(|p| {
                    format!(
                        "{}.mailmig-rolled-back-{}",
                        p.trim_end_matches('/'),
                        header.run
                    )
                })
                .collect(),
        ),
        _ => return Ok(None),
    };
    let mut item = CleanupItem {
        run: header.run.clone(),
        user: header.plan.user.clone(),
        kind,
        paths: Vec::new(),
        usage: TreeUsage::default(),
        verdict: Verdict::Remove,
    };
    for p in paths {
        let p = Utf8PathBuf::from(p.trim_end_matches('/'));
        if item.paths.iter().any(|q| p.starts_with(q)) {
            continue;
        }
        let measured = safe_fs::measure(&p).map_err(|source| MigrateError::Read {
            path: p.clone(),
            source,
        })?;
        if let Some(m) = measured {
            item.usage.add(m.usage);
            item.paths.push(m.path);
        }
    }
    Ok((!item.paths.is_empty()).then_some(item))
}

/// Why the leftover must stay, if it must.
fn keep_reason(
    lookup: &Lookup<'_>,
    header: &RunHeader,
    s: &RunState,
    item: &CleanupItem,
    older_than: Duration,
) -> Option<KeepReason> {
    let ended = s.closed_at.clone().unwrap_or_default();
    let recent = humantime::parse_rfc3339_weak(&ended)
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_none_or(|age| age < older_than);
    if recent {
        return Some(KeepReason::TooRecent { ended });
    }
    let user = &header.plan.user;
    let no_answer = |e: MigrateError| KeepReason::NoAnswer {
        error: crate::display_chain(&e),
    };
    let now = match lookup.location(user) {
        Ok(l) => l,
        Err(e) => return Some(no_answer(e)),
    };
    let fields = match lookup.fields(user) {
        Ok(f) => f,
        Err(e) => return Some(no_answer(e)),
    };
    let home = fields
        .iter()
        .find(|f| f.key == "home")
        .map_or(header.options.home.clone(), |f| f.value.clone());
    if item.kind == Leftover::OldLocation && !now.same_storage(&header.plan.to, &home) {
        return Some(KeepReason::NotOnNewLocation {
            now: now.to_string(),
        });
    }
    let mut claims: Vec<(String, String)> = fields
        .iter()
        .map(|f| (format!("`doveadm user` field {}", f.key), f.value.clone()))
        .collect();
    claims.extend(
        now.storage_paths(&home)
            .into_iter()
            .map(|p| ("the user's current location".to_string(), p)),
    );
    claims.extend(lookup.settings().namespaces.iter().filter_map(|n| {
        n.location
            .clone()
            .map(|l| (format!("namespace {}'s location", n.name), l))
    }));
    for (what, value) in claims {
        for path in paths_in(&value, &home) {
            if item.paths.iter().any(|t| path.starts_with(t)) {
                return Some(KeepReason::SomethingInside { what, path });
            }
        }
    }
    for top in &item.paths {
        let Ok(r) = safe_fs::resolve(top) else {
            continue;
        };
        let Ok(dir) = r.dir.open_subdir(&r.name) else {
            continue;
        };
        for name in NOT_MAIL {
            if dir.lstat(name).ok().flatten().is_some() {
                return Some(KeepReason::SomethingInside {
                    what: "a sieve script".into(),
                    path: top.join(name),
                });
            }
        }
    }
    None
}

/// The absolute paths in a setting's value (`~/` expanded): the pieces of a location
/// (`FORMAT:PATH:KEY=PATH`) or a plain path.
fn paths_in(value: &str, home: &str) -> Vec<Utf8PathBuf> {
    value
        .split([':', '=', ',', ';', ' ', '\t'])
        .filter_map(|piece| {
            let p = match piece.strip_prefix('~') {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    format!("{}{rest}", home.trim_end_matches('/'))
                }
                _ => piece.to_string(),
            };
            p.starts_with('/')
                .then(|| Utf8PathBuf::from(p.trim_end_matches('/')))
        })
        .collect()
}

/// Remove the leftover, journaled in the run's journal.
fn remove(
    state: &StateDir,
    header: &RunHeader,
    item: &mut CleanupItem,
) -> Result<(), MigrateError> {
    let _lock = runs::lock_user(state, &item.user)?;
    let (mut journal, _, _) = Journal::open(state, &header.run)?;
    let record = |event, usage| Record {
        time: crate::transaction::utc_now_rfc3339(),
        step: None,
        event,
        data: Some(StepData::Cleanup {
            paths: item.paths.clone(),
            usage,
        }),
        message: None,
        outcome: None,
    };
    journal.append(&record(Event::CleanupStart, item.usage))?;
    let mut removed = TreeUsage::default();
    for path in &item.paths {
        let fail = |source| MigrateError::Read {
            path: path.clone(),
            source,
        };
        let r = safe_fs::resolve(path).map_err(fail)?;
        match &r.meta {
            Some(m) if m.is_dir() => {
                removed.add(r.dir.remove_tree(&r.name).map_err(fail)?);
            }
            Some(_) => {
                r.dir.remove_file(&r.name).map_err(fail)?;
                r.dir.sync().map_err(fail)?;
                removed.files += 1;
            }
            None => {}
        }
    }
    journal.append(&record(Event::CleanedUp, removed))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Utf8PathBuf {
        camino::Utf8Path::new(s).to_owned()
    }

    #[test]
    fn paths_are_found_in_locations_and_plain_values() {
        assert_eq!(
            paths_in("maildir:~/Maildir:INDEX=/idx/u:LAYOUT=fs", "/h/a"),
            vec![p("/h/a/Maildir"), p("/idx/u")]
        );
        assert_eq!(
            paths_in("~/sieve/active.sieve", "/h/a/"),
            vec![p("/h/a/sieve/active.sieve")]
        );
        assert_eq!(paths_in("~", "/h/a"), vec![p("/h/a")]);
        assert!(paths_in("5000", "/h").is_empty());
        assert!(paths_in("~other/x", "/h").is_empty());
    }
}
