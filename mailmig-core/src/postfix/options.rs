//! Settings that change how `postmap` reads a file.

use std::fmt;
use std::str::FromStr;

/// A Postfix release, `major.minor`. Reading rules that changed between releases are selected by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PostfixVersion {
    /// Major number (`3` in 3.7.11).
    pub major: u32,
    /// Minor number (`7` in 3.7.11).
    pub minor: u32,
}

impl PostfixVersion {
    /// The release Debian 12 ships (3.7), which the test suite runs against.
    pub const DEBIAN_12: Self = Self::new(3, 7);
    /// The newest behaviour mailmig knows (3.9 added the NUL-byte warning).
    pub const MODERN: Self = Self::new(3, 10);

    /// A version from its parts.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Quoted keys (`"john doe"@x`, `\ ` escapes) are understood since 3.2.
    pub fn quoted_keys(self) -> bool {
        self >= Self::new(3, 2)
    }

    /// `text after null byte may be ignored` is printed since 3.9.
    pub fn warns_on_nul(self) -> bool {
        self >= Self::new(3, 9)
    }
}

impl Default for PostfixVersion {
    fn default() -> Self {
        Self::MODERN
    }
}

impl fmt::Display for PostfixVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The text could not be read as a Postfix version (`3.7`, `3.7.11`, `3.10-20250101`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a Postfix version (expected MAJOR.MINOR[.PATCH])")]
pub struct ParseVersionError {
    /// The text that was given.
    pub text: String,
}

impl FromStr for PostfixVersion {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseVersionError { text: s.to_owned() };
        let mut parts = s.trim().split(['.', '-']);
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(err)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(err)?;
        Ok(Self { major, minor })
    }
}

/// How to read a table file: the settings `postmap` would use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// `smtputf8_enable`: when on, a logical line that is not ASCII and not valid UTF-8 is skipped
    /// with a warning, and keys fold with Unicode case folding. Postfix's default is on from
    /// `compatibility_level` 1.
    pub smtputf8: bool,
    /// The Postfix release whose rules apply.
    pub version: PostfixVersion,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            smtputf8: true,
            version: PostfixVersion::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!("3.7.11".parse(), Ok(PostfixVersion::new(3, 7)));
        assert_eq!("3.10-20250101".parse(), Ok(PostfixVersion::new(3, 10)));
        assert!("three".parse::<PostfixVersion>().is_err());
        assert!(PostfixVersion::new(3, 1) < PostfixVersion::new(3, 2));
        assert!(!PostfixVersion::new(3, 1).quoted_keys());
        assert!(PostfixVersion::DEBIAN_12.quoted_keys());
        assert!(!PostfixVersion::DEBIAN_12.warns_on_nul());
    }
}
