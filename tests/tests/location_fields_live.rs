//! The running Dovecot is the oracle for what `passwd check` says about location fields: on
//! Dovecot 2.4 `userdb_mail=` is ignored (the user stays at the global location) and a lone
//! `userdb_mail_driver` reads the global path with another format — both flagged as errors;
//! on 2.3 `userdb_mail=` is the location and nothing is flagged.

use std::time::Duration;

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn location_fields_as_dovecot_reads_them(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let passwd = sb.get("PASSWD_FILE").to_string();
    let original = fs_err::read_to_string(&passwd).expect("read");
    let with = |fields: &str| {
        let text = original.replacen("/alice::\n", &format!("/alice::{fields}\n"), 1);
        assert_ne!(text, original, "alice's record edited");
        fs_err::write(&passwd, text).expect("write");
        // Dovecot re-reads the file when its mtime second or size changed.
        std::thread::sleep(Duration::from_millis(1100));
    };
    let field = |f: &str| {
        let r = sb.doveadm(&["user", "-f", f, "alice@example.test"]);
        assert_eq!(r.code, 0, "{}", r.err());
        r.out().trim().to_string()
    };
    // `passwd check` reads the release from the running Dovecot (no --dovecot-version).
    let check = || {
        let r = sb.mailmig_bare(&[
            "--dovecot-config",
            sb.get("DOVECOT_CONFIG"),
            "passwd",
            "check",
            "--json",
            &passwd,
        ]);
        r.out()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["code"].as_str().unwrap_or_default().to_string()
            })
            .collect::<Vec<_>>()
    };
    let home = sb.home("alice@example.test");
    let maildir = home.join("Maildir").to_string();

    with("userdb_mail=mdbox:~/mdbox");
    if stack.dovecot_24() {
        assert_eq!(field("mail_path"), maildir, "2.4 ignores userdb_mail=");
        assert_eq!(field("mail_driver"), "");
        assert_eq!(check(), ["ignored-mail-field"]);
    } else {
        assert_eq!(field("mail"), "mdbox:~/mdbox");
        assert!(check().is_empty(), "{:?}", check());
    }

    fs_err::write(&passwd, &original).expect("restore");
    with("userdb_mail_driver=mdbox");
    if stack.dovecot_24() {
        // The driver alone: mdbox on the Maildir path.
        assert_eq!(field("mail_driver"), "mdbox");
        assert_eq!(field("mail_path"), maildir);
        assert_eq!(check(), ["lone-location-field"]);
    } else {
        assert!(check().is_empty(), "{:?}", check());
    }

    fs_err::write(&passwd, &original).expect("restore");
    with("userdb_mail_driver=mdbox userdb_mail_path=~/mdbox");
    if stack.dovecot_24() {
        assert_eq!(field("mail_driver"), "mdbox");
        assert_eq!(field("mail_path"), home.join("mdbox").to_string());
    }
    assert!(check().is_empty(), "{:?}", check());
}
