//! One module per command; each returns the exit code or a [`Failure`].

mod aliases;
mod config;
mod edit;
mod hold;
mod login;
mod map;
mod migrate;
mod passwd;
mod queue;

use camino::Utf8Path;
use mailmig_core::postfix::{self, ParseOptions, PostfixVersion, Table};
use mailmig_core::process::SystemRunner;
use mailmig_core::safe_fs::{self, SafeFsError};
use mailmig_core::state::{StateDir, StateError};

use crate::args::{
    Cli, Command, GlobalArgs, HoldCommand, LoginCommand, MapCommand, PasswdCommand, QueueCommand,
    YesNo,
};
use crate::exit;
use crate::report::Failure;

pub(crate) fn run(cli: Cli) -> Result<u8, Failure> {
    let ctx = Context::new(&cli.global)?;
    match &cli.command {
        Command::Map(MapCommand::Check(args)) => map::check(&ctx, args),
        Command::Map(MapCommand::Dump(args)) => map::dump(&ctx, args),
        Command::Map(MapCommand::Get(args)) => map::get(&ctx, args),
        Command::Map(MapCommand::Set(args)) => map::set(&ctx, args),
        Command::Map(MapCommand::Del(args)) => map::del(&ctx, args),
        Command::Aliases(args) => aliases::run(&ctx, args),
        Command::Passwd(PasswdCommand::Check(args)) => passwd::check(args),
        Command::Passwd(PasswdCommand::Show(args)) => passwd::show(args),
        Command::Passwd(PasswdCommand::Set(args)) => passwd::set(args),
        Command::Passwd(PasswdCommand::Unset(args)) => passwd::unset(args),
        Command::Hold(HoldCommand::Add(args)) => hold::add(&ctx, args),
        Command::Hold(HoldCommand::Remove(args)) => hold::remove(&ctx, args),
        Command::Hold(HoldCommand::List(args)) => hold::list(&ctx, args),
        Command::Hold(HoldCommand::Check(args)) => hold::check(&ctx, args),
        Command::Login(LoginCommand::Disable(args)) => login::disable(&ctx, args),
        Command::Login(LoginCommand::Enable(args)) => login::enable(&ctx, args),
        Command::Queue(QueueCommand::List(args)) => queue::list(&ctx, args),
        Command::Queue(QueueCommand::Hold(args)) => queue::hold(&ctx, args),
        Command::Queue(QueueCommand::Release(args)) => queue::release(&ctx, args),
        Command::Config => config::run(&ctx),
        Command::Plan(args) => migrate::plan(&ctx, args),
        Command::Migrate(args) => migrate::migrate(&ctx, args),
        Command::Resume(args) => migrate::resume(&ctx, args),
        Command::Rollback(args) => migrate::rollback(&ctx, args),
        Command::Status(args) => migrate::status(&ctx, args),
    }
}

/// What every command needs: how to read tables, and how to reach Postfix.
pub(crate) struct Context<'a> {
    pub(crate) options: ParseOptions,
    pub(crate) global: &'a GlobalArgs,
    pub(crate) runner: SystemRunner,
}

impl<'a> Context<'a> {
    fn new(global: &'a GlobalArgs) -> Result<Self, Failure> {
        let runner = SystemRunner;
        let mut options = match &global.postfix_config {
            Some(dir) => postfix::parse_options_from_postconf(&runner, dir)
                .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("error: {e}")))?,
            None => ParseOptions::default(),
        };
        if let Some(v) = &global.postfix_version {
            options.version = v
                .parse::<PostfixVersion>()
                .map_err(|e| Failure::new(exit::USAGE, format!("error: --postfix-version: {e}")))?;
        }
        if let Some(flag) = global.smtputf8 {
            options.smtputf8 = matches!(flag, YesNo::Yes);
        }
        Ok(Self {
            options,
            global,
            runner,
        })
    }

    /// Read and parse one table file (regular files only).
    pub(crate) fn read_table(&self, path: &Utf8Path) -> Result<Table, Failure> {
        let bytes = read_input(path)?;
        Ok(Table::parse(bytes, &self.options))
    }

    /// The state directory, created private when missing; refused when others could write it.
    pub(crate) fn state(&self) -> Result<StateDir, Failure> {
        StateDir::open(&self.global.state_dir).map_err(|e| state_failure(&e))
    }
}

/// Read an input file: regular files only (a FIFO or device is refused, never read).
pub(crate) fn read_input(path: &Utf8Path) -> Result<Vec<u8>, Failure> {
    safe_fs::read_regular(path).map_err(|e| match e {
        SafeFsError::Io { source, .. } => Failure::io(path.as_str(), &source),
        other => Failure::new(exit::NOINPUT, format!("error: {other}")),
    })
}

/// The exit code and message of a state-directory error.
pub(crate) fn state_failure(e: &StateError) -> Failure {
    let code = match e {
        StateError::NotPrivate { .. }
        | StateError::Foreign { .. }
        | StateError::Fs(SafeFsError::UntrustedLink { .. } | SafeFsError::Unsafe { .. }) => {
            exit::NOPERM
        }
        StateError::BadName { .. } => exit::DATAERR,
        _ => exit::CANTCREAT,
    };
    Failure::new(code, format!("error: {e}"))
}
