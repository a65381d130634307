//! `mailmig plan|migrate|resume|rollback|status`: the journaled migration.
//!
//! State directory layout (`--state-dir`):
//! - `runs/RUN/journal.jsonl`: one journal per run (user), see `mailmig_core::migrate::journal`;
//! - `users/USER.lock`: flock held by the process running the user's run;
//! - `users/USER.run`: the user's unfinished run (removed when it is done or rolled back);
//! - `login/USER.json`: the record before the lock-out (mailmig_core::login);
//! - `queue/handover/ID`: held messages another run still needs held;
//! - `locks/postfix-maps.lock`: serializes access-map edits and postmap across runs.

mod engine;
mod setup;

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Instant;

use mailmig_core::dovecot::{PasswdFile, PasswdOptions};
use mailmig_core::migrate::journal::{self, Journal, JournalError, Outcome, RunHeader, RunState};
use mailmig_core::migrate::runs::{self, RunsError};
use mailmig_core::migrate::{Plan, StepKind};
use mailmig_core::postfix::{parse_options_from_postconf, ParseOptions, Table};
use mailmig_core::process::SystemRunner;
use mailmig_core::state::StateDir;

use self::engine::{Ending, Engine, MapBatcher, Reporter, TimedRunner};
use self::setup::{
    build_plan, hold_keys, preflight_user, PlanInputs, RunOptions, Setup, UserFacts,
};
use super::passwd::ids;
use super::Context;
use crate::args::{MigrateArgs, PlanArgs, RunArgs, StatusArgs};
use crate::exit;
use crate::output;
use crate::report::Failure;

/// The exit code and message of a bookkeeping error.
pub(crate) fn runs_failure(e: &RunsError) -> Failure {
    match e {
        RunsError::State(s) => super::state_failure(s),
        RunsError::User(_) => Failure::new(exit::DATAERR, format!("error: {e}")),
        RunsError::Busy { .. } => Failure::new(exit::TEMPFAIL, format!("error: {e}")),
        _ => Failure::new(exit::IOERR, format!("error: {e}")),
    }
}

fn journal_failure(e: &JournalError) -> Failure {
    match e {
        JournalError::State(s) => super::state_failure(s),
        JournalError::NoRun { .. } => Failure::new(exit::NOINPUT, format!("error: {e}")),
        JournalError::Corrupt { .. } => Failure::new(exit::DATAERR, format!("error: {e}")),
        _ => Failure::new(exit::IOERR, format!("error: {e}")),
    }
}

/// Plans for users, with the shared setup (one pass over the alias maps).
fn plans(
    ctx: &Context<'_>,
    setup: &Setup,
    users: &[String],
    to: &str,
) -> Vec<Result<(UserFacts, RunOptions, Plan), Failure>> {
    let parse = ctx.options;
    let state = match ctx.state() {
        Ok(s) => s,
        Err(f) => {
            return users
                .iter()
                .map(|_| Err(Failure::new(f.code, f.message.clone())))
                .collect()
        }
    };
    let keys = if setup.access_map.is_some() {
        match hold_keys(ctx, users) {
            Ok(k) => k,
            Err(f) => {
                return users
                    .iter()
                    .map(|_| Err(Failure::new(f.code, f.message.clone())))
                    .collect()
            }
        }
    } else {
        users.iter().map(|_| (Vec::new(), Vec::new())).collect()
    };
    let access = match &setup.access_map {
        Some((m, _)) => match super::read_input(m) {
            Ok(bytes) => Some(Table::parse(bytes, &parse)),
            Err(f) => {
                return users
                    .iter()
                    .map(|_| Err(Failure::new(f.code, f.message.clone())))
                    .collect()
            }
        },
        None => None,
    };
    let passwd = match super::read_input(&setup.passwd_file) {
        Ok(bytes) => PasswdFile::parse(bytes, &PasswdOptions::default()),
        Err(f) => {
            return users
                .iter()
                .map(|_| Err(Failure::new(f.code, f.message.clone())))
                .collect()
        }
    };
    let ids = ids();
    let inputs = PlanInputs {
        access: access.as_ref(),
        passwd: &passwd,
        ids: ids.as_ref(),
    };
    let since = mailmig_core::transaction::utc_now_rfc3339();
    users
        .iter()
        .zip(keys)
        .map(|(user, keys)| {
            let facts = preflight_user(&ctx.runner, setup, &state, &inputs, user, to, keys)?;
            let opts = setup.run_options(&facts, &parse);
            let plan = build_plan(&opts, &facts, setup.strategy, &inputs, &since)?;
            Ok((facts, opts, plan))
        })
        .collect()
}

fn print_plan(plan: &Plan, json: bool) -> Result<(), Failure> {
    if json {
        let text = serde_json::to_string_pretty(plan)
            .map_err(|e| Failure::new(exit::IOERR, e.to_string()))?;
        output::stdout(format!("{text}\n").as_bytes())
    } else {
        output::stdout(plan.render().as_bytes())
    }
}

pub(crate) fn plan(ctx: &Context<'_>, args: &PlanArgs) -> Result<u8, Failure> {
    let setup = setup::setup(ctx, &args.options)?;
    let (_, _, plan) = plans(
        ctx,
        &setup,
        std::slice::from_ref(&args.user),
        &args.options.to,
    )
    .pop()
    .expect("one user")?;
    print_plan(&plan, args.options.json)?;
    Ok(exit::OK)
}

// ---------------------------------------------------------------------- reporters

struct TextReporter;

impl Reporter for TextReporter {
    fn event(&self, user: &str, _run: &str, step: Option<StepKind>, what: &str, detail: &str) {
        // The run's ending is printed once, at the end.
        if matches!(what, "migrated" | "rolled-back") || step == Some(StepKind::Done) {
            return;
        }
        let step = step.map(|s| format!(" {s}")).unwrap_or_default();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        output::stderr_line(&format!("{user}:{step} {what}{detail}"));
    }
}

struct JsonReporter(Mutex<()>);

impl Reporter for JsonReporter {
    fn event(&self, user: &str, run: &str, step: Option<StepKind>, what: &str, detail: &str) {
        // A step's results are a JSON object: embedded as one, not as a string.
        let detail = match serde_json::from_str::<serde_json::Value>(detail) {
            Ok(v) if v.is_object() => v,
            _ => serde_json::Value::String(detail.to_string()),
        };
        let line = serde_json::json!({
            "time": mailmig_core::transaction::utc_now_rfc3339(),
            "user": user,
            "run": run,
            "step": step,
            "event": what,
            "detail": detail,
        });
        let _guard = self.0.lock();
        let _ = output::stdout(format!("{line}\n").as_bytes());
    }
}

struct ProgressReporter(indicatif::ProgressBar);

impl Reporter for ProgressReporter {
    fn event(&self, user: &str, _run: &str, step: Option<StepKind>, what: &str, detail: &str) {
        match what {
            "migrated" | "rolled-back" | "needs-admin" | "refused" => {
                self.0.inc(1);
                if what != "migrated" {
                    self.0.println(format!("{user}: {what}: {detail}"));
                }
            }
            "failed" | "warning" => self.0.println(format!("{user}: {what}: {detail}")),
            _ => {}
        }
        if let Some(s) = step {
            self.0.set_message(format!("{user}: {s} {what}"));
        }
    }
}

fn reporter(json: bool, total: usize) -> Box<dyn Reporter> {
    if json {
        Box::new(JsonReporter(Mutex::new(())))
    } else if total > 1 && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} users  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Box::new(ProgressReporter(bar))
    } else {
        Box::new(TextReporter)
    }
}

// ---------------------------------------------------------------------- runs

fn new_run_id(user: &str) -> String {
    let t: String = mailmig_core::transaction::utc_now_rfc3339()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{t}-{user}")
}

/// Run a journaled run forward (or backward, to undo it).
fn run_engine(
    state: &StateDir,
    (header, opts): (RunHeader, RunOptions),
    (journal, records): (Journal, Vec<journal::Record>),
    parse: ParseOptions,
    reporter: &dyn Reporter,
    backward: bool,
    batcher: Option<&MapBatcher>,
) -> Ending {
    let system = SystemRunner;
    let runner = TimedRunner {
        inner: &system,
        doveadm_us: 0.into(),
        deadline: Mutex::new(None),
    };
    let mut engine = Engine {
        runner: &runner,
        state,
        header,
        opts,
        journal,
        records,
        parse,
        ids: ids(),
        reporter,
        started: Instant::now(),
        batcher,
    };
    if backward {
        engine.backward()
    } else {
        engine.forward()
    }
}

/// Start and run one user's migration.
fn start_run(
    state: &StateDir,
    facts: &UserFacts,
    opts: RunOptions,
    plan: Plan,
    parse: ParseOptions,
    reporter: &dyn Reporter,
    batcher: Option<&MapBatcher>,
) -> Ending {
    let fail = |f: Failure| Ending {
        code: f.code,
        message: f.message,
    };
    let _lock = match runs::lock_user(state, &facts.user) {
        Ok(l) => l,
        Err(e) => return fail(runs_failure(&e)),
    };
    if let Err(e) = runs::clear_stale_marker(state, &facts.user) {
        return fail(runs_failure(&e));
    }
    match runs::marker(state, &facts.user) {
        Ok(Some(run)) => {
            return Ending {
                code: exit::TEMPFAIL,
                message: format!("error: {} has an unfinished run {run}: `mailmig resume {run}` or `mailmig rollback {run}` first", facts.user),
            }
        }
        Ok(None) => {}
        Err(e) => return fail(runs_failure(&e)),
    }
    let options = match serde_json::to_value(&opts) {
        Ok(v) => v,
        Err(e) => {
            return Ending {
                code: exit::IOERR,
                message: e.to_string(),
            }
        }
    };
    // The run's id is chosen and recorded as the user's unfinished run *before* its journal is
    // created: a crash in between leaves a marker without a journal, which `resume`, `rollback`
    // and the next `migrate` recognise as a run that never started.
    let mut run = new_run_id(&facts.user);
    let mut n = 1;
    while journal::exists(state, &run).unwrap_or(false) && n < 100 {
        n += 1;
        run = format!("{}-{n}", new_run_id(&facts.user));
    }
    if let Err(e) = runs::set_marker(state, &facts.user, &run) {
        return fail(runs_failure(&e));
    }
    engine::failpoint("run:marker-written");
    let header = RunHeader {
        run: run.clone(),
        created: mailmig_core::transaction::utc_now_rfc3339(),
        plan: plan.clone(),
        options,
    };
    let journal = match Journal::create(state, &header) {
        Ok(j) => j,
        Err(e) => {
            let _ = runs::clear_marker(state, &facts.user);
            return Ending {
                code: exit::CANTCREAT,
                message: format!("error: {e}"),
            };
        }
    };
    for w in &plan.warnings {
        reporter.event(&facts.user, &run, None, "warning", w);
    }
    run_engine(
        state,
        (header, opts),
        (journal, Vec::new()),
        parse,
        reporter,
        false,
        batcher,
    )
}

pub(crate) fn migrate(ctx: &Context<'_>, args: &MigrateArgs) -> Result<u8, Failure> {
    let users: Vec<String> = match (&args.users_from, &args.user) {
        (Some(file), _) => String::from_utf8_lossy(&super::read_input(file)?)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        (None, Some(u)) => vec![u.clone()],
        (None, None) => {
            return Err(Failure::new(
                exit::USAGE,
                "error: give USER or --users-from FILE",
            ))
        }
    };
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = users.iter().find(|u| !seen.insert(u.to_ascii_lowercase())) {
        return Err(Failure::new(
            exit::DATAERR,
            format!("error: {dup} is listed twice"),
        ));
    }
    let setup = setup::setup(ctx, &args.options)?;
    let planned = plans(ctx, &setup, &users, &args.options.to);
    if args.dry_run {
        let mut code = exit::OK;
        for p in planned {
            match p {
                Ok((_, _, plan)) => print_plan(&plan, args.options.json)?,
                Err(f) => {
                    output::stderr_line(&f.message);
                    code = code.max(f.code);
                }
            }
        }
        return Ok(code);
    }
    let reporter = reporter(args.options.json, users.len());
    let parse = ctx.options;
    let state = ctx.state()?;
    let mut work = Vec::new();
    let mut endings: Vec<(String, Ending)> = Vec::new();
    for (user, p) in users.iter().zip(planned) {
        match p {
            Ok(x) => work.push(x),
            Err(f) => {
                reporter.event(user, "", None, "refused", &f.message);
                endings.push((
                    user.clone(),
                    Ending {
                        code: f.code,
                        message: f.message,
                    },
                ));
            }
        }
    }
    let batcher = (args.jobs > 1).then(MapBatcher::default);
    let queue = Mutex::new(work.into_iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..usize::from(args.jobs).min(users.len().max(1)) {
            scope.spawn(|| loop {
                let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                let Some((facts, opts, plan)) = next else {
                    break;
                };
                let ending = start_run(
                    &state,
                    &facts,
                    opts,
                    plan,
                    parse,
                    reporter.as_ref(),
                    batcher.as_ref(),
                );
                if let Ok(mut r) = results.lock() {
                    r.push((facts.user.clone(), ending));
                }
            });
        }
    });
    endings.extend(results.into_inner().unwrap_or_default());
    if let Some(b) = &batcher {
        let (edits, commits) = (
            b.edits.load(std::sync::atomic::Ordering::Relaxed),
            b.commits.load(std::sync::atomic::Ordering::Relaxed),
        );
        reporter.event(
            "*",
            "",
            None,
            "map-edits",
            &serde_json::json!({ "edits": edits, "transactions": commits }).to_string(),
        );
    }
    finish(endings, args.options.json)
}

/// Print each run's ending; the exit code is the most serious one (70 > 75 > others > 0).
fn finish(endings: Vec<(String, Ending)>, json: bool) -> Result<u8, Failure> {
    let rank = |c: u8| match c {
        exit::SOFTWARE => 4,
        exit::TEMPFAIL => 3,
        0 => 0,
        _ => 2,
    };
    let mut code = exit::OK;
    for (_, e) in &endings {
        if !json {
            if e.code == exit::OK {
                output::stdout(format!("{}\n", e.message).as_bytes())?;
            } else {
                output::stderr_line(&e.message);
            }
        }
        if rank(e.code) > rank(code) {
            code = e.code;
        }
    }
    Ok(code)
}

/// The unfinished runs (with a user marker), or the one named.
fn selected_runs(state: &StateDir, run: Option<&str>) -> Result<Vec<String>, Failure> {
    if let Some(r) = run {
        if mailmig_core::state::file_name(r).is_err() {
            return Err(Failure::new(
                exit::USAGE,
                format!("error: `{r}` is not a run id"),
            ));
        }
        if !journal::exists(state, r).map_err(|e| journal_failure(&e))? {
            return Err(Failure::new(
                exit::NOINPUT,
                format!("error: no run {r} in {}", state.path().join(journal::RUNS)),
            ));
        }
        return Ok(vec![r.to_string()]);
    }
    let mut out = Vec::new();
    for user in runs::marked_users(state).map_err(|e| runs_failure(&e))? {
        if let Some(run) = runs::clear_stale_marker(state, &user).map_err(|e| runs_failure(&e))? {
            output::stderr_line(&format!(
                "run {run} of {user} never started (interrupted before its journal was written); cleared"
            ));
            continue;
        }
        if let Some(r) = runs::marker(state, &user).map_err(|e| runs_failure(&e))? {
            out.push(r);
        }
    }
    out.sort();
    Ok(out)
}

fn continue_run(
    ctx: &Context<'_>,
    state: &StateDir,
    run: &str,
    rollback: bool,
    reporter: &dyn Reporter,
) -> Ending {
    let fail = |code: u8, m: String| Ending { code, message: m };
    let (journal, header, records) = match Journal::open(state, run) {
        Ok(x) => x,
        Err(e) => {
            let f = journal_failure(&e);
            return fail(f.code, f.message);
        }
    };
    let user = header.plan.user.clone();
    let _lock = match runs::lock_user(state, &user) {
        Ok(l) => l,
        Err(e) => {
            let f = runs_failure(&e);
            return fail(f.code, f.message);
        }
    };
    let state_now = RunState::of(&records);
    match state_now.outcome {
        Some(Outcome::Done) if rollback => {
            return fail(exit::DATAERR, format!("error: run {} finished: {user} is on {}; mailmig does not undo a finished migration (migrate back instead)", header.run, header.plan.to))
        }
        Some(o) if o != Outcome::NeedsAdmin => {
            return fail(exit::OK, format!("run {} already ended ({o})", header.run))
        }
        _ => {}
    }
    let opts: RunOptions = match serde_json::from_value(header.options.clone()) {
        Ok(o) => o,
        Err(e) => {
            return fail(
                exit::DATAERR,
                format!("error: {}: options: {e}", journal.path()),
            )
        }
    };
    let mut parse = match &opts.postfix_config {
        Some(d) => parse_options_from_postconf(&ctx.runner, d).unwrap_or_default(),
        None => ParseOptions::default(),
    };
    parse.smtputf8 = opts.smtputf8;
    let backward =
        rollback || (state_now.rolling_back && !state_now.started.contains(&StepKind::Release));
    run_engine(
        state,
        (header, opts),
        (journal, records),
        parse,
        reporter,
        backward,
        None,
    )
}

fn continue_runs(ctx: &Context<'_>, args: &RunArgs, rollback: bool) -> Result<u8, Failure> {
    let Some(state) =
        StateDir::open_existing(&ctx.global.state_dir).map_err(|e| super::state_failure(&e))?
    else {
        output::stderr_line("no unfinished runs");
        return Ok(exit::OK);
    };
    let selected = selected_runs(&state, args.run.as_deref())?;
    if selected.is_empty() {
        output::stderr_line("no unfinished runs");
        return Ok(exit::OK);
    }
    let reporter = reporter(args.json, selected.len());
    let endings: Vec<(String, Ending)> = selected
        .iter()
        .map(|r| {
            (
                r.clone(),
                continue_run(ctx, &state, r, rollback, reporter.as_ref()),
            )
        })
        .collect();
    finish(endings, args.json)
}

pub(crate) fn resume(ctx: &Context<'_>, args: &RunArgs) -> Result<u8, Failure> {
    continue_runs(ctx, args, false)
}

pub(crate) fn rollback(ctx: &Context<'_>, args: &RunArgs) -> Result<u8, Failure> {
    continue_runs(ctx, args, true)
}

pub(crate) fn status(ctx: &Context<'_>, args: &StatusArgs) -> Result<u8, Failure> {
    let runs_dir = ctx.global.state_dir.join(journal::RUNS);
    let state =
        StateDir::open_existing(&ctx.global.state_dir).map_err(|e| super::state_failure(&e))?;
    let selected: Vec<String> = match (&state, &args.run) {
        (Some(state), Some(r)) => selected_runs(state, Some(r))?,
        (Some(state), None) => journal::runs(state).map_err(|e| journal_failure(&e))?,
        (None, Some(r)) => {
            return Err(Failure::new(
                exit::NOINPUT,
                format!("error: no run {r} in {runs_dir}"),
            ))
        }
        (None, None) => Vec::new(),
    };
    let mut rows = Vec::new();
    let mut code = exit::OK;
    for (dir, run) in selected.iter().filter_map(|r| Some((state.as_ref()?, r))) {
        let (header, records) = match journal::read(dir, run) {
            Ok(x) => x,
            Err(e) => {
                output::stderr_line(&format!("warning: {e}"));
                continue;
            }
        };
        let state = RunState::of(&records);
        let user = &header.plan.user;
        let running = runs::is_running(dir, user);
        let sequence = StepKind::sequence(
            header.plan.strategy,
            header
                .plan
                .steps
                .iter()
                .any(|s| s.step == StepKind::Presync),
        );
        let last_done = sequence
            .iter()
            .rev()
            .find(|s| state.done.contains(s))
            .copied();
        let (label, message) = match state.outcome {
            Some(Outcome::Done) => ("done", state.closing_message.clone()),
            Some(Outcome::RolledBack) => ("rolled-back", state.closing_message.clone()),
            Some(Outcome::NeedsAdmin) => ("needs-admin", state.closing_message.clone()),
            None if running => ("running", None),
            None if state.last_failure.is_some() => ("needs-admin", state.last_failure.clone()),
            None => (
                "interrupted",
                Some(format!(
                    "`mailmig resume {0}` or `mailmig rollback {0}`",
                    header.run
                )),
            ),
        };
        if matches!(label, "needs-admin" | "interrupted") {
            code = exit::NOT_FOUND;
        }
        rows.push(serde_json::json!({
            "run": header.run,
            "user": user,
            "from": header.plan.from,
            "to": header.plan.to,
            "strategy": header.plan.strategy,
            "state": label,
            "last_step_done": last_done,
            "steps_done": state.done,
            "rolling_back": state.rolling_back,
            "message": message,
        }));
    }
    if args.json {
        let text = serde_json::to_string_pretty(&rows)
            .map_err(|e| Failure::new(exit::IOERR, e.to_string()))?;
        output::stdout(format!("{text}\n").as_bytes())?;
    } else {
        let mut out = String::new();
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            out.push_str(&format!(
                "{}\t{}\t{} -> {}\t{}\tlast step done: {}{}\n",
                s("run"),
                s("user"),
                s("from"),
                s("to"),
                s("state"),
                s("last_step_done"),
                r["message"]
                    .as_str()
                    .map(|m| format!("\t{m}"))
                    .unwrap_or_default()
            ));
        }
        if rows.is_empty() {
            out.push_str(&format!("no runs in {runs_dir}\n"));
        }
        output::stdout(out.as_bytes())?;
    }
    Ok(code)
}
