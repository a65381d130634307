//! What the primary databases alone say about a user: a private Dovecot instance with the
//! running configuration minus mailmig's overlay, so that `doveadm user` through it answers as
//! if the overlay were not there — Dovecot itself, with the same drivers, queries and templates,
//! for any primary (passwd-file, SQL, LDAP).
//!
//! The instance is started from `doveconf -nP` of the running configuration with the overlay's
//! passdb and userdb blocks and every `service` block left out (so that it binds no port and no
//! socket of the running instance: its listeners are Dovecot's defaults under its own
//! `base_dir`), no protocols, and its own `base_dir`, `state_dir`, `instance_name` and
//! `log_path` in a fresh private directory. Measured on Dovecot 2.3.19.1 and 2.4.1: it starts
//! "without any protocols" and answers userdb lookups. It is stopped when dropped.

use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use fs_err::os::unix::fs::OpenOptionsExt as _;

use super::overlay::OverlayFiles;
use crate::process::{Argv, RunError, Runner};

/// Why the private instance cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrimaryError {
    /// A command failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Its directory or configuration cannot be written.
    #[error("the private Dovecot instance's directory: {0}")]
    Dir(#[from] std::io::Error),
    /// It did not answer in time.
    #[error("the private Dovecot instance ({config}) did not answer userdb lookups within {seconds} s; its log: {log}")]
    NotReady {
        /// Its configuration.
        config: Utf8PathBuf,
        /// The bound.
        seconds: u64,
        /// Its log file.
        log: Utf8PathBuf,
    },
}

/// Settings of the running instance the private one replaces with its own.
const OWN_SETTINGS: &[&str] = &[
    "base_dir",
    "state_dir",
    "instance_name",
    "log_path",
    "info_log_path",
    "debug_log_path",
    "protocols",
    "listen",
    "shutdown_clients",
];

/// The private instance's configuration: `doveconf -nP` output of the running one, the overlay's
/// blocks, every `service` block and the settings of [`OWN_SETTINGS`] left out, its own settings
/// for `dir` appended.
pub fn primary_config(doveconf: &str, files: &OverlayFiles, dir: &Utf8Path) -> String {
    let mut out = String::with_capacity(doveconf.len() + 256);
    let mut block: Vec<&str> = Vec::new();
    let mut depth = 0usize;
    for line in doveconf.lines() {
        let trimmed = line.trim();
        if depth == 0 && block.is_empty() {
            if let Some((key, _)) = trimmed.split_once(" = ") {
                if !trimmed.ends_with('{') && OWN_SETTINGS.contains(&key.trim()) {
                    continue;
                }
            }
        }
        if trimmed.ends_with('{') {
            depth += 1;
        }
        if depth > 0 {
            block.push(line);
        } else {
            out.push_str(line);
            out.push('\n');
        }
        if trimmed == "}" && depth > 0 {
            depth -= 1;
            if depth == 0 {
                let head = block.first().map_or("", |l| l.trim());
                let overlay = block.iter().any(|l| {
                    let l = l.trim_end();
                    l.ends_with(files.deny.as_str()) || l.ends_with(files.location.as_str())
                });
                if !head.starts_with("service ") && !overlay {
                    for l in &block {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
                block.clear();
            }
        }
    }
    out.push_str(&format!(
        "# mailmig: a private instance without the overlay\nbase_dir = {dir}/run\nstate_dir = {dir}/state\ninstance_name = mailmig-primary\nlog_path = {dir}/log\nprotocols = \n"
    ));
    out
}

/// A running private instance without the overlay; stopped when dropped.
pub struct PrimaryOnly<'r> {
    runner: &'r dyn Runner,
    config: Utf8PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for PrimaryOnly<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryOnly")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'r> PrimaryOnly<'r> {
    /// Start the instance for the running configuration `live` and wait until it answers a
    /// lookup of `probe` (any user; an unknown one answers too).
    pub fn start(
        runner: &'r dyn Runner,
        live: &Utf8Path,
        files: &OverlayFiles,
        probe: &str,
    ) -> Result<Self, PrimaryError> {
        let doveconf = runner.run_expect(
            &Argv::new(["doveconf", "-nP", "-c", live.as_str()]),
            None,
            &[0],
        )?;
        let dir = tempfile::Builder::new()
            .prefix("mailmig-primary-")
            .tempdir()?;
        let path = Utf8PathBuf::try_from(dir.path().to_path_buf())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        // Dovecot's unprivileged processes reach base_dir below it; the configuration (with
        // -P's secrets) stays root's.
        fs_err::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let config = path.join("dovecot.conf");
        let text = primary_config(&String::from_utf8_lossy(&doveconf.stdout), files, &path);
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&config)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        drop(file);
        let start = Argv::new(["dovecot", "-c", config.as_str()]);
        let code = runner.start_daemon(&start)?;
        if code != Some(0) {
            return Err(RunError::Failed {
                argv: start,
                code,
                stderr: format!("see {}", path.join("log")),
            }
            .into());
        }
        let instance = Self {
            runner,
            config,
            _dir: dir,
        };
        instance.wait_ready(probe, &path)?;
        Ok(instance)
    }

    fn wait_ready(&self, probe: &str, dir: &Utf8Path) -> Result<(), PrimaryError> {
        let limit = Duration::from_secs(15);
        let deadline = Instant::now() + limit;
        loop {
            let out = self.runner.run(
                &Argv::new([
                    "doveadm",
                    "-c",
                    self.config.as_str(),
                    "user",
                    "-f",
                    "home",
                    probe,
                ]),
                None,
            )?;
            if matches!(out.code, Some(0 | 67)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PrimaryError::NotReady {
                    config: self.config.clone(),
                    seconds: limit.as_secs(),
                    log: dir.join("log"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its configuration file: `doveadm -c` it to ask the primary databases alone.
    pub fn config(&self) -> &Utf8Path {
        &self.config
    }
}

impl Drop for PrimaryOnly<'_> {
    fn drop(&mut self) {
        let _ = self.runner.run(
            &Argv::new(["doveadm", "-c", self.config.as_str(), "stop"]),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_services_and_own_settings_are_left_out() {
        let files = OverlayFiles::beside(Utf8Path::new("/etc/dovecot/dovecot.conf"));
        let doveconf = "# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf\nbase_dir = /run/dovecot\nmail_driver = maildir\nprotocols = imap lmtp\nlisten = *\nsql_driver = sqlite\npassdb mailmig-deny {\n  deny = yes\n  driver = passwd-file\n  passwd_file_path = /etc/dovecot/mailmig-deny\n}\npassdb sql {\n  query = SELECT 1\n}\nuserdb sql {\n  query = SELECT 2\n  result_success = continue-ok\n}\nuserdb mailmig-override {\n  driver = passwd-file\n  passwd_file_path = /etc/dovecot/mailmig-override\n  skip = notfound\n}\nservice auth {\n  unix_listener /var/spool/postfix/private/auth {\n    mode = 0660\n  }\n}\nnamespace inbox {\n  inbox = yes\n}\n";
        let out = primary_config(doveconf, &files, Utf8Path::new("/tmp/p"));
        assert_eq!(
            out,
            "# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf\nmail_driver = maildir\nsql_driver = sqlite\npassdb sql {\n  query = SELECT 1\n}\nuserdb sql {\n  query = SELECT 2\n  result_success = continue-ok\n}\nnamespace inbox {\n  inbox = yes\n}\n# mailmig: a private instance without the overlay\nbase_dir = /tmp/p/run\nstate_dir = /tmp/p/state\ninstance_name = mailmig-primary\nlog_path = /tmp/p/log\nprotocols = \n"
        );
    }
}
