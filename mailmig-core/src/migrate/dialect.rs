//! How each Dovecot release names a user's mail location: in passwd-file userdb fields, in
//! `doveadm user -f` answers and in `doveadm -o` overrides. Measured on the real binaries
//! (Debian 12's 2.3.19.1 and Debian 13's 2.4.1): 2.4 silently ignores both `userdb_mail=` and
//! `-o mail_location=`, so using the 2.3 spelling there would leave the user where they are and
//! compare a location with itself.

use super::{InputError, Location};
use crate::dovecot::DovecotVersion;

/// One passwd-file userdb field that sets the location, with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationField {
    /// The key (`userdb_mail`, `userdb_mail_driver`, `userdb_mail_path`).
    pub key: &'static str,
    /// The value.
    pub value: String,
}

/// The passwd-file fields that set a user's location: 2.3 `userdb_mail`; 2.4
/// `userdb_mail_driver` and `userdb_mail_path`, always written together (the driver alone
/// would read the old path with the new driver).
pub fn location_keys(version: DovecotVersion) -> &'static [&'static str] {
    match version {
        DovecotVersion::V2_3 => &["userdb_mail"],
        DovecotVersion::V2_4 => &["userdb_mail_driver", "userdb_mail_path"],
    }
}

/// The fields (in [`location_keys`] order) that put a user at `location`.
pub fn location_fields(version: DovecotVersion, location: &Location) -> Vec<LocationField> {
    match version {
        DovecotVersion::V2_3 => vec![LocationField {
            key: "userdb_mail",
            value: location.to_string(),
        }],
        DovecotVersion::V2_4 => vec![
            LocationField {
                key: "userdb_mail_driver",
                value: location.format().to_string(),
            },
            LocationField {
                key: "userdb_mail_path",
                value: location.path().to_string(),
            },
        ],
    }
}

/// `doveadm -o` arguments that make a command read `location` instead of the user's own.
pub fn override_args(version: DovecotVersion, location: &Location) -> Vec<String> {
    match version {
        DovecotVersion::V2_3 => vec!["-o".into(), format!("mail_location={location}")],
        DovecotVersion::V2_4 => vec![
            "-o".into(),
            format!("mail_driver={}", location.format()),
            "-o".into(),
            format!("mail_path={}", location.path()),
        ],
    }
}

/// The `doveadm user -f` fields that show where the user's mail is.
pub fn shown_fields(version: DovecotVersion) -> &'static [&'static str] {
    match version {
        DovecotVersion::V2_3 => &["mail"],
        DovecotVersion::V2_4 => &["mail_driver", "mail_path"],
    }
}

/// Whether `doveadm user`'s answers (for [`shown_fields`], in order) put the user at
/// `location`. An empty answer never confirms a location, except where the userdb is expected
/// to set none (an undo to a record without location fields, or to a primary userdb that sets
/// none): 2.4's `mail_driver`, or 2.3's `mail`, when `default_driver` (the global
/// `mail_driver`, or the format of the global `mail_location`) is the location's format.
/// 2.4 prints `mail_path` expanded, so `~` is expanded with `home` first.
pub fn shows(
    version: DovecotVersion,
    answers: &[String],
    location: &Location,
    home: &str,
    default_driver: Option<&str>,
) -> bool {
    match (version, answers) {
        (DovecotVersion::V2_3, [mail]) if mail.is_empty() => {
            default_driver == Some(location.format())
        }
        (DovecotVersion::V2_3, [mail]) => mail == location.as_str(),
        (DovecotVersion::V2_4, [driver, path]) => {
            let driver_ok = if driver.is_empty() {
                default_driver == Some(location.format())
            } else {
                driver == location.format()
            };
            driver_ok
                && !path.is_empty()
                && path.trim_end_matches('/') == location.expanded_path(home).trim_end_matches('/')
        }
        _ => false,
    }
}

/// The user's location from `doveadm user`'s answers ([`shown_fields`]), the global location
/// filling what the userdb leaves unset: 2.3 `mail` or `mail_location`; 2.4
/// `mail_driver` (or the global one) and `mail_path` (always printed, expanded).
pub fn current_location(
    version: DovecotVersion,
    answers: &[String],
    global: Option<&str>,
) -> Result<Location, InputError> {
    let text = match (version, answers) {
        (DovecotVersion::V2_3, [mail]) if !mail.is_empty() => mail.clone(),
        (DovecotVersion::V2_3, _) => global.unwrap_or_default().to_string(),
        (DovecotVersion::V2_4, [driver, path]) => {
            let driver = if driver.is_empty() {
                global
                    .and_then(|g| g.split_once(':'))
                    .map(|(d, _)| d.to_string())
                    .unwrap_or_default()
            } else {
                driver.clone()
            };
            format!("{driver}:{path}")
        }
        (DovecotVersion::V2_4, _) => String::new(),
    };
    Location::parse(&text)
}

/// A target 2.4 can be switched to: `FORMAT:PATH` without 2.3-style options (`:LAYOUT=`,
/// `:INDEX=`, ... are settings of their own in 2.4: `mailbox_list_layout`, `mail_index_path`).
pub fn check_target(version: DovecotVersion, to: &Location) -> Result<(), String> {
    if version == DovecotVersion::V2_4 && to.as_str().splitn(3, ':').nth(2).is_some() {
        return Err(format!(
            "`{to}`: Dovecot 2.4 has no location options; its settings (mailbox_list_layout, mail_index_path, ...) are separate userdb fields — give FORMAT:PATH"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Location {
        Location::parse(s).expect("valid")
    }

    #[test]
    fn the_fields_of_each_release() {
        let to = loc("mdbox:~/mdbox");
        assert_eq!(
            location_fields(DovecotVersion::V2_3, &to),
            vec![LocationField {
                key: "userdb_mail",
                value: "mdbox:~/mdbox".into()
            }]
        );
        let f = location_fields(DovecotVersion::V2_4, &to);
        assert_eq!(
            f.iter().map(|f| f.key).collect::<Vec<_>>(),
            location_keys(DovecotVersion::V2_4)
        );
        assert_eq!(f[0].value, "mdbox");
        assert_eq!(f[1].value, "~/mdbox");
        assert_eq!(
            override_args(DovecotVersion::V2_4, &to),
            ["-o", "mail_driver=mdbox", "-o", "mail_path=~/mdbox"]
        );
        assert_eq!(
            override_args(DovecotVersion::V2_3, &to),
            ["-o", "mail_location=mdbox:~/mdbox"]
        );
    }

    #[test]
    fn an_empty_answer_never_confirms() {
        let to = loc("mdbox:~/mdbox");
        let a = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert!(shows(
            DovecotVersion::V2_3,
            &a(&["mdbox:~/mdbox"]),
            &to,
            "/h",
            None
        ));
        assert!(!shows(DovecotVersion::V2_3, &a(&[""]), &to, "/h", None));
        // Undone to a userdb without a location: the global one, of the location's format.
        assert!(shows(
            DovecotVersion::V2_3,
            &a(&[""]),
            &to,
            "/h",
            Some(to.format())
        ));
        assert!(!shows(
            DovecotVersion::V2_3,
            &a(&[""]),
            &to,
            "/h",
            Some("sdbox")
        ));
        assert!(shows(
            DovecotVersion::V2_4,
            &a(&["mdbox", "/h/mdbox"]),
            &to,
            "/h",
            None
        ));
        // unknown fields print an empty line: no confirmation
        assert!(!shows(
            DovecotVersion::V2_4,
            &a(&["", ""]),
            &to,
            "/h",
            Some("mdbox")
        ));
        assert!(!shows(
            DovecotVersion::V2_4,
            &a(&["", "/h/mdbox"]),
            &to,
            "/h",
            Some("maildir")
        ));
        assert!(shows(
            DovecotVersion::V2_4,
            &a(&["", "/h/mdbox"]),
            &to,
            "/h",
            Some("mdbox")
        ));
        // the driver alone on the old path is not the target
        assert!(!shows(
            DovecotVersion::V2_4,
            &a(&["mdbox", "/h/Maildir"]),
            &to,
            "/h",
            None
        ));
    }

    #[test]
    fn the_current_location() {
        let a = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(
            current_location(DovecotVersion::V2_3, &a(&[""]), Some("maildir:~/Maildir")),
            Ok(loc("maildir:~/Maildir"))
        );
        assert_eq!(
            current_location(
                DovecotVersion::V2_4,
                &a(&["", "/h/Maildir"]),
                Some("maildir:~/Maildir")
            ),
            Ok(loc("maildir:/h/Maildir"))
        );
        assert!(current_location(DovecotVersion::V2_4, &a(&["", "/h/Maildir"]), None).is_err());
        assert!(check_target(DovecotVersion::V2_4, &loc("mdbox:~/mdbox:LAYOUT=fs")).is_err());
        assert!(check_target(DovecotVersion::V2_3, &loc("mdbox:~/mdbox:LAYOUT=fs")).is_ok());
        assert!(check_target(DovecotVersion::V2_4, &loc("mdbox:~/mdbox")).is_ok());
    }
}
