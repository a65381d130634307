//! Editing a record's extra fields, keeping every other byte.

use super::*;

/// Why an edit was refused. Nothing is changed when an edit returns an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswdEditError {
    /// The user name cannot be a passwd-file key.
    #[error("invalid user name `{user}`: {reason}")]
    InvalidUser {
        /// The name (lossy).
        user: String,
        /// Why.
        reason: &'static str,
    },
    /// Dovecot has no record for the user.
    #[error("no record of user `{user}` that Dovecot would use")]
    NoSuchUser {
        /// The name (lossy).
        user: String,
    },
    /// The field name cannot be written.
    #[error("invalid field name `{key}`: {reason}")]
    InvalidKey {
        /// The key (lossy).
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The value cannot be written so that Dovecot reads it back unchanged.
    #[error("invalid value `{value}` for {key}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value (lossy).
        value: String,
        /// Why.
        reason: String,
    },
    /// The record cannot take extra fields without changing what it means.
    #[error("line {line}: {reason}")]
    UnsafeRecord {
        /// 1-based line.
        line: usize,
        /// Why.
        reason: &'static str,
    },
    /// The user has a record already: an overlay file gets one line per user.
    #[error("line {line}: `{user}` has a record already")]
    RecordExists {
        /// 1-based line.
        line: usize,
        /// The name (lossy).
        user: String,
    },
    /// The field appears more than once in the record.
    #[error("line {line}: `{key}` appears more than once in the record; fix it by hand first")]
    AmbiguousKey {
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
    },
}

impl PasswdFile {
    // ------------------------------------------------------------------ editing

    /// Apply several edits as one: when `edit` returns an error, every line it changed or
    /// added is put back as it was (and the padding records with them), so the document is
    /// exactly what it was before the call. Costs nothing for the lines it does not touch.
    pub fn atomically<T, E>(
        &mut self,
        edit: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        let len = self.lines.len();
        let padded = self.padded.clone();
        let outer = self.undo.replace(Vec::new());
        let result = edit(self);
        let log = std::mem::replace(&mut self.undo, outer).unwrap_or_default();
        if result.is_err() {
            for (i, line) in log.into_iter().rev() {
                if i < len {
                    self.lines[i] = line;
                }
            }
            self.lines.truncate(len);
            self.padded = padded;
        } else if let Some(outer) = &mut self.undo {
            outer.extend(log);
        }
        result
    }

    /// Replace line `i`, logging what it was while an atomic edit runs.
    fn put_line(&mut self, i: usize, line: LineRaw) {
        let old = std::mem::replace(&mut self.lines[i], line);
        if let Some(log) = &mut self.undo {
            log.push((i, old));
        }
    }

    /// Set one extra field of `user`'s record (the one Dovecot uses): replace its value where it
    /// is, or append ` key=value` at the end of the line. `value == None` writes a bare key.
    /// Every other byte of the record and of the file is kept.
    pub fn set_extra(
        &mut self,
        user: &[u8],
        key: &[u8],
        value: Option<&[u8]>,
        ids: &dyn IdResolver,
    ) -> Result<(), PasswdEditError> {
        validate_user(user)?;
        validate_key(key)?;
        if let Some(v) = value {
            validate_value(key, v, user)?;
        }
        let (index, entry) = self.editable(user, ids)?;
        let mut token = key.to_vec();
        if let Some(v) = value {
            token.push(b'=');
            token.extend_from_slice(v);
        }
        let matches = self.positions_of(&entry, key)?;
        let raw = entry.raw.to_vec();
        let (content_len, tail) = split_tail(&raw);
        let mut line = raw[..content_len].to_vec();
        match matches {
            Some((start, end)) => {
                line.splice(start..end, token);
            }
            None => {
                let colons = entry.fields.len().saturating_sub(1);
                if colons < 7 {
                    line.extend(std::iter::repeat_n(b':', 7 - colons));
                    self.padded.insert(index, 7 - colons);
                } else {
                    // A separating space unless the extra fields are empty (always one, even
                    // after a trailing space: removing the field takes exactly that space away).
                    let extra_start = entry.field_offset(7).unwrap_or(line.len());
                    if line.len() > extra_start {
                        line.push(b' ');
                    }
                }
                line.extend_from_slice(&token);
            }
        }
        line.extend_from_slice(tail);
        self.put_line(index, LineRaw::Owned(line));
        Ok(())
    }

    /// Remove one extra field (and one space next to it) from `user`'s record. Returns whether
    /// the field was there.
    pub fn remove_extra(
        &mut self,
        user: &[u8],
        key: &[u8],
        ids: &dyn IdResolver,
    ) -> Result<bool, PasswdEditError> {
        validate_user(user)?;
        validate_key(key)?;
        let (index, entry) = self.editable(user, ids)?;
        let Some((start, end)) = self.positions_of(&entry, key)? else {
            return Ok(false);
        };
        let raw = entry.raw.to_vec();
        let (content_len, tail) = split_tail(&raw);
        let mut line = raw[..content_len].to_vec();
        let extra_start = entry.field_offset(7).unwrap_or(start);
        // The space before the field, else the one after it.
        let (cut_start, cut_end) = if start > extra_start && line[start - 1] == b' ' {
            (start - 1, end)
        } else if line.get(end) == Some(&b' ') {
            (start, end + 1)
        } else {
            (start, end)
        };
        line.drain(cut_start..cut_end);
        // The last field gone from a line an edit padded: take the padding away again.
        if line.len() == extra_start {
            if let Some(added) = self.padded.remove(&index) {
                line.truncate(line.len().saturating_sub(added));
            }
        }
        line.extend_from_slice(tail);
        self.put_line(index, LineRaw::Owned(line));
        Ok(true)
    }

    /// Append a record for `user`: the name alone when `extra` is empty (a passdb line, as a
    /// `deny = yes` overlay reads it), else `user:::::::` and the extra fields (a userdb line that
    /// leaves uid, gid and home to the userdb before it). A file without a final newline gets one
    /// first. Refused when any line already names the user.
    pub fn add_record(
        &mut self,
        user: &[u8],
        extra: &[(&[u8], Option<&[u8]>)],
    ) -> Result<(), PasswdEditError> {
        validate_user(user)?;
        for (k, v) in extra {
            validate_key(k)?;
            if let Some(v) = v {
                validate_value(k, v, user)?;
            }
        }
        if let Some(e) = self.records().find(|e| e.user() == user) {
            return Err(PasswdEditError::RecordExists {
                line: e.line(),
                user: show(user),
            });
        }
        if let Some(last) = self.lines.len().checked_sub(1) {
            let raw = self.raw(last);
            if !raw.ends_with(b"\n") {
                let mut owned = raw.to_vec();
                owned.push(b'\n');
                self.put_line(last, LineRaw::Owned(owned));
            }
        }
        let mut line = user.to_vec();
        if !extra.is_empty() {
            line.extend_from_slice(b":::::::");
            for (i, (k, v)) in extra.iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                line.extend_from_slice(k);
                if let Some(v) = v {
                    line.push(b'=');
                    line.extend_from_slice(v);
                }
            }
        }
        line.push(b'\n');
        self.lines.push(LineRaw::Owned(line));
        Ok(())
    }

    /// Remove every line that names `user` exactly (an overlay file's own records: removing
    /// only the effective one would let a later line take effect). Returns how many.
    pub fn remove_records(&mut self, user: &[u8]) -> Result<usize, PasswdEditError> {
        validate_user(user)?;
        let doomed: Vec<usize> = (0..self.lines.len())
            .filter(|&i| {
                let line = Line {
                    number: i + 1,
                    raw: self.raw(i),
                    options: self.options,
                };
                line.entry().is_some_and(|e| e.user() == user)
            })
            .collect();
        for &i in &doomed {
            // Emptied in place: later lines keep their indexes (and their padding records).
            self.put_line(i, LineRaw::Owned(Vec::new()));
            self.padded.remove(&i);
        }
        Ok(doomed.len())
    }

    /// The line index and record of `user` that Dovecot uses, if it can take extra-field edits.
    fn editable(
        &self,
        user: &[u8],
        ids: &dyn IdResolver,
    ) -> Result<(usize, PasswdEntry<'_>), PasswdEditError> {
        let (index, entry) = self
            .effective(user, ids)
            .ok_or_else(|| PasswdEditError::NoSuchUser { user: show(user) })?;
        let (_, nul) = content_of(entry.raw);
        if nul {
            return Err(PasswdEditError::UnsafeRecord {
                line: entry.line,
                reason: "the record has a NUL byte; fix it by hand first",
            });
        }
        if entry.legacy_form() {
            return Err(PasswdEditError::UnsafeRecord {
                line: entry.line,
                reason: "the record has an empty 8th field, which Dovecot 2.2/2.3 read as the legacy mail location; fix it by hand first (extra fields start after exactly 7 colons)",
            });
        }
        if entry.fields.len() < 4 {
            return Err(PasswdEditError::UnsafeRecord {
                line: entry.line,
                reason: "the record has no uid/gid fields (passdb only); adding extra fields would add empty uid and gid fields and make it a userdb record",
            });
        }
        Ok((index, entry))
    }

    /// Where `key` sits in the record's extra fields (byte range of the whole token); an error
    /// when it is there more than once.
    fn positions_of(
        &self,
        entry: &PasswdEntry<'_>,
        key: &[u8],
    ) -> Result<Option<(usize, usize)>, PasswdEditError> {
        let found: Vec<(usize, usize)> = entry
            .extra()
            .iter()
            .filter(|f| f.key.as_ref() == key)
            .filter_map(|f| {
                let start = f.offset?;
                let len = f.key.len() + f.value.as_ref().map_or(0, |v| v.len() + 1);
                Some((start, start + len))
            })
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(PasswdEditError::AmbiguousKey {
                line: entry.line,
                key: show(key),
            }),
        }
    }
}

/// A line's content length (without `\r\n` / `\n`) and its terminator.
fn split_tail(raw: &[u8]) -> (usize, &[u8]) {
    if raw.ends_with(b"\r\n") {
        (raw.len() - 2, b"\r\n")
    } else if raw.ends_with(b"\n") {
        (raw.len() - 1, b"\n")
    } else if raw.ends_with(b"\r") {
        (raw.len() - 1, b"\r")
    } else {
        (raw.len(), b"")
    }
}

fn validate_user(user: &[u8]) -> Result<(), PasswdEditError> {
    let bad = |reason| {
        Err(PasswdEditError::InvalidUser {
            user: show(user),
            reason,
        })
    };
    if user.is_empty() {
        return bad("empty");
    }
    if user.contains(&b':') {
        return bad("`:` separates passwd-file fields");
    }
    if user
        .iter()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return bad("whitespace and control bytes are not allowed");
    }
    if user[0] == b'#' {
        return bad("a line starting with `#` is a comment");
    }
    Ok(())
}

fn validate_key(key: &[u8]) -> Result<(), PasswdEditError> {
    let ok = !key.is_empty()
        && key
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !ok {
        return Err(PasswdEditError::InvalidKey {
            key: show(key),
            reason: "field names are letters, digits, `_`, `-` and `.`",
        });
    }
    if key == b"userdb_" {
        return Err(PasswdEditError::InvalidKey {
            key: show(key),
            reason: "an empty name after `userdb_` crashes Dovecot's auth process",
        });
    }
    Ok(())
}

fn validate_value(key: &[u8], value: &[u8], user: &[u8]) -> Result<(), PasswdEditError> {
    let bad = |reason: String| {
        Err(PasswdEditError::InvalidValue {
            key: show(key),
            value: show(value),
            reason,
        })
    };
    if value.contains(&b' ') {
        return bad("values cannot contain spaces (Dovecot splits extra fields at spaces)".into());
    }
    if value.iter().any(u8::is_ascii_control) {
        return bad("control bytes (newline, TAB, CR, NUL) cannot be stored".into());
    }
    if let Err(ExpandError::Unknown(var)) = expand(value, user) {
        return bad(format!(
            "`{var}` is not a Dovecot variable and would fail every lookup; write a literal % as %%"
        ));
    }
    if value.iter().rev().take_while(|&&b| b == b'%').count() % 2 == 1 {
        return bad("Dovecot drops a trailing `%`; write a literal % as %%".into());
    }
    Ok(())
}

#[cfg(test)]
mod record_tests {
    use super::*;

    fn file(text: &str) -> PasswdFile {
        PasswdFile::parse(text.as_bytes().to_vec(), &PasswdOptions::default())
    }

    #[test]
    fn records_are_added_and_removed_leaving_every_other_byte() {
        let text = "# overlay\r\nbob@x:::::::userdb_mail=mdbox:~/mdbox";
        let mut f = file(text);
        f.add_record(b"alice@x", &[]).unwrap();
        f.add_record(
            b"carol@x",
            &[
                (b"userdb_mail_driver", Some(b"mdbox")),
                (b"userdb_mail_path", Some(b"~/mdbox")),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(f.render()).unwrap(),
            format!("{text}\nalice@x\ncarol@x:::::::userdb_mail_driver=mdbox userdb_mail_path=~/mdbox\n")
        );
        let err = f.add_record(b"bob@x", &[]).unwrap_err();
        assert_eq!(
            err,
            PasswdEditError::RecordExists {
                line: 2,
                user: "bob@x".into()
            }
        );
        assert_eq!(f.remove_records(b"alice@x").unwrap(), 1);
        assert_eq!(f.remove_records(b"carol@x").unwrap(), 1);
        assert_eq!(f.remove_records(b"nobody@x").unwrap(), 0);
        assert_eq!(String::from_utf8(f.render()).unwrap(), format!("{text}\n"));
    }

    #[test]
    fn every_line_of_a_user_goes() {
        let mut f = file("a@x\nb@x\na@x:::::::k=v\n");
        assert_eq!(f.remove_records(b"a@x").unwrap(), 2);
        assert_eq!(f.render(), b"b@x\n");
    }

    #[test]
    fn bad_names_and_values_are_refused_before_any_change() {
        let mut f = file("");
        assert!(f.add_record(b"a b", &[]).is_err());
        assert!(f.add_record(b"#a", &[]).is_err());
        assert!(f
            .add_record(b"a@x", &[(b"userdb_mail", Some(b"a b"))])
            .is_err());
        assert_eq!(f.render(), b"");
    }
}
