//! Golden edit tests: every table and passwd-file fixture, each edit, the resulting bytes
//! snapshotted (or the refusal); set-then-delete of something new restores the bytes.

use mailmig_core::dovecot::{NumericIds, PasswdFile, PasswdOptions};
use mailmig_core::postfix::{ParseOptions, PostfixVersion, Table};
use mailmig_tests::{fixtures_in, swap_line_endings};

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('\r', "\\r")
        .replace('\t', "\\t")
        .replace('\0', "\\0")
}

fn table_edits(bytes: &[u8]) -> String {
    let options = ParseOptions {
        version: PostfixVersion::DEBIAN_12,
        ..ParseOptions::default()
    };
    let original = Table::parse(bytes.to_vec(), &options);
    let mut out = String::new();
    // Set-then-delete of a new key restores the file byte for byte.
    let mut t = original.clone();
    let id = t
        .set(b"new@example.test", b"dest@example.test", true)
        .expect("valid");
    out.push_str(&format!(
        "== set new@example.test dest@example.test\n{}\n",
        show(&t.render())
    ));
    t.remove(id).expect("present");
    assert_eq!(t.render(), bytes, "set then delete restores the bytes");
    if let Some(first) = original.entries().next() {
        let key = first.key().to_vec();
        let mut t = original.clone();
        match t.set(&key, b"replaced@example.test", true) {
            Ok(_) => out.push_str(&format!(
                "== set {} replaced@example.test\n{}\n",
                show(&key),
                show(&t.render())
            )),
            Err(e) => out.push_str(&format!("== set {} refused: {e}\n", show(&key))),
        }
        let mut t = original.clone();
        let id = t.get(&key, true).map(|e| e.id()).expect("effective entry");
        t.remove(id).expect("present");
        out.push_str(&format!("== del {}\n{}\n", show(&key), show(&t.render())));
    }
    out
}

fn passwd_edits(bytes: &[u8]) -> String {
    let original = PasswdFile::parse(bytes.to_vec(), &PasswdOptions::default());
    let mut out = String::new();
    let users: Vec<Vec<u8>> = original.records().map(|e| e.user().to_vec()).collect();
    for user in users.iter().take(3) {
        let had = original
            .records()
            .find(|e| e.user() == user.as_slice())
            .is_some_and(|e| e.extra().iter().any(|f| f.key.as_ref() == b"allow_nets"));
        let mut f = original.clone();
        match f.set_extra(user, b"allow_nets", Some(b""), &NumericIds) {
            Ok(()) => {
                out.push_str(&format!(
                    "== set {} allow_nets=\n{}\n",
                    show(user),
                    show(&f.render())
                ));
                assert!(f
                    .remove_extra(user, b"allow_nets", &NumericIds)
                    .expect("valid"));
                if !had {
                    assert_eq!(
                        f.render(),
                        bytes,
                        "set then unset of a new field restores the bytes"
                    );
                }
            }
            Err(e) => out.push_str(&format!("== set {} allow_nets= refused: {e}\n", show(user))),
        }
    }
    out
}

#[test]
fn edits_of_every_fixture() {
    for (dir, edit) in [
        ("postfix", table_edits as fn(&[u8]) -> String),
        ("passwd", passwd_edits),
    ] {
        for path in fixtures_in(dir) {
            let name = path.file_stem().expect("name").to_string();
            let bytes = fs_err::read(&path).expect("fixture");
            for (suffix, input) in [("lf", bytes.clone()), ("crlf", swap_line_endings(&bytes))] {
                insta::with_settings!({
                    snapshot_suffix => format!("{dir}-{name}-{suffix}"),
                    description => format!("edits of tests/fixtures/{dir}/{name} ({suffix})"),
                    omit_expression => true,
                }, {
                    insta::assert_snapshot!(edit(&input));
                });
            }
        }
    }
}
