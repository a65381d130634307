//! `mailmig map check|dump|get`.

use std::sync::Arc;

use camino::Utf8Path;
use mailmig_core::postfix::{
    check_file, dump_source, Diagnostic, DumpSink, Table, TableEditError, ValueRules,
};

use mailmig_core::safe_fs;

use super::{edit, Context};
use crate::args::{MapCheckArgs, MapDelArgs, MapDumpArgs, MapGetArgs, MapKind, MapSetArgs};
use crate::exit;
use crate::output;
use crate::report::{self, Failure};

/// The value checks of a map of `kind`.
fn value_rules(kind: MapKind) -> ValueRules {
    match kind {
        MapKind::Plain => ValueRules::Plain,
        MapKind::Virtual => ValueRules::Virtual,
        MapKind::Access => ValueRules::Access,
    }
}

pub(crate) fn check(ctx: &Context<'_>, args: &MapCheckArgs) -> Result<u8, Failure> {
    let mut found = false;
    let mut text = Vec::new();
    for file in &args.files {
        // Read through a buffer: nothing of the table is kept but each key, its hash and line.
        let input = safe_fs::open_regular(file).map_err(|e| super::input_failure(file, e))?;
        let rules = value_rules(args.kind);
        let findings = check_file(&input, &ctx.options, !args.no_fold, rules)
            .map_err(|e| Failure::io(file.as_str(), &e))?;
        for d in findings {
            found = true;
            let finding = report::Finding {
                file,
                line: d.line,
                column: d.column,
                severity: d.severity(),
                code: d.kind.code(),
                message: d.kind.to_string(),
                postmap: Some(d.kind.reported_by_postmap()),
            };
            text.extend_from_slice(finding.line(args.json).as_bytes());
        }
    }
    output::stdout(&text)?;
    Ok(if found { exit::DATAERR } else { exit::OK })
}

/// How much of `map dump`'s output is kept before it is printed.
const DUMP_CHUNK: usize = 1 << 20;

pub(crate) fn dump(ctx: &Context<'_>, args: &MapDumpArgs) -> Result<u8, Failure> {
    let src = super::read_input(&args.file)?;
    // One pass over the records, nothing of the table kept but each entry's key and value place.
    let mut printer = DumpPrinter {
        file: &args.file,
        src: &src,
        text: Vec::with_capacity(DUMP_CHUNK),
        failed: None,
    };
    dump_source(&src, &ctx.options, !args.no_fold, &mut printer);
    if let Some(f) = printer.failed {
        return Err(f);
    }
    output::stdout(&printer.text)?;
    Ok(exit::OK)
}

/// `map dump`'s output: warnings for the records postmap skips, then `key<TAB>value` lines,
/// printed 1 MiB at a time (the output is as large as the map).
struct DumpPrinter<'a> {
    file: &'a Utf8Path,
    src: &'a [u8],
    text: Vec<u8>,
    /// The first failed write to stdout; nothing more is printed after it.
    failed: Option<Failure>,
}

impl DumpSink for DumpPrinter<'_> {
    fn skipped(&mut self, errors: Vec<Diagnostic>) {
        report::warn_skipped(self.file, self.src, &errors);
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.text.extend_from_slice(key);
        self.text.push(b'\t');
        self.text.extend_from_slice(value);
        self.text.push(b'\n');
        if self.text.len() >= DUMP_CHUNK {
            self.failed = output::stdout(&self.text).err();
            self.text.clear();
        }
    }
}

pub(crate) fn get(ctx: &Context<'_>, args: &MapGetArgs) -> Result<u8, Failure> {
    // One key: streamed, parsing only the records that could hold it, stopping at the answer.
    let file =
        safe_fs::open_regular(&args.file).map_err(|e| super::input_failure(&args.file, e))?;
    let found = Table::lookup_reader(file, args.key.as_bytes(), !args.no_fold, &ctx.options)
        .map_err(|e| Failure::io(args.file.as_str(), &e))?;
    match found {
        Some(mut text) => {
            text.push(b'\n');
            output::stdout(&text)?;
            Ok(exit::OK)
        }
        None => Ok(exit::NOT_FOUND),
    }
}

/// Refuse to edit KEY when a record postmap skips starts with it: the admin must fix that
/// record first (or mailmig would add a second one beside it).
fn refuse_unparsed_key(file: &Utf8Path, table: &Table, key: &[u8]) -> Result<(), Failure> {
    let Some(d) = table.unparsed_record_for(key) else {
        return Ok(());
    };
    let message = format!(
        "the record for this key is one postmap skips ({}); fix it by hand first, nothing was written",
        d.kind
    );
    let text = report::located(file, &table.render(), d.line, d.column, "error", &message);
    Err(Failure::new(exit::DATAERR, text))
}

fn edit_error(file: &Utf8Path, e: &TableEditError) -> Failure {
    Failure::new(
        exit::DATAERR,
        format!(
            "{file}: error: {chain}; nothing was written",
            chain = crate::report::chain(&e)
        ),
    )
}

pub(crate) fn set(ctx: &Context<'_>, args: &MapSetArgs) -> Result<u8, Failure> {
    let options = ctx.options;
    let (report, ()) = edit::apply(&args.file, &args.edit, edit::Secrets::None, |original| {
        let mut table = Table::parse_shared(Arc::clone(original), &options);
        refuse_unparsed_key(&args.file, &table, args.key.as_bytes())?;
        table
            .set(args.key.as_bytes(), args.value.as_bytes(), true)
            .map_err(|e| edit_error(&args.file, &e))?;
        Ok((table, ()))
    })?;
    if let Some(report) = report {
        if report.changed {
            edit::rebuild(ctx, &report.path, &args.postmap)?;
        }
    }
    Ok(exit::OK)
}

pub(crate) fn del(ctx: &Context<'_>, args: &MapDelArgs) -> Result<u8, Failure> {
    let options = ctx.options;
    let (report, found) = edit::apply(&args.file, &args.edit, edit::Secrets::None, |original| {
        let mut table = Table::parse_shared(Arc::clone(original), &options);
        match table.get(args.key.as_bytes(), true).map(|e| e.id()) {
            Some(id) => {
                table.remove(id).map_err(|e| edit_error(&args.file, &e))?;
                Ok((table, true))
            }
            None => Ok((table, false)),
        }
    })?;
    if !found {
        output::stderr_line(&format!("{}: no entry for `{}`", args.file, args.key));
        return Ok(exit::NOT_FOUND);
    }
    if let Some(report) = report {
        edit::rebuild(ctx, &report.path, &args.postmap)?;
    }
    Ok(exit::OK)
}
