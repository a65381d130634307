//! mailmig's file transactions under stress: owner and mode kept, symlinks followed, clear
//! errors in read-only directories, never a partial file when killed with SIGKILL at random
//! moments, no lost update with several writers.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use mailmig_core::postfix::{ParseOptions, Table};
use mailmig_core::transaction::{temp_path_for, CommitOptions, FileTransaction};
use mailmig_tests::{crash_content, mailmig, run};

fn tempdir() -> (tempfile::TempDir, Utf8PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = Utf8PathBuf::try_from(d.path().to_path_buf()).expect("utf8");
    fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (d, p)
}

fn is_root() -> bool {
    fs_err::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn owner_group_and_mode_are_kept() {
    if !is_root() {
        eprintln!("skipped: needs root to give files a non-root owner");
        return;
    }
    let (_d, dir) = tempdir();
    for mode in [0o600, 0o640, 0o644] {
        let map = dir.join(format!("virtual-{mode:o}"));
        fs_err::write(&map, "a@x b@x\n").expect("write");
        std::os::unix::fs::chown(&map, Some(12345), Some(23456)).expect("chown");
        fs_err::set_permissions(&map, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let r = mailmig(&["map", "set", "--no-postmap", map.as_str(), "c@x", "d@x"]);
        assert_eq!(r.code, 0, "{}", r.err());
        let m = fs_err::metadata(&map).expect("meta");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (12345, 23456, mode));
        assert_eq!(
            fs_err::read_to_string(&map).expect("read"),
            "a@x b@x\nc@x d@x\n"
        );
        let users = dir.join(format!("users-{mode:o}"));
        fs_err::write(&users, "u:{PLAIN}x:999:995::/h::\n").expect("write");
        std::os::unix::fs::chown(&users, Some(12345), Some(23456)).expect("chown");
        fs_err::set_permissions(&users, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let r = mailmig(&["passwd", "set", users.as_str(), "u", "allow_nets="]);
        assert_eq!(r.code, 0, "{}", r.err());
        let m = fs_err::metadata(&users).expect("meta");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (12345, 23456, mode));
        assert!(!temp_path_for(&users).exists());
    }
}

#[test]
fn symlinked_target_is_edited_at_its_real_path() {
    let (_d, dir) = tempdir();
    let real = dir.join("real-virtual");
    let link = dir.join("virtual");
    fs_err::write(&real, "a@x b@x\n").expect("write");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let r = mailmig(&["map", "set", "--no-postmap", link.as_str(), "c@x", "d@x"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(fs_err::symlink_metadata(&link)
        .expect("meta")
        .file_type()
        .is_symlink());
    assert_eq!(
        fs_err::read_to_string(&real).expect("read"),
        "a@x b@x\nc@x d@x\n"
    );
    assert!(!temp_path_for(&real).exists());
}

#[test]
fn read_only_directory_gives_a_clear_error_and_no_temp_file() {
    if !is_root() {
        eprintln!("skipped: needs root to run mailmig as another user");
        return;
    }
    let (_d, dir) = tempdir();
    let map = dir.join("virtual");
    fs_err::write(&map, "a@x b@x\n").expect("write");
    fs_err::set_permissions(&map, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    // The directory belongs to root and is 0755: `nobody` can write the file but not create the
    // temporary file beside it.
    let r = run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            mailmig_tests::mailmig_bin().as_str(),
            "map",
            "set",
            "--no-postmap",
            map.as_str(),
            "c@x",
            "d@x",
        ],
    );
    assert_eq!(r.code, 73, "{}", r.err());
    assert!(
        r.err().contains("cannot create the temporary file"),
        "{}",
        r.err()
    );
    assert_eq!(fs_err::read_to_string(&map).expect("read"), "a@x b@x\n");
    assert!(!temp_path_for(&map).exists());
}

/// A process committing in a loop, killed with SIGKILL at random moments, thousands of times:
/// the file is always exactly one of the two versions, and a stray temporary file is taken over
/// and removed by the next transaction.
#[test]
fn sigkill_during_commits_never_leaves_a_partial_file() {
    let (_d, dir) = tempdir();
    let file = dir.join("users");
    let a = crash_content(b'a');
    let b = crash_content(b'b');
    fs_err::write(&file, &a).expect("write");
    let helper = env!("CARGO_BIN_EXE_commit-loop");
    let mut rng = mailmig_tests::gen::Rng::new(0xdead_beef);
    let iterations = std::env::var("MAILMIG_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut strays = 0;
    let started = Instant::now();
    for i in 0..iterations {
        let child = duct::cmd(helper, [file.as_str()])
            .stdout_null()
            .stderr_null()
            .unchecked()
            .start()
            .expect("spawn");
        // From "before the first commit" to "many commits in": 0–4 ms.
        std::thread::sleep(Duration::from_micros(rng.below(4000) as u64));
        child.kill().expect("SIGKILL");
        let now = fs_err::read(&file).expect("read");
        assert!(
            now == a || now == b,
            "iteration {i}: partial file of {} bytes",
            now.len()
        );
        if temp_path_for(&file).exists() {
            strays += 1;
        }
    }
    // The next transaction takes the stray temporary file over and leaves none behind.
    let tx = FileTransaction::prepare(&file).expect("prepare");
    let original = tx.original().to_vec();
    tx.commit(&original, &CommitOptions::default())
        .expect("commit");
    drop(FileTransaction::prepare(&file).expect("prepare"));
    assert!(!temp_path_for(&file).exists());
    eprintln!(
        "{iterations} kills in {:.1} s, {strays} left a temporary file behind (cleaned)",
        started.elapsed().as_secs_f64()
    );
}

/// Several processes adding entries to one file at once: every entry is there at the end.
/// (On tmpfs when there is one: this is about lost updates, and fsync there costs nothing.)
#[test]
fn concurrent_writers_lose_no_update() {
    let shm = Utf8Path::new("/dev/shm");
    let d = if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir")
    } else {
        tempfile::tempdir().expect("tempdir")
    };
    let dir = Utf8PathBuf::try_from(d.path().to_path_buf()).expect("utf8");
    let file = dir.join("virtual");
    fs_err::write(&file, "# shared\n").expect("write");
    let helper = env!("CARGO_BIN_EXE_edit-loop");
    let per_process = 2000;
    let writers: Vec<_> = ["p", "q", "r"]
        .iter()
        .map(|prefix| {
            duct::cmd(helper, [file.as_str(), prefix, &per_process.to_string()])
                .unchecked()
                .start()
                .expect("spawn")
        })
        .collect();
    for w in writers {
        let out = w.wait().expect("wait");
        assert!(out.status.success(), "a writer failed");
    }
    let table = Table::parse(fs_err::read(&file).expect("read"), &ParseOptions::default());
    assert!(
        table.diagnostics(true).is_empty(),
        "the file parses cleanly"
    );
    let entries = table.effective_entries(true);
    assert_eq!(entries.len(), 3 * per_process);
    for prefix in ["p", "q", "r"] {
        for n in 0..per_process {
            let key = format!("{prefix}-{n}@example.test");
            assert!(table.get(key.as_bytes(), true).is_some(), "{key} lost");
        }
    }
    assert!(!temp_path_for(Utf8Path::new(&file)).exists());
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let (_d, dir) = tempdir();
    let map = dir.join("virtual");
    fs_err::write(&map, "a@x b@x\n").expect("write");
    let r = mailmig(&[
        "map",
        "set",
        "--dry-run",
        "--no-postmap",
        map.as_str(),
        "a@x",
        "c@x",
    ]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.out().contains("-a@x b@x\n+a@x c@x\n"), "{}", r.out());
    let users = dir.join("users");
    let passwd = "t:{SHA512-CRYPT}$6$neighbour:999:995::/t::\nu:{PLAIN}x:999:995::/h::\nv:secretv:999:995::/v::\n";
    fs_err::write(&users, passwd).expect("write");
    let r = mailmig(&[
        "passwd",
        "set",
        "--dry-run",
        users.as_str(),
        "u",
        "allow_nets=",
    ]);
    // The user's line only, its password masked (regression: the diff showed passwords and the
    // neighbours' lines as context).
    assert!(
        r.out()
            .contains("-u:{PLAIN}…:999:995::/h::\n+u:{PLAIN}…:999:995::/h::allow_nets=\n"),
        "{}",
        r.out()
    );
    for secret in ["$6$neighbour", "secretv", "{PLAIN}x", "t:", "v:"] {
        assert!(!r.out().contains(secret), "{secret} shown: {}", r.out());
    }
    assert_eq!(fs_err::read_to_string(&map).expect("read"), "a@x b@x\n");
    assert_eq!(fs_err::read_to_string(&users).expect("read"), passwd);
    assert!(!temp_path_for(&map).exists() && !temp_path_for(&users).exists());
}

/// A single-file bind mount cannot be replaced by rename: a clear error, or with
/// `--copy-in-place` a rewrite in place.
#[test]
fn single_file_bind_mount() {
    if !is_root() || run("unshare", &["-m", "true"]).code != 0 {
        assert!(
            !mailmig_tests::daemons_required(),
            "the CI machine must allow mount namespaces for this test"
        );
        eprintln!("skipped: needs root and mount namespaces");
        return;
    }
    let (_d, dir) = tempdir();
    let source = dir.join("outside");
    let target = dir.join("virtual");
    fs_err::write(&source, "a@x b@x\n").expect("write");
    fs_err::write(&target, "").expect("write");
    let bin = mailmig_tests::mailmig_bin();
    // A private mount namespace: the bind mount disappears with it.
    let script = format!(
        "mount --bind {source} {target} && {bin} map set --no-postmap {target} c@x d@x; echo \"rc=$?\"; {bin} map set --no-postmap --copy-in-place {target} c@x d@x; echo \"rc=$?\""
    );
    let r = run(
        "unshare",
        &["-m", "--propagation", "private", "sh", "-c", &script],
    );
    let out = r.out();
    assert!(out.contains("rc=74\nrc=0"), "{out}\n{}", r.err());
    assert!(r.err().contains("bind mount"), "{}", r.err());
    assert!(r.err().contains("rewritten in place"), "{}", r.err());
    assert_eq!(
        fs_err::read_to_string(&source).expect("read"),
        "a@x b@x\nc@x d@x\n"
    );
    assert!(!temp_path_for(&target).exists());
}
