//! One user's record straight from a reader, without holding the file: what `passwd show` needs
//! on a large passwd-file.

use std::io::Read;

use super::{IdResolver, PasswdFile, PasswdOptions};

/// The record Dovecot uses for a name, found by [`PasswdFile::find_record`].
#[derive(Debug)]
pub struct FoundRecord {
    /// Its 1-based line number in the file.
    pub line: usize,
    /// A one-line document of the record (its line number there is 1).
    pub record: PasswdFile,
}

/// How much of the file is held at once (grown for a longer line).
const CHUNK: usize = 1 << 20;

impl PasswdFile {
    /// The record Dovecot uses when `name` is requested, read from `reader` a chunk at a time —
    /// the same record as `PasswdFile::parse(all, options).lookup(name, ids)`, the first line
    /// of the user that Dovecot does not drop — stopping there. Only lines that start with the
    /// lookup key are read as records.
    pub fn find_record(
        mut reader: impl Read,
        name: &[u8],
        options: &PasswdOptions,
        ids: &dyn IdResolver,
    ) -> std::io::Result<Option<FoundRecord>> {
        let Some(key) = PasswdFile::parse(Vec::new(), options).request_key(name) else {
            return Ok(None);
        };
        let finder = memchr::memmem::Finder::new(&key);
        let mut buf = vec![0u8; CHUNK];
        let (mut filled, mut first_line) = (0, 1);
        loop {
            let n = reader.read(&mut buf[filled..])?;
            filled += n;
            let eof = n == 0;
            // The complete lines held: up to the last newline (everything at the end).
            let complete = if eof {
                filled
            } else {
                memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1)
            };
            if complete == 0 && !eof {
                if filled == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
                continue;
            }
            let held = &buf[..complete];
            for at in finder.find_iter(held) {
                if at > 0 && held[at - 1] != b'\n' {
                    continue;
                }
                let end = memchr::memchr(b'\n', &held[at..]).map_or(complete, |i| at + i + 1);
                let record = PasswdFile::parse(held[at..end].to_vec(), options);
                if record.lookup(name, ids).is_some() {
                    let line = first_line + memchr::memchr_iter(b'\n', &held[..at]).count();
                    return Ok(Some(FoundRecord { line, record }));
                }
            }
            if eof {
                return Ok(None);
            }
            first_line += memchr::memchr_iter(b'\n', held).count();
            buf.copy_within(complete..filled, 0);
            filled -= complete;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dovecot::NumericIds;

    /// The chunked reader answers as the whole document does: lines split across reads, a
    /// dropped first line, a prefix of another name, no final newline.
    #[test]
    fn the_streamed_record_is_the_documents() {
        let src = "alice2:{PLAIN}x:1000:1000::/h::\nalice:{PLAIN}x:0:1000::/h::\nalice:{PLAIN}y:1000:1000::/h::a=1\nbob:{PLAIN}z";
        let opts = PasswdOptions::default();
        let doc = PasswdFile::parse(src.as_bytes().to_vec(), &opts);
        for name in ["alice", "ALICE", "bob", "alice2", "carol", ""] {
            // A reader that hands out three bytes at a time.
            struct Slow<'a>(&'a [u8]);
            impl Read for Slow<'_> {
                fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                    let n = out.len().min(3).min(self.0.len());
                    out[..n].copy_from_slice(&self.0[..n]);
                    self.0 = &self.0[n..];
                    Ok(n)
                }
            }
            let found =
                PasswdFile::find_record(Slow(src.as_bytes()), name.as_bytes(), &opts, &NumericIds)
                    .expect("read");
            let want = doc.lookup(name.as_bytes(), &NumericIds);
            assert_eq!(
                found.as_ref().map(|f| (f.line, f.record.render())),
                want.map(|e| (e.line(), e.raw().to_vec())),
                "{name}"
            );
        }
    }
}
