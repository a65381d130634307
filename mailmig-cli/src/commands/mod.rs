//! One module per command; each returns the exit code or a [`Failure`].

mod aliases;
mod campaign;
mod config;
mod edit;
mod hold;
mod login;
mod map;
mod migrate;
mod overlay;
mod passwd;
mod queue;

use camino::{Utf8Path, Utf8PathBuf};
use mailmig_core::dovecot::{IdResolver, NumericIds, SystemIds};
use mailmig_core::postfix::discover::{self, AliasMaps, DiscoverError};
use mailmig_core::postfix::MapType;
use mailmig_core::postfix::{self, ParseOptions, PostfixVersion, Table};
use mailmig_core::process::SystemRunner;
use mailmig_core::safe_fs::{self, SafeFsError};
use mailmig_core::state::{StateDir, StateError};

use crate::args::{
    Cli, Command, GlobalArgs, HoldCommand, HoldMapArgs, LoginCommand, MapCommand, OverlayCommand,
    PasswdCommand, QueueCommand, YesNo,
};
use crate::exit;
use crate::output;
use crate::report::{warn_unparsed, Failure};

pub(crate) fn run(cli: Cli) -> Result<u8, Failure> {
    let ctx = Context::new(&cli.global)?;
    match &cli.command {
        Command::Map(MapCommand::Check(args)) => map::check(&ctx, args),
        Command::Map(MapCommand::Dump(args)) => map::dump(&ctx, args),
        Command::Map(MapCommand::Get(args)) => map::get(&ctx, args),
        Command::Map(MapCommand::Set(args)) => map::set(&ctx, args),
        Command::Map(MapCommand::Del(args)) => map::del(&ctx, args),
        Command::Aliases(args) => aliases::run(&ctx, args),
        Command::Passwd(PasswdCommand::Check(args)) => passwd::check(&ctx, args),
        Command::Passwd(PasswdCommand::Show(args)) => passwd::show(&ctx, args),
        Command::Passwd(PasswdCommand::Set(args)) => passwd::set(&ctx, args),
        Command::Passwd(PasswdCommand::Unset(args)) => passwd::unset(&ctx, args),
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
        Command::Cleanup(args) => campaign::cleanup(&ctx, args),
        Command::Finish(args) => campaign::finish(&ctx, args),
        Command::Overlay(OverlayCommand::Show(args)) => overlay::show(&ctx, args),
        Command::Overlay(OverlayCommand::Check(args)) => overlay::check(&ctx, args),
        Command::Overlay(OverlayCommand::Export(args)) => overlay::export(&ctx, args),
        Command::Overlay(OverlayCommand::Prune(args)) => overlay::prune(&ctx, args),
        Command::Overlay(OverlayCommand::Fold(args)) => overlay::fold(&ctx, args),
        Command::Generate(cmd) => crate::generate::run(cmd),
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
        let options = parse_options(&runner, global, global.postfix_config.as_deref())?;
        Ok(Self {
            options,
            global,
            runner,
        })
    }

    /// The reading rules of the server's own tables: those of `--postfix-config` (already read),
    /// else of the default directory (`postconf` as a stock server answers it).
    pub(crate) fn server_options(&self) -> Result<ParseOptions, Failure> {
        match &self.global.postfix_config {
            Some(_) => Ok(self.options),
            None => parse_options(
                &self.runner,
                self.global,
                Some(&self.global.postfix_dir().path),
            ),
        }
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

/// Reading rules from `postconf -c DIR` (newest rules without DIR), then `--postfix-version`
/// and `--smtputf8`.
fn parse_options(
    runner: &SystemRunner,
    global: &GlobalArgs,
    dir: Option<&Utf8Path>,
) -> Result<ParseOptions, Failure> {
    let mut options = match dir {
        Some(dir) => postfix::parse_options_from_postconf(runner, dir)
            .map_err(|e| Failure::error(exit::UNAVAILABLE, &e))?,
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
    Ok(options)
}

/// Read an input file: regular files only (a FIFO or device is refused, never read).
pub(crate) fn read_input(path: &Utf8Path) -> Result<Vec<u8>, Failure> {
    safe_fs::read_regular(path).map_err(|e| input_failure(path, e))
}

/// An input file that cannot be opened or read.
pub(crate) fn input_failure(path: &Utf8Path, e: SafeFsError) -> Failure {
    match e {
        SafeFsError::Io { source, .. } => Failure::io(path.as_str(), &source),
        other => Failure::new(exit::NOINPUT, format!("error: {other}")),
    }
}

/// System user and group names (for uid/gid fields such as `vmail`).
pub(crate) fn ids() -> Box<dyn IdResolver + Sync> {
    match SystemIds::load() {
        Ok(ids) => Box::new(ids),
        Err(e) => {
            output::stderr_line(&format!("warning: cannot read /etc/passwd or /etc/group ({}); only numeric uid/gid fields are understood", crate::report::chain(&e)));
            Box::new(NumericIds)
        }
    }
}

/// The map given, or the first `check_recipient_access` file map of smtpd_recipient_restrictions,
/// with its type (unknown when given).
pub(crate) fn access_map(
    ctx: &Context<'_>,
    args: &HoldMapArgs,
) -> Result<(Utf8PathBuf, Option<MapType>), Failure> {
    if let Some(m) = &args.map {
        return Ok((m.clone(), None));
    }
    discover::access_map(&ctx.runner, &ctx.global.postfix_dir().path)
        .map(|(m, t)| (m, Some(t)))
        .map_err(|e| discover_failure(&e))
}

/// The virtual alias maps (given, or `virtual_alias_maps` of the Postfix configuration:
/// --postfix-config, else /etc/postfix), read; their unreadable entries and the records postmap
/// skips are warned about on stderr. Given maps are expanded with the settings of
/// --postfix-config only when it is given.
pub(crate) fn alias_maps(
    ctx: &Context<'_>,
    given: &[Utf8PathBuf],
    recipient_delimiter: Option<&str>,
) -> Result<AliasMaps, Failure> {
    let (dir, options) = match (&ctx.global.postfix_config, given.is_empty()) {
        (None, true) => (Some(ctx.global.postfix_dir().path), ctx.server_options()?),
        (dir, _) => (dir.clone(), ctx.options),
    };
    let maps = discover::alias_maps(
        &ctx.runner,
        dir.as_deref(),
        given,
        recipient_delimiter,
        &options,
    )
    .map_err(|e| discover_failure(&e))?;
    warn_alias_maps(&maps);
    Ok(maps)
}

/// Warn about alias map entries mailmig cannot read and records postmap skips.
pub(crate) fn warn_alias_maps(maps: &AliasMaps) {
    for map in &maps.unreadable {
        output::stderr_line(&format!(
            "warning: virtual_alias_maps entry `{map}` is not a file mailmig can read; its aliases are not included"
        ));
    }
    for (file, table) in maps.files.iter().zip(&maps.tables) {
        warn_unparsed(file, table);
    }
}

/// The exit code and message of an error reading Postfix's configuration.
pub(crate) fn discover_failure(e: &DiscoverError) -> Failure {
    let code = match e {
        DiscoverError::Postconf(_) => exit::UNAVAILABLE,
        DiscoverError::NoAliasMap => exit::USAGE,
        DiscoverError::NoAccessMap => exit::DATAERR,
        DiscoverError::Read { source, .. } => match source {
            SafeFsError::Io { source, .. } => return Failure::io(&e.to_string(), source),
            _ => exit::NOINPUT,
        },
        _ => exit::DATAERR,
    };
    Failure::error(code, &e)
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
    Failure::error(code, &e)
}
