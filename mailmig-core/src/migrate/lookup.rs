//! What the running Dovecot says about a user (`doveadm user`): single fields, every field, and
//! the mail location the user is on now. Used by the preflight, `cleanup` and `finish`.

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
        }
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

    /// `doveadm user -f FIELD USER`.
    pub fn field(&self, user: &str, field: &str) -> Result<String, MigrateError> {
        self.answer(user, &argv::user_field(self.config, user, field))
    }

    /// `doveadm user -e TEMPLATE USER`: the template expanded for the user.
    pub fn expand(&self, user: &str, template: &str) -> Result<String, MigrateError> {
        self.answer(user, &argv::expand(self.config, user, template))
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
