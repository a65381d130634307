//! `mailmig overlay show|check|export|prune`: the chained-database overlay's configuration and
//! the end of a campaign through it, over `mailmig_core::dovecot::overlay` and
//! `mailmig_core::migrate::prune`.

use mailmig_core::dovecot::overlay::{self, OverlayFiles};
use mailmig_core::dovecot::Dovecot;

use super::Context;
use crate::args::{OverlayArgs, OverlayExportArgs, OverlayPruneArgs};
use crate::exit;
use crate::output;
use crate::report::Failure;

fn files(ctx: &Context<'_>, args: &OverlayArgs) -> OverlayFiles {
    let mut files = OverlayFiles::beside(&ctx.global.dovecot_file().path);
    if let Some(f) = &args.deny_file {
        files.deny = f.clone();
    }
    if let Some(f) = &args.location_file {
        files.location = f.clone();
    }
    files
}

pub(crate) fn show(ctx: &Context<'_>, args: &OverlayArgs) -> Result<u8, Failure> {
    let config = ctx.global.dovecot_file().path;
    let dovecot = Dovecot::new(config.clone(), &ctx.runner);
    let version = dovecot
        .settings()
        .map_err(|e| Failure::error(exit::UNAVAILABLE, &e))?
        .version;
    let files = files(ctx, args);
    let s = overlay::snippet(version, &files);
    if args.json {
        return output::json_pretty(&s).map(|()| exit::OK);
    }
    let text = format!(
        "# mailmig's overlays for Dovecot {version} ({config}); see docs/overlay.md.\n\
         # 1. FIRST, before every other passdb (on Debian: a file included by conf.d/10-auth.conf\n\
         #    above its `!include auth-*.conf.ext` lines):\n{}\
         # 2. In the primary userdb block (the one that holds your users):\n{}\
         # 3. LAST, after every other userdb (included below those lines):\n{}\
         # Then create both files empty (readable by Dovecot's auth process), `doveadm reload`,\n\
         # and `mailmig overlay check`:\n#   install -m 0644 /dev/null {}\n#   install -m 0644 /dev/null {}\n",
        s.passdb, s.primary_userdb, s.userdb, files.deny, files.location
    );
    output::stdout(text.as_bytes())?;
    Ok(exit::OK)
}

pub(crate) fn check(ctx: &Context<'_>, args: &OverlayArgs) -> Result<u8, Failure> {
    let config = ctx.global.dovecot_file().path;
    let dovecot = Dovecot::new(config, &ctx.runner);
    let configuration = dovecot
        .configuration()
        .map_err(|e| Failure::error(exit::UNAVAILABLE, &e))?;
    let files = files(ctx, args);
    let problems = overlay::check(configuration, &files);
    if args.json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            active: bool,
            files: &'a OverlayFiles,
            problems: &'a [overlay::OverlayProblem],
        }
        output::json_pretty(&Report {
            active: problems.is_empty(),
            files: &files,
            problems: &problems,
        })?;
    } else if problems.is_empty() {
        output::stdout(
            format!(
                "the overlay is in place: passdb {} first (deny = yes), userdb {} last (skip = notfound), every userdb before it continues on success\n",
                files.deny, files.location
            )
            .as_bytes(),
        )?;
    } else {
        for p in &problems {
            output::stdout(format!("{p}\n").as_bytes())?;
        }
    }
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::NOT_FOUND
    })
}

pub(crate) fn export(ctx: &Context<'_>, args: &OverlayExportArgs) -> Result<u8, Failure> {
    let files = OverlayFiles::beside(&ctx.global.dovecot_file().path);
    let bytes = mailmig_core::safe_fs::read_regular(&files.location)
        .map_err(|e| Failure::error(exit::NOINPUT, &e))?;
    let file = mailmig_core::dovecot::PasswdFile::parse(bytes, &Default::default());
    let entries = overlay::entries(&file);
    if args.json {
        return output::json_pretty(&entries).map(|()| exit::OK);
    }
    let text = match &args.sql_table {
        Some(table) => overlay::sql_updates(&entries, table, &args.sql_user_column)
            .map_err(|e| Failure::error(exit::DATAERR, &e))?,
        None => entries
            .iter()
            .map(|e| {
                let fields: Vec<String> = e
                    .fields
                    .iter()
                    .map(|f| format!("{}={}", f.key, f.value))
                    .collect();
                format!("{}\t{}\n", e.user, fields.join(" "))
            })
            .collect(),
    };
    output::stdout(text.as_bytes())?;
    Ok(exit::OK)
}

fn prune_failure(e: &mailmig_core::migrate::prune::PruneError) -> Failure {
    use mailmig_core::migrate::prune::PruneError;
    let code = match e {
        PruneError::NotActive { .. } | PruneError::NotOnePasswdFile { .. } => exit::DATAERR,
        PruneError::Moved { .. } => exit::SOFTWARE,
        PruneError::Transaction(_) => exit::IOERR,
        PruneError::Migrate(mailmig_core::migrate::MigrateError::Refused(_)) => exit::DATAERR,
        _ => exit::UNAVAILABLE,
    };
    Failure::error(code, e)
}

/// The prune report's lines.
fn prune_text(report: &mailmig_core::migrate::prune::PruneReport) -> String {
    let mut text = format!(
        "{} {}, kept {} ({})\n",
        if report.dry_run {
            "would remove"
        } else {
            "removed"
        },
        report.removed.len(),
        report.kept.len(),
        report.file
    );
    for r in &report.removed {
        text.push_str(&format!(
            "  removed {}: the primary databases put them at {} too\n",
            r.user, r.location
        ));
    }
    for k in &report.kept {
        text.push_str(&format!("  kept {}: {}\n", k.user, kept_text(&k.kept)));
    }
    text
}

fn kept_text(kept: &mailmig_core::migrate::prune::Kept) -> String {
    use mailmig_core::migrate::prune::Kept;
    match kept {
        Kept::PrimaryDiffers { overlay, primary } => {
            format!("the overlay puts them at {overlay}, the primary databases at {primary}")
        }
        Kept::NotInPrimary => "the primary databases do not know them".to_string(),
        Kept::NoPrimaryRecord => "the primary passwd-file has no record for them".to_string(),
        Kept::Unfinished { run } => format!("run {run} is unfinished"),
        _ => "kept".to_string(),
    }
}

pub(crate) fn prune(ctx: &Context<'_>, args: &OverlayPruneArgs) -> Result<u8, Failure> {
    let state = ctx.state()?;
    let config = ctx.global.dovecot_file().path;
    let report = mailmig_core::migrate::prune::prune(&ctx.runner, &state, &config, args.dry_run)
        .map_err(|e| prune_failure(&e))?;
    if args.json {
        return output::json_pretty(&report).map(|()| exit::OK);
    }
    output::stdout(prune_text(&report).as_bytes())?;
    Ok(exit::OK)
}

pub(crate) fn fold(ctx: &Context<'_>, args: &OverlayPruneArgs) -> Result<u8, Failure> {
    let state = ctx.state()?;
    let config = ctx.global.dovecot_file().path;
    let ids = super::ids();
    let report = mailmig_core::migrate::prune::fold(
        &ctx.runner,
        &state,
        ids.as_ref(),
        &config,
        args.dry_run,
    )
    .map_err(|e| prune_failure(&e))?;
    if args.json {
        return output::json_pretty(&report).map(|()| exit::OK);
    }
    let mut text = format!(
        "{} {} into {}, skipped {}\n",
        if report.dry_run {
            "would fold"
        } else {
            "folded"
        },
        report.folded.len(),
        report.passwd_file,
        report.skipped.len()
    );
    for k in &report.skipped {
        text.push_str(&format!("  skipped {}: {}\n", k.user, kept_text(&k.kept)));
    }
    if let Some(p) = &report.prune {
        text.push_str(&prune_text(p));
    }
    output::stdout(text.as_bytes())?;
    Ok(exit::OK)
}
