//! `mailmig config`: what mailmig reads from the daemons' own configuration, and where each fact
//! came from (a flag or the stock default; which program and file gave it).

use mailmig_core::login::Dovecot;
use mailmig_core::postfix::{postconf, ParseOptions};
use serde_json::{json, Value};

use super::Context;
use crate::defaults::{Located, Origin};
use crate::exit;
use crate::output;
use crate::report::{chain, Failure};

const POSTFIX_PARAMETERS: &[&str] = &[
    "mail_version",
    "smtputf8_enable",
    "virtual_alias_maps",
    "smtpd_recipient_restrictions",
    "smtpd_proxy_filter",
    "recipient_delimiter",
    "myorigin",
    "mydestination",
    "virtual_transport",
];

/// Prints both sections even when one daemon cannot be read (its `error` says why); exit 69
/// then.
pub(crate) fn run(ctx: &Context<'_>) -> Result<u8, Failure> {
    let (postfix, postfix_ok) = postfix_section(ctx);
    let (dovecot, dovecot_ok) = dovecot_section(ctx);
    let rules = match ctx.server_options() {
        Ok(options) => reading_rules(ctx, &options),
        Err(f) => json!({ "error": f.message.trim_start_matches("error: ") }),
    };
    let obj = json!({ "postfix": postfix, "dovecot": dovecot, "reading_rules": rules });
    let text = serde_json::to_string_pretty(&obj).unwrap_or_default();
    output::stdout(format!("{text}\n").as_bytes())?;
    if postfix_ok && dovecot_ok {
        Ok(exit::OK)
    } else {
        Err(Failure::new(
            exit::UNAVAILABLE,
            "error: a daemon's configuration could not be read (see its `error`)",
        ))
    }
}

/// `--postfix-config` or `default (as postconf, which reads /etc/postfix without -c)`.
fn origin(located: &Located, flag: &str, program: &str) -> String {
    match located.from {
        Origin::Flag => flag.to_owned(),
        Origin::Default => format!("default (as {program} without -c)"),
    }
}

fn postfix_section(ctx: &Context<'_>) -> (Value, bool) {
    let dir = ctx.global.postfix_dir();
    let mut section = json!({
        "config_directory": dir.path,
        "config_directory_from": origin(&dir, "--postfix-config", "postconf"),
    });
    match postconf(&ctx.runner, &dir.path, POSTFIX_PARAMETERS) {
        Ok(values) => {
            section["parameters"] = json!(values);
            section["parameters_from"] = json!(format!(
                "postconf -c {} -x (main.cf there; Postfix's defaults for the rest)",
                dir.path
            ));
            (section, true)
        }
        Err(e) => {
            section["error"] = json!(chain(&e));
            (section, false)
        }
    }
}

fn dovecot_section(ctx: &Context<'_>) -> (Value, bool) {
    let file = ctx.global.dovecot_file();
    let mut section = json!({
        "config": file.path,
        "config_from": origin(&file, "--dovecot-config", "doveconf"),
    });
    match Dovecot::new(file.path.clone(), &ctx.runner).settings() {
        Ok(settings) => {
            section["settings"] = json!(settings);
            section["settings_from"] = json!(format!(
                "doveconf -c {} -n (the release from its header)",
                file.path
            ));
            (section, true)
        }
        Err(e) => {
            section["error"] = json!(chain(&e));
            (section, false)
        }
    }
}

/// How the server's tables are read: the release's rules and smtputf8, each with its source.
fn reading_rules(ctx: &Context<'_>, options: &ParseOptions) -> Value {
    let dir = ctx.global.postfix_dir().path;
    let version_from = match &ctx.global.postfix_version {
        Some(_) => "--postfix-version".to_owned(),
        None => format!("mail_version of postconf -c {dir}"),
    };
    let smtputf8_from = match ctx.global.smtputf8 {
        Some(_) => "--smtputf8".to_owned(),
        None => format!("smtputf8_enable of postconf -c {dir}"),
    };
    json!({
        "postfix_version": options.version.to_string(),
        "postfix_version_from": version_from,
        "smtputf8": options.smtputf8,
        "smtputf8_from": smtputf8_from,
    })
}
