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
            assert_eq!(r.code, 0, "{}", r.err());
            r.out()
                .lines()
                .filter_map(|l| l.split('\t').nth(1)?.parse().ok())
                .collect()
        } else {
            let list = sb.root().join("users.txt");
            fs_err::write(&list, users.join("\n")).expect("list");
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
            assert_eq!(r.code, 0, "{}", r.err());
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

fn main() {
    let messages = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    part_a(messages);
    part_b();
}
