//! Ending a campaign through the overlay. `mailmig overlay fold` (a passwd-file primary) writes
//! every overlay record's location fields into the user's primary record in one rewrite, then
//! prunes. `mailmig overlay prune`: a location-overlay record is
//! removed once the primary databases alone put its user at the same location — asked of Dovecot
//! itself, through a private instance without the overlay
//! ([`crate::dovecot::primary::PrimaryOnly`]) — so that removing it moves no one. Removals are one
//! transaction of the overlay file; afterwards every pruned user is checked with the running
//! Dovecot, and the file is put back if one of them moved.

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use super::error::{read_file, refuse_generated, MigrateError};
use super::finish::wait_same;
use super::lookup::Lookup;
use super::runs;
use crate::dovecot::overlay::{self, OverlayMode, OverlayProblem};
use crate::dovecot::primary::{PrimaryError, PrimaryOnly};
use crate::dovecot::{IdResolver, PasswdFile, PasswdOptions};
use crate::login::Dovecot;
use crate::process::Runner;
use crate::state::StateDir;
use crate::transaction::{CommitOptions, FileTransaction, TransactionError};

/// Why a record stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Kept {
    /// The primary databases put the user elsewhere.
    PrimaryDiffers {
        /// Where the overlay puts them (the running Dovecot's answer).
        overlay: String,
        /// Where the primary databases alone put them.
        primary: String,
    },
    /// The primary databases do not know the user.
    NotInPrimary,
    /// The primary passwd-file has no record Dovecot uses for the user (fold).
    NoPrimaryRecord,
    /// A run of the user is unfinished: it may still undo its switch.
    Unfinished {
        /// The run.
        run: String,
    },
}

/// A record that stays, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptRecord {
    /// The user.
    pub user: String,
    /// Why.
    pub kept: Kept,
}

/// A record removed (or, with `dry_run`, to remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrunedRecord {
    /// The user.
    pub user: String,
    /// Where they are, with and without the record.
    pub location: String,
}

/// What `prune` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// The location overlay.
    pub file: Utf8PathBuf,
    /// Nothing was written.
    pub dry_run: bool,
    /// The records removed.
    pub removed: Vec<PrunedRecord>,
    /// The records kept.
    pub kept: Vec<KeptRecord>,
}

/// Why `prune` failed; the overlay file is as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// The overlay is not in place.
    #[error("Dovecot does not read mailmig's overlay as measured (see `mailmig overlay check`):\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    NotActive {
        /// What is wrong.
        problems: Vec<OverlayProblem>,
    },
    /// Dovecot or a lookup failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The private instance failed.
    #[error(transparent)]
    Primary(#[from] PrimaryError),
    /// The overlay file cannot be read or written.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// Fold needs exactly one primary passwd-file.
    #[error("fold writes the overlay into the primary passwd-file, and this Dovecot has {count} of them besides the overlay; with SQL or LDAP, change the database (`mailmig overlay export`) and prune")]
    NotOnePasswdFile {
        /// How many.
        count: usize,
    },
    /// A pruned user moved: the file was put back.
    #[error("after the removal Dovecot has {user} on {after} instead of {before}; {file} was put back as it was")]
    Moved {
        /// The user.
        user: String,
        /// Where they were.
        before: String,
        /// Where Dovecot put them.
        after: String,
        /// The overlay file.
        file: Utf8PathBuf,
    },
}

impl From<crate::dovecot::DovecotError> for PruneError {
    fn from(e: crate::dovecot::DovecotError) -> Self {
        Self::Migrate(e.into())
    }
}

/// The overlay files, when Dovecot reads them as measured.
fn active(dovecot: &Dovecot<'_>) -> Result<overlay::OverlayFiles, PruneError> {
    let files = dovecot.overlay_files();
    match overlay::mode(dovecot.configuration()?, &files) {
        OverlayMode::Active => Ok(files),
        OverlayMode::Incomplete(problems) => Err(PruneError::NotActive { problems }),
        OverlayMode::Off => Err(PruneError::NotActive {
            problems: overlay::check(dovecot.configuration()?, &files),
        }),
    }
}

/// What `fold` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoldReport {
    /// The primary passwd-file.
    pub passwd_file: Utf8PathBuf,
    /// Nothing was written.
    pub dry_run: bool,
    /// The users whose overlay fields were written into their primary record.
    pub folded: Vec<String>,
    /// The users left in the overlay, and why.
    pub skipped: Vec<KeptRecord>,
    /// The prune that followed the rewrite (none with `dry_run` or nothing folded).
    pub prune: Option<PruneReport>,
}

/// A passwd-file primary: write each location-overlay record's fields into the user's primary
/// record, all in one transaction of the primary (refused when a tool generates it), then
/// [`prune`] — which removes each record once the primary alone gives the same location, checked
/// by Dovecot. Users with an unfinished run or without a primary record stay in the overlay.
pub fn fold(
    runner: &dyn Runner,
    state: &StateDir,
    ids: &dyn IdResolver,
    dovecot_config: &Utf8Path,
    dry_run: bool,
) -> Result<FoldReport, PruneError> {
    let dovecot = Dovecot::new(dovecot_config.to_owned(), runner);
    let files = active(&dovecot)?;
    let settings = dovecot.settings()?;
    let passwd_file = match settings.passwd_files.as_slice() {
        [one] => one.clone(),
        other => return Err(PruneError::NotOnePasswdFile { count: other.len() }),
    };
    let tx = FileTransaction::prepare(&passwd_file)?;
    refuse_generated(&passwd_file, tx.original())?;
    let options = PasswdOptions {
        legacy_mail_field: settings.version.legacy_mail_field(),
        ..PasswdOptions::default()
    };
    let mut primary = PasswdFile::parse_shared(tx.shared_original(), &options);
    let bytes = read_file(&files.location)?;
    let overlay_file = PasswdFile::parse(bytes, &PasswdOptions::default());
    let mut report = FoldReport {
        passwd_file: passwd_file.clone(),
        dry_run,
        folded: Vec::new(),
        skipped: Vec::new(),
        prune: None,
    };
    for entry in overlay_file.records() {
        let user = String::from_utf8_lossy(entry.user()).into_owned();
        let skip = if let Some(run) = runs::marker(state, &user).map_err(MigrateError::from)? {
            Some(Kept::Unfinished { run })
        } else if primary.lookup(entry.user(), ids).is_none() {
            Some(Kept::NoPrimaryRecord)
        } else {
            None
        };
        if let Some(kept) = skip {
            report.skipped.push(KeptRecord { user, kept });
            continue;
        }
        for f in entry.extra() {
            primary
                .set_extra(entry.user(), &f.key, f.value.as_deref(), ids)
                .map_err(|source| MigrateError::Edit {
                    passwd_file: passwd_file.clone(),
                    source,
                })?;
        }
        report.folded.push(user);
    }
    if dry_run || report.folded.is_empty() {
        return Ok(report);
    }
    tx.commit_document(&primary, &CommitOptions::default())?;
    for user in &report.folded {
        dovecot.flush_auth_cache(user).map_err(MigrateError::from)?;
    }
    report.prune = Some(prune(runner, state, dovecot_config, false)?);
    Ok(report)
}

/// Remove the location-overlay records the primary databases have caught up with (`dry_run`:
/// only say which).
pub fn prune(
    runner: &dyn Runner,
    state: &StateDir,
    dovecot_config: &Utf8Path,
    dry_run: bool,
) -> Result<PruneReport, PruneError> {
    let dovecot = Dovecot::new(dovecot_config.to_owned(), runner);
    let files = active(&dovecot)?;
    let settings = dovecot.settings()?;
    let bytes = read_file(&files.location)?;
    let entries = overlay::entries(&PasswdFile::parse(bytes, &PasswdOptions::default()));
    let mut report = PruneReport {
        file: files.location.clone(),
        dry_run,
        removed: Vec::new(),
        kept: Vec::new(),
    };
    let Some(first) = entries.first() else {
        return Ok(report);
    };
    let live = Lookup::new(runner, dovecot_config, &settings);
    let mut before = Vec::new();
    {
        let primary = PrimaryOnly::start(runner, state, dovecot_config, &files, &first.user)?;
        let alone = Lookup::new(runner, primary.config(), &settings);
        for e in &entries {
            if let Some(run) = runs::marker(state, &e.user).map_err(MigrateError::from)? {
                report.kept.push(KeptRecord {
                    user: e.user.clone(),
                    kept: Kept::Unfinished { run },
                });
                continue;
            }
            let with = live.location(&e.user)?;
            let home = live.field(&e.user, "home")?;
            match alone.location(&e.user) {
                Ok(without) if without.same_storage(&with, &home) => {
                    report.removed.push(PrunedRecord {
                        user: e.user.clone(),
                        location: with.to_string(),
                    });
                    before.push(with);
                }
                Ok(without) => report.kept.push(KeptRecord {
                    user: e.user.clone(),
                    kept: Kept::PrimaryDiffers {
                        overlay: with.to_string(),
                        primary: without.to_string(),
                    },
                }),
                Err(MigrateError::UnknownUser { .. }) => report.kept.push(KeptRecord {
                    user: e.user.clone(),
                    kept: Kept::NotInPrimary,
                }),
                Err(other) => return Err(other.into()),
            }
        }
    }
    if !dry_run && !report.removed.is_empty() {
        remove(&dovecot, &live, &files.location, &report.removed, &before)?;
    }
    Ok(report)
}

/// The records gone in one transaction; every user checked where they were, the file put back
/// otherwise.
fn remove(
    dovecot: &Dovecot<'_>,
    live: &Lookup<'_>,
    file: &Utf8Path,
    removed: &[PrunedRecord],
    before: &[super::Location],
) -> Result<(), PruneError> {
    let tx = FileTransaction::prepare(file)?;
    let original = tx.shared_original();
    let mut parsed = PasswdFile::parse_shared(original.clone(), &PasswdOptions::default());
    for r in removed {
        parsed
            .remove_records(r.user.as_bytes())
            .map_err(|source| MigrateError::Edit {
                passwd_file: file.to_owned(),
                source,
            })?;
    }
    tx.commit_document(&parsed, &CommitOptions::default())?;
    let flush = || -> Result<(), PruneError> {
        for r in removed {
            dovecot
                .flush_auth_cache(&r.user)
                .map_err(MigrateError::from)?;
        }
        Ok(())
    };
    flush()?;
    for (r, was) in removed.iter().zip(before) {
        if let Err(after) = wait_same(live, &r.user, was) {
            let put_back = FileTransaction::prepare(file)
                .and_then(|t| t.commit(&original, &CommitOptions::default()));
            flush()?;
            put_back?;
            return Err(PruneError::Moved {
                user: r.user.clone(),
                before: was.to_string(),
                after,
                file: file.to_owned(),
            });
        }
    }
    Ok(())
}
