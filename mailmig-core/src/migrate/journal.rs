//! The durable record of a run: `RUNS/RUN/journal.jsonl`, one JSON object per line.
//!
//! The first line is the [`RunHeader`] (the user, the locations, the plan). Every step writes a
//! [`Event::Start`] record, with the pre-images needed to undo it, *before* it changes anything,
//! and a [`Event::Done`] record after; undoing writes [`Event::UndoStart`] / [`Event::Undone`];
//! the run ends with [`Event::Closed`]. Each record is written with one `write` and `fdatasync`
//! before the step goes on, so after a crash the journal shows every step that may have acted.
//! A final line without its newline was never acknowledged (the crash hit the write): readers
//! ignore it and [`Journal::open`] cuts it off before appending.

use std::io::{Read as _, Write as _};

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::{Plan, RunOptions, StepKind};
use crate::safe_fs::Dir;
use crate::state::StateDir;

/// The journal's file name inside the run directory.
pub const FILE: &str = "journal.jsonl";

/// The journal format this build writes. Format 1 (mailmig 0.1, untyped step data) is refused
/// with a message saying so.
pub const FORMAT: u32 = 2;

fn format_1() -> u32 {
    1
}

/// The first line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    /// The journal format ([`FORMAT`]); absent in format 1.
    #[serde(default = "format_1")]
    pub format: u32,
    /// The run's id (its directory name).
    pub run: String,
    /// When the run was created (RFC 3339, UTC).
    pub created: String,
    /// The plan as made at the start (user, locations, strategy, steps).
    pub plan: Plan,
    /// What the run needs to continue after a crash (lock method, reason, paths found by the
    /// preflight...).
    pub options: RunOptions,
}

/// What a step records: pre-images in its `start` record, results in its `done` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StepData {
    /// The preflight passed (`done`).
    Checked {
        /// The current location.
        from: String,
        /// The target.
        to: String,
    },
    /// A copy ran (`done` of presync and final sync).
    Copied {
        /// How long it took.
        ms: u64,
    },
    /// The hold's pre-image (`start`): the keys it adds or shares, those already held, when.
    HoldPlanned {
        /// Keys this run adds or shares (removed by its undo).
        keys: Vec<String>,
        /// Keys already held for the user before the run (kept).
        already: Vec<String>,
        /// Seconds since the epoch when the hold was written.
        since_epoch: u64,
    },
    /// The hold is in place (`done`).
    Held {
        /// Addresses held.
        addresses: usize,
        /// Queued messages put on hold.
        queued_held: usize,
        /// Milliseconds into the run.
        at_ms: u64,
    },
    /// Queued messages about to be put on hold (`start`, journaled before postsuper).
    QueueIds {
        /// The queue IDs.
        queue_ids: Vec<String>,
    },
    /// Where the lock-out's record is (`start`).
    LockOutRecord {
        /// The state file.
        state_file: Utf8PathBuf,
    },
    /// The location fields before the switch (`start`).
    PreviousLocation {
        /// Each location field of the record before the switch: `userdb_mail`, or on Dovecot
        /// 2.4 `userdb_mail_driver` and `userdb_mail_path`.
        #[serde(default)]
        fields: Vec<crate::login::PreviousField>,
        /// Journals written before Dovecot 2.4 support: `userdb_mail` before the switch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<crate::login::FieldBefore>,
    },
    /// The verification passed (`done`).
    Verified {
        /// Mailboxes compared.
        mailboxes: usize,
        /// Messages in the source.
        messages: u64,
        /// Messages in the target.
        target_messages: u64,
    },
    /// The catch-up passed (`done`).
    CaughtUp {
        /// How many carry-over syncs ran.
        carried_over_passes: u32,
        /// Messages in the new location.
        messages: u64,
        /// The quota's message count after `doveadm quota recalc` (quota with a usage-counting
        /// backend).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quota_messages: Option<u64>,
    },
    /// The release is done (`done`).
    Released {
        /// Messages released.
        released: usize,
        /// Messages handed over to other runs.
        kept_for_other_runs: usize,
        /// Milliseconds into the run.
        at_ms: u64,
    },
    /// The run's figures (`done` of the last step).
    Finished(RunFigures),
    /// What `mailmig cleanup` removes (`cleanup-start`) or removed (`cleaned-up`) after the run
    /// ended: the old location of a finished run, or the moved-aside copy of a rolled-back one.
    Cleanup {
        /// The trees (or mbox files).
        paths: Vec<Utf8PathBuf>,
        /// What they held.
        usage: crate::safe_fs::TreeUsage,
    },
}

/// How long a run took, and how long the user's mail was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFigures {
    /// The whole run.
    pub total_ms: u64,
    /// Spent in doveadm.
    pub doveadm_ms: u64,
    /// From the hold to the release.
    pub held_ms: Option<u64>,
    /// The presync's copy.
    pub presync_ms: Option<u64>,
    /// The final sync.
    pub final_sync_ms: Option<u64>,
}

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// The step is about to act; `data` holds what is needed to undo it.
    Start,
    /// The step completed; `data` holds its results.
    Done,
    /// The step failed; `message` says why.
    Failed,
    /// Undoing the step is about to act.
    UndoStart,
    /// The step is undone.
    Undone,
    /// The run ended; `outcome` says how.
    Closed,
    /// After the run ended, `mailmig cleanup` is about to remove what it left (`data`).
    CleanupStart,
    /// The cleanup is done.
    CleanedUp,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Migrated.
    Done,
    /// Every step undone.
    RolledBack,
    /// A step failed and could not be undone automatically; `message` says what to do.
    NeedsAdmin,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Done => "done",
            Self::RolledBack => "rolled back",
            Self::NeedsAdmin => "needs the admin",
        })
    }
}

/// One journal line after the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The step (none for [`Event::Closed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepKind>,
    /// What happened.
    pub event: Event,
    /// Step data: pre-images at start, results when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<StepData>,
    /// A message (failures, outcome details).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How the run ended (for [`Event::Closed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl Record {
    /// A record for `step`, stamped now.
    pub fn new(step: StepKind, event: Event, data: Option<StepData>) -> Self {
        Self {
            time: crate::transaction::utc_now_rfc3339(),
            step: Some(step),
            event,
            data,
            message: None,
            outcome: None,
        }
    }
}

/// Why a journal cannot be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file system refused.
    #[error("journal {path}")]
    Io {
        /// The file or directory.
        path: Utf8PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a journal record.
    #[error("journal {path}:{line}: not a journal record ({reason})")]
    Corrupt {
        /// The file.
        path: Utf8PathBuf,
        /// 1-based line.
        line: usize,
        /// The JSON error.
        reason: String,
    },
    /// A run with this id exists already.
    #[error("run directory {0} exists already")]
    Exists(Utf8PathBuf),
    /// A journal written in another format.
    #[error("journal {path} is in format {format}; this mailmig reads format {FORMAT} (finish the run with the mailmig that started it)")]
    Format {
        /// The file.
        path: Utf8PathBuf,
        /// Its format.
        format: u32,
    },
    /// No journal for this run.
    #[error("no run {run} in {runs}")]
    NoRun {
        /// The run id.
        run: String,
        /// The runs directory.
        runs: Utf8PathBuf,
    },
    /// The state directory refused.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// A file-system operation was refused.
    #[error(transparent)]
    Fs(#[from] crate::safe_fs::SafeFsError),
}

/// An open journal, appending.
#[derive(Debug)]
pub struct Journal {
    path: Utf8PathBuf,
    file: fs_err::File,
}

fn io(path: &Utf8Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The subdirectory of the state directory that holds the runs.
pub const RUNS: &str = "runs";

impl Journal {
    /// Create `STATE/runs/RUN/journal.jsonl` with its header, durably (file and directories
    /// synced), private (0700 directories, a 0600 file).
    pub fn create(state: &StateDir, header: &RunHeader) -> Result<Self, JournalError> {
        let run = crate::state::file_name(&header.run)?;
        let runs = state.dir(RUNS)?;
        let (dir, created) = runs.create_subdir(run, crate::state::DIR_MODE)?;
        if !created {
            return Err(JournalError::Exists(dir.path().to_owned()));
        }
        let path = dir.path().join(FILE);
        let file = dir
            .create_new(FILE, crate::state::FILE_MODE)?
            .ok_or_else(|| JournalError::Exists(path.clone()))?;
        let mut journal = Self { path, file };
        journal.write_line(
            &serde_json::to_vec(header).map_err(|e| JournalError::Corrupt {
                path: journal.path.clone(),
                line: 1,
                reason: e.to_string(),
            })?,
        )?;
        dir.sync()?;
        runs.sync()?;
        Ok(journal)
    }

    /// Open an existing run's journal to continue it: returns the journal, its header and
    /// records. A torn final line is cut off first.
    pub fn open(
        state: &StateDir,
        run: &str,
    ) -> Result<(Self, RunHeader, Vec<Record>), JournalError> {
        let (dir, path) = run_dir(state, run)?;
        let mut file = dir.open_rw(FILE)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&path))?;
        let (header, records, good_len) = parse(&path, &bytes)?;
        drop(file);
        let file = dir.open_append(FILE)?;
        let len = file.metadata().map_err(io(&path))?.len();
        if len != good_len {
            file.set_len(good_len).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        Ok((Self { path, file }, header, records))
    }

    /// The journal file.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// Append a record durably.
    pub fn append(&mut self, record: &Record) -> Result<(), JournalError> {
        let line = serde_json::to_vec(record).map_err(|e| JournalError::Corrupt {
            path: self.path.clone(),
            line: 0,
            reason: e.to_string(),
        })?;
        self.write_line(&line)
    }

    fn write_line(&mut self, json: &[u8]) -> Result<(), JournalError> {
        let mut buf = Vec::with_capacity(json.len() + 1);
        buf.extend_from_slice(json);
        buf.push(b'\n');
        self.file.write_all(&buf).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }
}

/// The directory of run `run` and its journal's path.
fn run_dir(state: &StateDir, run: &str) -> Result<(Dir, Utf8PathBuf), JournalError> {
    let run = crate::state::file_name(run)?;
    let missing = || JournalError::NoRun {
        run: run.to_string(),
        runs: state.path().join(RUNS),
    };
    let dir = state
        .existing_dir(&format!("{RUNS}/{run}"))?
        .ok_or_else(missing)?;
    if dir.lstat(FILE)?.is_none() {
        return Err(missing());
    }
    let path = dir.path().join(FILE);
    Ok((dir, path))
}

/// The runs recorded in the state directory (directory names), sorted.
pub fn runs(state: &StateDir) -> Result<Vec<String>, JournalError> {
    Ok(state.names(RUNS)?)
}

/// Whether run `run` has a journal.
pub fn exists(state: &StateDir, run: &str) -> Result<bool, JournalError> {
    match run_dir(state, run) {
        Ok(_) => Ok(true),
        Err(JournalError::NoRun { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Read a run's journal (header and records), ignoring a torn final line.
pub fn read(state: &StateDir, run: &str) -> Result<(RunHeader, Vec<Record>), JournalError> {
    let (dir, path) = run_dir(state, run)?;
    let bytes = crate::state::read_owned(&dir, FILE)?.unwrap_or_default();
    let (h, r, _) = parse(&path, &bytes)?;
    Ok((h, r))
}

/// Parse a journal's bytes: header, records, and the length without a torn final line.
pub fn parse(path: &Utf8Path, bytes: &[u8]) -> Result<(RunHeader, Vec<Record>, u64), JournalError> {
    let good_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut lines = bytes[..good_len]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate();
    let corrupt = |line: usize, e: serde_json::Error| JournalError::Corrupt {
        path: path.to_owned(),
        line,
        reason: e.to_string(),
    };
    let Some((_, first)) = lines.next() else {
        return Err(JournalError::Corrupt {
            path: path.to_owned(),
            line: 1,
            reason: "no header (the run was interrupted while it was being created)".into(),
        });
    };
    // The format first: an older journal is refused by what it is, not by a field it lacks.
    #[derive(Deserialize)]
    struct Format {
        #[serde(default = "format_1")]
        format: u32,
    }
    let format = serde_json::from_slice::<Format>(first)
        .map_err(|e| corrupt(1, e))?
        .format;
    if format != FORMAT {
        return Err(JournalError::Format {
            path: path.to_owned(),
            format,
        });
    }
    let header: RunHeader = serde_json::from_slice(first).map_err(|e| corrupt(1, e))?;
    let records = lines
        .map(|(i, l)| serde_json::from_slice(l).map_err(|e| corrupt(i + 1, e)))
        .collect::<Result<Vec<Record>, _>>()?;
    Ok((header, records, good_len as u64))
}

/// Where a run stands, derived from its records.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunState {
    /// Steps with a `done` record and no later undo.
    pub done: Vec<StepKind>,
    /// Steps that started (may have acted) and are not undone, in start order.
    pub started: Vec<StepKind>,
    /// Steps undone.
    pub undone: Vec<StepKind>,
    /// An undo is under way or finished.
    pub rolling_back: bool,
    /// The last failure message.
    pub last_failure: Option<String>,
    /// How the run ended, if it did.
    pub outcome: Option<Outcome>,
    /// The closing message.
    pub closing_message: Option<String>,
    /// When the run ended (the closing record's time, RFC 3339).
    pub closed_at: Option<String>,
    /// `mailmig cleanup` started removing what the run left.
    pub cleanup_started: bool,
    /// `mailmig cleanup` removed it.
    pub cleaned_up: bool,
}

impl RunState {
    /// Derive the state from the records.
    pub fn of(records: &[Record]) -> Self {
        let mut s = RunState::default();
        for r in records {
            match (r.event, r.step) {
                (Event::Start, Some(step)) if !s.started.contains(&step) => s.started.push(step),
                (Event::Done, Some(step)) if !s.done.contains(&step) => s.done.push(step),
                (Event::Failed, _) => s.last_failure = r.message.clone(),
                (Event::UndoStart, _) => s.rolling_back = true,
                (Event::Undone, Some(step)) => {
                    s.rolling_back = true;
                    s.started.retain(|x| *x != step);
                    s.done.retain(|x| *x != step);
                    if !s.undone.contains(&step) {
                        s.undone.push(step);
                    }
                }
                (Event::Closed, _) => {
                    s.outcome = r.outcome;
                    s.closing_message = r.message.clone();
                    s.closed_at = Some(r.time.clone());
                }
                (Event::CleanupStart, _) => s.cleanup_started = true,
                (Event::CleanedUp, _) => s.cleaned_up = true,
                _ => {}
            }
        }
        s
    }
}

/// The data of the last record of `step` with `event`.
pub fn data_of(records: &[Record], step: StepKind, event: Event) -> Option<&StepData> {
    records
        .iter()
        .rev()
        .find(|r| r.step == Some(step) && r.event == event)
        .and_then(|r| r.data.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{Location, Strategy};

    fn header() -> RunHeader {
        RunHeader {
            format: FORMAT,
            run: "r1".into(),
            created: "2026-11-29T00:00:00Z".into(),
            plan: Plan {
                user: "a@x".into(),
                from: Location::parse("maildir:~/Maildir").expect("valid"),
                to: Location::parse("mdbox:~/mdbox").expect("valid"),
                strategy: Strategy::Hold,
                warnings: vec![],
                steps: vec![],
                space: None,
            },
            options: crate::migrate::plan::tests_support::options(),
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse(Utf8Path::new("journal.jsonl"), &bytes);
        }
    }

    #[test]
    fn write_crash_read_continue() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Utf8Path::from_path(tmp.path()).expect("utf8").join("state");
        let state = StateDir::open(&root).expect("state dir");
        let mut j = Journal::create(&state, &header()).expect("create");
        assert!(matches!(
            Journal::create(&state, &header()),
            Err(JournalError::Exists(_))
        ));
        j.append(&Record::new(
            StepKind::Hold,
            Event::Start,
            Some(StepData::HoldPlanned {
                keys: vec!["a@x".into()],
                already: vec![],
                since_epoch: 0,
            }),
        ))
        .expect("append");
        j.append(&Record::new(StepKind::Hold, Event::Done, None))
            .expect("append");
        let path = j.path().to_owned();
        drop(j);
        // A torn record (the crash hit the write) is not part of the journal.
        let mut bytes = fs_err::read(&path).expect("read");
        bytes.extend_from_slice(b"{\"time\":\"x\",\"step\":\"lock-o");
        fs_err::write(&path, &bytes).expect("write");
        let (h, records) = read(&state, "r1").expect("read");
        assert_eq!(h, header());
        assert_eq!(records.len(), 2);
        let (mut j, _, _) = Journal::open(&state, "r1").expect("open");
        j.append(&Record::new(StepKind::LockOut, Event::Start, None))
            .expect("append");
        let (_, records) = read(&state, "r1").expect("read");
        assert_eq!(records.len(), 3);
        let run_state = RunState::of(&records);
        assert_eq!(run_state.done, [StepKind::Hold]);
        assert_eq!(run_state.started, [StepKind::Hold, StepKind::LockOut]);
        assert!(matches!(
            data_of(&records, StepKind::Hold, Event::Start),
            Some(StepData::HoldPlanned { keys, .. }) if keys == &["a@x"]
        ));
        // A corrupt line in the middle is an error, not ignored.
        let mut bytes = fs_err::read(&path).expect("read");
        bytes.splice(0..0, b"garbage\n".iter().copied());
        fs_err::write(&path, &bytes).expect("write");
        assert!(matches!(
            read(&state, "r1"),
            Err(JournalError::Corrupt { line: 1, .. })
        ));
        // Private, whatever the umask: 0700 directories, a 0600 journal.
        use std::os::unix::fs::MetadataExt as _;
        let mode = |p: &Utf8Path| fs_err::metadata(p).expect("meta").mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("run dir")), 0o700);
        assert_eq!(mode(&root.join(RUNS)), 0o700);
        assert_eq!(mode(&root), 0o700);
    }
}
