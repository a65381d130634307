//! Migrate one user through `mailmig-core` alone, as a provisioning tool embedding it would:
//! discover the server, prepare (preflight and plan), run with a reporter that prints every
//! event, print the outcome.
//!
//! ```sh
//! cargo run --release -p mailmig-core --example migrate -- \
//!     --postfix-config /etc/postfix --dovecot-config /etc/dovecot/dovecot.conf \
//!     --state-dir /var/lib/mailmig alice@example.com mdbox:~/mdbox
//! ```
//!
//! Exit 0 when the user is migrated, 1 otherwise.

// An example program prints: that is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use camino::Utf8PathBuf;
use mailmig_core::dovecot::SystemIds;
use mailmig_core::migrate::{
    self, Event, EventKind, MigrationOptions, Reporter, RunContext, RunOutcome, Server,
    ServerConfig,
};
use mailmig_core::postfix::parse_options_from_postconf;
use mailmig_core::process::SystemRunner;
use mailmig_core::state::StateDir;

/// Prints each event on one line.
struct Print;

impl Reporter for Print {
    fn event(&self, event: &Event<'_>) {
        let what = match &event.kind {
            EventKind::Started(step) => format!("{step}: start"),
            EventKind::Done(step, data) => format!(
                "{step}: done {}",
                data.map(|d| format!("{d:?}")).unwrap_or_default()
            ),
            EventKind::Failed(step, e) => format!("{step}: failed: {e}"),
            EventKind::Retry(step, findings) => {
                format!("{step}: retry ({} finding(s))", findings.len())
            }
            EventKind::CarryOver(step, findings) => {
                format!("{step}: carry over ({} finding(s))", findings.len())
            }
            EventKind::Warning(_, w) => format!("warning: {w}"),
            EventKind::Undone(step) => format!("{step}: undone"),
            EventKind::MovedAside(_, path) => format!("moved aside to {path}"),
            EventKind::Migrated(summary, _) => format!("migrated: {summary}"),
            EventKind::RolledBack(m) => format!("rolled back: {m}"),
            EventKind::NeedsAdmin(m) => format!("needs the admin: {m}"),
            other => format!("{other:?}"),
        };
        println!("{} {}: {what}", event.user, event.run);
    }
}

struct Args {
    postfix_config: Utf8PathBuf,
    dovecot_config: Utf8PathBuf,
    state_dir: Utf8PathBuf,
    user: String,
    location: String,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut postfix, mut dovecot, mut state) = (None, None, None);
    let mut rest = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--postfix-config" => postfix = it.next(),
            "--dovecot-config" => dovecot = it.next(),
            "--state-dir" => state = it.next(),
            _ => rest.push(a),
        }
    }
    let usage =
        "usage: migrate --postfix-config DIR --dovecot-config FILE --state-dir DIR USER LOCATION";
    match (postfix, dovecot, state, rest.as_slice()) {
        (Some(p), Some(d), Some(s), [user, location]) => Ok(Args {
            postfix_config: p.into(),
            dovecot_config: d.into(),
            state_dir: s.into(),
            user: user.clone(),
            location: location.clone(),
        }),
        _ => Err(usage.into()),
    }
}

fn run(args: Args) -> Result<RunOutcome, Box<dyn std::error::Error>> {
    let runner = SystemRunner;
    let parse = parse_options_from_postconf(&runner, &args.postfix_config)?;
    let config = ServerConfig {
        dovecot_config: args.dovecot_config,
        postfix_config: Some(args.postfix_config),
        parse,
    };
    let server = Server::discover(&runner, config, MigrationOptions::default())?;
    let state = StateDir::open(&args.state_dir)?;
    let ids = SystemIds::load()?;
    let users = [args.user];
    let prepared = server
        .prepare(&runner, &state, &ids, &users, &args.location)?
        .pop()
        .ok_or("nothing prepared")??;
    for line in prepared.plan.render().lines() {
        println!("plan: {line}");
    }
    let ctx = RunContext {
        runner: &runner,
        state: &state,
        ids: &ids,
        reporter: &Print,
    };
    Ok(migrate::start(&ctx, prepared, parse, None)?)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(RunOutcome::Migrated { summary, .. }) => {
            println!("outcome: migrated: {summary}");
            ExitCode::SUCCESS
        }
        Ok(other) => {
            println!("outcome: {}", other.message());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
