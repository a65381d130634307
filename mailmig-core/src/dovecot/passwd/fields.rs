//! A record's `:`-separated fields, found without a heap allocation: a check of a large file
//! splits a million records (twice: Dovecot's load and the line checks), and an allocation for
//! each was a tenth of `passwd check`'s time. `Copy`, so a [`super::PasswdEntry`] borrows its
//! line and nothing else.

/// How many colons are remembered; the fields after them are found again when asked for.
const KEPT: usize = 8;

/// The fields of one record's content, as `content.split(|&b| b == b':')` gives them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields<'a> {
    content: &'a [u8],
    /// The offsets of the first [`KEPT`] colons (the rest of the array unused).
    colons: [usize; KEPT],
    /// How many colons the content has in all.
    count: usize,
}

impl<'a> Fields<'a> {
    /// Splits `content` at its colons.
    pub(super) fn split(content: &'a [u8]) -> Self {
        let mut colons = [0; KEPT];
        let mut count = 0;
        for colon in memchr::memchr_iter(b':', content) {
            if let Some(slot) = colons.get_mut(count) {
                *slot = colon;
            }
            count += 1;
        }
        Fields {
            content,
            colons,
            count,
        }
    }

    /// The number of fields (one more than the colons).
    pub(super) fn len(&self) -> usize {
        self.count + 1
    }

    /// Where field `n` starts in the content, if there is one.
    pub(super) fn offset(&self, n: usize) -> Option<usize> {
        match n {
            0 => Some(0),
            _ if n > self.count => None,
            _ if n <= KEPT => Some(self.colons[n - 1] + 1),
            _ => {
                let after = self.colons[KEPT - 1] + 1;
                memchr::memchr_iter(b':', &self.content[after..])
                    .nth(n - KEPT - 1)
                    .map(|at| after + at + 1)
            }
        }
    }

    /// Field `n`, if there is one.
    pub(super) fn get(&self, n: usize) -> Option<&'a [u8]> {
        let start = self.offset(n)?;
        let end = if n < KEPT.min(self.count) {
            self.colons[n]
        } else if n == self.count {
            self.content.len()
        } else {
            start + memchr::memchr(b':', &self.content[start..])?
        };
        Some(&self.content[start..end])
    }

    /// The first field: the user name (the whole content when it has no colon).
    pub(super) fn first(&self) -> &'a [u8] {
        self.get(0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every field, its offset and the count are the plain split's, with fewer colons than
        /// are kept and more.
        #[test]
        fn fields_are_the_plain_split(
            raw in proptest::collection::vec(proptest::sample::select(&b"::ab "[..]), 0..40)
        ) {
            let plain: Vec<&[u8]> = raw.split(|&b| b == b':').collect();
            let fields = Fields::split(&raw);
            proptest::prop_assert_eq!(fields.len(), plain.len());
            proptest::prop_assert_eq!(fields.first(), plain[0]);
            let mut offset = 0;
            for (n, field) in plain.iter().enumerate() {
                proptest::prop_assert_eq!(fields.get(n), Some(*field));
                proptest::prop_assert_eq!(fields.offset(n), Some(offset));
                offset += field.len() + 1;
            }
            proptest::prop_assert_eq!(fields.get(plain.len()), None);
            proptest::prop_assert_eq!(fields.offset(plain.len()), None);
        }
    }
}
