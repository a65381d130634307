//! `mailmig cleanup|finish`: the end of a campaign, over `mailmig_core::migrate::{cleanup,
//! finish}`.

use mailmig_core::migrate::cleanup::{self, CleanupItem, CleanupOptions, Verdict};
use mailmig_core::migrate::finish::{self, FinishError, FinishOptions, FinishReport};
use mailmig_core::migrate::space::bytes;
use mailmig_core::migrate::MigrateError;
use mailmig_core::state::StateDir;

use super::Context;
use crate::args::{CleanupArgs, FinishArgs};
use crate::exit;
use crate::output;
use crate::report::{chain, Failure};

fn migrate_failure(e: &MigrateError) -> Failure {
    let code = match e {
        MigrateError::Unfinished { .. } => exit::TEMPFAIL,
        MigrateError::Command(_) | MigrateError::Dovecot(_) => exit::UNAVAILABLE,
        MigrateError::State(s) => return super::state_failure(s),
        _ => exit::DATAERR,
    };
    Failure::error(code, &e)
}

pub(crate) fn cleanup(ctx: &Context<'_>, args: &CleanupArgs) -> Result<u8, Failure> {
    let Some(state) =
        StateDir::open_existing(&ctx.global.state_dir).map_err(|e| super::state_failure(&e))?
    else {
        output::stdout(b"nothing to clean up: no runs\n")?;
        return Ok(exit::OK);
    };
    let options = CleanupOptions {
        older_than: args.older_than,
        dry_run: args.dry_run,
    };
    let results =
        cleanup::cleanup(&ctx.runner, &state, options).map_err(|e| migrate_failure(&e))?;
    let mut code = exit::OK;
    let mut items = Vec::new();
    for r in results {
        match r {
            Ok(i) => items.push(i),
            Err(e) => {
                let f = migrate_failure(&e);
                output::stderr_line(&f.message);
                code = code.max(f.code);
            }
        }
    }
    if args.json {
        output::json_pretty(&items)?;
    } else {
        output::stdout(render_cleanup(&items, args.dry_run).as_bytes())?;
    }
    Ok(code)
}

fn render_cleanup(items: &[CleanupItem], dry_run: bool) -> String {
    let mut out = String::new();
    let mut freed = 0;
    let mut removed = 0;
    for i in items {
        let paths: Vec<&str> = i.paths.iter().map(|p| p.as_str()).collect();
        let what = format!(
            "{} ({}: {} files, {})",
            paths.join(", "),
            match i.kind {
                cleanup::Leftover::OldLocation => "old location",
                cleanup::Leftover::RolledBackCopy => "rolled-back copy",
            },
            i.usage.files,
            bytes(i.usage.bytes)
        );
        match &i.verdict {
            Verdict::Remove => {
                removed += 1;
                freed += i.usage.bytes;
                let verb = if dry_run { "would remove" } else { "removed" };
                out.push_str(&format!("{}\t{}\t{verb} {what}\n", i.run, i.user));
            }
            Verdict::Keep(reason) => {
                out.push_str(&format!("{}\t{}\tkept {what}: {reason}\n", i.run, i.user));
            }
        }
    }
    let verb = if dry_run { "would free" } else { "freed" };
    out.push_str(&format!(
        "cleanup: {removed} of {} leftover(s) {}; {verb} {}\n",
        items.len(),
        if dry_run { "removable" } else { "removed" },
        bytes(freed)
    ));
    out
}

pub(crate) fn finish(ctx: &Context<'_>, args: &FinishArgs) -> Result<u8, Failure> {
    let dovecot_config = ctx.global.dovecot_file().path;
    let state = ctx.state()?;
    let ids = super::ids();
    let options = FinishOptions {
        dovecot_config,
        to: args.to.clone(),
        domain: args.domain.clone(),
        remove_overrides: args.remove_overrides,
    };
    match finish::finish(&ctx.runner, &state, ids.as_ref(), &options) {
        Ok(report) => {
            if args.json {
                output::json_pretty(&report)?;
            } else {
                output::stdout(render_finish(&report, &args.to).as_bytes())?;
            }
            Ok(if report.elsewhere.is_empty() {
                exit::OK
            } else {
                exit::NOT_FOUND
            })
        }
        Err(FinishError::Migrate(e)) => Err(migrate_failure(&e)),
        Err(e @ FinishError::Moved { .. }) => Err(Failure::error(exit::SOFTWARE, &e)),
        Err(e @ FinishError::Transaction(_)) => Err(Failure::error(exit::CANTCREAT, &e)),
        Err(e) => Err(Failure::new(exit::DATAERR, format!("error: {}", chain(&e)))),
    }
}

fn render_finish(r: &FinishReport, to: &str) -> String {
    let mut out = format!("{} of {} user(s) on {to}\n", r.on_target, r.users);
    for u in r.elsewhere.iter().take(20) {
        out.push_str(&format!("  not yet: {} on {}\n", u.user, u.location));
    }
    if r.elsewhere.len() > 20 {
        out.push_str(&format!("  ... and {} more\n", r.elsewhere.len() - 20));
    }
    let change: Vec<String> = r
        .global_change
        .iter()
        .map(|s| format!("{} = {}", s.key, s.value))
        .collect();
    if r.global_is_target {
        out.push_str(&format!(
            "the global default is already the target ({})\n",
            change.join(", ")
        ));
    } else if r.elsewhere.is_empty() {
        out.push_str(&format!(
            "every user is on the target: make it the default in dovecot.conf (Dovecot {}), then reload Dovecot:\n",
            r.version
        ));
        for line in &change {
            out.push_str(&format!("    {line}\n"));
        }
    }
    if r.removed {
        out.push_str(&format!(
            "removed the location overrides of {} user(s) (every user checked with doveadm user; recorded in {})\n",
            r.overrides.len(),
            r.record.as_ref().map_or(String::new(), |p| p.to_string())
        ));
    } else if !r.overrides.is_empty() {
        out.push_str(&format!(
            "{} user(s) have a location override equal to the target; once it is the global default, `mailmig finish --to {to} --remove-overrides` removes them\n",
            r.overrides.len()
        ));
    }
    out
}
