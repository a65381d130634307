//! `mailmig migrate --users-from FILE --jobs 4` for 50 users on the live sandbox while mail
//! arrives for all of them: every user converted, every message present exactly once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailmig_tests::mail::send_tagged;
use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn fifty_users_four_jobs_while_mail_arrives(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let names: Vec<String> = (1..=50).map(|i| format!("b{i:02}")).collect();
    sb.add_users(&names);
    let users: Vec<String> = names.iter().map(|n| format!("{n}@example.test")).collect();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in &users {
        expected.insert(u.clone(), sb.populate(u, &[("INBOX", 12), ("Sent", 4)]));
    }
    let list = sb.root().join("users.txt");
    fs_err::write(&list, format!("# batch\n{}\n", users.join("\n"))).expect("write list");

    let stop = Arc::new(AtomicBool::new(false));
    let port = sb.get("SMTP_PORT").to_string();
    let (s, targets) = (stop.clone(), users.clone());
    let sender = std::thread::spawn(move || {
        let mut sent = Vec::new();
        let mut n = 0usize;
        while !s.load(Ordering::SeqCst) {
            // Spread over the users, two at a time now and then (shared messages).
            let a = &targets[(n * 7) % targets.len()];
            let b = &targets[(n * 13 + 5) % targets.len()];
            let to: Vec<&str> = if n.is_multiple_of(4) && a != b {
                vec![a, b]
            } else {
                vec![a]
            };
            let tag = format!("batch-{n}");
            send_tagged(&port, &to, &tag).expect("send");
            sent.push((tag, to.iter().map(|t| t.to_string()).collect::<Vec<_>>()));
            n += 1;
            std::thread::sleep(Duration::from_millis(30));
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let r = sb.mailmig(&[
        "migrate",
        "--users-from",
        list.as_str(),
        "--jobs",
        "4",
        "--to",
        "mdbox:~/mdbox",
        "--json",
    ]);
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let sent = sender.join().expect("sender");
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    let migrated = r
        .out()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "migrated")
        .count();
    assert_eq!(migrated, 50, "{}", r.out());
    // Map edits of parallel runs are committed together: 50 holds and 50 releases.
    let edits = r
        .out()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "map-edits")
        .expect("map-edits event");
    let (n, tx) = (
        edits["detail"]["edits"].as_u64(),
        edits["detail"]["transactions"].as_u64(),
    );
    assert_eq!(n, Some(100), "{edits}");
    assert!(tx.is_some_and(|t| (1..=100).contains(&t)), "{edits}");
    assert!(sb.wait_queue_empty(60), "queue: {:?}", sb.queue_summary());
    for (tag, to) in &sent {
        for u in to {
            expected.get_mut(u).expect("user").push(tag.clone());
        }
    }
    for (user, tags) in &expected {
        assert_eq!(sb.mail_location(user), "mdbox:~/mdbox", "{user}");
        let counts = sb.tag_counts(user, None);
        for t in tags {
            assert_eq!(counts.get(t), Some(&1), "{user}: {t}");
        }
        assert_eq!(counts.len(), tags.len(), "{user}: extra messages");
    }
    let access = fs_err::read_to_string(sb.path("ACCESS_MAP")).expect("map");
    assert!(!access.contains("mailmig hold"), "holds left: {access}");
    // The same list again: every user is already done (exit 0), nothing changes.
    let files: Vec<Vec<u8>> = ["ACCESS_MAP", "PASSWD_FILE"]
        .iter()
        .map(|k| fs_err::read(sb.path(k)).expect("read"))
        .collect();
    let again = sb.mailmig(&[
        "migrate",
        "--users-from",
        list.as_str(),
        "--jobs",
        "4",
        "--to",
        "mdbox:~/mdbox",
    ]);
    assert_eq!(again.code, 0, "{}", again.err());
    assert!(
        again.out().contains("summary: 50 user(s): 50 already-done"),
        "{}",
        again.out()
    );
    assert_eq!(
        again.out().matches("already-done, nothing to do").count(),
        50,
        "{}",
        again.out()
    );
    let after: Vec<Vec<u8>> = ["ACCESS_MAP", "PASSWD_FILE"]
        .iter()
        .map(|k| fs_err::read(sb.path(k)).expect("read"))
        .collect();
    assert_eq!(after, files);
    eprintln!(
        "50 users, 4 jobs, {} messages sent meanwhile: {took:?}; 100 map edits in {} transactions",
        sent.len(),
        tx.unwrap_or(0)
    );
}

/// On a terminal (and without --json) a batch shows a progress bar; the endings still go to
/// stdout. `script` gives the run a pseudo-terminal.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn progress_bar_on_a_terminal(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    if !mailmig_tests::require(&["script"]) {
        return;
    }
    let names: Vec<String> = (1..=3).map(|i| format!("t{i}")).collect();
    sb.add_users(&names);
    for n in &names {
        sb.populate(&format!("{n}@example.test"), &[("INBOX", 3)]);
    }
    let list = sb.root().join("users.txt");
    fs_err::write(
        &list,
        names
            .iter()
            .map(|n| format!("{n}@example.test\n"))
            .collect::<String>(),
    )
    .expect("list");
    let state = sb.root().join("state");
    let command = format!(
        "{} --postfix-config {} --dovecot-config {} --state-dir {} migrate --users-from {} --jobs 2 --to mdbox:~/mdbox",
        sb.argv_prefix(sb.mailmig_program().as_str()).join(" "),
        sb.get("POSTFIX_CONFIG"),
        sb.get("DOVECOT_CONFIG"),
        state,
        list
    );
    let r = mailmig_tests::run("script", &["-q", "-e", "-c", &command, "/dev/null"]);
    let out = r.out();
    assert_eq!(r.code, 0, "{out}");
    assert!(out.contains("3/3 users"), "no progress bar: {out}");
    assert_eq!(out.matches("migrated from maildir").count(), 3, "{out}");
    for n in &names {
        assert_eq!(
            sb.mail_location(&format!("{n}@example.test")),
            "mdbox:~/mdbox"
        );
    }
}
