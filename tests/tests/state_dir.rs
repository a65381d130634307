//! mailmig's state directory through the library: private whatever the umask, and state files
//! written whole or not at all (a full file system leaves the previous version and no
//! temporary file). Its own test binary: it changes the process's umask.

use std::os::unix::fs::MetadataExt as _;

use camino::{Utf8Path, Utf8PathBuf};
use mailmig_core::hold::HoldAction;
use mailmig_core::login::LockMethod;
use mailmig_core::migrate::journal::{Journal, RunHeader};
use mailmig_core::migrate::{runs, Location, Plan, RunOptions, Strategy};
use mailmig_core::state::StateDir;

fn mode(p: &Utf8Path) -> u32 {
    fs_err::symlink_metadata(p).expect("meta").mode() & 0o7777
}

fn header(run: &str) -> RunHeader {
    RunHeader {
        format: mailmig_core::migrate::journal::FORMAT,
        run: run.into(),
        created: "2026-12-02T00:00:00Z".into(),
        plan: Plan {
            user: "alice@example.test".into(),
            from: Location::parse("maildir:~/Maildir").expect("valid"),
            to: Location::parse("mdbox:~/mdbox").expect("valid"),
            strategy: Strategy::Hold,
            warnings: vec![],
            steps: vec![],
            space: None,
        },
        options: RunOptions {
            dovecot_config: "/etc/dovecot/dovecot.conf".into(),
            postfix_config: None,
            access_map: None,
            map_type: None,
            passwd_file: "/etc/dovecot/users".into(),
            lock: LockMethod::AllowNets,
            hold_action: HoldAction::Hold,
            reason: String::new(),
            presync: true,
            home: "/home/alice".into(),
            delimiters: String::new(),
            hold_keys: vec![],
            smtputf8: true,
            auth_cache: false,
            max_hold_secs: 900,
            dovecot_version: mailmig_core::dovecot::DovecotVersion::V2_3,
            default_driver: None,
            quota: None,
            pop3: false,
            min_free: Default::default(),
            overlay: None,
        },
    }
}

/// Regression (reproduced): under `umask 000` everything in the state dir was world-writable,
/// so any local user could plant runs that a root `resume` acts on.
#[test]
fn state_is_private_whatever_the_umask_and_written_whole() {
    let old = umask(0);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Utf8PathBuf::try_from(tmp.path().to_path_buf())
        .expect("utf8")
        .join("state");
    let state = StateDir::open(&root).expect("open");
    state.write("login", "alice.json", b"{}").expect("write");
    runs::set_marker(&state, "alice@example.test", "run-1").expect("marker");
    let _lock = runs::lock_user(&state, "alice@example.test").expect("lock");
    let j = Journal::create(&state, &header("run-1")).expect("journal");
    umask(old);
    for dir in [
        root.clone(),
        root.join("login"),
        root.join("users"),
        root.join("runs"),
        root.join("runs/run-1"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{dir}");
    }
    for file in [
        root.join("login/alice.json"),
        root.join("users/alice@example.test.run"),
        root.join("users/alice@example.test.lock"),
        j.path().to_owned(),
    ] {
        assert_eq!(mode(&file), 0o600, "{file}");
    }
    // Names that would leave the directory are refused before they become paths.
    for bad in ["../x", "/abs", ".hidden", "", "a/b"] {
        assert!(state.write("login", bad, b"x").is_err(), "{bad:?}");
        assert!(runs::set_marker(&state, bad, "r").is_err(), "{bad:?}");
    }
    assert!(!root.parent().expect("parent").join("x").exists());
}

fn umask(mask: u32) -> u32 {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask)).as_raw_mode()
}

/// Regression (reproduced): ENOSPC while a state file was written left a 0-byte file, after which
/// every `rollback` and `resume` failed. A write that cannot complete leaves the previous
/// version (or nothing) and no temporary file. Needs root (a tiny tmpfs).
#[test]
fn a_full_file_system_leaves_the_previous_state_file() {
    if fs_err::metadata("/proc/self").expect("proc").uid() != 0 {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mnt = Utf8PathBuf::try_from(tmp.path().to_path_buf()).expect("utf8");
    let mounted = mailmig_tests::run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=64k,mode=0700",
            "tmpfs",
            mnt.as_str(),
        ],
    );
    assert_eq!(mounted.code, 0, "mount: {}", mounted.err());
    struct Unmount(Utf8PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = mailmig_tests::run("umount", &["-l", self.0.as_str()]);
        }
    }
    let _unmount = Unmount(mnt.clone());
    let state = StateDir::open(&mnt.join("state")).expect("open");
    state
        .write("login", "alice.json", b"previous")
        .expect("write");
    // Fill the file system.
    let filler = vec![b'x'; 4096];
    let mut f = fs_err::File::create(mnt.join("filler")).expect("filler");
    while std::io::Write::write_all(&mut f, &filler).is_ok() {}
    drop(f);
    let big = vec![b'y'; 256 * 1024];
    assert!(state.write("login", "alice.json", &big).is_err());
    assert_eq!(
        state.read("login", "alice.json").expect("read"),
        Some(b"previous".to_vec())
    );
    assert_eq!(
        state.names("login").expect("names"),
        ["alice.json"],
        "a temporary file was left behind"
    );
}
