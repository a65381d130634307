//! Running a plan: each step journaled before it acts and after, every step safe to repeat
//! (resume re-runs the step that was interrupted), and undone in reverse on failure or on
//! `rollback`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use mailmig_core::dovecot::{IdResolver, PasswdOptions};
use mailmig_core::hold::{apply_hold, list_holds, plan_hold_keys, remove_holds_for_keys};
use mailmig_core::login::{self, Dovecot};
use mailmig_core::migrate::journal::{self, Event, Journal, Outcome, Record, RunHeader, RunState};
use mailmig_core::migrate::runs;
use mailmig_core::migrate::verify::{self, Expect, MailState};
use mailmig_core::migrate::{Plan, StepKind, Strategy};
use mailmig_core::postfix::{postmap_rebuild, MapType, ParseOptions, Table};
use mailmig_core::process::{self, Argv, Output, RunError, Runner};
use mailmig_core::queue;
use mailmig_core::safe_fs::{self, read_regular};
use mailmig_core::state::StateDir;
use mailmig_core::transaction::{CommitOptions, FileTransaction};
use serde_json::{json, Value};

use super::setup::{argv, RunOptions};
use crate::exit;

/// A runner that measures the time spent in doveadm (for the "mailmig's own time" figure) and
/// bounds every command: by [`process::DEFAULT_TIMEOUT`], and while the user's mail is held by
/// the time left until the run's `--max-hold` deadline (a hung doveadm is killed, and the run
/// rolls back instead of keeping the mail held).
pub(crate) struct TimedRunner<'r> {
    pub(crate) inner: &'r (dyn Runner + Sync),
    pub(crate) doveadm_us: AtomicU64,
    pub(crate) deadline: std::sync::Mutex<Option<Instant>>,
}

impl TimedRunner<'_> {
    fn set_deadline(&self, deadline: Option<Instant>) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = deadline;
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline.lock().ok().and_then(|d| *d)
    }

    /// Run with a limit of our own (a long copy before the hold).
    fn run_long(&self, argv: &Argv, limit: Duration) -> Result<Output, RunError> {
        self.timed(argv, || self.inner.run_within(argv, None, limit))
    }

    fn timed(
        &self,
        argv: &Argv,
        f: impl FnOnce() -> Result<Output, RunError>,
    ) -> Result<Output, RunError> {
        let start = Instant::now();
        let out = f();
        if argv.0.first().is_some_and(|p| p == "doveadm") {
            self.doveadm_us
                .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        out
    }
}

impl Runner for TimedRunner<'_> {
    fn run(&self, argv: &Argv, stdin: Option<&[u8]>) -> Result<Output, RunError> {
        let limit = match self.deadline() {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(process::DEFAULT_TIMEOUT),
            None => process::DEFAULT_TIMEOUT,
        };
        self.timed(argv, || self.inner.run_within(argv, stdin, limit))
    }
}

/// How long the copy before the hold (presync) may take: it holds nothing, so only a hang is
/// bounded.
const PRESYNC_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What a run reports as it goes (progress bar, JSON lines, text).
pub(crate) trait Reporter: Sync {
    fn event(&self, user: &str, run: &str, step: Option<StepKind>, what: &str, detail: &str);
}

/// Why a step failed.
#[derive(Debug)]
pub(crate) struct StepError(pub(crate) String);

impl<E: std::fmt::Display> From<E> for StepError {
    fn from(e: E) -> Self {
        StepError(e.to_string())
    }
}

type StepResult = Result<Value, StepError>;

/// How a run ended (exit code and message).
pub(crate) struct Ending {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// Test hooks at named points of a run (never set in production; no-ops otherwise):
/// `MAILMIG_FAILPOINT=NAME` kills this process with SIGKILL there (crash-recovery tests);
/// `MAILMIG_PAUSE=NAME[,NAME...]` with `MAILMIG_PAUSE_FILE=PATH` creates PATH there and waits (at most
/// 120 s) until it is removed (tests that act at an exact moment of a run).
pub(crate) fn failpoint(name: &str) {
    if std::env::var("MAILMIG_FAILPOINT").is_ok_and(|w| w == name) {
        let pid = std::process::id().to_string();
        let _ = duct::cmd("kill", ["-KILL", pid.as_str()]).run();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    if std::env::var("MAILMIG_PAUSE").is_ok_and(|w| w.split(',').any(|p| p == name)) {
        if let Ok(path) = std::env::var("MAILMIG_PAUSE_FILE") {
            if fs_err::write(&path, name).is_ok() {
                let deadline = Instant::now() + Duration::from_secs(120);
                while Utf8Path::new(&path).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// An edit of the access map: returns whether it changed anything.
pub(crate) type MapEdit = Box<dyn FnOnce(&mut Table) -> Result<bool, StepError> + Send>;

#[derive(Default)]
struct BatchState {
    queue: Vec<(u64, MapEdit)>,
    results: std::collections::HashMap<u64, Result<(), String>>,
    next: u64,
    leader: bool,
}

/// Group commit of access-map edits for runs in one process (`--users-from --jobs N`): a run
/// that finds no commit under way takes every edit queued so far and commits them in one
/// transaction with one postmap; runs arriving meanwhile are committed together by the next one.
#[derive(Default)]
pub(crate) struct MapBatcher {
    state: std::sync::Mutex<BatchState>,
    done: std::sync::Condvar,
    /// Edits committed.
    pub(crate) edits: AtomicU64,
    /// Transactions (and postmap runs) they took.
    pub(crate) commits: AtomicU64,
}

impl MapBatcher {
    fn submit(
        &self,
        edit: MapEdit,
        commit: impl Fn(Vec<MapEdit>) -> Vec<Result<(), String>>,
    ) -> Result<(), StepError> {
        let poisoned = || StepError("a map edit of another run panicked".into());
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        let id = st.next;
        st.next += 1;
        st.queue.push((id, edit));
        loop {
            if let Some(r) = st.results.remove(&id) {
                return r.map_err(StepError);
            }
            if st.leader {
                st = self.done.wait(st).map_err(|_| poisoned())?;
                continue;
            }
            st.leader = true;
            let (ids, edits): (Vec<u64>, Vec<MapEdit>) =
                std::mem::take(&mut st.queue).into_iter().unzip();
            drop(st);
            let results = commit(edits);
            st = self.state.lock().map_err(|_| poisoned())?;
            st.leader = false;
            for (i, r) in ids.into_iter().zip(results) {
                st.results.insert(i, r);
            }
            self.done.notify_all();
        }
    }
}

pub(crate) struct Engine<'a> {
    pub(crate) runner: &'a TimedRunner<'a>,
    pub(crate) state: &'a StateDir,
    pub(crate) header: RunHeader,
    pub(crate) opts: RunOptions,
    pub(crate) journal: Journal,
    pub(crate) records: Vec<Record>,
    pub(crate) parse: ParseOptions,
    pub(crate) ids: Box<dyn IdResolver>,
    pub(crate) reporter: &'a dyn Reporter,
    pub(crate) started: Instant,
    pub(crate) batcher: Option<&'a MapBatcher>,
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// A flock held while a map is edited and rebuilt, so that runs in parallel never rebuild a
/// map from a stale source.
struct MapLock(#[allow(dead_code)] fs_err::File);

impl MapLock {
    fn take(state: &StateDir) -> Result<Self, StepError> {
        let f = state.lock_file("locks", "postfix-maps.lock")?;
        f.file().lock()?;
        Ok(Self(f))
    }
}

impl Engine<'_> {
    fn plan(&self) -> &Plan {
        &self.header.plan
    }

    fn user(&self) -> &str {
        &self.header.plan.user
    }

    fn record(
        &mut self,
        step: Option<StepKind>,
        event: Event,
        data: Value,
        message: Option<String>,
    ) -> Result<(), StepError> {
        let mut r = match step {
            Some(s) => Record::new(s, event, data),
            None => Record {
                time: mailmig_core::transaction::utc_now_rfc3339(),
                step: None,
                event,
                data,
                message: None,
                outcome: None,
            },
        };
        r.message = message;
        self.journal.append(&r)?;
        self.records.push(r);
        Ok(())
    }

    fn state(&self) -> RunState {
        RunState::of(&self.records)
    }

    /// The data of the first start record of `step` that has any (the pre-image from the first
    /// attempt, before a crash may have acted).
    fn first_start_data(&self, step: StepKind) -> Option<Value> {
        self.records
            .iter()
            .find(|r| r.step == Some(step) && r.event == Event::Start && !r.data.is_null())
            .map(|r| r.data.clone())
    }

    fn report(&self, step: Option<StepKind>, what: &str, detail: &str) {
        self.reporter
            .event(self.user(), &self.header.run, step, what, detail);
    }

    fn dovecot(&self) -> Dovecot<'_> {
        Dovecot {
            config: self.opts.dovecot_config.clone(),
            runner: self.runner,
        }
    }

    /// `doveadm sync|backup ... -u USER DEST` for this run's user.
    fn dsync(&self, verb: &[&str], dest: &str) -> Argv {
        argv::dsync(&self.opts.dovecot_config, verb, self.user(), dest)
    }

    /// Run doveadm; exit 2 (changes during the sync) is retried; errors printed with exit 0
    /// are errors.
    fn doveadm_checked(&self, argv: &Argv, retries: u32) -> Result<Output, StepError> {
        self.doveadm_checked_within(argv, retries, None)
    }

    /// [`Self::doveadm_checked`] with a limit of its own (the presync's).
    fn doveadm_checked_within(
        &self,
        argv: &Argv,
        retries: u32,
        limit: Option<Duration>,
    ) -> Result<Output, StepError> {
        let mut attempt = 0;
        loop {
            let out = match limit {
                Some(l) => self.runner.run_long(argv, l)?,
                None => self.runner.run(argv, None)?,
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|l| l.contains("Error:") || l.contains("Panic:") || l.contains("Fatal:"))
                .collect();
            match out.code {
                Some(2) if attempt < retries => {
                    attempt += 1;
                    sleep_ms(200 * u64::from(attempt));
                }
                Some(0) if errors.is_empty() => return Ok(out),
                code => {
                    return Err(StepError(format!(
                        "`{argv}` failed (exit {}){}",
                        code.map_or("by signal".to_string(), |c| c.to_string()),
                        if stderr.trim().is_empty() {
                            String::new()
                        } else {
                            format!(": {}", stderr.trim())
                        }
                    )))
                }
            }
        }
    }

    fn mail_state(&self, location: &str) -> Result<MailState, StepError> {
        let config = &self.opts.dovecot_config;
        let status =
            self.doveadm_checked(&argv::mailbox_status(config, self.user(), location), 0)?;
        let fetch = self.doveadm_checked(&argv::message_guids(config, self.user(), location), 0)?;
        Ok(verify::parse_state(
            &String::from_utf8_lossy(&status.stdout),
            &String::from_utf8_lossy(&fetch.stdout),
        )?)
    }

    fn from(&self) -> String {
        self.plan().from.to_string()
    }

    fn to(&self) -> String {
        self.plan().to.to_string()
    }

    fn postfix_dir(&self) -> Result<Utf8PathBuf, StepError> {
        self.opts
            .postfix_config
            .clone()
            .ok_or_else(|| StepError("no Postfix configuration directory recorded".into()))
    }

    fn map(&self) -> Result<(Utf8PathBuf, MapType), StepError> {
        let m = self
            .opts
            .access_map
            .clone()
            .ok_or_else(|| StepError("no access map recorded".into()))?;
        let t = match &self.opts.map_type {
            Some(t) => t.parse::<MapType>().map_err(|e| StepError(e.to_string()))?,
            None => MapType::detect(&m),
        };
        Ok((m, t))
    }

    /// Edit the access map under the map lock and rebuild it — with other runs' edits in one
    /// transaction and one postmap when a batch shares a [`MapBatcher`].
    fn edit_access(&self, edit: MapEdit, point: &str) -> Result<(), StepError> {
        match self.batcher {
            Some(b) => b.submit(edit, |edits| self.commit_edits(edits, point)),
            None => self
                .commit_edits(vec![edit], point)
                .pop()
                .unwrap_or(Ok(()))
                .map_err(StepError),
        }
    }

    /// Apply edits to the access map in one transaction (each on its own copy first: a failing
    /// edit changes nothing), then one postmap. One result per edit.
    fn commit_edits(&self, edits: Vec<MapEdit>, point: &str) -> Vec<Result<(), String>> {
        let n = edits.len();
        let all = |e: String| (0..n).map(|_| Err(e.clone())).collect::<Vec<_>>();
        let (map, map_type) = match self.map() {
            Ok(m) => m,
            Err(e) => return all(e.0),
        };
        let lock = match MapLock::take(self.state) {
            Ok(l) => l,
            Err(e) => return all(e.0),
        };
        let tx = match FileTransaction::prepare(&map) {
            Ok(t) => t,
            Err(e) => return all(e.to_string()),
        };
        let original = tx.original().to_vec();
        let mut table = Table::parse(original.clone(), &self.parse);
        let mut changed = false;
        let mut results = Vec::with_capacity(n);
        for edit in edits {
            let mut copy = table.clone();
            match edit(&mut copy) {
                Ok(c) => {
                    changed |= c;
                    table = copy;
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e.0)),
            }
        }
        if changed {
            if let Err(e) = tx.commit(&table.render(), &CommitOptions::default()) {
                return all(e.to_string());
            }
        } else {
            drop(tx);
        }
        failpoint(&format!("{point}:map-written"));
        if map_type.needs_postmap() {
            let dir = match self.postfix_dir() {
                Ok(d) => d,
                Err(e) => return all(e.0),
            };
            match postmap_rebuild(self.runner, Some(&dir), map_type, &map) {
                Ok(warnings) => {
                    for w in warnings {
                        self.report(None, "warning", &w);
                    }
                }
                Err(e) => {
                    // The indexed map was not rebuilt, so smtpd never saw the edit: put the
                    // source back as it was, so that the step leaves nothing behind.
                    if changed {
                        if let Err(r) = FileTransaction::prepare(&map)
                            .and_then(|t| t.commit(&original, &CommitOptions::default()))
                        {
                            return all(format!("{e}; and putting {map} back failed: {r}"));
                        }
                    }
                    return all(e.to_string());
                }
            }
        }
        drop(lock);
        if let Some(b) = self.batcher {
            b.edits.fetch_add(n as u64, Ordering::Relaxed);
            b.commits.fetch_add(1, Ordering::Relaxed);
        }
        results
    }

    /// Put queued mail for the user that is not on hold yet on hold; the IDs are journaled
    /// before postsuper runs.
    fn hold_queue(&mut self, step: StepKind) -> Result<usize, StepError> {
        let dir = self.postfix_dir()?;
        let pending =
            queue::pending_for_user(self.runner, &dir, self.user(), &self.opts.delimiters)?;
        if pending.is_empty() {
            return Ok(0);
        }
        self.record(
            Some(step),
            Event::Start,
            json!({ "queue_ids": pending }),
            None,
        )?;
        failpoint(&format!("{step}:queue-ids-recorded"));
        let held = queue::hold_ids(self.runner, &dir, &pending)?;
        Ok(held.len())
    }

    fn recorded_queue_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for r in &self.records {
            if r.event != Event::Start {
                continue;
            }
            if let Some(list) = r.data.get("queue_ids").and_then(Value::as_array) {
                for id in list.iter().filter_map(Value::as_str) {
                    if !ids.iter().any(|i| i == id) {
                        ids.push(id.to_string());
                    }
                }
            }
        }
        ids
    }

    /// Release the messages this run held (and messages other runs handed over), except those
    /// with a recipient still under another mailmig hold: those are handed over to that run.
    ///
    /// Runs under the map lock: which users are still held and which messages are handed over
    /// must not change between reading them and acting on them.
    fn release_queue(&self) -> Result<(usize, usize), StepError> {
        let dir = self.postfix_dir()?;
        let (map, _) = self.map()?;
        let _lock = MapLock::take(self.state)?;
        const HANDOVER: &str = "queue/handover";
        let mut ids = self.recorded_queue_ids();
        // What smtpd held because of this run's HOLD lines: held mail for the user that arrived
        // after they were written.
        if let Some(since) = self
            .first_start_data(StepKind::Hold)
            .and_then(|d| d.get("since_epoch").and_then(Value::as_i64))
        {
            for id in queue::held_for_user_since(
                self.runner,
                &dir,
                self.user(),
                &self.opts.delimiters,
                since,
            )? {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        for name in self.state.names(HANDOVER)? {
            if queue::is_queue_id(&name) && !ids.contains(&name) {
                ids.push(name);
            }
        }
        let access = Table::parse(read_regular(&map)?, &self.parse);
        let others: Vec<String> = list_holds(&access)
            .into_iter()
            .flat_map(|h| h.users)
            .filter(|u| !u.eq_ignore_ascii_case(self.user()))
            .collect();
        let (released, kept) =
            queue::release(self.runner, &dir, &ids, &others, &self.opts.delimiters)?;
        for id in &kept {
            self.state.write(HANDOVER, id, self.user().as_bytes())?;
        }
        for id in ids.iter().filter(|i| !kept.contains(i)) {
            let _ = self.state.remove(HANDOVER, id);
        }
        Ok((released.len(), kept.len()))
    }

    /// Restore the lock-out fields, if the lock-out state file says they are in place.
    fn enable_login(&self) -> Result<(), StepError> {
        let options = PasswdOptions::default();
        let key = login::state_key(self.user(), &options)?;
        if login::is_disabled(self.state, &key)? {
            let enabled = login::enable(
                &self.dovecot(),
                self.state,
                &options,
                self.ids.as_ref(),
                self.user(),
                Some(&self.opts.passwd_file),
            )?;
            if let login::Enabled::NeverLockedOut { state_file } = enabled {
                self.report(
                    Some(StepKind::LockOut),
                    "warning",
                    &format!("the lock-out record {state_file} was unreadable; the user's record carries no lock-out, so the lock-out never happened (record removed)"),
                );
            }
        }
        Ok(())
    }

    fn set_userdb_mail(&self, value: Option<Option<&str>>, point: &str) -> Result<(), StepError> {
        let tx = FileTransaction::prepare(&self.opts.passwd_file)?;
        let mut file = mailmig_core::dovecot::PasswdFile::parse(
            tx.original().to_vec(),
            &PasswdOptions::default(),
        );
        let user = self.user().as_bytes().to_vec();
        match value {
            Some(v) => file.set_extra(
                &user,
                b"userdb_mail",
                v.map(str::as_bytes),
                self.ids.as_ref(),
            )?,
            None => {
                file.remove_extra(&user, b"userdb_mail", self.ids.as_ref())?;
            }
        }
        let new = file.render();
        if new != tx.original() {
            tx.commit(&new, &CommitOptions::default())?;
        }
        failpoint(&format!("{point}:passwd-written"));
        if self.opts.auth_cache {
            self.dovecot().flush_auth_cache(self.user())?;
        }
        Ok(())
    }

    fn userdb_mail_now(&self) -> Result<Option<Option<String>>, StepError> {
        let bytes = read_regular(&self.opts.passwd_file)?;
        let file = mailmig_core::dovecot::PasswdFile::parse(bytes, &PasswdOptions::default());
        let entry = file
            .lookup(self.user().as_bytes(), self.ids.as_ref())
            .ok_or_else(|| {
                StepError(format!(
                    "{} has no record in {}",
                    self.user(),
                    self.opts.passwd_file
                ))
            })?;
        Ok(entry
            .extra()
            .iter()
            .find(|f| f.key.as_ref() == b"userdb_mail")
            .map(|f| {
                f.value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            }))
    }

    fn wait_mail_location(&self, want: &str) -> Result<(), StepError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.runner.run(
                &argv::user_field(&self.opts.dovecot_config, self.user(), "mail"),
                None,
            )?;
            if out.code == Some(0) && String::from_utf8_lossy(&out.stdout).trim() == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StepError(format!(
                    "Dovecot does not show mail location {want} for {} after 10 s",
                    self.user()
                )));
            }
            sleep_ms(100);
        }
    }

    fn target_path(&self) -> String {
        self.plan().to.expanded_path(&self.opts.home)
    }

    // ------------------------------------------------------------------ forward steps

    fn start_data(&self, step: StepKind) -> Result<Value, StepError> {
        Ok(match step {
            StepKind::Hold => {
                let (map, _) = self.map()?;
                let access = Table::parse(read_regular(&map)?, &self.parse);
                let keys = self.hold_key_bytes();
                let plan = plan_hold_keys(&access, self.user(), &keys);
                let text = |v: &Vec<Vec<u8>>| {
                    v.iter()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .collect::<Vec<_>>()
                };
                json!({
                    "keys": text(&plan.add).into_iter().chain(text(&plan.share)).collect::<Vec<_>>(),
                    "already": text(&plan.already),
                    "since_epoch": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                })
            }
            StepKind::Switch => {
                let previous = self.userdb_mail_now()?;
                json!({ "previous_userdb_mail": previous })
            }
            StepKind::LockOut => {
                let key = login::state_key(self.user(), &PasswdOptions::default())?;
                json!({ "state_file": login::state_file(self.state, &key) })
            }
            _ => Value::Null,
        })
    }

    fn do_step(&mut self, step: StepKind) -> StepResult {
        let user = self.user().to_string();
        let to = self.to();
        let from = self.from();
        let live = self.plan().strategy == Strategy::Live;
        match step {
            StepKind::Preflight => {
                // Checked again when the run starts (or resumes before anything happened): a
                // target that filled up meanwhile would be overwritten by `doveadm backup`.
                let target = self.target_path();
                if fs_err::read_dir(&target).is_ok_and(|mut e| e.next().is_some()) {
                    return Err(StepError(format!(
                        "the target {target} exists and is not empty; mailmig never overwrites mail"
                    )));
                }
                Ok(json!({ "from": from, "to": to }))
            }
            StepKind::Presync => {
                let t = Instant::now();
                let long = Some(PRESYNC_TIMEOUT);
                if live {
                    self.doveadm_checked_within(&self.dsync(&["sync"], &to), 5, long)?;
                    failpoint("presync:first-sync");
                    self.doveadm_checked_within(&self.dsync(&["sync"], &to), 5, long)?;
                } else {
                    self.doveadm_checked_within(&self.dsync(&["backup"], &to), 5, long)?;
                }
                Ok(json!({ "ms": t.elapsed().as_millis() as u64 }))
            }
            StepKind::Hold => {
                let keys = self.hold_key_bytes();
                let since = mailmig_core::transaction::utc_now_rfc3339();
                let (action, reason) = (self.opts.hold_action, self.opts.reason.clone());
                let (u, k) = (user.clone(), keys.clone());
                self.edit_access(
                    Box::new(move |table| {
                        let plan = plan_hold_keys(table, &u, &k);
                        if !plan.conflicts.is_empty() {
                            let conflicts: Vec<String> = plan
                                .conflicts
                                .iter()
                                .map(|(k, v, _)| {
                                    format!(
                                        "{} {}",
                                        String::from_utf8_lossy(k),
                                        String::from_utf8_lossy(v)
                                    )
                                })
                                .collect();
                            return Err(StepError(format!(
                                "the access map has other rules for: {}",
                                conflicts.join("; ")
                            )));
                        }
                        Ok(apply_hold(table, &plan, action, &since, &reason)? > 0)
                    }),
                    "hold",
                )?;
                failpoint("hold:postmapped");
                let queued = self.hold_queue(StepKind::Hold)?;
                Ok(
                    json!({ "addresses": keys.len(), "queued_held": queued, "at_ms": self.started.elapsed().as_millis() as u64 }),
                )
            }
            StepKind::LockOut => {
                login::disable(
                    &self.dovecot(),
                    self.state,
                    &login::DisableRequest {
                        passwd_file: &self.opts.passwd_file,
                        options: &PasswdOptions::default(),
                        ids: self.ids.as_ref(),
                        user: &user,
                        method: self.opts.lock,
                        reason: &self.opts.reason,
                    },
                )?;
                Ok(Value::Null)
            }
            StepKind::FinalSync => {
                let t = Instant::now();
                if live {
                    // The new location is local now; kick sessions still on the old one, then
                    // a two-way sync against the old location.
                    self.dovecot().kick(&user)?;
                    self.doveadm_checked(&self.dsync(&["sync"], &from), 5)?;
                } else {
                    self.hold_queue(StepKind::FinalSync)?;
                    self.doveadm_checked(&self.dsync(&["backup"], &to), 5)?;
                }
                failpoint("final-sync:synced");
                Ok(json!({ "ms": t.elapsed().as_millis() as u64 }))
            }
            StepKind::Verify => {
                let expect = if live {
                    Expect::Contains
                } else {
                    Expect::Equal
                };
                let mut attempt = 0;
                loop {
                    let source = self.mail_state(&from)?;
                    let target = self.mail_state(&to)?;
                    let problems = verify::compare(&source, &target, expect);
                    if problems.is_empty() {
                        return Ok(json!({
                            "mailboxes": source.len(),
                            "messages": verify::total_messages(&source),
                            "target_messages": verify::total_messages(&target),
                        }));
                    }
                    attempt += 1;
                    if attempt >= 3 {
                        return Err(StepError(format!(
                            "old and new location differ: {}",
                            problems.join("; ")
                        )));
                    }
                    self.report(Some(step), "retry", &problems.join("; "));
                    if live {
                        self.doveadm_checked(&self.dsync(&["sync"], &from), 5)?;
                    } else {
                        self.doveadm_checked(&self.dsync(&["backup"], &to), 5)?;
                    }
                }
            }
            StepKind::Switch => {
                self.set_userdb_mail(Some(Some(&to)), "switch")?;
                self.wait_mail_location(&to)?;
                if live {
                    self.dovecot().kick(&user)?;
                }
                Ok(Value::Null)
            }
            StepKind::CatchUp => {
                if !live {
                    self.hold_queue(StepKind::CatchUp)?;
                }
                // An LMTP delivery that looked the user up before the switch may still be
                // writing into the old location.
                sleep_ms(1000);
                let mut attempt = 0;
                loop {
                    let source = self.mail_state(&from)?;
                    let target = self.mail_state(&to)?;
                    let missing = verify::compare(&source, &target, Expect::Contains);
                    if missing.is_empty() {
                        return Ok(
                            json!({ "carried_over_passes": attempt, "messages": verify::total_messages(&target) }),
                        );
                    }
                    if attempt == 2 {
                        return Err(StepError(format!(
                            "mail in the old location could not be carried over: {}",
                            missing.join("; ")
                        )));
                    }
                    self.report(Some(step), "carry-over", &missing.join("; "));
                    self.doveadm_checked(&self.dsync(&["sync", "-1", "-R"], &from), 5)?;
                    attempt += 1;
                }
            }
            StepKind::Release => {
                self.edit_access(self.unhold_edit(), "release")?;
                failpoint("release:holds-removed");
                self.enable_login()?;
                failpoint("release:login-enabled");
                let (released, kept) = self.release_queue()?;
                failpoint("release:queue-released");
                Ok(
                    json!({ "released": released, "kept_for_other_runs": kept, "at_ms": self.started.elapsed().as_millis() as u64 }),
                )
            }
            StepKind::Done => {
                let done = |s: StepKind, k: &str| {
                    journal::data_of(&self.records, s, Event::Done)
                        .and_then(|d| d.get(k).and_then(Value::as_u64))
                };
                let held_ms = match (
                    done(StepKind::Hold, "at_ms"),
                    done(StepKind::Release, "at_ms"),
                ) {
                    (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                    _ => None,
                };
                Ok(json!({
                    "total_ms": self.started.elapsed().as_millis() as u64,
                    "doveadm_ms": self.runner.doveadm_us.load(Ordering::Relaxed) / 1000,
                    "held_ms": held_ms,
                    "presync_ms": done(StepKind::Presync, "ms"),
                    "final_sync_ms": done(StepKind::FinalSync, "ms"),
                }))
            }
        }
    }

    /// The edit that removes the holds this run added (and its tag from shared lines).
    fn unhold_edit(&self) -> MapEdit {
        let (user, keys) = (self.user().to_string(), self.added_hold_keys());
        Box::new(move |table| Ok(!remove_holds_for_keys(table, &user, &keys)?.is_empty()))
    }

    /// Every address to hold, from the plan.
    fn hold_key_bytes(&self) -> Vec<Vec<u8>> {
        self.opts
            .hold_keys
            .iter()
            .map(|k| k.clone().into_bytes())
            .collect()
    }

    fn added_hold_keys(&self) -> Vec<Vec<u8>> {
        self.first_start_data(StepKind::Hold)
            .and_then(|d| d.get("keys").cloned())
            .and_then(|k| serde_json::from_value::<Vec<String>>(k).ok())
            .unwrap_or_default()
            .into_iter()
            .map(String::into_bytes)
            .collect()
    }

    /// Run every step not done yet. On failure, roll back (exit 75) or report what the admin
    /// must do (exit 70).
    pub(crate) fn forward(&mut self) -> Ending {
        let sequence = StepKind::sequence(self.plan().strategy, self.opts.presync);
        let max_hold = Duration::from_secs(self.opts.max_hold_secs);
        for step in sequence {
            if self.state().done.contains(&step) {
                continue;
            }
            // The held window: from the hold (or this process's start, when resuming inside
            // it) to the release, bounded by --max-hold.
            let held = self.state().started.contains(&StepKind::Hold)
                || (step == StepKind::Hold && self.plan().strategy == Strategy::Hold);
            if step == StepKind::Release || step == StepKind::Done {
                self.runner.set_deadline(None);
            } else if held && self.runner.deadline().is_none() {
                self.runner.set_deadline(Some(Instant::now() + max_hold));
            }
            if let Some(d) = self.runner.deadline() {
                if Instant::now() > d && step != StepKind::Hold {
                    let msg = format!(
                        "step {step} not started: the user's mail has been held longer than --max-hold ({} s)",
                        max_hold.as_secs()
                    );
                    let _ = self.record(Some(step), Event::Failed, Value::Null, Some(msg.clone()));
                    self.report(Some(step), "failed", &msg);
                    return self.roll_back_after(msg);
                }
            }
            let data = match self.first_start_data(step) {
                Some(d) => Ok(d),
                None => self.start_data(step),
            };
            let result = data.and_then(|data| {
                self.record(Some(step), Event::Start, data, None)?;
                failpoint(&format!("{step}:started"));
                self.report(Some(step), "start", "");
                self.do_step(step)
            });
            match result {
                Ok(data) => {
                    let detail = if data.is_null() {
                        String::new()
                    } else {
                        data.to_string()
                    };
                    if let Err(e) = self.record(Some(step), Event::Done, data, None) {
                        return self.needs_admin(&format!("cannot write the journal: {}", e.0));
                    }
                    self.report(Some(step), "done", &detail);
                    failpoint(&format!("{step}:done"));
                }
                Err(e) => {
                    let msg = format!("step {step} failed: {}", e.0);
                    let _ = self.record(Some(step), Event::Failed, Value::Null, Some(msg.clone()));
                    self.report(Some(step), "failed", &e.0);
                    if self.state().started.contains(&StepKind::Release) {
                        return self.needs_admin(&format!("{msg}; the switch is done and the release started, so the run is past rollback: fix the cause and run `mailmig resume {}`", self.header.run));
                    }
                    return self.roll_back_after(msg);
                }
            }
        }
        let total = self.started.elapsed();
        let doveadm_us = self.runner.doveadm_us.load(Ordering::Relaxed);
        let summary = self.summary(total, doveadm_us);
        self.close(Outcome::Done, &summary);
        Ending {
            code: exit::OK,
            message: summary,
        }
    }

    /// A step failed (`msg`): undo every step, 75 when that worked.
    fn roll_back_after(&mut self, msg: String) -> Ending {
        let rb = self.backward();
        if rb.code == exit::OK {
            Ending {
                code: exit::TEMPFAIL,
                message: format!("{msg}; rolled back: {}", rb.message),
            }
        } else {
            Ending {
                code: rb.code,
                message: format!("{msg}; {}", rb.message),
            }
        }
    }

    fn summary(&self, total: Duration, doveadm_us: u64) -> String {
        let done = |s: StepKind| {
            journal::data_of(&self.records, s, Event::Done)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let verify = done(StepKind::Verify);
        let hold_at = done(StepKind::Hold).get("at_ms").and_then(Value::as_u64);
        let release_at = done(StepKind::Release).get("at_ms").and_then(Value::as_u64);
        let mut s = format!(
            "{}: migrated from {} to {} ({} strategy); verified {} mailbox(es), {} message(s): message GUIDs, UIDVALIDITY{} identical",
            self.user(),
            self.plan().from,
            self.plan().to,
            self.plan().strategy,
            verify.get("mailboxes").and_then(Value::as_u64).unwrap_or(0),
            verify.get("messages").and_then(Value::as_u64).unwrap_or(0),
            if self.plan().strategy == Strategy::Hold { ", UIDNEXT" } else { "" },
        );
        if let (Some(a), Some(b)) = (hold_at, release_at) {
            s.push_str(&format!(
                "; mail held for {:.2} s",
                (b.saturating_sub(a)) as f64 / 1000.0
            ));
        }
        s.push_str(&format!(
            "; total {:.2} s, of which doveadm {:.2} s",
            total.as_secs_f64(),
            doveadm_us as f64 / 1e6
        ));
        s
    }

    fn close(&mut self, outcome: Outcome, message: &str) {
        let _ = self.journal.append(&Record {
            time: mailmig_core::transaction::utc_now_rfc3339(),
            step: None,
            event: Event::Closed,
            data: Value::Null,
            message: Some(message.to_string()),
            outcome: Some(outcome),
        });
        if outcome != Outcome::NeedsAdmin {
            let _ = runs::clear_marker(self.state, self.user());
        }
        self.report(
            None,
            match outcome {
                Outcome::Done => "migrated",
                Outcome::RolledBack => "rolled-back",
                Outcome::NeedsAdmin => "needs-admin",
            },
            message,
        );
    }

    fn needs_admin(&mut self, message: &str) -> Ending {
        let _ = self.record(None, Event::Failed, Value::Null, Some(message.to_string()));
        self.report(None, "needs-admin", message);
        Ending {
            code: exit::SOFTWARE,
            message: message.to_string(),
        }
    }

    // ------------------------------------------------------------------ undo

    fn undo_step(&mut self, step: StepKind) -> Result<(), StepError> {
        let from = self.from();
        let to = self.to();
        match step {
            StepKind::Switch => {
                let previous: Option<Option<String>> = self
                    .first_start_data(StepKind::Switch)
                    .and_then(|d| d.get("previous_userdb_mail").cloned())
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or(None);
                let now = self.userdb_mail_now()?;
                if now.as_ref().and_then(|v| v.as_deref()) == Some(to.as_str()) {
                    match &previous {
                        None => self.set_userdb_mail(None, "undo-switch")?,
                        Some(v) => self.set_userdb_mail(Some(v.as_deref()), "undo-switch")?,
                    }
                }
                self.wait_mail_location(&from)?;
                // Mail the new location got after the switch goes back with the user.
                let source = self.mail_state(&from)?;
                let target = self.mail_state(&to)?;
                if !verify::compare(&target, &source, Expect::Contains).is_empty() {
                    self.doveadm_checked(&self.dsync(&["sync", "-1", "-R"], &to), 5)?;
                    let source = self.mail_state(&from)?;
                    let problems = verify::compare(&target, &source, Expect::Contains);
                    if !problems.is_empty() {
                        return Err(StepError(format!(
                            "mail that reached {to} could not be carried back to {from}: {}",
                            problems.join("; ")
                        )));
                    }
                }
                Ok(())
            }
            StepKind::LockOut => {
                self.enable_login()?;
                Ok(())
            }
            StepKind::Hold => {
                // An edit that never happened needs no undo (and no lock in a directory that
                // may be the reason the hold failed).
                let (map, _) = self.map()?;
                let access = Table::parse(read_regular(&map)?, &self.parse);
                let user = self.user();
                let ours = list_holds(&access)
                    .iter()
                    .any(|h| h.users.iter().any(|u| u.eq_ignore_ascii_case(user)));
                if ours {
                    self.edit_access(self.unhold_edit(), "undo-hold")?;
                }
                // Queue IDs held by later steps are released here too: by now the user is back
                // on the old location and can log in.
                self.release_queue()?;
                Ok(())
            }
            StepKind::Presync => {
                // Nothing was ever delivered into the target before the switch (undone by now):
                // it is a copy. It is moved aside, never deleted.
                let target = self.target_path();
                let resolved = safe_fs::resolve(Utf8Path::new(target.trim_end_matches('/')))?;
                if resolved.meta.is_some() {
                    let aside =
                        format!("{}.mailmig-rolled-back-{}", resolved.name, self.header.run);
                    resolved.dir.rename_noreplace(&resolved.name, &aside)?;
                    resolved.dir.sync()?;
                    let aside = resolved.dir.path().join(aside);
                    self.report(Some(step), "moved-aside", aside.as_str());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Undo every step that started, in reverse.
    pub(crate) fn backward(&mut self) -> Ending {
        // Undo commands get their ordinary limits, not what is left of the hold window.
        self.runner.set_deadline(None);
        let state = self.state();
        if state.started.contains(&StepKind::Release) {
            // Past the point of no return: the holds may be gone and released mail delivered
            // into the new location. The clean state is the finished migration.
            self.report(
                None,
                "completing",
                "the release had started: completing the migration instead of rolling back",
            );
            let ending = self.forward();
            return Ending {
                code: ending.code,
                message: format!(
                    "the release had started, so the migration was completed instead of rolled back: {}",
                    ending.message
                ),
            };
        }
        let mut steps = state.started.clone();
        // A presync undo also covers syncs that wrote into the target without a presync step.
        if !steps.contains(&StepKind::Presync)
            && (steps.contains(&StepKind::FinalSync) || steps.contains(&StepKind::Verify))
        {
            steps.insert(0, StepKind::Presync);
        }
        steps.sort();
        for step in steps.into_iter().rev() {
            let undo = self
                .record(Some(step), Event::UndoStart, Value::Null, None)
                .and_then(|()| {
                    failpoint(&format!("undo-{step}:started"));
                    self.undo_step(step)
                });
            match undo {
                Ok(()) => {
                    if let Err(e) = self.record(Some(step), Event::Undone, Value::Null, None) {
                        return self.needs_admin(&format!("cannot write the journal: {}", e.0));
                    }
                    self.report(Some(step), "undone", "");
                }
                Err(e) => {
                    let msg = format!(
                        "undoing step {step} failed: {}. The journal {} records what is still in place; fix the cause and run `mailmig rollback {}` (or `mailmig resume {}`)",
                        e.0,
                        self.journal.path(),
                        self.header.run,
                        self.header.run
                    );
                    return self.needs_admin(&msg);
                }
            }
        }
        let msg = format!(
            "{}: everything undone; the user is at {} again",
            self.user(),
            self.from()
        );
        self.close(Outcome::RolledBack, &msg);
        Ending {
            code: exit::OK,
            message: msg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edits submitted while a commit is under way are committed together by the next one, and
    /// every submitter gets its own edit's result.
    #[test]
    fn batcher_groups_waiting_edits_and_returns_each_result() {
        let batcher = MapBatcher::default();
        let commits = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for i in 0..8u32 {
                let (batcher, commits) = (&batcher, &commits);
                scope.spawn(move || {
                    let edit: MapEdit = Box::new(move |_| {
                        if i == 3 {
                            Err(StepError("edit 3 refused".into()))
                        } else {
                            Ok(true)
                        }
                    });
                    let r = batcher.submit(edit, |edits| {
                        commits.lock().expect("lock").push(edits.len());
                        std::thread::sleep(Duration::from_millis(50));
                        let mut table = Table::parse(
                            Vec::new(),
                            &mailmig_core::postfix::ParseOptions::default(),
                        );
                        edits
                            .into_iter()
                            .map(|e| e(&mut table).map(|_| ()).map_err(|e| e.0))
                            .collect()
                    });
                    assert_eq!(r.is_err(), i == 3, "edit {i}: {r:?}");
                });
            }
        });
        let commits = commits.into_inner().expect("lock");
        assert_eq!(commits.iter().sum::<usize>(), 8);
        assert!(commits.len() < 8, "no edits were grouped: {commits:?}");
    }
}
