//! Running a plan: each step journaled before it acts and after, every step safe to repeat
//! (resume re-runs the step that was interrupted), and undone in reverse on failure or on
//! rollback. The steps themselves, forward and undo side by side, are in [`super::steps`].

mod api;
mod batch;
mod runner;

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

pub use self::api::{
    resume, rollback, run_all, start, status, unfinished_runs, BatchOptions, BatchResult, Ending,
    NeverStarted, RunLabel, RunStatus, UnfinishedRuns,
};
pub use self::batch::Batcher;
#[cfg(test)]
pub(crate) use self::batch::{EditEnv, PasswdEdit};
pub(crate) use self::batch::{MapEdit, MapLock};
pub use self::runner::TimedRunner;

use super::error::StepError;
use super::journal::{
    self, Event, Journal, Outcome, Record, RunFigures, RunHeader, RunState, StepData,
};
use super::report::{Event as ReportEvent, EventKind, Reporter};
use super::runs;
use super::steps;
use super::verify::{self, MailState};
use super::{Location, Plan, RunOptions, StepKind, Strategy};
use crate::dovecot::IdResolver;
use crate::login::Dovecot;
use crate::postfix::{MapType, ParseOptions};
use crate::process::{Argv, Output};
use crate::state::StateDir;

/// Test hooks at named points of a run, compiled only with the `failpoints` feature (the test
/// suite's): `MAILMIG_FAILPOINT=NAME` kills this process with SIGKILL there (crash-recovery
/// tests); `MAILMIG_PAUSE=NAME[,NAME...]` with `MAILMIG_PAUSE_FILE=PATH` creates PATH there and
/// waits (at most 120 s) until it is removed (tests that act at an exact moment of a run).
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    if std::env::var("MAILMIG_FAILPOINT").is_ok_and(|w| w == name) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    if std::env::var("MAILMIG_PAUSE").is_ok_and(|w| w.split(',').any(|p| p == name)) {
        if let Ok(path) = std::env::var("MAILMIG_PAUSE_FILE") {
            if fs_err::write(&path, name).is_ok() {
                let deadline = Instant::now() + Duration::from_secs(120);
                while camino::Utf8Path::new(&path).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// Test hooks: compiled out without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunOutcome {
    /// The user is migrated.
    Migrated {
        /// The run.
        run: String,
        /// The verification summary.
        summary: String,
        /// How long it took, how long mail was held.
        figures: RunFigures,
    },
    /// Every step was undone: after a failure (`after_failure`, the message says which step
    /// and why), or because a rollback was asked for.
    RolledBack {
        /// The run.
        run: String,
        /// What happened.
        message: String,
        /// A step failed (not a requested rollback).
        after_failure: bool,
    },
    /// A step failed and its undo failed too: the message says what is in place and what to
    /// do; `resume` or `rollback` continue after the fix.
    NeedsAdmin {
        /// The run.
        run: String,
        /// What to do.
        message: String,
    },
    /// The run had ended already (resume or rollback of an ended run).
    AlreadyEnded {
        /// The run.
        run: String,
        /// How it ended.
        outcome: Outcome,
    },
}

impl RunOutcome {
    /// The run's id.
    pub fn run(&self) -> &str {
        match self {
            Self::Migrated { run, .. }
            | Self::RolledBack { run, .. }
            | Self::NeedsAdmin { run, .. }
            | Self::AlreadyEnded { run, .. } => run,
        }
    }

    /// The message to show.
    pub fn message(&self) -> String {
        match self {
            Self::Migrated { summary, .. } => summary.clone(),
            Self::RolledBack { message, .. } | Self::NeedsAdmin { message, .. } => message.clone(),
            Self::AlreadyEnded { run, outcome } => format!("run {run} already ended ({outcome})"),
        }
    }
}

/// What a run works with: how commands run, where state is, how names resolve, who listens.
#[derive(Clone, Copy)]
pub struct RunContext<'a> {
    /// Runs the daemons' tools.
    pub runner: &'a (dyn crate::process::Runner + Sync),
    /// The state directory.
    pub state: &'a StateDir,
    /// System user and group names (uid/gid fields such as `vmail`).
    pub ids: &'a (dyn IdResolver + Sync),
    /// Receives the events.
    pub reporter: &'a dyn Reporter,
}

/// One run being driven forward or backward.
pub(crate) struct Engine<'a> {
    pub(crate) runner: &'a TimedRunner<'a>,
    pub(crate) state: &'a StateDir,
    pub(crate) header: RunHeader,
    pub(crate) journal: Journal,
    pub(crate) records: Vec<Record>,
    pub(crate) parse: ParseOptions,
    pub(crate) ids: &'a (dyn IdResolver + Sync),
    pub(crate) reporter: &'a dyn Reporter,
    pub(crate) started: Instant,
    pub(crate) batcher: Option<&'a Batcher>,
}

impl<'a> Engine<'a> {
    pub(crate) fn plan(&self) -> &Plan {
        &self.header.plan
    }

    pub(crate) fn opts(&self) -> &RunOptions {
        &self.header.options
    }

    pub(crate) fn user(&self) -> &str {
        &self.header.plan.user
    }

    pub(crate) fn from(&self) -> Location {
        self.plan().from.clone()
    }

    pub(crate) fn to(&self) -> Location {
        self.plan().to.clone()
    }

    /// Where a doveadm command reads `location`, in this run's Dovecot's spelling.
    pub(crate) fn at<'l>(&self, location: &'l Location) -> super::argv::At<'l> {
        super::argv::At {
            version: self.opts().dovecot_version,
            location,
        }
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn live(&self) -> bool {
        self.plan().strategy == Strategy::Live
    }

    /// Journal a record (durably) and keep it.
    pub(crate) fn record(
        &mut self,
        step: Option<StepKind>,
        event: Event,
        data: Option<StepData>,
        message: Option<String>,
    ) -> Result<(), StepError> {
        let r = Record {
            time: crate::transaction::utc_now_rfc3339(),
            step,
            event,
            data,
            message,
            outcome: None,
        };
        self.journal.append(&r)?;
        self.records.push(r);
        Ok(())
    }

    pub(crate) fn state_now(&self) -> RunState {
        RunState::of(&self.records)
    }

    /// The data of the first start record of `step` that has any (the pre-image from the first
    /// attempt, before a crash may have acted).
    pub(crate) fn first_start_data(&self, step: StepKind) -> Option<&StepData> {
        self.records
            .iter()
            .find(|r| r.step == Some(step) && r.event == Event::Start && r.data.is_some())
            .and_then(|r| r.data.as_ref())
    }

    pub(crate) fn done_data(&self, step: StepKind) -> Option<&StepData> {
        journal::data_of(&self.records, step, Event::Done)
    }

    pub(crate) fn report(&self, kind: EventKind<'_>) {
        self.reporter.event(&ReportEvent {
            user: self.user(),
            run: &self.header.run,
            kind,
        });
    }

    pub(crate) fn dovecot(&self) -> Dovecot<'_> {
        Dovecot::new(self.opts().dovecot_config.clone(), self.runner)
    }

    /// `doveadm sync|backup ... -u USER DEST` for this run's user.
    pub(crate) fn dsync(&self, verb: &[&str], dest: &Location) -> Argv {
        super::argv::dsync(&self.opts().dovecot_config, verb, self.user(), dest)
    }

    /// Run doveadm; exit 2 (changes during the sync) is retried; errors printed with exit 0
    /// are errors. `limit`: a time limit of its own (the presync's).
    pub(crate) fn doveadm_checked(
        &self,
        argv: &Argv,
        retries: u32,
        limit: Option<Duration>,
    ) -> Result<Output, StepError> {
        let mut attempt = 0;
        loop {
            let out = match limit {
                Some(l) => self.runner.run_long(argv, l)?,
                None => crate::process::Runner::run(self.runner, argv, None)?,
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            let errors = stderr
                .lines()
                .any(|l| l.contains("Error:") || l.contains("Panic:") || l.contains("Fatal:"));
            match out.code {
                Some(2) if attempt < retries => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
                Some(0) if !errors => return Ok(out),
                code => {
                    return Err(StepError::Doveadm {
                        argv: argv.to_string(),
                        status: code
                            .map_or("killed by a signal".to_string(), |c| format!("exit {c}")),
                        stderr: stderr.trim().to_string(),
                    })
                }
            }
        }
    }

    /// A location's mailboxes as Dovecot reports them.
    /// The subscribed mailboxes at `location`.
    pub(crate) fn subscriptions(
        &self,
        location: &Location,
    ) -> Result<std::collections::BTreeSet<String>, StepError> {
        let argv =
            super::argv::subscriptions(&self.opts().dovecot_config, self.user(), self.at(location));
        let out = self.doveadm_checked(&argv, 0, None)?;
        Ok(verify::parse_subscriptions(&String::from_utf8_lossy(
            &out.stdout,
        )))
    }

    pub(crate) fn mail_state(&self, location: &Location) -> Result<MailState, StepError> {
        let config = &self.opts().dovecot_config;
        let status = self.doveadm_checked(
            &super::argv::mailbox_status(config, self.user(), self.at(location)),
            0,
            None,
        )?;
        let fetch = self.doveadm_checked(
            &super::argv::message_guids(config, self.user(), self.at(location), self.opts().pop3),
            0,
            None,
        )?;
        Ok(verify::parse_state(
            &String::from_utf8_lossy(&status.stdout),
            &String::from_utf8_lossy(&fetch.stdout),
        )?)
    }

    pub(crate) fn postfix_dir(&self) -> Result<Utf8PathBuf, StepError> {
        self.opts()
            .postfix_config
            .clone()
            .ok_or(StepError::NotRecorded(
                "the Postfix configuration directory",
            ))
    }

    pub(crate) fn map(&self) -> Result<(Utf8PathBuf, MapType), StepError> {
        let m = self
            .opts()
            .access_map
            .clone()
            .ok_or(StepError::NotRecorded("the access map"))?;
        let t = self.opts().map_type.unwrap_or_else(|| MapType::detect(&m));
        Ok((m, t))
    }

    /// Every directory the target writes (its path, and INDEX=, CONTROL=, ALT= directories).
    pub(crate) fn target_paths(&self) -> Vec<String> {
        self.plan().to.storage_paths(&self.opts().home)
    }

    /// Run every step not done yet. On failure, roll back or report what the admin must do.
    pub(crate) fn forward(&mut self) -> RunOutcome {
        let sequence = StepKind::sequence(self.plan().strategy, self.opts().presync);
        let max_hold = Duration::from_secs(self.opts().max_hold_secs);
        for step in sequence {
            if self.state_now().done.contains(&step) {
                continue;
            }
            // The held window: from the hold (or this process's start, when resuming inside
            // it) to the release, bounded by --max-hold.
            let held = self.state_now().started.contains(&StepKind::Hold)
                || (step == StepKind::Hold && self.plan().strategy == Strategy::Hold);
            if step == StepKind::Release || step == StepKind::Done {
                self.runner.set_deadline(None);
            } else if held && self.runner.deadline().is_none() {
                self.runner.set_deadline(Some(Instant::now() + max_hold));
            }
            if let Some(d) = self.runner.deadline() {
                if Instant::now() > d && step != StepKind::Hold {
                    let e = StepError::MaxHold {
                        step,
                        seconds: max_hold.as_secs(),
                    };
                    return self.step_failed(step, &e);
                }
            }
            let result = match self.first_start_data(step).cloned() {
                Some(d) => Ok(Some(d)),
                None => steps::start_data(self, step),
            }
            .and_then(|data| {
                self.record(Some(step), Event::Start, data, None)?;
                failpoint(&format!("{step}:started"));
                self.report(EventKind::Started(step));
                steps::forward(self, step)
            });
            match result {
                Ok(data) => {
                    if let Err(e) = self.record(Some(step), Event::Done, data.clone(), None) {
                        return self.needs_admin(&format!(
                            "cannot write the journal: {}",
                            crate::display_chain(&e)
                        ));
                    }
                    self.report(EventKind::Done(step, data.as_ref()));
                    failpoint(&format!("{step}:done"));
                }
                Err(e) => return self.step_failed(step, &e),
            }
        }
        let figures = self.figures();
        let summary = self.summary(&figures);
        self.close(Outcome::Done, &summary);
        self.report(EventKind::Migrated(&summary, Some(&figures)));
        RunOutcome::Migrated {
            run: self.header.run.clone(),
            summary,
            figures,
        }
    }

    /// A step failed: journal it, then roll back — or, past the start of the release, stop and
    /// say how to finish.
    fn step_failed(&mut self, step: StepKind, e: &StepError) -> RunOutcome {
        let msg = format!("step {step} failed: {}", crate::display_chain(e));
        let _ = self.record(Some(step), Event::Failed, None, Some(msg.clone()));
        self.report(EventKind::Failed(step, e));
        if self.state_now().started.contains(&StepKind::Release) {
            return self.needs_admin(&format!("{msg}; the switch is done and the release started, so the run is past rollback: fix the cause and run `mailmig resume {}`", self.header.run));
        }
        match self.backward() {
            RunOutcome::RolledBack { run, message, .. } => RunOutcome::RolledBack {
                run,
                message: format!("{msg}; rolled back: {message}"),
                after_failure: true,
            },
            RunOutcome::NeedsAdmin { run, message } => RunOutcome::NeedsAdmin {
                run,
                message: format!("{msg}; {message}"),
            },
            other => other,
        }
    }

    fn figures(&self) -> RunFigures {
        match self.done_data(StepKind::Done) {
            Some(StepData::Finished(f)) => *f,
            _ => steps::done::figures(self),
        }
    }

    fn summary(&self, figures: &RunFigures) -> String {
        let (mailboxes, messages) = match self.done_data(StepKind::Verify) {
            Some(StepData::Verified {
                mailboxes,
                messages,
                ..
            }) => (*mailboxes, *messages),
            _ => (0, 0),
        };
        let mut s = format!(
            "{}: migrated from {} to {} ({} strategy); verified {mailboxes} mailbox(es), {messages} message(s): message GUIDs, UIDVALIDITY{} identical",
            self.user(),
            self.plan().from,
            self.plan().to,
            self.plan().strategy,
            if self.plan().strategy == Strategy::Hold { ", UIDNEXT" } else { "" },
        );
        if let Some(held) = figures.held_ms {
            s.push_str(&format!("; mail held for {:.2} s", held as f64 / 1000.0));
        }
        s.push_str(&format!(
            "; total {:.2} s, of which doveadm {:.2} s",
            figures.total_ms as f64 / 1000.0,
            figures.doveadm_ms as f64 / 1000.0
        ));
        s
    }

    fn close(&mut self, outcome: Outcome, message: &str) {
        let _ = self.journal.append(&Record {
            time: crate::transaction::utc_now_rfc3339(),
            step: None,
            event: Event::Closed,
            data: None,
            message: Some(message.to_string()),
            outcome: Some(outcome),
        });
        if outcome != Outcome::NeedsAdmin {
            let _ = runs::clear_marker(self.state, self.user());
        }
    }

    fn needs_admin(&mut self, message: &str) -> RunOutcome {
        let _ = self.record(None, Event::Failed, None, Some(message.to_string()));
        self.report(EventKind::NeedsAdmin(message));
        RunOutcome::NeedsAdmin {
            run: self.header.run.clone(),
            message: message.to_string(),
        }
    }

    /// Undo every step that started, in reverse.
    pub(crate) fn backward(&mut self) -> RunOutcome {
        // Undo commands get their ordinary limits, not what is left of the hold window.
        self.runner.set_deadline(None);
        let state = self.state_now();
        if state.started.contains(&StepKind::Release) {
            // Past the point of no return: the holds may be gone and released mail delivered
            // into the new location. The clean state is the finished migration.
            self.report(EventKind::Completing);
            return match self.forward() {
                RunOutcome::Migrated { run, summary, figures } => RunOutcome::Migrated {
                    run,
                    summary: format!("the release had started, so the migration was completed instead of rolled back: {summary}"),
                    figures,
                },
                RunOutcome::NeedsAdmin { run, message } => RunOutcome::NeedsAdmin {
                    run,
                    message: format!("the release had started, so the migration was completed instead of rolled back: {message}"),
                },
                other => other,
            };
        }
        let mut started = state.started.clone();
        // A presync undo also covers syncs that wrote into the target without a presync step.
        if !started.contains(&StepKind::Presync)
            && (started.contains(&StepKind::FinalSync) || started.contains(&StepKind::Verify))
        {
            started.insert(0, StepKind::Presync);
        }
        started.sort();
        for step in started.into_iter().rev() {
            let undo = self
                .record(Some(step), Event::UndoStart, None, None)
                .and_then(|()| {
                    failpoint(&format!("undo-{step}:started"));
                    steps::undo(self, step)
                });
            match undo {
                Ok(()) => {
                    if let Err(e) = self.record(Some(step), Event::Undone, None, None) {
                        return self.needs_admin(&format!(
                            "cannot write the journal: {}",
                            crate::display_chain(&e)
                        ));
                    }
                    self.report(EventKind::Undone(step));
                }
                Err(e) => {
                    let msg = format!(
                        "undoing step {step} failed: {}. The journal {} records what is still in place; fix the cause and run `mailmig rollback {}` (or `mailmig resume {}`)",
                        crate::display_chain(&e),
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
        self.report(EventKind::RolledBack(&msg));
        RunOutcome::RolledBack {
            run: self.header.run.clone(),
            message: msg,
            after_failure: false,
        }
    }
}
