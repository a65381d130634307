//! Test support for mailmig's integration tests: the built `mailmig` binary, fixtures, the
//! real `postmap` as an oracle, and the throwaway Postfix + Dovecot sandbox.
//!
//! Tests that need the real daemons call [`require`]: when a tool is missing they are skipped
//! with a message, **unless** `MAILMIG_REQUIRE_DAEMONS=1` (set by `.ci/run` and the README's test
//! command), where a missing tool fails the test. CI never silently skips them.
#![forbid(unsafe_code)]
// Test support talks to the person running the tests.
#![allow(clippy::print_stderr)]

pub mod gen;
pub mod mail;
pub mod sandbox;

use std::sync::OnceLock;

use camino::{Utf8Path, Utf8PathBuf};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// A fixture file's path (`tests/fixtures/...`).
pub fn fixture(rel: &str) -> Utf8PathBuf {
    workspace_root().join("tests/fixtures").join(rel)
}

/// Every file in a fixture directory, sorted by name.
pub fn fixtures_in(dir: &str) -> Vec<Utf8PathBuf> {
    let mut out: Vec<Utf8PathBuf> = fs_err::read_dir(fixture(dir))
        .expect("fixture dir")
        .map(|e| Utf8PathBuf::try_from(e.expect("dir entry").path()).expect("utf-8 path"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// The `mailmig` binary, built once per test process with the same profile as the tests and the
/// `failpoints` feature (the `MAILMIG_FAILPOINT` / `MAILMIG_PAUSE` hooks the live tests use).
pub fn mailmig_bin() -> &'static Utf8Path {
    static BIN: OnceLock<Utf8PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("MAILMIG_BIN") {
            return Utf8PathBuf::from(bin);
        }
        cargo_build(
            "mailmig-cli",
            &["--bin", "mailmig", "--features", "failpoints"],
        )
        .join("debug/mailmig")
    })
}

/// What a command printed and how it exited.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Run {
    /// stdout as text (lossy).
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr as text (lossy).
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Run a program with arguments (no shell), capturing everything.
pub fn run<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Run {
    run_stdin(program, args, None)
}

/// Run with bytes on standard input.
pub fn run_stdin<S: AsRef<std::ffi::OsStr>>(
    program: &str,
    args: &[S],
    stdin: Option<&[u8]>,
) -> Run {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(AsRef::as_ref).collect();
    capture(duct::cmd(program, args), program, stdin)
}

/// Run a command expression with `stdin` (or none), capturing everything; `what` names it in a
/// failure to start.
pub fn capture(expr: duct::Expression, what: &str, stdin: Option<&[u8]>) -> Run {
    let expr = match stdin {
        Some(b) => expr.stdin_bytes(b.to_vec()),
        None => expr.stdin_null(),
    };
    let out = expr
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .unwrap_or_else(|e| panic!("could not run {what}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// Wait for a started command at most `limit`: its output, or `None` after killing it (a hang is
/// a test failure the caller reports, never a stuck suite).
pub fn wait_bounded(handle: &duct::Handle, limit: std::time::Duration) -> Option<Run> {
    match handle.wait_timeout(limit).expect("wait") {
        Some(out) => Some(Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout.clone(),
            stderr: out.stderr.clone(),
        }),
        None => {
            let _ = handle.kill();
            None
        }
    }
}

/// Run `mailmig` with arguments, killed after `limit` (`None` then).
pub fn mailmig_bounded(args: &[&str], limit: std::time::Duration) -> Option<Run> {
    let handle = duct::cmd(mailmig_bin().as_str(), args)
        .stdout_capture()
        .stderr_capture()
        .stdin_null()
        .unchecked()
        .start()
        .expect("start mailmig");
    wait_bounded(&handle, limit)
}

/// Build a package's target with the tests' profile: `cargo build -p PACKAGE ARGS...`; returns
/// the target directory.
pub fn cargo_build(package: &str, args: &[&str]) -> Utf8PathBuf {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut all = vec!["build", "--quiet", "-p", package];
    all.extend_from_slice(args);
    let status = duct::cmd(&cargo, &all)
        .dir(&root)
        .unchecked()
        .run()
        .expect("cargo runs");
    assert!(status.status.success(), "cargo {all:?} failed");
    std::env::var("CARGO_TARGET_DIR")
        .map(Utf8PathBuf::from)
        .unwrap_or_else(|_| root.join("target"))
}

/// Run `mailmig` with arguments.
pub fn mailmig<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    run(mailmig_bin().as_str(), args)
}

/// Whether the real daemons' tools must be present (CI, the README's test command).
pub fn daemons_required() -> bool {
    std::env::var("MAILMIG_REQUIRE_DAEMONS").is_ok_and(|v| v == "1")
}

/// Check that every program in `tools` is installed. Returns false (the caller returns early,
/// the test is skipped) when one is missing and daemons are not required; panics when they are.
pub fn require(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !which(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !daemons_required(),
        "MAILMIG_REQUIRE_DAEMONS=1 but {missing:?} are not installed: run `bash tests/sandbox/sandbox.sh install`"
    );
    eprintln!(
        "skipped: {missing:?} not installed (set MAILMIG_REQUIRE_DAEMONS=1 to make this an error)"
    );
    false
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(program).is_file())
}

/// A scratch Postfix configuration directory for running `postmap` as an oracle, on the host's
/// Postfix (Debian 12) or a sandbox's stack (Debian 13: the scratch directory inside the
/// instance directory, which the chroot sees at the same path; `postmap` and `mailmig` run
/// chrooted).
pub struct PostmapOracle {
    dir: tempfile::TempDir,
    /// The words that start `postmap` (`chroot ROOT postmap` for a chrooted stack).
    postmap: Vec<String>,
    /// The words that start `mailmig` on the same stack.
    mailmig: Vec<String>,
}

impl PostmapOracle {
    /// A config dir with a minimal `main.cf` (`compatibility_level = 3.6`, so
    /// `smtputf8_enable = yes`) plus `extra` lines, for the host's `postmap`.
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::with(
            dir,
            extra,
            vec!["postmap".into()],
            vec![mailmig_bin().to_string()],
        )
    }

    /// The same on `sandbox`'s stack: its `postmap`, and `mailmig` as that stack runs it.
    pub fn on(sandbox: &sandbox::Sandbox, extra: &str) -> Self {
        let dir = tempfile::tempdir_in(sandbox.root()).expect("tempdir in the instance");
        let mailmig = sandbox.mailmig_program();
        Self::with(
            dir,
            extra,
            sandbox.argv_prefix("postmap"),
            sandbox.argv_prefix(mailmig.as_str()),
        )
    }

    fn with(
        dir: tempfile::TempDir,
        extra: &str,
        postmap: Vec<String>,
        mailmig: Vec<String>,
    ) -> Self {
        fs_err::write(
            dir.path().join("main.cf"),
            format!("compatibility_level = 3.6\n{extra}"),
        )
        .expect("write main.cf");
        Self {
            dir,
            postmap,
            mailmig,
        }
    }

    /// The config directory.
    pub fn config_dir(&self) -> Utf8PathBuf {
        Utf8PathBuf::try_from(self.dir.path().to_path_buf()).expect("utf-8 temp path")
    }

    /// Run `postmap ARGS...` on the oracle's stack, with `stdin`.
    pub fn postmap<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], stdin: Option<&[u8]>) -> Run {
        Self::start(&self.postmap, args, stdin)
    }

    /// Run `mailmig ARGS...` on the oracle's stack.
    pub fn mailmig<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        Self::start(&self.mailmig, args, None)
    }

    fn start<S: AsRef<std::ffi::OsStr>>(words: &[String], args: &[S], stdin: Option<&[u8]>) -> Run {
        let (program, first) = words.split_first().expect("a program");
        let all: Vec<&std::ffi::OsStr> = first
            .iter()
            .map(AsRef::as_ref)
            .chain(args.iter().map(AsRef::as_ref))
            .collect();
        run_stdin(program, &all, stdin)
    }

    /// Copy `source` bytes into the scratch dir as `name` and build `hash:` from it.
    /// Returns the source path and postmap's run (its stderr holds the warnings).
    pub fn build(&self, name: &str, source: &[u8]) -> (Utf8PathBuf, Run) {
        let path = self.config_dir().join(name);
        fs_err::write(&path, source).expect("write map");
        // texthash re-reads a file modified within the last second ("source file is hot"),
        // repeating its warnings and sleeping: date the file in the past.
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        fs_err::File::options()
            .write(true)
            .open(&path)
            .expect("open map")
            .file()
            .set_modified(past)
            .expect("set mtime");
        let r = self.postmap(
            &["-c", self.config_dir().as_str(), &format!("hash:{path}")],
            None,
        );
        (path, r)
    }

    /// `postmap -s hash:PATH`, as sorted lines of bytes.
    pub fn dump(&self, path: &Utf8Path) -> Vec<Vec<u8>> {
        let r = self.postmap(
            &[
                "-c",
                self.config_dir().as_str(),
                "-s",
                &format!("hash:{path}"),
            ],
            None,
        );
        assert_eq!(r.code, 0, "postmap -s failed: {}", r.err());
        sorted_lines(&r.stdout)
    }

    /// `postmap -q KEY hash:PATH`: `Some(value)` on exit 0, `None` on exit 1 without `fatal:`.
    pub fn query(&self, path: &Utf8Path, key: &std::ffi::OsStr) -> Option<Vec<u8>> {
        let dir = self.config_dir();
        let map = format!("hash:{path}");
        let args: Vec<&std::ffi::OsStr> = vec![
            "-c".as_ref(),
            dir.as_str().as_ref(),
            "-q".as_ref(),
            key,
            map.as_ref(),
        ];
        let r = self.postmap(&args, None);
        assert!(!r.err().contains("fatal:"), "postmap -q error: {}", r.err());
        match r.code {
            0 => Some(r.stdout.strip_suffix(b"\n").unwrap_or(&r.stdout).to_vec()),
            1 => None,
            c => panic!("postmap -q exit {c}: {}", r.err()),
        }
    }
}

/// The line numbers `postmap` names in its warnings (`FILE, line N: ...`), sorted, deduplicated.
/// A warning about a record over several lines (3.9's NUL warning) names its range,
/// `line N-M`: that is line N, where the record starts.
pub fn postmap_warning_lines(stderr: &[u8]) -> Vec<usize> {
    let text = String::from_utf8_lossy(stderr);
    let mut lines: Vec<usize> = text
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find(", line ")? + 7..];
            let named = &rest[..rest.find(':')?];
            let (first, last) = named.split_once('-').unwrap_or((named, named));
            let (first, last) = (first.parse().ok()?, last.parse::<usize>().ok()?);
            assert!(first <= last, "postmap named the lines {named}: {l}");
            Some(first)
        })
        .collect();
    lines.sort_unstable();
    lines.dedup();
    lines
}

/// Swap line endings: LF → CRLF, and CRLF → LF.
pub fn swap_line_endings(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            out.push(b'\n');
            i += 2;
        } else if bytes[i] == b'\n' {
            out.extend_from_slice(b"\r\n");
            i += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The two contents the crash test alternates between: different sizes, many pages, so that a
/// partial write would show.
pub fn crash_content(fill: u8) -> Vec<u8> {
    let lines = if fill == b'a' { 3000 } else { 2000 };
    let mut out = Vec::new();
    for i in 0..lines {
        out.extend_from_slice(format!("key{i}@example.test ").as_bytes());
        out.extend(std::iter::repeat_n(fill, 40));
        out.push(b'\n');
    }
    out
}

/// The non-empty lines of `bytes`, sorted (to compare dumps whose order differs).
pub fn sorted_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    lines.sort();
    lines
}
