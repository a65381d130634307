//! What the running Dovecot says about a user (`doveadm user`): single fields, every field, and
//! the mail location the user is on now. Used by the preflight, `cleanup` and `finish`.

use std::collections::HashMap;

use camino::Utf8Path;

use super::error::{MigrateError, Refusal};
use super::{argv, dialect, Location};
use crate::login::DovecotSettings;
use crate::process::{Argv, Runner};

/// One field of `doveadm user`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserField {
    /// The field (`home`, `mail`, `sieve`, ...).
    pub key: String,
    /// Its value.
    pub value: String,
}

/// Asks the running Dovecot about users.
#[derive(Clone, Copy)]
pub struct Lookup<'a> {
    runner: &'a dyn Runner,
    config: &'a Utf8Path,
    settings: &'a DovecotSettings,
    /// Answers asked for many users at once, used before asking again.
    known: Option<&'a Answers>,
}

/// What a lookup asks `doveadm user` about a user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Question {
    /// `-f FIELD`: one field's value.
    Field(String),
    /// `-e TEMPLATE`: the template expanded for the user.
    Expand(String),
}

impl Question {
    /// The `doveadm user` arguments that ask it.
    fn args(&self) -> [&str; 2] {
        match self {
            Question::Field(f) => ["-f", f],
            Question::Expand(t) => ["-e", t],
        }
    }
}

/// `doveadm user`'s answers for many users, asked in one process per question and group of
/// users ([`Lookup::ask_many`]). Users whose answers could not be told apart are missing, and
/// are asked one by one.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// question → user → the answer, trimmed as [`Lookup::field`] trims it.
    answers: HashMap<Question, HashMap<String, String>>,
}

impl Answers {
    /// The answer to `question` for `user`, if it was asked and told apart.
    pub fn get(&self, user: &str, question: &Question) -> Option<&str> {
        self.answers.get(question)?.get(user).map(String::as_str)
    }

    /// How many answers are known.
    pub fn len(&self) -> usize {
        self.answers.values().map(HashMap::len).sum()
    }

    /// Whether no answer is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Users asked in one `doveadm user` process (its command line stays far below the kernel's
/// limit).
pub const USERS_PER_PROCESS: usize = 500;

/// The answers of `doveadm user -f FIELD U1 U2 ...` when every user was found, as Dovecot 2.3
/// and 2.4 print them: between two users' answers a line break; a field the user has is
/// printed with a line break after it, even when empty; a field the user does not have prints
/// nothing. Read as if no field were present and empty (each empty line between two answers
/// is one user without the field): when that gives exactly `count` answers it is the only
/// reading (a present empty field takes a line that reading gives a user of its own, so any
/// other reading has fewer users). `None` otherwise — present empty fields, or an answer that
/// spans lines — and nothing is taken from that output.
pub fn split_answers(out: &[u8], count: usize) -> Option<Vec<String>> {
    let text = std::str::from_utf8(out).ok()?;
    let mut lines: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.strip_suffix('\n')?.split('\n').collect()
    };
    lines.reverse();
    let mut answers = Vec::with_capacity(count);
    for i in 0..count {
        let answer = match lines.last() {
            Some(line) if !line.is_empty() => lines.pop().unwrap_or_default(),
            _ => "",
        };
        answers.push(answer.trim().to_string());
        if i + 1 < count && lines.pop() != Some("") {
            return None;
        }
    }
    lines.is_empty().then_some(answers)
}

impl std::fmt::Debug for Lookup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'a> Lookup<'a> {
    /// Lookups through `doveadm -c config`, read with the configuration's `settings`.
    pub fn new(
        runner: &'a dyn Runner,
        config: &'a Utf8Path,
        settings: &'a DovecotSettings,
    ) -> Self {
        Self {
            runner,
            config,
            settings,
            known: None,
        }
    }

    /// These lookups, answering from `known` what it holds.
    pub fn knowing(self, known: &'a Answers) -> Self {
        Self {
            known: Some(known),
            ..self
        }
    }

    /// Ask each of `questions` for all `users` in one `doveadm user -f FIELD|-e TEMPLATE
    /// USER...` process per question (and per [`USERS_PER_PROCESS`] users). A group whose
    /// answer is not certain (a user not found, any other failure, an empty expansion, an
    /// answer that would span lines) is left out: its users are asked one by one later, with
    /// the errors that gives.
    pub fn ask_many(&self, users: &[String], questions: &[Question]) -> Answers {
        let mut known = Answers::default();
        // Only names that are no option to doveadm (the others are refused one by one).
        let users: Vec<&String> = users
            .iter()
            .filter(|u| super::validate_user(u).is_ok())
            .collect();
        for group in users.chunks(USERS_PER_PROCESS) {
            for question in questions {
                let mut args = vec!["user"];
                args.extend(question.args());
                args.extend(group.iter().map(|u| u.as_str()));
                let Ok(out) = self.runner.run(&argv::doveadm(self.config, &args), None) else {
                    continue;
                };
                if out.code != Some(0) {
                    continue;
                }
                let Some(answers) = split_answers(&out.stdout, group.len()) else {
                    continue;
                };
                let asked = known.answers.entry(question.clone()).or_default();
                asked.extend(group.iter().map(|u| (*u).clone()).zip(answers));
            }
        }
        known
    }

    /// Dovecot's configuration file.
    pub fn config(&self) -> &'a Utf8Path {
        self.config
    }

    /// The configuration's settings.
    pub fn settings(&self) -> &'a DovecotSettings {
        self.settings
    }

    /// What a `doveadm user` command printed, trimmed; an unknown user (67) is an error.
    fn answer(&self, user: &str, argv: &Argv) -> Result<String, MigrateError> {
        let out = self.runner.run_expect(argv, None, &[0, 67])?;
        if out.code == Some(67) {
            return Err(MigrateError::UnknownUser {
                user: user.to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `doveadm user -f FIELD USER` (or its answer among those known).
    pub fn field(&self, user: &str, field: &str) -> Result<String, MigrateError> {
        if let Some(answer) = self.known_answer(user, &Question::Field(field.to_string())) {
            return Ok(answer);
        }
        self.answer(user, &argv::user_field(self.config, user, field))
    }

    /// `doveadm user -e TEMPLATE USER`: the template expanded for the user (or its answer
    /// among those known).
    pub fn expand(&self, user: &str, template: &str) -> Result<String, MigrateError> {
        if let Some(answer) = self.known_answer(user, &Question::Expand(template.to_string())) {
            return Ok(answer);
        }
        self.answer(user, &argv::expand(self.config, user, template))
    }

    /// The answer asked before, if any.
    fn known_answer(&self, user: &str, question: &Question) -> Option<String> {
        self.known?.get(user, question).map(str::to_string)
    }

    /// Every userdb field `doveadm user USER` prints (`key<TAB>value` lines; the `field value`
    /// header and the `userdb:` label are skipped).
    pub fn fields(&self, user: &str) -> Result<Vec<UserField>, MigrateError> {
        let text = self.answer(user, &argv::doveadm(self.config, &["user", user]))?;
        Ok(parse_fields(&text))
    }

    /// The location the user is on now: the userdb's fields, the global location filling what
    /// they leave unset, templates expanded by Dovecot.
    pub fn location(&self, user: &str) -> Result<Location, MigrateError> {
        let version = self.settings.version;
        let answers = dialect::shown_fields(version)
            .iter()
            .map(|field| self.field(user, field))
            .map(|a| match a {
                Ok(a) if a.contains('%') => self.expand(user, &a),
                other => other,
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The global location may be a template (2.3 prints it unexpanded): expanded per user.
        let global = match self.settings.mail_location.as_deref() {
            Some(g) if g.contains('%') => Some(self.expand(user, g)?),
            other => other.map(str::to_string),
        };
        dialect::current_location(version, &answers, global.as_deref()).map_err(|reason| {
            Refusal::BadSource {
                user: user.to_string(),
                reason,
            }
            .into()
        })
    }
}

/// `doveadm user`'s fields from its text answer.
fn parse_fields(text: &str) -> Vec<UserField> {
    text.lines()
        .filter_map(|l| {
            let (key, value) = l.split_once('\t').or_else(|| l.split_once(' '))?;
            let key = key.trim();
            (!key.is_empty() && key != "field" && !key.ends_with(':')).then(|| UserField {
                key: key.to_string(),
                value: value.trim().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `doveadm user -f FIELD` prints for these users' fields (measured on 2.3.19 and
    /// 2.4.1: a line break between users, a field the user has followed by one, even when
    /// empty; nothing for a field the user does not have, `None` here).
    fn printed(fields: &[Option<String>]) -> Vec<u8> {
        let mut out = String::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            if let Some(f) = f {
                out.push_str(f);
                out.push('\n');
            }
        }
        out.into_bytes()
    }

    #[test]
    fn many_users_answers_are_told_apart_as_doveadm_prints_them() {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        // Bytes as doveadm printed them on both stacks.
        assert_eq!(
            split_answers(b"maildir:~/Maildir\n\nmaildir:~/Maildir\n\nmdbox:~/m\n", 3),
            Some(s(&["maildir:~/Maildir", "maildir:~/Maildir", "mdbox:~/m"]))
        );
        assert_eq!(split_answers(b"\n\n", 3), Some(s(&["", "", ""])));
        assert_eq!(split_answers(b"\n", 2), Some(s(&["", ""])));
        assert_eq!(split_answers(b"", 1), Some(s(&[""])));
        assert_eq!(
            split_answers(b"/h/a\n\n\n/h/b\n", 3),
            Some(s(&["/h/a", "", "/h/b"]))
        );
        assert_eq!(split_answers(b"\n/h/b\n", 2), Some(s(&["", "/h/b"])));
        assert_eq!(split_answers(b"/h/a\n\n", 2), Some(s(&["/h/a", ""])));
        // Not what that many answers print.
        assert_eq!(split_answers(b"/h/a\n\n/h/b\n", 3), None);
        assert_eq!(split_answers(b"/h/a\n/h/b\n", 2), None);
        assert_eq!(split_answers(b"/h/a", 1), None);
        // 2.3, a user whose home field is present and empty among users with homes: the empty
        // line it adds would read as one more user.
        assert_eq!(split_answers(b"/h/a\n\n\n\n/h/c\n", 3), None);
        assert_eq!(
            split_answers(b"/h/a\n\n\n\n/h/c\n", 4),
            Some(s(&["/h/a", "", "", "/h/c"]))
        );
    }

    proptest! {
        /// Whatever the fields (absent, present and empty, spanning lines), what is told apart
        /// is exactly each user's answer, and fields absent or of one line that is not empty
        /// are always told apart.
        #[test]
        fn answers_are_never_given_to_the_wrong_user(
            fields in prop::collection::vec(prop::sample::select(vec![None, Some(""), Some("a"), Some("b c"), Some("\n"), Some("a\n"), Some("\na"), Some("a\n\nb"), Some("\n\n")]), 1..7)
        ) {
            let fields: Vec<Option<String>> = fields.iter().map(|f| f.map(str::to_string)).collect();
            let answers: Vec<String> = fields.iter().map(|f| f.clone().unwrap_or_default()).collect();
            let told = split_answers(&printed(&fields), fields.len());
            if fields.iter().flatten().all(|f| !f.is_empty() && !f.contains('\n')) {
                prop_assert_eq!(told, Some(answers));
            } else if let Some(told) = told {
                prop_assert_eq!(told, answers);
            }
        }
    }

    #[test]
    fn fields_are_read_from_doveadm_users_answer() {
        let text =
            "field\tvalue\nuid\t5000\nhome\t/var/vmail/a/alice\nsieve\t~/sieve/active.sieve\n";
        let f = parse_fields(text);
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].key, "home");
        assert_eq!(f[2].value, "~/sieve/active.sieve");
    }
}
