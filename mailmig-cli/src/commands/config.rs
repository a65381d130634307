//! `mailmig config`: what mailmig reads from the daemons' own configuration.

use mailmig_core::login::Dovecot;
use mailmig_core::postfix::postconf;
use serde_json::{json, Value};

use super::Context;
use crate::exit;
use crate::output;
use crate::report::Failure;

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

pub(crate) fn run(ctx: &Context<'_>) -> Result<u8, Failure> {
    let unavailable = |e: &dyn std::error::Error| Failure::error(exit::UNAVAILABLE, e);
    let postfix = match &ctx.global.postfix_config {
        Some(dir) => {
            let values =
                postconf(&ctx.runner, dir, POSTFIX_PARAMETERS).map_err(|e| unavailable(&e))?;
            json!({ "config_directory": dir, "parameters": values })
        }
        None => Value::Null,
    };
    let dovecot = match &ctx.global.dovecot_config {
        Some(config) => {
            let d = Dovecot::new(config.clone(), &ctx.runner);
            let settings = d.settings().map_err(|e| unavailable(&e))?;
            json!({ "config": config, "settings": settings })
        }
        None => Value::Null,
    };
    if postfix.is_null() && dovecot.is_null() {
        return Err(Failure::new(
            exit::USAGE,
            "error: give --postfix-config DIR and/or --dovecot-config FILE",
        ));
    }
    let obj = json!({ "postfix": postfix, "dovecot": dovecot });
    let text = serde_json::to_string_pretty(&obj).unwrap_or_default();
    output::stdout(format!("{text}\n").as_bytes())?;
    Ok(exit::OK)
}
