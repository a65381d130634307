//! Properties of the passwd-file document over arbitrary bytes and realistic records.

use mailmig_core::dovecot::{NumericIds, PasswdFile, PasswdOptions};
use proptest::prelude::*;

fn passwd_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"ab1@x.=/_".to_vec()),
        4 => prop::sample::select(b":\n \r#%\t".to_vec()),
        1 => prop::sample::select(vec![0u8, 0xc3, 0xa9, 0xff]),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..300)
}

/// Realistic records: a user, a password, ids, home, and some extra fields.
fn record() -> impl Strategy<Value = String> {
    let user = "[a-z]{1,8}(@[a-z]{1,6}\\.test)?";
    let extra = prop::collection::vec(
        prop_oneof![
            Just("userdb_mail=mdbox:~/mdbox".to_string()),
            Just("allow_nets=".to_string()),
            Just("nologin".to_string()),
            "[a-z_]{1,10}=[a-z0-9/:.~,]{0,12}",
        ],
        0..4,
    );
    (
        user,
        "[a-zA-Z0-9]{0,10}",
        extra,
        prop_oneof![Just("\n"), Just("\r\n")],
    )
        .prop_map(|(u, p, extra, eol)| {
            format!(
                "{u}:{{PLAIN}}{p}:1000:1000::/home/{u}::{}{eol}",
                extra.join(" ")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn render_parse_is_identity(bytes in passwd_bytes(), userdb in any::<bool>()) {
        let options = PasswdOptions { userdb, ..PasswdOptions::default() };
        let f = PasswdFile::parse(bytes.clone(), &options);
        prop_assert_eq!(f.render(), bytes);
        // Reading every view never panics.
        let _ = f.diagnostics(&NumericIds);
        for e in f.records() {
            let _ = e.passdb();
            let _ = e.userdb(&NumericIds);
        }
    }

    #[test]
    fn set_then_remove_of_a_new_field_restores_the_file(
        records in prop::collection::vec(record(), 1..8),
        pick in any::<usize>(),
        value in "[a-z0-9.,/]{0,10}",
    ) {
        let text: String = records.concat();
        let bytes = text.clone().into_bytes();
        let mut f = PasswdFile::parse(bytes.clone(), &PasswdOptions::default());
        let users: Vec<Vec<u8>> = {
            let loaded = f.load(&NumericIds);
            f.records().filter(|e| loaded.line_of(e.user()) == Some(e.line() - 1)).map(|e| e.user().to_vec()).collect()
        };
        let user = users[pick % users.len()].clone();
        let key = b"mailmig_test_field";
        f.set_extra(&user, key, Some(value.as_bytes()), &NumericIds).expect("valid edit");
        // Only that user's line changed, and Dovecot now sees the field.
        let edited = f.render();
        let before: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let after: Vec<&[u8]> = edited.split(|&b| b == b'\n').collect();
        prop_assert_eq!(before.len(), after.len());
        let changed: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
        prop_assert_eq!(changed.len(), 1);
        let reread = PasswdFile::parse(edited.clone(), &PasswdOptions::default());
        let entry = reread.lookup(&user, &NumericIds).expect("user still there");
        let passdb = entry.passdb().expect("lookup works");
        let want = if value.is_empty() { None } else { Some(value.as_bytes()) };
        prop_assert_eq!(passdb.get(key), Some(want));
        // And removing it restores every byte.
        prop_assert!(f.remove_extra(&user, key, &NumericIds).expect("valid"));
        prop_assert_eq!(f.render(), bytes);
    }
}
