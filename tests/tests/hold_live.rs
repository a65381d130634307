//! `mailmig hold` against the live sandbox: every address that reaches the mailbox is held by
//! the real smtpd, unrelated mail is delivered, `hold remove` restores the map byte for byte, and
//! the published sed script's failure cases come out right. `hold check` on broken setups.

use std::time::{Duration, Instant};

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

fn settle(sb: &Sandbox, held: usize) {
    let start = Instant::now();
    loop {
        let q = sb.queue_summary();
        let on_hold = q.iter().filter(|(n, _)| n == "hold").count();
        let other = q.len() - on_hold;
        if on_hold == held && other == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "queue did not settle: {q:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn hold_add_holds_every_address_and_remove_restores_the_map(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let pc = sb.get("POSTFIX_CONFIG");
    let virtual_map = sb.get("VIRTUAL_MAP");
    // The sed script's traps: a substring (`jimbob@` contains `bob@`), a shared alias, a
    // continued alias, a nested one.
    let r = sb.mailmig_bare(&[
        "--postfix-config",
        pc,
        "map",
        "set",
        virtual_map,
        "jimbob@example.test",
        "carol@example.test",
    ]);
    assert_eq!(r.code, 0, "{}", r.err());
    let access = sb.get("ACCESS_MAP");
    let before = fs_err::read(access).expect("read");
    let r = sb.mailmig_bare(&[
        "--postfix-config",
        pc,
        "hold",
        "add",
        "bob@example.test",
        "--reason",
        "Planned maintenance",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    let held: Vec<String> = r
        .out()
        .lines()
        .filter_map(|l| l.strip_prefix("held\t"))
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect();
    let mut sorted = held.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "bob@example.test",
            "ops@example.test",
            "staff@example.test",
            "team@example.test"
        ],
        "exactly the closure: no jimbob@ (substring), ops@ (continued), staff@ (nested)"
    );
    // Every line is a valid action (the sed script wrote `alice@x, HOLD ...` for team@).
    let check = sb.mailmig_bare(&[
        "--postfix-config",
        pc,
        "map",
        "check",
        "--kind",
        "access",
        access,
    ]);
    assert_eq!(check.code, 0, "{}", check.out());
    let list = sb.mailmig_bare(&["--postfix-config", pc, "hold", "list", "--json"]);
    assert_eq!(list.out().lines().count(), 4);
    assert_eq!(
        sb.mailmig_bare(&["--postfix-config", pc, "hold", "check"])
            .code,
        0
    );

    std::thread::sleep(Duration::from_millis(1100));
    for to in [
        "bob@example.test",
        "team@example.test",
        "staff@example.test",
        "ops@example.test",
    ] {
        sb.send(to, "hold test");
    }
    // Unrelated mail, and the substring trap, are delivered.
    sb.send("carol@example.test", "hold test");
    sb.send("jimbob@example.test", "hold test");
    sb.send("alice@example.test", "hold test");
    settle(&sb, 4);

    let r = sb.mailmig_bare(&["--postfix-config", pc, "hold", "remove", "bob@example.test"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(
        fs_err::read(access).expect("read"),
        before,
        "the map is byte-identical"
    );
    assert_eq!(
        sb.mailmig_bare(&["--postfix-config", pc, "hold", "remove", "bob@example.test"])
            .code,
        1
    );
    std::thread::sleep(Duration::from_millis(1100));
    sb.send("bob@example.test", "hold test");
    settle(&sb, 4);
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn hold_check_reports_what_bypasses_the_map(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let pc = sb.get("POSTFIX_CONFIG");
    let access = sb.get("ACCESS_MAP");
    assert_eq!(
        sb.mailmig_bare(&["--postfix-config", pc, "hold", "check"])
            .code,
        0
    );
    let postconf = |args: &[&str]| {
        let mut a = vec!["-c", pc];
        a.extend_from_slice(args);
        let r = sb.run("postconf", &a);
        assert_eq!(r.code, 0, "{}", r.err());
    };
    // The map after permit_mynetworks: local clients are accepted first.
    postconf(&["-e", &format!("smtpd_recipient_restrictions = permit_mynetworks, check_recipient_access hash:{access}, reject_unauth_destination")]);
    let r = sb.mailmig_bare(&["--postfix-config", pc, "hold", "check", "--map", access]);
    assert_eq!(r.code, 1);
    assert!(
        r.out().contains("only after `permit_mynetworks`"),
        "{}",
        r.out()
    );
    postconf(&["-e", &format!("smtpd_recipient_restrictions = check_recipient_access hash:{access}, permit_mynetworks, reject_unauth_destination")]);
    // A submission service with its own restrictions, and a proxy filter.
    postconf(&["-Me", "submission/inet=submission inet n - n - - smtpd"]);
    postconf(&[
        "-P",
        "submission/inet/smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
    ]);
    postconf(&["-P", "submission/inet/smtpd_proxy_filter=127.0.0.1:10025"]);
    let r = sb.mailmig_bare(&["--postfix-config", pc, "hold", "check", "--map", access]);
    assert_eq!(r.code, 1);
    assert!(
        r.out()
            .contains("submission/inet overrides smtpd_recipient_restrictions"),
        "{}",
        r.out()
    );
    assert!(
        r.out().contains("submission/inet sets smtpd_proxy_filter"),
        "{}",
        r.out()
    );
    assert!(r.out().contains("sendmail/postdrop"), "{}", r.out());
}

/// The sed script's catch-all failure: `@domain` keys are not access(5) patterns, so catch-all
/// mail is not held. mailmig says so (exit 1, the key named) instead of pretending.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn catch_all_reaching_the_mailbox_is_reported_not_silently_missed(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let pc = sb.get("POSTFIX_CONFIG");
    let virtual_map = sb.get("VIRTUAL_MAP");
    for (k, v) in [
        ("catchall.test", "virtual-alias-domain"),
        ("@catchall.test", "alice@example.test"),
    ] {
        let r = sb.mailmig_bare(&["--postfix-config", pc, "map", "set", virtual_map, k, v]);
        assert_eq!(r.code, 0, "{}", r.err());
    }
    let r = sb.mailmig_bare(&["--postfix-config", pc, "hold", "add", "alice@example.test"]);
    assert_eq!(r.code, 1, "incomplete hold: {}{}", r.out(), r.err());
    assert!(
        r.err()
            .contains("`@catchall.test` also reaches alice@example.test"),
        "{}",
        r.err()
    );
    assert!(r.err().contains("catch-all"), "{}", r.err());
    // Exactly what mailmig said: mail to the catch-all is not held by the exact keys.
    std::thread::sleep(Duration::from_millis(1100));
    let before = sb.inbox_count("alice@example.test");
    sb.send("anyone@catchall.test", "catch-all");
    let start = Instant::now();
    while sb.inbox_count("alice@example.test") == before {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "catch-all mail not delivered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // And the `.au` trap of the sed script cannot happen: every key written is a whole address
    // of the closure, never a fragment of one.
    let list = sb.mailmig_bare(&["--postfix-config", pc, "hold", "list"]);
    for line in list.out().lines() {
        let key = line.split('\t').next().unwrap_or_default();
        assert!(
            key.contains('@') && !key.starts_with('@') && !key.starts_with('.'),
            "{key}"
        );
    }
}
