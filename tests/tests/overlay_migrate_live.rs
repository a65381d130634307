//! Migrations through mailmig's overlay on the real Dovecot 2.3 and 2.4: with the overlay in
//! place, `migrate` locks the user out with a line in the deny file and switches them with a
//! record in the override file, while mail arrives; the primary passwd-file is not touched. A
//! run killed after the switch rolls back to no overlay line at all; one killed while locked
//! out resumes; `login disable --method deny` and `enable` add and remove the deny line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailmig_tests::mail::{send_tagged, Imap};
use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

/// Tagged mail to alice and to bob every 50 ms until `stop`; the tags sent to each.
fn sender(
    port: String,
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<(String, &'static str)>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let to = if n % 3 == 2 { BOB } else { ALICE };
            let tag = format!("ov-{n}");
            send_tagged(&port, &[to], &tag).unwrap_or_else(|e| panic!("sending {tag}: {e}"));
            sent.lock().expect("lock").push((tag, to));
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

fn read(path: &camino::Utf8Path) -> String {
    fs_err::read_to_string(path).expect("read")
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn migrations_go_through_the_overlay(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let (deny, location) = sb.place_overlay();
    let r = sb.mailmig(&["overlay", "check"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    let passwd_before = fs_err::read(sb.path("PASSWD_FILE")).expect("passwd");
    let pre = sb.populate(ALICE, &[("INBOX", 40), ("Projects", 10)]);

    // The plan says which mode, and edits only the overlay files.
    let r = sb.mailmig(&["plan", ALICE, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    assert!(r.out().contains("mode: overlay"), "{}", r.out());
    assert!(r.out().contains(&format!("+{ALICE}\n")), "{}", r.out());
    assert!(
        !r.out().contains(sb.path("PASSWD_FILE").as_str()),
        "{}",
        r.out()
    );

    // Migrated while mail arrives.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let thread = sender(sb.get("SMTP_PORT").to_string(), stop.clone(), sent.clone());
    std::thread::sleep(Duration::from_millis(500));
    let r = sb.mailmig(&["migrate", ALICE, "--to", "mdbox:~/mdbox"]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    thread.join().expect("sender");
    assert_eq!(r.code, 0, "migrate: {}\n{}", r.out(), r.err());
    assert!(sb.wait_queue_empty(60), "queue {:?}", sb.queue_summary());

    assert_eq!(sb.mail_location(ALICE), "mdbox:~/mdbox");
    assert_eq!(sb.mail_location(BOB), "maildir:~/Maildir");
    assert_eq!(
        fs_err::read(sb.path("PASSWD_FILE")).expect("passwd"),
        passwd_before,
        "the primary passwd-file is not touched"
    );
    assert_eq!(read(&deny), "", "the deny line is gone");
    assert_eq!(
        read(&location),
        format!("{ALICE}:::::::{}\n", sb.userdb_location("mdbox:~/mdbox"))
    );
    let sent = sent.lock().expect("lock").clone();
    assert!(sent.len() > 10, "only {} sent", sent.len());
    let (alice_counts, bob_counts) = (sb.tag_counts(ALICE, None), sb.tag_counts(BOB, None));
    for (tag, to) in &sent {
        let counts = if *to == ALICE {
            &alice_counts
        } else {
            &bob_counts
        };
        assert_eq!(counts.get(tag), Some(&1), "{tag} to {to}");
    }
    for tag in &pre {
        assert_eq!(alice_counts.get(tag), Some(&1), "{tag}");
    }
    Imap::login(sb.get("IMAP_PORT"), ALICE, "alicepw").expect("alice logs in after");

    // Killed after the switch was written, then rolled back: no overlay line is left.
    sb.add_users(&["carol".to_string(), "dave".to_string()]);
    let (carol, dave) = ("carol@example.test", "dave@example.test");
    let passwd_with_new_users = fs_err::read(sb.path("PASSWD_FILE")).expect("passwd");
    assert!(passwd_with_new_users.starts_with(&passwd_before));
    let carol_pre = sb.populate(carol, &[("INBOX", 6)]);
    let r = sb.mailmig_env(
        &["migrate", carol, "--to", "mdbox:~/mdbox"],
        &[("MAILMIG_FAILPOINT", "switch:passwd-written")],
    );
    assert_eq!(r.code, -1, "not killed: {}{}", r.out(), r.err());
    assert!(
        read(&deny).contains(carol),
        "carol is locked out while dead"
    );
    assert!(read(&location).contains(carol), "carol was switched");
    send_tagged(sb.get("SMTP_PORT"), &[carol], "while-dead").expect("send");
    let r = sb.mailmig(&["rollback"]);
    assert_eq!(r.code, 0, "rollback: {}{}", r.out(), r.err());
    assert!(sb.wait_queue_empty(30), "queue {:?}", sb.queue_summary());
    assert!(!read(&deny).contains(carol), "{}", read(&deny));
    assert!(!read(&location).contains(carol), "{}", read(&location));
    assert!(read(&location).contains(ALICE), "alice's line stays");
    assert_eq!(sb.mail_location(carol), "maildir:~/Maildir");
    let counts = sb.tag_counts(carol, None);
    for tag in carol_pre.iter().chain([&"while-dead".to_string()]) {
        assert_eq!(counts.get(tag), Some(&1), "{tag}");
    }
    Imap::login(sb.get("IMAP_PORT"), carol, "carolpw").expect("carol logs in after rollback");

    // Killed while locked out, then resumed: migrated, the deny line gone.
    sb.populate(dave, &[("INBOX", 6)]);
    let r = sb.mailmig_env(
        &["migrate", dave, "--to", "mdbox:~/mdbox"],
        &[("MAILMIG_FAILPOINT", "lock-out:done")],
    );
    assert_eq!(r.code, -1, "not killed: {}{}", r.out(), r.err());
    let r = sb.doveadm(&["auth", "test", dave, "davepw"]);
    assert_ne!(r.code, 0, "dave is locked out while dead");
    let r = sb.mailmig(&["resume"]);
    assert_eq!(r.code, 0, "resume: {}{}", r.out(), r.err());
    assert_eq!(sb.mail_location(dave), "mdbox:~/mdbox");
    assert!(!read(&deny).contains(dave), "{}", read(&deny));
    assert_eq!(sb.inbox_count(dave), 6);
    Imap::login(sb.get("IMAP_PORT"), dave, "davepw").expect("dave logs in after resume");

    // The deny lock-out by hand; a line the admin wrote stays when mailmig lets the user in.
    let r = sb.mailmig(&["login", "disable", BOB, "--method", "deny"]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert_eq!(read(&deny), format!("{BOB}\n"));
    let r = sb.doveadm(&["auth", "test", BOB, "bobpw"]);
    assert_ne!(r.code, 0, "bob is refused");
    let r = sb.mailmig(&["login", "enable", BOB]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert_eq!(read(&deny), "");
    fs_err::write(&deny, format!("{carol}\n")).expect("admin's line");
    let r = sb.mailmig(&["login", "disable", carol, "--method", "deny"]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    let r = sb.mailmig(&["login", "enable", carol]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert_eq!(read(&deny), format!("{carol}\n"), "the admin's line stays");
    assert_eq!(
        fs_err::read(sb.path("PASSWD_FILE")).expect("passwd"),
        passwd_with_new_users,
        "the primary passwd-file is not touched by the runs nor the deny lock-outs"
    );

    // The end of the campaign on a passwd-file primary: the overlay folded into it in one
    // rewrite, then pruned; only alice's and dave's lines change, everyone stays where they are.
    let r = sb.mailmig(&["overlay", "fold", "--dry-run"]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert!(r.out().contains("would fold 2"), "{}", r.out());
    assert_eq!(
        fs_err::read(sb.path("PASSWD_FILE")).expect("passwd"),
        passwd_with_new_users
    );
    let r = sb.mailmig(&["overlay", "fold"]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert!(r.out().contains("folded 2"), "{}", r.out());
    assert!(r.out().contains("removed 2, kept 0"), "{}", r.out());
    assert_eq!(read(&location), "");
    let fields = sb.userdb_location("mdbox:~/mdbox");
    let before = String::from_utf8(passwd_with_new_users).expect("utf-8");
    let after = read(sb.path("PASSWD_FILE"));
    assert_eq!(before.lines().count(), after.lines().count());
    for (b, a) in before.lines().zip(after.lines()) {
        if b.starts_with(ALICE) || b.starts_with(dave) {
            assert_eq!(
                a,
                format!("{b}{fields}"),
                "only the location fields are added"
            );
        } else {
            assert_eq!(a, b);
        }
    }
    for user in [ALICE, dave] {
        assert_eq!(sb.mail_location(user), "mdbox:~/mdbox", "{user}");
    }
    assert_eq!(sb.mail_location(carol), "maildir:~/Maildir");
    Imap::login(sb.get("IMAP_PORT"), ALICE, "alicepw").expect("alice logs in after the fold");
}

/// With Dovecot's auth cache on (an hour, negative answers too) and filled, the overlay's edits
/// still take effect at once: mailmig flushes the user's entries after each edit.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn the_auth_cache_does_not_hide_overlay_edits(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let conf = fs_err::read_to_string(sb.path("DOVECOT_CONFIG")).expect("conf");
    sb.reconfigure_dovecot(&format!(
        "{conf}auth_cache_size = 1M\nauth_cache_ttl = 1 hour\nauth_cache_negative_ttl = 1 hour\n"
    ));
    let (deny, _) = sb.place_overlay();
    let port = sb.get("IMAP_PORT").to_string();
    // Filled: a login and a userdb lookup of each.
    for (user, pw) in [(ALICE, "alicepw"), (BOB, "bobpw")] {
        Imap::login(&port, user, pw).expect("login before");
        assert_eq!(sb.doveadm(&["user", user]).code, 0);
    }
    let r = sb.mailmig(&["login", "disable", BOB, "--method", "deny"]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert!(Imap::login(&port, BOB, "bobpw").is_err(), "bob is refused");
    let r = sb.mailmig(&["login", "enable", BOB]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    Imap::login(&port, BOB, "bobpw").expect("bob logs in again");

    sb.populate(ALICE, &[("INBOX", 5)]);
    let r = sb.mailmig(&["migrate", ALICE, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert_eq!(sb.mail_location(ALICE), "mdbox:~/mdbox");
    assert_eq!(read(&deny), "");
    Imap::login(&port, ALICE, "alicepw").expect("alice logs in after");
    let r = sb.seed(ALICE, 1);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(sb.inbox_count(ALICE), 6, "delivered into mdbox");
}
