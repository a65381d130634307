//! The embedding example (`mailmig-core/examples/migrate.rs`) on the live sandbox: a program
//! that uses `mailmig-core` alone — no mailmig binary — migrates alice to mdbox while mail
//! arrives; every message sent during the run is in the new mailbox exactly once.

use std::time::Duration;

use camino::Utf8PathBuf;
use mailmig_tests::mail::Sender;
use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

/// The example's binary, built with the tests' profile.
fn example() -> Utf8PathBuf {
    mailmig_tests::cargo_build("mailmig-core", &["--example", "migrate"])
        .join("debug/examples/migrate")
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn the_embedding_example_migrates_a_user_while_mail_arrives(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let bin = sb.program(&example());
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 20), ("Archive", 5)]);
    let sender = Sender::start(
        sb.get("SMTP_PORT"),
        &[&[alice], &["al@example.test"]],
        "embed",
        Duration::from_millis(50),
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut args = sb.config_args();
    args.extend([alice.to_string(), "mdbox:~/mdbox".to_string()]);
    let r = sb.run(bin.as_str(), &args);
    std::thread::sleep(Duration::from_millis(500));
    let sent = sender.finish();
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    for event in [
        "preflight: start",
        "hold: done",
        "release: done",
        "outcome: migrated",
    ] {
        assert!(r.out().contains(event), "{event}: {}", r.out());
    }
    assert!(sb.wait_queue_empty(60), "queue: {:?}", sb.queue_summary());
    assert_eq!(sb.mail_location(alice), "mdbox:~/mdbox");
    assert!(sent.len() > 10, "only {} sent", sent.len());
    let counts = sb.tag_counts(alice, None);
    for tag in pre.iter().chain(&sent) {
        assert_eq!(counts.get(tag), Some(&1), "{tag} in alice's mdbox");
    }
    assert_eq!(counts.len(), pre.len() + sent.len(), "extra messages");
    // The CLI reads what the library wrote.
    let status = sb.mailmig(&["status", "--json"]);
    assert!(
        status.out().contains("\"state\": \"done\""),
        "{}",
        status.out()
    );
}
