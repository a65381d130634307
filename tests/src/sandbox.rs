//! A running throwaway Postfix + Dovecot pair (see `tests/sandbox/sandbox.sh`), stopped on drop.

use std::collections::BTreeMap;
use std::net::TcpListener;

use camino::{Utf8Path, Utf8PathBuf};

use crate::{require, run, workspace_root, Run};

/// A sandbox instance under a temporary directory.
pub struct Sandbox {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
    env: BTreeMap<String, String>,
}

/// The tools the sandbox needs.
pub const SANDBOX_TOOLS: &[&str] = &[
    "postfix", "postmap", "postconf", "dovecot", "doveadm", "swaks",
];

fn script() -> Utf8PathBuf {
    workspace_root().join("tests/sandbox/sandbox.sh")
}

/// Two loopback ports for one sandbox. Ports come from a counter private to this test process
/// (so parallel tests never get the same one, as they could from the kernel's port 0), starting
/// at a base derived from the process id, and are checked to be free.
fn port_pair() -> (u16, u16) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 1500) * 20;
    loop {
        let n = NEXT.fetch_add(2, Ordering::SeqCst);
        let smtp = u16::try_from(base + n % 20_000).unwrap_or(20_000);
        let imap = smtp.wrapping_add(1);
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(smtp) && free(imap) {
            return (smtp, imap);
        }
    }
}

impl Sandbox {
    /// Start a sandbox, or `None` when the daemons are not installed and not required.
    pub fn start() -> Option<Sandbox> {
        if !require(SANDBOX_TOOLS) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("mailmig-sandbox-")
            .tempdir()
            .expect("tempdir");
        let root = Utf8PathBuf::try_from(dir.path().join("sb")).expect("utf-8 temp path");
        // A port taken by something else between the check and the daemons' bind: try others.
        let mut attempt = 0;
        loop {
            let (smtp, imap) = port_pair();
            let (smtp, imap) = (smtp.to_string(), imap.to_string());
            let r = run(
                "bash",
                &[
                    script().as_str(),
                    "up",
                    root.as_str(),
                    "--smtp-port",
                    &smtp,
                    "--imap-port",
                    &imap,
                ],
            );
            if r.code == 0 {
                break;
            }
            attempt += 1;
            let in_use = r.err().contains("already in use") || r.out().contains("already in use");
            assert!(
                in_use && attempt < 5,
                "sandbox up failed:\n{}\n{}",
                r.out(),
                r.err()
            );
            // `up` stopped what it started; start again from an empty directory.
            let _ = fs_err::remove_dir_all(&root);
        }
        let env_file = root.join("sandbox.env");
        let text = fs_err::read_to_string(&env_file).expect("sandbox.env");
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect();
        Some(Sandbox {
            _dir: dir,
            root,
            env,
        })
    }

    /// A value from `sandbox.env` (`POSTFIX_CONFIG`, `VIRTUAL_MAP`, ...).
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("sandbox.env has no {key}"))
    }

    /// A path value from `sandbox.env`.
    pub fn path(&self, key: &str) -> &Utf8Path {
        Utf8Path::new(self.get(key))
    }

    /// The instance directory.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// Run `mailmig` against this sandbox: `--postfix-config`, `--dovecot-config` and
    /// `--state-dir ROOT/state` come first.
    pub fn mailmig(&self, args: &[&str]) -> Run {
        self.mailmig_env(args, &[])
    }

    /// `--postfix-config DIR --dovecot-config FILE --state-dir ROOT/state` for this sandbox.
    pub fn config_args(&self) -> Vec<String> {
        let state = self.root.join("state");
        [
            "--postfix-config",
            self.get("POSTFIX_CONFIG"),
            "--dovecot-config",
            self.get("DOVECOT_CONFIG"),
            "--state-dir",
            state.as_str(),
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// [`Sandbox::mailmig`] started in the background with extra environment variables (test
    /// hooks); output captured.
    pub fn spawn_mailmig(&self, args: &[&str], env: &[(&str, &str)]) -> duct::Handle {
        let mut all = self.config_args();
        all.extend(args.iter().map(|a| (*a).to_string()));
        let mut expr = duct::cmd(crate::mailmig_bin().as_str(), &all)
            .stdout_capture()
            .stderr_capture()
            .stdin_null()
            .unchecked();
        for (k, v) in env {
            expr = expr.env(k, v);
        }
        expr.start().expect("start mailmig")
    }

    /// [`Sandbox::mailmig`] with extra environment variables (test hooks), waited for.
    pub fn mailmig_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let handle = self.spawn_mailmig(args, env);
        let out = handle.wait().expect("run mailmig");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout.clone(),
            stderr: out.stderr.clone(),
        }
    }

    /// Wait (at most 60 s) until a file exists (a `MAILMIG_PAUSE_FILE`).
    pub fn wait_for_file(&self, path: &Utf8Path) {
        let start = std::time::Instant::now();
        while !path.exists() {
            assert!(start.elapsed().as_secs() < 60, "{path} never appeared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Send one message over SMTP (swaks) to the sandbox's smtpd.
    pub fn send(&self, to: &str, subject: &str) {
        let r = run(
            "swaks",
            &[
                "--server",
                "127.0.0.1",
                "--port",
                self.get("SMTP_PORT"),
                "--from",
                "sender@example.org",
                "--to",
                to,
                "--header",
                &format!("Subject: {subject}"),
                "--silent",
                "2",
            ],
        );
        assert_eq!(r.code, 0, "swaks to {to}: {}{}", r.out(), r.err());
    }

    /// The queue (`postqueue -j`), one JSON object per message.
    pub fn queue(&self) -> Vec<serde_json::Value> {
        let r = run("postqueue", &["-c", self.get("POSTFIX_CONFIG"), "-j"]);
        assert_eq!(r.code, 0, "postqueue: {}", r.err());
        r.out()
            .lines()
            .map(|l| serde_json::from_str(l).expect("postqueue -j prints JSON lines"))
            .collect()
    }

    /// The queue as (queue name, recipients) pairs.
    pub fn queue_summary(&self) -> Vec<(String, Vec<String>)> {
        self.queue()
            .iter()
            .map(|m| {
                let rcpts = m["recipients"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r["address"].as_str().unwrap_or_default().to_string())
                    .collect();
                (
                    m["queue_name"].as_str().unwrap_or_default().to_string(),
                    rcpts,
                )
            })
            .collect()
    }

    /// Messages in `user`'s INBOX, from `doveadm mailbox status`.
    pub fn inbox_count(&self, user: &str) -> usize {
        let r = run(
            "doveadm",
            &[
                "-c",
                self.get("DOVECOT_CONFIG"),
                "-f",
                "tab",
                "mailbox",
                "status",
                "-u",
                user,
                "messages",
                "INBOX",
            ],
        );
        assert_eq!(r.code, 0, "doveadm mailbox status: {}", r.err());
        r.out()
            .lines()
            .nth(1)
            .and_then(|l| l.split('\t').nth(1))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected doveadm output: {}", r.out()))
    }

    /// Deliver `count` messages to `user` over SMTP and wait for the queue to drain.
    pub fn seed(&self, user: &str, count: usize) -> Run {
        run(
            "bash",
            &[
                script().as_str(),
                "seed",
                self.root.as_str(),
                user,
                &count.to_string(),
            ],
        )
    }

    /// `doveadm -c CONF ARGS...`.
    pub fn doveadm(&self, args: &[&str]) -> Run {
        let mut all = vec!["-c", self.get("DOVECOT_CONFIG")];
        all.extend_from_slice(args);
        run("doveadm", &all)
    }

    /// `doveadm -c CONF [-o mail_location=LOCATION] ARGS...`: at a location other than the
    /// userdb's when given.
    pub fn doveadm_at(&self, location: Option<&str>, args: &[&str]) -> Run {
        let loc = location.map(|l| format!("mail_location={l}"));
        let mut all = Vec::new();
        if let Some(l) = &loc {
            all.extend(["-o", l.as_str()]);
        }
        all.extend_from_slice(args);
        self.doveadm(&all)
    }

    /// The user's home directory (as the sandbox lays them out).
    pub fn home(&self, user: &str) -> Utf8PathBuf {
        let (local, domain) = user.split_once('@').expect("user@domain");
        self.path("MAIL_ROOT").join(domain).join(local)
    }

    /// Add users `NAME@example.test` (password `NAMEpw`) to the passwd-file and the virtual
    /// mailbox map (rebuilt), like the sandbox's own users.
    pub fn add_users(&self, names: &[String]) {
        let (uid, gid) = (self.get("VMAIL_UID"), self.get("VMAIL_GID"));
        let mut passwd = fs_err::read_to_string(self.path("PASSWD_FILE")).expect("passwd-file");
        let mut vmailbox = fs_err::read_to_string(self.path("VMAILBOX_MAP")).expect("vmailbox");
        for n in names {
            let home = self.home(&format!("{n}@example.test"));
            passwd.push_str(&format!(
                "{n}@example.test:{{PLAIN}}{n}pw:{uid}:{gid}::{home}::\n"
            ));
            vmailbox.push_str(&format!("{n}@example.test example.test/{n}/\n"));
        }
        fs_err::write(self.path("PASSWD_FILE"), passwd).expect("write passwd-file");
        fs_err::write(self.path("VMAILBOX_MAP"), vmailbox).expect("write vmailbox");
        let r = run(
            "postmap",
            &[
                "-c",
                self.get("POSTFIX_CONFIG"),
                &format!("hash:{}", self.get("VMAILBOX_MAP")),
            ],
        );
        assert_eq!(r.code, 0, "postmap vmailbox: {}", r.err());
        // Dovecot and smtpd notice changes by mtime second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }

    /// Put messages tagged `X-Mailmig-Test: pre-USER-FOLDER-N` straight into the user's Maildir
    /// (folders other than INBOX as Maildir++ subfolders), owned by vmail, then set flags and
    /// keywords through doveadm: `\Seen` on the first half of each folder, `\Flagged $Label1
    /// project` on the first 5. Returns the tags.
    pub fn populate(&self, user: &str, folders: &[(&str, usize)]) -> Vec<String> {
        let maildir = self.home(user).join("Maildir");
        let mut tags = Vec::new();
        let mut n = 0u64;
        for (folder, count) in folders {
            let dir = if *folder == "INBOX" {
                maildir.clone()
            } else {
                maildir.join(format!(".{}", folder.replace('/', ".")))
            };
            for sub in ["cur", "new", "tmp"] {
                fs_err::create_dir_all(dir.join(sub)).expect("maildir");
            }
            if *folder != "INBOX" {
                fs_err::write(dir.join("maildirfolder"), "").expect("maildirfolder");
            }
            for i in 1..=*count {
                n += 1;
                let tag = format!("pre-{user}-{}-{i}", folder.replace('/', "."));
                let body = format!(
                    "From: <old@example.org>\nTo: <{user}>\nSubject: {tag}\nX-Mailmig-Test: {tag}\nMessage-ID: <{tag}@test>\n\nold mail {tag}\n"
                );
                let name = format!("1790000000.M{n}P1.mailmig,S={}:2,", body.len());
                fs_err::write(dir.join("cur").join(name), body).expect("message");
                tags.push(tag);
            }
        }
        let r = run(
            "chown",
            &[
                "-R",
                &format!("{}:{}", self.get("VMAIL_UID"), self.get("VMAIL_GID")),
                self.home(user).as_str(),
            ],
        );
        assert_eq!(r.code, 0, "chown: {}", r.err());
        for (folder, count) in folders {
            let half = format!("1:{}", (count / 2).max(1));
            let r = self.doveadm(&[
                "flags", "add", "-u", user, "\\Seen", "mailbox", folder, "uid", &half,
            ]);
            assert_eq!(r.code, 0, "flags: {}", r.err());
            let r = self.doveadm(&[
                "flags",
                "add",
                "-u",
                user,
                "\\Flagged $Label1 project",
                "mailbox",
                folder,
                "uid",
                "1:5",
            ]);
            assert_eq!(r.code, 0, "flags: {}", r.err());
        }
        tags
    }

    /// `doveadm -f tab fetch` rows (header skipped) for the user, at `location` or the
    /// userdb's.
    pub fn fetch(&self, user: &str, location: Option<&str>, fields: &str) -> Vec<Vec<String>> {
        let r = self.doveadm_at(location, &["-f", "tab", "fetch", "-u", user, fields, "ALL"]);
        assert!(
            r.code == 0 && !r.err().contains("Error:"),
            "doveadm fetch: {}",
            r.err()
        );
        r.out()
            .lines()
            .skip(1)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// How often each `X-Mailmig-Test` tag is in the user's mail (all folders).
    pub fn tag_counts(&self, user: &str, location: Option<&str>) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for row in self.fetch(user, location, "hdr.x-mailmig-test") {
            let tag = row.first().cloned().unwrap_or_default();
            if !tag.is_empty() {
                *counts.entry(tag).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The user's mail location as Dovecot sees it.
    pub fn mail_location(&self, user: &str) -> String {
        let r = self.doveadm(&["user", "-f", "mail", user]);
        assert_eq!(r.code, 0, "doveadm user: {}", r.err());
        r.out().trim().to_string()
    }

    /// Wait (at most `secs`) until the queue is empty; flushes deferred mail on the way.
    pub fn wait_queue_empty(&self, secs: u64) -> bool {
        let start = std::time::Instant::now();
        loop {
            if self.queue().is_empty() {
                return true;
            }
            if start.elapsed().as_secs() >= secs {
                return false;
            }
            let _ = run("postqueue", &["-c", self.get("POSTFIX_CONFIG"), "-f"]);
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let r = run("bash", &[script().as_str(), "down", self.root.as_str()]);
        if r.code != 0 {
            eprintln!("sandbox down failed: {}{}", r.out(), r.err());
        }
    }
}
