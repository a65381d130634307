//! Holding a mailbox's mail at Postfix: exact `access(5)` lines for every address that reaches
//! the mailbox, tagged so that mailmig removes exactly the lines it wrote.
//!
//! A line mailmig writes looks like
//!
//! ```text
//! al@example.com HOLD [mailmig hold for alice@example.com since 2026-11-29T16:10:00Z] Planned maintenance
//! ```
//!
//! The bracketed tag is part of smtpd's reply text (it shows in the log); lines without it are
//! never touched. An address that reaches several mailboxes under migration at once (a shared
//! alias) has one line tagged for all of them (`for alice@x, bob@x since ...`): removing one
//! mailbox's hold keeps the line for the others.

use crate::postfix::{
    AccessAction, AccessRule, Address, ReverseClosure, Table, TableEditError, UncoverableKey,
};

/// What the access line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum HoldAction {
    /// `HOLD`: the whole message (every recipient) waits in the hold queue.
    Hold,
    /// `DEFER`: only this recipient is refused with a temporary error; the sender retries.
    Defer,
}

impl HoldAction {
    fn word(self) -> &'static str {
        match self {
            HoldAction::Hold => "HOLD",
            HoldAction::Defer => "DEFER",
        }
    }
}

const TAG: &str = "[mailmig hold for ";

/// One line mailmig wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldEntry {
    /// The access key (an address).
    pub key: Vec<u8>,
    /// The mailboxes the hold is for.
    pub users: Vec<String>,
    /// When it was written (UTC, RFC 3339).
    pub since: String,
    /// HOLD or DEFER.
    pub action: HoldAction,
    /// The reason text after the tag.
    pub reason: String,
    /// 1-based line in the map, when parsed from a file.
    pub line: Option<usize>,
}

/// Read a value mailmig wrote: `ACTION [mailmig hold for USER[, USER...] since TIME] REASON`.
pub fn parse_hold_value(value: &[u8]) -> Option<(HoldAction, Vec<String>, String, String)> {
    let text = std::str::from_utf8(value).ok()?;
    let (word, rest) = text.split_once(' ')?;
    let action = match word {
        "HOLD" => HoldAction::Hold,
        "DEFER" => HoldAction::Defer,
        _ => return None,
    };
    let rest = rest.strip_prefix(TAG)?;
    let (inner, reason) = rest.split_once(']')?;
    let (users, since) = inner.split_once(" since ")?;
    Some((
        action,
        users.split(", ").map(str::to_string).collect(),
        since.to_string(),
        reason.trim_start().to_string(),
    ))
}

/// The value of a line mailmig writes.
pub fn hold_value(action: HoldAction, users: &[String], since: &str, reason: &str) -> String {
    let mut v = format!("{} {TAG}{} since {since}]", action.word(), users.join(", "));
    if !reason.is_empty() {
        v.push(' ');
        v.push_str(reason);
    }
    v
}

/// Every line of the map mailmig wrote, in file order.
pub fn list_holds(access: &Table) -> Vec<HoldEntry> {
    access
        .entries()
        .filter_map(|e| {
            let (action, users, since, reason) = parse_hold_value(e.value())?;
            Some(HoldEntry {
                key: e.key().to_vec(),
                users,
                since,
                action,
                reason,
                line: e.line(),
            })
        })
        .collect()
}

/// What `hold add` will do for one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldPlan {
    /// The mailbox.
    pub user: String,
    /// Keys to write (addresses whose mail reaches the mailbox), in closure order.
    pub add: Vec<Vec<u8>>,
    /// Keys already held by mailmig for this mailbox (left as they are).
    pub already: Vec<Vec<u8>>,
    /// Keys held by mailmig for other mailboxes: this mailbox is added to their tag.
    pub share: Vec<Vec<u8>>,
    /// Keys the map already has a different rule for (the first entry wins in postmap, so a
    /// HOLD line would be ignored): not written, reported.
    pub conflicts: Vec<(Vec<u8>, Vec<u8>, Option<usize>)>,
    /// Catch-all and bare-user keys that reach the mailbox: no exact key can hold them.
    pub uncoverable: Vec<UncoverableKey>,
}

/// Why a hold cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HoldError {
    /// The reason text cannot be part of an access value.
    #[error("the reason must be printable text on one line, without `]`: `{0}`")]
    BadReason(String),
    /// The mailbox name cannot be part of the tag (it would not read back).
    #[error("`{mailbox}` cannot be held by mailmig: {reason}")]
    BadMailbox {
        /// The name given.
        mailbox: String,
        /// Why.
        reason: &'static str,
    },
    /// The table refused the line.
    #[error(transparent)]
    Edit(#[from] TableEditError),
}

/// Check that `mailbox` can stand in a hold tag and be found again by `hold list` and
/// `hold remove`: not empty, no blanks, control characters, `,`, `[` or `]`.
pub fn validate_mailbox(mailbox: &str) -> Result<(), HoldError> {
    let bad = |reason| {
        Err(HoldError::BadMailbox {
            mailbox: mailbox.to_string(),
            reason,
        })
    };
    if mailbox.is_empty() {
        return bad("it is empty");
    }
    if mailbox.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains blanks or control characters");
    }
    if mailbox.contains([',', '[', ']']) {
        return bad("it contains `,`, `[` or `]`");
    }
    if mailbox.len() > 255 {
        return bad("it is longer than 255 bytes");
    }
    Ok(())
}

/// Plan the lines for `user` from its reverse closure against the current map.
pub fn plan_hold(access: &Table, user: &str, closure: &ReverseClosure) -> HoldPlan {
    let keys: Vec<Vec<u8>> = closure
        .addresses
        .iter()
        .map(|p| p.address.external())
        .collect();
    let mut plan = plan_hold_keys(access, user, &keys);
    plan.uncoverable = closure.uncoverable.clone();
    plan
}

/// [`plan_hold`] for a list of keys computed earlier (a migration computes the closure once, in
/// its plan, and holds exactly those keys).
pub fn plan_hold_keys(access: &Table, user: &str, keys: &[Vec<u8>]) -> HoldPlan {
    let mut plan = HoldPlan {
        user: user.to_string(),
        add: Vec::new(),
        already: Vec::new(),
        share: Vec::new(),
        conflicts: Vec::new(),
        uncoverable: Vec::new(),
    };
    for key in keys {
        let key = key.clone();
        if plan.add.contains(&key) || plan.already.contains(&key) || plan.share.contains(&key) {
            continue;
        }
        match access.get(&key, true) {
            None => plan.add.push(key),
            Some(existing) => match parse_hold_value(existing.value()) {
                Some((_, holders, _, _)) if holders.iter().any(|h| h == user) => {
                    plan.already.push(key);
                }
                Some(_) => plan.share.push(key),
                None => plan
                    .conflicts
                    .push((key, existing.value().to_vec(), existing.line())),
            },
        }
    }
    plan
}

/// Write the planned lines. Returns how many were added.
pub fn apply_hold(
    access: &mut Table,
    plan: &HoldPlan,
    action: HoldAction,
    since: &str,
    reason: &str,
) -> Result<usize, HoldError> {
    validate_mailbox(&plan.user)?;
    if reason.contains(']') || reason.chars().any(char::is_control) {
        return Err(HoldError::BadReason(reason.to_string()));
    }
    let value = hold_value(
        action,
        std::slice::from_ref(&plan.user),
        since,
        reason.trim(),
    );
    // The value must read back as the action it is meant to be.
    let check = Table::parse(format!("k {value}\n").into_bytes(), access.options());
    let ok = check.entries().next().is_some_and(|e| {
        matches!(
            AccessRule::new(e).action(),
            AccessAction::Hold | AccessAction::Defer
        )
    });
    if !ok {
        return Err(HoldError::BadReason(reason.to_string()));
    }
    for key in &plan.add {
        access.insert(key, value.as_bytes())?;
    }
    for key in &plan.share {
        let Some((id, (action, mut users, since, reason))) = access
            .get(key, true)
            .and_then(|e| Some((e.id(), parse_hold_value(e.value())?)))
        else {
            continue;
        };
        users.push(plan.user.clone());
        access.replace_value(id, hold_value(action, &users, &since, &reason).as_bytes())?;
    }
    Ok(plan.add.len() + plan.share.len())
}

/// Remove every line mailmig wrote for these mailboxes (last first, so that the file comes back
/// byte for byte after `hold add`). Returns the keys removed.
pub fn remove_holds(access: &mut Table, users: &[&str]) -> Result<Vec<Vec<u8>>, TableEditError> {
    remove_holds_where(access, users, |_| true)
}

/// [`remove_holds`] for one user, limited to the given keys (compared after case folding): what
/// a migration added or shared, and nothing that was there before it.
pub fn remove_holds_for_keys(
    access: &mut Table,
    user: &str,
    keys: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>, TableEditError> {
    let fold = |k: &[u8]| crate::postfix::fold_key(k, true).into_owned();
    let wanted: Vec<Vec<u8>> = keys.iter().map(|k| fold(k)).collect();
    remove_holds_where(access, &[user], |key| wanted.contains(&fold(key)))
}

fn remove_holds_where(
    access: &mut Table,
    users: &[&str],
    pick: impl Fn(&[u8]) -> bool,
) -> Result<Vec<Vec<u8>>, TableEditError> {
    type Found = (
        crate::postfix::EntryId,
        Vec<u8>,
        (HoldAction, Vec<String>, String, String),
    );
    let found: Vec<Found> = access
        .entries()
        .filter_map(|e| {
            let parsed = parse_hold_value(e.value())?;
            (pick(e.key()) && parsed.1.iter().any(|u| users.contains(&u.as_str())))
                .then(|| (e.id(), e.key().to_vec(), parsed))
        })
        .collect();
    let mut removed = Vec::new();
    for (id, key, (action, holders, since, reason)) in found.into_iter().rev() {
        let rest: Vec<String> = holders
            .into_iter()
            .filter(|h| !users.contains(&h.as_str()))
            .collect();
        if rest.is_empty() {
            access.remove(id)?;
        } else {
            // Still needed by another mailbox under migration: keep the line for it.
            access.replace_value(id, hold_value(action, &rest, &since, &reason).as_bytes())?;
        }
        removed.push(key);
    }
    removed.reverse();
    Ok(removed)
}

/// The addresses a plan covers, as mailbox-facing [`Address`]es (for reports).
pub fn covered(plan: &HoldPlan) -> Vec<Address> {
    plan.add
        .iter()
        .chain(&plan.already)
        .map(|k| Address(k.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postfix::{ClosureOptions, ParseOptions, VirtualMap};

    fn table(s: &str) -> Table {
        Table::parse(s.as_bytes().to_vec(), &ParseOptions::default())
    }

    #[test]
    fn add_then_remove_restores_the_map() {
        let virt = table("al@x.test alice@x.test\nteam@x.test alice@x.test, bob@x.test\njimbob@x.test jim@x.test\n");
        let vm = VirtualMap::new(&[&virt], ClosureOptions::default());
        let closure = vm.reverse_closure(&Address(b"alice@x.test".to_vec()));
        for original in [
            "",
            "# maintenance\ncarol@x.test HOLD other admin",
            "x REJECT\n",
        ] {
            let mut access = table(original);
            let plan = plan_hold(&access, "alice@x.test", &closure);
            assert_eq!(plan.add.len(), 3);
            apply_hold(
                &mut access,
                &plan,
                HoldAction::Hold,
                "2026-11-29T16:00:00Z",
                "Planned maintenance",
            )
            .expect("valid");
            let held = list_holds(&access);
            assert_eq!(held.len(), 3);
            assert!(held
                .iter()
                .all(|h| h.users == ["alice@x.test"] && h.action == HoldAction::Hold));
            // Idempotent: a second plan adds nothing.
            let again = plan_hold(&access, "alice@x.test", &closure);
            assert!(again.add.is_empty() && again.already.len() == 3);
            let removed = remove_holds(&mut access, &["alice@x.test"]).expect("remove");
            assert_eq!(removed.len(), 3);
            assert_eq!(access.render(), original.as_bytes());
        }
    }

    #[test]
    fn shared_aliases_are_held_for_every_mailbox_until_the_last_is_released() {
        let virt = table("team@x.test alice@x.test, bob@x.test\n");
        let vm = VirtualMap::new(&[&virt], ClosureOptions::default());
        let hold = |t: &mut Table, user: &str| {
            let closure = vm.reverse_closure(&Address(user.as_bytes().to_vec()));
            let plan = plan_hold(t, user, &closure);
            assert!(plan.conflicts.is_empty());
            apply_hold(t, &plan, HoldAction::Hold, "t", "m").expect("valid");
        };
        let mut access = table("");
        hold(&mut access, "alice@x.test");
        let after_alice_only = access.render();
        hold(&mut access, "bob@x.test");
        let team = list_holds(&access)
            .into_iter()
            .find(|h| h.key == b"team@x.test")
            .expect("team");
        assert_eq!(team.users, ["alice@x.test", "bob@x.test"]);
        remove_holds(&mut access, &["bob@x.test"]).expect("remove");
        assert_eq!(
            access.render(),
            after_alice_only,
            "bob's share goes, alice's hold stays"
        );
        hold(&mut access, "bob@x.test");
        remove_holds(&mut access, &["alice@x.test"]).expect("remove");
        let team = list_holds(&access)
            .into_iter()
            .find(|h| h.key == b"team@x.test")
            .expect("team still held for bob");
        assert_eq!(team.users, ["bob@x.test"]);
        remove_holds(&mut access, &["bob@x.test"]).expect("remove");
        assert_eq!(access.render(), b"");
    }

    #[test]
    fn other_rules_are_conflicts_and_never_touched() {
        let virt = table("al@x.test alice@x.test\n");
        let vm = VirtualMap::new(&[&virt], ClosureOptions::default());
        let closure = vm.reverse_closure(&Address(b"alice@x.test".to_vec()));
        let mut access = table(
            "AL@x.test REJECT gone\nbob@x.test HOLD [mailmig hold for bob@x.test since t] m\n",
        );
        let plan = plan_hold(&access, "alice@x.test", &closure);
        assert_eq!(plan.add, vec![b"alice@x.test".to_vec()]);
        assert_eq!(plan.conflicts.len(), 1);
        apply_hold(&mut access, &plan, HoldAction::Defer, "t", "").expect("valid");
        remove_holds(&mut access, &["alice@x.test"]).expect("remove");
        assert_eq!(list_holds(&access).len(), 1, "bob's hold stays");
        assert!(apply_hold(&mut access, &plan, HoldAction::Hold, "t", "bad]reason").is_err());
    }
}
