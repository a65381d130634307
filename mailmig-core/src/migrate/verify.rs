//! Comparing two mail locations of a user, per mailbox: message count, UIDVALIDITY, UIDNEXT,
//! mailbox GUID, the set of message GUIDs and — what clients see of each message — its UID, flags
//! and keywords (by GUID); and the subscription list. Read with `doveadm -f tab mailbox status`,
//! `doveadm -f tab fetch 'mailbox guid uid flags' ALL` and `doveadm mailbox list -s`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One mailbox as `doveadm` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxState {
    /// Number of messages.
    pub messages: u64,
    /// UIDVALIDITY.
    pub uidvalidity: u64,
    /// UIDNEXT.
    pub uidnext: u64,
    /// The mailbox GUID.
    pub guid: String,
    /// The message GUIDs (with repeats counted: a GUID present twice is listed with `#2`).
    pub message_guids: BTreeSet<String>,
    /// Per message GUID (as in `message_guids`): its UID and flags.
    #[serde(default)]
    pub messages_by_guid: BTreeMap<String, MessageState>,
}

/// What a client sees of one message besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    /// The UID.
    pub uid: u64,
    /// System flags and keywords, without the session-bound `\Recent`.
    pub flags: BTreeSet<String>,
    /// The POP3 UIDL stored for it (empty when none is stored; read with POP3 on).
    #[serde(default)]
    pub pop3_uidl: String,
}

/// The fields requested from `doveadm fetch`.
pub const FETCH_FIELDS: &str = "mailbox guid uid flags";

/// The fields requested from `doveadm fetch`, with `pop3.uidl` when POP3 is served.
pub fn fetch_fields(pop3: bool) -> &'static str {
    if pop3 {
        "mailbox guid uid flags pop3.uidl"
    } else {
        FETCH_FIELDS
    }
}

/// A user's mail at one location: mailbox name → state.
pub type MailState = BTreeMap<String, MailboxState>;

/// The status fields requested from `doveadm mailbox status`.
pub const STATUS_FIELDS: &str = "messages uidvalidity uidnext guid";

/// Why doveadm's output cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseStateError {
    /// A header or row is not what was asked for.
    #[error("unexpected doveadm output line {line}: `{text}`")]
    Line {
        /// 1-based line.
        line: usize,
        /// The line.
        text: String,
    },
}

/// A header and numbered rows of tab-separated fields.
type Columns<'a> = (Vec<&'a str>, Vec<(usize, Vec<&'a str>)>);

fn columns(text: &str) -> Columns<'_> {
    let mut lines = text.split('\n').enumerate().filter(|(_, l)| !l.is_empty());
    let Some((_, header)) = lines.next() else {
        return (Vec::new(), Vec::new());
    };
    let header: Vec<&str> = header.split('\t').collect();
    let rows = lines
        .map(|(i, l)| (i + 1, l.split('\t').collect::<Vec<_>>()))
        .collect();
    (header, rows)
}

/// Build the state from `doveadm -f tab mailbox status STATUS_FIELDS '*'` and
/// `doveadm -f tab fetch FETCH_FIELDS ALL` outputs (`uid` and `flags` are optional columns).
pub fn parse_state(status: &str, fetch: &str) -> Result<MailState, ParseStateError> {
    let mut state = MailState::new();
    let (header, rows) = columns(status);
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(mb), Some(msgs), Some(uv), Some(un), Some(g)) = (
        col("mailbox"),
        col("messages"),
        col("uidvalidity"),
        col("uidnext"),
        col("guid"),
    ) else {
        if rows.is_empty() && header.is_empty() {
            return Ok(state);
        }
        return Err(ParseStateError::Line {
            line: 1,
            text: header.join("\t"),
        });
    };
    for (line, row) in rows {
        let bad = || ParseStateError::Line {
            line,
            text: row.join("\t"),
        };
        if row.len() != header.len() {
            return Err(bad());
        }
        let num = |i: usize| row[i].parse::<u64>().map_err(|_| bad());
        state.insert(
            row[mb].to_string(),
            MailboxState {
                messages: num(msgs)?,
                uidvalidity: num(uv)?,
                uidnext: num(un)?,
                guid: row[g].to_string(),
                message_guids: BTreeSet::new(),
                messages_by_guid: BTreeMap::new(),
            },
        );
    }
    let (header, rows) = columns(fetch);
    let col = |name: &str| header.iter().position(|h| *h == name);
    if rows.is_empty() {
        return Ok(state);
    }
    let (Some(mb), Some(g)) = (col("mailbox"), col("guid")) else {
        return Err(ParseStateError::Line {
            line: 1,
            text: header.join("\t"),
        });
    };
    let (uid_col, flags_col, uidl_col) = (col("uid"), col("flags"), col("pop3.uidl"));
    for (line, row) in rows {
        let bad = || ParseStateError::Line {
            line,
            text: row.join("\t"),
        };
        if row.len() != header.len() {
            return Err(bad());
        }
        let mailbox = state.entry(row[mb].to_string()).or_default();
        let mut key = row[g].to_string();
        let mut n = 1;
        while mailbox.message_guids.contains(&key) {
            n += 1;
            key = format!("{}#{n}", row[g]);
        }
        mailbox.message_guids.insert(key.clone());
        let uid = match uid_col {
            Some(i) => row[i].parse::<u64>().map_err(|_| bad())?,
            None => 0,
        };
        let flags = flags_col
            .map(|i| {
                row[i]
                    .split(' ')
                    .filter(|f| !f.is_empty() && !f.eq_ignore_ascii_case("\\Recent"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let pop3_uidl = uidl_col.map(|i| row[i].to_string()).unwrap_or_default();
        mailbox.messages_by_guid.insert(
            key,
            MessageState {
                uid,
                flags,
                pop3_uidl,
            },
        );
    }
    Ok(state)
}

/// How two states must relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Identical: every mailbox with the same count, UIDVALIDITY, UIDNEXT, mailbox GUID and
    /// message GUIDs (after `doveadm backup`).
    Equal,
    /// Every mailbox of the source exists in the target with the same UIDVALIDITY, and every
    /// message GUID of the source is in the target (after a catch-up: the target may have more).
    Contains,
}

/// One difference between two locations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "finding", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Finding {
    /// A mailbox of the source is not in the target.
    MissingMailbox {
        /// The mailbox.
        mailbox: String,
    },
    /// A mailbox exists only in the target.
    ExtraMailbox {
        /// The mailbox.
        mailbox: String,
    },
    /// The UIDVALIDITY differs.
    Uidvalidity {
        /// The mailbox.
        mailbox: String,
        /// In the source.
        source: u64,
        /// In the target.
        target: u64,
    },
    /// Messages of the source are not in the target.
    MissingMessages {
        /// The mailbox.
        mailbox: String,
        /// How many.
        count: usize,
        /// The first one's GUID.
        first: String,
    },
    /// The target has messages the source lacks.
    ExtraMessages {
        /// The mailbox.
        mailbox: String,
        /// How many.
        count: usize,
    },
    /// Messages whose UID differs (clients would re-download or lose their place).
    Uids {
        /// The mailbox.
        mailbox: String,
        /// How many.
        count: usize,
        /// The first one's GUID.
        first: String,
    },
    /// Messages whose flags or keywords differ.
    Flags {
        /// The mailbox.
        mailbox: String,
        /// How many.
        count: usize,
        /// The first one's GUID.
        first: String,
    },
    /// Messages whose stored POP3 UIDL differs (leave-on-server clients would download them
    /// again).
    Pop3Uidls {
        /// The mailbox.
        mailbox: String,
        /// How many.
        count: usize,
        /// The first one's GUID.
        first: String,
    },
    /// The subscription lists differ.
    Subscriptions {
        /// Subscribed in the source only.
        source_only: Vec<String>,
        /// Subscribed in the target only.
        target_only: Vec<String>,
    },
    /// Message count, UIDNEXT or mailbox GUID differ.
    Counters {
        /// The mailbox.
        mailbox: String,
        /// In the source.
        source: Counters,
        /// In the target.
        target: Counters,
    },
}

/// A mailbox's message count, UIDNEXT and GUID.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Number of messages.
    pub messages: u64,
    /// UIDNEXT.
    pub uidnext: u64,
    /// The mailbox GUID.
    pub guid: String,
}

impl Counters {
    fn of(m: &MailboxState) -> Self {
        Self {
            messages: m.messages,
            uidnext: m.uidnext,
            guid: m.guid.clone(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingMailbox { mailbox } => {
                write!(f, "mailbox `{mailbox}` is missing in the target")
            }
            Self::ExtraMailbox { mailbox } => write!(f, "mailbox `{mailbox}` exists only in the target"),
            Self::Uidvalidity { mailbox, source, target } => write!(
                f,
                "mailbox `{mailbox}`: UIDVALIDITY {source} in the source, {target} in the target"
            ),
            Self::MissingMessages { mailbox, count, first } => write!(
                f,
                "mailbox `{mailbox}`: {count} message(s) of the source missing in the target (first: {first})"
            ),
            Self::ExtraMessages { mailbox, count } => write!(
                f,
                "mailbox `{mailbox}`: {count} message(s) in the target that the source lacks"
            ),
            Self::Uids { mailbox, count, first } => write!(
                f,
                "mailbox `{mailbox}`: {count} message(s) with another UID in the target (first: {first})"
            ),
            Self::Flags { mailbox, count, first } => write!(
                f,
                "mailbox `{mailbox}`: {count} message(s) with other flags or keywords in the target (first: {first})"
            ),
            Self::Pop3Uidls { mailbox, count, first } => write!(
                f,
                "mailbox `{mailbox}`: {count} message(s) with another POP3 UIDL in the target (first: {first})"
            ),
            Self::Subscriptions { source_only, target_only } => write!(
                f,
                "subscriptions differ: only in the source {source_only:?}, only in the target {target_only:?}"
            ),
            Self::Counters { mailbox, source, target } => write!(
                f,
                "mailbox `{mailbox}`: messages/uidnext/guid {}/{}/{} in the source, {}/{}/{} in the target",
                source.messages, source.uidnext, source.guid, target.messages, target.uidnext, target.guid
            ),
        }
    }
}

/// What differs (empty: as expected).
pub fn compare(source: &MailState, target: &MailState, expect: Expect) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, s) in source {
        let mailbox = name.clone();
        let Some(t) = target.get(name) else {
            out.push(Finding::MissingMailbox { mailbox });
            continue;
        };
        if s.uidvalidity != t.uidvalidity {
            out.push(Finding::Uidvalidity {
                mailbox: mailbox.clone(),
                source: s.uidvalidity,
                target: t.uidvalidity,
            });
        }
        let missing: Vec<&String> = s.message_guids.difference(&t.message_guids).collect();
        if let Some(first) = missing.first() {
            out.push(Finding::MissingMessages {
                mailbox: mailbox.clone(),
                count: missing.len(),
                first: (*first).clone(),
            });
        }
        if expect == Expect::Equal {
            if s.messages != t.messages || s.uidnext != t.uidnext || s.guid != t.guid {
                out.push(Finding::Counters {
                    mailbox: mailbox.clone(),
                    source: Counters::of(s),
                    target: Counters::of(t),
                });
            }
            let extra = t.message_guids.difference(&s.message_guids).count();
            if extra > 0 {
                out.push(Finding::ExtraMessages {
                    mailbox: mailbox.clone(),
                    count: extra,
                });
            }
            out.extend(message_differences(&mailbox, s, t));
        }
    }
    if expect == Expect::Equal {
        for name in target.keys().filter(|n| !source.contains_key(*n)) {
            out.push(Finding::ExtraMailbox {
                mailbox: name.clone(),
            });
        }
    }
    out
}

/// UIDs, flags and stored POP3 UIDLs of the messages both sides have (by GUID).
fn message_differences(mailbox: &str, s: &MailboxState, t: &MailboxState) -> Vec<Finding> {
    type Make = fn(String, usize, String) -> Finding;
    type Differs = fn(&MessageState, &MessageState) -> bool;
    let checks: [(Differs, Make); 3] = [
        (
            |a, b| a.uid != b.uid,
            |mailbox, count, first| Finding::Uids {
                mailbox,
                count,
                first,
            },
        ),
        (
            |a, b| a.flags != b.flags,
            |mailbox, count, first| Finding::Flags {
                mailbox,
                count,
                first,
            },
        ),
        (
            |a, b| a.pop3_uidl != b.pop3_uidl,
            |mailbox, count, first| Finding::Pop3Uidls {
                mailbox,
                count,
                first,
            },
        ),
    ];
    checks
        .iter()
        .filter_map(|(differs, make)| {
            let guids: Vec<&String> = s
                .messages_by_guid
                .iter()
                .filter(|(g, sm)| t.messages_by_guid.get(*g).is_some_and(|tm| differs(sm, tm)))
                .map(|(g, _)| g)
                .collect();
            let first = (*guids.first()?).clone();
            Some(make(mailbox.to_string(), guids.len(), first))
        })
        .collect()
}

/// The subscribed mailboxes, from `doveadm mailbox list -s` (one name per line).
pub fn parse_subscriptions(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The difference of two subscription lists (empty: equal).
pub fn compare_subscriptions(source: &BTreeSet<String>, target: &BTreeSet<String>) -> Vec<Finding> {
    let source_only: Vec<String> = source.difference(target).cloned().collect();
    let target_only: Vec<String> = target.difference(source).cloned().collect();
    if source_only.is_empty() && target_only.is_empty() {
        return Vec::new();
    }
    vec![Finding::Subscriptions {
        source_only,
        target_only,
    }]
}

/// Total messages over all mailboxes.
pub fn total_messages(state: &MailState) -> u64 {
    state.values().map(|m| m.messages).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "mailbox\tmessages\tuidvalidity\tuidnext\tguid\nINBOX\t2\t1795972387\t3\tg1\nProjects/2026\t1\t1795972390\t2\tg2\n";
    const FETCH: &str = "mailbox\tguid\nINBOX\ta\nINBOX\tb\nProjects/2026\tc\n";

    #[test]
    fn parse_and_compare() {
        let s = parse_state(STATUS, FETCH).expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s["INBOX"].message_guids.len(), 2);
        assert_eq!(total_messages(&s), 3);
        assert!(compare(&s, &s, Expect::Equal).is_empty());
        let mut t = s.clone();
        t.get_mut("INBOX")
            .expect("inbox")
            .message_guids
            .insert("z".into());
        t.get_mut("INBOX").expect("inbox").messages = 3;
        assert_eq!(compare(&s, &t, Expect::Equal).len(), 2);
        assert!(compare(&s, &t, Expect::Contains).is_empty());
        assert_eq!(compare(&t, &s, Expect::Contains).len(), 1);
        let mut u = s.clone();
        u.get_mut("INBOX").expect("inbox").uidvalidity = 1;
        assert_eq!(compare(&s, &u, Expect::Contains).len(), 1);
        u.remove("Projects/2026");
        assert_eq!(compare(&s, &u, Expect::Contains).len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn any_output_is_read_or_refused_without_panic(status in ".{0,200}", fetch in ".{0,200}") {
            let _ = parse_state(&status, &fetch);
        }
    }

    #[test]
    fn uids_flags_and_subscriptions() {
        let fetch = "mailbox\tguid\tuid\tflags\nINBOX\ta\t1\t\\Seen $Label1\nINBOX\tb\t2\t\\Recent\nProjects/2026\tc\t1\t\n";
        let s = parse_state(STATUS, fetch).expect("parses");
        assert_eq!(s["INBOX"].messages_by_guid["a"].flags.len(), 2);
        assert!(
            s["INBOX"].messages_by_guid["b"].flags.is_empty(),
            "\\Recent is not compared"
        );
        assert!(compare(&s, &s, Expect::Equal).is_empty());
        let mut t = s.clone();
        let a = t
            .get_mut("INBOX")
            .expect("inbox")
            .messages_by_guid
            .get_mut("a")
            .expect("a");
        a.flags.remove("$Label1");
        a.uid = 7;
        let found = compare(&s, &t, Expect::Equal);
        assert!(
            matches!(found[0], Finding::Uids { count: 1, .. }),
            "{found:?}"
        );
        assert!(
            matches!(found[1], Finding::Flags { count: 1, .. }),
            "{found:?}"
        );
        // The live strategy's containment does not compare what the user may change meanwhile.
        assert!(compare(&s, &t, Expect::Contains).is_empty());
        let with_uidl =
            "mailbox\tguid\tuid\tflags\tpop3.uidl\nINBOX\ta\t1\t\tX1\nINBOX\tb\t2\t\t\n";
        let p = parse_state(STATUS, with_uidl).expect("parses");
        let mut q = p.clone();
        q.get_mut("INBOX")
            .expect("inbox")
            .messages_by_guid
            .get_mut("a")
            .expect("a")
            .pop3_uidl = "00000001".into();
        assert!(matches!(
            compare(&p, &q, Expect::Equal)[..],
            [Finding::Pop3Uidls { count: 1, .. }]
        ));
        let subs = parse_subscriptions("INBOX\nProjects/2026\n");
        assert!(compare_subscriptions(&subs, &subs).is_empty());
        assert_eq!(
            compare_subscriptions(&subs, &parse_subscriptions("INBOX\n")).len(),
            1
        );
    }

    #[test]
    fn duplicates_are_counted_and_bad_rows_refused() {
        let s = parse_state(STATUS, "mailbox\tguid\nINBOX\ta\nINBOX\ta\n").expect("parses");
        assert_eq!(s["INBOX"].message_guids.len(), 2);
        assert!(parse_state("mailbox\tmessages\nINBOX\t1\n", "").is_err());
        assert!(parse_state(STATUS, "mailbox\tguid\nINBOX\n").is_err());
        assert!(parse_state("", "").expect("empty").is_empty());
    }
}
