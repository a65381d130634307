//! A hostile local user against a root mailmig (issue "Security and robustness"): planted links
//! and files, names that try to become paths, a state directory others can write, FIFOs and
//! devices as input, and malformed lines in the diagnostic renderer. One test per instance.
//! Runs as root (CI does): links and files are given to `nobody` to play the neighbour.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use mailmig_tests::{mailmig, mailmig_bounded, Run};

const NOBODY: u32 = 65_534;

fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = Utf8PathBuf::try_from(d.path().to_path_buf()).expect("utf8");
    // Like a vmail-owned tree: the neighbour may create names here.
    fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    (d, p)
}

fn is_root() -> bool {
    rustix_euid() == 0
}

fn rustix_euid() -> u32 {
    fs_err::metadata("/proc/self").expect("proc").uid()
}

/// The victim: a root-only file elsewhere.
fn victim(dir: &Utf8Path) -> Utf8PathBuf {
    let v = dir.join("victim");
    fs_err::write(&v, b"root secret\n").expect("write");
    fs_err::set_permissions(&v, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    v
}

fn assert_victim_untouched(v: &Utf8Path) {
    let m = fs_err::metadata(v).expect("victim");
    assert_eq!(fs_err::read(v).expect("read"), b"root secret\n");
    assert_eq!(
        (m.uid(), m.mode() & 0o7777),
        (0, 0o600),
        "victim chowned/chmoded"
    );
}

fn symlink_owned(target: &Utf8Path, link: &Utf8Path, uid: u32) {
    std::os::unix::fs::symlink(target, link).expect("symlink");
    std::os::unix::fs::lchown(link, Some(uid), Some(uid)).expect("lchown");
}

fn map_set(map: &Utf8Path) -> Run {
    mailmig(&["map", "set", "--no-postmap", map.as_str(), "a@x", "c@x"])
}

fn passwd_set(users: &Utf8Path) -> Run {
    mailmig(&["passwd", "set", users.as_str(), "u", "allow_nets="])
}

/// A file name, its content, and the command that edits it.
type Editor = (&'static str, &'static [u8], fn(&Utf8Path) -> Run);

/// Every edit command, on a file whose temporary name is planted first.
fn editors() -> Vec<Editor> {
    vec![
        ("virtual", b"a@x b@x\n", map_set),
        ("users", b"u:{PLAIN}x:999:995::/h::\n", passwd_set),
    ]
}

/// Regression (reproduced): `FILE.mailmig.tmp -> /root-only/file` made a root edit write
/// through the link, chown and chmod the victim and rename the link over the file.
#[test]
fn a_planted_temp_symlink_is_refused_whoever_owns_it() {
    if !is_root() {
        return;
    }
    for owner in [NOBODY, 0] {
        for (name, content, edit) in editors() {
            let (_d, dir) = tmp();
            let v = victim(&dir);
            let file = dir.join(name);
            fs_err::write(&file, content).expect("write");
            let temp = dir.join(format!("{name}.mailmig.tmp"));
            symlink_owned(&v, &temp, owner);
            let r = edit(&file);
            assert_ne!(r.code, 0, "{name}: accepted a planted link: {}", r.out());
            assert!(r.err().contains("mailmig.tmp"), "{}", r.err());
            assert_victim_untouched(&v);
            assert_eq!(fs_err::read(&file).expect("read"), content);
            assert!(fs_err::symlink_metadata(&temp)
                .expect("still there")
                .file_type()
                .is_symlink());
        }
    }
}

/// A hard link to another file planted as the temporary name is refused (and never written).
#[test]
fn a_planted_temp_hard_link_is_refused() {
    if !is_root() {
        return;
    }
    for (name, content, edit) in editors() {
        let (_d, dir) = tmp();
        let v = victim(&dir);
        let file = dir.join(name);
        fs_err::write(&file, content).expect("write");
        fs_err::hard_link(&v, dir.join(format!("{name}.mailmig.tmp"))).expect("link");
        let r = edit(&file);
        assert_ne!(r.code, 0, "{name}: {}", r.out());
        assert!(r.err().contains("hard links"), "{}", r.err());
        assert_victim_untouched(&v);
        assert_eq!(fs_err::read(&file).expect("read"), content);
    }
}

/// A leftover temporary file of a stranger (not root, not the target's owner) is refused; one of
/// the target's owner is taken over without being written, chowned or chmoded: a fresh file
/// replaces the target.
#[test]
fn a_leftover_temp_file_is_taken_over_only_from_a_trusted_owner_and_never_written() {
    if !is_root() {
        return;
    }
    for (name, content, edit) in editors() {
        let (_d, dir) = tmp();
        let file = dir.join(name);
        fs_err::write(&file, content).expect("write");
        let temp = dir.join(format!("{name}.mailmig.tmp"));
        fs_err::write(&temp, b"planted\n").expect("write");
        std::os::unix::fs::chown(&temp, Some(NOBODY), Some(NOBODY)).expect("chown");
        fs_err::set_permissions(&temp, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let r = edit(&file);
        assert_ne!(
            r.code,
            0,
            "{name}: took over a stranger's file: {}",
            r.out()
        );
        assert!(r.err().contains("owned by uid 65534"), "{}", r.err());
        assert_eq!(fs_err::read(&file).expect("read"), content);

        // Now the target belongs to nobody too: the leftover is taken over (removed), and the
        // neighbour's open handle sees nothing of the new content.
        std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).expect("chown");
        let held = fs_err::File::open(&temp).expect("open");
        let held_ino = held.metadata().expect("meta").ino();
        let r = edit(&file);
        assert_eq!(r.code, 0, "{name}: {}", r.err());
        assert_ne!(fs_err::metadata(&file).expect("meta").ino(), held_ino);
        assert_eq!(held.metadata().expect("meta").mode() & 0o777, 0o666);
        assert_eq!(held.metadata().expect("meta").uid(), NOBODY);
        let mut planted = String::new();
        std::io::Read::read_to_string(&mut &held, &mut planted).expect("read");
        assert_eq!(planted, "planted\n");
        assert!(!temp.exists());
    }
}

/// The file itself, or a directory on its path, as a link owned by someone else: refused.
#[test]
fn untrusted_links_on_the_path_are_refused() {
    if !is_root() {
        return;
    }
    let (_d, dir) = tmp();
    let v = victim(&dir);
    let link = dir.join("virtual");
    symlink_owned(&v, &link, NOBODY);
    let r = map_set(&link);
    assert_ne!(r.code, 0);
    assert!(
        r.err().contains("symbolic link owned by uid 65534"),
        "{}",
        r.err()
    );
    assert_victim_untouched(&v);

    let real = dir.join("real");
    fs_err::create_dir(&real).expect("mkdir");
    fs_err::write(real.join("virtual"), b"a@x b@x\n").expect("write");
    let swapped = dir.join("maps");
    symlink_owned(&real, &swapped, NOBODY);
    let r = map_set(&swapped.join("virtual"));
    assert_ne!(r.code, 0);
    assert!(r.err().contains("owned by uid 65534"), "{}", r.err());
    assert_eq!(
        fs_err::read(real.join("virtual")).expect("read"),
        b"a@x b@x\n"
    );

    // The administrator's own link (root's) is followed and kept.
    let admin = dir.join("admin-maps");
    std::os::unix::fs::symlink(&real, &admin).expect("symlink");
    let r = map_set(&admin.join("virtual"));
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(
        fs_err::read(real.join("virtual")).expect("read"),
        b"a@x c@x\n"
    );
}

/// Regression (reproduced): `queue hold|release --user /abs/x` or `../../x` deleted `x.json`
/// outside the state directory.
#[test]
fn names_that_would_become_paths_are_refused() {
    let (_d, dir) = tmp();
    let state = dir.join("state");
    let outside = dir.join("x.json");
    fs_err::write(&outside, b"[]").expect("write");
    for user in [
        outside.with_extension("").to_string(),
        "../../x".into(),
        "../x".into(),
    ] {
        for verb in ["hold", "release"] {
            let r = mailmig(&[
                "--state-dir",
                state.as_str(),
                "queue",
                verb,
                "--user",
                user.as_str(),
            ]);
            assert_eq!(r.code, 64, "queue {verb} --user {user}: {}", r.err());
            assert!(
                outside.exists(),
                "queue {verb} --user {user} deleted {outside}"
            );
        }
    }
}

/// Regression (reproduced): `hold add 'x@example.test] evil [y'` wrote a line that `hold list`
/// could not see and `hold remove` could not remove.
#[test]
fn hold_add_refuses_addresses_it_cannot_manage() {
    let (_d, dir) = tmp();
    let access = dir.join("access");
    fs_err::write(&access, b"# access\n").expect("write");
    let virt = dir.join("virtual");
    fs_err::write(&virt, b"").expect("write");
    for bad in [
        "x@example.test] evil [y",
        "",
        "a b@x",
        "a,b@x",
        "a\tb",
        "a[b",
        "a\u{7}b",
    ] {
        let r = mailmig(&[
            "hold",
            "add",
            "--no-postmap",
            "--map",
            access.as_str(),
            "--virtual",
            virt.as_str(),
            "--",
            bad,
        ]);
        assert_eq!(r.code, 64, "{bad:?}: {} {}", r.out(), r.err());
        assert_eq!(fs_err::read(&access).expect("read"), b"# access\n");
    }
}

/// Regression (reproduced): read commands blocked forever on a FIFO and read `/dev/zero` until
/// memory ran out. Non-regular files are refused before anything is read.
#[test]
fn fifos_and_devices_are_refused_not_read() {
    let (_d, dir) = tmp();
    let fifo = dir.join("fifo");
    mailmig_tests::run("mkfifo", &[fifo.as_str()]);
    for input in [fifo.as_str(), "/dev/zero", "/dev/null", dir.as_str()] {
        let commands: Vec<Vec<&str>> = vec![
            vec!["map", "check", input],
            vec!["map", "dump", input],
            vec!["map", "get", input, "a@x"],
            vec!["passwd", "check", input],
            vec!["passwd", "show", input, "u"],
            vec!["aliases", "--virtual", input, "a@x"],
        ];
        for args in commands {
            let r = mailmig_bounded(&args, Duration::from_secs(30))
                .unwrap_or_else(|| panic!("{args:?} hung"));
            assert!(
                r.code != 0 && r.code != 101,
                "{args:?}: exit {} {}",
                r.code,
                r.err()
            );
            assert!(
                r.err().contains("not a regular file"),
                "{args:?}: {}",
                r.err()
            );
        }
    }
}

/// Regression (reproduced): a skipped record with a non-ASCII character (`café` alone on a
/// line) panicked (exit 101) in the diagnostic renderer, blocking every command reading the map.
#[test]
fn multibyte_lines_in_diagnostics_do_not_panic() {
    let (_d, dir) = tmp();
    let map = dir.join("virtual");
    fs_err::write(&map, "café\nnaïve@x b@x\n\u{1F600}\n").expect("write");
    for args in [
        vec!["map", "check", map.as_str()],
        vec!["map", "check", "--kind", "virtual", map.as_str()],
        vec!["map", "dump", map.as_str()],
        vec!["aliases", "--virtual", map.as_str(), "b@x"],
    ] {
        let r = mailmig(&args);
        assert_ne!(r.code, 101, "{args:?}: {}", r.err());
        assert!(!r.err().contains("panicked"), "{args:?}: {}", r.err());
    }
    // The warning shows the line, the caret under the character.
    let r = mailmig(&["map", "dump", map.as_str()]);
    assert!(r.err().contains("1 | café\n  |    ^"), "{}", r.err());
}

/// An existing state directory that others may write, or that belongs to someone else, is
/// refused (77) before anything in it is read or acted on.
#[test]
fn a_state_dir_others_can_write_is_refused() {
    if !is_root() {
        return;
    }
    let (_d, dir) = tmp();
    let state = dir.join("state");
    fs_err::create_dir(&state).expect("mkdir");
    for (mode, owner) in [(0o777, 0), (0o770, 0), (0o700, NOBODY)] {
        fs_err::set_permissions(&state, std::fs::Permissions::from_mode(mode)).expect("chmod");
        std::os::unix::fs::chown(&state, Some(owner), Some(owner)).expect("chown");
        for args in [vec!["status"], vec!["resume"], vec!["rollback"]] {
            let mut all = vec!["--state-dir", state.as_str()];
            all.extend(args.iter().copied());
            let r = mailmig(&all);
            assert_eq!(
                r.code,
                77,
                "{args:?} mode {mode:o} owner {owner}: {}",
                r.err()
            );
            assert!(r.err().contains("state directory"), "{}", r.err());
        }
    }
    // A state directory that is a link someone else planted.
    let real = dir.join("elsewhere");
    fs_err::create_dir(&real).expect("mkdir");
    let link = dir.join("state-link");
    symlink_owned(&real, &link, NOBODY);
    let r = mailmig(&["--state-dir", link.as_str(), "status"]);
    assert_eq!(r.code, 77, "{}", r.err());
}
