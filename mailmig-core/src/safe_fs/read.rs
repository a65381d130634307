//! Reading a whole file: a large one as two halves on two threads.
//!
//! Most of reading a large file from the page cache is the kernel's copy into fresh pages and
//! the faults that map them; two cores share that work when each reads half of the file into
//! its half of the buffer. What is read is what one `read_to_end` from the start would read:
//! a file that grew since its size was taken is read to its end, one that shrank under the
//! first half is read again as one stream.

use fs_err::os::unix::fs::FileExt as _;
use std::io::{self, Read as _, Seek as _, SeekFrom};

/// From this size on, with a second core, the two halves are read side by side (below it a
/// thread costs more than it saves).
const HALVES_FROM: u64 = 16 << 20;

/// The whole of `file`, read from its start; `len` is its size when opened.
pub(crate) fn read_whole(file: &fs_err::File, len: u64) -> io::Result<Vec<u8>> {
    match usize::try_from(len) {
        Ok(len) if len as u64 >= HALVES_FROM && crate::cores::two() => read_in_halves(file, len),
        _ => read_stream(file, Vec::with_capacity(usize::try_from(len).unwrap_or(0))),
    }
}

/// `bytes` and the rest of `file` after them, read as one stream.
fn read_stream(mut file: &fs_err::File, mut bytes: Vec<u8>) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(bytes.len() as u64))?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The two halves of a file of `len` bytes on two threads, then whatever follows them.
fn read_in_halves(file: &fs_err::File, len: usize) -> io::Result<Vec<u8>> {
    // Zeroed memory from the allocator is fresh pages: nothing is written before the read.
    let mut bytes = vec![0u8; len];
    let mid = len / 2;
    let (front, back) = bytes.split_at_mut(mid);
    let (front_read, back_read) = crate::cores::side_by_side(
        || read_at_most(file, front, 0),
        || read_at_most(file, back, mid as u64),
    );
    if front_read? < mid {
        // Shorter than its first half now: the halves are not one version of the file.
        bytes.clear();
        return read_stream(file, bytes);
    }
    bytes.truncate(mid + back_read?);
    read_stream(file, bytes)
}

/// Fills `buf` from `offset` on, or as much of it as the file holds: the bytes read.
fn read_at_most(file: &fs_err::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// A temporary file of `len` bytes, open for reading, and its bytes.
    struct Sample {
        _temp: tempfile::NamedTempFile,
        file: fs_err::File,
        bytes: Vec<u8>,
    }

    fn file_of(len: usize) -> Sample {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut temp = tempfile::NamedTempFile::new().expect("temp file");
        temp.write_all(&bytes).expect("write");
        let file = fs_err::File::open(temp.path()).expect("open");
        Sample {
            _temp: temp,
            file,
            bytes,
        }
    }

    #[test]
    fn halves_read_what_one_stream_reads() {
        for len in [0, 1, 2, 3, 4095, 4096, 4097, 65_537, 1 << 20] {
            let Sample { file, bytes, .. } = file_of(len);
            assert_eq!(read_in_halves(&file, len).expect("read"), bytes, "{len}");
            assert_eq!(read_whole(&file, len as u64).expect("read"), bytes, "{len}");
        }
    }

    /// The size taken at the open is stale: the file grew or shrank before the read.
    #[test]
    fn a_file_that_changed_size_is_read_to_its_end() {
        let Sample { file, bytes, .. } = file_of(10_000);
        for stale in [
            0, 1, 5_000, 9_999, 10_001, 15_000, 19_998, 19_999, 20_000, 20_001, 50_000,
        ] {
            assert_eq!(
                read_in_halves(&file, stale).expect("read"),
                bytes,
                "{stale}"
            );
        }
    }
}
