//! The verification cannot pass vacuously: a Dovecot that ignores the location override
//! (simulated with a doveadm wrapper that drops the `-o` location settings, as Dovecot 2.4
//! ignores 2.3's `-o mail_location=`) would make both reads come from the old location; the run
//! must fail and roll back, on both stacks.

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

/// alice's migration with `script` as doveadm first on PATH: it fails, saying `finding`, and
/// rolls back (75).
fn rolled_back_with(sb: &Sandbox, script: &str, finding: &str) {
    let dir = sb.wrapper("doveadm", script);
    let path = Sandbox::path_with(&dir);
    let r = sb.mailmig_env(
        &["migrate", "alice@example.test", "--to", "mdbox:~/mdbox"],
        &[("PATH", path.as_str())],
    );
    assert_eq!(r.code, 75, "{}", r.err());
    assert!(
        r.err().contains(finding) && r.err().contains("rolled back"),
        "{}",
        r.err()
    );
    // The copy was moved aside, and `cleanup` removes it (the old location stays).
    let home = sb.home("alice@example.test");
    let aside = || {
        fs_err::read_dir(&home)
            .expect("home")
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("mdbox.mailmig-rolled-back-")
            })
            .count()
    };
    assert_eq!(aside(), 1, "the copy is moved aside");
    let r = sb.mailmig(&["cleanup", "--older-than", "0s"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.out().contains("rolled-back copy"), "{}", r.out());
    assert_eq!(aside(), 0, "{}", r.out());
    assert!(home.join("Maildir").is_dir());
}

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
    let script = format!(
        "#!/bin/sh\n# Drop every `-o mail_location|mail_driver|mail_path=...` pair, as a Dovecot that ignores the location override would.\nfor a in \"$@\"; do shift; if [ \"$skip\" = 1 ]; then skip=0; case \"$a\" in mail_location=*|mail_driver=*|mail_path=*) continue;; *) set -- \"$@\" -o;; esac; fi; if [ \"$a\" = -o ]; then skip=1; continue; fi; set -- \"$@\" \"$a\"; done\nexec {} \"$@\"\n",
        real.trim()
    );
    rolled_back_with(&sb, &script, "same INBOX path");
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

/// What clients see is verified too: a copy that loses a keyword (a doveadm wrapper removes
/// `$Label1` from the target after every `backup`) or a subscription (the wrapper unsubscribes
/// `Archive` there) fails the verification after its retries and the run rolls back; the user
/// stays where they were.
#[rstest]
#[case::debian12_keyword(Stack::Debian12, Tamper::Keyword)]
#[case::debian13_keyword(Stack::Debian13, Tamper::Keyword)]
#[case::debian12_subscription(Stack::Debian12, Tamper::Subscription)]
#[case::debian13_subscription(Stack::Debian13, Tamper::Subscription)]
fn a_copy_that_loses_what_clients_see_fails_the_run(#[case] stack: Stack, #[case] tamper: Tamper) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    sb.populate(alice, &[("INBOX", 6), ("Archive", 2)]);
    let r = sb.doveadm(&["mailbox", "subscribe", "-u", alice, "INBOX", "Archive"]);
    assert_eq!(r.code, 0, "{}", r.err());
    let real = sb.run("sh", &["-c", "command -v doveadm"]).out();
    let target = if stack.dovecot_24() {
        "-o mail_driver=mdbox -o 'mail_path=~/mdbox'"
    } else {
        "-o 'mail_location=mdbox:~/mdbox'"
    };
    let (action, finding) = match tamper {
        Tamper::Keyword => (
            format!("flags remove -u {alice} '$Label1' mailbox INBOX ALL"),
            "other flags or keywords",
        ),
        Tamper::Subscription => (
            format!("mailbox unsubscribe -u {alice} Archive"),
            "subscriptions differ",
        ),
    };
    let script = format!(
        "#!/bin/sh\n{real} \"$@\"; rc=$?\ncase \" $* \" in *' backup '*)\n  {real} -c {conf} {target} {action} >/dev/null 2>&1;;\nesac\nexit $rc\n",
        real = real.trim(),
        conf = sb.get("DOVECOT_CONFIG"),
    );
    rolled_back_with(&sb, &script, finding);
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
}

/// What the wrapper takes away from the copy.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    Keyword,
    Subscription,
}
