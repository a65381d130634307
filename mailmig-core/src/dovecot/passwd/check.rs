//! Checking a passwd-file while it is read through a buffer, as `sed` reads: nothing of the file
//! is kept but each record's name and line, and the records the load drops.
//!
//! [`PasswdFile::diagnostics`] checks a document held in memory; reading a large file into fresh
//! memory costs more than every check made on it (the kernel's copy into new pages and their
//! faults, ~170 ms for 180 MB on one core). Here each half of the file is read 1 MiB at a time
//! into one buffer on its own thread, and each line is checked and loaded while it is in the
//! cache; the load's repeats are settled once both halves are read, each half left where it is.
//! A property test holds the findings to the document's, with tiny buffers (lines across reads)
//! and every split; the `passwd_roundtrip` fuzz target, on any bytes.

use std::io;

use super::diagnostics::{merge_verdicts, verdict_finding};
use super::load::name_hash;
use super::*;
use crate::read_at::{line_start_after, read_through, ReadAt};
use crate::runs::{equal_hash_runs, Keyed, Narrow, Wide};

/// What each half reads at a time (a buffer grows to hold a longer line).
const BUFFER: usize = 1 << 20;

impl PasswdFile {
    /// Every finding of the passwd-file `file` holds, in line order: what
    /// [`PasswdFile::diagnostics`] gives for the file parsed, found while it is read through a
    /// buffer (two halves side by side for a large file). A file changed while it is read is
    /// checked as read.
    pub fn check_file(
        file: &fs_err::File,
        options: &PasswdOptions,
        ids: &(dyn IdResolver + Sync),
    ) -> io::Result<Vec<PasswdDiagnostic>> {
        let len = file.metadata()?.len();
        let split = if len >= SPLIT_LINES_FROM as u64 && crate::cores::two() {
            line_start_after(file, len / 2, |_| true)?
        } else {
            None
        };
        // Record numbers fit in 32 bits unless the file is that large: one word a pair (a file
        // that grows past 8 GiB while it is read could misnumber only its repeats).
        if u32::try_from(len).is_ok() {
            check_read::<Narrow>(file, options, ids, split, BUFFER)
        } else {
            check_read::<Wide>(file, options, ids, split, BUFFER)
        }
    }
}

/// The check, in two halves side by side when `split` (the start of a line) is given, each
/// read `buffer` bytes at a time.
fn check_read<K: Keyed>(
    src: &(impl ReadAt + ?Sized),
    options: &PasswdOptions,
    ids: &(dyn IdResolver + Sync),
    split: Option<u64>,
    buffer: usize,
) -> io::Result<Vec<PasswdDiagnostic>> {
    // A document of no lines: its methods are the rules each line is checked by.
    let rules = PasswdFile::parse(Vec::new(), options);
    let read = |start: u64, end: Option<u64>| {
        let mut half = Half::<K>::default();
        half.read(src, &rules, ids, start, end, buffer)?;
        half.pairs.sort_unstable();
        Ok::<Half<K>, io::Error>(half)
    };
    let (front, back) = match split {
        Some(at) => {
            let (front, back) = crate::cores::side_by_side(|| read(0, Some(at)), || read(at, None));
            (front?, Some(back?))
        }
        None => (read(0, None)?, None),
    };
    Ok(front.join(back))
}

/// What reading one range of the file found.
#[derive(Default)]
struct Half<K> {
    /// Each line's findings, the load aside, in line order (lines counted from the range's
    /// start).
    found: Vec<PasswdDiagnostic>,
    /// Every record's name, one after the other, and where each starts (and the last ends).
    names: Vec<u8>,
    starts: Vec<usize>,
    /// Each record's line (0-based, from the range's start).
    record_lines: Vec<usize>,
    /// The records the load drops (by record number in the range, in order) and why; repeats
    /// are settled once both ranges are read.
    dropped: Vec<(usize, String)>,
    /// (hash of the name, record), sorted once the range is read.
    pairs: Vec<K>,
    /// Lines read.
    lines: usize,
}

impl<K: Keyed> Half<K> {
    /// Reads `start..end` (to the end of the file without `end`) through a buffer of `buffer`
    /// bytes, checking and loading each line.
    fn read(
        &mut self,
        src: &(impl ReadAt + ?Sized),
        rules: &PasswdFile,
        ids: &(dyn IdResolver + Sync),
        start: u64,
        end: Option<u64>,
        buffer: usize,
    ) -> io::Result<()> {
        self.starts.push(0);
        // Whole lines: up to the last newline (a line longer than the buffer makes it grow).
        let whole_lines = |bytes: &[u8]| memchr::memrchr(b'\n', bytes).map_or(0, |nl| nl + 1);
        read_through(src, start, end, buffer, whole_lines, |lines| {
            self.lines_of(lines, rules, ids);
        })
    }

    /// Checks and loads each line of `bytes` (whole lines; the last may lack its newline).
    fn lines_of(&mut self, bytes: &[u8], rules: &PasswdFile, ids: &(dyn IdResolver + Sync)) {
        let mut start = 0;
        while start < bytes.len() {
            // The line's end and whether it holds a NUL, in one search.
            let rest = &bytes[start..];
            let (len, nul_free) = match memchr::memchr2(b'\n', 0, rest) {
                Some(at) if rest[at] == b'\n' => (at + 1, true),
                Some(at) => (
                    memchr::memchr(b'\n', &rest[at..]).map_or(rest.len(), |nl| at + nl + 1),
                    false,
                ),
                None => (rest.len(), true),
            };
            self.line(&rest[..len], nul_free, rules, ids);
            start += len;
        }
    }

    /// Checks and loads one line; `nul_free` when it is known to hold no NUL byte.
    fn line(
        &mut self,
        raw: &[u8],
        nul_free: bool,
        rules: &PasswdFile,
        ids: &(dyn IdResolver + Sync),
    ) {
        let index = self.lines;
        self.lines += 1;
        let line = Line {
            number: index + 1,
            raw,
            options: rules.options,
        };
        let entry = if nul_free {
            line.entry_of(without_terminator(raw))
        } else {
            line.entry()
        };
        if let Some(entry) = &entry {
            let user = entry.user();
            let record = self.record_lines.len();
            self.pairs.push(K::new(name_hash(user), record));
            self.names.extend_from_slice(user);
            self.starts.push(self.names.len());
            if let Some(reason) = rules.drop_reason(entry, ids) {
                self.dropped.push((record, reason));
            }
            self.record_lines.push(index);
        }
        if let Some(entry) = rules.head_findings(&line, entry, &mut self.found) {
            rules.tail_findings(&entry, &mut self.found);
        }
    }

    /// The findings of the front half and the back one (lines counted after the front's): the
    /// load's repeats settled across both, its verdicts put among the lines' findings. The
    /// halves are not joined into one: only the records the load does not keep are looked at
    /// again (copying and freeing a million records' facts was a fifth of the check).
    fn join(mut self, mut back: Option<Half<K>>) -> Vec<PasswdDiagnostic> {
        let front_pairs = std::mem::take(&mut self.pairs);
        let back_pairs = back
            .as_mut()
            .map(|back| std::mem::take(&mut back.pairs))
            .unwrap_or_default();
        let lines = self.lines;
        let back_found = back
            .as_mut()
            .map(|back| std::mem::take(&mut back.found))
            .unwrap_or_default();
        let found = std::mem::take(&mut self.found)
            .into_iter()
            .chain(back_found.into_iter().map(|mut d| {
                d.line += lines;
                d
            }));
        let records = self.record_lines.len();
        let halves = Halves {
            front: &self,
            back: back.as_ref(),
            records,
        };
        // (record, line of the record it repeats, 1-based), sorted.
        let mut duplicates = Vec::new();
        equal_hash_runs(front_pairs, back_pairs, records, |run| {
            crate::runs::settle(
                run,
                |k| halves.name(k),
                |k| !halves.is_dropped(k),
                |k, first| duplicates.push((k, halves.line(first) + 1)),
            );
        });
        duplicates.sort_unstable();
        merge_verdicts(found, halves.verdicts(&duplicates))
    }
}

/// Both halves' records, numbered across them (the back's after the front's).
struct Halves<'h, K> {
    front: &'h Half<K>,
    back: Option<&'h Half<K>>,
    /// The front's records.
    records: usize,
}

impl<'h, K> Halves<'h, K> {
    /// The half holding record `k`, its number there, and the lines before that half.
    fn part(&self, k: usize) -> (&'h Half<K>, usize, usize) {
        match self.back {
            Some(back) if k >= self.records => (back, k - self.records, self.front.lines),
            _ => (self.front, k, 0),
        }
    }

    fn name(&self, k: usize) -> &'h [u8] {
        let (half, k, _) = self.part(k);
        &half.names[half.starts[k]..half.starts[k + 1]]
    }

    /// Record `k`'s line, 0-based, in the file.
    fn line(&self, k: usize) -> usize {
        let (half, k, before) = self.part(k);
        half.record_lines[k] + before
    }

    fn is_dropped(&self, k: usize) -> bool {
        let (half, k, _) = self.part(k);
        half.dropped.binary_search_by_key(&k, |(r, _)| *r).is_ok()
    }

    /// The findings of the records the load does not keep, in line order: the `duplicates`
    /// ((record, first line), sorted) and the dropped ones (a repeat of a kept name is a
    /// duplicate, even if Dovecot would have dropped it: it looks the name up first). Both
    /// lists are short: only such records are in them.
    fn verdicts(&self, duplicates: &[(usize, usize)]) -> Vec<PasswdDiagnostic> {
        let back = self.back.into_iter().flat_map(|back| &back.dropped);
        let dropped = (self.front.dropped.iter().map(|(k, reason)| (*k, reason)))
            .chain(back.map(|(k, reason)| (k + self.records, reason)))
            .filter(|(k, _)| duplicates.binary_search_by_key(k, |&(d, _)| d).is_err())
            .map(|(k, reason)| {
                let reason = reason.clone();
                (k, LoadStatus::Dropped { reason })
            });
        let mut statuses: Vec<(usize, LoadStatus)> = duplicates
            .iter()
            .map(|&(k, first_line)| (k, LoadStatus::Duplicate { first_line }))
            .chain(dropped)
            .collect();
        statuses.sort_unstable_by_key(|(k, _)| *k);
        statuses
            .iter()
            .filter_map(|(k, status)| verdict_finding(self.line(*k), status, self.name(*k)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dovecot::NumericIds;
    use proptest::prelude::*;

    /// The document's test lines, and lines that cross small buffers or are skipped whole.
    fn lines() -> Vec<&'static str> {
        let mut lines = crate::dovecot::passwd::diagnostics::side_by_side::LINES.to_vec();
        lines.extend([
            "a-very-long-user-name-that-crosses-buffers@example.test:{PLAIN}x:1:1::/h::\r\n",
            ":colon first\n",
        ]);
        lines
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Read through buffers of any size (lines across reads, buffers that grow), whole or
        /// split at any line, the file gives the findings the document gives.
        #[test]
        fn the_read_check_finds_what_the_document_finds(
            picks in proptest::collection::vec(0..lines().len(), 0..40),
            last_newline in any::<bool>(),
            userdb in any::<bool>(),
            legacy in any::<bool>(),
            lowercase in any::<bool>(),
            buffer in 1..80usize,
            split_at in any::<prop::sample::Index>(),
        ) {
            let lines = lines();
            let mut text: String = picks.iter().map(|&i| lines[i]).collect();
            if !last_newline {
                text.pop();
            }
            let options = PasswdOptions {
                userdb,
                legacy_mail_field: legacy,
                lowercase_requests: lowercase,
                ..PasswdOptions::default()
            };
            let bytes = text.into_bytes();
            let expected = PasswdFile::parse(bytes.clone(), &options).diagnostics(&NumericIds);
            let starts: Vec<u64> = (1..bytes.len())
                .filter(|&at| bytes[at - 1] == b'\n')
                .map(|at| at as u64)
                .collect();
            let split = (!starts.is_empty()).then(|| starts[split_at.index(starts.len())]);
            for split in [None, split] {
                let got = check_read::<Narrow>(&bytes[..], &options, &NumericIds, split, buffer)
                    .expect("read from memory");
                prop_assert_eq!(&got, &expected, "split {:?}, buffer {}", split, buffer);
                let wide = check_read::<Wide>(&bytes[..], &options, &NumericIds, split, buffer)
                    .expect("read from memory");
                prop_assert_eq!(&wide, &expected, "wide, split {:?}, buffer {}", split, buffer);
            }
        }
    }
}
