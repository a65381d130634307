//! The usual virtual-hosting layout: a global location template (`maildir:/var/vmail/%d/%n`;
//! 2.4 `mail_path = /var/vmail/%{user|domain}/%{user|username}`), no per-user location. The
//! target is a template too, expanded per user by Dovecot (`doveadm user -e`) and written into
//! the user's record as the concrete path; mail arriving during the run is in the new mailbox
//! exactly once; the other users stay on the template. A target the source would list as a
//! folder is refused.

use std::time::Duration;

use mailmig_tests::mail::Sender;
use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_template_layout_migrates_while_mail_arrives(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let (alice, bob) = ("alice@example.test", "bob@example.test");
    let vmail = sb.root().join("vmail");
    fs_err::create_dir_all(&vmail).expect("vmail");
    let owner = format!("{}:{}", sb.get("VMAIL_UID"), sb.get("VMAIL_GID"));
    assert_eq!(
        mailmig_tests::run("chown", &[owner.as_str(), vmail.as_str()]).code,
        0
    );
    let conf = sb.path("DOVECOT_CONFIG").to_owned();
    let original = fs_err::read_to_string(&conf).expect("read");
    let (templated, user_dir, target) = if stack.dovecot_24() {
        let vars = "%{user|domain}/%{user|username}";
        (
            original.replace(
                "mail_path = ~/Maildir",
                &format!("mail_path = {vmail}/{vars}"),
            ),
            vars,
            format!("mdbox:{vmail}/{vars}/mdbox"),
        )
    } else {
        (
            original.replace(
                "mail_location = maildir:~/Maildir",
                &format!("mail_location = maildir:{vmail}/%d/%n"),
            ),
            "%d/%n",
            format!("mdbox:{vmail}/%d/%n/mdbox"),
        )
    };
    assert_ne!(templated, original, "the location was templated");
    fs_err::write(&conf, templated).expect("write");
    let r = sb.doveadm(&["reload"]);
    assert_eq!(r.code, 0, "{}", r.err());
    std::thread::sleep(Duration::from_millis(1500));
    let seeded = sb.seed(alice, 5);
    assert_eq!(seeded.code, 0, "{}", seeded.err());
    assert_eq!(sb.seed(bob, 2).code, 0);
    let alice_dir = vmail.join("example.test/alice");
    assert!(
        alice_dir.join("new").exists() || alice_dir.join("cur").exists(),
        "delivered into the template"
    );

    // A target the source lists as a folder (a `.name` inside the Maildir++ root) is refused.
    let r = sb.mailmig(&[
        "migrate",
        alice,
        "--to",
        &format!("mdbox:{vmail}/{user_dir}/.mdbox"),
    ]);
    assert_eq!(r.code, 65, "{}", r.err());
    assert!(r.err().contains("inside the source"), "{}", r.err());

    // A template without a per-user directory: the second user of a batch would write into the
    // first one's storage, and is refused.
    let list = sb.root().join("two-users");
    fs_err::write(&list, "alice@example.test\nbob@example.test\n").expect("list");
    let domain_only = if stack.dovecot_24() {
        "%{user|domain}"
    } else {
        "%d"
    };
    let r = sb.mailmig(&[
        "migrate",
        "--users-from",
        list.as_str(),
        "--to",
        &format!("mdbox:{vmail}/{domain_only}/shared"),
        "--dry-run",
    ]);
    assert_ne!(r.code, 0, "{}", r.out());
    assert!(
        r.err()
            .contains("overlaps the storage of alice@example.test"),
        "{}",
        r.err()
    );

    let sender = Sender::start(
        sb.get("SMTP_PORT"),
        &[&[alice], &["al@example.test"]],
        "tpl",
        Duration::from_millis(60),
    );
    std::thread::sleep(Duration::from_millis(400));
    let r = sb.mailmig(&["migrate", alice, "--to", &target]);
    std::thread::sleep(Duration::from_millis(400));
    let sent = sender.finish();
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(sb.wait_queue_empty(60), "queue: {:?}", sb.queue_summary());
    // What mdbox needs afterwards is said at the end.
    assert!(r.out().contains("doveadm purge -A"), "{}", r.out());

    // The record holds the concrete path, Dovecot reads it, bob stays on the template.
    let concrete = alice_dir.join("mdbox");
    let users = fs_err::read_to_string(sb.path("PASSWD_FILE")).expect("users");
    let line = users
        .lines()
        .find(|l| l.starts_with("alice@"))
        .expect("alice");
    assert!(
        line.ends_with(&sb.userdb_location(&format!("mdbox:{concrete}"))),
        "{line}"
    );
    assert_eq!(sb.mail_location(alice), format!("mdbox:{concrete}"));
    assert!(
        concrete.join("storage").exists(),
        "mdbox written at {concrete}"
    );
    assert_eq!(sb.inbox_count(bob), 2);
    assert!(sent.len() > 5, "only {} sent", sent.len());
    let counts = sb.tag_counts(alice, None);
    for tag in &sent {
        assert_eq!(counts.get(tag), Some(&1), "{tag} in alice's mdbox");
    }
    assert_eq!(
        sb.inbox_count(alice),
        5 + sent.len(),
        "seeded + sent, nothing else"
    );
}
