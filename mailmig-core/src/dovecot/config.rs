//! Dovecot's configuration as `doveconf -n` prints it, read once: which release wrote it (2.3 or
//! 2.4, from the header and `dovecot_config_version`, never guessed), the passdb and userdb
//! blocks, namespaces, quota and the global mail location — in both releases' spellings.
//!
//! | what | Dovecot 2.3 | Dovecot 2.4 |
//! |---|---|---|
//! | header | `# 2.3.19.1 (9b53102964): FILE` | `# 2.4.1-4 (7d8c0e5759): FILE`, then `dovecot_config_version = 2.4.0` |
//! | passdb | `passdb {` `driver = passwd-file` `args = … FILE` | `passdb NAME {` (the driver, unless `driver =`) `passwd_file_path = FILE` |
//! | location | `mail_location = maildir:~/Maildir` | `mail_driver = maildir`, `mail_path = ~/Maildir` |
//! | user names | as given (`%u`) unless `auth_username_format` | lowercased (`%{user \| lower}`) unless `auth_username_format` |
//!
//! `doveconf -n` prints only settings that differ from the defaults; an absent setting has its
//! default (`auth_cache_size` 0: no cache).

use std::fmt;
use std::str::FromStr;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

/// The Dovecot releases whose configuration and passwd-file semantics mailmig knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DovecotVersion {
    /// Dovecot 2.2 and 2.3: `mail_location`, `userdb_mail=`, `doveadm -o mail_location=`.
    #[default]
    #[serde(rename = "2.3")]
    V2_3,
    /// Dovecot 2.4: `mail_driver` + `mail_path`, `userdb_mail_driver=` + `userdb_mail_path=`,
    /// `doveadm -o mail_driver= -o mail_path=` (2.4 silently ignores the 2.3 spellings).
    #[serde(rename = "2.4")]
    V2_4,
}

impl DovecotVersion {
    /// Whether an empty 8th passwd-file field makes the rest of the line the mail location
    /// (2.2/2.3; removed in 2.4).
    pub fn legacy_mail_field(self) -> bool {
        self == Self::V2_3
    }
}

impl fmt::Display for DovecotVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V2_3 => "2.3",
            Self::V2_4 => "2.4",
        })
    }
}

/// A version mailmig does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dovecot version `{0}` is not supported (mailmig knows 2.2, 2.3 and 2.4)")]
pub struct UnsupportedVersion(pub String);

impl FromStr for DovecotVersion {
    type Err = UnsupportedVersion;

    /// `2.2`, `2.3`, `2.4`, or a full version string (`2.3.19.1`, `2.4.1-4 (7d8c0e5759)`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().split(|c: char| !c.is_ascii_digit());
        match (parts.next(), parts.next()) {
            (Some("2"), Some("2" | "3")) => Ok(Self::V2_3),
            (Some("2"), Some("4")) => Ok(Self::V2_4),
            _ => Err(UnsupportedVersion(s.trim().to_string())),
        }
    }
}

/// Why `doveconf -n`'s output cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither a version header nor `dovecot_config_version`.
    #[error("`doveconf -n` printed no version header (`# 2.x.y (...)`) and no dovecot_config_version: cannot tell which Dovecot this is")]
    NoVersion,
    /// The version is not one mailmig knows.
    #[error(transparent)]
    Unsupported(#[from] UnsupportedVersion),
}

/// A `passdb { }` or `userdb { }` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AuthDb {
    /// The block's name (2.4: `passdb NAME {`; 2.3 blocks are unnamed).
    pub name: String,
    /// The driver (`passwd-file`, `static`, `sql`, ...).
    pub driver: String,
    /// 2.3's `args = ...` (empty on 2.4).
    pub args: String,
    /// The block's other settings, in order (`passwd_file_path`, `fields`, ...).
    pub settings: Vec<Setting>,
}

impl AuthDb {
    /// A setting of the block.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }

    /// The passwd-file of a `passwd-file` block: 2.4's `passwd_file_path`, 2.3's last `args`
    /// word; only an absolute path without variables is a file mailmig can edit.
    pub fn passwd_file(&self) -> Option<Utf8PathBuf> {
        if self.driver != "passwd-file" {
            return None;
        }
        let path = self
            .get("passwd_file_path")
            .or_else(|| self.args.split(' ').next_back())?;
        (path.starts_with('/') && !path.contains('%')).then(|| Utf8PathBuf::from(path))
    }
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// The value as printed.
    pub value: String,
}

/// A namespace and its hierarchy separator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Namespace {
    /// Its name.
    pub name: String,
    /// Its separator (empty: the mail format's default, `.` for maildir and `/` for mdbox).
    pub separator: String,
    /// Its type (`private`, the default; `shared`, `public`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A location of its own (2.3 `location`; 2.4 `mail_driver`/`mail_path` in the block), if
    /// any: its mail is not the user's own storage.
    pub location: Option<String>,
}

/// What mailmig reads from `doveconf -n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DovecotConfig {
    /// The release.
    pub version: DovecotVersion,
    /// The version as the header prints it (`2.4.1-4`), if it does.
    pub version_text: Option<String>,
    /// The passdb blocks, in order.
    pub passdbs: Vec<AuthDb>,
    /// The userdb blocks, in order.
    pub userdbs: Vec<AuthDb>,
    /// The namespaces.
    pub namespaces: Vec<Namespace>,
    /// The top-level settings, in order.
    pub globals: Vec<Setting>,
    /// The quota backend: 2.3's `plugin { quota = BACKEND:... }`, 2.4's
    /// `quota NAME { driver = BACKEND }` (2.4's default driver: `count`).
    pub quota_backend: Option<String>,
    /// `pop3_uidl_format`, globally or in `protocol pop3 { }`, when set.
    pub pop3_uidl_format: Option<String>,
    /// The ACL plugin is loaded (2.3 `mail_plugins = ... acl`; 2.4 `mail_plugins { acl = yes }`).
    pub acl: bool,
    /// A full-text search plugin is loaded (`fts`).
    pub fts: bool,
}

impl DovecotConfig {
    /// Parse `doveconf -n`'s output.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut config = Self {
            version: DovecotVersion::V2_3,
            version_text: None,
            passdbs: Vec::new(),
            userdbs: Vec::new(),
            namespaces: Vec::new(),
            globals: Vec::new(),
            quota_backend: None,
            pop3_uidl_format: None,
            acl: false,
            fts: false,
        };
        let mut stack: Vec<Block> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if i == 0 {
                if let Some(v) = line.strip_prefix("# ") {
                    config.version_text = v.split_whitespace().next().map(str::to_string);
                }
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(header) = line.strip_suffix('{') {
                stack.push(Block::open(header.trim(), stack.len()));
            } else if line == "}" {
                if let Some(block) = stack.pop() {
                    block.close(&mut config);
                }
            } else if let Some((key, value)) = line
                .split_once(" = ")
                .or_else(|| line.strip_suffix(" =").map(|k| (k, "")))
            {
                let setting = Setting {
                    key: key.trim().to_string(),
                    value: value.to_string(),
                };
                match stack.last_mut() {
                    Some(block) => block.settings.push(setting),
                    None => config.globals.push(setting),
                }
            }
        }
        if config.pop3_uidl_format.is_none() {
            config.pop3_uidl_format = config.global("pop3_uidl_format").map(str::to_string);
        }
        let plugins: Vec<String> = config
            .global("mail_plugins")
            .unwrap_or_default()
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        config.acl |= plugins.iter().any(|p| p == "acl");
        config.fts |= plugins.iter().any(|p| p == "fts");
        config.version = match (
            &config.version_text,
            config.global("dovecot_config_version"),
        ) {
            (Some(text), _) if text.parse::<DovecotVersion>().is_ok() => text.parse()?,
            (_, Some(v)) => v.parse()?,
            (Some(text), None) => return Err(UnsupportedVersion(text.clone()).into()),
            (None, None) => return Err(ConfigError::NoVersion),
        };
        Ok(config)
    }

    /// The protocols served (`protocols`).
    pub fn protocols(&self) -> Vec<&str> {
        self.global("protocols")
            .map(|p| p.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// A top-level setting.
    pub fn global(&self, key: &str) -> Option<&str> {
        self.globals
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }

    /// The passwd-files of `passwd-file` passdbs, in order.
    pub fn passwd_files(&self) -> Vec<Utf8PathBuf> {
        self.passdbs
            .iter()
            .filter_map(AuthDb::passwd_file)
            .collect()
    }

    /// Whether auth results are cached (`auth_cache_size` set and not 0).
    pub fn auth_cache_enabled(&self) -> bool {
        self.global("auth_cache_size").is_some_and(|v| {
            !v.is_empty()
                && v.trim_start_matches('0')
                    .chars()
                    .any(|c| c.is_ascii_digit())
        })
    }

    /// Whether user names are lowercased before lookups: `auth_username_format`, whose
    /// default lowercases on both releases (2.3 `%Lu`, 2.4 `%{user | lower}`).
    pub fn lowercases_user_names(&self) -> bool {
        self.global("auth_username_format")
            .is_none_or(|f| f.contains("%L") || f.contains("lower"))
    }

    /// The global mail location as `FORMAT:PATH[:OPTIONS]` (2.3's `mail_location`; 2.4's
    /// `mail_driver:mail_path`), when set.
    pub fn mail_location(&self) -> Option<String> {
        match self.version {
            DovecotVersion::V2_3 => self.global("mail_location").map(str::to_string),
            DovecotVersion::V2_4 => {
                let driver = self.global("mail_driver")?;
                let path = self.global("mail_path").unwrap_or_default();
                Some(format!("{driver}:{path}"))
            }
        }
    }

    /// Whether a userdb setup makes LMTP do passdb lookups: a static userdb without
    /// `allow_all_users=yes` (2.3 `args`; 2.4 `userdb_static_allow_all_users = yes`).
    pub fn lmtp_checks_passdb(&self) -> bool {
        self.userdbs.iter().any(|db| {
            db.driver == "static"
                && !db.args.contains("allow_all_users=yes")
                && db.get("userdb_static_allow_all_users") != Some("yes")
        })
    }
}

/// Whether a `pop3_uidl_format` names each message by what survives a conversion (UID,
/// UIDVALIDITY, GUID: `%08Xu%08Xv`, `%g`, 2.4's `%{uid | hex(8)}`...) rather than by what one
/// storage has (`%f` the maildir file name, `%m` the mbox header MD5; 2.4 `%{filename}`,
/// `%{md5}`): with the latter, leave-on-server POP3 clients download everything again.
pub fn uidl_format_survives(format: &str) -> bool {
    let mut rest = format;
    while let Some(i) = rest.find('%') {
        rest = &rest[i + 1..];
        if let Some(inner) = rest.strip_prefix('{') {
            let Some(end) = inner.find('}') else {
                return false;
            };
            let name = inner[..end].split('|').next().unwrap_or_default().trim();
            if !matches!(name, "uid" | "uidvalidity" | "guid") {
                return false;
            }
            rest = &inner[end + 1..];
            continue;
        }
        // 2.3: %[width][modifiers]letter, or %% for a literal percent.
        let body = rest.trim_start_matches(|c: char| c.is_ascii_digit() || "XLUN".contains(c));
        match body.chars().next() {
            Some('%') if body.len() == rest.len() => rest = &body[1..],
            Some('u' | 'v' | 'g') => rest = &body[1..],
            _ => return false,
        }
    }
    true
}

/// A block being read.
struct Block {
    kind: BlockKind,
    name: String,
    settings: Vec<Setting>,
}

enum BlockKind {
    Passdb,
    Userdb,
    Namespace,
    Plugin,
    Quota,
    MailPlugins,
    Protocol,
    Other,
}

impl Block {
    fn open(header: &str, depth: usize) -> Self {
        let (word, name) = header.split_once(' ').unwrap_or((header, ""));
        let kind = match (depth, word) {
            (0, "passdb") => BlockKind::Passdb,
            (0, "userdb") => BlockKind::Userdb,
            (0, "namespace") => BlockKind::Namespace,
            (0, "plugin") => BlockKind::Plugin,
            (0, "quota") => BlockKind::Quota,
            (0, "mail_plugins") => BlockKind::MailPlugins,
            (0, "protocol") => BlockKind::Protocol,
            _ => BlockKind::Other,
        };
        Self {
            kind,
            name: name.trim().trim_matches('"').to_string(),
            settings: Vec::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }

    fn close(self, config: &mut DovecotConfig) {
        match self.kind {
            BlockKind::Passdb | BlockKind::Userdb => {
                let driver = self
                    .get("driver")
                    .map_or_else(|| self.name.clone(), str::to_string);
                let args = self.get("args").unwrap_or_default().to_string();
                let is_passdb = matches!(self.kind, BlockKind::Passdb);
                let db = AuthDb {
                    name: self.name,
                    driver,
                    args,
                    settings: self
                        .settings
                        .into_iter()
                        .filter(|s| s.key != "driver" && s.key != "args")
                        .collect(),
                };
                if is_passdb {
                    config.passdbs.push(db);
                } else {
                    config.userdbs.push(db);
                }
            }
            BlockKind::Namespace => {
                let location = match (self.get("location"), self.get("mail_driver")) {
                    (Some(l), _) if !l.is_empty() => Some(l.to_string()),
                    (_, Some(d)) if !d.is_empty() => {
                        Some(format!("{d}:{}", self.get("mail_path").unwrap_or_default()))
                    }
                    _ => None,
                };
                config.namespaces.push(Namespace {
                    separator: self.get("separator").unwrap_or_default().to_string(),
                    kind: self.get("type").unwrap_or("private").to_string(),
                    location,
                    name: self.name,
                });
            }
            BlockKind::MailPlugins => {
                if self.get("acl") == Some("yes") {
                    config.acl = true;
                }
                if self.get("fts") == Some("yes") {
                    config.fts = true;
                }
            }
            BlockKind::Protocol => {
                if self.name == "pop3" {
                    if let Some(f) = self.get("pop3_uidl_format") {
                        config.pop3_uidl_format = Some(f.to_string());
                    }
                }
                if self
                    .get("mail_plugins")
                    .is_some_and(|p| p.split_whitespace().any(|w| w.trim_matches('"') == "acl"))
                {
                    config.acl = true;
                }
            }
            BlockKind::Plugin => {
                // Every quota root: `quota`, `quota2`, `quota3`, ... (a Maildir++ root anywhere
                // is what the preflight must see).
                for s in &self.settings {
                    let root = s
                        .key
                        .strip_prefix("quota")
                        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
                    if !root {
                        continue;
                    }
                    let backend = s.value.split(':').next().unwrap_or_default().to_string();
                    if config
                        .quota_backend
                        .as_deref()
                        .is_none_or(|q| q != "maildir")
                    {
                        config.quota_backend = Some(backend);
                    }
                }
            }
            BlockKind::Quota => {
                let driver = self.get("driver").unwrap_or("count");
                if config
                    .quota_backend
                    .as_deref()
                    .is_none_or(|q| q != "maildir")
                {
                    config.quota_backend = Some(driver.to_string());
                }
            }
            BlockKind::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V23: &str = "# 2.3.19.1 (9b53102964): /srv/sb/dovecot/dovecot.conf\n# OS: Linux 6.1 x86_64 Debian 12.8 \nauth_mechanisms = plain login\nmail_location = maildir:~/Maildir\nnamespace inbox {\n  inbox = yes\n  location = \n  separator = /\n}\npassdb {\n  args = scheme=PLAIN username_format=%u /srv/sb/dovecot/users\n  driver = passwd-file\n}\nplugin {\n  quota = count:User quota\n}\nuserdb {\n  args = username_format=%u /srv/sb/dovecot/users\n  driver = passwd-file\n}\nservice imap-login {\n  inet_listener imap {\n    address = 127.0.0.1\n    port = 10143\n  }\n}\n";

    const V24: &str = "# 2.4.1-4 (7d8c0e5759): /srv/sb/dovecot/dovecot.conf\n# Pigeonhole version 2.4.1-4 (0a86619f)\n# 4 default setting changes since version 2.4.0\ndovecot_config_version = 2.4.0\nauth_cache_size = 10M\nmail_driver = maildir\nmail_path = ~/Maildir\nnamespace inbox {\n  inbox = yes\n  separator = /\n}\npassdb passwd-file {\n  passwd_file_path = /srv/sb/dovecot/users\n}\npassdb other {\n  driver = passwd-file\n  passwd_file_path = /etc/dovecot/%{user | domain}/passwd\n}\nuserdb passwd-file {\n  passwd_file_path = /srv/sb/dovecot/users\n}\nuserdb static {\n  fields {\n    uid = vmail\n  }\n}\nquota \"User quota\" {\n  driver = maildir\n}\nquota Other {\n}\n";

    #[test]
    fn reads_dovecot_23() {
        let c = DovecotConfig::parse(V23).expect("parses");
        assert_eq!(c.version, DovecotVersion::V2_3);
        assert_eq!(c.version_text.as_deref(), Some("2.3.19.1"));
        assert_eq!(
            c.passwd_files(),
            vec![Utf8PathBuf::from("/srv/sb/dovecot/users")]
        );
        assert_eq!(c.userdbs[0].driver, "passwd-file");
        assert_eq!(c.mail_location().as_deref(), Some("maildir:~/Maildir"));
        assert_eq!(c.quota_backend.as_deref(), Some("count"));
        assert_eq!(
            c.namespaces,
            vec![Namespace {
                name: "inbox".into(),
                separator: "/".into(),
                kind: "private".into(),
                location: None,
            }]
        );
        assert!(!c.auth_cache_enabled());
        assert!(!c.lmtp_checks_passdb());
        // a setting of a nested block is not global
        assert_eq!(c.global("port"), None);
    }

    #[test]
    fn reads_dovecot_24() {
        let c = DovecotConfig::parse(V24).expect("parses");
        assert_eq!(c.version, DovecotVersion::V2_4);
        assert_eq!(c.version_text.as_deref(), Some("2.4.1-4"));
        // the block name is the driver; a path with variables is not one file
        assert_eq!(c.passdbs.len(), 2);
        assert_eq!(c.passdbs[1].name, "other");
        assert_eq!(
            c.passwd_files(),
            vec![Utf8PathBuf::from("/srv/sb/dovecot/users")]
        );
        assert_eq!(c.userdbs[1].driver, "static");
        assert!(c.lmtp_checks_passdb());
        assert_eq!(c.mail_location().as_deref(), Some("maildir:~/Maildir"));
        assert!(c.auth_cache_enabled());
        // a maildir quota root anywhere is what matters
        assert_eq!(c.quota_backend.as_deref(), Some("maildir"));
    }

    #[test]
    fn uidl_formats() {
        for ok in [
            "%08Xu%08Xv",
            "%u-%v",
            "%g",
            "%{uid | hex(8)}%{uidvalidity | hex(8)}",
            "x%%y%u",
        ] {
            assert!(uidl_format_survives(ok), "{ok}");
        }
        for bad in [
            "%f",
            "%m",
            "%v.%f",
            "%{filename}",
            "%{md5}",
            "%{uid",
            "%08Xq",
        ] {
            assert!(!uidl_format_survives(bad), "{bad}");
        }
    }

    #[test]
    fn namespaces_pop3_and_acl() {
        let c = DovecotConfig::parse(
            "# 2.3.19.1 (x): /c\nmail_plugins = \" quota acl\"\nprotocols = imap pop3 lmtp\nnamespace inbox {\n  inbox = yes\n  location = \n}\nnamespace shared {\n  location = maildir:%%h/Maildir:INDEX=~/shared/%%u\n  prefix = shared/%%u/\n  type = shared\n}\nprotocol pop3 {\n  pop3_uidl_format = %f\n}\n",
        )
        .expect("parses");
        assert!(c.acl);
        assert_eq!(c.protocols(), ["imap", "pop3", "lmtp"]);
        assert_eq!(c.pop3_uidl_format.as_deref(), Some("%f"));
        assert_eq!(c.namespaces[0].location, None);
        assert_eq!(c.namespaces[1].kind, "shared");
        assert!(c.namespaces[1].location.is_some());
    }

    #[test]
    fn every_quota_root_is_read() {
        let c = DovecotConfig::parse(
            "# 2.3.19.1 (x): /c\nplugin {\n  quota = count:User quota\n  quota2 = maildir:Other\n  quota_rule = *:storage=1G\n}\n",
        )
        .expect("parses");
        assert_eq!(c.quota_backend.as_deref(), Some("maildir"));
    }

    #[test]
    fn the_version_is_never_guessed() {
        assert_eq!(
            DovecotConfig::parse("mail_location = x\n"),
            Err(ConfigError::NoVersion)
        );
        // no header, but 2.4's mandatory first setting
        let c = DovecotConfig::parse("dovecot_config_version = 2.4.0\n").expect("parses");
        assert_eq!(c.version, DovecotVersion::V2_4);
        assert!(matches!(
            DovecotConfig::parse("# 3.0.0 (abc): /x\n"),
            Err(ConfigError::Unsupported(_))
        ));
        assert!(matches!(
            DovecotConfig::parse("# 2.1.17: /x\n"),
            Err(ConfigError::Unsupported(_))
        ));
    }

    #[test]
    fn version_strings() {
        for (s, v) in [
            ("2.2", DovecotVersion::V2_3),
            ("2.3", DovecotVersion::V2_3),
            ("2.3.19.1", DovecotVersion::V2_3),
            ("2.4", DovecotVersion::V2_4),
            ("2.4.1-4 (7d8c0e5759)", DovecotVersion::V2_4),
        ] {
            assert_eq!(s.parse::<DovecotVersion>(), Ok(v), "{s}");
        }
        for s in ["", "2", "2.5", "3.0", "x.y"] {
            assert!(s.parse::<DovecotVersion>().is_err(), "{s}");
        }
    }

    #[test]
    fn auth_cache_sizes() {
        let with = |v: &str| {
            DovecotConfig::parse(&format!("# 2.3.19.1 (x): /c\nauth_cache_size = {v}\n"))
                .expect("parses")
                .auth_cache_enabled()
        };
        assert!(with("10M"));
        assert!(with("1 k"));
        assert!(!with("0"));
        assert!(!with(""));
    }
}
