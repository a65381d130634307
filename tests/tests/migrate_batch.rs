//! `mailmig migrate --users-from FILE --jobs 4` for 50 users on the live sandbox while mail
//! arrives for all of them: every user converted, every message present exactly once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailmig_tests::mail::spread_sender;
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
    let sender = spread_sender(
        sb.get("SMTP_PORT").to_string(),
        users.clone(),
        "batch",
        Duration::from_millis(30),
        stop.clone(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let r = sb.migrate_to_mdbox(&list, &["--json"]);
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
    // So are the passwd-file edits: 50 lock-outs, 50 switches, 50 re-enables.
    let passwd = r
        .out()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "passwd-edits")
        .expect("passwd-edits event");
    let (pn, ptx) = (
        passwd["detail"]["edits"].as_u64(),
        passwd["detail"]["transactions"].as_u64(),
    );
    assert_eq!(pn, Some(150), "{passwd}");
    assert!(ptx.is_some_and(|t| (1..=150).contains(&t)), "{passwd}");
    assert!(sb.wait_queue_empty(60), "queue: {:?}", sb.queue_summary());
    sb.assert_each_once(expected, &sent, "mdbox:~/mdbox");
    let access = fs_err::read_to_string(sb.path("ACCESS_MAP")).expect("map");
    assert!(!access.contains("mailmig hold"), "holds left: {access}");
    // The same list again: every user is already done (exit 0), nothing changes.
    let files: Vec<Vec<u8>> = ["ACCESS_MAP", "PASSWD_FILE"]
        .iter()
        .map(|k| fs_err::read(sb.path(k)).expect("read"))
        .collect();
    let again = sb.migrate_to_mdbox(&list, &[]);
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
        "50 users, 4 jobs, {} messages sent meanwhile: {took:?}; 100 map edits in {} transactions, 150 passwd-file edits in {} rewrites",
        sent.len(),
        tx.unwrap_or(0),
        ptx.unwrap_or(0)
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
