//! Group commit for the runs of one process (a batch): access-map edits under a cross-process
//! lock with one postmap per commit, and passwd-file edits (lock-out, switch, re-enable) with one
//! rewrite — and so one Dovecot re-read — for every run whose edit is due.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use camino::{Utf8Path, Utf8PathBuf};

use super::{failpoint, Engine};
use crate::dovecot::{IdResolver, PasswdFile, PasswdOptions};
use crate::migrate::error::StepError;
use crate::migrate::report::EventKind;
use crate::postfix::{postmap_rebuild, Table};
use crate::safe_fs;
use crate::state::StateDir;
use crate::transaction::{CommitOptions, FileTransaction};

/// An edit of the access map: returns whether it changed anything.
pub(crate) type MapEdit = Box<dyn FnOnce(&mut Table) -> Result<bool, StepError> + Send>;

/// What a passwd-file edit gets from the run that commits it: the same for every run of a batch.
pub(crate) struct EditEnv<'a> {
    /// How uid/gid names resolve.
    pub(crate) ids: &'a (dyn IdResolver + Sync),
    /// The state directory (a lock-out records the way back there before the commit).
    pub(crate) state: &'a StateDir,
    /// The file being edited, as the transaction resolved it.
    pub(crate) path: &'a Utf8Path,
}

/// An edit of one passwd-file's document. A failing edit leaves the document as it was.
pub(crate) type PasswdEditFn =
    Box<dyn FnOnce(&mut PasswdFile, &EditEnv<'_>) -> Result<(), StepError> + Send>;

/// A passwd-file edit and the file it is for.
pub(crate) struct PasswdEdit {
    pub(crate) file: Utf8PathBuf,
    pub(crate) edit: PasswdEditFn,
}

struct GroupState<E> {
    queue: Vec<(u64, E)>,
    results: HashMap<u64, Result<(), StepError>>,
    next: u64,
    leader: bool,
}

impl<E> Default for GroupState<E> {
    fn default() -> Self {
        Self {
            queue: Vec::new(),
            results: HashMap::new(),
            next: 0,
            leader: false,
        }
    }
}

/// One group commit: a submitter that finds no commit under way takes every edit queued so far
/// and commits them together; edits arriving meanwhile are committed together by the next one.
struct Group<E> {
    state: Mutex<GroupState<E>>,
    done: Condvar,
    edits: AtomicU64,
    commits: AtomicU64,
}

impl<E> Default for Group<E> {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            done: Condvar::new(),
            edits: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        }
    }
}

impl<E> Group<E> {
    fn submit(
        &self,
        edit: E,
        commit: impl Fn(Vec<E>) -> Vec<Result<(), StepError>>,
    ) -> Result<(), StepError> {
        let poisoned = || StepError::Batch("an edit of another run panicked".into());
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        let id = st.next;
        st.next += 1;
        st.queue.push((id, edit));
        loop {
            if let Some(r) = st.results.remove(&id) {
                return r;
            }
            if st.leader {
                st = self.done.wait(st).map_err(|_| poisoned())?;
                continue;
            }
            st.leader = true;
            let (ids, edits): (Vec<u64>, Vec<E>) =
                std::mem::take(&mut st.queue).into_iter().unzip();
            drop(st);
            let results = commit(edits);
            st = self.state.lock().map_err(|_| poisoned())?;
            st.leader = false;
            for (i, r) in ids.into_iter().zip(results) {
                st.results.insert(i, r);
            }
            self.done.notify_all();
        }
    }

    fn count(&self, edits: usize, commits: usize) {
        self.edits.fetch_add(edits as u64, Ordering::Relaxed);
        self.commits.fetch_add(commits as u64, Ordering::Relaxed);
    }
}

/// Group commit of the edits of the runs of one process (a batch): access-map edits (one
/// transaction and one postmap for all that are due) and passwd-file edits (one rewrite, and so
/// one Dovecot re-read, for all that are due).
#[derive(Default)]
pub struct Batcher {
    access: Group<MapEdit>,
    passwd: Group<PasswdEdit>,
}

impl Batcher {
    /// Access-map edits committed so far.
    pub fn edits(&self) -> u64 {
        self.access.edits.load(Ordering::Relaxed)
    }

    /// Transactions (and postmap runs) they took.
    pub fn transactions(&self) -> u64 {
        self.access.commits.load(Ordering::Relaxed)
    }

    /// Passwd-file edits committed so far (lock-outs, switches, re-enables).
    pub fn passwd_edits(&self) -> u64 {
        self.passwd.edits.load(Ordering::Relaxed)
    }

    /// Rewrites of a passwd-file they took.
    pub fn passwd_transactions(&self) -> u64 {
        self.passwd.commits.load(Ordering::Relaxed)
    }
}

/// One error for each of `n` edits: the error itself for one, its text for several.
fn spread(e: StepError, n: usize) -> Vec<Result<(), StepError>> {
    if n == 1 {
        return vec![Err(e)];
    }
    let text = crate::display_chain(&e);
    (0..n)
        .map(|_| Err(StepError::Batch(text.clone())))
        .collect()
}

/// A flock held while a map is edited and rebuilt, so that runs in parallel never rebuild a
/// map from a stale source.
pub(crate) struct MapLock {
    _file: fs_err::File,
}

impl MapLock {
    pub(crate) fn take(state: &StateDir) -> Result<Self, StepError> {
        let f = state.lock_file("locks", "postfix-maps.lock")?;
        f.file().lock().map_err(StepError::Lock)?;
        Ok(Self { _file: f })
    }
}

impl Engine<'_> {
    /// Edit the access map under the map lock and rebuild it — with other runs' edits in one
    /// transaction and one postmap when a batch shares a [`Batcher`].
    pub(crate) fn edit_access(&self, edit: MapEdit, point: &str) -> Result<(), StepError> {
        match self.batcher {
            Some(b) => b
                .access
                .submit(edit, |edits| self.commit_edits(edits, point)),
            None => self.commit_edits(vec![edit], point).pop().unwrap_or(Ok(())),
        }
    }

    /// Apply edits to the access map in one transaction (each on its own copy first: a failing
    /// edit changes nothing), then one postmap. One result per edit.
    fn commit_edits(&self, edits: Vec<MapEdit>, point: &str) -> Vec<Result<(), StepError>> {
        let n = edits.len();
        let mut results = Vec::with_capacity(n);
        let shared = (|| -> Result<(), StepError> {
            let (map, map_type) = self.map()?;
            let lock = MapLock::take(self.state)?;
            let tx = FileTransaction::prepare(&map)?;
            let original = tx.shared_original();
            let mut table = Table::parse_shared(original.clone(), &self.parse);
            let mut changed = false;
            for edit in edits {
                let mut copy = table.clone();
                match edit(&mut copy) {
                    Ok(c) => {
                        changed |= c;
                        table = copy;
                        results.push(Ok(()));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            if changed {
                tx.commit_document(&table, &CommitOptions::default())?;
            } else {
                drop(tx);
            }
            failpoint(&format!("{point}:map-written"));
            if map_type.needs_postmap() {
                let dir = self.postfix_dir()?;
                match postmap_rebuild(self.runner, Some(&dir), map_type, &map) {
                    Ok(warnings) => {
                        for w in warnings {
                            self.report(EventKind::Warning(None, &w));
                        }
                    }
                    Err(e) => {
                        // The indexed map was not rebuilt, so smtpd never saw the edit: put
                        // the source back as it was, so that the step leaves nothing behind.
                        if changed {
                            FileTransaction::prepare(&map)
                                .and_then(|t| t.commit(&original, &CommitOptions::default()))?;
                        }
                        return Err(e.into());
                    }
                }
            }
            drop(lock);
            Ok(())
        })();
        match shared {
            Ok(()) => {
                if let Some(b) = self.batcher {
                    b.access.count(n, 1);
                }
                results
            }
            Err(e) => spread(e, n),
        }
    }

    /// Edit a passwd-file — with the edits of other runs that are due in one rewrite when a
    /// batch shares a [`Batcher`]. Returns once the edit is committed (or the file was left
    /// byte for byte as it was); the caller confirms it with Dovecot.
    pub(crate) fn edit_passwd(&self, file: &Utf8Path, edit: PasswdEditFn) -> Result<(), StepError> {
        let edit = PasswdEdit {
            file: file.to_owned(),
            edit,
        };
        match self.batcher {
            Some(b) => b.passwd.submit(edit, |edits| self.commit_passwd(edits)),
            None => self.commit_passwd(vec![edit]).pop().unwrap_or(Ok(())),
        }
    }

    /// Commit passwd-file edits: one transaction per file, each edit applied atomically (a
    /// failing one changes nothing), the file rewritten only when its bytes changed. One
    /// result per edit, in order.
    pub(crate) fn commit_passwd(&self, edits: Vec<PasswdEdit>) -> Vec<Result<(), StepError>> {
        let n = edits.len();
        let mut results: Vec<Option<Result<(), StepError>>> = (0..n).map(|_| None).collect();
        let mut files: Vec<(Utf8PathBuf, Vec<(usize, PasswdEditFn)>)> = Vec::new();
        for (i, PasswdEdit { file, edit }) in edits.into_iter().enumerate() {
            match files.iter_mut().find(|(f, _)| *f == file) {
                Some((_, list)) => list.push((i, edit)),
                None => files.push((file, vec![(i, edit)])),
            }
        }
        let commits = files.len();
        for (file, list) in files {
            let indexes: Vec<usize> = list.iter().map(|(i, _)| *i).collect();
            let outcome = self.commit_passwd_file(&file, list);
            let outcome = match outcome {
                Ok(each) => each,
                Err(e) => spread(e, indexes.len()),
            };
            for (i, r) in indexes.into_iter().zip(outcome) {
                results[i] = Some(r);
            }
        }
        if let Some(b) = self.batcher {
            b.passwd.count(n, commits);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StepError::Batch("edit not committed".into()))))
            .collect()
    }

    fn commit_passwd_file(
        &self,
        file: &Utf8Path,
        list: Vec<(usize, PasswdEditFn)>,
    ) -> Result<Vec<Result<(), StepError>>, StepError> {
        let tx = FileTransaction::prepare(file)?;
        let path = tx.path();
        // The document shares the bytes read; the commit streams it into the file: one copy of a
        // large passwd-file in memory, and unchanged bytes are not written at all.
        let mut doc = PasswdFile::parse_shared(tx.shared_original(), &PasswdOptions::default());
        let env = EditEnv {
            ids: self.ids,
            state: self.state,
            path: &path,
        };
        let each: Vec<Result<(), StepError>> = list
            .into_iter()
            .map(|(_, edit)| doc.atomically(|d| edit(d, &env)))
            .collect();
        tx.commit_document(&doc, &CommitOptions::default())?;
        Ok(each)
    }

    /// The access map as it is now.
    pub(crate) fn read_access(&self) -> Result<Table, StepError> {
        let (map, _) = self.map()?;
        Ok(Table::parse(safe_fs::read_regular(&map)?, &self.parse))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edits submitted while a commit is under way are committed together by the next one, and
    /// every submitter gets its own edit's result.
    #[test]
    fn batcher_groups_waiting_edits_and_returns_each_result() {
        let batcher = Batcher::default();
        let commits = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for i in 0..8u32 {
                let (batcher, commits) = (&batcher, &commits);
                scope.spawn(move || {
                    let edit: MapEdit = Box::new(move |_| {
                        if i == 3 {
                            Err(StepError::Batch("edit 3 refused".into()))
                        } else {
                            Ok(true)
                        }
                    });
                    let r = batcher.access.submit(edit, |edits| {
                        commits.lock().expect("lock").push(edits.len());
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        let mut table =
                            Table::parse(Vec::new(), &crate::postfix::ParseOptions::default());
                        edits
                            .into_iter()
                            .map(|e| e(&mut table).map(|_| ()))
                            .collect()
                    });
                    assert_eq!(r.is_err(), i == 3, "edit {i}: {r:?}");
                });
            }
        });
        let commits = commits.into_inner().expect("lock");
        assert_eq!(commits.iter().sum::<usize>(), 8);
        assert!(commits.len() < 8, "no edits were grouped: {commits:?}");
    }
}
