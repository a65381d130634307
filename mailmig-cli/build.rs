//! Records the commit the binary is built from, for `mailmig --version`: the
//! `.cargo_vcs_info.json` that `cargo package` writes into a published crate (first: a packaged
//! crate may be unpacked inside some other git checkout), else `git rev-parse --short=12 HEAD` in
//! a git checkout, else `unknown`.
#![forbid(unsafe_code)]
// Cargo reads a build script's instructions from its standard output.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    watch_git(&manifest_dir);
    let commit = from_vcs_info(&manifest_dir)
        .or_else(|| from_git(&manifest_dir))
        .unwrap_or_else(|| "unknown".to_owned());
    let date = git(&manifest_dir, &["log", "-1", "--format=%cs", "HEAD"])
        .map(|d| d.trim().to_owned())
        .unwrap_or_default();
    println!("cargo:rustc-env=MAILMIG_COMMIT={commit}");
    println!("cargo:rustc-env=MAILMIG_COMMIT_DATE={date}");
}

/// The short commit of HEAD.
fn from_git(dir: &Path) -> Option<String> {
    let out = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    let commit = out.trim().to_owned();
    (!commit.is_empty()).then_some(commit)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let mut argv: Vec<std::ffi::OsString> = vec!["-C".into(), dir.as_os_str().to_owned()];
    argv.extend(args.iter().map(Into::into));
    let out = duct::cmd("git", argv)
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .run()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

/// `{"git": {"sha1": "..."}}` of a packaged crate, shortened to 12 characters.
fn from_vcs_info(dir: &Path) -> Option<String> {
    let text = fs_err::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let start = text.find("\"sha1\"")?;
    let rest = &text[start + "\"sha1\"".len()..];
    let sha: String = rest
        .chars()
        .skip_while(|c| !c.is_ascii_hexdigit())
        .take_while(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    (sha.len() == 12).then_some(sha)
}

/// Rebuild when HEAD moves: `.git/HEAD`, the branch it names (loose or packed). In a worktree
/// `.git` is a file naming the real git directory; branches live in the common one.
fn watch_git(dir: &Path) {
    let Some(git_dir) = git(dir, &["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    let git_dir = PathBuf::from(git_dir.trim());
    let head = git_dir.join("HEAD");
    watch(&head);
    if let Ok(text) = fs_err::read_to_string(&head) {
        if let Some(reference) = text.strip_prefix("ref: ") {
            let common = git(dir, &["rev-parse", "--git-common-dir"])
                .map(|c| dir.join(c.trim()))
                .unwrap_or_else(|| git_dir.clone());
            watch(&common.join(reference.trim()));
            watch(&common.join("packed-refs"));
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// `rerun-if-changed` for a path that exists (a missing one would rerun on every build).
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
