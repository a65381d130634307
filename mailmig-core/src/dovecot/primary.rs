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
use crate::state::StateDir;

/// Why the private instance cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrimaryError {
    /// A command failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The record of the running instance cannot be kept.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
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
    // Absolute, these would point the private instance's doveadm at the running instance's
    // sockets (its lookups would then answer with the overlay).
    "auth_socket_path",
    "doveadm_socket_path",
];

/// The private instance's configuration: `doveconf -nP` output of the running one, the overlay's
/// blocks, every `service` block, and the settings that name the running instance's places
/// (`base_dir`, `state_dir`, `instance_name`, the log paths, `protocols`, `listen`,
/// `shutdown_clients`, `auth_socket_path`, `doveadm_socket_path`) left out; its own settings for
/// `dir` appended.
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

/// Where the state directory records the running private instance (its configuration file),
/// so that one left behind by a killed mailmig is stopped by the next.
const STATE_SUB: &str = "primary";
const STATE_NAME: &str = "instance";

/// A running private instance without the overlay; stopped when dropped.
pub struct PrimaryOnly<'r> {
    runner: &'r dyn Runner,
    config: Utf8PathBuf,
    state: &'r StateDir,
    dir: Option<tempfile::TempDir>,
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
    /// lookup of `probe` (any user; an unknown one answers too). An instance a killed mailmig
    /// left running (recorded in `state`) is stopped first.
    pub fn start(
        runner: &'r dyn Runner,
        state: &'r StateDir,
        live: &Utf8Path,
        files: &OverlayFiles,
        probe: &str,
    ) -> Result<Self, PrimaryError> {
        if let Some(old) = state.read(STATE_SUB, STATE_NAME)? {
            let old = String::from_utf8_lossy(&old).trim().to_string();
            let _ = runner.run(&Argv::new(["doveadm", "-c", old.as_str(), "stop"]), None);
            remove_leftover(Utf8Path::new(&old));
            state.remove(STATE_SUB, STATE_NAME)?;
        }
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
        state.write(STATE_SUB, STATE_NAME, config.as_str().as_bytes())?;
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
            state,
            dir: Some(dir),
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

/// The directory of an instance a killed mailmig left behind (its configuration may hold
/// `-P`'s secrets): removed when it is one of ours in the temporary directory. Symbolic links
/// inside are removed, not followed.
fn remove_leftover(config: &Utf8Path) {
    let Some(dir) = config.parent() else { return };
    let ours = dir.parent().map(|p| p.as_std_path()) == Some(std::env::temp_dir().as_path())
        && dir
            .file_name()
            .is_some_and(|n| n.starts_with("mailmig-primary-"));
    if ours {
        let _ = fs_err::remove_dir_all(dir);
    }
}

impl Drop for PrimaryOnly<'_> {
    fn drop(&mut self) {
        let stopped = self.runner.run(
            &Argv::new(["doveadm", "-c", self.config.as_str(), "stop"]),
            None,
        );
        if stopped.is_ok_and(|o| o.code == Some(0)) {
            let _ = self.state.remove(STATE_SUB, STATE_NAME);
        } else if let Some(dir) = self.dir.take() {
            // Still running: its configuration stays for the next start to stop it.
            let _ = dir.keep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_services_and_own_settings_are_left_out() {
        let files = OverlayFiles::beside(Utf8Path::new("/etc/dovecot/dovecot.conf"));
        let doveconf = "# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf\nbase_dir = /run/dovecot\nauth_socket_path = /run/dovecot/auth-userdb\nmail_driver = maildir\nprotocols = imap lmtp\nlisten = *\nsql_driver = sqlite\npassdb mailmig-deny {\n  deny = yes\n  driver = passwd-file\n  passwd_file_path = /etc/dovecot/mailmig-deny\n}\npassdb sql {\n  query = SELECT 1\n}\nuserdb sql {\n  query = SELECT 2\n  result_success = continue-ok\n}\nuserdb mailmig-override {\n  driver = passwd-file\n  passwd_file_path = /etc/dovecot/mailmig-override\n  skip = notfound\n}\nservice auth {\n  unix_listener /var/spool/postfix/private/auth {\n    mode = 0660\n  }\n}\nnamespace inbox {\n  inbox = yes\n}\n";
        let out = primary_config(doveconf, &files, Utf8Path::new("/tmp/p"));
        assert_eq!(
            out,
            "# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf\nmail_driver = maildir\nsql_driver = sqlite\npassdb sql {\n  query = SELECT 1\n}\nuserdb sql {\n  query = SELECT 2\n  result_success = continue-ok\n}\nnamespace inbox {\n  inbox = yes\n}\n# mailmig: a private instance without the overlay\nbase_dir = /tmp/p/run\nstate_dir = /tmp/p/state\ninstance_name = mailmig-primary\nlog_path = /tmp/p/log\nprotocols = \n"
        );
    }

    /// Records the commands; Dovecot's answers as a started instance gives them.
    struct Fake(std::cell::RefCell<Vec<String>>);

    impl Runner for Fake {
        fn run(&self, argv: &Argv, _: Option<&[u8]>) -> Result<crate::process::Output, RunError> {
            let line = argv.to_string();
            self.0.borrow_mut().push(line.clone());
            let (code, stdout) = if line.starts_with("doveconf") {
                (0, "# 2.3.19.1 (9b53102964): /c\nbase_dir = /run/dovecot\n")
            } else if line.contains(" user ") {
                (67, "")
            } else {
                (0, "")
            };
            Ok(crate::process::Output {
                code: Some(code),
                stdout: stdout.into(),
                stderr: Vec::new(),
            })
        }
    }

    #[test]
    fn an_instance_left_running_is_stopped_and_the_own_one_forgotten_when_stopped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Utf8PathBuf::try_from(tmp.path().to_path_buf()).expect("utf8");
        let leftover = tempfile::Builder::new()
            .prefix("mailmig-primary-")
            .tempdir()
            .expect("leftover")
            .keep();
        let old = Utf8PathBuf::try_from(leftover.join("dovecot.conf")).expect("utf8");
        fs_err::write(&old, "secret").expect("old config");
        let state = StateDir::open(&dir.join("state")).expect("state");
        state
            .write(STATE_SUB, STATE_NAME, old.as_str().as_bytes())
            .expect("record");
        let fake = Fake(Default::default());
        let files = OverlayFiles::beside(Utf8Path::new("/c"));
        let own = {
            let p = PrimaryOnly::start(&fake, &state, Utf8Path::new("/c"), &files, "a@x")
                .expect("started");
            let own = p.config().to_owned();
            let recorded = state
                .read(STATE_SUB, STATE_NAME)
                .expect("read")
                .expect("record");
            assert_eq!(recorded, own.as_str().as_bytes());
            assert!(fs_err::read_to_string(&own)
                .expect("config")
                .contains("protocols = \n"));
            own
        };
        let log = fake.0.borrow().clone();
        assert_eq!(log[0], format!("doveadm -c {old} stop"));
        assert!(!leftover.exists(), "the leftover directory is removed");
        assert_eq!(log.last().expect("stop"), &format!("doveadm -c {own} stop"));
        assert_eq!(state.read(STATE_SUB, STATE_NAME).expect("read"), None);
        assert!(!own.exists(), "the directory is removed once stopped");
    }
}
