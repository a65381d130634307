//! External commands: argument vectors only (never a shell), run through one [`Runner`] trait.
//!
//! The system implementation uses `duct` with captured stdout and stderr and checks the exit
//! status itself, so that every error carries the command, its exit code and its stderr.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

/// How long [`SystemRunner::run`] lets a command run before it kills it: nothing mailmig runs
/// should take longer, and a hung daemon must not keep a user's mail held forever. Callers that
/// know better (a long copy, a deadline) use [`Runner::run_within`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A command line: the program and its arguments, never a shell string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argv(pub Vec<OsString>);

impl Argv {
    /// Build from anything string-like.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self(args.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Argv {
    /// Shell-like rendering for messages: arguments with unusual bytes are single-quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let s = arg.to_string_lossy();
            let plain = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
            if plain {
                f.write_str(&s)?;
            } else {
                write!(f, "'{}'", s.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
}

/// A command could not be run, or ended in a way the caller did not accept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The program could not be started.
    #[error("could not run `{argv}`")]
    Spawn {
        /// The command.
        argv: Argv,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The program ran longer than allowed and was killed.
    #[error("`{argv}` did not finish within {seconds} s and was killed")]
    TimedOut {
        /// The command.
        argv: Argv,
        /// The limit.
        seconds: u64,
    },
    /// The program exited with a status the caller does not accept.
    #[error("`{argv}` failed with exit code {}{}", code.map_or("none (killed by a signal)".to_string(), |c| c.to_string()), stderr_section(stderr))]
    Failed {
        /// The command.
        argv: Argv,
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// Its standard error.
        stderr: String,
    },
}

fn stderr_section(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- stderr\n{}", stderr.trim_end())
    }
}

/// Runs external commands. Tests substitute a fake; production uses [`SystemRunner`].
pub trait Runner {
    /// Run `argv` with `stdin` as its standard input and capture everything. Any exit status is
    /// returned as an [`Output`]; only a failure to start is an error.
    fn run(&self, argv: &Argv, stdin: Option<&[u8]>) -> Result<Output, RunError>;

    /// [`Runner::run`], killing the command after `limit` ([`RunError::TimedOut`]). Runners
    /// that run nothing real (test fakes) may ignore the limit: the default does.
    fn run_within(
        &self,
        argv: &Argv,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Output, RunError> {
        let _ = limit;
        self.run(argv, stdin)
    }

    /// Start a daemon (`dovecot -c FILE`): its standard streams go nowhere (the daemon would hold a
    /// captured pipe open, and the caller wait for it), only the starter's exit code counts. The
    /// default runs it as [`Runner::run`] (test fakes).
    fn start_daemon(&self, argv: &Argv) -> Result<Option<i32>, RunError> {
        Ok(self.run(argv, None)?.code)
    }

    /// Run and accept only the listed exit codes.
    fn run_expect(
        &self,
        argv: &Argv,
        stdin: Option<&[u8]>,
        ok_codes: &[i32],
    ) -> Result<Output, RunError> {
        let out = self.run(argv, stdin)?;
        match out.code {
            Some(c) if ok_codes.contains(&c) => Ok(out),
            code => Err(RunError::Failed {
                argv: argv.clone(),
                code,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
        }
    }
}

/// Runs commands on this machine with `duct`, each killed after [`DEFAULT_TIMEOUT`] unless run
/// with another limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, argv: &Argv, stdin: Option<&[u8]>) -> Result<Output, RunError> {
        self.run_within(argv, stdin, DEFAULT_TIMEOUT)
    }

    fn start_daemon(&self, argv: &Argv) -> Result<Option<i32>, RunError> {
        let Some((program, args)) = argv.0.split_first() else {
            return Err(RunError::Spawn {
                argv: argv.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            });
        };
        let spawn = |source| RunError::Spawn {
            argv: argv.clone(),
            source,
        };
        let handle = duct::cmd(program, args)
            .stdin_null()
            .stdout_null()
            .stderr_null()
            .unchecked()
            .before_spawn(|cmd| {
                std::os::unix::process::CommandExt::process_group(cmd, 0);
                Ok(())
            })
            .start()
            .map_err(spawn)?;
        match handle.wait_timeout(DEFAULT_TIMEOUT).map_err(spawn)? {
            Some(out) => Ok(out.status.code()),
            None => {
                let _ = handle.kill();
                Err(RunError::TimedOut {
                    argv: argv.clone(),
                    seconds: DEFAULT_TIMEOUT.as_secs(),
                })
            }
        }
    }

    fn run_within(
        &self,
        argv: &Argv,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Output, RunError> {
        let Some((program, args)) = argv.0.split_first() else {
            return Err(RunError::Spawn {
                argv: argv.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            });
        };
        // Its own process group, so that a command that times out is killed with everything
        // it started (a wrapper script's children too).
        let mut expr = duct::cmd(program, args)
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .before_spawn(|cmd| {
                std::os::unix::process::CommandExt::process_group(cmd, 0);
                Ok(())
            });
        expr = match stdin {
            Some(bytes) => expr.stdin_bytes(bytes.to_vec()),
            None => expr.stdin_null(),
        };
        let spawn = |source| RunError::Spawn {
            argv: argv.clone(),
            source,
        };
        let handle = expr.start().map_err(spawn)?;
        let out = match handle.wait_timeout(limit).map_err(spawn)? {
            Some(out) => out,
            None => {
                // The whole group, then the child itself; its output is of no use.
                for pid in handle.pids() {
                    if let Some(pid) = i32::try_from(pid)
                        .ok()
                        .and_then(rustix::process::Pid::from_raw)
                    {
                        let _ =
                            rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                    }
                }
                let _ = handle.kill();
                return Err(RunError::TimedOut {
                    argv: argv.clone(),
                    seconds: limit.as_secs(),
                });
            }
        };
        Ok(Output {
            code: out.status.code(),
            stdout: out.stdout.clone(),
            stderr: out.stderr.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_display_quotes_only_what_needs_it() {
        let a = Argv::new(["postmap", "-c", "/etc/postfix", "hash:/x y", "it's"]);
        assert_eq!(
            a.to_string(),
            r"postmap -c /etc/postfix 'hash:/x y' 'it'\''s'"
        );
    }

    #[test]
    fn system_runner_reports_code_and_stderr() {
        let r = SystemRunner;
        let out = r
            .run(
                &Argv::new(["sh", "-c", "echo out; echo err >&2; exit 3"]),
                None,
            )
            .expect("sh runs");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, b"out\n");
        let err = r
            .run_expect(&Argv::new(["sh", "-c", "echo bad >&2; exit 2"]), None, &[0])
            .expect_err("exit 2 is not accepted");
        let msg = err.to_string();
        assert!(
            msg.contains("exit code 2") && msg.contains("--- stderr\nbad"),
            "{msg}"
        );
        assert!(matches!(
            r.run(&Argv::new(["/nonexistent/program"]), None),
            Err(RunError::Spawn { .. })
        ));
    }

    /// A daemon's starter returns although the daemon keeps running with its streams.
    #[test]
    fn a_daemon_start_returns_when_the_starter_exits() {
        let code = SystemRunner
            .start_daemon(&Argv::new(["sh", "-c", "sleep 30 & exit 4"]))
            .expect("started");
        assert_eq!(code, Some(4));
    }

    /// A command that hangs is killed at its limit instead of blocking the caller.
    #[test]
    fn a_hanging_command_is_killed_at_its_limit() {
        let err = SystemRunner
            .run_within(
                &Argv::new(["sleep", "30"]),
                None,
                Duration::from_millis(300),
            )
            .expect_err("killed");
        assert!(matches!(err, RunError::TimedOut { .. }), "{err}");
    }
}
