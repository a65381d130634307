//! Access-map edits: under a cross-process lock, with one postmap per commit, and group-committed
//! for the runs of one process (a batch).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use super::{failpoint, Engine};
use crate::migrate::error::StepError;
use crate::migrate::report::EventKind;
use crate::postfix::{postmap_rebuild, Table};
use crate::safe_fs;
use crate::state::StateDir;
use crate::transaction::{CommitOptions, FileTransaction};

/// An edit of the access map: returns whether it changed anything.
pub(crate) type MapEdit = Box<dyn FnOnce(&mut Table) -> Result<bool, StepError> + Send>;

#[derive(Default)]
struct BatchState {
    queue: Vec<(u64, MapEdit)>,
    results: HashMap<u64, Result<(), StepError>>,
    next: u64,
    leader: bool,
}

/// Group commit of access-map edits for the runs of one process (a batch): a run that finds no
/// commit under way takes every edit queued so far and commits them in one transaction with one
/// postmap; runs arriving meanwhile are committed together by the next one.
#[derive(Default)]
pub struct MapBatcher {
    state: Mutex<BatchState>,
    done: Condvar,
    edits: AtomicU64,
    commits: AtomicU64,
}

impl MapBatcher {
    /// Edits committed so far.
    pub fn edits(&self) -> u64 {
        self.edits.load(Ordering::Relaxed)
    }

    /// Transactions (and postmap runs) they took.
    pub fn transactions(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    pub(crate) fn submit(
        &self,
        edit: MapEdit,
        commit: impl Fn(Vec<MapEdit>) -> Vec<Result<(), StepError>>,
    ) -> Result<(), StepError> {
        let poisoned = || StepError::Batch("a map edit of another run panicked".into());
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
            let (ids, edits): (Vec<u64>, Vec<MapEdit>) =
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

    fn count(&self, edits: usize) {
        self.edits.fetch_add(edits as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
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
    /// transaction and one postmap when a batch shares a [`MapBatcher`].
    pub(crate) fn edit_access(&self, edit: MapEdit, point: &str) -> Result<(), StepError> {
        match self.batcher {
            Some(b) => b.submit(edit, |edits| self.commit_edits(edits, point)),
            None => self.commit_edits(vec![edit], point).pop().unwrap_or(Ok(())),
        }
    }

    /// Apply edits to the access map in one transaction (each on its own copy first: a failing
    /// edit changes nothing), then one postmap. One result per edit.
    fn commit_edits(&self, edits: Vec<MapEdit>, point: &str) -> Vec<Result<(), StepError>> {
        let n = edits.len();
        let all = |e: &StepError| {
            (0..n)
                .map(|_| Err(StepError::Batch(crate::display_chain(e))))
                .collect()
        };
        let mut results = Vec::with_capacity(n);
        let shared = (|| -> Result<(), StepError> {
            let (map, map_type) = self.map()?;
            let lock = MapLock::take(self.state)?;
            let tx = FileTransaction::prepare(&map)?;
            let original = tx.original().to_vec();
            let mut table = Table::parse(original.clone(), &self.parse);
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
                tx.commit(&table.render(), &CommitOptions::default())?;
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
                    b.count(n);
                }
                results
            }
            Err(e) => all(&e),
        }
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
        let batcher = MapBatcher::default();
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
                    let r = batcher.submit(edit, |edits| {
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
