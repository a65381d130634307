//! A campaign from start to end on the real daemons: the disk-space guard refuses a user who
//! does not fit (and a batch starts no one after them), `status` counts users per state with
//! the held time, `cleanup` removes an old location only when the run is old enough and nothing
//! else lives in it, and `finish` says when every user is on the target, prints the global
//! setting, and removes the per-user overrides once that setting is in place.

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

/// `migrate --users-from LIST --to mdbox:~/mdbox EXTRA...` for these users.
fn batch(sb: &Sandbox, users: &[&str], extra: &[&str]) -> mailmig_tests::Run {
    let list = sb.root().join("batch.txt");
    fs_err::write(&list, users.join("\n")).expect("list");
    let mut args = vec![
        "migrate",
        "--users-from",
        list.as_str(),
        "--to",
        "mdbox:~/mdbox",
    ];
    args.extend_from_slice(extra);
    sb.mailmig(&args)
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn disk_space_status_and_cleanup(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    sb.populate(ALICE, &[("INBOX", 5)]);
    sb.populate(BOB, &[("INBOX", 2)]);

    // The plan shows the estimate.
    let r = sb.mailmig(&["plan", ALICE, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.out().contains("disk space: needs about"), "{}", r.out());

    // A reserve of the whole file system: alice does not fit, and bob is not started.
    let r = batch(&sb, &[ALICE, BOB], &["--min-free", "100%"]);
    assert_eq!(r.code, 75, "{}\n{}", r.out(), r.err());
    assert!(r.err().contains("not enough disk space"), "{}", r.err());
    assert!(r.err().contains("short of disk space"), "{}", r.err());
    assert!(
        r.out()
            .contains("summary: 2 user(s): 1 not-started, 1 refused"),
        "{}",
        r.out()
    );
    assert!(
        r.out().contains(&format!("  refused {ALICE}: ")),
        "{}",
        r.out()
    );
    assert!(
        r.out().contains(&format!("  not-started {BOB}: ")),
        "{}",
        r.out()
    );
    assert_eq!(sb.mail_location(ALICE), "maildir:~/Maildir");

    let r = sb.mailmig(&["migrate", ALICE, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}", r.err());
    let r = sb.mailmig(&["status"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.out().contains("users: 1 (1 done)"), "{}", r.out());
    assert!(r.out().contains("held: "), "{}", r.out());
    assert!(!r.out().contains("held: -"), "a held time: {}", r.out());

    // Cleanup: too recent by default; a sieve script inside keeps it; then it goes.
    let maildir = sb.home(ALICE).join("Maildir");
    let r = sb.mailmig(&["cleanup"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.out().contains("within --older-than"), "{}", r.out());
    let r = sb.mailmig(&["cleanup", "--older-than", "0s", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(
        r.out().contains(&format!("would remove {maildir}")),
        "{}",
        r.out()
    );
    assert!(maildir.exists(), "--dry-run removed nothing");
    fs_err::create_dir(maildir.join("sieve")).expect("sieve dir");
    let r = sb.mailmig(&["cleanup", "--older-than", "0s"]);
    assert!(r.out().contains("a sieve script"), "{}", r.out());
    assert!(maildir.exists());
    fs_err::remove_dir(maildir.join("sieve")).expect("rmdir");
    let r = sb.mailmig(&["cleanup", "--older-than", "0s"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(
        r.out().contains(&format!("removed {maildir}")),
        "{}",
        r.out()
    );
    assert!(!maildir.exists(), "the old location is gone");
    assert!(sb.home(ALICE).join("mdbox").exists(), "the new one stays");
    assert_eq!(sb.inbox_count(ALICE), 5, "alice reads her mail");
    let r = sb.mailmig(&["status"]);
    assert!(r.out().contains("done (cleaned up)"), "{}", r.out());
    let r = sb.mailmig(&["cleanup", "--older-than", "0s"]);
    assert!(
        r.out().contains("cleanup: 0 of 0 leftover(s)"),
        "{}",
        r.out()
    );
}

/// The global location in the sandbox's dovecot.conf set to `mdbox:~/mdbox`, Dovecot reloaded.
fn make_mdbox_the_default(sb: &Sandbox) {
    let conf = sb.path("DOVECOT_CONFIG").to_owned();
    let text = fs_err::read_to_string(&conf).expect("read");
    let new = text
        .replace(
            "mail_location = maildir:~/Maildir",
            "mail_location = mdbox:~/mdbox",
        )
        .replace("mail_driver = maildir", "mail_driver = mdbox")
        .replace("mail_path = ~/Maildir", "mail_path = ~/mdbox");
    assert_ne!(new, text, "the global location was found");
    sb.reconfigure_dovecot(&new);
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn finish_ends_the_campaign(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let users = ["alice", "bob", "carol"].map(|u| format!("{u}@example.test"));
    for u in &users {
        sb.populate(u, &[("INBOX", 2)]);
    }
    let r = sb.mailmig(&["finish", "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 1, "{}\n{}", r.out(), r.err());
    assert!(
        r.out().contains("0 of 3 user(s) on mdbox:~/mdbox"),
        "{}",
        r.out()
    );
    assert!(
        r.out().contains("not yet: carol@example.test"),
        "{}",
        r.out()
    );

    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let r = batch(&sb, &names, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());

    let r = sb.mailmig(&["finish", "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    assert!(r.out().contains("3 of 3 user(s)"), "{}", r.out());
    let change = if stack.dovecot_24() {
        "    mail_driver = mdbox\n    mail_path = ~/mdbox\n"
    } else {
        "    mail_location = mdbox:~/mdbox\n"
    };
    assert!(r.out().contains(change), "{}", r.out());

    // Removing the overrides before the default is the target would move every user back.
    let passwd = sb.path("PASSWD_FILE").to_owned();
    let before = fs_err::read_to_string(&passwd).expect("read");
    let r = sb.mailmig(&["finish", "--to", "mdbox:~/mdbox", "--remove-overrides"]);
    assert_eq!(r.code, 65, "{}\n{}", r.out(), r.err());
    assert!(r.err().contains("the global default is not"), "{}", r.err());
    assert_eq!(fs_err::read_to_string(&passwd).expect("read"), before);

    make_mdbox_the_default(&sb);
    let r = sb.mailmig(&["finish", "--to", "mdbox:~/mdbox", "--remove-overrides"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.err());
    assert!(
        r.out()
            .contains("removed the location overrides of 3 user(s)"),
        "{}",
        r.out()
    );
    let after = fs_err::read_to_string(&passwd).expect("read");
    assert!(!after.contains("userdb_mail"), "{after}");
    // Only the location fields changed: each line is the old one without them.
    for (old, new) in before.lines().zip(after.lines()) {
        let rest = old
            .strip_prefix(new.trim_end())
            .unwrap_or_else(|| panic!("{old} -> {new}"));
        assert!(
            rest.split_whitespace()
                .all(|f| f.starts_with("userdb_mail")),
            "{old} -> {new}"
        );
    }
    for u in &users {
        assert_eq!(sb.mail_location(u), "mdbox:~/mdbox", "{u}");
        assert_eq!(sb.inbox_count(u), 2, "{u}");
    }
    let record = fs_err::read_dir(sb.root().join("state/finish"))
        .expect("finish records")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    let text = fs_err::read_to_string(&record).expect("record");
    assert!(
        text.contains("userdb_mail") && !text.contains("alicepw"),
        "{text}"
    );
}
