//! Editing a table: insert, replace, remove records, keeping every other byte.

use super::*;

/// Why an edit was refused. Nothing is changed when an edit returns an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableEditError {
    /// The key cannot be written so that `postmap` reads back the same key.
    #[error("invalid key `{key}`: {reason}")]
    InvalidKey {
        /// The key (lossy UTF-8).
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The value cannot be written so that `postmap` reads back the same value.
    #[error("invalid value `{value}`: {reason}")]
    InvalidValue {
        /// The value (lossy UTF-8).
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The entry handle does not name an entry of this table (any more).
    #[error("no such entry in the table")]
    NoSuchEntry,
}

impl Table {
    // ------------------------------------------------------------------ editing

    /// Set `key` to `value`: replace the value of the entry `postmap` would use for `key` (the
    /// first one, compared folded when `fold`), or append a new entry. Returns the entry's handle.
    pub fn set(&mut self, key: &[u8], value: &[u8], fold: bool) -> Result<EntryId, TableEditError> {
        match self.get(key, fold).map(|e| e.id()) {
            Some(id) => {
                self.replace_value(id, value)?;
                Ok(id)
            }
            None => self.insert(key, value),
        }
    }

    /// Append a new entry `key value` at the end of the file, with the layout of the entry before
    /// it (separator and alignment) and the file's line ending. A file without a final newline
    /// keeps having none.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<EntryId, TableEditError> {
        self.validate(key, value)?;
        let eol = self.eol();
        let sep = self.separator_for(key);
        let had_final_newline = self.ends_with_newline();
        let mut restore_prev = None;
        if !had_final_newline {
            if let Some(last) = self.items.len().checked_sub(1) {
                let old = self.raw(&self.items[last]);
                let mut bytes = self.bytes(old).to_vec();
                bytes.extend_from_slice(eol);
                let new = self.push_side(&bytes);
                self.set_raw(last, new);
                restore_prev = Some(old);
            }
        }
        let mut line = Vec::with_capacity(key.len() + sep.len() + value.len() + 2);
        line.extend_from_slice(key);
        line.extend_from_slice(&sep);
        line.extend_from_slice(value);
        if had_final_newline || self.items.is_empty() && self.src.is_empty() {
            line.extend_from_slice(eol);
        }
        let raw = self.push_side(&line);
        let id = self.fresh_id();
        let mut item = self.entry_item(raw);
        item.id = id;
        if restore_prev.is_some() {
            item.aux = self.new_aux(Aux::rare(AuxRare {
                restore_prev,
                ..AuxRare::default()
            }));
        }
        self.items.push(item);
        Ok(EntryId(u64::from(id)))
    }

    /// Replace the value of one entry. The key and the separator bytes before the value are kept;
    /// the record becomes one line (comment lines that were inside it stay in the file, after it;
    /// blank lines inside it go).
    pub fn replace_value(&mut self, id: EntryId, value: &[u8]) -> Result<(), TableEditError> {
        let index = self.position(id).ok_or(TableEditError::NoSuchEntry)?;
        let key = self.bytes(self.key_span(&self.items[index])).to_vec();
        self.validate(&key, value)?;
        let raw_bytes = self.bytes(self.raw(&self.items[index])).to_vec();
        let first_end = memchr::memchr(b'\n', &raw_bytes).map_or(raw_bytes.len(), |i| i + 1);
        let first_line = &raw_bytes[..first_end];
        let eol: &[u8] = if first_line.ends_with(b"\r\n") {
            b"\r\n"
        } else if first_line.ends_with(b"\n") {
            b"\n"
        } else {
            b""
        };
        let prefix_len = self.value_offset_in_first_line(&self.items[index]);
        let mut line = Vec::new();
        match prefix_len {
            Some(n) => line.extend_from_slice(&raw_bytes[..n]),
            None => {
                line.extend_from_slice(&key);
                line.push(b' ');
            }
        }
        line.extend_from_slice(value);
        // The line ending: the record's own; a record that was the unterminated last line stays so.
        // Comment and blank lines inside the record become items of their own.
        let mut inner = Vec::new();
        let mut pos = first_end;
        while pos < raw_bytes.len() {
            let end =
                memchr::memchr(b'\n', &raw_bytes[pos..]).map_or(raw_bytes.len(), |i| pos + i + 1);
            let content = raw_bytes[pos..end]
                .strip_suffix(b"\n")
                .unwrap_or(&raw_bytes[pos..end]);
            // Comments are kept; blank lines inside a record carry nothing and go with it.
            if classify(content) == LineClass::Comment {
                inner.push((pos, end));
            }
            pos = end;
        }
        // The record's line ending: its own; a record that was the unterminated last line stays
        // unterminated (then its last inner line, if any, loses its ending instead).
        let terminated = raw_bytes.ends_with(b"\n");
        if terminated || !inner.is_empty() {
            line.extend_from_slice(if eol.is_empty() { self.eol() } else { eol });
        }
        let mut inner: Vec<Vec<u8>> = inner
            .into_iter()
            .map(|(s, e)| raw_bytes[s..e].to_vec())
            .collect();
        if !terminated {
            if let Some(last) = inner.last_mut() {
                while last.last() == Some(&b'\n') || last.last() == Some(&b'\r') {
                    last.pop();
                }
            }
        }
        let new_raw = self.push_side(&line);
        let old = self.items[index].clone();
        let mut item = self.entry_item(new_raw);
        item.id = old.id;
        item.line = old.line;
        // Keep the `key:` warning (the key did not change) and the restore information.
        if let Some(old_aux) = self.aux_of(&old).cloned() {
            let warnings: Vec<_> = old_aux
                .warnings()
                .iter()
                .filter(|(_, k)| matches!(k, DiagnosticKind::ColonKey))
                .cloned()
                .collect();
            if !warnings.is_empty() || old_aux.restore_prev().is_some() {
                let spans = self.aux_of(&item).and_then(|a| a.spans);
                let value_offset = self
                    .aux_of(&item)
                    .and_then(|a| a.value_offset_in_first_line);
                item.aux = self.new_aux(Aux {
                    spans,
                    value_offset_in_first_line: value_offset,
                    rare: Some(Box::new(AuxRare {
                        warnings,
                        restore_prev: old_aux.restore_prev(),
                        ..AuxRare::default()
                    })),
                });
            }
        }
        self.items[index] = item;
        for (offset, bytes) in inner.into_iter().enumerate() {
            let raw = self.push_side(&bytes);
            let raw = self.pack(raw);
            self.items.insert(
                index + 1 + offset,
                ItemData::plain(raw, 0, LineClass::Comment),
            );
        }
        Ok(())
    }

    /// Remove one entry with its continuation lines and the comment and blank lines inside it,
    /// nothing else. A file without a final newline keeps having none.
    pub fn remove(&mut self, id: EntryId) -> Result<(), TableEditError> {
        let index = self.position(id).ok_or(TableEditError::NoSuchEntry)?;
        let was_last = index + 1 == self.items.len();
        let had_final_newline = self.ends_with_newline();
        let eol = self.eol();
        let removed = self.items.remove(index);
        let restore_prev = self.aux_of(&removed).and_then(Aux::restore_prev);
        if was_last && !had_final_newline {
            if let Some(last) = self.items.len().checked_sub(1) {
                let restored = match restore_prev {
                    Some(old) => old,
                    None => {
                        // Keep the file without a final newline: drop the new last line's ending.
                        let bytes = self.bytes(self.raw(&self.items[last])).to_vec();
                        let trimmed = bytes
                            .strip_suffix(eol)
                            .or_else(|| bytes.strip_suffix(b"\n"))
                            .unwrap_or(&bytes)
                            .to_vec();
                        self.push_side(&trimmed)
                    }
                };
                self.set_raw(last, restored);
            }
        }
        Ok(())
    }

    fn position(&self, id: EntryId) -> Option<usize> {
        self.items
            .iter()
            .position(|item| item.tag == Tag::Entry && u64::from(item.id) == id.0)
    }

    /// A one-line entry item (its key and value are read from its line when needed).
    fn entry_item(&mut self, raw: Span) -> ItemData {
        let raw = self.pack(raw);
        let mut item = ItemData::plain(raw, 0, LineClass::Start);
        item.tag = Tag::Entry;
        item
    }

    fn push_side(&mut self, bytes: &[u8]) -> Span {
        let start = self.side.len();
        self.side.extend_from_slice(bytes);
        Span::side(start, self.side.len())
    }

    fn ends_with_newline(&self) -> bool {
        self.items
            .last()
            .is_none_or(|item| self.bytes(self.raw(item)).ends_with(b"\n"))
    }

    /// The file's line ending: that of the last terminated line, else `\n`.
    fn eol(&self) -> &'static [u8] {
        for item in self.items.iter().rev() {
            let b = self.bytes(self.raw(item));
            if b.ends_with(b"\r\n") {
                return b"\r\n";
            }
            if b.ends_with(b"\n") {
                return b"\n";
            }
        }
        b"\n"
    }

    /// The separator for a new entry: like the last entry's (tabs stay one tab; spaces pad the
    /// value to the same column), else one TAB.
    fn separator_for(&self, key: &[u8]) -> Vec<u8> {
        let last = self.entries().last().and_then(|e| {
            let offset = e.table.value_offset_in_first_line(e.item)?;
            let raw = e.raw();
            let key_len = e.key().len();
            Some((raw[key_len..offset].to_vec(), offset))
        });
        match last {
            Some((sep, _)) if !sep.is_empty() && sep.iter().all(|&b| b == b'\t') => b"\t".to_vec(),
            Some((sep, column)) if !sep.is_empty() && sep.iter().all(|&b| b == b' ') => {
                vec![b' '; column.saturating_sub(key.len()).max(1)]
            }
            _ => b"\t".to_vec(),
        }
    }

    /// Refuse a key or value that `postmap` would not read back as the same key and value.
    fn validate(&self, key: &[u8], value: &[u8]) -> Result<(), TableEditError> {
        let bad_key = |reason| TableEditError::InvalidKey {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        };
        let bad_value = |reason| TableEditError::InvalidValue {
            value: String::from_utf8_lossy(value).into_owned(),
            reason,
        };
        if key.is_empty() {
            return Err(bad_key("the key is empty"));
        }
        if key[0] == b'#' {
            return Err(bad_key("a key starting with `#` would be a comment"));
        }
        if key.contains(&0) || key.contains(&b'\n') {
            return Err(bad_key("NUL and newline bytes cannot be stored"));
        }
        if value.is_empty() || value.iter().all(|&b| is_space(b)) {
            return Err(bad_value("the value is empty"));
        }
        if value.contains(&0) || value.contains(&b'\n') {
            return Err(bad_value("NUL and newline bytes cannot be stored"));
        }
        if is_space(value[0]) || is_space(value[value.len() - 1]) {
            return Err(bad_value("postmap trims leading and trailing whitespace"));
        }
        // Read the candidate line back with postmap's own rules.
        let mut line = key.to_vec();
        line.push(b' ');
        line.extend_from_slice(value);
        match parse_logical(&line, line.len(), false, false, &self.options) {
            Parsed::Entry {
                key_end, value: v, ..
            } if key_end == key.len() && &line[v.0..v.1] == value => Ok(()),
            Parsed::Entry { .. } => Err(bad_key(
                "the key contains whitespace that is not quoted, so postmap would split it",
            )),
            Parsed::Unparsed { data, .. } => match data.kind {
                DiagnosticKind::NonUtf8 { .. } => {
                    Err(bad_key("not valid UTF-8 while smtputf8_enable is on"))
                }
                DiagnosticKind::UnbalancedQuote { .. } => Err(bad_key("unbalanced `\"`")),
                _ => Err(bad_key("postmap would not read this record")),
            },
        }
    }
}
