//! `mailmig aliases ADDRESS`: every address whose mail reaches a mailbox.

use camino::Utf8PathBuf;
use mailmig_core::postfix::{
    postconf, Address, ClosureOptions, ReverseClosure, Table, UncoverableReason, VirtualMap,
};

use super::Context;
use crate::args::AliasesArgs;
use crate::commands::map::warn_unparsed;
use crate::exit;
use crate::output;
use crate::report::Failure;

/// Table types whose source file mailmig can read: fixed-key types built by postmap, and texthash.
const FILE_TYPES: &[&str] = &["hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"];

/// The virtual alias maps (given, or `virtual_alias_maps` from postconf) read as tables, and the
/// Postfix settings expansion depends on.
pub(crate) fn alias_setup(
    ctx: &Context<'_>,
    given: &[Utf8PathBuf],
    recipient_delimiter: Option<&str>,
) -> Result<(Vec<Utf8PathBuf>, Vec<Table>, ClosureOptions), Failure> {
    let mut options = ClosureOptions {
        smtputf8: ctx.options.smtputf8,
        ..ClosureOptions::default()
    };
    let mut files = given.to_vec();
    if let Some(dir) = &ctx.global.postfix_config {
        let values = postconf(
            &ctx.runner,
            dir,
            &[
                "virtual_alias_maps",
                "myorigin",
                "mydestination",
                "recipient_delimiter",
                "propagate_unmatched_extensions",
            ],
        )
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("error: {e}")))?;
        let get = |k: &str| values.get(k).cloned().unwrap_or_default();
        options.myorigin = Some(get("myorigin").into_bytes()).filter(|o| !o.is_empty());
        options.mydestination = split_list(&get("mydestination"))
            .into_iter()
            .filter(|d| !d.contains(':'))
            .map(String::into_bytes)
            .collect();
        options.recipient_delimiter = get("recipient_delimiter").into_bytes();
        options.propagate_extensions = split_list(&get("propagate_unmatched_extensions"))
            .iter()
            .any(|v| v == "virtual");
        if files.is_empty() {
            for map in split_list(&get("virtual_alias_maps")) {
                match map.split_once(':') {
                    Some((kind, path)) if FILE_TYPES.contains(&kind) => {
                        files.push(Utf8PathBuf::from(path));
                    }
                    _ => output::stderr_line(&format!(
                        "warning: virtual_alias_maps entry `{map}` is not a file mailmig can read; its aliases are not included"
                    )),
                }
            }
        }
    }
    if let Some(d) = recipient_delimiter {
        options.recipient_delimiter = d.as_bytes().to_vec();
    }
    if files.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            "error: no virtual alias map: give --virtual FILE or --postfix-config DIR",
        ));
    }
    let tables: Vec<Table> = files
        .iter()
        .map(|f| ctx.read_table(f))
        .collect::<Result<_, _>>()?;
    for (file, table) in files.iter().zip(&tables) {
        warn_unparsed(file, table);
    }
    Ok((files, tables, options))
}

pub(crate) fn run(ctx: &Context<'_>, args: &AliasesArgs) -> Result<u8, Failure> {
    let (files, tables, options) =
        alias_setup(ctx, &args.virtual_maps, args.recipient_delimiter.as_deref())?;
    let refs: Vec<&Table> = tables.iter().collect();
    let vm = VirtualMap::new(&refs, options);
    let closure = vm.reverse_closure(&Address(args.address.clone().into_bytes()));
    let text = if args.json {
        json(&closure, &files)
    } else {
        text(&closure, &files)
    };
    output::stdout(text.as_bytes())?;
    Ok(exit::OK)
}

pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn chain(path: &[Address]) -> String {
    path.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn kind_of(path: &[Address]) -> &'static str {
    match path.len() {
        0 | 1 => "mailbox",
        2 => "direct",
        _ => "nested",
    }
}

pub(crate) fn location(files: &[Utf8PathBuf], source: Option<(usize, usize)>) -> String {
    match source {
        Some((ti, line)) => format!("{}:{line}", files[ti]),
        None => "-".into(),
    }
}

pub(crate) fn reason_text(reason: UncoverableReason) -> &'static str {
    match reason {
        UncoverableReason::CatchAll => {
            "a catch-all: every unlisted address of the domain reaches the mailbox, and no exact access(5) key can hold them all without holding the whole domain"
        }
        UncoverableReason::BareUser => {
            "a bare user key: it matches the user in every local domain ($myorigin, $mydestination); hold each such address explicitly"
        }
        _ => "cannot be held by one exact key",
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
