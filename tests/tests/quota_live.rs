//! Quota after a conversion: a backend that keeps the usage itself (2.3 `dict`, measured: the
//! copy into the new location counts every message a second time) is recounted from the new
//! location (`doveadm quota recalc`) after the catch-up, and the run checks the quota's message
//! count equals the new location's. On 2.4 the `count` backend, which counts the location it
//! reads, is recounted and checked the same way.

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

fn quota_messages(sb: &Sandbox, user: &str) -> u64 {
    let r = sb.doveadm(&["-f", "tab", "quota", "get", "-u", user]);
    assert_eq!(r.code, 0, "{}", r.err());
    r.out()
        .lines()
        .filter(|l| l.split('\t').nth(1) == Some("MESSAGE"))
        .filter_map(|l| l.split('\t').nth(2).and_then(|v| v.parse().ok()))
        .next()
        .unwrap_or_else(|| panic!("no MESSAGE row: {}", r.out()))
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn usage_is_not_doubled_by_the_copy(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let bob = "bob@example.test";
    let conf = sb.path("DOVECOT_CONFIG").to_owned();
    let quota = if stack.dovecot_24() {
        "mail_plugins {\n  quota = yes\n}\nquota \"User quota\" {\n  driver = count\n  storage_size = 1G\n}\n"
    } else {
        "mail_plugins = $mail_plugins quota\nplugin {\n  quota = dict:User quota::file:%h/dovecot-quota\n  quota_rule = *:storage=1G\n}\n"
    };
    let original = fs_err::read_to_string(&conf).expect("read");
    fs_err::write(&conf, format!("{original}\n{quota}")).expect("write");
    let r = sb.doveadm(&["reload"]);
    assert_eq!(r.code, 0, "{}", r.err());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let r = sb.seed(bob, 7);
    assert_eq!(r.code, 0, "{}", r.err());
    // The file dict is not safe under concurrent LMTP deliveries: start from a recount.
    let r = sb.doveadm(&["quota", "recalc", "-u", bob]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(quota_messages(&sb, bob), 7, "delivered mail is counted");
    let r = sb.mailmig(&["migrate", bob, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(sb.mail_location(bob), "mdbox:~/mdbox");
    assert_eq!(quota_messages(&sb, bob), 7, "the copy counted twice");
    // The recount is journaled with the catch-up.
    let runs = sb.root().join("state/runs");
    let run = fs_err::read_dir(&runs)
        .expect("runs")
        .next()
        .expect("one run")
        .expect("entry")
        .path();
    let journal = fs_err::read_to_string(run.join("journal.jsonl")).expect("journal");
    assert!(journal.contains("\"quota_messages\":7"), "{journal}");
}
