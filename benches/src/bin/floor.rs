//! `floor read|stream|keys|keys2|sorted FILE [KEYS]`: the least work a whole-table command over
//! FILE can do, cut down to below what any correct check needs, for `benches/cli.sh floor` to time
//! as processes beside GNU sed. None of these checks anything; each is a lower bound on a part of the work.
//!
//! - `read`: the file into one fresh buffer (what a command holding the document pays to start).
//! - `stream`: the file through one reused 1 MiB buffer, newlines counted (sed's own way of
//!   reading; the least any command reading every byte pays).
//! - `keys`: `stream`, and each line that starts a record gives its key (the bytes before the
//!   first `:`, space or tab) whose 64-bit hash goes into a table sized up front for KEYS keys (default 2^20) —
//!   the duplicate search of `map check` and Dovecot's load in `passwd check`, without the
//!   keys' bytes (equal hashes count as equal keys), their folding or their records' checks.
//! - `keys2`: `keys` on two threads, each over half the file with a table of its own, the two
//!   tables never compared (the least two cores can do of it).
//! - `sorted`: `keys` with the hashes collected and sorted instead (equal neighbours counted
//!   once): the way mailmig finds repeated keys since the eighth round.
#![forbid(unsafe_code)]

use std::io::{Read, Seek, SeekFrom};

use hashbrown::HashTable;

/// The size of the reused read buffer (sed's is smaller).
const BUFFER: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: floor read|stream|keys|keys2|sorted FILE [KEYS]";
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or(usage)?;
    let file = args.next().ok_or(usage)?;
    let expected: usize = args.next().map_or(Ok(1 << 20), |n| n.parse())?;
    let answer = match mode.as_str() {
        "read" => fs_err::read(&file)?.len(),
        "stream" => {
            let mut lines = 0;
            stream(&file, 0, u64::MAX, |line| {
                lines += usize::from(!line.is_empty())
            })?;
            lines
        }
        "keys" => keys(&file, 0, u64::MAX, expected)?,
        "sorted" => sorted(&file, expected)?,
        "keys2" => {
            let len = fs_err::metadata(&file)?.len();
            let half = len / 2;
            let (a, b) = std::thread::scope(|s| {
                let other = s.spawn(|| keys(&file, half, len, expected / 2));
                let here = keys(&file, 0, half, expected / 2);
                (here, other.join())
            });
            a? + b.map_err(|_| "the second thread panicked")??
        }
        _ => return Err(usage.into()),
    };
    std::hint::black_box(answer);
    Ok(())
}

/// `keys` by sorting: every key's hash into one vector, sorted, equal neighbours counted once.
fn sorted(file: &str, expected: usize) -> std::io::Result<usize> {
    let hasher = foldhash::fast::FixedState::with_seed(0);
    let mut hashes = Vec::with_capacity(expected);
    stream(file, 0, u64::MAX, |line| {
        hashes.extend(key_hash(&hasher, line))
    })?;
    hashes.sort_unstable();
    hashes.dedup();
    Ok(hashes.len())
}

/// Counts the keys of the records whose lines start at or after byte `from` and before byte `to`, in a table of hashes; returns how many were new.
fn keys(file: &str, from: u64, to: u64, expected: usize) -> std::io::Result<usize> {
    let hasher = foldhash::fast::FixedState::with_seed(0);
    let mut table: HashTable<u64> = HashTable::with_capacity(expected);
    let mut new = 0;
    stream(file, from, to, |line| {
        let Some(hash) = key_hash(&hasher, line) else {
            return;
        };
        if let hashbrown::hash_table::Entry::Vacant(slot) =
            table.entry(hash, |&h| h == hash, |&h| h)
        {
            slot.insert(hash);
            new += 1;
        }
    })?;
    Ok(new)
}

/// The hash of the key of a line that starts a record (the bytes before its first `:`, space or
/// tab); `None` for a blank line, a comment or a continuation.
fn key_hash(hasher: &foldhash::fast::FixedState, line: &[u8]) -> Option<u64> {
    let &first = line.first()?;
    if matches!(first, b'#' | b' ' | b'\t') {
        return None;
    }
    let end = memchr::memchr3(b':', b' ', b'\t', line).unwrap_or(line.len());
    Some(std::hash::BuildHasher::hash_one(hasher, &line[..end]))
}

/// Calls `each` with every line (without its newline) that starts at or after byte `from` and
/// before byte `to`, reading through one reused buffer.
fn stream(file: &str, from: u64, to: u64, mut each: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut f = fs_err::File::open(file)?;
    let mut at = from;
    let mut skip_first = from > 0;
    if from > 0 {
        // The line that holds byte `from - 1` belongs to the half before.
        f.seek(SeekFrom::Start(from - 1))?;
        at = from - 1;
    }
    let mut buf = vec![0u8; BUFFER];
    let mut kept = 0;
    loop {
        let n = f.read(&mut buf[kept..])?;
        let filled = kept + n;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[..filled]) {
            if at + start as u64 >= to {
                return Ok(());
            }
            if !std::mem::take(&mut skip_first) {
                each(&buf[start..nl]);
            }
            start = nl + 1;
        }
        at += start as u64;
        if n == 0 {
            if start < filled && !skip_first && at < to {
                each(&buf[start..filled]);
            }
            return Ok(());
        }
        buf.copy_within(start..filled, 0);
        kept = filled - start;
        if kept == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
}
