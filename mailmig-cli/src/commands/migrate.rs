//! `mailmig plan|migrate|resume|rollback|status`: flags into `mailmig_core::migrate` calls,
//! its events and outcomes into text, JSON lines or a progress bar, and exit codes.

use std::io::IsTerminal as _;
use std::sync::Mutex;

use mailmig_core::migrate::runs::RunsError;
use mailmig_core::migrate::{
    self, BatchOptions, Ending, Event, EventKind, MigrateError, MigrationOptions as CoreOptions,
    Refusal, Reporter, RunContext, RunOutcome, Server, ServerConfig, StepKind,
};
use mailmig_core::state::StateDir;

use super::Context;
use mailmig_core::dovecot::DovecotError;

use crate::args::{MigrateArgs, MigrationOptions, PlanArgs, RunArgs, StatusArgs};
use crate::exit;
use crate::output;
use crate::report::Failure;

/// The exit code of an error that kept a run from starting.
fn code_of(e: &MigrateError) -> u8 {
    match e {
        MigrateError::Missing(_) => exit::USAGE,
        MigrateError::AlreadyDone { .. } => exit::OK,
        MigrateError::NotStarted { .. } => exit::TEMPFAIL,
        MigrateError::UnknownUser { .. } | MigrateError::NoRecord { .. } => exit::NOUSER,
        MigrateError::Unfinished { .. } => exit::TEMPFAIL,
        MigrateError::Runs(RunsError::Busy { .. }) => exit::TEMPFAIL,
        MigrateError::Command(_)
        | MigrateError::Postfix(_)
        | MigrateError::Dovecot(DovecotError::Run(_)) => exit::UNAVAILABLE,
        MigrateError::State(s) | MigrateError::Runs(RunsError::State(s)) => {
            super::state_failure(s).code
        }
        MigrateError::Journal(migrate::journal::JournalError::NoRun { .. }) => exit::NOINPUT,
        MigrateError::Read { .. } => exit::NOINPUT,
        MigrateError::Journal(_) => exit::CANTCREAT,
        _ => exit::DATAERR,
    }
}

fn failure(e: &MigrateError) -> Failure {
    Failure::error(code_of(e), &e)
}

/// The exit code of a run's outcome.
fn code_of_outcome(o: &RunOutcome) -> u8 {
    match o {
        RunOutcome::RolledBack {
            after_failure: true,
            ..
        } => exit::TEMPFAIL,
        RunOutcome::NeedsAdmin { .. } => exit::SOFTWARE,
        _ => exit::OK,
    }
}

/// Discover the server for a migration with these options.
fn server(ctx: &Context<'_>, opts: &MigrationOptions) -> Result<Server, Failure> {
    let config = ServerConfig {
        dovecot_config: ctx.global.dovecot_file().path,
        postfix_config: Some(ctx.global.postfix_dir().path),
        parse: ctx.server_options()?,
    };
    let options = CoreOptions {
        strategy: opts.strategy,
        presync: !opts.no_presync,
        lock: opts.lock,
        hold_action: opts.hold_action,
        reason: opts.reason.clone(),
        max_hold: opts.max_hold,
        min_free: opts.min_free,
    };
    let server = Server::discover(&ctx.runner, config, options).map_err(|e| failure(&e))?;
    if let Some(aliases) = &server.aliases {
        super::warn_alias_maps(aliases);
    }
    Ok(server)
}

pub(crate) fn plan(ctx: &Context<'_>, args: &PlanArgs) -> Result<u8, Failure> {
    let server = server(ctx, &args.options)?;
    let state = ctx.state()?;
    let ids = super::ids();
    let mut prepared = server
        .prepare(
            &ctx.runner,
            &state,
            ids.as_ref(),
            std::slice::from_ref(&args.user),
            &args.options.to,
        )
        .map_err(|e| failure(&e))?;
    let p = prepared
        .pop()
        .ok_or_else(|| Failure::new(exit::SOFTWARE, "error: nothing prepared"))?
        .map_err(|e| failure(&e))?;
    show_plan(&with_space(p, &args.options).plan, args.options.json)?;
    Ok(exit::OK)
}

/// The plan with the disk-space estimate (a warning when it cannot be measured).
fn with_space(mut p: migrate::PreparedRun, opts: &MigrationOptions) -> migrate::PreparedRun {
    match migrate::space::estimate(&p, opts.min_free) {
        Ok(e) => p.plan.space = Some(e),
        Err(e) => output::stderr_line(&format!(
            "warning: disk space not measured: {}",
            crate::report::chain(&e)
        )),
    }
    p
}

fn show_plan(plan: &migrate::Plan, json: bool) -> Result<(), Failure> {
    if json {
        output::json_pretty(plan)
    } else {
        output::stdout(plan.render().as_bytes())
    }
}

fn users_of(args: &MigrateArgs) -> Result<Vec<String>, Failure> {
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
        return Err(failure(&Refusal::Duplicate(dup.clone()).into()));
    }
    Ok(users)
}

pub(crate) fn migrate(ctx: &Context<'_>, args: &MigrateArgs) -> Result<u8, Failure> {
    let users = users_of(args)?;
    let server = server(ctx, &args.options)?;
    let state = ctx.state()?;
    let ids = super::ids();
    let prepared = server
        .prepare(&ctx.runner, &state, ids.as_ref(), &users, &args.options.to)
        .map_err(|e| failure(&e))?;
    if args.dry_run {
        let mut code = exit::OK;
        for p in prepared {
            match p {
                Ok(p) => show_plan(&with_space(p, &args.options).plan, args.options.json)?,
                Err(e @ MigrateError::AlreadyDone { .. }) => {
                    output::stdout(format!("{}\n", crate::report::chain(&e)).as_bytes())?;
                }
                Err(e) => {
                    let f = failure(&e);
                    output::stderr_line(&f.message);
                    code = code.max(f.code);
                }
            }
        }
        return Ok(code);
    }
    let reporter = reporter(args.options.json, users.len());
    let mut endings = Vec::new();
    // What each user came to, for the summary.
    let mut kinds: Vec<UserEnding> = Vec::new();
    let mut ready = Vec::new();
    for (user, p) in users.iter().zip(prepared) {
        match p {
            Ok(p) => ready.push(p),
            Err(e @ MigrateError::AlreadyDone { .. }) => {
                let message = crate::report::chain(&e);
                reporter.event(&Event {
                    user,
                    run: "",
                    kind: EventKind::AlreadyDone(&message),
                });
                kinds.push(UserEnding::new(user, Ending::AlreadyDone, &message));
                endings.push(Failure::new(exit::OK, message));
            }
            Err(e) => {
                reporter.event(&Event {
                    user,
                    run: "",
                    kind: EventKind::Refused(&e),
                });
                kinds.push(UserEnding::new(user, Ending::Refused, &e.to_string()));
                endings.push(failure(&e));
            }
        }
    }
    let run_ctx = RunContext {
        runner: &ctx.runner,
        state: &state,
        ids: ids.as_ref(),
        reporter: reporter.as_ref(),
    };
    // SIGTERM / SIGINT: start no new user, let the running ones finish (never abandon one).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| Failure::new(exit::SOFTWARE, format!("error: signal handler: {e}")))?;
    }
    let batch = BatchOptions {
        jobs: usize::from(args.jobs),
        max_failures: args.max_failures,
        pause_between: args.pause_between,
        stop: Some(&stop),
        stop_file: Some(
            args.stop_file
                .clone()
                .unwrap_or_else(|| state.path().join("stop")),
        ),
    };
    let mut migrated = false;
    for r in migrate::run_all(&run_ctx, ready, server.config.parse, &batch) {
        migrated |= matches!(r.outcome, Ok(RunOutcome::Migrated { .. }));
        let e = match &r.outcome {
            Ok(o) => ending(o),
            Err(e) => failure(e),
        };
        kinds.push(UserEnding::new(&r.user, Ending::of(&r.outcome), &e.message));
        endings.push(e);
    }
    let code = finish(&endings, args.options.json)?;
    if users.len() > 1 {
        summary(&kinds, args.options.json)?;
    }
    if migrated && !args.options.json {
        let format = args.options.to.split(':').next().unwrap_or_default();
        for note in server.reminders(format) {
            output::stdout(format!("note: {note}\n").as_bytes())?;
        }
    }
    Ok(code)
}

/// What one user of a batch came to, for the summary.
struct UserEnding {
    user: String,
    ending: Ending,
    /// The first line of its message (the reason of a refusal or failure).
    reason: String,
}

impl UserEnding {
    fn new(user: &str, ending: Ending, message: &str) -> Self {
        Self {
            user: user.to_string(),
            ending,
            reason: message
                .trim_start_matches("error: ")
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// The batch in counts (how many users came to each ending), and each user that did not end
/// migrated or already done, with the reason.
fn summary(kinds: &[UserEnding], json: bool) -> Result<(), Failure> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for kind in kinds {
        *counts.entry(kind.ending.name()).or_default() += 1;
    }
    let others: Vec<&UserEnding> = kinds
        .iter()
        .filter(|k| !matches!(k.ending, Ending::Migrated | Ending::AlreadyDone))
        .collect();
    let text = if json {
        let reasons: Vec<serde_json::Value> = others
            .iter()
            .map(|k| serde_json::json!({"user": k.user, "ending": k.ending.name(), "reason": k.reason}))
            .collect();
        let v = serde_json::json!({
            "time": mailmig_core::transaction::utc_now_rfc3339(),
            "user": "*",
            "event": "summary",
            "detail": { "counts": counts, "others": reasons },
        });
        format!("{v}\n")
    } else {
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let mut text = format!("summary: {} user(s): {}\n", kinds.len(), parts.join(", "));
        for k in others {
            text.push_str(&format!("  {} {}: {}\n", k.ending.name(), k.user, k.reason));
        }
        text
    };
    output::stdout(text.as_bytes())
}

/// How one run ended, for printing: its exit code and message.
fn ending(o: &RunOutcome) -> Failure {
    Failure::new(code_of_outcome(o), o.message())
}

/// Print each run's ending; the exit code is the most serious one (70 > 75 > others > 0).
fn finish(endings: &[Failure], json: bool) -> Result<u8, Failure> {
    let rank = |c: u8| match c {
        exit::SOFTWARE => 4,
        exit::TEMPFAIL => 3,
        0 => 0,
        _ => 2,
    };
    let mut code = exit::OK;
    for e in endings {
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

fn continue_runs(ctx: &Context<'_>, args: &RunArgs, rollback: bool) -> Result<u8, Failure> {
    let Some(state) =
        StateDir::open_existing(&ctx.global.state_dir).map_err(|e| super::state_failure(&e))?
    else {
        output::stderr_line("no unfinished runs");
        return Ok(exit::OK);
    };
    let selected = match &args.run {
        Some(r) => {
            if mailmig_core::state::file_name(r).is_err() {
                return Err(Failure::new(
                    exit::USAGE,
                    format!("error: `{r}` is not a run id"),
                ));
            }
            vec![r.clone()]
        }
        None => {
            let u = migrate::unfinished_runs(&state).map_err(|e| failure(&e))?;
            for n in &u.never_started {
                output::stderr_line(&format!(
                    "run {} of {} never started (interrupted before its journal was written); cleared",
                    n.run, n.user
                ));
            }
            u.runs
        }
    };
    if selected.is_empty() {
        output::stderr_line("no unfinished runs");
        return Ok(exit::OK);
    }
    let reporter = reporter(args.json, selected.len());
    let ids = super::ids();
    let run_ctx = RunContext {
        runner: &ctx.runner,
        state: &state,
        ids: ids.as_ref(),
        reporter: reporter.as_ref(),
    };
    let endings: Vec<Failure> = selected
        .iter()
        .map(|r| {
            let outcome = if rollback {
                migrate::rollback(&run_ctx, r)
            } else {
                migrate::resume(&run_ctx, r)
            };
            match outcome {
                Ok(o) => ending(&o),
                Err(e) => failure(&e),
            }
        })
        .collect();
    finish(&endings, args.json)
}

pub(crate) fn resume(ctx: &Context<'_>, args: &RunArgs) -> Result<u8, Failure> {
    continue_runs(ctx, args, false)
}

pub(crate) fn rollback(ctx: &Context<'_>, args: &RunArgs) -> Result<u8, Failure> {
    continue_runs(ctx, args, true)
}

pub(crate) fn status(ctx: &Context<'_>, args: &StatusArgs) -> Result<u8, Failure> {
    let runs_dir = ctx.global.state_dir.join(migrate::journal::RUNS);
    let Some(state) =
        StateDir::open_existing(&ctx.global.state_dir).map_err(|e| super::state_failure(&e))?
    else {
        if let Some(r) = &args.run {
            return Err(Failure::new(
                exit::NOINPUT,
                format!("error: no run {r} in {runs_dir}"),
            ));
        }
        let text = if args.json {
            "{\n  \"users\": {},\n  \"runs\": []\n}\n".to_string()
        } else {
            format!("no runs in {runs_dir}\n")
        };
        output::stdout(text.as_bytes())?;
        return Ok(exit::OK);
    };
    let mut rows = Vec::new();
    for r in migrate::status(&state, args.run.as_deref()).map_err(|e| failure(&e))? {
        match r {
            Ok(s) => rows.push(s),
            Err(e) => output::stderr_line(&format!("warning: {}", crate::report::chain(&e))),
        }
    }
    let code = if rows.iter().any(|r| {
        matches!(
            r.state,
            migrate::RunLabel::NeedsAdmin | migrate::RunLabel::Interrupted
        )
    }) {
        exit::NOT_FOUND
    } else {
        exit::OK
    };
    let counts = counts_of(&rows);
    if args.json {
        #[derive(serde::Serialize)]
        struct Status<'a> {
            /// Users per state of their latest run.
            users: &'a std::collections::BTreeMap<String, usize>,
            runs: &'a [migrate::RunStatus],
        }
        output::json_pretty(&Status {
            users: &counts,
            runs: &rows,
        })?;
        return Ok(code);
    }
    let mut out = String::new();
    for r in &rows {
        out.push_str(&format!(
            "{}\t{}\t{} -> {}\t{}{}\tlast step done: {}\theld: {}{}\n",
            r.run,
            r.user,
            r.from,
            r.to,
            r.state,
            if r.cleaned_up { " (cleaned up)" } else { "" },
            r.last_step_done.map_or("-".to_string(), |s| s.to_string()),
            r.held_ms.map_or("-".to_string(), |ms| {
                humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
            }),
            r.message
                .as_deref()
                .map(|m| format!("\t{m}"))
                .unwrap_or_default()
        ));
    }
    if rows.is_empty() {
        out.push_str(&format!("no runs in {runs_dir}\n"));
    } else {
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        out.push_str(&format!(
            "users: {} ({})\n",
            counts.values().sum::<usize>(),
            parts.join(", ")
        ));
    }
    output::stdout(out.as_bytes())?;
    Ok(code)
}

/// Users per state of their latest run (run ids start with the time they were created).
fn counts_of(rows: &[migrate::RunStatus]) -> std::collections::BTreeMap<String, usize> {
    let mut latest: std::collections::BTreeMap<&str, &migrate::RunStatus> =
        std::collections::BTreeMap::new();
    for r in rows {
        let e = latest.entry(r.user.as_str()).or_insert(r);
        if r.run > e.run {
            *e = r;
        }
    }
    let mut counts = std::collections::BTreeMap::new();
    for r in latest.values() {
        *counts.entry(r.state.to_string()).or_default() += 1;
    }
    counts
}

// ---------------------------------------------------------------------- reporters

/// The event's name, step and detail (a step's results and the batch figures as JSON objects).
fn describe(kind: &EventKind<'_>) -> (&'static str, Option<StepKind>, serde_json::Value) {
    let detail = match kind {
        EventKind::Done(_, Some(data)) => serde_json::to_value(data).unwrap_or_default(),
        EventKind::MapEdits {
            edits,
            transactions,
        }
        | EventKind::PasswdEdits {
            edits,
            transactions,
        } => serde_json::json!({ "edits": edits, "transactions": transactions }),
        other => other.text().map_or(serde_json::Value::Null, Into::into),
    };
    (kind.name(), kind.step(), detail)
}

struct TextReporter;

impl Reporter for TextReporter {
    fn event(&self, event: &Event<'_>) {
        let (what, step, detail) = describe(&event.kind);
        // The run's ending is printed once, at the end.
        if matches!(
            what,
            "migrated" | "rolled-back" | "refused" | "already-done" | "not-started"
        ) || step == Some(StepKind::Done)
        {
            return;
        }
        let step = step.map(|s| format!(" {s}")).unwrap_or_default();
        let detail = match detail {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => format!(": {s}"),
            v => format!(": {v}"),
        };
        output::stderr_line(&format!("{}:{step} {what}{detail}", event.user));
    }
}

struct JsonReporter(Mutex<()>);

impl Reporter for JsonReporter {
    fn event(&self, event: &Event<'_>) {
        let (what, step, detail) = describe(&event.kind);
        let line = serde_json::json!({
            "time": mailmig_core::transaction::utc_now_rfc3339(),
            "user": event.user,
            "run": event.run,
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
    fn event(&self, event: &Event<'_>) {
        let (what, step, detail) = describe(&event.kind);
        let detail = detail.as_str().map(str::to_string).unwrap_or_default();
        match what {
            "migrated" | "rolled-back" | "needs-admin" | "refused" | "already-done"
            | "not-started" => {
                self.0.inc(1);
                if what != "migrated" {
                    self.0.println(format!("{}: {what}: {detail}", event.user));
                }
            }
            "failed" | "warning" => self.0.println(format!("{}: {what}: {detail}", event.user)),
            _ => {}
        }
        if let Some(s) = step {
            self.0.set_message(format!("{}: {s} {what}", event.user));
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
                "{elapsed_precise} [{bar:30}] {pos}/{len} users, ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Box::new(ProgressReporter(bar))
    } else {
        Box::new(TextReporter)
    }
}
