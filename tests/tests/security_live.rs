//! The security issue's live cases on the sandbox: a hold step that fails before its edit took
//! effect rolls back (75, not 70); a hung doveadm is killed at `--max-hold` and the run rolls
//! back; lock-outs by an uppercase name or a second method; the state a migration leaves is
//! private and holds no password; a lock-out record left empty by an older mailmig's torn write.
//! Broken tools are simulated with wrappers first on PATH (the real ones run otherwise).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::time::Duration;

use camino::Utf8PathBuf;
use mailmig_tests::mail::Imap;
use mailmig_tests::sandbox::{Sandbox, Stack};
use mailmig_tests::Run;
use rstest::rstest;

fn snapshot(sb: &Sandbox) -> Vec<Vec<u8>> {
    ["VIRTUAL_MAP", "ACCESS_MAP", "PASSWD_FILE"]
        .iter()
        .map(|k| fs_err::read(sb.path(k)).expect("read"))
        .collect()
}

/// mailmig with a wrapper first on PATH, killed (a test failure) after `limit`.
fn mailmig_wrapped(sb: &Sandbox, args: &[&str], path: &str, limit: Duration) -> Run {
    let handle = sb.spawn_mailmig(args, &[("PATH", path)]);
    mailmig_tests::wait_bounded(&handle, limit)
        .unwrap_or_else(|| panic!("mailmig {args:?} did not end within {limit:?}"))
}

/// Regression (reproduced): when the hold step failed before writing anything (postmap failing,
/// the map's directory not writable), the undo failed too and the run ended 70 "needs admin"
/// instead of 75 "rolled back".
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_hold_that_never_took_effect_rolls_back_cleanly(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    sb.populate(alice, &[("INBOX", 3)]);
    let before = snapshot(&sb);
    let dir = sb.wrapper(
        "postmap",
        "#!/bin/sh\necho 'postmap: fatal: simulated failure' >&2\nexit 1\n",
    );
    let r = mailmig_wrapped(
        &sb,
        &["migrate", alice, "--to", "mdbox:~/mdbox"],
        &Sandbox::path_with(&dir),
        Duration::from_secs(180),
    );
    assert_eq!(r.code, 75, "{}", r.err());
    assert!(
        r.err().contains("step hold failed") && r.err().contains("rolled back"),
        "{}",
        r.err()
    );
    assert_eq!(snapshot(&sb), before, "the map source was put back");
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
    Imap::login(sb.get("IMAP_PORT"), alice, "alicepw").expect("login works");

    // The access map's directory cannot take the lock file (immutable, even for root).
    let map_dir = sb.path("ACCESS_MAP").parent().expect("dir").to_owned();
    let immutable = mailmig_tests::run("chattr", &["+i", map_dir.as_str()]);
    assert_eq!(immutable.code, 0, "chattr: {}", immutable.err());
    let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox"]);
    let undo = mailmig_tests::run("chattr", &["-i", map_dir.as_str()]);
    assert_eq!(undo.code, 0, "chattr -i: {}", undo.err());
    assert_eq!(r.code, 75, "{}", r.err());
    assert!(r.err().contains("rolled back"), "{}", r.err());
    assert_eq!(snapshot(&sb), before);
    let status = sb.mailmig(&["status"]);
    assert_eq!(status.code, 0, "{}", status.out());
    // And the migration works once the directory is writable again.
    let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}", r.err());
}

/// A doveadm that hangs while the user's mail is held is killed when `--max-hold` runs out, and
/// the run rolls back: the mail is released and the user can log in.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_hung_doveadm_cannot_keep_mail_held(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 5)]);
    let before = snapshot(&sb);
    let real = sb.run("sh", &["-c", "command -v doveadm"]).out();
    let count = sb.root().join("backup-count");
    // A duration of this sandbox's own (the other stack's case runs at the same time).
    let hang = format!(
        "sleep {}",
        36_000 + sb.get("SMTP_PORT").parse::<u32>().expect("port")
    );
    // The second `backup` (the final sync, while mail is held) hangs.
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in *' backup '*)\n  n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}\n  if [ $n -ge 2 ]; then exec {hang}; fi;;\nesac\nexec {} \"$@\"\n",
        real.trim()
    );
    let dir = sb.wrapper("doveadm", &script);
    let r = mailmig_wrapped(
        &sb,
        &[
            "migrate",
            alice,
            "--to",
            "mdbox:~/mdbox",
            "--max-hold",
            "5s",
        ],
        &Sandbox::path_with(&dir),
        Duration::from_secs(240),
    );
    assert_eq!(r.code, 75, "{}", r.err());
    assert!(
        r.err().contains("did not finish within") && r.err().contains("rolled back"),
        "{}",
        r.err()
    );
    assert_eq!(snapshot(&sb), before);
    assert!(sb.queue().is_empty(), "mail left held: {:?}", sb.queue());
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
    let counts = sb.tag_counts(alice, None);
    assert!(pre.iter().all(|t| counts.get(t) == Some(&1)));
    Imap::login(sb.get("IMAP_PORT"), alice, "alicepw").expect("login works");
    let hung = mailmig_tests::run("pgrep", &["-x", "-f", &hang]);
    assert_ne!(hung.code, 0, "the hung command was left running");
}

/// Regression (reproduced): `login disable ALICE@EXAMPLE.TEST` exited 67 and left a state file
/// `login enable` could not clear; `--method nologin` over an allow_nets lock-out overwrote the
/// saved record.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn lock_outs_by_another_spelling_or_method_keep_a_way_back(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let passwd = sb.path("PASSWD_FILE");
    let original = fs_err::read(passwd).expect("read");
    let r = sb.mailmig(&["login", "disable", "ALICE@EXAMPLE.TEST"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.out().contains("alice@example.test"), "{}", r.out());
    assert!(
        Imap::login(sb.get("IMAP_PORT"), "alice@example.test", "alicepw").is_err(),
        "locked out"
    );
    let r = sb.mailmig(&[
        "login",
        "disable",
        "--method",
        "nologin",
        "alice@example.test",
    ]);
    assert_eq!(r.code, 65, "{}", r.err());
    assert!(r.err().contains("already locked out"), "{}", r.err());
    let r = sb.mailmig(&["login", "enable", "Alice@Example.Test"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(fs_err::read(passwd).expect("read"), original);
    Imap::login(sb.get("IMAP_PORT"), "alice@example.test", "alicepw").expect("login works");
    let state = sb.root().join("state/login");
    assert!(
        fs_err::read_dir(&state).map_or(true, |mut d| d.next().is_none()),
        "state left"
    );
}

/// After a migration, the state directory is private (0700/0600) and no file in it holds a
/// password of any user of the passwd-file.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_migration_leaves_private_state_without_passwords(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    sb.populate(alice, &[("INBOX", 3)]);
    // Under `umask 000` (a shell of its own: the test process's umask is shared).
    let mut args: Vec<String> = ["-c", "umask 000; exec \"$@\"", "sh"]
        .map(str::to_string)
        .to_vec();
    args.extend(sb.argv_prefix(sb.mailmig_program().as_str()));
    args.extend(sb.config_args());
    args.extend(["migrate", alice, "--to", "mdbox:~/mdbox"].map(str::to_string));
    let r = mailmig_tests::run("sh", &args);
    assert_eq!(r.code, 0, "{}", r.err());
    let passwords: Vec<String> = fs_err::read_to_string(sb.path("PASSWD_FILE"))
        .expect("read")
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(str::to_string))
        .filter(|p| !p.is_empty())
        .collect();
    assert!(!passwords.is_empty());
    let mut files = 0;
    let mut stack = vec![sb.root().join("state")];
    while let Some(dir) = stack.pop() {
        assert_eq!(
            fs_err::metadata(&dir).expect("meta").mode() & 0o777,
            0o700,
            "{dir}"
        );
        for e in fs_err::read_dir(&dir).expect("read_dir") {
            let p = Utf8PathBuf::try_from(e.expect("entry").path()).expect("utf8");
            let m = fs_err::symlink_metadata(&p).expect("meta");
            if m.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            assert_eq!(m.mode() & 0o777, 0o600, "{p}");
            let text = String::from_utf8_lossy(&fs_err::read(&p).expect("read")).into_owned();
            for pw in &passwords {
                assert!(!text.contains(pw.as_str()), "{p} holds a password");
            }
        }
    }
    assert!(files >= 2, "journal and locks expected");
}

/// Regression (reproduced): a 0-byte `login/USER.json` (ENOSPC in an older mailmig) made every
/// `rollback` and `resume` fail with 70 forever while the user's mail stayed held. The record
/// guards a lock-out that never happened: the run continues.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn an_empty_lock_out_record_does_not_strand_the_user(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 4)]);
    let before = snapshot(&sb);
    // Killed as the lock-out step starts (held, not locked out yet), with the record torn.
    let r = sb.mailmig_env(
        &["migrate", alice, "--to", "mdbox:~/mdbox"],
        &[("MAILMIG_FAILPOINT", "lock-out:started")],
    );
    assert_eq!(r.code, -1, "killed: {}", r.err());
    let state = sb.root().join("state/login");
    fs_err::create_dir_all(&state).expect("mkdir");
    fs_err::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let record = state.join(format!("{alice}.json"));
    fs_err::write(&record, b"").expect("write");
    fs_err::set_permissions(&record, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let r = sb.mailmig(&["rollback"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(snapshot(&sb), before);
    assert!(!record.exists());
    assert!(sb.queue().is_empty());
    let counts = sb.tag_counts(alice, None);
    assert!(pre.iter().all(|t| counts.get(t) == Some(&1)));
    Imap::login(sb.get("IMAP_PORT"), alice, "alicepw").expect("login works");
}

/// Regression (reproduced): `queue hold|release --user /abs/x` or `--user ../../x` deleted
/// `x.json` outside the state directory and exited 0.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn queue_user_names_never_become_paths_outside_the_state_dir(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    // STATE/queue/../../x.json is the sandbox root's x.json.
    let relative = sb.root().join("x.json");
    let absolute = sb.root().join("abs.json");
    for f in [&relative, &absolute] {
        fs_err::write(f, b"[]").expect("write");
    }
    let abs_user = absolute.as_str().trim_end_matches(".json").to_string();
    for user in ["../../x", abs_user.as_str()] {
        for verb in ["hold", "release"] {
            let r = sb.mailmig(&["queue", verb, "--user", user]);
            assert_eq!(r.code, 64, "queue {verb} --user {user}: {}", r.err());
            assert!(
                relative.exists() && absolute.exists(),
                "queue {verb} --user {user}"
            );
        }
    }
}
