//! `mailmig queue list|hold|release`.

use camino::Utf8PathBuf;
use mailmig_core::hold::list_holds;
use mailmig_core::postfix::postconf;
use mailmig_core::queue::{self, HeldStateError, QueueError};

use super::access_map;
use super::Context;
use crate::args::{HoldMapArgs, QueueListArgs, QueueReleaseArgs, QueueUserArgs};
use crate::exit;
use crate::output;
use crate::report::Failure;

fn config_dir(ctx: &Context<'_>) -> Result<Utf8PathBuf, Failure> {
    Ok(ctx.global.postfix_dir().path)
}

fn delimiters(ctx: &Context<'_>, dir: &Utf8PathBuf) -> Result<String, Failure> {
    let v = postconf(&ctx.runner, dir, &["recipient_delimiter"])
        .map_err(|e| Failure::error(exit::UNAVAILABLE, &e))?;
    Ok(v.get("recipient_delimiter").cloned().unwrap_or_default())
}

fn failure(e: &QueueError) -> Failure {
    Failure::error(exit::UNAVAILABLE, &e)
}

fn state_failure(e: &HeldStateError) -> Failure {
    match e {
        HeldStateError::User(u) => Failure::new(exit::USAGE, format!("error: --user: {u}")),
        HeldStateError::State(s) => super::state_failure(s),
        _ => Failure::error(exit::DATAERR, &e),
    }
}

fn recorded(ctx: &Context<'_>, user: &str) -> Result<Vec<String>, Failure> {
    queue::recorded_holds(&ctx.state()?, user).map_err(|e| state_failure(&e))
}

fn record(ctx: &Context<'_>, user: &str, ids: &[String]) -> Result<(), Failure> {
    queue::record_holds(&ctx.state()?, user, ids).map_err(|e| state_failure(&e))
}

pub(crate) fn list(ctx: &Context<'_>, args: &QueueListArgs) -> Result<u8, Failure> {
    let dir = config_dir(ctx)?;
    let delims = delimiters(ctx, &dir)?;
    let mut out = String::new();
    for m in queue::list(&ctx.runner, &dir).map_err(|e| failure(&e))? {
        if let Some(user) = &args.user {
            if !m
                .recipients
                .iter()
                .any(|r| queue::reaches(r, user, &delims))
            {
                continue;
            }
        }
        if args.json {
            out.push_str(&serde_json::to_string(&m).unwrap_or_default());
            out.push('\n');
        } else {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                m.queue_id,
                m.queue_name,
                m.sender,
                m.recipients.join(",")
            ));
        }
    }
    output::stdout(out.as_bytes())?;
    Ok(exit::OK)
}

pub(crate) fn hold(ctx: &Context<'_>, args: &QueueUserArgs) -> Result<u8, Failure> {
    // Read first: the name is validated before anything is held.
    let mut all = recorded(ctx, &args.user)?;
    let dir = config_dir(ctx)?;
    let delims = delimiters(ctx, &dir)?;
    let held = queue::hold_user(&ctx.runner, &dir, &args.user, &delims).map_err(|e| failure(&e))?;
    for id in &held {
        if !all.contains(id) {
            all.push(id.clone());
        }
    }
    record(ctx, &args.user, &all)?;
    let text: String = held.iter().map(|i| format!("held\t{i}\n")).collect();
    output::stdout(text.as_bytes())?;
    Ok(exit::OK)
}

pub(crate) fn release(ctx: &Context<'_>, args: &QueueReleaseArgs) -> Result<u8, Failure> {
    let recorded_ids = recorded(ctx, &args.user)?;
    let dir = config_dir(ctx)?;
    let delims = delimiters(ctx, &dir)?;
    let ids: Vec<String> = match &args.ids {
        Some(file) => String::from_utf8_lossy(&super::read_input(file)?)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        None => recorded_ids,
    };
    // Users other mailmig holds are still active for: their mail stays on hold.
    let others: Vec<String> = match access_map(
        ctx,
        &HoldMapArgs {
            map: args.map.clone(),
        },
    ) {
        Ok((map, _)) => list_holds(&ctx.read_table(&map)?)
            .into_iter()
            .flat_map(|h| h.users)
            .filter(|u| !u.eq_ignore_ascii_case(&args.user))
            .collect(),
        Err(_) => Vec::new(),
    };
    let (released, kept) =
        queue::release(&ctx.runner, &dir, &ids, &others, &delims).map_err(|e| failure(&e))?;
    let remaining: Vec<String> = ids.iter().filter(|i| kept.contains(i)).cloned().collect();
    if args.ids.is_none() {
        record(ctx, &args.user, &remaining)?;
    }
    let mut text: String = released
        .iter()
        .map(|i| format!("released\t{i}\n"))
        .collect();
    text.extend(
        kept.iter()
            .map(|i| format!("kept\t{i}\t(a recipient is still held by another mailmig hold)\n")),
    );
    output::stdout(text.as_bytes())?;
    Ok(exit::OK)
}
