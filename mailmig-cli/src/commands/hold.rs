//! `mailmig hold add|remove|list|check`.

use std::sync::Arc;

use mailmig_core::hold::{
    apply_hold, list_holds, plan_hold, remove_holds, validate_mailbox, HoldAction,
};
use mailmig_core::postfix::discover::{chain, coverage_problems, reason_text};
use mailmig_core::postfix::{Address, Table, VirtualMap};

use super::{access_map, alias_maps, discover_failure, edit, Context};
use crate::args::{HoldAddArgs, HoldCheckArgs, HoldListArgs, HoldRemoveArgs, PostmapFlags};
use crate::exit;
use crate::output;
use crate::report::Failure;

/// A refused edit: nothing was written.
fn unwritten(e: &dyn std::error::Error) -> Failure {
    let why = crate::report::chain(e);
    Failure::new(exit::DATAERR, format!("error: {why}; nothing was written"))
}

pub(crate) fn add(ctx: &Context<'_>, args: &HoldAddArgs) -> Result<u8, Failure> {
    for a in &args.addresses {
        validate_mailbox(a).map_err(|e| Failure::error(exit::USAGE, &e))?;
    }
    let (map_path, map_type) = access_map(ctx, &args.map)?;
    let maps = alias_maps(ctx, &args.virtual_maps, args.recipient_delimiter.as_deref())?;
    let refs: Vec<&Table> = maps.tables.iter().collect();
    let vm = VirtualMap::for_mailboxes(&refs, maps.options.clone(), args.addresses.len());
    let closures: Vec<_> = args
        .addresses
        .iter()
        .map(|a| {
            (
                a.clone(),
                vm.reverse_closure(&Address(a.clone().into_bytes())),
            )
        })
        .collect();
    let action = args.action;
    let since = mailmig_core::transaction::utc_now_rfc3339();
    let parse = ctx.options;
    let mut incomplete = false;
    let mut lines = Vec::new();
    let (report, ()) = edit::apply(&map_path, &args.edit, edit::Secrets::None, |original| {
        let mut access = Table::parse_shared(Arc::clone(original), &parse);
        for (user, closure) in &closures {
            if !closure.target_receives_own_mail {
                lines.push(format!(
                    "warning: mail addressed to {user} does not reach its mailbox (it is an alias to elsewhere)"
                ));
            }
            let plan = plan_hold(&access, user, closure);
            apply_hold(&mut access, &plan, action, &since, &args.reason)
                .map_err(|e| unwritten(&e))?;
            for key in &plan.add {
                let path = closure
                    .addresses
                    .iter()
                    .find(|p| p.address.external() == *key)
                    .map(|p| chain(&p.path))
                    .unwrap_or_default();
                lines.push(format!("held\t{}\t{path}", String::from_utf8_lossy(key)));
            }
            for key in &plan.already {
                lines.push(format!("already held\t{}", String::from_utf8_lossy(key)));
            }
            for key in &plan.share {
                lines.push(format!(
                    "held (shared with another mailbox under migration)\t{}",
                    String::from_utf8_lossy(key)
                ));
            }
            for (key, value, line) in &plan.conflicts {
                incomplete = true;
                lines.push(format!(
                    "warning: {map_path}:{}: `{}` already has the rule `{}`; postmap keeps the first entry, so it cannot be held by mailmig",
                    line.unwrap_or(0),
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(value)
                ));
            }
            for u in &plan.uncoverable {
                incomplete = true;
                lines.push(format!(
                    "warning: {}: `{}` also reaches {user} ({}): {}",
                    maps.location(Some(u.source)),
                    String::from_utf8_lossy(&u.key),
                    chain(&u.path),
                    reason_text(u.reason)
                ));
            }
        }
        Ok((access, ()))
    })?;
    for l in &lines {
        if l.starts_with("warning") {
            output::stderr_line(l);
        } else {
            output::stdout(format!("{l}\n").as_bytes())?;
        }
    }
    if let Some(report) = report {
        if report.changed && !args.no_postmap {
            let flags = PostmapFlags {
                map_type,
                no_postmap: false,
            };
            edit::rebuild(ctx, &report.path, &flags)?;
        }
    }
    Ok(if incomplete {
        exit::NOT_FOUND
    } else {
        exit::OK
    })
}

pub(crate) fn remove(ctx: &Context<'_>, args: &HoldRemoveArgs) -> Result<u8, Failure> {
    let (map_path, map_type) = access_map(ctx, &args.map)?;
    let users: Vec<&str> = args.addresses.iter().map(String::as_str).collect();
    let parse = ctx.options;
    let (report, removed) = edit::apply(&map_path, &args.edit, edit::Secrets::None, |original| {
        let mut access = Table::parse_shared(Arc::clone(original), &parse);
        let removed = remove_holds(&mut access, &users).map_err(|e| unwritten(&e))?;
        Ok((access, removed))
    })?;
    for key in &removed {
        output::stdout(format!("removed\t{}\n", String::from_utf8_lossy(key)).as_bytes())?;
    }
    if removed.is_empty() {
        output::stderr_line(&format!(
            "{map_path}: no holds of mailmig for {}",
            users.join(", ")
        ));
        return Ok(exit::NOT_FOUND);
    }
    if let Some(report) = report {
        if !args.no_postmap {
            let flags = PostmapFlags {
                map_type,
                no_postmap: false,
            };
            edit::rebuild(ctx, &report.path, &flags)?;
        }
    }
    Ok(exit::OK)
}

pub(crate) fn list(ctx: &Context<'_>, args: &HoldListArgs) -> Result<u8, Failure> {
    let (map_path, _) = access_map(ctx, &args.map)?;
    let table = ctx.read_table(&map_path)?;
    let mut out = String::new();
    for h in list_holds(&table) {
        let key = String::from_utf8_lossy(&h.key);
        if args.json {
            out.push_str(
                &serde_json::json!({
                    "key": key,
                    "users": h.users,
                    "action": h.action,
                    "since": h.since,
                    "reason": h.reason,
                    "line": h.line,
                })
                .to_string(),
            );
            out.push('\n');
        } else {
            let action = match h.action {
                HoldAction::Hold => "HOLD",
                HoldAction::Defer => "DEFER",
            };
            out.push_str(&format!(
                "{key}\t{action}\t{}\t{}\t{}\n",
                h.users.join(","),
                h.since,
                h.reason
            ));
        }
    }
    output::stdout(out.as_bytes())?;
    Ok(exit::OK)
}

pub(crate) fn check(ctx: &Context<'_>, args: &HoldCheckArgs) -> Result<u8, Failure> {
    let dir = ctx.global.postfix_dir().path;
    let (map_path, _) = access_map(ctx, &args.map)?;
    let problems =
        coverage_problems(&ctx.runner, &dir, &map_path).map_err(|e| discover_failure(&e))?;
    let mut out = String::new();
    for p in &problems {
        out.push_str(&format!("not covered: {p}\n"));
    }
    out.push_str("by design not covered: mail submitted with sendmail/postdrop (pickup), and mail already in the queue (use `mailmig queue hold`)\n");
    if problems.is_empty() {
        out.push_str(&format!(
            "covered: smtpd consults {map_path} before accepting\n"
        ));
    }
    output::stdout(out.as_bytes())?;
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::NOT_FOUND
    })
}
