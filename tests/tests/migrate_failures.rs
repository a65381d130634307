//! Failures of a migration on the live sandbox: refusals before anything changes (65/67/75),
//! a failing step rolled back (75), an undo that cannot complete (70, then `rollback` after the
//! admin's fix), `plan` and `--dry-run` changing nothing, and the live strategy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailmig_tests::mail::{send_tagged, Imap};
use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

fn snapshot(sb: &Sandbox) -> Vec<Vec<u8>> {
    ["VIRTUAL_MAP", "ACCESS_MAP", "PASSWD_FILE"]
        .iter()
        .map(|k| fs_err::read(sb.path(k)).expect("read"))
        .collect()
}

/// Start `migrate USER` paused at `point`; returns the handle once the pause is reached.
fn paused(sb: &Sandbox, user: &str, point: &str) -> (duct::Handle, camino::Utf8PathBuf) {
    let pause = sb.root().join(format!("pause-{user}"));
    let handle = sb.spawn_mailmig(
        &["migrate", user, "--to", "mdbox:~/mdbox"],
        &[
            ("MAILMIG_PAUSE", point),
            ("MAILMIG_PAUSE_FILE", pause.as_str()),
        ],
    );
    sb.wait_for_file(&pause);
    (handle, pause)
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn refusals_change_nothing(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    sb.populate("alice@example.test", &[("INBOX", 5)]);
    let before = snapshot(&sb);
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["migrate", "nobody@example.test", "--to", "mdbox:~/mdbox"],
            67,
            "does not know this user",
        ),
        (
            &["migrate", "alice@example.test", "--to", "zip:~/x"],
            65,
            "unknown format",
        ),
        (
            &["migrate", "alice@example.test", "--to", "mdbox:relative"],
            65,
            "absolute",
        ),
        (
            &["migrate", "--to", "mdbox:~/mdbox", "--", "-x@example.test"],
            65,
            "must not start with",
        ),
        (
            &["migrate", "a:b@example.test", "--to", "mdbox:~/mdbox"],
            65,
            "user name",
        ),
    ];
    for (args, code, text) in cases {
        let r = sb.mailmig(args);
        assert_eq!(r.code, *code, "{args:?}: {}", r.err());
        assert!(r.err().contains(text), "{args:?}: {}", r.err());
    }
    // Already at the target: nothing to do, and not an error.
    let r = sb.mailmig(&["migrate", "alice@example.test", "--to", "maildir:~/Maildir"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.out().contains("already-done"), "{}", r.out());
    // A user locked out by hand (`login disable`) is refused: the run would restore the logins.
    assert_eq!(
        sb.mailmig(&["login", "disable", "alice@example.test"]).code,
        0
    );
    let r = sb.mailmig(&["migrate", "alice@example.test", "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 65, "{}", r.err());
    assert!(r.err().contains("login enable"), "{}", r.err());
    assert_eq!(
        sb.mailmig(&["login", "enable", "alice@example.test"]).code,
        0
    );
    // A target that already holds something is never overwritten.
    let target = sb.home("alice@example.test").join("mdbox");
    fs_err::create_dir_all(target.join("x")).expect("mkdir");
    let r = sb.mailmig(&["migrate", "alice@example.test", "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 65, "{}", r.err());
    assert!(r.err().contains("not empty"), "{}", r.err());
    fs_err::remove_dir_all(&target).expect("rm");
    // plan and --dry-run print the plan and change nothing.
    let plan = sb.mailmig(&["plan", "alice@example.test", "--to", "mdbox:~/mdbox"]);
    assert_eq!(plan.code, 0, "{}", plan.err());
    for word in [
        "presync",
        "hold",
        "lock-out",
        "final-sync",
        "verify",
        "switch",
        "catch-up",
        "release",
        "HOLD [mailmig hold for alice@example.test since",
        &sb.userdb_location("mdbox:~/mdbox"),
    ] {
        assert!(plan.out().contains(word), "{word}: {}", plan.out());
    }
    let json = sb.mailmig(&[
        "migrate",
        "alice@example.test",
        "--to",
        "mdbox:~/mdbox",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(json.code, 0, "{}", json.err());
    let v: serde_json::Value = serde_json::from_str(&json.out()).expect("plan JSON");
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(10));
    assert_eq!(v["steps"][2]["step"], "hold");
    assert_eq!(snapshot(&sb), before);
    assert!(
        !sb.root().join("state/runs").exists(),
        "a dry run created a run"
    );
    // A second run for a user with an unfinished run is refused.
    let (handle, pause) = paused(&sb, "alice@example.test", "hold:done");
    let r = sb.mailmig(&["migrate", "alice@example.test", "--to", "sdbox:~/sdbox"]);
    assert_eq!(r.code, 75, "{}", r.err());
    fs_err::remove_file(&pause).expect("unpause");
    let out = handle.wait().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Killed after recording the run for the user but before its journal exists: nothing
    // happened; resume says so and clears it, and the next migrate runs.
    let bob = "bob@example.test";
    sb.populate(bob, &[("INBOX", 3)]);
    let r = sb.mailmig_env(
        &["migrate", bob, "--to", "mdbox:~/mdbox"],
        &[("MAILMIG_FAILPOINT", "run:marker-written")],
    );
    assert_eq!(r.code, -1, "not killed: {}", r.err());
    let r = sb.mailmig(&["resume"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(r.err().contains("never started"), "{}", r.err());
    assert_eq!(sb.mail_location(bob), "maildir:~/Maildir");
    let r = sb.mailmig(&["migrate", bob, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}", r.err());
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_failing_step_is_rolled_back_and_a_failing_undo_is_reported(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 10)]);
    let before = snapshot(&sb);
    // The final sync fails: the presynced target becomes unwritable.
    let (handle, pause) = paused(&sb, alice, "presync:done");
    let target = sb.home(alice).join("mdbox");
    let r = mailmig_tests::run("chmod", &["000", target.as_str()]);
    assert_eq!(r.code, 0);
    fs_err::remove_file(&pause).expect("unpause");
    let out = handle.wait().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains("final-sync failed") && err.contains("rolled back"),
        "{err}"
    );
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
    assert_eq!(
        snapshot(&sb),
        before,
        "maps and passwd-file restored byte for byte"
    );
    assert!(!target.exists(), "the partial copy was moved aside");
    Imap::login(sb.get("IMAP_PORT"), alice, "alicepw").expect("login works");

    // The same failure, and the undo of the hold cannot rebuild the map: exit 70, status says
    // what is left; after the admin's fix `rollback` finishes.
    let (handle, pause) = paused(&sb, alice, "presync:done,undo-hold:started");
    assert_eq!(
        mailmig_tests::run("chmod", &["000", target.as_str()]).code,
        0
    );
    fs_err::remove_file(&pause).expect("unpause");
    let start = Instant::now();
    while !pause.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never reached undo-hold"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let main_cf = sb.path("POSTFIX_CONFIG").join("main.cf");
    let moved = sb.path("POSTFIX_CONFIG").join("main.cf.away");
    fs_err::rename(&main_cf, &moved).expect("break postfix");
    fs_err::remove_file(&pause).expect("unpause");
    let out = handle.wait().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    fs_err::rename(&moved, &main_cf).expect("restore main.cf");
    assert_eq!(out.status.code(), Some(70), "{err}");
    assert!(
        err.contains("undoing step hold failed") && err.contains("mailmig rollback"),
        "{err}"
    );
    let status = sb.mailmig(&["status", "--json"]);
    assert_eq!(status.code, 1, "unfinished runs make status exit 1");
    assert!(status.out().contains("needs-admin"), "{}", status.out());
    let r = sb.mailmig(&["rollback"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
    assert_eq!(snapshot(&sb), before);
    let counts = sb.tag_counts(alice, None);
    assert!(pre.iter().all(|t| counts.get(t) == Some(&1)));
    Imap::login(sb.get("IMAP_PORT"), alice, "alicepw").expect("login works");
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn live_strategy_while_mail_arrives(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 100), ("Projects", 20)]);
    let stop = Arc::new(AtomicBool::new(false));
    let port = sb.get("SMTP_PORT").to_string();
    let s = stop.clone();
    let sender = std::thread::spawn(move || {
        let mut tags = Vec::new();
        while !s.load(Ordering::SeqCst) {
            let tag = format!("live-{}", tags.len());
            send_tagged(&port, &["al@example.test"], &tag).expect("send");
            tags.push(tag);
            std::thread::sleep(Duration::from_millis(50));
        }
        tags
    });
    std::thread::sleep(Duration::from_millis(500));
    let r = sb.mailmig(&[
        "migrate",
        alice,
        "--to",
        "mdbox:~/mdbox",
        "--strategy",
        "live",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let sent = sender.join().expect("sender");
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert!(sb.wait_queue_empty(30));
    assert_eq!(sb.mail_location(alice), "mdbox:~/mdbox");
    let counts = sb.tag_counts(alice, None);
    for t in pre.iter().chain(&sent) {
        assert_eq!(counts.get(t), Some(&1), "{t}");
    }
    assert!(!fs_err::read_to_string(sb.path("ACCESS_MAP"))
        .expect("map")
        .contains("alice"));
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn defer_action_makes_senders_retry(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 5)]);
    let pause = sb.root().join("pause");
    let handle = sb.spawn_mailmig(
        &[
            "migrate",
            alice,
            "--to",
            "mdbox:~/mdbox",
            "--hold-action",
            "defer",
            "--json",
        ],
        &[
            ("MAILMIG_PAUSE", "hold:done"),
            ("MAILMIG_PAUSE_FILE", pause.as_str()),
        ],
    );
    sb.wait_for_file(&pause);
    std::thread::sleep(Duration::from_millis(1100)); // smtpd notices the map by its mtime second
                                                     // While the run holds alice, her addresses answer 4xx at RCPT: the sender keeps the message.
    let mut smtp = mailmig_tests::mail::Smtp::connect(sb.get("SMTP_PORT")).expect("smtp");
    smtp.command("MAIL FROM:<sender@example.org>", 250)
        .expect("mail");
    let refused = smtp.command("RCPT TO:<al@example.test>", 250);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("expected 250, got \"4")),
        "{refused:?}"
    );
    smtp.quit();
    assert!(sb.queue().is_empty(), "nothing was queued");
    fs_err::remove_file(&pause).expect("unpause");
    let out = handle.wait().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let verify = events
        .iter()
        .find(|e| e["step"] == "verify" && e["event"] == "done")
        .expect("verify done");
    assert_eq!(verify["detail"]["messages"], 5, "{verify}");
    // The sender's retry after the run is delivered into the new mailbox.
    send_tagged(sb.get("SMTP_PORT"), &["al@example.test"], "retried").expect("retry accepted");
    assert!(sb.wait_queue_empty(30));
    let counts = sb.tag_counts(alice, None);
    assert_eq!(sb.mail_location(alice), "mdbox:~/mdbox");
    assert_eq!(counts.get("retried"), Some(&1));
    assert_eq!(counts.len(), pre.len() + 1);
}

/// The migration with Dovecot's auth cache on (filled before the run): deliveries and logins go
/// to the new location at once. (Measured: with passwd-file userdbs Dovecot 2.3 answers `doveadm
/// user` fresh even without the flush, so this guards the whole run with the cache on; the
/// switch's flush matters for cached drivers.)
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn switch_with_the_auth_cache_on(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let conf = sb.get("DOVECOT_CONFIG");
    let mut text = fs_err::read_to_string(conf).expect("read dovecot.conf");
    text.push_str(
        "\nauth_cache_size = 1M\nauth_cache_ttl = 1 hour\nauth_cache_negative_ttl = 1 hour\n",
    );
    fs_err::write(conf, text).expect("write dovecot.conf");
    assert_eq!(sb.doveadm(&["reload"]).code, 0);
    std::thread::sleep(Duration::from_millis(1500));
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 5)]);
    // Fill the cache: a login and a userdb lookup.
    let mut imap = Imap::login(sb.get("IMAP_PORT"), alice, "alicepw").expect("login");
    imap.inbox_messages().expect("status");
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
    let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
    assert_eq!(sb.mail_location(alice), "mdbox:~/mdbox");
    send_tagged(sb.get("SMTP_PORT"), &[alice], "after").expect("send");
    assert!(sb.wait_queue_empty(30));
    let counts = sb.tag_counts(alice, None);
    assert_eq!(counts.get("after"), Some(&1), "delivered into mdbox");
    assert_eq!(counts.len(), pre.len() + 1);
    let mut imap = Imap::login(sb.get("IMAP_PORT"), alice, "alicepw").expect("login after");
    assert_eq!(imap.inbox_messages().expect("status"), pre.len() + 1);
}

/// What the preflight reads from the running Dovecot's configuration: a namespace without an
/// explicit separator (maildir `.` vs mdbox `/`: dsync would stop with exit 78) and the
/// Maildir++ quota backend (maildir only) are refused before anything changes.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn dovecot_settings_the_conversion_cannot_work_with_are_refused(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    sb.populate(alice, &[("INBOX", 3)]);
    let conf = sb.path("DOVECOT_CONFIG").to_owned();
    let original = fs_err::read_to_string(&conf).expect("read dovecot.conf");
    let v24 = stack.dovecot_24();
    let before = snapshot(&sb);
    let cases = [
        (original.replace("separator = /", ""), "separator"),
        (
            format!("{original}\n{}", sb.maildir_quota_config()),
            "Maildir++ quota",
        ),
        (
            format!("{original}\n{}", sb.second_maildir_quota_config()),
            "Maildir++ quota",
        ),
        (
            format!(
                "{}\nprotocol pop3 {{\n  pop3_uidl_format = {}\n}}\n",
                original.replace("protocols = imap lmtp", "protocols = imap lmtp pop3"),
                if v24 { "%{filename}" } else { "%f" }
            ),
            "pop3_uidl_format",
        ),
        (
            format!(
                "{original}\n{}",
                if v24 {
                    "namespace shared {\n  type = shared\n  separator = /\n  prefix = shared/%{owner_user}/\n  mail_driver = maildir\n  mail_path = %{owner_home}/Maildir\n}\n"
                } else {
                    "namespace shared {\n  type = shared\n  separator = /\n  prefix = shared/%%u/\n  location = maildir:%%h/Maildir:INDEX=~/shared/%%u\n}\n"
                }
            ),
            "namespace `shared`",
        ),
        (
            format!(
                "{original}\n{}",
                if v24 {
                    "mail_plugins {\n  acl = yes\n}\n"
                } else {
                    "mail_plugins = $mail_plugins acl\n"
                }
            ),
            "acl plugin",
        ),
    ];
    for (config, why) in cases {
        fs_err::write(&conf, config).expect("write dovecot.conf");
        let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox"]);
        assert_eq!(r.code, 65, "{why}: {}", r.err());
        assert!(r.err().contains(why), "{why}: {}", r.err());
        assert_eq!(snapshot(&sb), before);
        assert!(!sb.home(alice).join("mdbox").exists());
    }
    fs_err::write(&conf, original).expect("restore dovecot.conf");

    // A passwd-file another program generates: the switch would be undone at its next run.
    let passwd = sb.path("PASSWD_FILE").to_owned();
    let users = fs_err::read_to_string(&passwd).expect("read users");
    fs_err::write(
        &passwd,
        format!("# WARNING: this file is auto-generated. Modify accounts.cf instead.\n{users}"),
    )
    .expect("write users");
    let before = snapshot(&sb);
    let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox"]);
    assert_eq!(r.code, 65, "{}", r.err());
    assert!(r.err().contains("auto-generated"), "{}", r.err());
    assert_eq!(snapshot(&sb), before);
    fs_err::write(&passwd, users).expect("restore users");
}

/// Rolling back after the switch, when the new location got mail meanwhile (saved into it
/// directly): the user goes back to the old location and that mail goes with them.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn rollback_after_the_switch_carries_new_mail_back(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    let pre = sb.populate(alice, &[("INBOX", 6)]);
    let r = sb.mailmig_env(
        &["migrate", alice, "--to", "mdbox:~/mdbox"],
        &[("MAILMIG_FAILPOINT", "catch-up:started")],
    );
    assert_eq!(r.code, -1, "not killed: {}", r.err());
    assert_eq!(sb.mail_location(alice), "mdbox:~/mdbox");
    let saved = sb.run_stdin(
        "doveadm",
        &["-c", sb.get("DOVECOT_CONFIG"), "save", "-u", alice],
        Some(b"From: <x@example.org>\nSubject: saved\nX-Mailmig-Test: saved-into-mdbox\n\nbody\n"),
    );
    assert_eq!(saved.code, 0, "{}", saved.err());
    let r = sb.mailmig(&["rollback"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
    let counts = sb.tag_counts(alice, None);
    assert_eq!(counts.get("saved-into-mdbox"), Some(&1), "{counts:?}");
    for t in &pre {
        assert_eq!(counts.get(t), Some(&1), "{t}");
    }
    assert_eq!(counts.len(), pre.len() + 1);
}

/// Index and storage directories of the target: dbox with in-memory indexes is refused (its
/// indexes hold message data); an `INDEX=` directory that holds something is refused like the
/// main one; a rollback moves every directory the copy wrote aside. Dovecot 2.4 has no location
/// options (its settings are userdb fields of their own): a target with any is refused there.
#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn every_target_directory_is_checked_and_rolled_back(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let alice = "alice@example.test";
    sb.populate(alice, &[("INBOX", 4)]);
    let before = snapshot(&sb);
    let to = "mdbox:~/mdbox:INDEX=~/mdbox-index";
    let r = sb.mailmig(&["migrate", alice, "--to", "mdbox:~/mdbox:INDEX=MEMORY"]);
    assert_eq!(r.code, 65, "{}", r.err());
    if stack.dovecot_24() {
        assert!(r.err().contains("no location options"), "{}", r.err());
        let r = sb.mailmig(&["migrate", alice, "--to", to]);
        assert_eq!(r.code, 65, "{}", r.err());
        assert_eq!(snapshot(&sb), before);
        return;
    }
    assert!(r.err().contains("INDEX=MEMORY"), "{}", r.err());
    let index = sb.home(alice).join("mdbox-index");
    fs_err::create_dir_all(index.join("leftover")).expect("index dir");
    let r = sb.mailmig(&["migrate", alice, "--to", to]);
    assert_eq!(r.code, 65, "{}", r.err());
    assert!(r.err().contains("mdbox-index"), "{}", r.err());
    assert_eq!(snapshot(&sb), before);
    fs_err::remove_dir_all(&index).expect("rm");
    // Killed after the copy, then rolled back: both directories moved aside, none deleted.
    let r = sb.mailmig_env(
        &["migrate", alice, "--to", to],
        &[("MAILMIG_FAILPOINT", "presync:done")],
    );
    assert_eq!(r.code, -1, "not killed: {}", r.err());
    assert!(index.exists(), "the copy wrote no index directory");
    let r = sb.mailmig(&["rollback"]);
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(!index.exists() && !sb.home(alice).join("mdbox").exists());
    let names: Vec<String> = fs_err::read_dir(sb.home(alice))
        .expect("home")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for dir in [
        "mdbox.mailmig-rolled-back-",
        "mdbox-index.mailmig-rolled-back-",
    ] {
        assert!(names.iter().any(|n| n.starts_with(dir)), "{dir}: {names:?}");
    }
    assert_eq!(snapshot(&sb), before);
    assert_eq!(sb.mail_location(alice), "maildir:~/Maildir");
}
