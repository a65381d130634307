//! The running Dovecot, reached with `doveconf -c CONFIG` and `doveadm -c CONFIG`: its
//! configuration (read once), auth lookups, sessions, kicks and the auth cache.

use std::cell::OnceCell;

use camino::Utf8PathBuf;

use super::config::{ConfigError, DovecotConfig, DovecotVersion, Namespace};
use crate::process::{Argv, RunError, Runner};

/// Why the running Dovecot cannot be asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DovecotError {
    /// A command failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// `doveconf -n`'s output cannot be used.
    #[error("{config}: {source}")]
    Config {
        /// The configuration file.
        config: Utf8PathBuf,
        /// Why.
        source: ConfigError,
    },
}

/// What a migration needs to know of Dovecot's configuration (`mailmig config` prints it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DovecotSettings {
    /// The release (`2.3` or `2.4`).
    pub version: DovecotVersion,
    /// The version `doveconf -n` printed (`2.4.1-4`).
    pub version_text: Option<String>,
    /// The passwd-files of passwd-file passdbs.
    pub passwd_files: Vec<Utf8PathBuf>,
    /// The userdb drivers, in order.
    pub userdb_drivers: Vec<String>,
    /// `auth_cache_size` is not 0.
    pub auth_cache_enabled: bool,
    /// User names are lowercased before lookups (`auth_username_format`).
    pub lowercase_user_names: bool,
    /// The namespaces and their separators (dsync refuses different separators).
    pub namespaces: Vec<Namespace>,
    /// The quota backend (`maildir`, `count`, `dict`, ...), if quota is on (2.3's `plugin`).
    pub quota_backend: Option<String>,
    /// The global location as `FORMAT:PATH` (2.3 `mail_location`; 2.4 `mail_driver` and
    /// `mail_path`).
    pub mail_location: Option<String>,
    /// POP3 is among `protocols`.
    pub pop3: bool,
    /// A full-text search plugin is loaded.
    pub fts: bool,
}

impl From<&DovecotConfig> for DovecotSettings {
    fn from(c: &DovecotConfig) -> Self {
        Self {
            version: c.version,
            version_text: c.version_text.clone(),
            passwd_files: c.passwd_files(),
            userdb_drivers: c.userdbs.iter().map(|db| db.driver.clone()).collect(),
            auth_cache_enabled: c.auth_cache_enabled(),
            lowercase_user_names: c.lowercases_user_names(),
            namespaces: c.namespaces.clone(),
            quota_backend: c.quota_backend.clone(),
            mail_location: c.mail_location(),
            pop3: c.protocols().contains(&"pop3"),
            fts: c.fts,
        }
    }
}

/// The running Dovecot, reached with `doveconf -c CONFIG` and `doveadm -c CONFIG`.
pub struct Dovecot<'r> {
    /// Its configuration file.
    pub config: Utf8PathBuf,
    /// How commands run.
    pub runner: &'r dyn Runner,
    read: OnceCell<DovecotConfig>,
}

impl<'r> Dovecot<'r> {
    /// The Dovecot of `config`; nothing runs until asked.
    pub fn new(config: Utf8PathBuf, runner: &'r dyn Runner) -> Self {
        Self {
            config,
            runner,
            read: OnceCell::new(),
        }
    }

    fn doveadm(&self, args: &[&str]) -> Argv {
        let mut v = vec!["doveadm", "-c", self.config.as_str()];
        v.extend_from_slice(args);
        Argv::new(v)
    }

    /// The configuration (`doveconf -c CONFIG -n`, run once).
    pub fn configuration(&self) -> Result<&DovecotConfig, DovecotError> {
        if let Some(c) = self.read.get() {
            return Ok(c);
        }
        let out = self.runner.run_expect(
            &Argv::new(["doveconf", "-c", self.config.as_str(), "-n"]),
            None,
            &[0],
        )?;
        let parsed =
            DovecotConfig::parse(&String::from_utf8_lossy(&out.stdout)).map_err(|source| {
                DovecotError::Config {
                    config: self.config.clone(),
                    source,
                }
            })?;
        Ok(self.read.get_or_init(|| parsed))
    }

    /// What mailmig reads from Dovecot's configuration.
    pub fn settings(&self) -> Result<DovecotSettings, DovecotError> {
        let mut settings = DovecotSettings::from(self.configuration()?);
        settings.passwd_files = self.passwd_files()?;
        Ok(settings)
    }

    /// mailmig's overlay files beside this configuration file.
    pub fn overlay_files(&self) -> super::overlay::OverlayFiles {
        super::overlay::OverlayFiles::beside(&self.config)
    }

    /// `doveadm auth lookup USER`: exit code and output (0 found, 67 unknown/denied, 75 failed).
    pub fn auth_lookup(&self, user: &str) -> Result<(i32, String), RunError> {
        let out =
            self.runner
                .run_expect(&self.doveadm(&["auth", "lookup", user]), None, &[0, 67, 75])?;
        Ok((
            out.code.unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }

    /// `doveadm kick USER`: whether a connection was kicked (2.3 exits 68 when there is nobody
    /// to kick; 2.4 exits 0 and prints `0 connections kicked`).
    pub fn kick(&self, user: &str) -> Result<bool, RunError> {
        let out = self
            .runner
            .run_expect(&self.doveadm(&["kick", user]), None, &[0, 68])?;
        let none = String::from_utf8_lossy(&out.stdout)
            .trim_start()
            .starts_with("0 connections");
        Ok(out.code == Some(0) && !none)
    }

    /// The user's connections (`doveadm -f tab who -1 USER`), LMTP deliveries excluded.
    pub fn sessions(&self, user: &str) -> Result<Vec<String>, RunError> {
        let argv = self.doveadm(&["-f", "tab", "who", "-1", user]);
        let out = self.runner.run_expect(&argv, None, &[0])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter(|l| {
                let proto = l.split('\t').nth(1).unwrap_or_default();
                !l.trim().is_empty() && proto != "lmtp"
            })
            .map(str::to_string)
            .collect())
    }

    /// Whether auth results are cached (`auth_cache_size` is not 0): edits then need a flush.
    pub fn auth_cache_enabled(&self) -> Result<bool, DovecotError> {
        Ok(self.configuration()?.auth_cache_enabled())
    }

    /// Drop the user's cached auth results (`doveadm auth cache flush USER`) when the cache is on.
    pub fn flush_auth_cache(&self, user: &str) -> Result<(), DovecotError> {
        if self.auth_cache_enabled()? {
            self.runner
                .run_expect(&self.doveadm(&["auth", "cache", "flush", user]), None, &[0])?;
        }
        Ok(())
    }

    /// The passwd-files of passwd-file passdbs and userdbs, mailmig's overlay files left out
    /// (the primary databases).
    pub fn passwd_files(&self) -> Result<Vec<Utf8PathBuf>, DovecotError> {
        Ok(super::overlay::primary_passwd_files(
            self.configuration()?,
            &self.overlay_files(),
        ))
    }

    /// Whether a userdb setup would make LMTP do passdb lookups (`userdb static` without
    /// `allow_all_users=yes`).
    pub fn lmtp_checks_passdb(&self) -> Result<bool, DovecotError> {
        Ok(self.configuration()?.lmtp_checks_passdb())
    }
}
