//! Crash recovery on the live sandbox: `mailmig migrate` is killed with SIGKILL after each step
//! and inside each step (27 points), mail is sent to the user while the run lies dead, then
//! `resume` (first series) or `rollback` (second series) runs. In every case nothing is lost,
//! the user ends un-held, not locked out, able to log in over IMAP, and at the expected location.

use mailmig_tests::mail::{send_tagged, Imap};
use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

/// Where the run is killed: every step's start and end, and the points between the actions of
/// a step (map written / rebuilt, passwd-file written, holds removed, login restored, queue
/// released).
const POINTS: &[&str] = &[
    "preflight:started",
    "preflight:done",
    "presync:started",
    "presync:done",
    "hold:started",
    "hold:map-written",
    "hold:postmapped",
    "hold:done",
    "lock-out:started",
    "lock-out:done",
    "final-sync:started",
    "final-sync:synced",
    "final-sync:done",
    "verify:started",
    "verify:done",
    "switch:started",
    "switch:passwd-written",
    "switch:done",
    "catch-up:started",
    "catch-up:done",
    "release:started",
    "release:map-written",
    "release:holds-removed",
    "release:login-enabled",
    "release:queue-released",
    "release:done",
    "done:started",
];

fn series(stack: Stack, prefix: &str, recover: &str) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let users: Vec<String> = (1..=POINTS.len())
        .map(|i| format!("{prefix}{i:02}"))
        .collect();
    sb.add_users(&users);
    let access_before = fs_err::read(sb.path("ACCESS_MAP")).expect("access map");
    let imap = sb.get("IMAP_PORT").to_string();
    let smtp = sb.get("SMTP_PORT").to_string();
    let past_release = POINTS
        .iter()
        .position(|p| *p == "release:started")
        .expect("point");
    for (i, (point, name)) in POINTS.iter().zip(&users).enumerate() {
        let user = format!("{name}@example.test");
        let password = format!("{name}pw");
        let pre = sb.populate(&user, &[("INBOX", 8), ("Projects", 4)]);
        let r = sb.mailmig_env(
            &["migrate", &user, "--to", "mdbox:~/mdbox"],
            &[("MAILMIG_FAILPOINT", point)],
        );
        assert_eq!(
            r.code,
            -1,
            "{point}: the run was not killed there: {}{}",
            r.out(),
            r.err()
        );
        // Mail keeps arriving while the run lies dead (held, or delivered, depending on where).
        let tag = format!("crash-{point}");
        send_tagged(&smtp, &[&user], &tag).expect("send");
        let r = sb.mailmig(&[recover]);
        assert_eq!(r.code, 0, "{point}: {recover}: {}{}", r.out(), r.err());
        assert!(
            sb.wait_queue_empty(30),
            "{point}: queue {:?}",
            sb.queue_summary()
        );
        let expect_mdbox = recover == "resume" || i >= past_release;
        let location = sb.mail_location(&user);
        assert_eq!(
            location,
            if expect_mdbox {
                "mdbox:~/mdbox"
            } else {
                "maildir:~/Maildir"
            },
            "{point}: {recover} left the user at {location}"
        );
        let counts = sb.tag_counts(&user, None);
        for t in pre.iter().chain(std::iter::once(&tag)) {
            assert_eq!(
                counts.get(t),
                Some(&1),
                "{point}: {t} after {recover}: {counts:?}"
            );
        }
        assert_eq!(counts.len(), pre.len() + 1, "{point}: extra messages");
        // Un-held and able to log in; nothing of the run left behind.
        let access = String::from_utf8_lossy(&fs_err::read(sb.path("ACCESS_MAP")).expect("map"))
            .into_owned();
        assert!(!access.contains(&user), "{point}: a hold is left: {access}");
        let passwd = fs_err::read_to_string(sb.path("PASSWD_FILE")).expect("passwd");
        let line = passwd
            .lines()
            .find(|l| l.starts_with(&format!("{user}:")))
            .expect("record");
        assert!(
            !line.contains("allow_nets"),
            "{point}: still locked out: {line}"
        );
        let mut session = Imap::login(&imap, &user, &password)
            .unwrap_or_else(|e| panic!("{point}: IMAP login: {e}"));
        session.inbox_messages().expect("status");
        assert!(
            !sb.root()
                .join("state/users")
                .join(format!("{user}.run"))
                .exists(),
            "{point}: run still open"
        );
        if !expect_mdbox {
            assert!(
                !sb.home(&user).join("mdbox").exists(),
                "{point}: the rolled-back copy was not moved aside"
            );
        }
    }
    assert_eq!(
        fs_err::read(sb.path("ACCESS_MAP")).expect("map"),
        access_before
    );
    let status = sb.mailmig(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.out()).expect("json");
    let runs = &status["runs"];
    assert_eq!(runs.as_array().map(Vec::len), Some(POINTS.len()));
    for run in runs.as_array().into_iter().flatten() {
        assert!(
            run["state"] == "done" || run["state"] == "rolled-back",
            "{run}"
        );
    }
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn killed_at_every_point_then_resumed(#[case] stack: Stack) {
    series(stack, "k", "resume");
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn killed_at_every_point_then_rolled_back(#[case] stack: Stack) {
    series(stack, "r", "rollback");
}
