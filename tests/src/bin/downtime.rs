//! Downtime figures on the live sandbox (docs/benchmarks.md), run as root inside the sandbox's
//! network namespace:
//!
//!     bash tests/sandbox/sandbox.sh netns cargo run --release -p mailmig-tests --bin downtime [MESSAGES]
//!
//! A. `mailmig migrate` of 10,000-message mailboxes (3 users with the presync, 3 without): time
//!    the mail is held (hold written → release done), the whole run, and doveadm's part of it.
//! B. 50 users with mail arriving: `mailmig migrate --users-from --jobs 4` against the seed's
//!    manual procedure scripted (`benches/manual-procedure.sh`) — per-user downtime, and mail
//!    that did not end up in the user's new mailbox.
//! C. The large server: 20 users × 20 messages with `--jobs 4` while mail arrives, on the
//!    sandbox as it is and with 1,000,000 more users in its passwd-file (~180 MB), each in place
//!    (passwd-file edits) and through mailmig's overlay: median mail-held time and wall time.
//!
//! D. Batch planning: `mailmig migrate --users-from --dry-run` (the preflight and the plan of
//!    every user, nothing changed) for 200 users, on the sandbox and with the 1,000,000 more
//!    users of C: wall time per user.
//!
//! E. One user on a server whose virtual alias map has 1,000,000 more aliases (~45 MB): `mailmig
//!    plan USER` (every address that reaches the user, from the live configuration) and
//!    `mailmig aliases`, wall time of each of 5 runs.
//!
//! `downtime [MESSAGES] [a|b|c|d|e]...`: the parts to run (default all).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailmig_tests::mail::send_tagged;
use mailmig_tests::sandbox::Sandbox;
use mailmig_tests::{run, workspace_root};

fn done_figures(out: &str) -> Vec<(String, serde_json::Value)> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["step"] == "done" && e["event"] == "done")
        .map(|e| {
            (
                e["user"].as_str().unwrap_or_default().to_string(),
                e["detail"].clone(),
            )
        })
        .collect()
}

fn stats(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_by(f64::total_cmp);
    let med = v[v.len() / 2];
    let p90 = v[(v.len() * 9 / 10).min(v.len() - 1)];
    format!(
        "median {med:.2} s, p90 {p90:.2} s, max {:.2} s",
        v[v.len() - 1]
    )
}

fn part_a(messages: usize) {
    let sb = Sandbox::start().expect("sandbox (run as root inside `sandbox.sh netns`)");
    let names: Vec<String> = (1..=6).map(|i| format!("big{i}")).collect();
    sb.add_users(&names);
    println!("A. one user, {messages} messages (INBOX), maildir -> mdbox");
    println!("| run | presync | mail held | presync | final sync | whole run | doveadm | mailmig's own |");
    println!("|---|---|---|---|---|---|---|---|");
    for (i, n) in names.iter().enumerate() {
        let user = format!("{n}@example.test");
        sb.populate(&user, &[("INBOX", messages)]);
        let presync = i < 3;
        let mut args = vec!["migrate", user.as_str(), "--to", "mdbox:~/mdbox", "--json"];
        if !presync {
            args.push("--no-presync");
        }
        let r = sb.mailmig(&args);
        assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
        let (_, f) = done_figures(&r.out()).pop().expect("figures");
        let ms = |k: &str| f[k].as_u64().unwrap_or(0) as f64 / 1000.0;
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s ({:.0} %) |",
            i + 1,
            if presync { "yes" } else { "no" },
            ms("held_ms"),
            ms("presync_ms"),
            ms("final_sync_ms"),
            ms("total_ms"),
            ms("doveadm_ms"),
            ms("total_ms") - ms("doveadm_ms"),
            100.0 * (ms("total_ms") - ms("doveadm_ms")) / ms("doveadm_ms").max(0.001),
        );
    }
}

/// Send to the users until stopped; returns (tag, user).
fn sender(
    port: String,
    users: Vec<String>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(String, String)>> {
    std::thread::spawn(move || {
        let mut sent = Vec::new();
        let mut n = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let u = users[(n * 7) % users.len()].clone();
            let tag = format!("m-{n}");
            if send_tagged(&port, &[&u], &tag).is_ok() {
                sent.push((tag, u));
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(30));
        }
        sent
    })
}

fn lost(sb: &Sandbox, sent: &[(String, String)], users: &[String]) -> (usize, usize) {
    let mut by_user: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (t, u) in sent {
        by_user.entry(u).or_default().push(t);
    }
    let (mut missing, mut stranded) = (0, 0);
    for u in users {
        let now = sb.tag_counts(u, None);
        let old = sb.tag_counts(u, Some("maildir:~/Maildir"));
        for t in by_user.get(u.as_str()).into_iter().flatten() {
            if now.get(*t).copied().unwrap_or(0) != 1 {
                missing += 1;
                if old.contains_key(*t) {
                    stranded += 1;
                }
            }
        }
    }
    (missing, stranded)
}

/// `mailmig migrate --users-from LIST --jobs 4 --to mdbox:~/mdbox --json` of `users`.
fn migrate_all(sb: &Sandbox, users: &[String]) -> mailmig_tests::Run {
    let list = sb.root().join("users.txt");
    fs_err::write(&list, users.join("\n")).expect("list");
    sb.migrate_to_mdbox(&list, &["--json"])
}

fn part_b() {
    println!("\nB. 50 users (16 messages each), mail arriving for them every 30 ms");
    for manual in [false, true] {
        let sb = Sandbox::start().expect("sandbox");
        let names: Vec<String> = (1..=50).map(|i| format!("u{i:02}")).collect();
        sb.add_users(&names);
        let users: Vec<String> = names.iter().map(|n| format!("{n}@example.test")).collect();
        for u in &users {
            sb.populate(u, &[("INBOX", 12), ("Sent", 4)]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = sender(sb.get("SMTP_PORT").to_string(), users.clone(), stop.clone());
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let downtimes: Vec<f64> = if manual {
            let mut args = vec![
                workspace_root()
                    .join("benches/manual-procedure.sh")
                    .to_string(),
                sb.root().join("sandbox.env").to_string(),
            ];
            args.extend(users.iter().cloned());
            let r = run("bash", &args);
            assert_eq!(r.code, 0, "{}\n{}", r.err(), r.out());
            r.out()
                .lines()
                .filter_map(|l| l.split('\t').nth(1)?.parse().ok())
                .collect()
        } else {
            let r = migrate_all(&sb, &users);
            assert_eq!(r.code, 0, "{}\n{}", r.err(), r.out());
            done_figures(&r.out())
                .iter()
                .filter_map(|(_, f)| f["held_ms"].as_u64())
                .map(|ms| ms as f64 / 1000.0)
                .collect()
        };
        let took = start.elapsed();
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::SeqCst);
        let sent = thread.join().expect("sender");
        sb.wait_queue_empty(60);
        let (missing, stranded) = lost(&sb, &sent, &users);
        println!(
            "{}: wall {:.1} s; downtime per user {}; {} messages sent, {} not in the user's new mailbox exactly once ({} of them stranded in the old maildir)",
            if manual { "manual procedure (sequential)" } else { "mailmig --jobs 4" },
            took.as_secs_f64(),
            stats(downtimes),
            sent.len(),
            missing,
            stranded
        );
    }
}

/// `count` more users in the passwd-file, each line as long as a SHA512-CRYPT record (their
/// homes do not exist: only the file's size and Dovecot's work to load it matter), and the auth
/// process allowed the memory to load them.
fn add_filler_users(sb: &Sandbox, count: usize) {
    use std::io::Write as _;
    let (uid, gid) = (sb.get("VMAIL_UID"), sb.get("VMAIL_GID"));
    let mut out = std::io::BufWriter::new(
        fs_err::OpenOptions::new()
            .append(true)
            .open(sb.path("PASSWD_FILE"))
            .expect("passwd-file"),
    );
    for i in 0..count {
        writeln!(
            out,
            "filler{i:07}@filler{}.test:{{SHA512-CRYPT}}$6${i:016x}${:0>86}:{uid}:{gid}::/nonexistent/filler{i:07}::",
            i % 1000,
            i
        )
        .expect("write");
    }
    out.flush().expect("flush");
    drop(out);
    // Dovecot's auth process cannot hold the file under its default 256 MB.
    let conf = fs_err::read_to_string(sb.path("DOVECOT_CONFIG")).expect("conf");
    sb.reconfigure_dovecot(&format!("{conf}service auth {{\n  vsz_limit = 2G\n}}\n"));
}

fn part_c() {
    println!("\nC. 20 users × 20 messages, --jobs 4, mail arriving every 30 ms");
    println!("| server | mode | mail held per user | wall | messages sent | not delivered exactly once | passwd-file edits / rewrites |");
    println!("|---|---|---|---|---|---|---|");
    for filler in [0usize, 1_000_000] {
        for overlay in [false, true] {
            let sb = Sandbox::start().expect("sandbox");
            let names: Vec<String> = (1..=20).map(|i| format!("c{i:02}")).collect();
            sb.add_users(&names);
            let users: Vec<String> = names.iter().map(|n| format!("{n}@example.test")).collect();
            for u in &users {
                sb.populate(u, &[("INBOX", 20)]);
            }
            if filler > 0 {
                add_filler_users(&sb, filler);
            }
            if overlay {
                sb.place_overlay();
            }
            // Loaded (the first lookup reads the whole file).
            let r = sb.doveadm(&["user", "-f", "home", &users[0]]);
            assert_eq!(r.code, 0, "{}\n{}", r.err(), r.out());
            let stop = Arc::new(AtomicBool::new(false));
            let thread = sender(sb.get("SMTP_PORT").to_string(), users.clone(), stop.clone());
            std::thread::sleep(Duration::from_millis(300));
            let start = Instant::now();
            let r = migrate_all(&sb, &users);
            let took = start.elapsed();
            assert_eq!(r.code, 0, "{}\n{}", r.err(), r.out());
            std::thread::sleep(Duration::from_millis(1500));
            stop.store(true, Ordering::SeqCst);
            let sent = thread.join().expect("sender");
            sb.wait_queue_empty(120);
            let held: Vec<f64> = done_figures(&r.out())
                .iter()
                .filter_map(|(_, f)| f["held_ms"].as_u64())
                .map(|ms| ms as f64 / 1000.0)
                .collect();
            let (missing, _) = lost(&sb, &sent, &users);
            let grouping = r
                .out()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|e| e["event"] == "passwd-edits")
                .map_or("?".to_string(), |e| {
                    format!("{} / {}", e["detail"]["edits"], e["detail"]["transactions"])
                });
            println!(
                "| {} | {} | {} | {:.1} s | {} | {} | {} |",
                if filler > 0 {
                    "+1,000,000 users (passwd-file)"
                } else {
                    "sandbox (23 users)"
                },
                if overlay { "overlay" } else { "in place" },
                stats(held),
                took.as_secs_f64(),
                sent.len(),
                missing,
                grouping
            );
        }
    }
}

fn part_d() {
    println!(
        "\nD. `migrate --users-from --dry-run` of 200 and 2,000 users (preflight and plan of each)"
    );
    println!("| server | users | wall | per user | per user beyond the first 200 |");
    println!("|---|---|---|---|---|");
    for filler in [0usize, 1_000_000] {
        let sb = Sandbox::start().expect("sandbox");
        let names: Vec<String> = (1..=2000).map(|i| format!("d{i:04}")).collect();
        sb.add_users(&names);
        if filler > 0 {
            add_filler_users(&sb, filler);
        }
        let users: Vec<String> = names.iter().map(|n| format!("{n}@example.test")).collect();
        let r = sb.doveadm(&["user", "-f", "home", &users[0]]);
        assert_eq!(r.code, 0, "{}\n{}", r.err(), r.out());
        let server = if filler > 0 {
            "+1,000,000 users (passwd-file)"
        } else {
            "sandbox"
        };
        let mut first = 0.0;
        // On the small server also a template target (`doveadm user -e` for each user).
        let targets: &[&str] = if filler > 0 {
            &["mdbox:~/mdbox"]
        } else {
            &["mdbox:~/mdbox", "mdbox:~/mdbox-%n"]
        };
        for (count, to) in [200, 2000]
            .into_iter()
            .flat_map(|c| targets.iter().map(move |t| (c, *t)))
        {
            let list = sb.root().join(format!("users-{count}.txt"));
            fs_err::write(&list, users[..count].join("\n")).expect("list");
            let start = Instant::now();
            let r = sb.mailmig(&[
                "migrate",
                "--users-from",
                list.as_str(),
                "--to",
                to,
                "--dry-run",
            ]);
            let took = start.elapsed().as_secs_f64();
            assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
            let beyond = match (count, to.contains('%')) {
                (200, false) => {
                    first = took;
                    "—".to_string()
                }
                (_, false) => format!("{:.1} ms", 1000.0 * (took - first) / (count - 200) as f64),
                (_, true) => "—".to_string(),
            };
            println!(
                "| {server} | {count} to `{to}` | {took:.1} s | {:.1} ms | {beyond} |",
                1000.0 * took / count as f64
            );
        }
    }
}

/// Append `count` aliases of other users to the sandbox's virtual alias map, and two that reach
/// `users` (`sales`, and `s` through it), then rebuild it.
fn add_filler_aliases(sb: &Sandbox, count: usize, users: &[&str]) {
    use std::io::Write as _;
    let map = sb.path("VIRTUAL_MAP");
    let mut out = std::io::BufWriter::new(
        fs_err::OpenOptions::new()
            .append(true)
            .open(map.as_std_path())
            .expect("virtual map"),
    );
    for i in 0..count {
        writeln!(
            out,
            "alias{i:07}@aliases{}.test filler{i:07}@filler.test",
            i % 1000
        )
        .expect("write");
        if i == count / 2 {
            let users = users.join(", ");
            writeln!(
                out,
                "sales@example.test {users}, alias0000001@aliases1.test"
            )
            .expect("write");
            writeln!(out, "s@example.test sales@example.test").expect("write");
        }
    }
    out.flush().expect("flush");
    drop(out);
    let r = sb.run(
        "postmap",
        &["-c", sb.get("POSTFIX_CONFIG"), &format!("hash:{map}")],
    );
    assert_eq!(r.code, 0, "postmap virtual: {}", r.err());
}

fn part_e() {
    println!("\nE. One user on a 1,000,000-alias virtual map: wall time of 5 runs each");
    println!("| command | runs | median |");
    println!("|---|---|---|");
    let sb = Sandbox::start().expect("sandbox");
    sb.add_users(&["e001".to_string()]);
    // e001 is reached by three addresses (itself, `sales`, `s`); the seed's alice by seven
    // (`al`, `alice.smith`, `team`, `staff`, `sales`, `s`): short local parts that every
    // filler record holds inside longer words.
    let (user, alice) = ("e001@example.test", "alice@example.test");
    add_filler_aliases(&sb, 1_000_000, &[user, alice]);
    let map = sb.path("VIRTUAL_MAP");
    let cases: [(&str, Vec<&str>); 4] = [
        ("plan USER", vec!["plan", user, "--to", "mdbox:~/mdbox"]),
        (
            "aliases USER",
            vec!["aliases", "--virtual", map.as_str(), user],
        ),
        ("plan alice", vec!["plan", alice, "--to", "mdbox:~/mdbox"]),
        (
            "aliases alice",
            vec!["aliases", "--virtual", map.as_str(), alice],
        ),
    ];
    for (name, argv) in cases {
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let r = sb.mailmig(&argv);
            times.push(start.elapsed().as_secs_f64());
            assert_eq!(r.code, 0, "{}{}", r.out(), r.err());
            assert!(r.out().contains("s@example.test"), "{}", r.out());
        }
        let runs: Vec<String> = times
            .iter()
            .map(|t| format!("{:.0} ms", t * 1000.0))
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "| `{name}` | {} | {:.0} ms |",
            runs.join(", "),
            times[2] * 1000.0
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let messages = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let parts: Vec<&str> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err())
        .map(String::as_str)
        .collect();
    let wants = |p: &str| parts.is_empty() || parts.contains(&p);
    if wants("a") {
        part_a(messages);
    }
    if wants("b") {
        part_b();
    }
    if wants("c") {
        part_c();
    }
    if wants("d") {
        part_d();
    }
    if wants("e") {
        part_e();
    }
}
