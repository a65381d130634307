//! `mailmig map check|dump|get`.

use mailmig_core::postfix::{
    parse_address_list, AccessRule, Diagnostic, DiagnosticKind, Severity, Table,
};

use super::Context;
use crate::args::{MapCheckArgs, MapDumpArgs, MapGetArgs, MapKind};
use crate::exit;
use crate::output;
use crate::report::{self, Failure};

/// Every finding for one table: postmap's, then the semantic checks of `kind`.
pub(crate) fn findings(table: &Table, kind: MapKind, fold: bool) -> Vec<Diagnostic> {
    let mut out = table.diagnostics(fold);
    for entry in table.effective_entries(fold) {
        let line = entry.line().unwrap_or(0);
        let column = entry.key().len() + 2;
        let semantic = match kind {
            MapKind::Plain => None,
            MapKind::Access => AccessRule::new(entry)
                .problem()
                .map(|reason| DiagnosticKind::AccessNotAnAction { reason }),
            MapKind::Virtual => {
                let parsed = parse_address_list(entry.value());
                parsed
                    .problem()
                    .map(|reason| DiagnosticKind::VirtualBadValue { reason })
            }
        };
        if let Some(kind) = semantic {
            out.push(Diagnostic { line, column, kind });
        }
    }
    out.sort_by_key(|d| (d.line, d.column));
    out
}

pub(crate) fn check(ctx: &Context<'_>, args: &MapCheckArgs) -> Result<u8, Failure> {
    let mut found = false;
    let mut text = Vec::new();
    for file in &args.files {
        let table = ctx.read_table(file)?;
        for d in findings(&table, args.kind, !args.no_fold) {
            found = true;
            if args.json {
                let obj = serde_json::json!({
                    "file": file,
                    "line": d.line,
                    "column": d.column,
                    "severity": d.severity(),
                    "code": d.kind.code(),
                    "message": d.kind.to_string(),
                    "postmap": d.kind.reported_by_postmap(),
                });
                text.extend_from_slice(obj.to_string().as_bytes());
            } else {
                text.extend_from_slice(
                    format!(
                        "{file}:{}:{}: {}: {}",
                        d.line,
                        d.column,
                        d.severity(),
                        d.kind
                    )
                    .as_bytes(),
                );
            }
            text.push(b'\n');
        }
    }
    output::stdout(&text)?;
    Ok(if found { exit::DATAERR } else { exit::OK })
}

pub(crate) fn dump(ctx: &Context<'_>, args: &MapDumpArgs) -> Result<u8, Failure> {
    let table = ctx.read_table(&args.file)?;
    let fold = !args.no_fold;
    let mut text = Vec::new();
    for entry in table.effective_entries(fold) {
        text.extend_from_slice(&entry.lookup_key(fold));
        text.push(b'\t');
        text.extend_from_slice(entry.value());
        text.push(b'\n');
    }
    warn_unparsed(&args.file, &table);
    output::stdout(&text)?;
    Ok(exit::OK)
}

pub(crate) fn get(ctx: &Context<'_>, args: &MapGetArgs) -> Result<u8, Failure> {
    let table = ctx.read_table(&args.file)?;
    match table.get(args.key.as_bytes(), !args.no_fold) {
        Some(entry) => {
            let mut text = entry.value().to_vec();
            text.push(b'\n');
            output::stdout(&text)?;
            Ok(exit::OK)
        }
        None => Ok(exit::NOT_FOUND),
    }
}

/// Records postmap drops are worth a warning on stderr wherever a table is read: the location,
/// the message, and the offending line with a caret.
pub(crate) fn warn_unparsed(file: &camino::Utf8Path, table: &Table) {
    let mut source = None;
    for d in table.diagnostics(true) {
        if d.severity() == Severity::Error {
            let source = source.get_or_insert_with(|| table.render());
            output::stderr_line(&report::located(
                file,
                source,
                d.line,
                d.column,
                "warning",
                &format!("{} (record ignored, as postmap does)", d.kind),
            ));
        }
    }
}
