//! `mailmig queue` against the live sandbox: deferred mail for the user is put on hold, release
//! frees only the user's messages (another admin's hold stays) and they arrive in the mailbox.

use std::time::{Duration, Instant};

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn hold_and_release_only_the_users_messages(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let pc = sb.get("POSTFIX_CONFIG");
    let state = sb.root().join("state");
    let cli = |args: &[&str]| sb.mailmig(args);
    // Deliveries are deferred (as after a failed LMTP attempt).
    assert_eq!(
        sb.run("postconf", &["-c", pc, "-e", "defer_transports = lmtp"])
            .code,
        0
    );
    assert_eq!(sb.run("postfix", &["-c", pc, "reload"]).code, 0);
    std::thread::sleep(Duration::from_millis(500));
    sb.send("alice@example.test", "queue test");
    sb.send("al@example.test", "queue test");
    sb.send("carol@example.test", "queue test");
    wait("three deferred messages", || {
        sb.queue()
            .iter()
            .filter(|m| m["queue_name"] == "deferred")
            .count()
            == 3
    });
    // Another admin holds carol's message.
    let carol_id = sb
        .queue()
        .iter()
        .find(|m| m["recipients"][0]["address"] == "carol@example.test")
        .and_then(|m| m["queue_id"].as_str().map(str::to_string))
        .expect("carol's message");
    let r = sb.run("postsuper", &["-c", pc, "-h", &carol_id]);
    assert_eq!(r.code, 0);

    let listed = cli(&["queue", "list", "--user", "alice@example.test", "--json"]);
    assert_eq!(listed.out().lines().count(), 2, "{}", listed.out());
    let held = cli(&["queue", "hold", "--user", "alice@example.test"]);
    assert_eq!(held.code, 0, "{}", held.err());
    assert_eq!(
        held.out()
            .lines()
            .filter(|l| l.starts_with("held\t"))
            .count(),
        2
    );
    assert_eq!(
        sb.queue()
            .iter()
            .filter(|m| m["queue_name"] == "hold")
            .count(),
        3
    );

    // Deliveries work again; nothing of alice's moves while held.
    assert_eq!(
        sb.run("postconf", &["-c", pc, "-X", "defer_transports"])
            .code,
        0
    );
    assert_eq!(sb.run("postfix", &["-c", pc, "reload"]).code, 0);
    std::thread::sleep(Duration::from_millis(500));
    let before = sb.inbox_count("alice@example.test");
    let released = cli(&["queue", "release", "--user", "alice@example.test"]);
    assert_eq!(released.code, 0, "{}", released.err());
    assert_eq!(
        released
            .out()
            .lines()
            .filter(|l| l.starts_with("released\t"))
            .count(),
        2
    );
    wait("alice's two messages delivered", || {
        sb.inbox_count("alice@example.test") == before + 2
    });
    let q = sb.queue();
    assert_eq!(q.len(), 1, "only carol's message remains: {q:?}");
    assert_eq!(q[0]["queue_id"].as_str(), Some(carol_id.as_str()));
    assert_eq!(
        q[0]["queue_name"], "hold",
        "another admin's hold is untouched"
    );
    assert!(
        !state.join("queue/alice@example.test.json").exists(),
        "nothing left to release"
    );
}

/// A message for two users under migration (team@ = alice + bob) stays on hold while bob is
/// still held, even when alice's mail is released.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn mail_of_another_user_in_migration_stays_held(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let state = sb.root().join("state");
    let cli = |args: &[&str]| sb.mailmig(args);
    for user in ["alice@example.test", "bob@example.test"] {
        let r = cli(&["hold", "add", user]);
        assert_eq!(r.code, 0, "{}", r.err());
    }
    std::thread::sleep(Duration::from_millis(1100));
    sb.send("team@example.test", "for both");
    sb.send("al@example.test", "for alice only");
    wait("two held messages", || {
        sb.queue()
            .iter()
            .filter(|m| m["queue_name"] == "hold")
            .count()
            == 2
    });
    let ids = state.join("ids");
    fs_err::create_dir_all(&state).expect("state dir");
    let listed = cli(&["queue", "list", "--user", "alice@example.test"]);
    let alice_ids: String = listed
        .out()
        .lines()
        .map(|l| format!("{}\n", l.split('\t').next().unwrap_or_default()))
        .collect();
    fs_err::write(&ids, alice_ids).expect("write ids");
    let r = cli(&["hold", "remove", "alice@example.test"]);
    assert_eq!(r.code, 0, "{}", r.err());
    let before = sb.inbox_count("alice@example.test");
    let r = cli(&[
        "queue",
        "release",
        "--user",
        "alice@example.test",
        "--ids",
        ids.as_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(
        r.out()
            .lines()
            .filter(|l| l.starts_with("released\t"))
            .count(),
        1,
        "{}",
        r.out()
    );
    assert_eq!(
        r.out().lines().filter(|l| l.starts_with("kept\t")).count(),
        1,
        "{}",
        r.out()
    );
    wait("alice's own message delivered", || {
        sb.inbox_count("alice@example.test") == before + 1
    });
    let q = sb.queue();
    assert_eq!(q.len(), 1);
    assert_eq!(
        q[0]["queue_name"], "hold",
        "the team@ message waits for bob's migration"
    );
}
