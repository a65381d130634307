//! Against a real Postfix + Dovecot sandbox: mailmig reads the sandbox's own maps and
//! configuration, and what `mailmig aliases` says reaches a mailbox is checked by sending mail
//! over SMTP to every address and counting what Dovecot delivered.

use std::collections::BTreeSet;

use mailmig_tests::sandbox::{Sandbox, Stack};
use rstest::rstest;

fn closure(sb: &Sandbox, address: &str) -> (BTreeSet<String>, serde_json::Value) {
    let r = sb.mailmig_bare(&[
        "--postfix-config",
        sb.get("POSTFIX_CONFIG"),
        "aliases",
        "--json",
        address,
    ]);
    assert_eq!(r.code, 0, "{}", r.err());
    let v: serde_json::Value = serde_json::from_str(&r.out()).expect("json");
    let set = v["aliases"]
        .as_array()
        .expect("aliases")
        .iter()
        .map(|a| a["address"].as_str().expect("address").to_string())
        .collect();
    (set, v)
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn maps_of_a_live_postfix(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let pc = sb.get("POSTFIX_CONFIG");

    // The sandbox delivers: SMTP -> cleanup -> LMTP -> Dovecot maildir.
    let seeded = sb.seed("alice", 3);
    assert_eq!(seeded.code, 0, "seed: {}{}", seeded.out(), seeded.err());
    assert_eq!(sb.inbox_count("alice@example.test"), 3);

    // map check: the sandbox's real maps are clean.
    for map in [sb.get("VIRTUAL_MAP"), sb.get("VMAILBOX_MAP")] {
        let r = sb.mailmig_bare(&[
            "--postfix-config",
            pc,
            "map",
            "check",
            "--kind",
            "virtual",
            map,
        ]);
        assert_eq!((r.code, r.out()), (0, String::new()), "{map}: {}", r.err());
    }
    let r = sb.mailmig_bare(&[
        "--postfix-config",
        pc,
        "map",
        "check",
        "--kind",
        "access",
        sb.get("ACCESS_MAP"),
    ]);
    assert_eq!(r.code, 0, "{}", r.out());

    // map dump equals the real table Postfix built.
    let dump = sb.mailmig_bare(&["--postfix-config", pc, "map", "dump", sb.get("VIRTUAL_MAP")]);
    let want = sb.run(
        "postmap",
        &["-c", pc, "-s", &format!("hash:{}", sb.get("VIRTUAL_MAP"))],
    );
    let sorted = |s: String| s.lines().map(str::to_string).collect::<BTreeSet<_>>();
    assert_eq!(sorted(dump.out()), sorted(want.out()));

    // aliases: discovered from virtual_alias_maps through postconf.
    let (alice, json) = closure(&sb, "alice@example.test");
    let expected: BTreeSet<String> = [
        "alice@example.test",
        "al@example.test",
        "alice.smith@example.test",
        "team@example.test",
        "staff@example.test",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(alice, expected);
    let staff = json["aliases"]
        .as_array()
        .expect("aliases")
        .iter()
        .find(|a| a["address"] == "staff@example.test")
        .expect("staff");
    assert_eq!(staff["kind"], "nested");
    assert_eq!(
        staff["path"],
        serde_json::json!([
            "staff@example.test",
            "team@example.test",
            "alice@example.test"
        ])
    );

    // The live daemons agree: every address in alice's closure delivers to alice, the others
    // do not (ops@ is a continued alias to bob and carol).
    let mut expected_count = 3;
    for address in [
        "al@example.test",
        "alice.smith@example.test",
        "team@example.test",
        "staff@example.test",
        "ops@example.test",
        "bob@example.test",
    ] {
        let r = sb.seed(address, 1);
        assert_eq!(r.code, 0, "seed {address}: {}{}", r.out(), r.err());
        if alice.contains(address) {
            expected_count += 1;
        }
        assert_eq!(
            sb.inbox_count("alice@example.test"),
            expected_count,
            "after mail to {address}"
        );
    }
    let (carol, _) = closure(&sb, "carol@example.test");
    assert_eq!(
        carol,
        ["carol@example.test", "ops@example.test"]
            .iter()
            .map(ToString::to_string)
            .collect()
    );
    assert_eq!(
        sb.inbox_count("carol@example.test"),
        1,
        "ops@ reached carol"
    );
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn sed_style_access_line_is_caught_though_postmap_accepts_it(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let pc = sb.get("POSTFIX_CONFIG");
    let access = sb.get("ACCESS_MAP");
    // What the published sed script makes of a shared alias.
    fs_err::write(
        access,
        "alice@example.test HOLD Planned maintenance\nteam@example.test alice@example.test, bob@example.test HOLD Planned maintenance\n",
    )
    .expect("write");
    let built = sb.run("postmap", &["-c", pc, &format!("hash:{access}")]);
    assert_eq!(
        built.code,
        0,
        "postmap accepts the broken line: {}",
        built.err()
    );
    let r = sb.mailmig_bare(&[
        "--postfix-config",
        pc,
        "map",
        "check",
        "--kind",
        "access",
        access,
    ]);
    assert_eq!(r.code, 65);
    let out = r.out();
    assert!(
        out.starts_with(&format!("{access}:2:19: error: not an access(5) action")),
        "{out}"
    );
    assert!(out.contains("451 4.3.5"), "{out}");
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn configuration_is_read_from_the_daemons(#[case] stack: Stack) {
    let Some(sb) = Sandbox::start_on(stack) else {
        return;
    };
    let r = sb.mailmig_bare(&[
        "--postfix-config",
        sb.get("POSTFIX_CONFIG"),
        "--dovecot-config",
        sb.get("DOVECOT_CONFIG"),
        "config",
    ]);
    assert_eq!(r.code, 0, "{}", r.err());
    let v: serde_json::Value = serde_json::from_str(&r.out()).expect("json");
    let p = &v["postfix"]["parameters"];
    let (postfix, dovecot) = match stack {
        Stack::Debian12 => ("3.7.11", "2.3"),
        Stack::Debian13 => ("3.10.13", "2.4"),
    };
    assert_eq!(p["mail_version"], postfix);
    assert_eq!(p["smtputf8_enable"], "yes");
    assert!(p["virtual_alias_maps"]
        .as_str()
        .unwrap_or_default()
        .ends_with("/postfix/virtual"));
    let d = &v["dovecot"]["settings"];
    assert_eq!(
        d["passwd_files"],
        serde_json::json!([sb.get("PASSWD_FILE")])
    );
    assert_eq!(d["userdb_drivers"], serde_json::json!(["passwd-file"]));
    assert_eq!(d["version"], dovecot);
    // where each fact came from
    assert_eq!(v["postfix"]["config_directory_from"], "--postfix-config");
    assert_eq!(v["dovecot"]["config_from"], "--dovecot-config");
    let rules = &v["reading_rules"];
    assert_eq!(
        rules["postfix_version"],
        postfix.rsplit_once('.').map_or(postfix, |(mm, _)| mm)
    );
    assert!(rules["postfix_version_from"]
        .as_str()
        .unwrap_or_default()
        .starts_with("mail_version of postconf -c "));
    assert_eq!(
        d["namespaces"],
        serde_json::json!([{ "name": "inbox", "separator": "/", "type": "private", "location": null }])
    );
    assert_eq!(d["quota_backend"], serde_json::Value::Null);
    assert_eq!(d["mail_location"], "maildir:~/Maildir");
    assert_eq!(d["auth_cache_enabled"], false);
}
