//! Command-line arguments (clap types only; no I/O here).

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};
use mailmig_core::hold::HoldAction;
use mailmig_core::login::LockMethod;
use mailmig_core::migrate::Strategy;

/// Convert Dovecot mailboxes between storage formats on a live Postfix + Dovecot server, and
/// read and edit the Postfix and Dovecot files involved exactly as the daemons read them.
#[derive(Debug, Parser)]
#[command(name = "mailmig", version = crate::version::LONG, about, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command understands.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Postfix configuration directory (`postconf -c DIR`). Default: /etc/postfix, as for
    /// postconf, for the commands that talk to the server; tables given as files are read with
    /// its rules only when this is given.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) postfix_config: Option<Utf8PathBuf>,
    /// Read tables with this Postfix release's rules (MAJOR.MINOR). Default: what `postconf`
    /// reports with --postfix-config, else the newest rules.
    #[arg(long, global = true, value_name = "VERSION")]
    pub(crate) postfix_version: Option<String>,
    /// Dovecot configuration file (`doveconf -c FILE`, `doveadm -c FILE`). Default:
    /// /etc/dovecot/dovecot.conf, as for doveconf, for the commands that talk to the server.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) dovecot_config: Option<Utf8PathBuf>,
    /// Where mailmig records what it did, to resume or undo (default /var/lib/mailmig).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/var/lib/mailmig"
    )]
    pub(crate) state_dir: Utf8PathBuf,
    /// Override `smtputf8_enable` (non-UTF-8 lines skipped, Unicode case folding).
    #[arg(long, global = true, value_name = "yes|no")]
    pub(crate) smtputf8: Option<YesNo>,
}

/// yes or no.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum YesNo {
    Yes,
    No,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Postfix lookup-table source files (virtual, access, ...).
    #[command(subcommand)]
    Map(MapCommand),
    /// Every address whose mail reaches ADDRESS through the virtual alias maps.
    Aliases(AliasesArgs),
    /// Dovecot passwd-files (passdb + userdb).
    #[command(subcommand)]
    Passwd(PasswdCommand),
    /// Hold a mailbox's mail at Postfix (exact access(5) lines for every address that reaches it).
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Lock a user out of Dovecot and let them back in, verified against the running Dovecot.
    #[command(subcommand)]
    Login(LoginCommand),
    /// The Postfix queue for one user: list, hold, release exactly what mailmig held.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// What mailmig reads from Postfix's and Dovecot's own configuration (JSON).
    Config,
    /// Print the migration plan for USER (steps, commands, diffs); changes nothing.
    Plan(PlanArgs),
    /// Migrate USER (or every user of --users-from) to another mail location, journaled.
    Migrate(MigrateArgs),
    /// Continue interrupted runs (RUN, or every unfinished run) from their last completed step.
    Resume(RunArgs),
    /// Undo the completed steps of runs (RUN, or every unfinished run) in reverse.
    Rollback(RunArgs),
    /// Where runs and users stand: each run, and per state how many users (their latest run).
    Status(StatusArgs),
    /// Remove what ended runs left behind (old locations, moved-aside copies) once it is safe.
    Cleanup(CleanupArgs),
    /// End a campaign: are all users on the target? The global setting to make; then remove the
    /// per-user overrides that repeat it.
    Finish(FinishArgs),
    /// Dovecot's chained databases as an overlay over any userdb (SQL, LDAP, a large
    /// passwd-file): the configuration to add, and whether it is in place.
    #[command(subcommand)]
    Overlay(OverlayCommand),
    /// Man pages and shell completions, from this definition (for packaging).
    #[command(subcommand, hide = true)]
    Generate(crate::generate::GenerateCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum OverlayCommand {
    /// Print the configuration for the running Dovecot's release, and where each piece goes.
    Show(OverlayArgs),
    /// Check the running configuration (`doveconf -n`): exit 0 when the overlay is in place as
    /// measured, 1 with what is missing or misplaced.
    Check(OverlayArgs),
    /// Print what to change in the primary database for each user the location overlay moved:
    /// `user<TAB>field=value ...`, or `UPDATE` statements (--sql-table).
    Export(OverlayExportArgs),
    /// Remove the location overlay's records whose users the primary databases alone put at the
    /// same location (asked of a private Dovecot instance without the overlay); each pruned user
    /// is checked with the running Dovecot afterwards, and the file put back if one moved.
    Prune(OverlayPruneArgs),
    /// A passwd-file primary: write every location-overlay record's fields into the user's
    /// primary record, in one rewrite, then prune the records (the end of a campaign).
    Fold(OverlayPruneArgs),
}

#[derive(Debug, Args)]
pub(crate) struct OverlayExportArgs {
    /// Write `UPDATE TABLE SET FIELD = 'VALUE', ... WHERE USER_COLUMN = 'USER';` for a table
    /// whose columns are named as the userdb fields its query returns (`mail`; on Dovecot 2.4
    /// `mail_driver` and `mail_path`).
    #[arg(long, value_name = "TABLE")]
    pub(crate) sql_table: Option<String>,
    /// The column that holds the user name (with --sql-table).
    #[arg(long, value_name = "COLUMN", default_value = "username")]
    pub(crate) sql_user_column: String,
    /// JSON: one object per user with its fields.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OverlayPruneArgs {
    /// Say what would change, change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OverlayArgs {
    /// The lock-out overlay's passwd-file (default: mailmig-deny beside dovecot.conf).
    #[arg(long, value_name = "FILE")]
    pub(crate) deny_file: Option<Utf8PathBuf>,
    /// The location overlay's passwd-file (default: mailmig-override beside dovecot.conf).
    #[arg(long, value_name = "FILE")]
    pub(crate) location_file: Option<Utf8PathBuf>,
    /// JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CleanupArgs {
    /// Only runs that ended at least this long ago (`7d`, `12h`, `0s`).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub(crate) older_than: std::time::Duration,
    /// List what would be removed and the space it frees; remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct FinishArgs {
    /// The campaign's target location or template (as given to `migrate --to`).
    #[arg(long, value_name = "LOCATION")]
    pub(crate) to: String,
    /// Only the users of this domain.
    #[arg(long, value_name = "DOMAIN")]
    pub(crate) domain: Option<String>,
    /// Remove the per-user location overrides that repeat the global default (once it is the
    /// target), in one edit, checking every user's location before and after.
    #[arg(long)]
    pub(crate) remove_overrides: bool,
    /// JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// How a migration is done.
#[derive(Debug, Args, Clone)]
pub(crate) struct MigrationOptions {
    /// The target mail location (FORMAT:PATH, e.g. mdbox:~/mdbox), or a template Dovecot expands
    /// per user (mdbox:/var/vmail/%d/%n/mdbox; 2.4: %{user | domain}, %{user | username}).
    #[arg(long, value_name = "LOCATION")]
    pub(crate) to: String,
    /// `hold`: hold mail and lock logins out during the final sync (default); `live`: Dovecot's
    /// hold-free conversion (sync, switch, kick, final sync against the old location).
    #[arg(long, value_enum, default_value_t = Strategy::Hold)]
    pub(crate) strategy: Strategy,
    /// Skip the presync (hold strategy): the whole copy then happens while mail is held.
    #[arg(long)]
    pub(crate) no_presync: bool,
    /// How logins are refused (hold strategy). When Dovecot reads mailmig's overlay files
    /// (`mailmig overlay check`), always `deny`: a line in the deny overlay.
    #[arg(long, value_enum, default_value_t = LockMethod::AllowNets)]
    pub(crate) lock: LockMethod,
    /// HOLD (queue the mail, default) or DEFER (make senders retry) at Postfix.
    #[arg(long, value_enum, default_value_t = HoldAction::Hold)]
    pub(crate) hold_action: HoldAction,
    /// The reason recorded in the access map and shown by `nologin`.
    #[arg(long, default_value = "Mailbox maintenance")]
    pub(crate) reason: String,
    /// The longest a user's mail may stay held and logins refused (`90s`, `15m`, `1h`): a step
    /// still running then (a hung doveadm) is killed and the run rolled back; past the start of
    /// the release, it completes instead.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    pub(crate) max_hold: std::time::Duration,
    /// What must stay free on the target's file system after each user's copy: a percentage of
    /// its size (`5%`) or a size (`20GiB`). The copy's need is estimated from the source's size
    /// on disk (+10 % + 4 MiB); a user that does not fit is refused and a batch starts no one
    /// after them.
    #[arg(long, value_name = "PERCENT|SIZE", default_value = "5%")]
    pub(crate) min_free: mailmig_core::migrate::space::MinFree,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) options: MigrationOptions,
    /// The user, as the userdb knows them.
    #[arg(value_name = "USER")]
    pub(crate) user: String,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    pub(crate) options: MigrationOptions,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Migrate every user listed in FILE (one per line; blank lines and `#` comments skipped).
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub(crate) users_from: Option<Utf8PathBuf>,
    /// Users migrated at the same time (with --users-from).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) jobs: u16,
    /// Start no new user after N failures (rolled back, needs the admin, refused); the running
    /// ones finish.
    #[arg(long, value_name = "N")]
    pub(crate) max_failures: Option<usize>,
    /// Wait this long before each next user (per job), e.g. 30s.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub(crate) pause_between: std::time::Duration,
    /// Start no new user once FILE exists (default: STATE_DIR/stop); SIGTERM and SIGINT do the
    /// same. The running users finish; the others are reported as not started.
    #[arg(long, value_name = "FILE")]
    pub(crate) stop_file: Option<Utf8PathBuf>,
    /// The user, as the userdb knows them.
    #[arg(value_name = "USER", required_unless_present = "users_from")]
    pub(crate) user: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The run (see `mailmig status`); default: every unfinished run.
    #[arg(value_name = "RUN")]
    pub(crate) run: Option<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The run; default: every run.
    #[arg(value_name = "RUN")]
    pub(crate) run: Option<String>,
    /// JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Messages in the queue (`postqueue -j`), those with a recipient that is USER with --user.
    List(QueueListArgs),
    /// Put every queued message for USER that is not on hold on hold; record the IDs.
    Hold(QueueUserArgs),
    /// Release only the messages held for USER (recorded by `queue hold`, or --ids), except
    /// those with a recipient still held by another mailmig hold; deliver them now.
    Release(QueueReleaseArgs),
}

#[derive(Debug, Args)]
pub(crate) struct QueueListArgs {
    /// Only messages with a recipient that is this mailbox.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) user: Option<String>,
    /// One JSON object per message.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct QueueUserArgs {
    /// The mailbox.
    #[arg(long, value_name = "ADDRESS", required = true)]
    pub(crate) user: String,
}

#[derive(Debug, Args)]
pub(crate) struct QueueReleaseArgs {
    /// The mailbox.
    #[arg(long, value_name = "ADDRESS", required = true)]
    pub(crate) user: String,
    /// Release these queue IDs (one per line) instead of the recorded ones.
    #[arg(long, value_name = "FILE")]
    pub(crate) ids: Option<Utf8PathBuf>,
    /// The access map of mailmig's holds (default: from --postfix-config).
    #[arg(long, value_name = "FILE")]
    pub(crate) map: Option<Utf8PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LoginCommand {
    /// Record the user's record, add `allow_nets=` (or `nologin=y reason=...`), confirm Dovecot
    /// refuses the user, kick the user's sessions and confirm none is left.
    Disable(LoginDisableArgs),
    /// Restore exactly the fields `disable` changed and confirm Dovecot accepts the user.
    Enable(LoginEnableArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LoginDisableArgs {
    /// The passwd-file (default: the passwd-file passdb of --dovecot-config).
    #[arg(long, value_name = "FILE")]
    pub(crate) passwd_file: Option<Utf8PathBuf>,
    /// `allow-nets`: every authentication fails; `nologin`: login processes refuse with the
    /// reason; `deny`: a line in mailmig's deny overlay (any passdb; `mailmig overlay show`).
    #[arg(long, value_enum, default_value_t = LockMethod::AllowNets)]
    pub(crate) method: LockMethod,
    /// The reason shown by `nologin` (spaces become `_`: passwd-files cannot hold them).
    #[arg(long, default_value = "Mailbox maintenance, back soon")]
    pub(crate) reason: String,
    /// The user, exactly as in the passwd-file.
    #[arg(value_name = "USER")]
    pub(crate) user: String,
}

#[derive(Debug, Args)]
pub(crate) struct LoginEnableArgs {
    /// The user.
    #[arg(value_name = "USER")]
    pub(crate) user: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HoldCommand {
    /// Write a HOLD (or DEFER) line for every address whose mail reaches each ADDRESS; postmap.
    /// Exit 1 when some address cannot be held by an exact key (listed on stderr).
    Add(HoldAddArgs),
    /// Remove exactly the lines `hold add` wrote for these mailboxes; postmap. Exit 1 if none.
    Remove(HoldRemoveArgs),
    /// The holds mailmig wrote: key, action, mailbox, since, reason.
    List(HoldListArgs),
    /// Is the hold effective? Exit 0 only when smtpd consults the map before accepting.
    Check(HoldCheckArgs),
}

/// Which access map holds.
#[derive(Debug, Args)]
pub(crate) struct HoldMapArgs {
    /// The access map source file. Default: the first `check_recipient_access` map of
    /// `smtpd_recipient_restrictions` (from --postfix-config).
    #[arg(long, value_name = "FILE")]
    pub(crate) map: Option<Utf8PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct HoldAddArgs {
    #[command(flatten)]
    pub(crate) map: HoldMapArgs,
    #[command(flatten)]
    pub(crate) edit: EditFlags,
    /// Virtual alias map source files (default: `virtual_alias_maps`).
    #[arg(long = "virtual", value_name = "FILE")]
    pub(crate) virtual_maps: Vec<Utf8PathBuf>,
    /// `recipient_delimiter` (default: from --postfix-config).
    #[arg(long, value_name = "CHARS")]
    pub(crate) recipient_delimiter: Option<String>,
    /// The reply text after the tag (senders may see it in the log or a bounce).
    #[arg(long, default_value = "Mailbox maintenance, please retry later")]
    pub(crate) reason: String,
    /// HOLD keeps the whole message (all recipients) in the hold queue; DEFER refuses only this
    /// recipient with a temporary error and the sender retries.
    #[arg(long, value_enum, default_value_t = HoldAction::Hold)]
    pub(crate) action: HoldAction,
    /// Do not run postmap after the edit.
    #[arg(long)]
    pub(crate) no_postmap: bool,
    /// The mailboxes to hold.
    #[arg(required = true, value_name = "ADDRESS")]
    pub(crate) addresses: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct HoldRemoveArgs {
    #[command(flatten)]
    pub(crate) map: HoldMapArgs,
    #[command(flatten)]
    pub(crate) edit: EditFlags,
    /// Do not run postmap after the edit.
    #[arg(long)]
    pub(crate) no_postmap: bool,
    /// The mailboxes whose holds to remove.
    #[arg(required = true, value_name = "ADDRESS")]
    pub(crate) addresses: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct HoldListArgs {
    #[command(flatten)]
    pub(crate) map: HoldMapArgs,
    /// One JSON object per line.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct HoldCheckArgs {
    #[command(flatten)]
    pub(crate) map: HoldMapArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PasswdCommand {
    /// Report what Dovecot would log or misread; exit 65 when anything is found.
    Check(PasswdCheckArgs),
    /// The record of USER as Dovecot's passdb and userdb lookups see it; exit 67 when Dovecot
    /// has no record for USER.
    Show(PasswdShowArgs),
    /// Set extra fields (`FIELD=VALUE`, or a bare `FIELD`) of USER's record.
    Set(PasswdSetArgs),
    /// Remove extra fields of USER's record. Exit 1 when none of them was there.
    Unset(PasswdUnsetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PasswdSetArgs {
    #[command(flatten)]
    pub(crate) setup: PasswdSetup,
    #[command(flatten)]
    pub(crate) edit: EditFlags,
    /// The passwd-file.
    #[arg(value_name = "FILE")]
    pub(crate) file: Utf8PathBuf,
    /// The user, exactly as in the file.
    #[arg(value_name = "USER")]
    pub(crate) user: String,
    /// `FIELD=VALUE` (an empty VALUE is allowed: `allow_nets=`) or a bare `FIELD`.
    #[arg(required = true, value_name = "FIELD=VALUE")]
    pub(crate) fields: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PasswdUnsetArgs {
    #[command(flatten)]
    pub(crate) setup: PasswdSetup,
    #[command(flatten)]
    pub(crate) edit: EditFlags,
    /// The passwd-file.
    #[arg(value_name = "FILE")]
    pub(crate) file: Utf8PathBuf,
    /// The user, exactly as in the file.
    #[arg(value_name = "USER")]
    pub(crate) user: String,
    /// The fields to remove.
    #[arg(required = true, value_name = "FIELD")]
    pub(crate) fields: Vec<String>,
}

/// How Dovecot uses the file.
#[derive(Debug, Args)]
pub(crate) struct PasswdSetup {
    /// The file is a passdb only (no userdb uses the same path).
    #[arg(long)]
    pub(crate) passdb_only: bool,
    /// Dovecot's major.minor: 2.2, 2.3 or 2.4 (2.4 dropped the legacy empty-8th-field mail
    /// location and ignores `userdb_mail=`). Default: the running Dovecot's (--dovecot-config),
    /// else 2.3.
    #[arg(long, value_name = "VERSION")]
    pub(crate) dovecot_version: Option<String>,
    /// `auth_username_format` keeps case (`%u` instead of the default `%Lu`).
    #[arg(long)]
    pub(crate) keep_case: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PasswdCheckArgs {
    #[command(flatten)]
    pub(crate) setup: PasswdSetup,
    /// One JSON object per finding.
    #[arg(long)]
    pub(crate) json: bool,
    /// The passwd-files.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<Utf8PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PasswdShowArgs {
    #[command(flatten)]
    pub(crate) setup: PasswdSetup,
    /// One JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// The passwd-file.
    #[arg(value_name = "FILE")]
    pub(crate) file: Utf8PathBuf,
    /// The user, as a client would give it (lowercased unless --keep-case).
    #[arg(value_name = "USER")]
    pub(crate) user: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MapCommand {
    /// Report what postmap would warn about, plus semantic errors; exit 65 when anything is found.
    Check(MapCheckArgs),
    /// Print the entries postmap would store (`postmap -s`), in source order.
    Dump(MapDumpArgs),
    /// Look one key up like `postmap -q KEY`: print the value (exit 0) or exit 1.
    Get(MapGetArgs),
    /// Add KEY VALUE, or replace the value of the entry postmap uses for KEY; then postmap.
    Set(MapSetArgs),
    /// Remove the entry postmap uses for KEY (with its continuation lines); then postmap.
    /// Exit 1 when there is none.
    Del(MapDelArgs),
}

/// How an edit is written.
#[derive(Debug, Args)]
pub(crate) struct EditFlags {
    /// Print the change as a unified diff and write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Keep the previous version as FILE.mailmig-TIMESTAMP.
    #[arg(long)]
    pub(crate) backup: bool,
    /// When the file cannot be replaced by rename (a single-file bind mount), rewrite it in
    /// place instead of failing (not atomic).
    #[arg(long)]
    pub(crate) copy_in_place: bool,
}

/// Which table type to rebuild with postmap.
#[derive(Debug, Args)]
pub(crate) struct PostmapFlags {
    /// The map type (hash, btree, lmdb, cdb, dbm, sdbm, texthash). Default: from the indexed
    /// file next to FILE, else hash.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) map_type: Option<mailmig_core::postfix::MapType>,
    /// Do not run postmap after the edit.
    #[arg(long)]
    pub(crate) no_postmap: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MapSetArgs {
    #[command(flatten)]
    pub(crate) edit: EditFlags,
    #[command(flatten)]
    pub(crate) postmap: PostmapFlags,
    /// The table source file.
    #[arg(value_name = "FILE")]
    pub(crate) file: Utf8PathBuf,
    /// The key (compared folded, like postmap).
    #[arg(value_name = "KEY")]
    pub(crate) key: String,
    /// The value.
    #[arg(value_name = "VALUE")]
    pub(crate) value: String,
}

#[derive(Debug, Args)]
pub(crate) struct MapDelArgs {
    #[command(flatten)]
    pub(crate) edit: EditFlags,
    #[command(flatten)]
    pub(crate) postmap: PostmapFlags,
    /// The table source file.
    #[arg(value_name = "FILE")]
    pub(crate) file: Utf8PathBuf,
    /// The key (compared folded, like postmap).
    #[arg(value_name = "KEY")]
    pub(crate) key: String,
}

/// How to read the values of a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MapKind {
    /// Only what postmap itself checks.
    Plain,
    /// virtual(5): values are address lists.
    Virtual,
    /// access(5): values are actions.
    Access,
}

#[derive(Debug, Args)]
pub(crate) struct MapCheckArgs {
    /// What the map is for; adds the semantic checks of that kind.
    #[arg(long, value_enum, default_value_t = MapKind::Plain)]
    pub(crate) kind: MapKind,
    /// Compare keys without case folding (like `postmap -f`).
    #[arg(long)]
    pub(crate) no_fold: bool,
    /// One JSON object per finding.
    #[arg(long)]
    pub(crate) json: bool,
    /// The table source files.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<Utf8PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct MapDumpArgs {
    /// Keys as written, not folded (like `postmap -f`).
    #[arg(long)]
    pub(crate) no_fold: bool,
    /// The table source file.
    #[arg(value_name = "FILE")]
    pub(crate) file: Utf8PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct MapGetArgs {
    /// Keys as written, not folded (like `postmap -f`).
    #[arg(long)]
    pub(crate) no_fold: bool,
    /// The table source file.
    #[arg(value_name = "FILE")]
    pub(crate) file: Utf8PathBuf,
    /// The key to look up.
    #[arg(value_name = "KEY")]
    pub(crate) key: String,
}

#[derive(Debug, Args)]
pub(crate) struct AliasesArgs {
    /// The address whose senders-by-alias are wanted (a mailbox address).
    #[arg(value_name = "ADDRESS")]
    pub(crate) address: String,
    /// A virtual alias map source file; repeat for several (searched in order, like
    /// `virtual_alias_maps`). Default: the hash/btree/texthash/lmdb/cdb maps of
    /// `virtual_alias_maps` from --postfix-config.
    #[arg(long = "virtual", value_name = "FILE")]
    pub(crate) virtual_maps: Vec<Utf8PathBuf>,
    /// `recipient_delimiter` (default: from --postfix-config, else none).
    #[arg(long, value_name = "CHARS")]
    pub(crate) recipient_delimiter: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub(crate) json: bool,
}
