//! The verification cannot pass vacuously: a Dovecot that ignores the location override
//! (simulated with a doveadm wrapper that drops the `-o` location settings, as Dovecot 2.4
//! ignores 2.3's `-o mail_location=`) would make both reads come from the old location; the run
//! must fail and roll back, on both stacks.

use std::os::unix::fs::PermissionsExt as _;

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_verification_of_one_storage_against_itself_fails_the_run(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    sb.populate(alice, &[("INBOX", 4)]);
    let before: Vec<Vec<u8>> = ["VIRTUAL_MAP", "ACCESS_MAP", "PASSWD_FILE"]
        .iter()
        .map(|k| fs_err::read(sb.path(k)).expect("read"))
        .collect();
    let real = sb.run("sh", &["-c", "command -v doveadm"]).out();
    let dir = sb.root().join("wrap-ignore-location");
    fs_err::create_dir_all(&dir).expect("mkdir");
    let script = format!(
        "#!/bin/sh\n# Drop every `-o mail_location|mail_driver|mail_path=...` pair, as a Dovecot that ignores the location override would.\nfor a in \"$@\"; do shift; if [ \"$skip\" = 1 ]; then skip=0; case \"$a\" in mail_location=*|mail_driver=*|mail_path=*) continue;; *) set -- \"$@\" -o;; esac; fi; if [ \"$a\" = -o ]; then skip=1; continue; fi; set -- \"$@\" \"$a\"; done\nexec {} \"$@\"\n",
        real.trim()
    );
    let file = dir.join("doveadm");
    fs_err::write(&file, script).expect("write");
    fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!("{dir}:{}", std::env::var("PATH").unwrap_or_default());
    let r = sb.mailmig_env(
        &["migrate", alice, "--to", "mdbox:~/mdbox"],
        &[("PATH", path.as_str())],
    );
    assert_eq!(r.code, 75, "{}", r.err());
    assert!(
        r.err().contains("same INBOX path") && r.err().contains("rolled back"),
        "{}",
        r.err()
    );
    let after: Vec<Vec<u8>> = ["VIRTUAL_MAP", "ACCESS_MAP", "PASSWD_FILE"]
        .iter()
        .map(|k| fs_err::read(sb.path(k)).expect("read"))
        .collect();
    assert_eq!(after, before);
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
    // Without the wrapper the same migration passes: the check is not a false alarm.
    let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}", r.err());
}

/// What clients see of each message is verified too: a copy that loses a keyword (a doveadm
/// wrapper removes `$Label1` from the target after every `backup`) fails the verification after
/// its retries and the run rolls back; the user stays where they were.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_copy_that_loses_a_keyword_fails_the_run(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    sb.populate(alice, &[("INBOX", 6)]);
    let real = sb.run("sh", &["-c", "command -v doveadm"]).out();
    let target = if stack.dovecot_24() {
        "-o mail_driver=mdbox -o 'mail_path=~/mdbox'"
    } else {
        "-o 'mail_location=mdbox:~/mdbox'"
    };
    let dir = sb.root().join("wrap-lose-keyword");
    fs_err::create_dir_all(&dir).expect("mkdir");
    let script = format!(
        "#!/bin/sh\n{real} \"$@\"; rc=$?\ncase \" $* \" in *' backup '*)\n  {real} -c {conf} {target} flags remove -u {alice} '$Label1' mailbox INBOX ALL >/dev/null 2>&1;;\nesac\nexit $rc\n",
        real = real.trim(),
        conf = sb.get("DOVECOT_CONFIG"),
    );
    let file = dir.join("doveadm");
    fs_err::write(&file, script).expect("write");
    fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!("{dir}:{}", std::env::var("PATH").unwrap_or_default());
    let r = sb.mailmig_env(
        &["migrate", alice, "--to", "mdbox:~/mdbox"],
        &[("PATH", path.as_str())],
    );
    assert_eq!(r.code, 75, "{}", r.err());
    assert!(
        r.err().contains("other flags or keywords") && r.err().contains("rolled back"),
        "{}",
        r.err()
    );
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
}
