//! Standard output that treats a closed pipe (`mailmig map dump | head`) as success.

use std::io::{self, Write};

use crate::report::Failure;

/// Write all of `bytes` to stdout. A broken pipe ends the program quietly with success.
pub(crate) fn stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::io("standard output", &e)),
    }
}

/// `value` as pretty JSON on stdout, one newline after it.
pub(crate) fn json_pretty<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(crate::exit::IOERR, e.to_string()))?;
    stdout(format!("{text}\n").as_bytes())
}

/// Write one line of text to stderr (warnings). Errors writing to stderr are ignored: there is
/// nowhere left to report them.
pub(crate) fn stderr_line(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}");
}
