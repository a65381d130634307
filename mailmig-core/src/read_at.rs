//! Reading a file at offsets, for the checks that read a large file through a buffer in two
//! halves side by side (`map check`, `passwd check`): where a half may start, and reads that
//! retry when interrupted.

use std::io;

/// Bytes read at an offset: a file, or bytes in memory.
pub(crate) trait ReadAt: Sync {
    /// Reads into `buf` from `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for fs_err::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        fs_err::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

#[cfg(test)]
impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - from);
        buf[..n].copy_from_slice(&self[from..from + n]);
        Ok(n)
    }
}

/// [`ReadAt::read_at`], again when interrupted.
pub(crate) fn read_retrying(
    src: &(impl ReadAt + ?Sized),
    buf: &mut [u8],
    offset: u64,
) -> io::Result<usize> {
    loop {
        match src.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Reads `start..end` of `src` (to its end without `end`) through a buffer of `buffer` bytes.
/// After each read, `cut` says how much of what the buffer holds is whole (the rest starts the
/// buffer again, with what follows it); `each` gets that part, and at the end everything left. A
/// buffer in which `cut` finds nothing whole grows.
pub(crate) fn read_through(
    src: &(impl ReadAt + ?Sized),
    start: u64,
    end: Option<u64>,
    buffer: usize,
    cut: impl Fn(&[u8]) -> usize,
    mut each: impl FnMut(&[u8]),
) -> io::Result<()> {
    let mut buf = vec![0u8; buffer.max(1)];
    let mut filled = 0;
    let mut offset = start;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let left = end.map_or(u64::MAX, |end| end.saturating_sub(offset));
        let room = (buf.len() - filled).min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = if room == 0 {
            0
        } else {
            read_retrying(src, &mut buf[filled..filled + room], offset)?
        };
        filled += n;
        offset += n as u64;
        let at_end = n == 0;
        let whole = if at_end { filled } else { cut(&buf[..filled]) };
        each(&buf[..whole]);
        buf.copy_within(whole..filled, 0);
        filled -= whole;
        if at_end {
            return Ok(());
        }
    }
}

/// The start of the first line after `from` whose first byte `starts` accepts, if there is
/// one.
pub(crate) fn line_start_after(
    src: &(impl ReadAt + ?Sized),
    from: u64,
    starts: impl Fn(u8) -> bool,
) -> io::Result<Option<u64>> {
    let mut window = vec![0u8; 64 << 10];
    let mut at = from;
    // The byte after a newline at the end of one window is the first of the next.
    let mut after_newline = false;
    loop {
        let n = read_retrying(src, &mut window, at)?;
        if n == 0 {
            return Ok(None);
        }
        let bytes = &window[..n];
        if after_newline && starts(bytes[0]) {
            return Ok(Some(at));
        }
        for nl in memchr::memchr_iter(b'\n', bytes) {
            match bytes.get(nl + 1) {
                Some(&b) if starts(b) => return Ok(Some(at + nl as u64 + 1)),
                _ => {}
            }
        }
        after_newline = bytes[n - 1] == b'\n';
        at += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_starts_at_a_line_that_follows() {
        let any = |_| true;
        let bytes = b"ab\ncd\nef".to_vec();
        assert_eq!(line_start_after(&bytes[..], 0, any).expect("read"), Some(3));
        assert_eq!(line_start_after(&bytes[..], 3, any).expect("read"), Some(6));
        assert_eq!(line_start_after(&bytes[..], 6, any).expect("read"), None);
        assert_eq!(line_start_after(&b"ab\n"[..], 0, any).expect("read"), None);
        let record = |b: u8| b != b' ' && b != b'#';
        let map = b"a b\n c\n# d\ne f\n".to_vec();
        assert_eq!(
            line_start_after(&map[..], 0, record).expect("read"),
            Some(11)
        );
    }

    /// A newline at the very end of one 64 KiB window: the line after it starts the next.
    #[test]
    fn a_line_start_across_windows_is_found() {
        let mut bytes = vec![b'x'; (64 << 10) - 1];
        bytes.push(b'\n');
        bytes.extend_from_slice(b" cont\nnext v\n");
        let record = |b: u8| b != b' ';
        assert_eq!(
            line_start_after(&bytes[..], 0, record).expect("read"),
            Some((64 << 10) + 6)
        );
        let mut starts_next = vec![b'x'; (64 << 10) - 1];
        starts_next.push(b'\n');
        starts_next.extend_from_slice(b"next v\n");
        assert_eq!(
            line_start_after(&starts_next[..], 0, record).expect("read"),
            Some(64 << 10)
        );
    }
}
