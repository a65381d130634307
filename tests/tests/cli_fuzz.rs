//! Every command over random and hostile files and arguments: random bytes, NUL, CR, invalid
//! UTF-8, multi-byte characters at every column, huge lines, empty files. mailmig must never
//! panic (exit 101, "panicked"), never hang, and never print Rust debug formatting. Bounded:
//! `MAILMIG_CLI_FUZZ_CASES` cases (default 48), each command killed after 30 s (a failure).

use std::time::Duration;

use camino::Utf8PathBuf;
use mailmig_tests::{mailmig_bounded, Run};
use proptest::prelude::*;

/// Pieces that exercise the parsers' corners; glued together at random.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\0".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b":".to_vec()),
        Just(b"#".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"@".to_vec()),
        Just(b",".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b"%".to_vec()),
        Just(b"=".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just("\u{1F600}".as_bytes().to_vec()),
        Just("İ".as_bytes().to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"\xe2\x82".to_vec()),
        Just(b"alice@example.test".to_vec()),
        Just(b"HOLD [mailmig hold for a@x since 2026-01-01T00:00:00Z] r".to_vec()),
        Just(b"userdb_mail=mdbox:~/mdbox".to_vec()),
        Just(b"u:{PLAIN}p:1000:1000::/h::allow_nets=".to_vec()),
        Just(vec![b'x'; 70_000]),
        proptest::collection::vec(any::<u8>(), 0..12),
        "[a-zA-Z0-9.+-]{1,10}".prop_map(String::into_bytes),
    ]
}

fn file_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..40).prop_map(|v| v.concat())
}

/// An argument: any string without NUL (the kernel cannot pass one).
fn argument() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..4).prop_map(|v| {
        String::from_utf8_lossy(&v.concat())
            .replace('\0', "")
            .chars()
            .take(300)
            .collect()
    })
}

fn bounded(args: &[&str]) -> Run {
    mailmig_bounded(args, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("mailmig {args:?} hung"))
}

fn commands<'a>(file: &'a str, state: &'a str, arg: &'a str) -> Vec<Vec<&'a str>> {
    vec![
        vec!["map", "check", file],
        vec!["map", "check", "--kind", "virtual", file],
        vec!["map", "check", "--kind", "access", "--json", file],
        vec!["map", "dump", file],
        vec!["map", "get", file, arg],
        vec!["map", "set", "--dry-run", "--no-postmap", file, arg, "x@y"],
        vec!["map", "del", "--dry-run", "--no-postmap", file, arg],
        vec!["aliases", "--virtual", file, arg],
        vec!["aliases", "--json", "--virtual", file, "alice@example.test"],
        vec!["passwd", "check", file],
        vec!["passwd", "show", file, arg],
        vec!["passwd", "set", "--dry-run", file, arg, "allow_nets="],
        vec![
            "passwd",
            "unset",
            "--dry-run",
            file,
            "alice@example.test",
            arg,
        ],
        vec!["hold", "list", "--map", file],
        vec![
            "hold",
            "add",
            "--dry-run",
            "--no-postmap",
            "--map",
            file,
            "--virtual",
            file,
            "--",
            arg,
        ],
        vec!["--state-dir", state, "status", "--json"],
        vec!["--state-dir", state, "queue", "release", "--user", arg],
        vec!["--state-dir", state, "resume", arg],
    ]
}

fn check(run: &Run, args: &[&str]) -> Result<(), TestCaseError> {
    let err = run.err();
    prop_assert_ne!(run.code, 101, "{:?} exited 101: {}", args, err);
    prop_assert!(run.code >= 0, "{:?} killed by a signal", args);
    prop_assert!(!err.contains("panicked"), "{:?}: {}", args, err);
    for debug in ["Some(", "None)", "Os {", "Custom {", "kind: "] {
        prop_assert!(
            !err.contains(debug),
            "{:?}: debug formatting `{}` in: {}",
            args,
            debug,
            err
        );
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("MAILMIG_CLI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn no_command_panics_hangs_or_prints_debug(bytes in file_bytes(), arg in argument()) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Utf8PathBuf::try_from(tmp.path().to_path_buf()).expect("utf8");
        let file = dir.join("input");
        fs_err::write(&file, &bytes).expect("write");
        let state = dir.join("state");
        for args in commands(file.as_str(), state.as_str(), &arg) {
            let run = bounded(&args);
            check(&run, &args)?;
        }
        // Dry runs and read commands wrote nothing.
        prop_assert_eq!(fs_err::read(&file).expect("read"), bytes);
    }
}
