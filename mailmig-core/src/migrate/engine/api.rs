//! Starting, continuing and inspecting runs: the public entry points of the engine.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

use serde::Serialize;

use super::{Batcher, Engine, RunContext, RunOutcome, TimedRunner};
use crate::migrate::error::{MigrateError, Refusal};
use crate::migrate::journal::{self, Journal, Outcome, Record, RunHeader, RunState};
use crate::migrate::report::{Event, EventKind};
use crate::migrate::runs;
use crate::migrate::server::PreparedRun;
use crate::migrate::space::{self, SpaceEstimate};
use crate::migrate::{StepKind, Strategy};
use crate::postfix::{parse_options_from_postconf, ParseOptions};
use crate::state::StateDir;

fn new_run_id(user: &str) -> String {
    let t: String = crate::transaction::utc_now_rfc3339()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{t}-{user}")
}

fn drive(
    ctx: &RunContext<'_>,
    header: RunHeader,
    (journal, records): (Journal, Vec<Record>),
    parse: ParseOptions,
    backward: bool,
    batcher: Option<&Batcher>,
) -> RunOutcome {
    let runner = TimedRunner::new(ctx.runner);
    let mut engine = Engine {
        runner: &runner,
        state: ctx.state,
        header,
        journal,
        records,
        parse,
        ids: ctx.ids,
        reporter: ctx.reporter,
        started: Instant::now(),
        batcher,
    };
    if backward {
        engine.backward()
    } else {
        engine.forward()
    }
}

/// Start and run one user's migration: lock the user, record the run, journal, run every step.
/// `parse`: how Postfix reads its tables (the server's). `batcher`: shared by the runs of a
/// batch (see [`run_all`]).
pub fn start(
    ctx: &RunContext<'_>,
    prepared: PreparedRun,
    parse: ParseOptions,
    batcher: Option<&Batcher>,
) -> Result<RunOutcome, MigrateError> {
    let user = prepared.facts.user.clone();
    let _lock = runs::lock_user(ctx.state, &user)?;
    runs::clear_stale_marker(ctx.state, &user)?;
    if let Some(run) = runs::marker(ctx.state, &user)? {
        return Err(MigrateError::Unfinished { user, run });
    }
    let mut prepared = prepared;
    prepared.plan.space = Some(check_space(&prepared)?);
    // The run's id is chosen and recorded as the user's unfinished run *before* its journal is
    // created: a crash in between leaves a marker without a journal, which `resume`, `rollback`
    // and the next `migrate` recognise as a run that never started.
    let mut run = new_run_id(&user);
    let mut n = 1;
    while journal::exists(ctx.state, &run).unwrap_or(false) && n < 100 {
        n += 1;
        run = format!("{}-{n}", new_run_id(&user));
    }
    runs::set_marker(ctx.state, &user, &run)?;
    super::failpoint("run:marker-written");
    let header = RunHeader {
        format: journal::FORMAT,
        run: run.clone(),
        created: crate::transaction::utc_now_rfc3339(),
        plan: prepared.plan,
        options: prepared.options,
    };
    let journal = match Journal::create(ctx.state, &header) {
        Ok(j) => j,
        Err(e) => {
            let _ = runs::clear_marker(ctx.state, &user);
            return Err(e.into());
        }
    };
    for w in &header.plan.warnings {
        ctx.reporter.event(&Event {
            user: &user,
            run: &run,
            kind: EventKind::Warning(None, w),
        });
    }
    Ok(drive(
        ctx,
        header,
        (journal, Vec::new()),
        parse,
        false,
        batcher,
    ))
}

/// The disk-space guard, right before the copy: the estimate, or a refusal when the copy would
/// eat into the reserve.
fn check_space(prepared: &PreparedRun) -> Result<SpaceEstimate, MigrateError> {
    let user = &prepared.facts.user;
    let estimate = space::estimate(prepared, prepared.options.min_free).map_err(|source| {
        MigrateError::Space {
            user: user.clone(),
            source,
        }
    })?;
    if estimate.is_short() {
        return Err(Refusal::DiskSpace {
            user: user.clone(),
            estimate: Box::new(estimate),
        }
        .into());
    }
    Ok(estimate)
}

/// What one user of a batch came to.
#[derive(Debug)]
pub struct BatchResult {
    /// The user.
    pub user: String,
    /// The run's outcome, or why it never started.
    pub outcome: Result<RunOutcome, MigrateError>,
}

/// How a batch runs its users.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions<'a> {
    /// Users at a time (0 or 1: one after the other).
    pub jobs: usize,
    /// Start no new user after this many failures (rolled back, needs the admin, or refused
    /// when starting); the running ones finish.
    pub max_failures: Option<usize>,
    /// Wait this long before each worker starts its next user.
    pub pause_between: Duration,
    /// When set (by a SIGTERM handler, say), start no new user; the running ones finish.
    pub stop: Option<&'a AtomicBool>,
    /// A file whose existence stops the batch the same way.
    pub stop_file: Option<Utf8PathBuf>,
}

impl BatchOptions<'_> {
    /// Why no new user may start, if so.
    fn stopped(&self, failures: usize) -> Option<String> {
        if self.stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Some("the batch was asked to stop (signal)".into());
        }
        if let Some(f) = self.stop_file.as_ref().filter(|f| f.exists()) {
            return Some(format!("the stop file {f} exists"));
        }
        match self.max_failures {
            Some(max) if failures >= max => Some(format!(
                "{failures} failure(s) reached --max-failures {max}"
            )),
            _ => None,
        }
    }
}

/// What a user of a batch came to, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Ending {
    /// Migrated.
    Migrated,
    /// Already at the target; nothing done.
    AlreadyDone,
    /// The batch stopped before the run started.
    NotStarted,
    /// Every step undone.
    RolledBack,
    /// An undo failed: the admin must act.
    NeedsAdmin,
    /// The run had ended before (resume or rollback of a closed run).
    AlreadyEnded,
    /// Refused before anything changed.
    Refused,
}

impl Ending {
    /// A run's outcome, or why it never ran (a preflight refusal, a stopped batch).
    pub fn of(outcome: &Result<RunOutcome, MigrateError>) -> Self {
        match outcome {
            Ok(RunOutcome::Migrated { .. }) => Self::Migrated,
            Ok(RunOutcome::RolledBack { .. }) => Self::RolledBack,
            Ok(RunOutcome::NeedsAdmin { .. }) => Self::NeedsAdmin,
            Ok(RunOutcome::AlreadyEnded { .. }) => Self::AlreadyEnded,
            Err(MigrateError::AlreadyDone { .. }) => Self::AlreadyDone,
            Err(MigrateError::NotStarted { .. }) => Self::NotStarted,
            Err(_) => Self::Refused,
        }
    }

    /// Its name in mailmig's outputs (`migrated`, `already-done`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Migrated => "migrated",
            Self::AlreadyDone => "already-done",
            Self::NotStarted => "not-started",
            Self::RolledBack => "rolled-back",
            Self::NeedsAdmin => "needs-admin",
            Self::AlreadyEnded => "ended-before",
            Self::Refused => "refused",
        }
    }

    /// Whether it counts as a failure for [`BatchOptions::max_failures`].
    pub fn is_failure(self) -> bool {
        !matches!(self, Self::Migrated | Self::AlreadyDone | Self::NotStarted)
    }
}

/// Run prepared migrations with `options.jobs` users at a time; access-map and passwd-file edits
/// of parallel runs are group-committed. A user is never abandoned mid-run: a stop (signal, stop
/// file, `max_failures`) only keeps new users from starting; they end as
/// [`MigrateError::NotStarted`]. [`EventKind::MapEdits`] and [`EventKind::PasswdEdits`] events
/// report the grouping at the end.
pub fn run_all(
    ctx: &RunContext<'_>,
    prepared: Vec<PreparedRun>,
    parse: ParseOptions,
    options: &BatchOptions<'_>,
) -> Vec<BatchResult> {
    let jobs = options.jobs;
    let batcher = (jobs > 1).then(Batcher::default);
    let workers = jobs.clamp(1, prepared.len().max(1));
    let queue = Mutex::new(prepared.into_iter());
    let results = Mutex::new(Vec::new());
    let failures = AtomicUsize::new(0);
    // Set when a user did not fit: a full file system stops everyone's mail, so no one starts.
    let short: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut first = true;
                loop {
                    if !first && !options.pause_between.is_zero() {
                        std::thread::sleep(options.pause_between);
                    }
                    first = false;
                    let stopped = options
                        .stopped(failures.load(Ordering::SeqCst))
                        .or_else(|| short.lock().ok().and_then(|s| s.clone()));
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some(p) = next else {
                        break;
                    };
                    let user = p.facts.user.clone();
                    let outcome = match stopped {
                        Some(reason) => Err(MigrateError::NotStarted {
                            user: user.clone(),
                            reason,
                        }),
                        None => start(ctx, p, parse, batcher.as_ref()),
                    };
                    if Ending::of(&outcome).is_failure() {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Err(MigrateError::Refused(Refusal::DiskSpace { user, estimate })) =
                        &outcome
                    {
                        if let Ok(mut s) = short.lock() {
                            s.get_or_insert_with(|| {
                                format!(
                                    "{} is short of disk space ({user} did not fit)",
                                    estimate.filesystem
                                )
                            });
                        }
                    }
                    if let Err(e) = &outcome {
                        ctx.reporter.event(&Event {
                            user: &user,
                            run: "",
                            kind: match e {
                                MigrateError::NotStarted { reason, .. } => {
                                    EventKind::NotStarted(reason)
                                }
                                e => EventKind::Refused(e),
                            },
                        });
                    }
                    if let Ok(mut r) = results.lock() {
                        r.push(BatchResult { user, outcome });
                    }
                }
            });
        }
    });
    if let Some(b) = &batcher {
        ctx.reporter.event(&Event {
            user: "*",
            run: "",
            kind: EventKind::MapEdits {
                edits: b.edits(),
                transactions: b.transactions(),
            },
        });
        ctx.reporter.event(&Event {
            user: "*",
            run: "",
            kind: EventKind::PasswdEdits {
                edits: b.passwd_edits(),
                transactions: b.passwd_transactions(),
            },
        });
    }
    results.into_inner().unwrap_or_default()
}

fn continue_run(
    ctx: &RunContext<'_>,
    run: &str,
    rollback: bool,
) -> Result<RunOutcome, MigrateError> {
    let (journal, header, records) = Journal::open(ctx.state, run)?;
    let user = header.plan.user.clone();
    let _lock = runs::lock_user(ctx.state, &user)?;
    let state = RunState::of(&records);
    match state.outcome {
        Some(Outcome::Done) if rollback => {
            return Err(MigrateError::Finished {
                run: header.run.clone(),
                user,
                to: header.plan.to.to_string(),
            })
        }
        Some(o) if o != Outcome::NeedsAdmin => {
            return Ok(RunOutcome::AlreadyEnded {
                run: header.run.clone(),
                outcome: o,
            })
        }
        _ => {}
    }
    let mut parse = match &header.options.postfix_config {
        Some(d) => parse_options_from_postconf(ctx.runner, d).unwrap_or_default(),
        None => ParseOptions::default(),
    };
    parse.smtputf8 = header.options.smtputf8;
    let backward = rollback || (state.rolling_back && !state.started.contains(&StepKind::Release));
    Ok(drive(
        ctx,
        header,
        (journal, records),
        parse,
        backward,
        None,
    ))
}

/// Continue run `run` from the first step not done (a run that was rolling back continues
/// rolling back).
pub fn resume(ctx: &RunContext<'_>, run: &str) -> Result<RunOutcome, MigrateError> {
    continue_run(ctx, run, false)
}

/// Undo every started step of run `run`, in reverse (a run past the start of its release is
/// completed instead).
pub fn rollback(ctx: &RunContext<'_>, run: &str) -> Result<RunOutcome, MigrateError> {
    continue_run(ctx, run, true)
}

/// The unfinished runs, and the markers of runs that never started (cleared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnfinishedRuns {
    /// Run ids with a journal, sorted.
    pub runs: Vec<String>,
    /// Runs recorded for a user whose journal was never written: cleared.
    pub never_started: Vec<NeverStarted>,
}

/// A run recorded for a user whose journal was never written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeverStarted {
    /// The user.
    pub user: String,
    /// The run id.
    pub run: String,
}

/// Every unfinished run (a user marker names it).
pub fn unfinished_runs(state: &StateDir) -> Result<UnfinishedRuns, MigrateError> {
    let mut out = UnfinishedRuns::default();
    for user in runs::marked_users(state)? {
        if let Some(run) = runs::clear_stale_marker(state, &user)? {
            out.never_started.push(NeverStarted { user, run });
            continue;
        }
        if let Some(r) = runs::marker(state, &user)? {
            out.runs.push(r);
        }
    }
    out.runs.sort();
    Ok(out)
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunLabel {
    /// A process holds the user's lock.
    Running,
    /// Migrated.
    Done,
    /// Rolled back.
    RolledBack,
    /// An undo failed: the admin must act.
    NeedsAdmin,
    /// Interrupted: resume or roll back.
    Interrupted,
}

impl std::fmt::Display for RunLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::RolledBack => "rolled-back",
            Self::NeedsAdmin => "needs-admin",
            Self::Interrupted => "interrupted",
        })
    }
}

/// One run, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunStatus {
    /// The run.
    pub run: String,
    /// The user.
    pub user: String,
    /// The old location.
    pub from: String,
    /// The new location.
    pub to: String,
    /// The strategy.
    pub strategy: Strategy,
    /// Where it stands.
    pub state: RunLabel,
    /// The last step done, in sequence order.
    pub last_step_done: Option<StepKind>,
    /// Every step done.
    pub steps_done: Vec<StepKind>,
    /// An undo is under way or finished.
    pub rolling_back: bool,
    /// The closing message, the last failure, or what to do.
    pub message: Option<String>,
    /// How long the user's mail was held (so far, while held), in milliseconds.
    pub held_ms: Option<u64>,
    /// When the run ended (RFC 3339).
    pub ended: Option<String>,
    /// `mailmig cleanup` removed what the run left behind.
    pub cleaned_up: bool,
}

/// How long mail was held: from the hold's start to the release's end (or now, while held); the
/// run's own figure when it finished.
fn held_ms(records: &[Record]) -> Option<u64> {
    let figures = records.iter().rev().find_map(|r| match &r.data {
        Some(journal::StepData::Finished(f)) => f.held_ms,
        _ => None,
    });
    if figures.is_some() {
        return figures;
    }
    let time = |step, event| {
        records
            .iter()
            .find(|r| r.step == Some(step) && r.event == event)
            .and_then(|r| humantime::parse_rfc3339_weak(&r.time).ok())
    };
    let from = time(StepKind::Hold, journal::Event::Start)?;
    let until = time(StepKind::Release, journal::Event::Done)
        .or_else(|| {
            records
                .iter()
                .any(|r| r.event == journal::Event::Closed)
                .then(|| {
                    records
                        .last()
                        .and_then(|r| humantime::parse_rfc3339_weak(&r.time).ok())
                        .unwrap_or(from)
                })
        })
        .unwrap_or_else(std::time::SystemTime::now);
    until
        .duration_since(from)
        .ok()
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The state of every run (or of `run`), in run order. Runs whose journal cannot be read are
/// returned as errors beside the others.
pub fn status(
    state: &StateDir,
    run: Option<&str>,
) -> Result<Vec<Result<RunStatus, MigrateError>>, MigrateError> {
    let selected = match run {
        Some(r) => {
            if !journal::exists(state, r)? {
                return Err(journal::JournalError::NoRun {
                    run: r.to_string(),
                    runs: state.path().join(journal::RUNS),
                }
                .into());
            }
            vec![r.to_string()]
        }
        None => journal::runs(state)?,
    };
    Ok(selected.iter().map(|r| run_status(state, r)).collect())
}

fn run_status(state: &StateDir, run: &str) -> Result<RunStatus, MigrateError> {
    let (header, records) = journal::read(state, run)?;
    let s = RunState::of(&records);
    let user = header.plan.user.clone();
    let running = runs::is_running(state, &user);
    let presync = header
        .plan
        .steps
        .iter()
        .any(|p| p.step == StepKind::Presync);
    let last_step_done = StepKind::sequence(header.plan.strategy, presync)
        .into_iter()
        .rev()
        .find(|st| s.done.contains(st));
    let (label, message) = match s.outcome {
        Some(Outcome::Done) => (RunLabel::Done, s.closing_message.clone()),
        Some(Outcome::RolledBack) => (RunLabel::RolledBack, s.closing_message.clone()),
        Some(Outcome::NeedsAdmin) => (RunLabel::NeedsAdmin, s.closing_message.clone()),
        None if running => (RunLabel::Running, None),
        None if s.last_failure.is_some() => (RunLabel::NeedsAdmin, s.last_failure.clone()),
        None => (
            RunLabel::Interrupted,
            Some(format!(
                "`mailmig resume {0}` or `mailmig rollback {0}`",
                header.run
            )),
        ),
    };
    Ok(RunStatus {
        run: header.run,
        user,
        from: header.plan.from.to_string(),
        to: header.plan.to.to_string(),
        strategy: header.plan.strategy,
        state: label,
        last_step_done,
        steps_done: s.done,
        rolling_back: s.rolling_back,
        message,
        held_ms: held_ms(&records),
        ended: s.closed_at.clone(),
        cleaned_up: s.cleaned_up,
    })
}
