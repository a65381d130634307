//! `mailmig migrate` end to end on the live sandbox, with mail arriving over SMTP during the whole
//! run: nothing lost, nothing duplicated, flags/UIDs/UIDVALIDITY kept, the other recipients'
//! copies delivered, the maps and the passwd-file byte-identical except the mail location.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailmig_tests::mail::{send_tagged, Imap, Smtp};
use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

/// (tag, reaches alice, reaches bob)
type Sent = Arc<Mutex<Vec<(String, bool, bool)>>>;

/// Send tagged mail in a loop until `stop`: to alice, her aliases (al@ single, team@ shared with
/// bob, staff@ nested → team@), a message with two RCPTs (alice and bob), and ops@ (bob, carol).
fn sender(port: String, stop: Arc<AtomicBool>, sent: Sent) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let targets: [(&[&str], bool, bool); 6] = [
            (&["alice@example.test"], true, false),
            (&["al@example.test"], true, false),
            (&["team@example.test"], true, true),
            (&["staff@example.test"], true, true),
            (&["alice@example.test", "bob@example.test"], true, true),
            (&["ops@example.test"], false, true),
        ];
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let (to, a, b) = targets[n % targets.len()];
            let tag = format!("live-{n}");
            send_tagged(&port, to, &tag).unwrap_or_else(|e| panic!("sending {tag} to {to:?}: {e}"));
            sent.lock().expect("lock").push((tag, a, b));
            n += 1;
            std::thread::sleep(Duration::from_millis(40));
        }
    })
}

/// tag → (mailbox, uid, flags without \Recent)
fn layout(
    sb: &Sandbox,
    user: &str,
    location: Option<&str>,
) -> BTreeMap<String, (String, String, String)> {
    sb.fetch(user, location, "mailbox uid flags hdr.x-mailmig-test")
        .into_iter()
        .filter(|r| r.len() == 4 && r[3].starts_with("pre-"))
        .map(|r| {
            let flags: Vec<&str> = r[2]
                .split(' ')
                .filter(|f| !f.is_empty() && *f != "\\Recent")
                .collect();
            (r[3].clone(), (r[0].clone(), r[1].clone(), flags.join(" ")))
        })
        .collect()
}

fn uidvalidities(sb: &Sandbox, user: &str, location: Option<&str>) -> Vec<String> {
    let r = sb.doveadm_at(
        location,
        &[
            "-f",
            "tab",
            "mailbox",
            "status",
            "-u",
            user,
            "uidvalidity",
            "*",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err());
    let mut v: Vec<String> = r.out().lines().skip(1).map(str::to_string).collect();
    v.sort();
    v
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn migrate_while_mail_arrives(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 200), ("Projects", 60), ("Archive", 40)]);
    assert_eq!(pre.len(), 300);
    let before_layout = layout(&sb, alice, None);
    assert_eq!(before_layout.len(), 300);
    assert!(before_layout
        .values()
        .any(|(_, _, f)| f.contains("$Label1") && f.contains("project")));
    let before_uv = uidvalidities(&sb, alice, None);
    let files = ["VIRTUAL_MAP", "ACCESS_MAP", "PASSWD_FILE"]
        .map(|k| (k, fs_err::read(sb.path(k)).expect("read")));

    // An open IMAP session of alice's.
    let imap_port = sb.get("IMAP_PORT").to_string();
    let mut session = Imap::login(&imap_port, alice, "alicepw").expect("IMAP login before");
    session.command("SELECT INBOX").expect("select");

    let stop = Arc::new(AtomicBool::new(false));
    let sent: Sent = Arc::new(Mutex::new(Vec::new()));
    let thread = sender(sb.get("SMTP_PORT").to_string(), stop.clone(), sent.clone());
    std::thread::sleep(Duration::from_millis(800));
    let started = Instant::now();
    let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox", "--json"]);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::SeqCst);
    thread.join().expect("sender");
    assert_eq!(r.code, 0, "migrate: {}\n{}", r.out(), r.err());
    let events: Vec<serde_json::Value> = r
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(
        events.iter().any(|e| e["event"] == "migrated"),
        "{}",
        r.out()
    );
    assert!(
        sb.wait_queue_empty(60),
        "queue not empty: {:?}",
        sb.queue_summary()
    );

    let sent = sent.lock().expect("lock").clone();
    assert!(
        sent.len() > 20,
        "only {} messages were sent during {took:?}",
        sent.len()
    );
    assert_eq!(sb.mail_location(alice), "mdbox:~/mdbox");
    // Every message that was sent to alice is in mdbox exactly once; the old ones too.
    let counts = sb.tag_counts(alice, None);
    let expected: Vec<&String> = pre
        .iter()
        .chain(sent.iter().filter(|s| s.1).map(|s| &s.0))
        .collect();
    for tag in &expected {
        assert_eq!(counts.get(*tag), Some(&1), "{tag} in alice's mdbox");
    }
    assert_eq!(counts.len(), expected.len(), "unexpected extra messages");
    // The other recipients' copies.
    let bob = sb.tag_counts("bob@example.test", None);
    for (tag, _, to_bob) in &sent {
        assert_eq!(
            bob.get(tag).copied().unwrap_or(0),
            usize::from(*to_bob),
            "{tag} at bob"
        );
    }
    // Flags, keywords, UIDs, UIDVALIDITY unchanged.
    assert_eq!(layout(&sb, alice, None), before_layout);
    assert_eq!(uidvalidities(&sb, alice, None), before_uv);
    // The files: identical, except alice's mail location.
    for (key, bytes) in &files {
        let now = fs_err::read(sb.path(key)).expect("read");
        if *key == "PASSWD_FILE" {
            let text = String::from_utf8(bytes.clone()).expect("utf-8");
            let line = text
                .lines()
                .find(|l| l.starts_with("alice@"))
                .expect("alice")
                .to_string();
            let want = text.replacen(
                &line,
                &format!("{line}{}", sb.userdb_location("mdbox:~/mdbox")),
                1,
            );
            assert_eq!(String::from_utf8_lossy(&now), want);
        } else {
            assert_eq!(&now, bytes, "{key} changed");
        }
    }
    // The old session was kicked; a new login works and sees the new format.
    assert!(
        session.command("NOOP").is_err(),
        "the old IMAP session survived"
    );
    let mut fresh = Imap::login(&imap_port, alice, "alicepw").expect("IMAP login after");
    let inbox = sb
        .fetch(alice, None, "mailbox")
        .iter()
        .filter(|r| r[0] == "INBOX")
        .count();
    assert_eq!(fresh.inbox_messages().expect("status"), inbox);
    let status = sb.mailmig(&["status", "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&status.out()).expect("json");
    assert_eq!(runs["runs"][0]["state"], "done", "{}", status.out());
    assert_eq!(runs["users"]["done"], 1, "{}", status.out());
    eprintln!(
        "migrated 300 + {} live messages in {took:?}",
        sent.iter().filter(|s| s.1).count()
    );
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn in_flight_transaction_is_caught_up(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 20)]);
    // RCPT before the hold.
    let mut smtp = Smtp::connect(sb.get("SMTP_PORT")).expect("smtp");
    smtp.envelope(&[alice]).expect("envelope");
    let pause = sb.root().join("pause");
    let handle = sb.spawn_mailmig(
        &["migrate", alice, "--to", "mdbox:~/mdbox"],
        &[
            ("MAILMIG_PAUSE", "verify:done"),
            ("MAILMIG_PAUSE_FILE", pause.as_str()),
        ],
    );
    sb.wait_for_file(&pause);
    // Holds and lock-out are on, the final sync and the verification are done: DATA now.
    smtp.data(&[alice], "in-flight").expect("DATA accepted");
    smtp.quit();
    assert!(
        sb.wait_queue_empty(30),
        "not delivered: {:?}",
        sb.queue_summary()
    );
    let old = sb.tag_counts(alice, Some("maildir:~/Maildir"));
    assert_eq!(
        old.get("in-flight"),
        Some(&1),
        "the in-flight message went into the old location"
    );
    fs_err::remove_file(&pause).expect("resume mailmig");
    let out = handle.wait().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("carry-over"),
        "the catch-up step carried it: {err}"
    );
    let counts = sb.tag_counts(alice, None);
    assert_eq!(sb.mail_location(alice), "mdbox:~/mdbox");
    assert_eq!(counts.get("in-flight"), Some(&1));
    for tag in &pre {
        assert_eq!(counts.get(tag), Some(&1), "{tag}");
    }
    assert_eq!(counts.len(), pre.len() + 1);
}
