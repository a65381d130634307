//! `mailmig aliases ADDRESS`: every address whose mail reaches a mailbox.

use camino::Utf8PathBuf;
use mailmig_core::postfix::discover::{chain, location, reason_text};
use mailmig_core::postfix::{Address, ReverseClosure, Table, VirtualMap};

use super::Context;
use crate::args::AliasesArgs;
use crate::exit;
use crate::output;
use crate::report::Failure;

pub(crate) fn run(ctx: &Context<'_>, args: &AliasesArgs) -> Result<u8, Failure> {
    let maps = super::alias_maps(ctx, &args.virtual_maps, args.recipient_delimiter.as_deref())?;
    let files = &maps.files;
    let refs: Vec<&Table> = maps.tables.iter().collect();
    let vm = VirtualMap::for_one_mailbox(&refs, maps.options.clone());
    let closure = vm.reverse_closure(&Address(args.address.clone().into_bytes()));
    let text = if args.json {
        json(&closure, files)
    } else {
        text(&closure, files)
    };
    output::stdout(text.as_bytes())?;
    Ok(exit::OK)
}

fn kind_of(path: &[Address]) -> &'static str {
    match path.len() {
        0 | 1 => "mailbox",
        2 => "direct",
        _ => "nested",
    }
}

fn text(c: &ReverseClosure, files: &[Utf8PathBuf]) -> String {
    let mut out = String::new();
    if !c.target_receives_own_mail {
        output::stderr_line(&format!(
            "warning: mail addressed to {} itself does not reach its mailbox (the address is an alias to elsewhere)",
            c.target
        ));
    }
    for p in &c.addresses {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            p.address,
            kind_of(&p.path),
            chain(&p.path),
            location(files, p.source)
        ));
    }
    for u in &c.uncoverable {
        output::stderr_line(&format!(
            "{}:1: warning: `{}` also reaches {} ({}): {}",
            location(files, Some(u.source)),
            String::from_utf8_lossy(&u.key),
            c.target,
            chain(&u.path),
            reason_text(u.reason)
        ));
    }
    for (a, reason) in &c.deferred {
        output::stderr_line(&format!(
            "warning: mail to {a} is deferred by Postfix ({reason}); it reaches no mailbox"
        ));
    }
    out
}

fn json(c: &ReverseClosure, files: &[Utf8PathBuf]) -> String {
    let src = |s: Option<(usize, usize)>| match s {
        Some((ti, line)) => serde_json::json!({"file": files[ti], "line": line}),
        None => serde_json::Value::Null,
    };
    let strings = |p: &[Address]| p.iter().map(ToString::to_string).collect::<Vec<_>>();
    let obj = serde_json::json!({
        "address": c.target.to_string(),
        "receives_own_mail": c.target_receives_own_mail,
        "aliases": c.addresses.iter().map(|p| serde_json::json!({
            "address": p.address.to_string(),
            "kind": kind_of(&p.path),
            "path": strings(&p.path),
            "source": src(p.source),
        })).collect::<Vec<_>>(),
        "uncoverable": c.uncoverable.iter().map(|u| serde_json::json!({
            "key": String::from_utf8_lossy(&u.key),
            "reason": u.reason,
            "message": reason_text(u.reason),
            "path": strings(&u.path),
            "source": src(Some(u.source)),
        })).collect::<Vec<_>>(),
        "deferred": c.deferred.iter().map(|(a, r)| serde_json::json!({
            "address": a.to_string(), "reason": r,
        })).collect::<Vec<_>>(),
    });
    format!("{obj}\n")
}
