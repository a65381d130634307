//! Any bytes as a Dovecot passwd-file: parse → render is the identity, no view panics, the check
//! of the file read through a buffer finds what the document's check finds, and an extra-field
//! edit re-parses to what was set, then removing it restores the bytes.
#![no_main]

use std::io::{Seek, Write};

use libfuzzer_sys::fuzz_target;
use mailmig_core::dovecot::{NumericIds, PasswdFile, PasswdOptions};

/// The read check of `bytes` as a file (one scratch file for the process, rewritten each time).
fn check_as_file(
    bytes: &[u8],
    options: &PasswdOptions,
) -> Vec<mailmig_core::dovecot::PasswdDiagnostic> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<fs_err::File> = std::cell::RefCell::new(
            fs_err::File::from_parts(tempfile::tempfile().expect("scratch file"), "scratch"),
        );
    }
    SCRATCH.with(|f| {
        let mut f = f.borrow_mut();
        f.set_len(0).expect("truncate");
        f.rewind().expect("rewind");
        f.write_all(bytes).expect("write");
        PasswdFile::check_file(&f, options, &NumericIds).expect("read")
    })
}

fuzz_target!(|data: &[u8]| {
    let (flags, bytes) = match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, data),
    };
    let options = PasswdOptions {
        userdb: flags & 1 == 0,
        legacy_mail_field: flags & 2 == 0,
        lowercase_requests: flags & 4 == 0,
        ..PasswdOptions::default()
    };
    let mut file = PasswdFile::parse(bytes.to_vec(), &options);
    assert_eq!(file.render(), bytes);
    let findings = file.diagnostics(&NumericIds);
    assert_eq!(check_as_file(bytes, &options), findings);
    for e in file.records() {
        let _ = e.passdb();
        let _ = e.userdb(&NumericIds);
    }
    let loaded = file.load(&NumericIds);
    // Users whose record Dovecot uses and that do not have the field yet (the property is about
    // a field the record did not have).
    let users: Vec<Vec<u8>> = file
        .records()
        .filter(|e| loaded.line_of(e.user()) == Some(e.line() - 1))
        .filter(|e| !e.extra().iter().any(|f| f.key.as_ref() == b"fuzz_field"))
        .map(|e| e.user().to_vec())
        .collect();
    for user in users.iter().take(3) {
        if file
            .set_extra(user, b"fuzz_field", Some(b"v"), &NumericIds)
            .is_ok()
        {
            let reread = PasswdFile::parse(file.render(), &options);
            // The record by its exact key (a request would be lowercased first).
            let line = reread.load(&NumericIds).line_of(user);
            let entry = line
                .and_then(|i| reread.lines().nth(i))
                .and_then(|l| l.entry());
            if let Some(Ok(p)) = entry.map(|e| e.passdb()) {
                assert_eq!(p.get(b"fuzz_field"), Some(Some(&b"v"[..])));
            }
            assert!(file
                .remove_extra(user, b"fuzz_field", &NumericIds)
                .expect("valid"));
            assert_eq!(file.render(), bytes);
        }
    }
});
