//! Users in SQL (SQLite, PostfixAdmin's `mailbox` table, Dovecot's sql passdb and userdb) on the
//! real Dovecot 2.3 and 2.4: without mailmig's overlay a migration is refused naming it; with the
//! overlay, 20 users × 20 messages migrate with `--jobs 4` while mail arrives for all of them —
//! every message exactly once, the database never written — and a run killed after its switch
//! rolls back, one killed during its final sync resumes. `overlay export` prints what to change
//! in the database; `overlay prune` keeps every line while the database disagrees, and removes
//! them once the global location is the target.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mailmig_tests::mail::{send_tagged, spread_sender, Imap};
use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

fn read(path: &camino::Utf8Path) -> String {
    fs_err::read_to_string(path).expect("read")
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn sql_users_migrate_through_the_overlay(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_sql(stack) else {
        return;
    };
    let r = sb.mailmig(&["migrate", "alice@example.test", "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 65, "{}\n{}", r.out(), r.err());
    assert!(r.err().contains("mailmig overlay show"), "{}", r.err());

    let names: Vec<String> = (1..=18).map(|i| format!("s{i:02}")).collect();
    sb.add_users(&names);
    let users: Vec<String> = ["alice", "bob"]
        .iter()
        .map(|n| n.to_string())
        .chain(names)
        .map(|n| format!("{n}@example.test"))
        .collect();
    let (deny, location) = sb.place_overlay();
    let r = sb.mailmig(&["overlay", "check"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    let db = sb.path("SQL_DB").to_owned();
    let db_before = fs_err::read(&db).expect("db");

    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in &users {
        expected.insert(u.clone(), sb.populate(u, &[("INBOX", 15), ("Sent", 5)]));
    }
    let list = sb.root().join("users.txt");
    fs_err::write(&list, format!("{}\n", users.join("\n"))).expect("list");
    let stop = Arc::new(AtomicBool::new(false));
    let thread = spread_sender(
        sb.get("SMTP_PORT").to_string(),
        users.clone(),
        "sql",
        Duration::from_millis(40),
        stop.clone(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let r = sb.migrate_to_mdbox(&list, &[]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let sent = thread.join().expect("sender");
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    assert!(
        r.out().contains("summary: 20 user(s): 20 migrated"),
        "{}",
        r.out()
    );
    assert!(sb.wait_queue_empty(60), "queue {:?}", sb.queue_summary());
    let migrated: Vec<String> = expected.keys().cloned().collect();
    sb.assert_each_once(expected, &sent, "mdbox:~/mdbox");
    assert_eq!(
        fs_err::read(&db).expect("db"),
        db_before,
        "the database is not written"
    );
    assert_eq!(read(&deny), "");
    assert_eq!(read(&location).lines().count(), 20, "{}", read(&location));
    Imap::login(sb.get("IMAP_PORT"), "s01@example.test", "s01pw").expect("s01 logs in");

    // carol: killed after the switch, rolled back; no overlay line left, mail where it was.
    let carol = "carol@example.test";
    let carol_pre = sb.populate(carol, &[("INBOX", 5)]);
    let r = sb.mailmig_env(
        &["migrate", carol, "--to", "mdbox:~/mdbox"],
        &[("MAILMIG_FAILPOINT", "switch:passwd-written")],
    );
    assert_eq!(r.code, -1, "not killed: {}{}", r.out(), r.err());
    send_tagged(sb.get("SMTP_PORT"), &[carol], "while-dead").expect("send");
    let r = sb.mailmig(&["rollback"]);
    assert_eq!(r.code, 0, "rollback: {}{}", r.out(), r.err());
    assert!(sb.wait_queue_empty(30), "queue {:?}", sb.queue_summary());
    assert!(!read(&deny).contains(carol) && !read(&location).contains(carol));
    assert_eq!(sb.mail_location(carol), "maildir:~/Maildir");
    let counts = sb.tag_counts(carol, None);
    for tag in carol_pre.iter().chain([&"while-dead".to_string()]) {
        assert_eq!(counts.get(tag), Some(&1), "{tag}");
    }

    // Killed during the final sync, resumed.
    let r = sb.mailmig_env(
        &["migrate", carol, "--to", "mdbox:~/mdbox"],
        &[("MAILMIG_FAILPOINT", "final-sync:synced")],
    );
    assert_eq!(r.code, -1, "not killed: {}{}", r.out(), r.err());
    let r = sb.mailmig(&["resume"]);
    assert_eq!(r.code, 0, "resume: {}{}", r.out(), r.err());
    assert_eq!(sb.mail_location(carol), "mdbox:~/mdbox");
    assert_eq!(sb.inbox_count(carol), 6);
    Imap::login(sb.get("IMAP_PORT"), carol, "carolpw").expect("carol logs in");
    assert_eq!(
        fs_err::read(&db).expect("db"),
        db_before,
        "the database is not written"
    );

    // Ending the campaign: what to change in the database, per user.
    let r = sb.mailmig(&["overlay", "export", "--sql-table", "mailbox"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    assert_eq!(
        r.out().matches("UPDATE mailbox SET ").count(),
        21,
        "{}",
        r.out()
    );
    assert!(
        r.out().contains("WHERE username = 's01@example.test';"),
        "{}",
        r.out()
    );
    // The database still gives the old location: prune keeps every line — also when the
    // running configuration names its auth socket by absolute path (the private instance must
    // not ask the running one).
    let conf = read(sb.path("DOVECOT_CONFIG"));
    let run_dir = sb.path("DOVECOT_CONFIG").parent().expect("dir").join("run");
    sb.reconfigure_dovecot(&format!("{conf}auth_socket_path = {run_dir}/auth-userdb\n"));
    let r = sb.mailmig(&["overlay", "prune"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    assert_eq!(read(&location).lines().count(), 21);
    assert!(r.out().contains("kept 21"), "{}", r.out());
    // The global location moved to the target: every line is redundant and goes; everyone
    // stays on mdbox.
    let conf = read(sb.path("DOVECOT_CONFIG"));
    let moved = if stack.dovecot_24() {
        conf.replace("mail_driver = maildir", "mail_driver = mdbox")
            .replace("mail_path = ~/Maildir", "mail_path = ~/mdbox")
    } else {
        conf.replace(
            "mail_location = maildir:~/Maildir",
            "mail_location = mdbox:~/mdbox",
        )
    };
    assert_ne!(moved, conf);
    sb.reconfigure_dovecot(&moved);
    let r = sb.mailmig(&["overlay", "prune"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    assert!(r.out().contains("removed 21"), "{}", r.out());
    assert_eq!(read(&location), "");
    for user in migrated.iter().chain([&carol.to_string()]) {
        assert_eq!(sb.mail_location(user), "mdbox:~/mdbox", "{user}");
    }
}
