//! The Postfix queue for one user: list (`postqueue -j`), put on hold (`postsuper -h -`), and
//! release exactly the messages mailmig held (`postsuper -H -`, then `postqueue -i ID`) — never
//! `postsuper -r ALL`, never another admin's hold.

use camino::Utf8Path;

use crate::postfix::fold_key;
use crate::process::{Argv, RunError, Runner};

/// One message in the queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueuedMessage {
    /// `maildrop`, `incoming`, `active`, `deferred` or `hold`.
    pub queue_name: String,
    /// The queue ID.
    pub queue_id: String,
    /// Envelope sender (`MAILER-DAEMON` for `<>`).
    pub sender: String,
    /// Recipients after alias expansion (`orig_address` as well, from Postfix 3.11).
    pub recipients: Vec<String>,
    /// When the message arrived (seconds since the epoch; 0 if postqueue did not say).
    #[serde(default)]
    pub arrival_time: i64,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// postqueue/postsuper could not run or failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A line of `postqueue -j` is not JSON.
    #[error("postqueue -j printed a line that is not JSON: {0}")]
    BadJson(String),
    /// postsuper did not act on every ID it was given.
    #[error("postsuper {what} {done} of {asked} messages; not done: {missing}")]
    Incomplete {
        /// "held" or "released".
        what: &'static str,
        /// How many it reported.
        done: usize,
        /// How many were asked for.
        asked: usize,
        /// The IDs it did not report.
        missing: String,
    },
}

/// Parse `postqueue -j` output: one JSON object per line; unknown members ignored; both the
/// 3.5–3.10 recipient shape (`address`) and 3.11+ (`orig_address` too).
pub fn parse_postqueue_json(text: &str) -> Result<Vec<QueuedMessage>, QueueError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).map_err(|_| QueueError::BadJson(l.to_string()))?;
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let mut recipients = Vec::new();
            for r in v["recipients"].as_array().into_iter().flatten() {
                for k in ["address", "orig_address"] {
                    if let Some(a) = r[k].as_str() {
                        if !recipients.iter().any(|x: &String| x == a) {
                            recipients.push(a.to_string());
                        }
                    }
                }
            }
            Ok(QueuedMessage {
                queue_name: s("queue_name"),
                queue_id: s("queue_id"),
                sender: s("sender"),
                recipients,
                arrival_time: v["arrival_time"].as_i64().unwrap_or(0),
            })
        })
        .collect()
}

/// Whether `address` is the mailbox `user` (case-insensitively; `user+ext@domain` too when a
/// recipient delimiter is given).
pub fn reaches(address: &str, user: &str, delimiters: &str) -> bool {
    let norm = |a: &str| -> Vec<u8> {
        let (local, domain) = a.rsplit_once('@').unwrap_or((a, ""));
        let local = match local.find(|c| delimiters.contains(c)) {
            Some(i) if i > 0 => &local[..i],
            _ => local,
        };
        fold_key(format!("{local}@{domain}").as_bytes(), true).into_owned()
    };
    norm(address) == norm(user)
}

/// The queue, through `postqueue -c DIR -j`.
pub fn list(runner: &dyn Runner, config_dir: &Utf8Path) -> Result<Vec<QueuedMessage>, QueueError> {
    let out = runner.run_expect(
        &Argv::new(["postqueue", "-c", config_dir.as_str(), "-j"]),
        None,
        &[0],
    )?;
    parse_postqueue_json(&String::from_utf8_lossy(&out.stdout))
}

/// A valid queue ID (`postsuper` rejects anything else).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Run `postsuper -c DIR FLAG -` with `ids` on stdin; the IDs postsuper reports, from lines
/// `postsuper: ID: <verb>` on stderr (its exit status is always 0).
fn postsuper(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    flag: &str,
    verb: &str,
    ids: &[String],
) -> Result<Vec<String>, QueueError> {
    let stdin: String = ids
        .iter()
        .filter(|i| valid_id(i))
        .map(|i| format!("{i}\n"))
        .collect();
    let out = runner.run_expect(
        &Argv::new(["postsuper", "-c", config_dir.as_str(), flag, "-"]),
        Some(stdin.as_bytes()),
        &[0],
    )?;
    Ok(String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("postsuper: ")?;
            let (id, what) = rest.split_once(": ")?;
            (what == verb && valid_id(id)).then(|| id.to_string())
        })
        .collect())
}

/// The IDs of queued messages (not already on hold) with a recipient that reaches `user`.
pub fn pending_for_user(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    user: &str,
    delimiters: &str,
) -> Result<Vec<String>, QueueError> {
    Ok(list(runner, config_dir)?
        .into_iter()
        .filter(|m| m.queue_name != "hold")
        .filter(|m| m.recipients.iter().any(|r| reaches(r, user, delimiters)))
        .map(|m| m.queue_id)
        .collect())
}

/// The IDs of messages on hold with a recipient that reaches `user` and that arrived at or after
/// `since` (seconds since the epoch): the mail smtpd held because of a HOLD action written at
/// `since`.
pub fn held_for_user_since(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    user: &str,
    delimiters: &str,
    since: i64,
) -> Result<Vec<String>, QueueError> {
    Ok(list(runner, config_dir)?
        .into_iter()
        .filter(|m| m.queue_name == "hold" && m.arrival_time >= since)
        .filter(|m| m.recipients.iter().any(|r| reaches(r, user, delimiters)))
        .map(|m| m.queue_id)
        .collect())
}

/// Put the given messages on hold (`postsuper -h -`, IDs on stdin), and confirm each one from
/// postsuper's report. A message that left the queue meanwhile (delivered) is not an error.
/// Returns the IDs placed on hold.
pub fn hold_ids(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    ids: &[String],
) -> Result<Vec<String>, QueueError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let held = postsuper(runner, config_dir, "-h", "placed on hold", ids)?;
    let queue = list(runner, config_dir)?;
    let missing: Vec<&String> = ids
        .iter()
        .filter(|i| {
            !held.contains(i)
                && queue
                    .iter()
                    .any(|m| &m.queue_id == *i && m.queue_name != "hold")
        })
        .collect();
    if !missing.is_empty() {
        return Err(QueueError::Incomplete {
            what: "held",
            done: held.len(),
            asked: ids.len(),
            missing: missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    Ok(held)
}

/// Put every queued message for `user` that is not on hold yet on hold (`postsuper -h -`), and
/// confirm each one. Returns the IDs placed on hold (to be released later by [`release`]).
pub fn hold_user(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    user: &str,
    delimiters: &str,
) -> Result<Vec<String>, QueueError> {
    let ids = pending_for_user(runner, config_dir, user, delimiters)?;
    hold_ids(runner, config_dir, &ids)
}

/// Release `ids` from hold (`postsuper -H -`) and deliver them now (`postqueue -i ID`), except
/// messages with a recipient in `still_held_users` (another user still being migrated): those
/// stay on hold and are returned as kept. Every other ID must be reported released.
pub fn release(
    runner: &dyn Runner,
    config_dir: &Utf8Path,
    ids: &[String],
    still_held_users: &[String],
    delimiters: &str,
) -> Result<(Vec<String>, Vec<String>), QueueError> {
    let queue = list(runner, config_dir)?;
    let mut release = Vec::new();
    let mut kept = Vec::new();
    for id in ids {
        let Some(m) = queue.iter().find(|m| &m.queue_id == id) else {
            continue; // already gone (delivered or released by someone)
        };
        if m.queue_name != "hold" {
            continue;
        }
        let blocked = m
            .recipients
            .iter()
            .any(|r| still_held_users.iter().any(|u| reaches(r, u, delimiters)));
        if blocked {
            kept.push(id.clone());
        } else {
            release.push(id.clone());
        }
    }
    if release.is_empty() {
        return Ok((release, kept));
    }
    let released = postsuper(runner, config_dir, "-H", "released from hold", &release)?;
    let missing: Vec<&String> = release.iter().filter(|i| !released.contains(i)).collect();
    if !missing.is_empty() {
        return Err(QueueError::Incomplete {
            what: "released",
            done: released.len(),
            asked: release.len(),
            missing: missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    for id in &released {
        runner.run_expect(
            &Argv::new(["postqueue", "-c", config_dir.as_str(), "-i", id]),
            None,
            &[0],
        )?;
    }
    Ok((released, kept))
}

/// Why the record of held messages cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeldStateError {
    /// The user name cannot name a state file.
    #[error(transparent)]
    User(#[from] crate::migrate::InputError),
    /// The state directory refused.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The record is not a list of queue IDs.
    #[error("{path}: not a list of queue IDs ({reason})")]
    Corrupt {
        /// The file.
        path: camino::Utf8PathBuf,
        /// Why.
        reason: String,
    },
}

/// The queue IDs [`record_holds`] recorded for `user` (`STATE/queue/USER.json`).
pub fn recorded_holds(
    state: &crate::state::StateDir,
    user: &str,
) -> Result<Vec<String>, HeldStateError> {
    crate::migrate::validate_user(user)?;
    let name = format!("{user}.json");
    match state.read("queue", &name)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| HeldStateError::Corrupt {
            path: state.file_path("queue", &name),
            reason: e.to_string(),
        }),
        None => Ok(Vec::new()),
    }
}

/// Record the queue IDs mailmig holds for `user` (none: the record is removed).
pub fn record_holds(
    state: &crate::state::StateDir,
    user: &str,
    ids: &[String],
) -> Result<(), HeldStateError> {
    crate::migrate::validate_user(user)?;
    let name = format!("{user}.json");
    if ids.is_empty() {
        state.remove("queue", &name)?;
        return Ok(());
    }
    let json = serde_json::to_vec_pretty(ids).unwrap_or_default();
    state.write("queue", &name, &json)?;
    Ok(())
}

/// Whether `id` has the shape of a Postfix queue ID (short hexadecimal or long base-52 form:
/// letters and digits only), so that it can name a file.
pub fn is_queue_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postqueue_json_both_shapes() {
        let text = concat!(
            r#"{"queue_name": "hold", "queue_id": "3BEE698E167", "arrival_time": 1, "message_size": 438, "forced_expire": false, "sender": "s@x", "recipients": [{"address": "alice@example.test"}, {"address": "bob@example.test"}]}"#,
            "\n",
            r#"{"queue_name": "deferred", "queue_id": "C32B", "sender": "MAILER-DAEMON", "new_member": 1, "recipients": [{"address": "alice@example.test", "orig_address": "al@example.test", "bounce_reason": "x"}]}"#,
            "\n"
        );
        let q = parse_postqueue_json(text).expect("parses");
        assert_eq!(q.len(), 2);
        assert_eq!(q[1].recipients, ["alice@example.test", "al@example.test"]);
        assert!(parse_postqueue_json("not json\n").is_err());
    }

    #[test]
    fn recipient_matching() {
        assert!(reaches("Alice@Example.TEST", "alice@example.test", ""));
        assert!(reaches(
            "alice+lists@example.test",
            "alice@example.test",
            "+"
        ));
        assert!(!reaches(
            "alice+lists@example.test",
            "alice@example.test",
            ""
        ));
        assert!(!reaches("jimalice@example.test", "alice@example.test", "+"));
        assert!(valid_id("3BEE698E167") && !valid_id("3BEE698E167*") && !valid_id("x y"));
    }
}
