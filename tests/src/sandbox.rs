//! A running throwaway Postfix + Dovecot pair (see `tests/sandbox/sandbox.sh`), stopped on drop,
//! on either stack: Debian 12 (the host's Postfix 3.7 and Dovecot 2.3) or Debian 13 (Postfix
//! 3.10 and Dovecot 2.4, chrooted in a trixie root, the instance directory at the same path
//! inside). Every program a test runs against the sandbox, its daemons' tools and `mailmig`
//! itself, runs on the sandbox's stack through [`Sandbox::command`].

use std::collections::BTreeMap;
use std::net::TcpListener;

use camino::{Utf8Path, Utf8PathBuf};

use crate::{daemons_required, require, run, workspace_root, Run};

/// Which Debian release's Postfix and Dovecot a sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// Debian 12 (bookworm): Postfix 3.7, Dovecot 2.3 — the host's packages.
    Debian12,
    /// Debian 13 (trixie): Postfix 3.10, Dovecot 2.4 — chrooted in an mmdebstrap root.
    Debian13,
}

impl Stack {
    /// The name `sandbox.sh --stack` takes.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Debian12 => "debian12",
            Stack::Debian13 => "debian13",
        }
    }

    /// Whether its Dovecot is 2.4.
    pub fn dovecot_24(self) -> bool {
        self == Stack::Debian13
    }
}

/// A sandbox instance under a temporary directory.
pub struct Sandbox {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
    env: BTreeMap<String, String>,
    stack: Stack,
    /// The chroot of the stack's programs (Debian 13), if any.
    chroot: Option<Utf8PathBuf>,
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
    /// Start a Debian 12 sandbox, or `None` when the daemons are not installed and not required.
    pub fn start() -> Option<Sandbox> {
        Self::start_on(Stack::Debian12)
    }

    /// Start a sandbox on `stack`, or `None` when it is not installed and not required.
    pub fn start_on(stack: Stack) -> Option<Sandbox> {
        Self::start_variant(stack, "passwd-file")
    }

    /// Start a sandbox on `stack` whose users live in SQLite (PostfixAdmin's `mailbox` table,
    /// Dovecot's sql passdb and userdb), or `None` as [`Self::start_on`].
    pub fn start_sql(stack: Stack) -> Option<Sandbox> {
        Self::start_variant(stack, "sql")
    }

    fn start_variant(stack: Stack, userdb: &str) -> Option<Sandbox> {
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
                    "--stack",
                    stack.name(),
                    "--userdb",
                    userdb,
                    "--smtp-port",
                    &smtp,
                    "--imap-port",
                    &imap,
                ],
            );
            if r.code == 0 {
                break;
            }
            if r.code == 77 && !daemons_required() {
                eprintln!(
                    "skipped: the {} sandbox cannot run here: {}",
                    stack.name(),
                    r.err()
                );
                return None;
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
        let env: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect();
        let chroot = env
            .get("STACK_ROOT")
            .filter(|r| !r.is_empty())
            .map(Utf8PathBuf::from);
        let sb = Sandbox {
            _dir: dir,
            root,
            env,
            stack,
            chroot,
        };
        if sb.chroot.is_some() {
            sb.install_mailmig();
        }
        Some(sb)
    }

    /// The stack.
    pub fn stack(&self) -> Stack {
        self.stack
    }

    /// The passwd-file extra fields that put a user at `location` (`FORMAT:PATH`) on this
    /// stack: `userdb_mail=...` (2.3), `userdb_mail_driver=... userdb_mail_path=...` (2.4).
    pub fn userdb_location(&self, location: &str) -> String {
        if self.stack.dovecot_24() {
            let (driver, path) = location.split_once(':').expect("FORMAT:PATH");
            format!("userdb_mail_driver={driver} userdb_mail_path={path}")
        } else {
            format!("userdb_mail={location}")
        }
    }

    /// Dovecot configuration that turns on the Maildir++ quota backend, in this stack's syntax.
    pub fn maildir_quota_config(&self) -> &'static str {
        if self.stack.dovecot_24() {
            "mail_plugins {\n  quota = yes\n}\nquota \"User quota\" {\n  driver = maildir\n}\n"
        } else {
            "plugin {\n  quota = maildir:User quota\n}\n"
        }
    }

    /// Two quota roots, the second one Maildir++ (2.3 `quota2`; 2.4 a second quota block).
    pub fn second_maildir_quota_config(&self) -> &'static str {
        if self.stack.dovecot_24() {
            "mail_plugins {\n  quota = yes\n}\nquota \"User quota\" {\n  driver = count\n}\nquota Other {\n  driver = maildir\n}\n"
        } else {
            "plugin {\n  quota = count:User quota\n  quota2 = maildir:Other\n}\n"
        }
    }

    /// `program ARGS...` on the sandbox's stack (chrooted for Debian 13; the environment is
    /// inherited), not started.
    pub fn command<S: AsRef<std::ffi::OsStr>>(
        &self,
        program: &str,
        args: &[S],
    ) -> duct::Expression {
        let args: Vec<std::ffi::OsString> =
            args.iter().map(|a| a.as_ref().to_os_string()).collect();
        match &self.chroot {
            None => duct::cmd(program, args),
            Some(root) => {
                let mut all: Vec<std::ffi::OsString> = vec![root.as_str().into(), program.into()];
                all.extend(args);
                duct::cmd("chroot", all)
            }
        }
    }

    /// Run `program ARGS...` on the sandbox's stack, capturing everything.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, program: &str, args: &[S]) -> Run {
        self.run_stdin(program, args, None)
    }

    /// [`Sandbox::run`] with bytes on standard input.
    pub fn run_stdin<S: AsRef<std::ffi::OsStr>>(
        &self,
        program: &str,
        args: &[S],
        stdin: Option<&[u8]>,
    ) -> Run {
        crate::capture(self.command(program, args), program, stdin)
    }

    /// The `mailmig` program as the stack sees it: the tests' build, or (Debian 13) its copy
    /// inside the instance directory, which the chroot sees at the same path.
    pub fn mailmig_program(&self) -> Utf8PathBuf {
        match &self.chroot {
            None => crate::mailmig_bin().to_owned(),
            Some(_) => self.root.join("bin/mailmig"),
        }
    }

    /// Put the tests' `mailmig` into the instance directory, for the Debian 13 chroot.
    fn install_mailmig(&self) {
        self.program(crate::mailmig_bin());
    }

    /// A program built on the host as the stack sees it: itself (Debian 12), or its copy in the
    /// instance directory (Debian 13: a hard link when the file system allows it).
    pub fn program(&self, built: &Utf8Path) -> Utf8PathBuf {
        if self.chroot.is_none() {
            return built.to_owned();
        }
        let dest = self
            .root
            .join("bin")
            .join(built.file_name().expect("a file"));
        if !dest.exists() {
            fs_err::create_dir_all(self.root.join("bin")).expect("bin dir");
            if fs_err::hard_link(built, &dest).is_err() {
                fs_err::copy(built, &dest).expect("copy the program");
            }
        }
        dest
    }

    /// A directory (in the instance, so the stack sees it at the same path) holding an
    /// executable `name` = `script`, to put first on PATH ([`Sandbox::path_with`]).
    pub fn wrapper(&self, name: &str, script: &str) -> Utf8PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = self.root.join(format!("wrap-{name}"));
        fs_err::create_dir_all(&dir).expect("mkdir");
        let file = dir.join(name);
        fs_err::write(&file, script).expect("write");
        fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        dir
    }

    /// PATH with `dir` first.
    pub fn path_with(dir: &Utf8Path) -> String {
        format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
    }

    /// The words that start `program` on the stack (`chroot ROOT` first for Debian 13), for a
    /// command line another program runs (`script -c`, `sh -c`).
    pub fn argv_prefix(&self, program: &str) -> Vec<String> {
        match &self.chroot {
            None => vec![program.to_string()],
            Some(root) => vec!["chroot".into(), root.to_string(), program.to_string()],
        }
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

    /// Run `mailmig ARGS...` on the sandbox's stack, without the configuration arguments.
    pub fn mailmig_bare<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        self.run(self.mailmig_program().as_str(), args)
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
        let mut expr = self
            .command(self.mailmig_program().as_str(), &all)
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
        let r = self.run("postqueue", &["-c", self.get("POSTFIX_CONFIG"), "-j"]);
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
        let r = self.run(
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

    /// Write Dovecot's configuration file and `doveadm reload`, then give the new processes a
    /// moment to take over.
    pub fn reconfigure_dovecot(&self, text: &str) {
        fs_err::write(self.path("DOVECOT_CONFIG"), text).expect("write dovecot.conf");
        let r = self.doveadm(&["reload"]);
        assert_eq!(r.code, 0, "doveadm reload: {}", r.err());
        std::thread::sleep(std::time::Duration::from_millis(1500));
    }

    /// `mailmig migrate --users-from LIST --jobs 4 --to mdbox:~/mdbox EXTRA...`.
    pub fn migrate_to_mdbox(&self, list: &Utf8Path, extra: &[&str]) -> Run {
        let mut args = vec![
            "migrate",
            "--users-from",
            list.as_str(),
            "--jobs",
            "4",
            "--to",
            "mdbox:~/mdbox",
        ];
        args.extend_from_slice(extra);
        self.mailmig(&args)
    }

    /// Each user (of `expected`: user → tags it had) is at `location`, and every tag it had or
    /// was `sent` is in its mailbox exactly once, with nothing else there.
    pub fn assert_each_once(
        &self,
        mut expected: BTreeMap<String, Vec<String>>,
        sent: &crate::mail::Sent,
        location: &str,
    ) {
        for (tag, to) in sent {
            for u in to {
                expected.get_mut(u).expect("user").push(tag.clone());
            }
        }
        for (user, tags) in &expected {
            assert_eq!(self.mail_location(user), location, "{user}");
            let counts = self.tag_counts(user, None);
            for t in tags {
                assert_eq!(counts.get(t), Some(&1), "{user}: {t}");
            }
            assert_eq!(counts.len(), tags.len(), "{user}: extra messages");
        }
    }

    /// mailmig's overlay as `mailmig overlay show` places it: empty deny and override files
    /// beside dovecot.conf, the deny passdb before the first passdb, `result_success =
    /// continue-ok` in the primary userdb, the override userdb at the end; Dovecot reloaded.
    /// Returns the two files (deny, override).
    pub fn place_overlay(&self) -> (Utf8PathBuf, Utf8PathBuf) {
        let r = self.mailmig(&["overlay", "show", "--json"]);
        assert_eq!(r.code, 0, "overlay show: {}", r.err());
        let snippet: serde_json::Value = serde_json::from_str(&r.out()).expect("json");
        let conf_path = self.path("DOVECOT_CONFIG").to_owned();
        let conf = fs_err::read_to_string(&conf_path).expect("read dovecot.conf");
        let dir = conf_path.parent().expect("dir");
        let (deny, location) = (dir.join("mailmig-deny"), dir.join("mailmig-override"));
        fs_err::write(&deny, "").expect("deny file");
        fs_err::write(&location, "").expect("override file");
        self.reconfigure_dovecot(&overlay_placed(&conf, &snippet));
        (deny, location)
    }

    /// `doveadm -c CONF ARGS...`.
    pub fn doveadm(&self, args: &[&str]) -> Run {
        let mut all = vec!["-c", self.get("DOVECOT_CONFIG")];
        all.extend_from_slice(args);
        self.run("doveadm", &all)
    }

    /// `doveadm -c CONF [-o ...] ARGS...`: at a location (`FORMAT:PATH`) other than the userdb's
    /// when given (2.3 `-o mail_location=`; 2.4 `-o mail_driver= -o mail_path=`).
    pub fn doveadm_at(&self, location: Option<&str>, args: &[&str]) -> Run {
        let mut overrides: Vec<String> = Vec::new();
        if let Some(l) = location {
            if self.stack.dovecot_24() {
                let (driver, path) = l.split_once(':').expect("FORMAT:PATH");
                overrides.extend([
                    "-o".into(),
                    format!("mail_driver={driver}"),
                    "-o".into(),
                    format!("mail_path={path}"),
                ]);
            } else {
                overrides.extend(["-o".into(), format!("mail_location={l}")]);
            }
        }
        let mut all: Vec<&str> = overrides.iter().map(String::as_str).collect();
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
        if self.get("USERDB") == "sql" {
            return self.add_sql_users(names);
        }
        let (uid, gid) = (self.get("VMAIL_UID"), self.get("VMAIL_GID"));
        let mut passwd = fs_err::read_to_string(self.path("PASSWD_FILE")).expect("passwd-file");
        let vmailbox = fs_err::read_to_string(self.path("VMAILBOX_MAP")).expect("vmailbox");
        for n in names {
            let home = self.home(&format!("{n}@example.test"));
            passwd.push_str(&format!(
                "{n}@example.test:{{PLAIN}}{n}pw:{uid}:{gid}::{home}::\n"
            ));
        }
        fs_err::write(self.path("PASSWD_FILE"), passwd).expect("write passwd-file");
        self.add_mailboxes(names, vmailbox);
    }

    /// The SQL variant's [`Self::add_users`]: rows in the `mailbox` table.
    fn add_sql_users(&self, names: &[String]) {
        let mut sql = String::from("BEGIN;\n");
        for n in names {
            sql.push_str(&format!(
                "INSERT INTO mailbox (username, password, name, maildir, local_part, domain) VALUES ('{n}@example.test', '{{PLAIN}}{n}pw', '{n}', 'example.test/{n}/', '{n}', 'example.test');\n"
            ));
        }
        sql.push_str("COMMIT;\n");
        // The host's sqlite3 (the file is the same path in the Debian 13 root).
        let r = crate::capture(
            duct::cmd("sqlite3", [self.get("SQL_DB")]),
            "sqlite3",
            Some(sql.as_bytes()),
        );
        assert_eq!(r.code, 0, "sqlite3: {}", r.err());
        let vmailbox = fs_err::read_to_string(self.path("VMAILBOX_MAP")).expect("vmailbox");
        self.add_mailboxes(names, vmailbox);
    }

    /// The users' homes and their lines in the virtual mailbox map (rebuilt).
    fn add_mailboxes(&self, names: &[String], mut vmailbox: String) {
        for n in names {
            vmailbox.push_str(&format!("{n}@example.test example.test/{n}/\n"));
        }
        fs_err::write(self.path("VMAILBOX_MAP"), vmailbox).expect("write vmailbox");
        let r = self.run(
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

    /// The user's mail location as Dovecot sees it, as `FORMAT:PATH` with the home written
    /// `~` (2.3: `doveadm user -f mail`; 2.4: `-f mail_driver`, empty for the global driver,
    /// and `-f mail_path`, which 2.4 prints expanded).
    pub fn mail_location(&self, user: &str) -> String {
        let field = |f: &str| {
            let r = self.doveadm(&["user", "-f", f, user]);
            assert_eq!(r.code, 0, "doveadm user -f {f}: {}", r.err());
            r.out().trim().to_string()
        };
        if !self.stack.dovecot_24() {
            return field("mail");
        }
        let mut driver = field("mail_driver");
        if driver.is_empty() {
            let r = self.run(
                "doveconf",
                &["-c", self.get("DOVECOT_CONFIG"), "mail_driver"],
            );
            driver = r
                .out()
                .trim()
                .trim_start_matches("mail_driver = ")
                .to_string();
        }
        let path = field("mail_path");
        let home = field("home");
        let path = match path.strip_prefix(home.as_str()) {
            Some(rest) if !home.is_empty() => format!("~{rest}"),
            _ => path,
        };
        format!("{driver}:{path}")
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
            let _ = self.run("postqueue", &["-c", self.get("POSTFIX_CONFIG"), "-f"]);
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

/// `conf` with `mailmig overlay show --json`'s snippet placed as it says.
pub fn overlay_placed(conf: &str, snippet: &serde_json::Value) -> String {
    let get = |k: &str| snippet[k].as_str().expect("snippet field").to_string();
    let at = conf.find("\npassdb ").expect("a passdb") + 1;
    let mut text = format!("{}{}{}", &conf[..at], get("passdb"), &conf[at..]);
    let userdb = text.find("\nuserdb ").expect("a userdb") + 1;
    let close = userdb + text[userdb..].find("\n}").expect("its end") + 1;
    text.insert_str(close, &get("primary_userdb"));
    text.push_str(&get("userdb"));
    text
}
