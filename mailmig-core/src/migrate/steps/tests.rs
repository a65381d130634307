//! Every step and every undo against a scripted runner (no daemons): a fake Dovecot and Postfix
//! that read the real files the steps edit, answer doveadm/postconf/postqueue like the real
//! tools, and fail any command on request. The live tests run the same steps on real daemons.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use camino::Utf8PathBuf;

use super::{forward, start_data, undo};
use crate::dovecot::{DovecotVersion, NumericIds, PasswdFile, PasswdOptions};
use crate::migrate::engine::{Batcher, EditEnv, Engine, PasswdEdit, TimedRunner};
use crate::migrate::error::StepError;
use crate::migrate::journal::{Event, Journal, RunHeader, StepData, FORMAT};
use crate::migrate::report::{Event as ReportEvent, EventKind, Reporter};
use crate::migrate::{Location, Plan, RunOptions, StepKind, Strategy};
use crate::postfix::{MapType, ParseOptions};
use crate::process::{Argv, Output, RunError, Runner};
use crate::state::StateDir;

const USER: &str = "alice@x.test";
const PASSWD: &str =
    "alice@x.test:{PLAIN}pw:1000:1000::/HOME::\nbob@x.test:{PLAIN}pw:1000:1000::/HOME/bob::\n";
const STATUS_HEAD: &str = "mailbox\tmessages\tuidvalidity\tuidnext\tguid\n";

/// A Dovecot + Postfix that answer from the files and a per-location mail state.
struct Fake {
    passwd: Utf8PathBuf,
    /// Answer as Dovecot 2.4: locations in `userdb_mail_driver` + `userdb_mail_path` and
    /// `-o mail_driver= -o mail_path=` (`userdb_mail` and `-o mail_location=` ignored), `kick`
    /// exits 0 with nobody to kick.
    v24: bool,
    /// The home `~` expands to.
    home: String,
    /// location → (status rows, fetch rows) without headers.
    mail: Mutex<HashMap<String, (String, String)>>,
    /// A command whose words joined contain one of these fails with exit 75.
    fail: Mutex<Vec<String>>,
    /// Every command run.
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn new(passwd: Utf8PathBuf, v24: bool, home: String) -> Self {
        let f = Self {
            passwd,
            v24,
            home,
            mail: Mutex::new(HashMap::new()),
            fail: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        };
        f.set_mail("maildir:~/Maildir", &["a", "b"]);
        f
    }

    fn set_mail(&self, location: &str, guids: &[&str]) {
        let status = format!("INBOX\t{}\t100\t{}\tg\n", guids.len(), guids.len() + 1);
        let fetch: String = guids.iter().map(|g| format!("INBOX\t{g}\n")).collect();
        self.mail
            .lock()
            .expect("lock")
            .insert(location.to_string(), (status, fetch));
    }

    fn fail_on(&self, what: &str) {
        self.fail.lock().expect("lock").push(what.to_string());
    }

    fn ran(&self, what: &str) -> bool {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .any(|c| c.contains(what))
    }

    fn field(&self, user: &str, key: &str) -> Option<String> {
        let file = PasswdFile::parse(
            fs_err::read(&self.passwd).expect("passwd"),
            &PasswdOptions::default(),
        );
        let e = file.lookup(user.as_bytes(), &NumericIds)?;
        e.extra()
            .iter()
            .find(|f| f.key.as_ref() == key.as_bytes())
            .map(|f| {
                f.value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            })
    }
}

fn out(code: i32, stdout: &str) -> Result<Output, RunError> {
    Ok(Output {
        code: Some(code),
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
    })
}

impl Runner for Fake {
    fn run(&self, argv: &Argv, _: Option<&[u8]>) -> Result<Output, RunError> {
        let words: Vec<String> = argv
            .0
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = words.join(" ");
        self.calls.lock().expect("lock").push(line.clone());
        if self
            .fail
            .lock()
            .expect("lock")
            .iter()
            .any(|f| line.contains(f.as_str()))
        {
            return Ok(Output {
                code: Some(75),
                stdout: Vec::new(),
                stderr: b"simulated failure".to_vec(),
            });
        }
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let location = self.location_read(&w);
        match w.as_slice() {
            ["doveconf", ..] if self.v24 => out(0, "# 2.4.1-4 (7d8c0e5759): /c\n"),
            ["doveconf", ..] => out(0, "# 2.3.19.1 (9b53102964): /c\n"),
            ["doveadm", _, _, "user", "-f", "mail", user] if self.v24 => out(
                0,
                &format!("{}\n", self.field(user, "userdb_mail").unwrap_or_default()),
            ),
            ["doveadm", _, _, "user", "-f", "mail_driver", user] if self.v24 => out(
                0,
                &format!(
                    "{}\n",
                    self.field(user, "userdb_mail_driver").unwrap_or_default()
                ),
            ),
            ["doveadm", _, _, "user", "-f", "mail_path", user] if self.v24 => {
                let path = self
                    .field(user, "userdb_mail_path")
                    .unwrap_or_else(|| "~/Maildir".into());
                out(0, &format!("{}\n", path.replacen('~', &self.home, 1)))
            }
            ["doveadm", _, _, "kick", ..] if self.v24 => out(0, "0 connections kicked\n"),
            ["doveadm", _, _, "auth", "lookup", user] => {
                if self.field(user, "allow_nets").as_deref() == Some("") {
                    out(67, "")
                } else if self.field(user, "nologin").is_some() {
                    out(0, "  nologin : y\n")
                } else {
                    out(0, "  user : x\n")
                }
            }
            ["doveadm", _, _, "user", "-f", "mail", user] => out(
                0,
                &format!(
                    "{}\n",
                    self.field(user, "userdb_mail")
                        .unwrap_or_else(|| "maildir:~/Maildir".into())
                ),
            ),
            ["doveadm", _, _, "user", "-f", _, _] => out(0, "\n"),
            ["doveadm", .., "mailbox", "path", "-u", _, "INBOX"] => {
                if self
                    .fail
                    .lock()
                    .expect("lock")
                    .iter()
                    .any(|f| f == "same-storage")
                {
                    out(0, "/home/alice/Maildir\n")
                } else {
                    out(
                        0,
                        &format!("/home/alice/{}\n", location.unwrap_or_default()),
                    )
                }
            }
            ["doveadm", _, _, "kick", ..] => out(68, ""),
            ["doveadm", .., "mailbox", "list", "-s", "-u", _] => out(0, "INBOX\n"),
            ["doveadm", _, _, "-f", "tab", "who", ..] => out(0, "username\tproto\n"),
            ["doveadm", .., "mailbox", "status", _, _, _, _] => {
                let mail = self.mail.lock().expect("lock");
                let (status, _) = location
                    .and_then(|l| mail.get(&l).cloned())
                    .unwrap_or_default();
                out(0, &format!("{STATUS_HEAD}{status}"))
            }
            ["doveadm", .., "fetch", _, _, _, _] => {
                let mail = self.mail.lock().expect("lock");
                let (_, fetch) = location
                    .and_then(|l| mail.get(&l).cloned())
                    .unwrap_or_default();
                out(0, &format!("mailbox\tguid\n{fetch}"))
            }
            ["doveadm", _, _, "backup", .., dest] | ["doveadm", _, _, "sync", .., dest] => {
                // A copy: the destination gets the source's mail (one direction is enough for
                // these tests).
                let mut mail = self.mail.lock().expect("lock");
                if let Some(src) = mail.get("maildir:~/Maildir").cloned() {
                    mail.insert((*dest).to_string(), src);
                }
                out(0, "")
            }
            ["postqueue", _, _, "-j"] => out(0, ""),
            ["postmap" | "postsuper" | "postqueue", ..] => out(0, ""),
            ["postconf", ..] => out(0, ""),
            _ => out(1, ""),
        }
    }
}

impl Fake {
    /// The location a doveadm command reads: its override, spelled as this Dovecot knows it,
    /// else the user's own (for 2.4; the 2.3 fake answers `None`).
    fn location_read(&self, w: &[&str]) -> Option<String> {
        let value = |key: &str| {
            w.iter()
                .find_map(|a| a.strip_prefix(key))
                .map(str::to_string)
        };
        if !self.v24 {
            return value("mail_location=");
        }
        match (value("mail_driver="), value("mail_path=")) {
            (Some(d), Some(p)) => Some(format!("{d}:{p}")),
            _ => {
                let user = w.windows(2).find(|p| p[0] == "-u").map(|p| p[1])?;
                let driver = self
                    .field(user, "userdb_mail_driver")
                    .unwrap_or_else(|| "maildir".into());
                let path = self
                    .field(user, "userdb_mail_path")
                    .unwrap_or_else(|| "~/Maildir".into());
                Some(format!("{driver}:{path}"))
            }
        }
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<String>>);

impl Reporter for Collect {
    fn event(&self, e: &ReportEvent<'_>) {
        let text = match &e.kind {
            EventKind::MovedAside(_, p) => format!("moved-aside {p}"),
            EventKind::Retry(s, _) => format!("retry {s}"),
            EventKind::CarryOver(s, _) => format!("carry-over {s}"),
            other => format!("{other:?}"),
        };
        self.0.lock().expect("lock").push(text);
    }
}

/// A temporary server: passwd-file, access map, home, state directory.
struct World {
    _tmp: tempfile::TempDir,
    dir: Utf8PathBuf,
    fake: Fake,
    /// The release the runs are planned for.
    version: DovecotVersion,
    /// The runs' target.
    to: String,
    state: StateDir,
    reporter: Collect,
}

impl World {
    fn new() -> Self {
        Self::on(false, DovecotVersion::V2_3)
    }

    /// A world whose Dovecot answers as 2.4 (`v24`) and whose runs are planned for `version`.
    fn on(v24: bool, version: DovecotVersion) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Utf8PathBuf::try_from(tmp.path().to_path_buf()).expect("utf8");
        let home = dir.join("home");
        fs_err::create_dir_all(&home).expect("home");
        fs_err::write(dir.join("users"), PASSWD.replace("/HOME", home.as_str())).expect("users");
        fs_err::write(dir.join("access"), "# access\n").expect("access");
        let state = StateDir::open(&dir.join("state")).expect("state");
        Self {
            fake: Fake::new(dir.join("users"), v24, home.to_string()),
            version,
            to: "mdbox:~/mdbox".into(),
            _tmp: tmp,
            dir,
            state,
            reporter: Collect::default(),
        }
    }

    fn path(&self, name: &str) -> Utf8PathBuf {
        self.dir.join(name)
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            dovecot_config: "/etc/dovecot/dovecot.conf".into(),
            postfix_config: Some(self.dir.clone()),
            access_map: Some(self.path("access")),
            map_type: Some(MapType::Hash),
            passwd_file: self.path("users"),
            lock: crate::login::LockMethod::AllowNets,
            hold_action: crate::hold::HoldAction::Hold,
            reason: "maintenance".into(),
            presync: true,
            home: self.path("home").to_string(),
            delimiters: "+".into(),
            hold_keys: vec![USER.into(), "al@x.test".into()],
            smtputf8: true,
            auth_cache: false,
            max_hold_secs: 900,
            dovecot_version: self.version,
            default_driver: (self.version == DovecotVersion::V2_4).then(|| "maildir".into()),
            quota: None,
            pop3: false,
            min_free: Default::default(),
            overlay: None,
        }
    }

    /// Run `f` with an engine on a fresh journal.
    fn with<T>(&self, strategy: Strategy, f: impl FnOnce(&mut Engine<'_>) -> T) -> T {
        self.with_batcher(strategy, None, f)
    }

    /// [`World::with`], the engine sharing `batcher` as the runs of a batch do.
    fn with_batcher<T>(
        &self,
        strategy: Strategy,
        batcher: Option<&Batcher>,
        f: impl FnOnce(&mut Engine<'_>) -> T,
    ) -> T {
        let runner = TimedRunner::new(&self.fake);
        let header = RunHeader {
            format: FORMAT,
            run: format!("run-{}", self.state.names("runs").map_or(0, |n| n.len())),
            created: "2026-12-02T00:00:00Z".into(),
            plan: Plan {
                user: USER.into(),
                from: Location::parse("maildir:~/Maildir").expect("valid"),
                to: Location::parse(&self.to).expect("valid"),
                strategy,
                warnings: vec![],
                steps: vec![],
                space: None,
            },
            options: self.options(),
        };
        let journal = Journal::create(&self.state, &header).expect("journal");
        let mut engine = Engine {
            runner: &runner,
            state: &self.state,
            header,
            journal,
            records: Vec::new(),
            parse: ParseOptions::default(),
            ids: &NumericIds,
            reporter: &self.reporter,
            started: Instant::now(),
            batcher,
        };
        f(&mut engine)
    }

    fn read(&self, name: &str) -> String {
        fs_err::read_to_string(self.path(name)).expect("read")
    }

    fn events(&self) -> Vec<String> {
        self.reporter.0.lock().expect("lock").clone()
    }
}

/// A step as the engine runs it: start data journaled, then the action.
fn run_step(e: &mut Engine<'_>, step: StepKind) -> Result<Option<StepData>, StepError> {
    let data = start_data(e, step)?;
    e.record(Some(step), Event::Start, data, None)?;
    forward(e, step)
}

#[test]
fn preflight_refuses_a_target_that_filled_up() {
    let w = World::new();
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::Preflight),
            Ok(Some(StepData::Checked { .. }))
        ));
        fs_err::create_dir_all(w.path("home/mdbox/x")).expect("mkdir");
        assert!(matches!(
            run_step(e, StepKind::Preflight),
            Err(StepError::TargetNotEmpty { .. })
        ));
    });
}

#[test]
fn presync_copies_and_its_undo_moves_the_copy_aside() {
    let w = World::new();
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::Presync),
            Ok(Some(StepData::Copied { .. }))
        ));
        assert!(w.fake.ran(" backup -l 30 -u alice@x.test mdbox:~/mdbox"));
        fs_err::create_dir_all(w.path("home/mdbox")).expect("copy");
        undo(e, StepKind::Presync).expect("undo");
        assert!(!w.path("home/mdbox").exists());
        assert!(w.events().iter().any(|ev| ev.starts_with("moved-aside")));
        // An undo of a copy that never happened succeeds.
        undo(e, StepKind::Presync).expect("undo again");
    });
    w.fake.fail_on(" backup ");
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::Presync),
            Err(StepError::Doveadm { .. })
        ));
    });
}

/// A target with its own index directory: the preflight finds it full, the undo moves both
/// directories aside.
#[test]
fn every_target_directory_is_checked_and_moved_aside() {
    let mut w = World::new();
    w.to = "mdbox:~/mdbox:INDEX=~/mdbox-index".into();
    fs_err::create_dir_all(w.path("home/mdbox-index/x")).expect("index");
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::Preflight),
            Err(StepError::TargetNotEmpty { target }) if target.ends_with("mdbox-index")
        ));
        fs_err::create_dir_all(w.path("home/mdbox")).expect("copy");
        undo(e, StepKind::Presync).expect("undo");
        assert!(!w.path("home/mdbox").exists());
        assert!(!w.path("home/mdbox-index").exists());
        let aside = w
            .events()
            .iter()
            .filter(|ev| ev.starts_with("moved-aside"))
            .count();
        assert_eq!(aside, 2, "{:?}", w.events());
    });
}

#[test]
fn hold_writes_exact_lines_and_its_undo_removes_them() {
    let w = World::new();
    w.with(Strategy::Hold, |e| {
        let data = run_step(e, StepKind::Hold).expect("held");
        assert!(matches!(data, Some(StepData::Held { addresses: 2, .. })));
        let access = w.read("access");
        assert!(
            access.contains("alice@x.test\tHOLD [mailmig hold for alice@x.test since"),
            "{access}"
        );
        assert!(access.contains("\nal@x.test\tHOLD"), "{access}");
        assert!(w.fake.ran("postmap -c"));
        undo(e, StepKind::Hold).expect("undo");
        assert_eq!(w.read("access"), "# access\n");
        assert!(w.fake.ran("postqueue -c"));
    });
}

#[test]
fn a_hold_whose_postmap_fails_leaves_nothing_and_its_undo_needs_no_lock() {
    let w = World::new();
    w.fake.fail_on("postmap");
    w.with(Strategy::Hold, |e| {
        assert!(run_step(e, StepKind::Hold).is_err());
        assert_eq!(w.read("access"), "# access\n", "the source was put back");
        let calls_before = w.fake.calls.lock().expect("lock").len();
        undo(e, StepKind::Hold).expect("undo of an edit that never happened");
        let calls = w.fake.calls.lock().expect("lock");
        assert!(
            !calls[calls_before..]
                .iter()
                .any(|c| c.starts_with("postmap")),
            "the undo rebuilt the map"
        );
    });
}

#[test]
fn lock_out_is_confirmed_and_its_undo_restores_the_record() {
    let w = World::new();
    let before = w.read("users");
    w.with(Strategy::Hold, |e| {
        run_step(e, StepKind::LockOut).expect("locked out");
        assert_eq!(w.fake.field(USER, "allow_nets").as_deref(), Some(""));
        undo(e, StepKind::LockOut).expect("undo");
        assert_eq!(w.read("users"), before);
        // Undo again: nothing recorded, nothing to do.
        undo(e, StepKind::LockOut).expect("undo again");
    });
    w.fake.fail_on("auth lookup");
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::LockOut),
            Err(StepError::Login(_))
        ));
        w.fake.fail.lock().expect("lock").clear();
        undo(e, StepKind::LockOut).expect("undo after a failed lock-out");
        assert_eq!(w.read("users"), before);
    });
}

#[test]
fn final_sync_copies_and_fails_when_the_copy_fails() {
    let w = World::new();
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::FinalSync),
            Ok(Some(StepData::Copied { .. }))
        ));
        assert!(w.fake.ran("postqueue -c"));
    });
    w.fake.fail_on(" backup ");
    w.with(Strategy::Hold, |e| {
        assert!(run_step(e, StepKind::FinalSync).is_err());
    });
}

#[test]
fn verify_passes_on_equal_locations_and_fails_after_three_tries() {
    let w = World::new();
    w.fake.set_mail("mdbox:~/mdbox", &["a", "b"]);
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::Verify),
            Ok(Some(StepData::Verified { messages: 2, .. }))
        ));
    });
    // A target that never catches up: the re-syncs copy nothing new (they fail silently here:
    // the fake's copy is replaced by a stale state after each).
    w.fake.set_mail("mdbox:~/mdbox", &["a"]);
    w.fake.fail_on(" backup ");
    w.with(Strategy::Hold, |e| {
        assert!(run_step(e, StepKind::Verify).is_err());
    });
    let w = World::new();
    w.fake.set_mail("mdbox:~/mdbox", &["a"]);
    w.with(Strategy::Hold, |e| {
        // The first re-sync copies the source: the second comparison passes.
        assert!(run_step(e, StepKind::Verify).is_ok());
        assert!(w.events().iter().any(|ev| ev == "retry verify"));
    });
    let w = World::new();
    w.fake.fail_on("fetch");
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::Verify),
            Err(StepError::Doveadm { .. })
        ));
    });
}

/// Regression guard: a Dovecot that reads the new location from the old storage (it ignores the
/// location override) must fail the verification, not pass it vacuously.
#[test]
fn verify_refuses_two_reads_of_one_storage() {
    let w = World::new();
    w.fake.set_mail("mdbox:~/mdbox", &["a", "b"]);
    w.fake.fail_on("same-storage");
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::Verify),
            Err(StepError::SameStorage { .. })
        ));
    });
}

#[test]
fn switch_writes_the_location_and_its_undo_puts_the_old_one_back() {
    let w = World::new();
    let before = w.read("users");
    w.fake.set_mail("mdbox:~/mdbox", &["a", "b"]);
    w.with(Strategy::Hold, |e| {
        run_step(e, StepKind::Switch).expect("switched");
        assert_eq!(
            w.fake.field(USER, "userdb_mail").as_deref(),
            Some("mdbox:~/mdbox")
        );
        // Mail saved into the new location meanwhile goes back with the user.
        w.fake.set_mail("mdbox:~/mdbox", &["a", "b", "c"]);
        let r = undo(e, StepKind::Switch);
        assert_eq!(w.read("users"), before);
        assert!(w.fake.ran("sync -1 -R"));
        // The fake's sync copies one way only, so "c" stays missing in the old location.
        assert!(matches!(r, Err(StepError::NotCarriedBack { .. })), "{r:?}");
    });
}

#[test]
fn catch_up_carries_over_what_the_old_location_got() {
    let w = World::new();
    w.fake.set_mail("mdbox:~/mdbox", &["a", "b"]);
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::CatchUp),
            Ok(Some(StepData::CaughtUp {
                carried_over_passes: 0,
                ..
            }))
        ));
    });
    let w = World::new();
    w.fake.set_mail("mdbox:~/mdbox", &["a"]);
    w.fake.fail_on("sync -1 -R");
    w.with(Strategy::Hold, |e| {
        assert!(run_step(e, StepKind::CatchUp).is_err());
        assert!(w.events().iter().any(|ev| ev == "carry-over catch-up"));
    });
}

#[test]
fn release_removes_the_holds_and_restores_the_logins() {
    let w = World::new();
    let (users, access) = (w.read("users"), w.read("access"));
    w.with(Strategy::Hold, |e| {
        run_step(e, StepKind::Hold).expect("held");
        run_step(e, StepKind::LockOut).expect("locked out");
        assert!(matches!(
            run_step(e, StepKind::Release),
            Ok(Some(StepData::Released { .. }))
        ));
    });
    assert_eq!(w.read("users"), users);
    assert_eq!(w.read("access"), access);
    let w = World::new();
    w.with(Strategy::Hold, |e| {
        run_step(e, StepKind::Hold).expect("held");
        w.fake.fail_on("postmap");
        assert!(run_step(e, StepKind::Release).is_err());
    });
}

#[test]
fn the_whole_run_forward_and_a_failure_rolled_back() {
    let w = World::new();
    let (users, access) = (w.read("users"), w.read("access"));
    w.with(Strategy::Hold, |e| {
        let outcome = e.forward();
        assert!(
            matches!(outcome, crate::migrate::RunOutcome::Migrated { .. }),
            "{outcome:?}"
        );
    });
    assert_eq!(w.read("access"), access);
    assert!(w.read("users").contains("userdb_mail=mdbox:~/mdbox"));
    assert!(!w.read("users").contains("allow_nets"));
    assert_ne!(w.read("users"), users);

    let w = World::new();
    let (users, access) = (w.read("users"), w.read("access"));
    w.fake.fail_on("fetch");
    w.with(Strategy::Hold, |e| {
        let outcome = e.forward();
        assert!(
            matches!(
                outcome,
                crate::migrate::RunOutcome::RolledBack {
                    after_failure: true,
                    ..
                }
            ),
            "{outcome:?}"
        );
    });
    assert_eq!(w.read("users"), users);
    assert_eq!(w.read("access"), access);
}

/// Dovecot 2.4: the switch writes `userdb_mail_driver` and `userdb_mail_path` together, the run
/// verifies through `-o mail_driver= -o mail_path=`, and the rollback restores the record.
#[test]
fn the_whole_run_on_dovecot_24() {
    let w = World::on(true, DovecotVersion::V2_4);
    let users = w.read("users");
    w.with(Strategy::Hold, |e| {
        let outcome = e.forward();
        assert!(
            matches!(outcome, crate::migrate::RunOutcome::Migrated { .. }),
            "{outcome:?}"
        );
    });
    let after = w.read("users");
    assert!(
        after.contains("::userdb_mail_driver=mdbox userdb_mail_path=~/mdbox\n"),
        "{after}"
    );
    assert!(!after.contains("userdb_mail="));
    assert!(w.fake.ran("-o mail_driver=mdbox -o mail_path=~/mdbox"));
    assert!(!w.fake.ran("mail_location="));
    assert_ne!(after, users);

    let w = World::on(true, DovecotVersion::V2_4);
    let users = w.read("users");
    w.fake.set_mail("mdbox:~/mdbox", &["a", "b"]);
    w.with(Strategy::Hold, |e| {
        run_step(e, StepKind::Switch).expect("switched");
        assert_eq!(
            w.fake.field(USER, "userdb_mail_driver").as_deref(),
            Some("mdbox")
        );
        assert_eq!(
            w.fake.field(USER, "userdb_mail_path").as_deref(),
            Some("~/mdbox")
        );
        undo(e, StepKind::Switch).expect("switched back");
    });
    assert_eq!(w.read("users"), users);
}

/// The defect of issue 12: a run spelled for 2.3 on a Dovecot 2.4 (which ignores
/// `-o mail_location=`) reads one storage twice; the verification must fail, not pass.
#[test]
fn a_23_spelling_on_dovecot_24_cannot_verify() {
    let w = World::on(true, DovecotVersion::V2_3);
    w.with(Strategy::Hold, |e| {
        assert!(matches!(
            run_step(e, StepKind::Verify),
            Err(StepError::SameStorage { .. })
        ));
    });
}

/// Passwd-file edits due together are one rewrite: each applied on its own, a failing one
/// (after a first field was set) changing nothing, the others committed.
#[test]
fn passwd_edits_of_a_batch_are_one_rewrite_and_a_failing_one_changes_nothing() {
    let w = World::new();
    let batcher = Batcher::default();
    let before = w.read("users");
    let set = |user: &'static str, key: &'static str, fail: bool| PasswdEdit {
        file: w.path("users"),
        edit: Box::new(move |doc: &mut PasswdFile, env: &EditEnv<'_>| {
            doc.set_extra(user.as_bytes(), key.as_bytes(), Some(b"1"), env.ids)?;
            if fail {
                // A second field that cannot be written: the first must go too.
                doc.set_extra(user.as_bytes(), b"bad", Some(b"two words"), env.ids)?;
            }
            Ok(())
        }),
    };
    let results = w.with_batcher(Strategy::Hold, Some(&batcher), |e| {
        e.commit_passwd(vec![
            set("alice@x.test", "first", false),
            set("bob@x.test", "second", true),
            set("bob@x.test", "third", false),
        ])
    });
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "{results:?}");
    let after = w.read("users");
    let home = w.path("home");
    let want = before
        .replace(&format!("{home}::\n"), &format!("{home}::first=1\n"))
        .replace(
            &format!("{home}/bob::\n"),
            &format!("{home}/bob::third=1\n"),
        );
    assert_ne!(want, before);
    assert_eq!(after, want);
    assert_eq!(
        (batcher.passwd_edits(), batcher.passwd_transactions()),
        (3, 1)
    );
}
