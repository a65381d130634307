//! `mailmig hold add|remove|list|check`.

use camino::{Utf8Path, Utf8PathBuf};
use mailmig_core::hold::{
    apply_hold, list_holds, plan_hold, remove_holds, validate_mailbox, HoldAction,
};
use mailmig_core::postfix::{postconf, Address, MapType, Table, VirtualMap};
use mailmig_core::process::Runner;

use super::aliases::{alias_setup, chain, location, reason_text, split_list};
use super::{edit, map, Context};
use crate::args::{
    HoldActionArg, HoldAddArgs, HoldCheckArgs, HoldListArgs, HoldMapArgs, HoldRemoveArgs,
    PostmapFlags,
};
use crate::exit;
use crate::output;
use crate::report::Failure;

/// The map given, or the first `check_recipient_access` file map of smtpd_recipient_restrictions,
/// with its type.
pub(crate) fn access_map(
    ctx: &Context<'_>,
    args: &HoldMapArgs,
) -> Result<(Utf8PathBuf, Option<MapType>), Failure> {
    if let Some(m) = &args.map {
        return Ok((m.clone(), None));
    }
    let Some(dir) = &ctx.global.postfix_config else {
        return Err(Failure::new(
            exit::USAGE,
            "error: no access map: give --map FILE or --postfix-config DIR",
        ));
    };
    let values = postconf(&ctx.runner, dir, &["smtpd_recipient_restrictions"])
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("error: {e}")))?;
    let words = split_list(
        values
            .get("smtpd_recipient_restrictions")
            .map_or("", String::as_str),
    );
    for pair in words.windows(2) {
        if pair[0] == "check_recipient_access" {
            if let Some((kind, path)) = pair[1].split_once(':') {
                if let Ok(t) = kind.parse::<MapType>() {
                    return Ok((Utf8PathBuf::from(path), Some(t)));
                }
            }
        }
    }
    Err(Failure::new(
        exit::DATAERR,
        "error: smtpd_recipient_restrictions has no check_recipient_access file map to hold in; add one (see `mailmig hold check`) or give --map",
    ))
}

pub(crate) fn add(ctx: &Context<'_>, args: &HoldAddArgs) -> Result<u8, Failure> {
    for a in &args.addresses {
        validate_mailbox(a).map_err(|e| Failure::new(exit::USAGE, format!("error: {e}")))?;
    }
    let (map_path, map_type) = access_map(ctx, &args.map)?;
    let (files, tables, options) =
        alias_setup(ctx, &args.virtual_maps, args.recipient_delimiter.as_deref())?;
    let refs: Vec<&Table> = tables.iter().collect();
    let vm = VirtualMap::new(&refs, options);
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
    let action = match args.action {
        HoldActionArg::Hold => HoldAction::Hold,
        HoldActionArg::Defer => HoldAction::Defer,
    };
    let since = mailmig_core::transaction::utc_now_rfc3339();
    let parse = ctx.options;
    let mut incomplete = false;
    let mut lines = Vec::new();
    let (report, ()) = edit::apply(&map_path, &args.edit, edit::Secrets::None, |original| {
        let mut access = Table::parse(original.to_vec(), &parse);
        for (user, closure) in &closures {
            if !closure.target_receives_own_mail {
                lines.push(format!(
                    "warning: mail addressed to {user} does not reach its mailbox (it is an alias to elsewhere)"
                ));
            }
            let plan = plan_hold(&access, user, closure);
            apply_hold(&mut access, &plan, action, &since, &args.reason).map_err(|e| {
                Failure::new(exit::DATAERR, format!("error: {e}; nothing was written"))
            })?;
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
                    location(&files, Some(u.source)),
                    String::from_utf8_lossy(&u.key),
                    chain(&u.path),
                    reason_text(u.reason)
                ));
            }
        }
        Ok((access.render(), ()))
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
                map_type: map_type.map(|t| t.to_string()),
                no_postmap: false,
            };
            map::rebuild(ctx, &report.path, &flags)?;
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
        let mut access = Table::parse(original.to_vec(), &parse);
        let removed = remove_holds(&mut access, &users)
            .map_err(|e| Failure::new(exit::DATAERR, format!("error: {e}; nothing was written")))?;
        Ok((access.render(), removed))
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
                map_type: map_type.map(|t| t.to_string()),
                no_postmap: false,
            };
            map::rebuild(ctx, &report.path, &flags)?;
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

/// A restriction list consults `spec` before anything accepts.
fn consulted_first(list: &str, spec_matches: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let words = split_list(list);
    let check = words
        .windows(2)
        .position(|w| w[0] == "check_recipient_access" && spec_matches(&w[1]));
    let permit = words.iter().position(|w| w.starts_with("permit"));
    match (check, permit) {
        (None, _) => Err("does not consult the map (no `check_recipient_access` for it)".into()),
        (Some(c), Some(p)) if p < c => Err(format!(
            "consults the map only after `{}`: mail that it accepts is not held",
            words[p]
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check(ctx: &Context<'_>, args: &HoldCheckArgs) -> Result<u8, Failure> {
    let Some(dir) = ctx.global.postfix_config.clone() else {
        return Err(Failure::new(
            exit::USAGE,
            "error: hold check reads Postfix's configuration: give --postfix-config DIR",
        ));
    };
    let (map_path, _) = access_map(ctx, &args.map)?;
    let problems = coverage_problems(ctx, &dir, &map_path)?;
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

/// What makes a HOLD in `map_path` miss mail arriving over SMTP: smtpd_recipient_restrictions
/// (main.cf and master.cf overrides) not consulting it before any `permit`, and proxy filters.
pub(crate) fn coverage_problems(
    ctx: &Context<'_>,
    dir: &Utf8Path,
    map_path: &Utf8Path,
) -> Result<Vec<String>, Failure> {
    let spec_matches = |spec: &str| {
        spec.split_once(':')
            .is_some_and(|(_, path)| Utf8Path::new(path) == map_path)
    };
    let values = postconf(
        &ctx.runner,
        dir,
        &["smtpd_recipient_restrictions", "smtpd_proxy_filter"],
    )
    .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("error: {e}")))?;
    let main_list = values
        .get("smtpd_recipient_restrictions")
        .cloned()
        .unwrap_or_default();
    let mut problems = Vec::new();
    if let Err(e) = consulted_first(&main_list, &spec_matches) {
        problems.push(format!("smtpd_recipient_restrictions {e}"));
    }
    if values
        .get("smtpd_proxy_filter")
        .is_some_and(|v| !v.is_empty())
    {
        problems.push("smtpd_proxy_filter is set: HOLD is unavailable with a proxy filter (smtpd logs a warning and treats it as DUNNO)".into());
    }
    // Services in master.cf with their own restrictions or proxy filter (-o overrides).
    let overrides = ctx
        .runner
        .run_expect(
            &mailmig_core::process::Argv::new(["postconf", "-c", dir.as_str(), "-P"]),
            None,
            &[0],
        )
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("error: {e}")))?;
    for line in String::from_utf8_lossy(&overrides.stdout).lines() {
        let Some((name, value)) = line.split_once(" = ") else {
            continue;
        };
        let mut parts = name.rsplitn(2, '/');
        let (param, service) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        match param {
            "smtpd_recipient_restrictions" => {
                if let Err(e) = consulted_first(value, &spec_matches) {
                    problems.push(format!("master.cf service {service} overrides smtpd_recipient_restrictions and {e}"));
                }
            }
            "smtpd_proxy_filter" if !value.trim().is_empty() => problems.push(format!(
                "master.cf service {service} sets smtpd_proxy_filter: HOLD is unavailable there"
            )),
            _ => {}
        }
    }
    Ok(problems)
}
