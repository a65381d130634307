//! Golden fixtures for every Postfix table edge case (formats.md 1–18): each fixture is first
//! checked to render back byte for byte, then its parsed structure is snapshotted; every fixture
//! runs again with LF and CRLF swapped.

use mailmig_core::postfix::{ItemKind, ParseOptions, PostfixVersion, Table};
use mailmig_tests::{fixtures_in, swap_line_endings};

fn esc(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// A readable description of everything the parser saw.
fn describe(table: &Table) -> String {
    let mut out = String::new();
    for item in table.items() {
        let line = item.line().unwrap_or(0);
        match item.kind() {
            ItemKind::Blank => out.push_str(&format!("L{line} blank   \"{}\"\n", esc(item.raw()))),
            ItemKind::Comment => {
                out.push_str(&format!("L{line} comment \"{}\"\n", esc(item.raw())))
            }
            ItemKind::Entry(e) => out.push_str(&format!(
                "L{line} entry   key=\"{}\" lookup=\"{}\" value=\"{}\"\n           raw=\"{}\"\n",
                esc(e.key()),
                esc(&e.lookup_key(true)),
                esc(e.value()),
                esc(e.raw())
            )),
            ItemKind::Unparsed(u) => {
                out.push_str(&format!("L{line} UNPARSED raw=\"{}\"\n", esc(u.raw())))
            }
            _ => out.push_str("unknown item\n"),
        }
    }
    out.push_str("-- diagnostics\n");
    for d in table.diagnostics(true) {
        out.push_str(&format!(
            "{}:{} {} {}: {}\n",
            d.line,
            d.column,
            d.severity(),
            d.kind.code(),
            d.kind
        ));
    }
    out
}

fn check_fixture(name: &str, bytes: &[u8], options: &ParseOptions, suffix: &str) {
    let table = Table::parse(bytes.to_vec(), options);
    // Round-trip first: the invariant every snapshot rests on.
    assert_eq!(
        table.render(),
        bytes,
        "{name}: render(parse(bytes)) != bytes"
    );
    insta::with_settings!({
        snapshot_suffix => format!("{name}-{suffix}"),
        description => format!("tests/fixtures/postfix/{name} ({suffix})"),
        omit_expression => true,
    }, {
        insta::assert_snapshot!(describe(&table));
    });
}

#[test]
fn postfix_table_fixtures() {
    let files = fixtures_in("postfix");
    assert!(files.len() >= 18, "fixtures missing");
    let options = ParseOptions {
        version: PostfixVersion::DEBIAN_12,
        ..ParseOptions::default()
    };
    for path in files {
        let name = path.file_stem().expect("name").to_string();
        let bytes = fs_err::read(&path).expect("read fixture");
        check_fixture(&name, &bytes, &options, "lf");
        check_fixture(&name, &swap_line_endings(&bytes), &options, "crlf");
    }
}

#[test]
fn fixtures_with_postfix_3_1_and_smtputf8_off() {
    // Rules that differ by release and setting: quoting (3.2) and 8-bit handling.
    for (name, options) in [
        (
            "13-quoted-keys",
            ParseOptions {
                version: PostfixVersion::new(3, 1),
                ..ParseOptions::default()
            },
        ),
        (
            "15-8bit-nul",
            ParseOptions {
                smtputf8: false,
                version: PostfixVersion::new(3, 9),
            },
        ),
    ] {
        let bytes =
            fs_err::read(mailmig_tests::fixture(&format!("postfix/{name}.map"))).expect("fixture");
        check_fixture(name, &bytes, &options, "variant");
    }
}

/// `map check --kind virtual` checks the value of each entry postmap keeps: a later duplicate of
/// a key is reported as the duplicate only (the values are checked beside postmap's findings,
/// and the duplicates' dropped after).
#[test]
fn map_check_judges_the_values_postmap_keeps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let map = dir.path().join("virtual");
    fs_err::write(&map, "a@x b@x\nA@X (comment\nc@x (comment\nd@x e@x\n").expect("map");
    let run = mailmig_tests::mailmig(&[
        "map",
        "check",
        "--kind",
        "virtual",
        "--json",
        map.to_str().expect("utf-8"),
    ]);
    let found: Vec<(u64, String)> = run
        .out()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .map(|v| (v["line"].as_u64().unwrap_or(0), v["code"].to_string()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "\"duplicate-entry\"".to_string()),
            (3, "\"virtual-bad-value\"".to_string())
        ],
        "{}",
        run.err()
    );
    assert_eq!(run.code, 65);
}
