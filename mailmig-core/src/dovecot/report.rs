//! One record as Dovecot's lookups see it, ready to print or serialize (`mailmig passwd show`):
//! the line, the passdb and userdb answers, the fields in file order.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::{IdResolver, PasswdEntry, PasswdOptions};

/// Fields in reply order, serialized as one JSON object (`null` for a bare key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields(pub Vec<(String, Option<String>)>);

impl Fields {
    fn of(fields: &[(Vec<u8>, Option<Vec<u8>>)]) -> Self {
        Self(
            fields
                .iter()
                .map(|(k, v)| (text(k), v.as_deref().map(text)))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `key=value key2 ...`, or `(no fields)`.
    pub fn words(&self) -> String {
        if self.0.is_empty() {
            return "(no fields)".into();
        }
        self.0
            .iter()
            .map(|(k, v)| match v {
                None => k.clone(),
                Some(v) => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The extra fields of the line as written, serialized as `[[key, value], ...]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extra(pub Vec<(String, Option<String>)>);

impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for pair in &self.0 {
            seq.serialize_element(pair)?;
        }
        seq.end()
    }
}

/// One record as Dovecot's passdb and userdb lookups answer for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordReport {
    /// The user field.
    pub user: String,
    /// 1-based line number.
    pub line: usize,
    /// The stored password, as the passdb reads it.
    pub password: Option<String>,
    /// The userdb's uid.
    pub uid: Option<u64>,
    /// The userdb's gid.
    pub gid: Option<u64>,
    /// The home field (when the file is also a userdb).
    pub home: Option<String>,
    /// The extra fields as written.
    pub extra: Extra,
    /// The passdb's answer (`None`: the lookup fails).
    pub passdb: Option<Fields>,
    /// The userdb's answer (`None`: no userdb data, or the lookup fails).
    pub userdb: Option<Fields>,
    /// Why the passdb lookup fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passdb_error: Option<String>,
    /// Why the userdb lookup fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userdb_error: Option<String>,
    /// `userdb_*` fields the passdb hands to a prefetch userdb.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passdb_userdb_prefetch: Option<Fields>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl RecordReport {
    /// What Dovecot's lookups answer for `entry`.
    pub fn of(entry: &PasswdEntry<'_>, options: &PasswdOptions, ids: &dyn IdResolver) -> Self {
        let passdb = entry.passdb();
        let userdb = entry.userdb(ids);
        let userdb_fields = match &userdb {
            Ok(Some(u)) => Some(Fields::of(&u.fields)),
            _ => None,
        };
        let id = |key: &str| {
            userdb_fields
                .as_ref()
                .and_then(|f| f.get(key))
                .and_then(|v| v.parse().ok())
        };
        Self {
            user: text(entry.user()),
            line: entry.line(),
            password: passdb
                .as_ref()
                .ok()
                .and_then(|p| p.password.as_deref())
                .map(text),
            uid: id("uid"),
            gid: id("gid"),
            home: entry
                .home_field()
                .filter(|h| !h.is_empty() && options.userdb)
                .map(text),
            extra: Extra(
                entry
                    .extra()
                    .iter()
                    .map(|f| (text(&f.key), f.value.as_deref().map(text)))
                    .collect(),
            ),
            passdb: passdb.as_ref().ok().map(|p| Fields::of(&p.fields)),
            userdb: userdb_fields.clone(),
            passdb_error: passdb.as_ref().err().map(ToString::to_string),
            userdb_error: userdb.as_ref().err().map(ToString::to_string),
            passdb_userdb_prefetch: passdb
                .as_ref()
                .ok()
                .filter(|p| !p.userdb_prefetch.is_empty())
                .map(|p| Fields::of(&p.userdb_prefetch)),
        }
    }

    /// The record for people: one `key value` line each.
    pub fn human(&self) -> String {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let mut out = String::new();
        for (key, value) in [
            ("user", Some(self.user.clone())),
            ("line", Some(self.line.to_string())),
            ("password", self.password.clone()),
            ("uid", self.uid.map(|v| v.to_string())),
            ("gid", self.gid.map(|v| v.to_string())),
            ("home", self.home.clone()),
        ] {
            out.push_str(&format!("{key:<9} {}\n", or_dash(value)));
        }
        let none = "(none: unknown user to this lookup)";
        for (key, fields) in [("passdb", &self.passdb), ("userdb", &self.userdb)] {
            let text = fields.as_ref().map_or(none.to_string(), Fields::words);
            out.push_str(&format!("{key:<9} {text}\n"));
        }
        for (key, e) in [
            ("passdb_error", &self.passdb_error),
            ("userdb_error", &self.userdb_error),
        ] {
            if let Some(e) = e {
                out.push_str(&format!("{key} {e}\n"));
            }
        }
        out
    }
}
