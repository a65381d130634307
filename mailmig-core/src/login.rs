//! Locking a user out of Dovecot (and letting them back in) through the passwd-file, verified
//! against the running Dovecot.
//!
//! `disable` records the user's exact record line in a state file first (so that a crash at any
//! point leaves a recorded way back), adds `allow_nets=` (no network may authenticate) or
//! `nologin=y reason=...`, flushes the user's cached auth results when `auth_cache_size` is on,
//! waits until `doveadm auth lookup` shows it, kicks the user's sessions and checks `doveadm who`.
//! `enable` restores the fields exactly as they were.

use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use crate::dovecot::{IdResolver, PasswdEditError, PasswdFile, PasswdOptions};
use crate::process::{Argv, RunError, Runner};
use crate::transaction::{CommitOptions, FileTransaction, TransactionError};

/// How logins are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockMethod {
    /// `allow_nets=` (empty): every authentication fails, as for a wrong password (IMAP, POP3,
    /// submission, Postfix SASL). LMTP and doveadm are not affected — unless a `userdb static`
    /// without `allow_all_users=yes` makes LMTP do a passdb lookup.
    AllowNets,
    /// `nologin=y reason=...`: Dovecot's login processes refuse with the reason; Postfix SASL
    /// still authenticates.
    Nologin,
}

/// What was there before, to restore exactly.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockRecord {
    /// The user.
    pub user: String,
    /// The passwd-file.
    pub passwd_file: Utf8PathBuf,
    /// The method used.
    pub method: LockMethod,
    /// The record line before the lock-out, exactly (lossy UTF-8 for the state file).
    pub line_before: String,
    /// The fields the lock-out set, with their previous values (`None`: absent; `Some(None)`:
    /// a bare key; `Some(Some(v))`: `key=v`).
    pub previous: Vec<(String, Option<Option<String>>)>,
}

/// Why a lock-out step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The passwd-file edit was refused.
    #[error(transparent)]
    Edit(#[from] PasswdEditError),
    /// Writing a file failed.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// A doveadm command failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Dovecot did not show the change in time.
    #[error(
        "Dovecot did not {what} within {seconds} s (is the passwd-file the one Dovecot reads?)"
    )]
    NotConfirmed {
        /// What was expected.
        what: &'static str,
        /// The bound.
        seconds: u64,
    },
    /// The state file cannot be read or written.
    #[error("state file `{path}`: {reason}")]
    State {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        reason: String,
    },
    /// `allow_nets` would make LMTP reject the user's mail.
    #[error("this Dovecot has `userdb static` without `allow_all_users=yes`: LMTP checks the passdb, so allow_nets= would bounce the user's mail with 550; use --method nologin")]
    AllowNetsBouncesMail,
    /// The reason text cannot be stored.
    #[error("the reason cannot contain control bytes or `%`: `{0}`")]
    BadReason(String),
}

/// What a migration needs to know of Dovecot's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DovecotSettings {
    /// The passwd-files of passwd-file passdbs.
    pub passwd_files: Vec<Utf8PathBuf>,
    /// The userdb drivers, in order.
    pub userdb_drivers: Vec<String>,
    /// `auth_cache_size` is not 0.
    pub auth_cache_enabled: bool,
    /// Each namespace and its hierarchy separator (empty: the mail format's default, `.` for
    /// maildir and `/` for mdbox — dsync refuses different separators).
    pub namespace_separators: Vec<(String, String)>,
    /// The quota backend (`maildir`, `count`, `dict`, ...), if quota is on.
    pub quota_backend: Option<String>,
    /// The global `mail_location`.
    pub mail_location: Option<String>,
}

/// The running Dovecot, reached with `doveadm -c CONFIG`.
pub struct Dovecot<'r> {
    /// Its configuration file.
    pub config: Utf8PathBuf,
    /// How commands run.
    pub runner: &'r dyn Runner,
}

impl Dovecot<'_> {
    fn doveadm(&self, args: &[&str]) -> Argv {
        let mut v = vec!["doveadm", "-c", self.config.as_str()];
        v.extend_from_slice(args);
        Argv::new(v)
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

    /// `doveadm kick USER`: 0 kicked, 68 nobody to kick.
    pub fn kick(&self, user: &str) -> Result<bool, RunError> {
        let out = self
            .runner
            .run_expect(&self.doveadm(&["kick", user]), None, &[0, 68])?;
        Ok(out.code == Some(0))
    }

    /// The user's connections (`doveadm -f tab who -1 USER`), LMTP deliveries excluded.
    pub fn sessions(&self, user: &str) -> Result<Vec<String>, RunError> {
        let argv = Argv::new([
            "doveadm",
            "-c",
            self.config.as_str(),
            "-f",
            "tab",
            "who",
            "-1",
            user,
        ]);
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

    /// What mailmig reads from Dovecot's configuration (`doveconf -n`).
    pub fn settings(&self) -> Result<DovecotSettings, RunError> {
        let out = self.runner.run_expect(
            &Argv::new(["doveconf", "-c", self.config.as_str(), "-n"]),
            None,
            &[0],
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut settings = DovecotSettings {
            passwd_files: self.passwd_files()?,
            userdb_drivers: self.blocks("userdb")?.into_iter().map(|(d, _)| d).collect(),
            auth_cache_enabled: self.auth_cache_enabled()?,
            ..DovecotSettings::default()
        };
        let mut namespace: Option<(String, String)> = None;
        let mut in_plugin = false;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line
                .strip_prefix("namespace ")
                .and_then(|r| r.strip_suffix('{'))
            {
                namespace = Some((rest.trim().to_string(), String::new()));
            } else if line == "plugin {" {
                in_plugin = true;
            } else if line == "}" {
                if let Some(ns) = namespace.take() {
                    settings.namespace_separators.push(ns);
                }
                in_plugin = false;
            } else if let (Some((_, sep)), Some(v)) =
                (&mut namespace, line.strip_prefix("separator = "))
            {
                *sep = v.to_string();
            } else if in_plugin {
                if let Some(v) = line.strip_prefix("quota = ") {
                    settings.quota_backend = v.split(':').next().map(str::to_string);
                }
            } else if let Some(v) = line.strip_prefix("mail_location = ") {
                settings.mail_location = Some(v.to_string());
            }
        }
        Ok(settings)
    }

    /// Whether auth results are cached (`auth_cache_size` is not 0): edits then need a flush.
    pub fn auth_cache_enabled(&self) -> Result<bool, RunError> {
        let out = self.runner.run_expect(
            &Argv::new([
                "doveconf",
                "-c",
                self.config.as_str(),
                "-h",
                "auth_cache_size",
            ]),
            None,
            &[0],
        )?;
        let size = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(!size.is_empty() && size != "0")
    }

    /// Drop the user's cached auth results (`doveadm auth cache flush USER`) when the cache is on.
    pub fn flush_auth_cache(&self, user: &str) -> Result<(), RunError> {
        if self.auth_cache_enabled()? {
            self.runner
                .run_expect(&self.doveadm(&["auth", "cache", "flush", user]), None, &[0])?;
        }
        Ok(())
    }

    /// `(driver, args)` of every `passdb { }` or `userdb { }` block (`kind`), from `doveconf -n`.
    fn blocks(&self, kind: &str) -> Result<Vec<(String, String)>, RunError> {
        let out = self.runner.run_expect(
            &Argv::new(["doveconf", "-c", self.config.as_str(), "-n"]),
            None,
            &[0],
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut blocks = Vec::new();
        let mut current: Option<(String, String)> = None;
        for line in text.lines().map(str::trim) {
            if line.starts_with(kind) && line.ends_with('{') {
                current = Some((String::new(), String::new()));
            } else if line == "}" {
                if let Some(block) = current.take() {
                    blocks.push(block);
                }
            } else if let Some((driver, args)) = &mut current {
                if let Some(v) = line.strip_prefix("driver = ") {
                    *driver = v.to_string();
                } else if let Some(v) = line.strip_prefix("args = ") {
                    *args = v.to_string();
                }
            }
        }
        Ok(blocks)
    }

    /// The passwd-files of `passdb { driver = passwd-file }` blocks, from `doveconf -n`.
    pub fn passwd_files(&self) -> Result<Vec<Utf8PathBuf>, RunError> {
        Ok(self
            .blocks("passdb")?
            .into_iter()
            .filter(|(driver, _)| driver == "passwd-file")
            .filter_map(|(_, args)| {
                args.split(' ')
                    .next_back()
                    .filter(|p| p.starts_with('/'))
                    .map(Utf8PathBuf::from)
            })
            .collect())
    }

    /// Whether a userdb setup would make LMTP do passdb lookups (`userdb static` without
    /// `allow_all_users=yes`), read from `doveconf -n`.
    pub fn lmtp_checks_passdb(&self) -> Result<bool, RunError> {
        Ok(self
            .blocks("userdb")?
            .iter()
            .any(|(driver, args)| driver == "static" && !args.contains("allow_all_users=yes")))
    }
}

fn wait_for(
    limit: Duration,
    mut f: impl FnMut() -> Result<bool, RunError>,
) -> Result<bool, RunError> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(true);
        }
        if start.elapsed() > limit {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The state file of a user's lock-out.
pub fn state_file(state_dir: &Utf8Path, user: &str) -> Utf8PathBuf {
    state_dir.join("login").join(format!("{user}.json"))
}

/// Read a lock-out state file.
pub fn read_state(state: &Utf8Path) -> Result<LockRecord, LoginError> {
    let text = fs_err::read(state).map_err(|e| LoginError::State {
        path: state.to_owned(),
        reason: format!("{e} (was the user disabled by mailmig?)"),
    })?;
    serde_json::from_slice(&text).map_err(|e| LoginError::State {
        path: state.to_owned(),
        reason: e.to_string(),
    })
}

/// Lock `user` out: record, edit, confirm, kick. Returns the record written to the state file.
/// Safe to repeat after an interruption: an existing state file for the user (same method) is
/// kept, as it holds the record from before the first attempt.
#[allow(clippy::too_many_arguments)]
pub fn disable(
    dovecot: &Dovecot<'_>,
    passwd_file: &Utf8Path,
    options: &PasswdOptions,
    ids: &dyn IdResolver,
    state_dir: &Utf8Path,
    user: &str,
    method: LockMethod,
    reason: &str,
) -> Result<LockRecord, LoginError> {
    if reason.chars().any(char::is_control) || reason.contains('%') {
        return Err(LoginError::BadReason(reason.to_string()));
    }
    if method == LockMethod::AllowNets && dovecot.lmtp_checks_passdb()? {
        return Err(LoginError::AllowNetsBouncesMail);
    }
    let reason = reason.trim().replace(' ', "_");
    let fields: Vec<(&str, Option<&str>)> = match method {
        LockMethod::AllowNets => vec![("allow_nets", Some(""))],
        LockMethod::Nologin => vec![("nologin", Some("y")), ("reason", Some(reason.as_str()))],
    };
    let tx = FileTransaction::prepare(passwd_file)?;
    let mut file = PasswdFile::parse(tx.original().to_vec(), options);
    let entry = file
        .lookup(user.as_bytes(), ids)
        .ok_or_else(|| PasswdEditError::NoSuchUser {
            user: user.to_string(),
        })?;
    let extra = entry.extra();
    let previous: Vec<(String, Option<Option<String>>)> = fields
        .iter()
        .map(|(k, _)| {
            let before = extra
                .iter()
                .find(|f| f.key.as_ref() == k.as_bytes())
                .map(|f| {
                    f.value
                        .as_ref()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                });
            ((*k).to_string(), before)
        })
        .collect();
    let record = LockRecord {
        user: user.to_string(),
        passwd_file: tx.path().to_owned(),
        method,
        line_before: String::from_utf8_lossy(entry.raw()).into_owned(),
        previous,
    };
    // The way back is recorded before anything changes. A state file left by an interrupted
    // run of this user holds the record as it was before *that* lock-out: keep it (the record
    // read now may already carry the lock-out fields).
    let state = state_file(state_dir, user);
    let record = match read_state(&state) {
        Ok(earlier) if earlier.user == record.user && earlier.method == record.method => earlier,
        _ => {
            let json = serde_json::to_vec_pretty(&record).map_err(|e| LoginError::State {
                path: state.clone(),
                reason: e.to_string(),
            })?;
            crate::transaction::write_state_file(&state, &json)?;
            record
        }
    };
    for (k, v) in &fields {
        file.set_extra(user.as_bytes(), k.as_bytes(), v.map(str::as_bytes), ids)?;
    }
    tx.commit(&file.render(), &CommitOptions::default())?;
    dovecot.flush_auth_cache(user)?;
    let limit = Duration::from_secs(5);
    let seen = match method {
        LockMethod::AllowNets => wait_for(limit, || Ok(dovecot.auth_lookup(user)?.0 == 67))?,
        LockMethod::Nologin => wait_for(limit, || {
            let (code, out) = dovecot.auth_lookup(user)?;
            Ok(code == 0 && out.lines().any(|l| l.trim_start().starts_with("nologin")))
        })?,
    };
    if !seen {
        return Err(LoginError::NotConfirmed {
            what: "refuse the user's logins",
            seconds: limit.as_secs(),
        });
    }
    dovecot.kick(user)?;
    if !wait_for(limit, || Ok(dovecot.sessions(user)?.is_empty()))? {
        return Err(LoginError::NotConfirmed {
            what: "end the user's sessions",
            seconds: limit.as_secs(),
        });
    }
    Ok(record)
}

/// Let `user` log in again: restore the recorded fields exactly, confirm, forget the state.
pub fn enable(
    dovecot: &Dovecot<'_>,
    options: &PasswdOptions,
    ids: &dyn IdResolver,
    state_dir: &Utf8Path,
    user: &str,
) -> Result<LockRecord, LoginError> {
    let state = state_file(state_dir, user);
    let record = read_state(&state)?;
    let tx = FileTransaction::prepare(&record.passwd_file)?;
    let mut file = PasswdFile::parse(tx.original().to_vec(), options);
    for (key, before) in &record.previous {
        match before {
            None => {
                file.remove_extra(user.as_bytes(), key.as_bytes(), ids)?;
            }
            Some(value) => {
                file.set_extra(
                    user.as_bytes(),
                    key.as_bytes(),
                    value.as_deref().map(str::as_bytes),
                    ids,
                )?;
            }
        }
    }
    tx.commit(&file.render(), &CommitOptions::default())?;
    dovecot.flush_auth_cache(user)?;
    // With an allow_nets of its own restored, a lookup without a remote IP may still be denied:
    // then the committed file is the confirmation; otherwise Dovecot must accept the user.
    let own_allow_nets = record
        .previous
        .iter()
        .any(|(k, v)| k == "allow_nets" && v.is_some());
    let limit = Duration::from_secs(5);
    let ok = own_allow_nets
        || wait_for(limit, || {
            let (code, out) = dovecot.auth_lookup(user)?;
            Ok(code == 0 && !out.lines().any(|l| l.trim_start().starts_with("nologin")))
        })?;
    if !ok {
        return Err(LoginError::NotConfirmed {
            what: "accept the user again",
            seconds: limit.as_secs(),
        });
    }
    fs_err::remove_file(&state).map_err(|e| LoginError::State {
        path: state.clone(),
        reason: e.to_string(),
    })?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Output;

    /// Answers `doveconf -n` with a fixed configuration and `-h auth_cache_size` with 0.
    struct FakeDoveconf(&'static str);

    impl Runner for FakeDoveconf {
        fn run(&self, argv: &Argv, _: Option<&[u8]>) -> Result<Output, RunError> {
            let last = argv.0.last().map(|a| a.to_string_lossy().into_owned());
            let stdout = if last.as_deref() == Some("auth_cache_size") {
                b"0\n".to_vec()
            } else {
                self.0.as_bytes().to_vec()
            };
            Ok(Output {
                code: Some(0),
                stdout,
                stderr: Vec::new(),
            })
        }
    }

    #[test]
    fn settings_from_doveconf() {
        let fake = FakeDoveconf(
            "mail_location = maildir:~/Maildir\nnamespace inbox {\n  inbox = yes\n  separator = .\n}\nnamespace shared {\n  prefix = shared/\n}\npassdb {\n  args = scheme=CRYPT /etc/dovecot/users\n  driver = passwd-file\n}\nplugin {\n  quota = maildir:User quota\n}\nuserdb {\n  args = uid=vmail gid=vmail home=/srv/%u\n  driver = static\n}\n",
        );
        let d = Dovecot {
            config: Utf8PathBuf::from("/etc/dovecot/dovecot.conf"),
            runner: &fake,
        };
        let s = d.settings().expect("settings");
        assert_eq!(s.passwd_files, [Utf8PathBuf::from("/etc/dovecot/users")]);
        assert_eq!(s.userdb_drivers, ["static"]);
        assert_eq!(
            s.namespace_separators,
            [
                ("inbox".to_string(), ".".to_string()),
                ("shared".to_string(), String::new())
            ]
        );
        assert_eq!(s.quota_backend.as_deref(), Some("maildir"));
        assert!(
            d.lmtp_checks_passdb().expect("reads"),
            "userdb static without allow_all_users"
        );
    }
}
