//! `mailmig passwd check|show`.

use std::sync::Arc;

use camino::Utf8Path;
use mailmig_core::dovecot::{
    Dovecot, DovecotVersion, PasswdEditError, PasswdFile, PasswdOptions, RecordReport,
};

use mailmig_core::safe_fs;

use super::{edit, ids, input_failure, Context};
use crate::args::{PasswdCheckArgs, PasswdSetArgs, PasswdSetup, PasswdShowArgs, PasswdUnsetArgs};
use crate::exit;
use crate::output;
use crate::report::{self, Failure};

/// How Dovecot reads the file: `--dovecot-version`, else the release of the running Dovecot
/// (`--dovecot-config`), else 2.3.
fn options(ctx: &Context<'_>, setup: &PasswdSetup) -> Result<PasswdOptions, Failure> {
    let version = match (&setup.dovecot_version, &ctx.global.dovecot_config) {
        (Some(v), _) => v
            .parse::<DovecotVersion>()
            .map_err(|e| Failure::new(exit::USAGE, format!("error: --dovecot-version: {e}")))?,
        (None, Some(config)) => {
            Dovecot::new(config.clone(), &ctx.runner)
                .settings()
                .map_err(|e| Failure::error(exit::UNAVAILABLE, &e))?
                .version
        }
        (None, None) => DovecotVersion::V2_3,
    };
    Ok(PasswdOptions {
        userdb: !setup.passdb_only,
        single_userdb: !setup.passdb_only,
        legacy_mail_field: version.legacy_mail_field(),
        lowercase_requests: !setup.keep_case,
    })
}

fn read(path: &Utf8Path, options: &PasswdOptions) -> Result<PasswdFile, Failure> {
    let bytes = super::read_input(path)?;
    Ok(PasswdFile::parse(bytes, options))
}

pub(crate) fn check(ctx: &Context<'_>, args: &PasswdCheckArgs) -> Result<u8, Failure> {
    let options = options(ctx, &args.setup)?;
    let ids = ids();
    let mut out = String::new();
    let mut found = false;
    for file in &args.files {
        // Read through a buffer: nothing of the file is kept but each record's name and verdict.
        let input = safe_fs::open_regular(file).map_err(|e| input_failure(file, e))?;
        let findings = PasswdFile::check_file(&input, &options, ids.as_ref())
            .map_err(|e| Failure::io(file.as_str(), &e))?;
        for d in findings {
            found = true;
            let finding = report::Finding {
                file,
                line: d.line,
                column: d.column,
                severity: d.severity(),
                code: d.kind.code(),
                message: d.kind.to_string(),
                postmap: None,
            };
            out.push_str(&finding.line(args.json));
        }
    }
    output::stdout(out.as_bytes())?;
    Ok(if found { exit::DATAERR } else { exit::OK })
}

pub(crate) fn show(ctx: &Context<'_>, args: &PasswdShowArgs) -> Result<u8, Failure> {
    let options = options(ctx, &args.setup)?;
    let ids = ids();
    // One user: streamed, stopping at the record (the whole file is read only to explain a
    // missing one).
    let file = safe_fs::open_regular(&args.file).map_err(|e| input_failure(&args.file, e))?;
    let found = PasswdFile::find_record(file, args.user.as_bytes(), &options, ids.as_ref())
        .map_err(|e| Failure::io(args.file.as_str(), &e))?;
    let Some(found) = found else {
        let passwd = read(&args.file, &options)?;
        let why = passwd.explain_missing(args.user.as_bytes(), ids.as_ref());
        output::stderr_line(&format!(
            "{}: user `{}` has no record Dovecot would use ({why})",
            args.file, args.user
        ));
        return Ok(exit::NOUSER);
    };
    let Some(entry) = found.record.records().next() else {
        return Err(Failure::new(
            exit::SOFTWARE,
            "the record found is empty".to_string(),
        ));
    };
    let mut report = RecordReport::of(&entry, &options, ids.as_ref());
    report.line = found.line;
    let rendered = if args.json {
        let json =
            serde_json::to_string(&report).map_err(|e| Failure::new(exit::IOERR, e.to_string()))?;
        format!("{json}\n")
    } else {
        report.human()
    };
    output::stdout(rendered.as_bytes())?;
    Ok(exit::OK)
}

fn edit_failure(file: &Utf8Path, e: &PasswdEditError) -> Failure {
    let code = match e {
        PasswdEditError::NoSuchUser { .. } => exit::NOUSER,
        _ => exit::DATAERR,
    };
    let why = crate::report::chain(&e);
    Failure::new(code, format!("{file}: error: {why}; nothing was written"))
}

pub(crate) fn set(ctx: &Context<'_>, args: &PasswdSetArgs) -> Result<u8, Failure> {
    let options = options(ctx, &args.setup)?;
    let ids = ids();
    let fields: Vec<(&str, Option<&str>)> = args
        .fields
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (f.as_str(), None),
        })
        .collect();
    edit::apply(
        &args.file,
        &args.edit,
        edit::Secrets::PasswdFile,
        |original| {
            let mut passwd = PasswdFile::parse_shared(Arc::clone(original), &options);
            for (key, value) in &fields {
                passwd
                    .set_extra(
                        args.user.as_bytes(),
                        key.as_bytes(),
                        value.map(str::as_bytes),
                        ids.as_ref(),
                    )
                    .map_err(|e| edit_failure(&args.file, &e))?;
            }
            Ok((passwd, ()))
        },
    )?;
    Ok(exit::OK)
}

pub(crate) fn unset(ctx: &Context<'_>, args: &PasswdUnsetArgs) -> Result<u8, Failure> {
    let options = options(ctx, &args.setup)?;
    let ids = ids();
    let (_, removed) = edit::apply(
        &args.file,
        &args.edit,
        edit::Secrets::PasswdFile,
        |original| {
            let mut passwd = PasswdFile::parse_shared(Arc::clone(original), &options);
            let mut removed = 0;
            for key in &args.fields {
                if passwd
                    .remove_extra(args.user.as_bytes(), key.as_bytes(), ids.as_ref())
                    .map_err(|e| edit_failure(&args.file, &e))?
                {
                    removed += 1;
                }
            }
            Ok((passwd, removed))
        },
    )?;
    if removed == 0 {
        output::stderr_line(&format!(
            "{}: user `{}` has none of these fields",
            args.file, args.user
        ));
        return Ok(exit::NOT_FOUND);
    }
    Ok(exit::OK)
}
