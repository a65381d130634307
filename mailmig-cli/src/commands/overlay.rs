//! `mailmig overlay show|check`: the chained-database overlay's configuration, over
//! `mailmig_core::dovecot::overlay`.

use mailmig_core::dovecot::overlay::{self, OverlayFiles};
use mailmig_core::dovecot::Dovecot;

use super::Context;
use crate::args::OverlayArgs;
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
