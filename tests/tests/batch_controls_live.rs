//! A batch that behaves like an operator expects: `--max-failures` stops starting new users, a
//! stop file and SIGTERM do the same — the running user finishes, nobody is abandoned mid-run or
//! left held — and a summary counts what each user came to.

use std::time::{Duration, Instant};

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

fn users(sb: &Sandbox, names: &[&str]) -> camino::Utf8PathBuf {
    let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
    sb.add_users(&names);
    for n in &names {
        sb.populate(&format!("{n}@example.test"), &[("INBOX", 3)]);
    }
    let list = sb.root().join(format!("{}.txt", names.join("-")));
    let text: String = names
        .iter()
        .map(|n| format!("{n}@example.test\n"))
        .collect();
    fs_err::write(&list, text).expect("list");
    list
}

/// Nothing held, no hold line left, the users not started still on maildir.
fn nobody_held(sb: &Sandbox, untouched: &[&str]) {
    assert!(sb.wait_queue_empty(30), "queue: {:?}", sb.queue_summary());
    let access = fs_err::read_to_string(sb.path("ACCESS_MAP")).expect("map");
    assert!(!access.contains("mailmig hold"), "holds left: {access}");
    for n in untouched {
        assert_eq!(
            sb.mail_location(&format!("{n}@example.test")),
            "maildir:~/Maildir",
            "{n}"
        );
    }
}

/// `migrate --users-from LIST --pause-between 3s EXTRA...` started in the background.
fn paced_batch(sb: &Sandbox, list: &camino::Utf8Path, extra: &[&str]) -> duct::Handle {
    let mut args = vec![
        "migrate",
        "--users-from",
        list.as_str(),
        "--to",
        "mdbox:~/mdbox",
        "--pause-between",
        "3s",
    ];
    args.extend_from_slice(extra);
    sb.spawn_mailmig(&args, &[])
}

/// Wait (bounded) until `user` is on mdbox.
fn wait_migrated(sb: &Sandbox, user: &str) {
    let start = Instant::now();
    while sb.mail_location(user) != "mdbox:~/mdbox" {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{user} never migrated"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn a_batch_stops_starting_users_without_abandoning_any(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };

    // --max-failures 2: the copies of f1 and f2 fail (a doveadm wrapper), f3 and f4 never start.
    let list = users(&sb, &["f1", "f2", "f3", "f4"]);
    let real = sb.run("sh", &["-c", "command -v doveadm"]).out();
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in *' backup '*' -u f1@example.test '*|*' backup '*' -u f2@example.test '*)\n  echo 'Error: simulated copy failure' >&2; exit 75;;\nesac\nexec {} \"$@\"\n",
        real.trim()
    );
    let dir = sb.wrapper("doveadm", &script);
    let r = sb.mailmig_env(
        &[
            "migrate",
            "--users-from",
            list.as_str(),
            "--to",
            "mdbox:~/mdbox",
            "--max-failures",
            "2",
        ],
        &[("PATH", Sandbox::path_with(&dir).as_str())],
    );
    assert_eq!(r.code, 75, "{}\n{}", r.out(), r.err());
    assert!(
        r.out()
            .contains("summary: 4 user(s): 2 not-started, 2 rolled-back"),
        "{}",
        r.out()
    );
    assert!(r.err().contains("reached --max-failures 2"), "{}", r.err());
    nobody_held(&sb, &["f1", "f2", "f3", "f4"]);

    // The stop file, created while s1 runs: s1 finishes, s2 does not start.
    let list = users(&sb, &["s1", "s2"]);
    let stop = sb.root().join("stop-now");
    let handle = paced_batch(&sb, &list, &["--stop-file", stop.as_str()]);
    wait_migrated(&sb, "s1@example.test");
    fs_err::write(&stop, "").expect("stop file");
    let r = mailmig_tests::wait_bounded(&handle, Duration::from_secs(120)).expect("batch ended");
    assert_eq!(r.code, 75, "{}\n{}", r.out(), r.err());
    assert!(r.out().contains("1 migrated, 1 not-started"), "{}", r.out());
    assert!(r.err().contains("the stop file"), "{}", r.err());
    nobody_held(&sb, &["s2"]);

    // SIGTERM while g1 runs or waits: g1 finishes, g2 does not start.
    let list = users(&sb, &["g1", "g2"]);
    let handle = paced_batch(&sb, &list, &[]);
    wait_migrated(&sb, "g1@example.test");
    for pid in handle.pids() {
        let r = mailmig_tests::run("kill", &["-TERM", &pid.to_string()]);
        assert_eq!(r.code, 0, "{}", r.err());
    }
    let r = mailmig_tests::wait_bounded(&handle, Duration::from_secs(120)).expect("batch ended");
    assert_eq!(r.code, 75, "{}\n{}", r.out(), r.err());
    assert!(r.out().contains("1 migrated, 1 not-started"), "{}", r.out());
    assert!(r.err().contains("asked to stop"), "{}", r.err());
    nobody_held(&sb, &["g2"]);
}
