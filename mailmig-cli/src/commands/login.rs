//! `mailmig login disable|enable`.

use mailmig_core::dovecot::{DovecotError, PasswdOptions};
use mailmig_core::login::{self, Dovecot, Enabled, LoginError};

use super::ids;
use super::Context;
use crate::args::{LoginDisableArgs, LoginEnableArgs};
use crate::exit;
use crate::output;
use crate::report::Failure;

fn dovecot<'a>(ctx: &'a Context<'_>) -> Result<Dovecot<'a>, Failure> {
    Ok(Dovecot::new(ctx.global.dovecot_file().path, &ctx.runner))
}

fn failure(e: &LoginError) -> Failure {
    let code = match e {
        LoginError::Edit(mailmig_core::dovecot::PasswdEditError::NoSuchUser { .. }) => exit::NOUSER,
        LoginError::Edit(_)
        | LoginError::BadReason(_)
        | LoginError::AllowNetsBouncesMail
        | LoginError::AlreadyDisabled { .. }
        | LoginError::User(_)
        | LoginError::NoOverlay { .. } => exit::DATAERR,
        LoginError::NotDisabled { .. } => exit::NOINPUT,
        LoginError::PasswdFiles { count: 0 } => exit::DATAERR,
        LoginError::PasswdFiles { .. } => exit::USAGE,
        LoginError::StateUnreadable { .. } => exit::SOFTWARE,
        LoginError::StateDir(e) => return super::state_failure(e),
        LoginError::NotConfirmed { .. } => exit::TEMPFAIL,
        LoginError::Run(_) | LoginError::Dovecot(DovecotError::Run(_)) => exit::UNAVAILABLE,
        LoginError::Dovecot(_) => exit::DATAERR,
        _ => exit::IOERR,
    };
    Failure::error(code, &e)
}

pub(crate) fn disable(ctx: &Context<'_>, args: &LoginDisableArgs) -> Result<u8, Failure> {
    let dovecot = dovecot(ctx)?;
    let passwd_file = match &args.passwd_file {
        Some(f) => f.clone(),
        None => dovecot.lock_file(args.method).map_err(|e| failure(&e))?,
    };
    let method = args.method;
    let ids = ids();
    let state = ctx.state()?;
    let options = PasswdOptions::default();
    let record = login::disable(
        &dovecot,
        &state,
        &login::DisableRequest {
            passwd_file: &passwd_file,
            options: &options,
            ids: ids.as_ref(),
            user: &args.user,
            method,
            reason: &args.reason,
        },
    )
    .map_err(|e| failure(&e))?;
    let key = login::state_key(&record.user, &options).map_err(|e| failure(&e))?;
    output::stdout(
        format!(
            "disabled {} ({}); what changed is recorded in {}\n",
            record.user,
            record.method,
            login::state_file(&state, &key)
        )
        .as_bytes(),
    )?;
    Ok(exit::OK)
}

pub(crate) fn enable(ctx: &Context<'_>, args: &LoginEnableArgs) -> Result<u8, Failure> {
    let dovecot = dovecot(ctx)?;
    let ids = ids();
    let state = ctx.state()?;
    let passwd_file = dovecot
        .passwd_files()
        .ok()
        .and_then(|f| f.into_iter().next());
    let enabled = login::enable(
        &dovecot,
        &state,
        &PasswdOptions::default(),
        ids.as_ref(),
        &args.user,
        passwd_file.as_deref(),
    )
    .map_err(|e| failure(&e))?;
    let text = match enabled {
        Enabled::Restored { record, exact: true } => format!("enabled {}\n", record.user),
        Enabled::Restored { record, exact: false } => format!(
            "enabled {} (the lock-out fields are restored; other parts of the record were changed meanwhile by someone else)\n",
            record.user
        ),
        Enabled::NeverLockedOut { state_file } => format!(
            "{} was never locked out: the record {state_file} was unreadable (an interrupted write) and the user's record carries no lock-out; removed it\n",
            args.user
        ),
        _ => format!("enabled {}\n", args.user),
    };
    output::stdout(text.as_bytes())?;
    Ok(exit::OK)
}
