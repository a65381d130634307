//! Where the daemons' configuration is when no flag names it: the stock paths `postconf(1)` and
//! `doveconf(1)` themselves read, so that mailmig on a stock Debian server needs no flag.
//!
//! A command that talks to the server (migrate, plan, login, queue, hold discovery, config)
//! reads these defaults; the reading rules of a table or passwd-file given on the command line
//! come from the daemons only when their flag is given (a file can be checked on any machine).

use camino::Utf8PathBuf;
use serde::Serialize;

use crate::args::GlobalArgs;

/// `postconf`'s `config_directory` when neither `-c` nor `MAIL_CONFIG` is given.
pub(crate) const POSTFIX_CONFIG_DIR: &str = "/etc/postfix";
/// The file `doveconf` and `doveadm` read without `-c`.
pub(crate) const DOVECOT_CONFIG_FILE: &str = "/etc/dovecot/dovecot.conf";

/// Where a configuration path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Origin {
    /// A command-line flag named it.
    #[serde(rename = "flag")]
    Flag,
    /// No flag: the daemon's own default.
    #[serde(rename = "default")]
    Default,
}

/// A configuration path and its origin.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Located {
    /// The path.
    pub(crate) path: Utf8PathBuf,
    /// Where it came from.
    pub(crate) from: Origin,
}

impl Located {
    fn new(given: Option<&Utf8PathBuf>, default: &str) -> Self {
        match given {
            Some(path) => Self {
                path: path.clone(),
                from: Origin::Flag,
            },
            None => Self {
                path: Utf8PathBuf::from(default),
                from: Origin::Default,
            },
        }
    }
}

impl GlobalArgs {
    /// `--postfix-config`, else `/etc/postfix`.
    pub(crate) fn postfix_dir(&self) -> Located {
        Located::new(self.postfix_config.as_ref(), POSTFIX_CONFIG_DIR)
    }

    /// `--dovecot-config`, else `/etc/dovecot/dovecot.conf`.
    pub(crate) fn dovecot_file(&self) -> Located {
        Located::new(self.dovecot_config.as_ref(), DOVECOT_CONFIG_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Cli;
    use clap::Parser;

    #[test]
    fn no_flag_means_the_stock_paths_and_a_flag_wins() {
        let cli = Cli::parse_from(["mailmig", "status"]);
        let p = cli.global.postfix_dir();
        assert_eq!((p.path.as_str(), p.from), ("/etc/postfix", Origin::Default));
        let d = cli.global.dovecot_file();
        assert_eq!(
            (d.path.as_str(), d.from),
            ("/etc/dovecot/dovecot.conf", Origin::Default)
        );
        let cli = Cli::parse_from(["mailmig", "--postfix-config", "/srv/pf", "status"]);
        let p = cli.global.postfix_dir();
        assert_eq!((p.path.as_str(), p.from), ("/srv/pf", Origin::Flag));
    }

    #[test]
    fn help_names_the_defaults() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains(POSTFIX_CONFIG_DIR), "{help}");
        assert!(help.contains(DOVECOT_CONFIG_FILE), "{help}");
    }
}
