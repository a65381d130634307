//! The migration of users' mail to another storage format, on a live server: discover the
//! server, prepare (preflight and plan) each user, run with a reporter, get a typed outcome;
//! resume, roll back and inspect runs the same way.
//!
//! ```no_run
//! use mailmig_core::dovecot::SystemIds;
//! use mailmig_core::migrate::{self, MigrationOptions, RunContext, Server, ServerConfig, Silent};
//! use mailmig_core::process::SystemRunner;
//! use mailmig_core::state::StateDir;
//!
//! let runner = SystemRunner;
//! let config = ServerConfig {
//!     dovecot_config: "/etc/dovecot/dovecot.conf".into(),
//!     postfix_config: Some("/etc/postfix".into()),
//!     parse: mailmig_core::postfix::parse_options_from_postconf(&runner, "/etc/postfix".into())?,
//! };
//! let server = Server::discover(&runner, config, MigrationOptions::default())?;
//! let state = StateDir::open("/var/lib/mailmig".into())?;
//! let ids = SystemIds::load()?;
//! let users = ["alice@example.com".to_string()];
//! let prepared = server.prepare(&runner, &state, &ids, &users, "mdbox:~/mdbox")?;
//! let ctx = RunContext { runner: &runner, state: &state, ids: &ids, reporter: &Silent };
//! for p in prepared {
//!     let outcome = migrate::start(&ctx, p?, server.config.parse, None)?;
//!     println!("{}", outcome.message());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Inside: the validated inputs ([`Location`], [`validate_user`]), the [`Plan`] (typed steps
//! with the argument vectors they run and the file edits they make), the durable [`journal`] a
//! run writes (typed [`journal::StepData`]), the [`verify`] comparison of two mail locations,
//! and the steps (forward and undo side by side) the engine runs through one
//! [`crate::process::Runner`].

pub mod argv;
pub mod cleanup;
pub mod dialect;
mod engine;
mod error;
pub mod finish;
pub mod journal;
pub mod lookup;
mod options;
pub mod plan;
pub mod prune;
mod report;
pub mod runs;
mod server;
pub mod space;
mod steps;
pub mod verify;

pub use engine::{
    failpoint, resume, rollback, run_all, start, status, unfinished_runs, BatchOptions,
    BatchResult, Batcher, Ending, NeverStarted, RunContext, RunLabel, RunOutcome, RunStatus,
    TimedRunner, UnfinishedRuns,
};
pub use error::{MigrateError, Refusal, StepError};
pub use options::{MigrationOptions, RunOptions};
pub use report::{Event, EventKind, Reporter, Silent};
pub use server::{HoldKeys, PreparedRun, Server, ServerConfig, UserFacts};

use std::fmt;

use serde::{Deserialize, Serialize};

/// Mail storage formats mailmig converts between.
pub const FORMATS: &[&str] = &["maildir", "mdbox", "sdbox", "mbox"];

/// A Dovecot mail location such as `mdbox:~/mdbox` or `maildir:~/Maildir:LAYOUT=fs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Location {
    raw: String,
}

/// Why a location or a user name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The location is not `FORMAT:PATH[:OPTIONS]` with a known format.
    #[error("mail location `{location}`: {reason} (expected FORMAT:PATH with FORMAT one of maildir, mdbox, sdbox, mbox, e.g. mdbox:~/mdbox)")]
    Location {
        /// What was given.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The user name cannot be passed safely to Postfix and Dovecot commands or used as a file
    /// name.
    #[error("user name `{user}`: {reason}")]
    User {
        /// What was given.
        user: String,
        /// What is wrong.
        reason: String,
    },
}

impl Location {
    /// Parse and validate: a known format, a non-empty absolute or `~/` path, printable ASCII
    /// without blanks (it is passed as one argument and stored in a passwd-file extra field).
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let bad = |reason: &str| InputError::Location {
            location: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(bad(&format!(
                "contains {}; only printable ASCII without blanks is accepted",
                char_name(c)
            )));
        }
        let Some((format, rest)) = text.split_once(':') else {
            return Err(bad("no `:` after the format"));
        };
        if !FORMATS.contains(&format) {
            return Err(bad(&format!("unknown format `{format}`")));
        }
        let path = rest.split(':').next().unwrap_or_default();
        if !(path.starts_with('/') || path == "~" || path.starts_with("~/")) {
            return Err(bad("the path must be absolute or start with ~/"));
        }
        if path.contains('%') {
            return Err(bad(
                "%-variables are expanded per user before a location is used (`mailmig migrate --to` accepts a template and asks Dovecot to expand it)",
            ));
        }
        if path.split('/').any(|c| c == "..") {
            return Err(bad("`..` is not allowed in the path"));
        }
        Ok(Self {
            raw: text.to_string(),
        })
    }

    /// The whole location, as Dovecot reads it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The format (`mdbox`, ...).
    pub fn format(&self) -> &str {
        self.raw.split(':').next().unwrap_or_default()
    }

    /// The path (without options), `~` unexpanded.
    pub fn path(&self) -> &str {
        self.raw.split(':').nth(1).unwrap_or_default()
    }

    /// The path with `~` replaced by `home`.
    pub fn expanded_path(&self, home: &str) -> String {
        let p = self.path();
        match p.strip_prefix('~') {
            Some(rest) => format!("{}{rest}", home.trim_end_matches('/')),
            None => p.to_string(),
        }
    }

    /// The value of a `KEY=VALUE` option (`INDEX`, `CONTROL`, `ALT`, `LAYOUT`, ...).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.raw
            .split(':')
            .skip(2)
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    }

    /// Every directory the storage writes, `~` expanded: the path, and the `INDEX=`, `CONTROL=`
    /// and `ALT=` directories when given (not `INDEX=MEMORY`).
    ///
    /// ```
    /// use mailmig_core::migrate::Location;
    /// let l = Location::parse("mdbox:~/mdbox:INDEX=~/idx:ALT=/alt/u:LAYOUT=fs").unwrap();
    /// assert_eq!(l.option("LAYOUT"), Some("fs"));
    /// assert_eq!(l.storage_paths("/h"), ["/h/mdbox", "/h/idx", "/alt/u"]);
    /// let m = Location::parse("maildir:~/Maildir:INDEX=MEMORY").unwrap();
    /// assert_eq!(m.storage_paths("/h"), ["/h/Maildir"]);
    /// ```
    pub fn storage_paths(&self, home: &str) -> Vec<String> {
        let expand = |p: &str| match p.strip_prefix('~') {
            Some(rest) => format!("{}{rest}", home.trim_end_matches('/')),
            None => p.to_string(),
        };
        let mut paths = vec![self.expanded_path(home)];
        for key in ["INDEX", "CONTROL", "ALT"] {
            if let Some(p) = self.option(key).filter(|p| *p != "MEMORY" && !p.is_empty()) {
                let p = expand(p);
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        paths
    }

    /// The same storage: same format and path (options ignored), with `~` expanded.
    pub fn same_storage(&self, other: &Location, home: &str) -> bool {
        self.format() == other.format()
            && self.expanded_path(home).trim_end_matches('/')
                == other.expanded_path(home).trim_end_matches('/')
    }
}

impl TryFrom<String> for Location {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Location> for String {
    fn from(l: Location) -> String {
        l.raw
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Check a user name before it is used in a command line, a map key or a state file name:
/// printable ASCII without blanks, `:` (passwd-file field separator), `/` or `\`, not starting
/// with `-` or `.`, at most 255 bytes.
pub fn validate_user(user: &str) -> Result<(), InputError> {
    let bad = |reason: &str| InputError::User {
        user: user.to_string(),
        reason: reason.to_string(),
    };
    if user.is_empty() || user.len() > 255 {
        return Err(bad("must be 1 to 255 bytes long"));
    }
    if let Some(c) = user
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, ':' | '/' | '\\' | '"' | ','))
    {
        return Err(bad(&format!(
            "contains {}; printable ASCII without blanks, `:`, `/`, `\\`, `\"` or `,` is accepted",
            char_name(c)
        )));
    }
    if user.starts_with('-') || user.starts_with('.') {
        return Err(bad("must not start with `-` or `.`"));
    }
    Ok(())
}

/// A character for a message: `` `c` `` when printable, `U+XXXX` otherwise.
fn char_name(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("`{c}`")
    } else {
        format!("U+{:04X}", u32::from(c))
    }
}

/// Which procedure a run follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Hold the user's mail at Postfix and lock logins out while the final sync, the
    /// verification and the switch run (the documented procedure, with a presync first).
    #[default]
    Hold,
    /// Dovecot's hold-free conversion: two-way sync twice, switch, kick, final two-way sync
    /// against the old location. No downtime; needs no access map; clients may see the switch.
    Live,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Hold => "hold",
            Strategy::Live => "live",
        })
    }
}

/// The steps of a migration, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Checks that change nothing.
    Preflight,
    /// Copy the bulk while the user is still online.
    Presync,
    /// Hold the user's mail at Postfix (access map + queue).
    Hold,
    /// Refuse the user's logins and end their sessions.
    LockOut,
    /// The last sync into the new location.
    FinalSync,
    /// Compare old and new location.
    Verify,
    /// Point the userdb at the new location.
    Switch,
    /// Carry over mail that reached the old location after the final sync.
    CatchUp,
    /// Remove holds and lock-out, release the held mail.
    Release,
    /// Close the run.
    Done,
}

impl StepKind {
    /// The name used in journals, plans and `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Preflight => "preflight",
            StepKind::Presync => "presync",
            StepKind::Hold => "hold",
            StepKind::LockOut => "lock-out",
            StepKind::FinalSync => "final-sync",
            StepKind::Verify => "verify",
            StepKind::Switch => "switch",
            StepKind::CatchUp => "catch-up",
            StepKind::Release => "release",
            StepKind::Done => "done",
        }
    }

    /// The steps of a strategy, in order.
    pub fn sequence(strategy: Strategy, presync: bool) -> Vec<StepKind> {
        use StepKind::*;
        match strategy {
            Strategy::Hold => {
                let mut v = vec![Preflight];
                if presync {
                    v.push(Presync);
                }
                v.extend([
                    Hold, LockOut, FinalSync, Verify, Switch, CatchUp, Release, Done,
                ]);
                v
            }
            Strategy::Live => vec![Preflight, Presync, Switch, FinalSync, Verify, CatchUp, Done],
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A file edit a step makes, shown as a unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedEdit {
    /// The file.
    pub path: camino::Utf8PathBuf,
    /// The unified diff of the edit against the file as it is now.
    pub diff: String,
}

/// One step of a plan: what it does, the commands it runs, the edits it makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Which step.
    pub step: StepKind,
    /// What it does, in one or a few lines.
    pub summary: Vec<String>,
    /// The argument vectors it runs, in order (some conditionally; the summary says when).
    pub commands: Vec<Vec<String>>,
    /// The file edits it makes.
    pub edits: Vec<PlannedEdit>,
}

/// The whole plan for one user.
#[must_use = "a plan changes nothing; start a run with it"]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The user (as the userdb knows them).
    pub user: String,
    /// The current mail location.
    pub from: Location,
    /// The target mail location.
    pub to: Location,
    /// The procedure.
    pub strategy: Strategy,
    /// Warnings found by the preflight checks that do not stop the run.
    pub warnings: Vec<String>,
    /// The steps.
    pub steps: Vec<PlannedStep>,
    /// The disk space the copy needs and the target's file system has (measured when the run
    /// starts, or for a plan shown with `--dry-run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<space::SpaceEstimate>,
}

impl Plan {
    /// Render for humans: one block per step with its commands and diffs.
    pub fn render(&self) -> String {
        let mut out = format!(
            "plan: {} from {} to {} (strategy {})\n",
            self.user, self.from, self.to, self.strategy
        );
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        if let Some(s) = &self.space {
            out.push_str(&format!("disk space: {}\n", s.render()));
        }
        for (i, step) in self.steps.iter().enumerate() {
            out.push_str(&format!("\n{:>2}. {}\n", i + 1, step.step));
            for line in &step.summary {
                out.push_str(&format!("    {line}\n"));
            }
            for argv in &step.commands {
                let shown = crate::process::Argv::new(argv.iter().map(String::as_str));
                out.push_str(&format!("    $ {shown}\n"));
            }
            for edit in &step.edits {
                out.push_str(&format!("    edit {}:\n", edit.path));
                for line in edit.diff.lines() {
                    out.push_str(&format!("    | {line}\n"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let l = Location::parse("mdbox:~/mdbox").expect("valid");
        assert_eq!((l.format(), l.path()), ("mdbox", "~/mdbox"));
        assert_eq!(l.expanded_path("/srv/a/"), "/srv/a/mdbox");
        let m = Location::parse("maildir:~/Maildir:LAYOUT=fs").expect("valid");
        assert_eq!(m.path(), "~/Maildir");
        assert!(Location::parse("mdbox:/srv/mail/x")
            .expect("valid")
            .same_storage(&Location::parse("mdbox:~/x").expect("valid"), "/srv/mail"));
        for bad in [
            "mdbox",
            "zip:~/x",
            "mdbox:rel/path",
            "mdbox:~/a b",
            "mdbox:~/%u",
            "mdbox:~/../x",
            "mdbox:~/x\n",
            "",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn users() {
        for ok in ["alice@example.test", "a+b@x", "bob"] {
            validate_user(ok).expect(ok);
        }
        for bad in [
            "", "-u", "a b", "a:b", "../x", "a/b", "a\nb", "é@x", "a,b@x", ".x",
        ] {
            assert!(validate_user(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sequences() {
        assert_eq!(
            StepKind::sequence(Strategy::Hold, false)
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>(),
            [
                "preflight",
                "hold",
                "lock-out",
                "final-sync",
                "verify",
                "switch",
                "catch-up",
                "release",
                "done"
            ]
        );
        assert_eq!(StepKind::sequence(Strategy::Hold, true).len(), 10);
    }
}
