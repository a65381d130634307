//! Edits seen by the live daemons: a `map set` + postmap is what `postmap -q` and a live smtpd
//! see; a `passwd set` is what Dovecot's lookups see within 2 s — every time, also for edits of
//! the same size in the same second.

use std::time::{Duration, Instant};

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

/// `postmap -c DIR -q KEY hash:MAP`.
fn postmap_q(sb: &Sandbox, config_dir: &str, map: &str, key: &str) -> mailmig_tests::Run {
    sb.run(
        "postmap",
        &["-c", config_dir, "-q", key, &format!("hash:{map}")],
    )
}

/// `doveadm auth lookup USER` against the sandbox's Dovecot.
fn auth_lookup(sb: &Sandbox, user: &str) -> mailmig_tests::Run {
    sb.run(
        "doveadm",
        &["-c", sb.get("DOVECOT_CONFIG"), "auth", "lookup", user],
    )
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn map_set_reaches_postmap_and_smtpd(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let pc = sb.get("POSTFIX_CONFIG");
    let access = sb.get("ACCESS_MAP");
    let r = sb.mailmig_bare(&[
        "--postfix-config",
        pc,
        "map",
        "set",
        access,
        "alice@example.test",
        "HOLD planned maintenance",
    ]);
    assert_eq!(r.code, 0, "{}", r.err());
    let q = postmap_q(&sb, pc, access, "alice@example.test");
    assert_eq!(q.out(), "HOLD planned maintenance\n");
    // smtpd notices a changed table by its mtime second: never in the second it opened it.
    std::thread::sleep(Duration::from_millis(1100));
    sb.send("alice@example.test", "held");
    wait_until("the message is on hold", Duration::from_secs(10), || {
        sb.queue_summary()
            .iter()
            .any(|(q, r)| q == "hold" && r.iter().any(|a| a == "alice@example.test"))
    });
    let r = sb.mailmig_bare(&[
        "--postfix-config",
        pc,
        "map",
        "del",
        access,
        "alice@example.test",
    ]);
    assert_eq!(r.code, 0, "{}", r.err());
    let q = postmap_q(&sb, pc, access, "alice@example.test");
    assert_eq!(q.code, 1);
    assert_eq!(
        fs_err::read(access).expect("read"),
        b"",
        "set then del restored the empty map"
    );
    std::thread::sleep(Duration::from_millis(1100));
    sb.send("alice@example.test", "not held");
    // The second message is delivered; only the first stays on hold.
    wait_until(
        "the second message is delivered",
        Duration::from_secs(10),
        || {
            sb.queue_summary()
                .iter()
                .filter(|(q, _)| q != "hold")
                .count()
                == 0
                && sb
                    .queue_summary()
                    .iter()
                    .filter(|(q, _)| q == "hold")
                    .count()
                    == 1
        },
    );
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn passwd_set_reaches_dovecot_within_two_seconds(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let passwd = sb.get("PASSWD_FILE");
    let user = "alice@example.test";
    let lookup = || auth_lookup(&sb, user);
    assert_eq!(lookup().code, 0);
    // Alternate two values of the same size, as fast as the edits go: each must show.
    let mut worst = Duration::ZERO;
    for (i, value) in ["aaaa", "bbbb", "aaaa", "bbbb", "cccc", "dddd"]
        .iter()
        .enumerate()
    {
        let r = sb.mailmig_bare(&["passwd", "set", passwd, user, &format!("reason={value}")]);
        assert_eq!(r.code, 0, "{}", r.err());
        let seen = wait_until(
            &format!("edit {i} (reason={value})"),
            Duration::from_secs(2),
            || lookup().out().contains(&format!("reason    : {value}")),
        );
        worst = worst.max(seen);
    }
    // The lock-out: an empty allow_nets makes the lookup fail (67), and removing it restores it.
    let r = sb.mailmig_bare(&["passwd", "set", passwd, user, "allow_nets="]);
    assert_eq!(r.code, 0, "{}", r.err());
    worst = worst.max(wait_until(
        "allow_nets= locks out",
        Duration::from_secs(2),
        || lookup().code == 67,
    ));
    let r = sb.mailmig_bare(&["passwd", "unset", passwd, user, "allow_nets", "reason"]);
    assert_eq!(r.code, 0, "{}", r.err());
    worst = worst.max(wait_until("unlock", Duration::from_secs(2), || {
        let l = lookup();
        l.code == 0 && !l.out().contains("reason")
    }));
    eprintln!("slowest edit seen by Dovecot after {worst:?}");
}

/// Regression: three `passwd set` within one second, Dovecot loading the first in that second,
/// and the third of the first's size. Dovecot checks a passwd-file at most once a second and
/// re-reads it only when its (mtime second, size) differ from the version it loaded: with the
/// third stamped like the first, it kept the first for good (the migrations of the downtime
/// harness, overlay mode, four jobs, ended "needs admin": Dovecot did not see a lock-out or a
/// re-enable within 5 s).
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_size_that_comes_back_within_one_second_reaches_dovecot(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let passwd = sb.get("PASSWD_FILE");
    let user = "alice@example.test";
    let lookup = || auth_lookup(&sb, user);
    let set = |value: &str| {
        let r = sb.mailmig_bare(&["passwd", "set", passwd, user, &format!("reason={value}")]);
        assert_eq!(r.code, 0, "{}", r.err());
    };
    let second = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
    };
    let mut arranged = false;
    for attempt in 0..5 {
        // Start right after a second begins, so that the three edits fall into it.
        let now = second();
        std::thread::sleep(Duration::from_nanos(
            1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
        ));
        let start = second().as_secs();
        let (first, last) = (format!("a{attempt}aa"), format!("c{attempt}cc"));
        set(&first);
        // Dovecot loads the first version in its second (when it does not, try again).
        if !lookup().out().contains(&format!("reason    : {first}")) {
            continue;
        }
        set(&format!("b{attempt}bbbbbbb"));
        set(&last);
        if second().as_secs() != start {
            continue;
        }
        arranged = true;
        wait_until(
            &format!("reason={last} (the first's size, in the first's second)"),
            Duration::from_secs(3),
            || lookup().out().contains(&format!("reason    : {last}")),
        );
        break;
    }
    assert!(
        arranged,
        "three edits and a lookup of the first never fell into one second"
    );
}
