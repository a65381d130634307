//! `mailmig login disable|enable`.

use camino::Utf8PathBuf;
use mailmig_core::dovecot::PasswdOptions;
use mailmig_core::login::{self, Dovecot, LockMethod, LoginError};

use super::passwd::ids;
use super::Context;
use crate::args::{LockMethodArg, LoginDisableArgs, LoginEnableArgs};
use crate::exit;
use crate::output;
use crate::report::Failure;

fn dovecot<'a>(ctx: &'a Context<'_>) -> Result<Dovecot<'a>, Failure> {
    let config = ctx.global.dovecot_config.clone().ok_or_else(|| {
        Failure::new(
            exit::USAGE,
            "error: login commands talk to the running Dovecot: give --dovecot-config FILE",
        )
    })?;
    Ok(Dovecot {
        config,
        runner: &ctx.runner,
    })
}

fn failure(e: &LoginError) -> Failure {
    let code = match e {
        LoginError::Edit(mailmig_core::dovecot::PasswdEditError::NoSuchUser { .. }) => exit::NOUSER,
        LoginError::Edit(_) | LoginError::BadReason(_) | LoginError::AllowNetsBouncesMail => {
            exit::DATAERR
        }
        LoginError::NotConfirmed { .. } => exit::TEMPFAIL,
        LoginError::Run(_) => exit::UNAVAILABLE,
        _ => exit::IOERR,
    };
    Failure::new(code, format!("error: {e}"))
}

pub(crate) fn disable(ctx: &Context<'_>, args: &LoginDisableArgs) -> Result<u8, Failure> {
    let dovecot = dovecot(ctx)?;
    let passwd_file: Utf8PathBuf =
        match &args.passwd_file {
            Some(f) => f.clone(),
            None => {
                let files = dovecot
                    .passwd_files()
                    .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("error: {e}")))?;
                match files.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(Failure::new(
                            exit::DATAERR,
                            "error: this Dovecot has no passwd-file passdb; give --passwd-file",
                        ))
                    }
                    _ => return Err(Failure::new(
                        exit::USAGE,
                        "error: this Dovecot has several passwd-file passdbs; give --passwd-file",
                    )),
                }
            }
        };
    let method = match args.method {
        LockMethodArg::AllowNets => LockMethod::AllowNets,
        LockMethodArg::Nologin => LockMethod::Nologin,
    };
    let ids = ids();
    let record = login::disable(
        &dovecot,
        &passwd_file,
        &PasswdOptions::default(),
        ids.as_ref(),
        &ctx.global.state_dir,
        &args.user,
        method,
        &args.reason,
    )
    .map_err(|e| failure(&e))?;
    output::stdout(
        format!(
            "disabled {} ({:?}); the previous record is kept in {}\n",
            record.user,
            record.method,
            login::state_file(&ctx.global.state_dir, &record.user)
        )
        .as_bytes(),
    )?;
    Ok(exit::OK)
}

pub(crate) fn enable(ctx: &Context<'_>, args: &LoginEnableArgs) -> Result<u8, Failure> {
    let dovecot = dovecot(ctx)?;
    let ids = ids();
    let record = login::enable(
        &dovecot,
        &PasswdOptions::default(),
        ids.as_ref(),
        &ctx.global.state_dir,
        &args.user,
    )
    .map_err(|e| failure(&e))?;
    output::stdout(format!("enabled {}\n", record.user).as_bytes())?;
    Ok(exit::OK)
}
