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

/// Write one line of text to stderr (warnings). Errors writing to stderr are ignored: there is
/// nowhere left to report them.
pub(crate) fn stderr_line(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}");
}
