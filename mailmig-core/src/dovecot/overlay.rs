//! Dovecot's own chained databases as an overlay over the primary userdb/passdb (SQL, LDAP, a
//! large passwd-file): a small passwd-file *passdb* with `deny = yes`, first, refuses the users
//! listed in it (the lock-out); a small passwd-file *userdb* after the primary one (which
//! continues with `result_success = continue-ok`), skipped for users it does not list
//! (`skip = notfound`), overrides the location fields of the users it lists (the switch).
//! Measured on Dovecot 2.3.19.1 and 2.4.1 (docs/overlay.md): the primary's uid, gid and home
//! stay, only the fields the overlay line sets change; LMTP delivery uses the userdb only, so a
//! denied user's mail keeps arriving.
//!
//! This module writes the configuration snippet for a Dovecot release ([`snippet`]) and checks a
//! running configuration for it ([`check`]); mailmig never edits `dovecot.conf` itself.

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::config::{AuthDb, DovecotConfig, DovecotVersion};

/// The lock-out overlay's file name, beside `dovecot.conf` by default.
pub const DENY_FILE: &str = "mailmig-deny";
/// The location overlay's file name, beside `dovecot.conf` by default.
pub const LOCATION_FILE: &str = "mailmig-override";

/// Where the two overlay files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayFiles {
    /// The deny passdb's passwd-file: a listed user cannot log in.
    pub deny: Utf8PathBuf,
    /// The location userdb's passwd-file: a listed user's location fields.
    pub location: Utf8PathBuf,
}

impl OverlayFiles {
    /// The default files: beside Dovecot's configuration file.
    pub fn beside(config: &Utf8Path) -> Self {
        let dir = config.parent().unwrap_or(Utf8Path::new("/etc/dovecot"));
        Self {
            deny: dir.join(DENY_FILE),
            location: dir.join(LOCATION_FILE),
        }
    }

    /// Whether `path` is one of the two files.
    pub fn contains(&self, path: &Utf8Path) -> bool {
        path == self.deny || path == self.location
    }
}

/// Whether Dovecot reads the overlay at all ([`OverlayMode::Off`]), exactly as measured
/// ([`OverlayMode::Active`]), or in part ([`OverlayMode::Incomplete`], with the problems).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayMode {
    /// No passdb or userdb reads either file.
    Off,
    /// The overlay is in place: lock-outs and switches go through the two files.
    Active,
    /// Some of it is configured, not all.
    Incomplete(Vec<OverlayProblem>),
}

/// Whether `config` uses the overlay of `files`.
pub fn mode(config: &DovecotConfig, files: &OverlayFiles) -> OverlayMode {
    let problems = check(config, files);
    if problems.is_empty() {
        return OverlayMode::Active;
    }
    let mentioned = config
        .passdbs
        .iter()
        .chain(&config.userdbs)
        .any(|db| reads(db, &files.deny) || reads(db, &files.location));
    if mentioned {
        OverlayMode::Incomplete(problems)
    } else {
        OverlayMode::Off
    }
}

/// The passwd-files of the configuration that are not the overlay's (the primary databases).
pub fn primary_passwd_files(config: &DovecotConfig, files: &OverlayFiles) -> Vec<Utf8PathBuf> {
    config
        .passwd_files()
        .into_iter()
        .filter(|f| !files.contains(f))
        .collect()
}

/// The configuration to add, for one Dovecot release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlaySnippet {
    /// The deny passdb: before every other passdb.
    pub passdb: String,
    /// The setting the primary userdb needs, so that the overlay is consulted after it.
    pub primary_userdb: String,
    /// The location userdb: after the primary userdb.
    pub userdb: String,
}

/// The snippet for `version` and `files`.
pub fn snippet(version: DovecotVersion, files: &OverlayFiles) -> OverlaySnippet {
    match version {
        DovecotVersion::V2_3 => OverlaySnippet {
            passdb: format!(
                "passdb {{\n  driver = passwd-file\n  args = username_format=%u {}\n  deny = yes\n}}\n",
                files.deny
            ),
            primary_userdb: "  result_success = continue-ok\n".into(),
            userdb: format!(
                "userdb {{\n  driver = passwd-file\n  args = username_format=%u {}\n  skip = notfound\n}}\n",
                files.location
            ),
        },
        DovecotVersion::V2_4 => OverlaySnippet {
            passdb: format!(
                "passdb mailmig-deny {{\n  driver = passwd-file\n  passwd_file_path = {}\n  deny = yes\n}}\n",
                files.deny
            ),
            primary_userdb: "  result_success = continue-ok\n".into(),
            userdb: format!(
                "userdb mailmig-override {{\n  driver = passwd-file\n  passwd_file_path = {}\n  skip = notfound\n}}\n",
                files.location
            ),
        },
    }
}

/// What keeps the overlay from working as measured, each naming the setting to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OverlayProblem {
    /// No passdb reads the deny file.
    #[error("no passdb reads {file}: add the deny passdb (`mailmig overlay show`) before every other passdb")]
    NoDenyPassdb {
        /// The deny file.
        file: Utf8PathBuf,
    },
    /// The deny passdb is not the first passdb.
    #[error("the passdb of {file} is passdb number {position}: it must come first, or a passdb before it answers for the user")]
    DenyNotFirst {
        /// The deny file.
        file: Utf8PathBuf,
        /// Its 1-based position.
        position: usize,
    },
    /// The deny passdb lacks `deny = yes`.
    #[error("the passdb of {file} has no `deny = yes`: it would authenticate the users it lists instead of refusing them")]
    DenyNotSet {
        /// The deny file.
        file: Utf8PathBuf,
    },
    /// No userdb reads the location file.
    #[error("no userdb reads {file}: add the location userdb (`mailmig overlay show`) after the primary userdb")]
    NoLocationUserdb {
        /// The location file.
        file: Utf8PathBuf,
    },
    /// The location userdb is not the last userdb.
    #[error("the userdb of {file} is followed by another userdb: it must come last, or that userdb's fields override it")]
    LocationNotLast {
        /// The location file.
        file: Utf8PathBuf,
    },
    /// The location userdb is not skipped for users it does not list.
    #[error("the userdb of {file} has no `skip = notfound`: users it does not list would fail to log in")]
    LocationNotSkipped {
        /// The location file.
        file: Utf8PathBuf,
    },
    /// A userdb before the location userdb stops the chain on success.
    #[error("userdb `{userdb}` (number {position}) stops on success: set `result_success = continue-ok` in it, or the location overlay is never consulted")]
    PrimaryStops {
        /// The userdb's name or driver.
        userdb: String,
        /// Its 1-based position.
        position: usize,
    },
}

fn reads(db: &AuthDb, file: &Utf8Path) -> bool {
    db.passwd_file().as_deref() == Some(file)
        || (db.driver == "passwd-file"
            && db.args.split_whitespace().next_back() == Some(file.as_str()))
}

fn label(db: &AuthDb) -> String {
    if db.name.is_empty() {
        db.driver.clone()
    } else {
        db.name.clone()
    }
}

/// Whether the configuration holds the overlay as measured: the deny passdb first with `deny =
/// yes`, the location userdb last with `skip = notfound`, every userdb before it continuing on
/// success. Empty: the overlay is active.
pub fn check(config: &DovecotConfig, files: &OverlayFiles) -> Vec<OverlayProblem> {
    let mut problems = Vec::new();
    match config.passdbs.iter().position(|db| reads(db, &files.deny)) {
        None => problems.push(OverlayProblem::NoDenyPassdb {
            file: files.deny.clone(),
        }),
        Some(i) => {
            if i != 0 {
                problems.push(OverlayProblem::DenyNotFirst {
                    file: files.deny.clone(),
                    position: i + 1,
                });
            }
            if config.passdbs[i].get("deny") != Some("yes") {
                problems.push(OverlayProblem::DenyNotSet {
                    file: files.deny.clone(),
                });
            }
        }
    }
    match config
        .userdbs
        .iter()
        .position(|db| reads(db, &files.location))
    {
        None => problems.push(OverlayProblem::NoLocationUserdb {
            file: files.location.clone(),
        }),
        Some(i) => {
            if i + 1 != config.userdbs.len() {
                problems.push(OverlayProblem::LocationNotLast {
                    file: files.location.clone(),
                });
            }
            if config.userdbs[i].get("skip") != Some("notfound") {
                problems.push(OverlayProblem::LocationNotSkipped {
                    file: files.location.clone(),
                });
            }
            for (j, db) in config.userdbs[..i].iter().enumerate() {
                if db.get("result_success") != Some("continue-ok") {
                    problems.push(OverlayProblem::PrimaryStops {
                        userdb: label(db),
                        position: j + 1,
                    });
                }
            }
        }
    }
    problems
}

/// One field a location-overlay record sets, as the userdb returns it (`mail`, or
/// `mail_driver` and `mail_path`: the `userdb_` prefix of the passwd-file removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlayField {
    /// The userdb field.
    pub key: String,
    /// Its value, as written.
    pub value: String,
}

/// A user's record in the location overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlayEntry {
    /// The user, as the record names them.
    pub user: String,
    /// The record's line (1-based).
    pub line: usize,
    /// The fields it sets.
    pub fields: Vec<OverlayField>,
}

/// Every record of the location overlay, in file order.
pub fn entries(location: &super::PasswdFile) -> Vec<OverlayEntry> {
    location
        .records()
        .map(|e| OverlayEntry {
            user: String::from_utf8_lossy(e.user()).into_owned(),
            line: e.line(),
            fields: e
                .extra()
                .iter()
                .map(|f| {
                    let key = String::from_utf8_lossy(&f.key);
                    OverlayField {
                        key: key.strip_prefix("userdb_").unwrap_or(&key).to_string(),
                        value: f
                            .value
                            .as_deref()
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// Why `UPDATE` statements cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A table or column name that would need quoting.
    #[error("`{name}` is not a plain SQL name (letters, digits, `_`, not starting with a digit)")]
    Name {
        /// The name.
        name: String,
    },
    /// A value SQL dialects do not read alike.
    #[error("line {line}: {user}'s `{key}` holds a backslash or a control character, which MySQL and SQLite/PostgreSQL read differently; write it by hand")]
    Value {
        /// The record's line.
        line: usize,
        /// The user.
        user: String,
        /// The field.
        key: String,
    },
}

fn plain_name(name: &str) -> Result<&str, ExportError> {
    let ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if ok {
        Ok(name)
    } else {
        Err(ExportError::Name {
            name: name.to_string(),
        })
    }
}

/// One `UPDATE table SET field = 'value', ... WHERE user_column = 'user';` per record, for a
/// table whose columns are named as the userdb fields its query returns (`mail`; or
/// `mail_driver`, `mail_path`). Values are quoted by doubling `'`; a value with a backslash or a
/// control byte is refused (MySQL reads backslash escapes, standard SQL does not).
pub fn sql_updates(
    entries: &[OverlayEntry],
    table: &str,
    user_column: &str,
) -> Result<String, ExportError> {
    let (table, user_column) = (plain_name(table)?, plain_name(user_column)?);
    let quote = |e: &OverlayEntry, key: &str, v: &str| {
        if v.contains('\\') || v.chars().any(char::is_control) {
            return Err(ExportError::Value {
                line: e.line,
                user: e.user.clone(),
                key: key.to_string(),
            });
        }
        Ok(format!("'{}'", v.replace('\'', "''")))
    };
    let mut out = String::new();
    for e in entries.iter().filter(|e| !e.fields.is_empty()) {
        let sets = e
            .fields
            .iter()
            .map(|f| {
                Ok(format!(
                    "{} = {}",
                    plain_name(&f.key)?,
                    quote(e, &f.key, &f.value)?
                ))
            })
            .collect::<Result<Vec<_>, ExportError>>()?;
        out.push_str(&format!(
            "UPDATE {table} SET {} WHERE {user_column} = {};\n",
            sets.join(", "),
            quote(e, user_column, &e.user)?
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> OverlayFiles {
        OverlayFiles::beside(Utf8Path::new("/etc/dovecot/dovecot.conf"))
    }

    fn config(text: &str) -> DovecotConfig {
        DovecotConfig::parse(text).expect("parse")
    }

    #[test]
    fn the_2_3_snippet_placed_as_documented_is_active() {
        let s = snippet(DovecotVersion::V2_3, &files());
        let text = format!(
            "# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf\n{}passdb {{\n  driver = passwd-file\n  args = /etc/dovecot/users\n}}\nuserdb {{\n  driver = passwd-file\n  args = /etc/dovecot/users\n{}}}\n{}",
            s.passdb, s.primary_userdb, s.userdb
        );
        assert_eq!(check(&config(&text), &files()), vec![]);
    }

    #[test]
    fn each_misplacement_is_named() {
        let s = snippet(DovecotVersion::V2_3, &files());
        // Deny passdb after the primary, primary userdb without continue-ok.
        let text = format!(
            "# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf\npassdb {{\n  driver = passwd-file\n  args = /etc/dovecot/users\n}}\n{}userdb {{\n  driver = passwd-file\n  args = /etc/dovecot/users\n}}\n{}",
            s.passdb, s.userdb
        );
        let problems = check(&config(&text), &files());
        assert_eq!(
            problems,
            vec![
                OverlayProblem::DenyNotFirst {
                    file: files().deny,
                    position: 2
                },
                OverlayProblem::PrimaryStops {
                    userdb: "passwd-file".into(),
                    position: 1
                },
            ]
        );
        let none = check(
            &config("# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf\n"),
            &files(),
        );
        assert_eq!(none.len(), 2, "{none:?}");
    }

    #[test]
    fn export_writes_one_update_per_user_and_refuses_what_dialects_read_apart() {
        let file = super::super::PasswdFile::parse(
            b"a@x:::::::userdb_mail_driver=mdbox userdb_mail_path=~/md'box\nb@x:::::::userdb_mail=mdbox:~/mdbox\n".to_vec(),
            &Default::default(),
        );
        let all = entries(&file);
        assert_eq!(
            sql_updates(&all, "mailbox", "username").unwrap(),
            "UPDATE mailbox SET mail_driver = 'mdbox', mail_path = '~/md''box' WHERE username = 'a@x';\nUPDATE mailbox SET mail = 'mdbox:~/mdbox' WHERE username = 'b@x';\n"
        );
        assert!(matches!(
            sql_updates(&all, "mail box", "username"),
            Err(ExportError::Name { .. })
        ));
        let slash = super::super::PasswdFile::parse(
            b"a@x:::::::userdb_mail=mdbox:C:\\m\n".to_vec(),
            &Default::default(),
        );
        assert!(matches!(
            sql_updates(&entries(&slash), "mailbox", "username"),
            Err(ExportError::Value { line: 1, .. })
        ));
    }
}
