//! The one way every editing command writes: a transaction (lock, read, compute, verify, write
//! a temporary file, fsync, rename, fsync the directory), or a unified diff with `--dry-run`.

use camino::Utf8Path;
use mailmig_core::transaction::{CommitOptions, CommitReport, FileTransaction, TransactionError};

use crate::args::EditFlags;
use crate::exit;
use crate::output;
use crate::report::Failure;

/// A failed transaction as a CLI failure with the right exit code.
pub(crate) fn failure(e: &TransactionError) -> Failure {
    let code = match e {
        TransactionError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            exit::NOINPUT
        }
        TransactionError::Temp { .. } => exit::CANTCREAT,
        TransactionError::Changed { .. } => exit::TEMPFAIL,
        _ => exit::IOERR,
    };
    Failure::new(code, format!("error: {e}"))
}

/// Lock and read `path`, compute the new bytes with `edit`, and commit them (or print the diff
/// and write nothing with `--dry-run`). `None` when nothing was written.
pub(crate) fn apply<T>(
    path: &Utf8Path,
    flags: &EditFlags,
    edit: impl FnOnce(&[u8]) -> Result<(Vec<u8>, T), Failure>,
) -> Result<(Option<CommitReport>, T), Failure> {
    let tx = FileTransaction::prepare(path).map_err(|e| failure(&e))?;
    let (new, extra) = edit(tx.original())?;
    if flags.dry_run {
        let old_text = String::from_utf8_lossy(tx.original()).into_owned();
        let new_text = String::from_utf8_lossy(&new).into_owned();
        let diff = similar::TextDiff::from_lines(&old_text, &new_text)
            .unified_diff()
            .context_radius(2)
            .header(&format!("a/{path}"), &format!("b/{path}"))
            .to_string();
        output::stdout(diff.as_bytes())?;
        return Ok((None, extra));
    }
    let options = CommitOptions {
        backup: flags.backup,
        copy_in_place_fallback: flags.copy_in_place,
    };
    let report = tx.commit(&new, &options).map_err(|e| failure(&e))?;
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
