//! Human-readable error reports: `FILE:LINE:COL: error: message`, then the offending line with a
//! caret (rendered by annotate-snippets).

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use camino::Utf8Path;

use crate::exit;
use crate::output;

/// An error and its causes on one line.
pub(crate) use mailmig_core::display_chain as chain;

/// A command failed: the exit code and the complete message for stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `error: ERROR: CAUSE: ...` (each cause once).
    pub(crate) fn error(code: u8, e: &dyn std::error::Error) -> Self {
        Self::new(code, format!("error: {}", chain(e)))
    }

    /// An I/O error on `what`; a missing file is EX_NOINPUT.
    pub(crate) fn io(what: &str, err: &std::io::Error) -> Self {
        let code = match err.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => exit::NOINPUT,
            _ => exit::IOERR,
        };
        // fs-err messages already name the path.
        let text = err.to_string();
        let message = if text.contains(what) {
            format!("error: {text}")
        } else {
            format!("error: {what}: {text}")
        };
        Self::new(code, message)
    }
}

/// `FILE:LINE:COL: SEVERITY: MESSAGE` followed by the source line and a caret under COL.
pub(crate) fn located(
    file: &Utf8Path,
    source: &[u8],
    line: usize,
    column: usize,
    severity: &str,
    message: &str,
) -> String {
    let header = format!("{file}:{line}:{column}: {severity}: {message}");
    let Some(raw) = raw_line(source, line) else {
        return header;
    };
    let (text, starts) = printable(raw);
    // `column` counts bytes of the raw line; the caret goes under the character holding that
    // byte (the rendered line may have other byte lengths: invalid bytes, tabs).
    let byte = column.saturating_sub(1).min(raw.len());
    let start = starts
        .iter()
        .rev()
        .find(|(raw_at, _)| *raw_at <= byte)
        .map_or(0, |(_, at)| *at);
    let end = text[start..]
        .chars()
        .next()
        .map_or(start, |c| start + c.len_utf8());
    let level = if severity == "warning" {
        Level::WARNING
    } else {
        Level::ERROR
    };
    let report = &[level.primary_title(message).element(
        Snippet::source(text.as_str())
            .line_start(line)
            .path(file.as_str())
            .annotation(AnnotationKind::Primary.span(start..end)),
    )];
    let rendered = Renderer::plain().render(report).to_string();
    // The first line of the rendering repeats the title; the contract line replaces it.
    let body: Vec<&str> = rendered.lines().skip(1).collect();
    format!("{header}\n{}", body.join("\n"))
}

/// Records postmap drops are worth a warning on stderr wherever a table is read: the location,
/// the message, and the offending line with a caret.
pub(crate) fn warn_unparsed(file: &Utf8Path, table: &mailmig_core::postfix::Table) {
    let errors = table.errors();
    if !errors.is_empty() {
        warn_skipped(file, &table.render(), &errors);
    }
}

/// [`warn_unparsed`] for the records of `source` that postmap skips (`errors`).
pub(crate) fn warn_skipped(
    file: &Utf8Path,
    source: &[u8],
    errors: &[mailmig_core::postfix::Diagnostic],
) {
    for d in errors {
        output::stderr_line(&located(
            file,
            source,
            d.line,
            d.column,
            "warning",
            &format!("{} (record ignored, as postmap does)", d.kind),
        ));
    }
}

/// One physical line of the source, without its line end.
fn raw_line(source: &[u8], line: usize) -> Option<&[u8]> {
    let raw = source.split(|&b| b == b'\n').nth(line.checked_sub(1)?)?;
    Some(raw.strip_suffix(b"\r").unwrap_or(raw))
}

/// The line made printable (`?` for bytes that are not text and for control characters, a
/// space for a tab), with the raw byte offset and the text offset where each character starts.
fn printable(raw: &[u8]) -> (String, Vec<(usize, usize)>) {
    let mut text = String::with_capacity(raw.len());
    let mut starts = Vec::with_capacity(raw.len());
    let mut at = 0;
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            starts.push((at, text.len()));
            text.push(match c {
                '\t' => ' ',
                c if c.is_control() => '?',
                c => c,
            });
            at += c.len_utf8();
        }
        for _ in chunk.invalid() {
            starts.push((at, text.len()));
            text.push('?');
            at += 1;
        }
    }
    (text, starts)
}

/// What a `check` command found at one place.
pub(crate) struct Finding<'a> {
    pub(crate) file: &'a Utf8Path,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) severity: mailmig_core::postfix::Severity,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// For a map's finding: whether `postmap` itself reports it (a `postmap` member in JSON).
    pub(crate) postmap: Option<bool>,
}

impl Finding<'_> {
    /// `FILE:LINE:COL: severity: message`, or one JSON object; ends with a newline.
    pub(crate) fn line(&self, json: bool) -> String {
        if json {
            let mut obj = serde_json::json!({
                "file": self.file,
                "line": self.line,
                "column": self.column,
                "severity": self.severity,
                "code": self.code,
                "message": self.message,
            });
            if let Some(postmap) = self.postmap {
                obj["postmap"] = postmap.into();
            }
            format!("{obj}\n")
        } else {
            format!(
                "{}:{}:{}: {}: {}\n",
                self.file, self.line, self.column, self.severity, self.message
            )
        }
    }
}
