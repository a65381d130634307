//! The one way every editing command writes: a transaction (lock, read, compute, verify, write
//! a temporary file, fsync, rename, fsync the directory), or a unified diff with `--dry-run`.

use std::sync::Arc;

use camino::Utf8Path;
use mailmig_core::dovecot::mask::mask_file;
use mailmig_core::safe_fs::SafeFsError;
use mailmig_core::transaction::{
    CommitOptions, CommitReport, Document, FileTransaction, TransactionError,
};

use super::Context;
use crate::args::{EditFlags, PostmapFlags};
use crate::exit;
use crate::output;
use crate::report::Failure;
use mailmig_core::postfix::{postmap_rebuild, MapType};

/// A failed transaction as a CLI failure with the right exit code.
pub(crate) fn failure(e: &TransactionError) -> Failure {
    let code = match e {
        TransactionError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            exit::NOINPUT
        }
        TransactionError::Temp { .. } => exit::CANTCREAT,
        TransactionError::Changed { .. } | TransactionError::Locked { .. } => exit::TEMPFAIL,
        TransactionError::Unsafe(
            SafeFsError::UntrustedLink { .. }
            | SafeFsError::Unsafe { .. }
            | SafeFsError::BadLink { .. },
        ) => exit::NOPERM,
        TransactionError::NotAFile { .. }
        | TransactionError::Unsafe(SafeFsError::NotRegular { .. }) => exit::NOINPUT,
        _ => exit::IOERR,
    };
    Failure::error(code, &e)
}

/// Whether a file's lines carry secrets a diff must not show.
#[derive(Clone, Copy)]
pub(crate) enum Secrets {
    /// Postfix tables: shown as they are.
    None,
    /// Dovecot passwd-files: passwords masked, other users' lines left out.
    PasswdFile,
}

/// Lock and read `path`, edit the bytes read (shared with the transaction, not copied) with
/// `edit`, and commit what it gives (or print the diff and write nothing with `--dry-run`).
/// `None` when nothing was written.
pub(crate) fn apply<D: Document, T>(
    path: &Utf8Path,
    flags: &EditFlags,
    secrets: Secrets,
    edit: impl FnOnce(&Arc<Vec<u8>>) -> Result<(D, T), Failure>,
) -> Result<(Option<CommitReport>, T), Failure> {
    let tx = FileTransaction::prepare(path).map_err(|e| failure(&e))?;
    let (doc, extra) = edit(&tx.shared_original())?;
    if flags.dry_run {
        let new = doc.render();
        // A passwd-file's diff shows the edited lines only, their passwords masked.
        let (old, new, context) = match secrets {
            Secrets::None => (tx.original().to_vec(), new.clone(), 2),
            Secrets::PasswdFile => (mask_file(tx.original()), mask_file(&new), 0),
        };
        let old_text = String::from_utf8_lossy(&old).into_owned();
        let new_text = String::from_utf8_lossy(&new).into_owned();
        let diff = similar::TextDiff::from_lines(&old_text, &new_text)
            .unified_diff()
            .context_radius(context)
            .header(&format!("a/{path}"), &format!("b/{path}"))
            .to_string();
        output::stdout(diff.as_bytes())?;
        return Ok((None, extra));
    }
    let options = CommitOptions {
        backup: flags.backup,
        copy_in_place_fallback: flags.copy_in_place,
    };
    let report = tx
        .commit_document(&doc, &options)
        .map_err(|e| failure(&e))?;
    if let Some(b) = &report.backup {
        output::stderr_line(&format!("backup: {b}"));
    }
    if report.in_place {
        output::stderr_line(&format!(
            "warning: {} was rewritten in place (not atomically): it cannot be replaced by rename",
            report.path
        ));
    }
    Ok((Some(report), extra))
}

/// Rebuild the indexed file after an edit, as the flags say.
pub(crate) fn rebuild(
    ctx: &Context<'_>,
    file: &Utf8Path,
    flags: &PostmapFlags,
) -> Result<(), Failure> {
    if flags.no_postmap {
        return Ok(());
    }
    let map_type = flags.map_type.unwrap_or_else(|| MapType::detect(file));
    if !map_type.needs_postmap() {
        output::stderr_line(&format!(
            "note: {map_type}:{file} is read when a daemon starts: run `postfix reload` for running daemons to see the change"
        ));
        return Ok(());
    }
    let warnings = postmap_rebuild(
        &ctx.runner,
        ctx.global.postfix_config.as_deref(),
        map_type,
        file,
    )
    .map_err(|e| {
        let why = crate::report::chain(&e);
        let text =
            format!("error: {file} was written, but rebuilding {map_type}:{file} failed: {why}");
        Failure::new(exit::UNAVAILABLE, text)
    })?;
    for w in warnings {
        output::stderr_line(&w);
    }
    Ok(())
}
