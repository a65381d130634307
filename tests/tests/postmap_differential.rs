//! The real `postmap` is the oracle: for every fixture (LF and CRLF) and for hundreds of
//! generated maps, `mailmig map dump` equals `postmap -s`, `mailmig map get` / the library lookup
//! equal `postmap -q` for every key and some absent ones, and `mailmig map check` reports the
//! lines postmap warns about.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use mailmig_core::postfix::{
    check_source, dump_source, Diagnostic, DumpSink, ParseOptions, PostfixVersion, Table,
    ValueRules,
};
use mailmig_tests::gen::{tricky_map, Rng};
use mailmig_tests::{
    fixtures_in, mailmig, postmap_warning_lines, require, run, swap_line_endings, PostmapOracle,
};

fn options() -> ParseOptions {
    ParseOptions {
        smtputf8: true,
        version: PostfixVersion::DEBIAN_12,
    }
}

/// What a one-pass dump lists: the skipped records, then `key<TAB>value` of each kept entry.
#[derive(Default)]
struct Listed {
    skipped: Vec<Diagnostic>,
    entries: Vec<Vec<u8>>,
}

impl DumpSink for Listed {
    fn skipped(&mut self, errors: Vec<Diagnostic>) {
        self.skipped = errors;
    }
    fn entry(&mut self, key: &[u8], value: &[u8]) {
        self.entries.push([key, b"\t", value].concat());
    }
}

/// Compare one map with postmap in every way; `cli` also runs the mailmig binary.
fn compare(oracle: &PostmapOracle, name: &str, bytes: &[u8], cli: bool) {
    let (path, built) = oracle.build(name, bytes);
    assert_eq!(built.code, 0, "{name}: postmap failed: {}", built.err());
    let want = oracle.dump(&path);
    let table = Table::parse(bytes.to_vec(), &options());
    let mut ours: Vec<Vec<u8>> = table
        .effective_entries(true)
        .iter()
        .map(|e| [&e.lookup_key(true)[..], b"\t", e.value()].concat())
        .collect();
    ours.sort();
    assert_eq!(
        ours.iter()
            .map(|l| l.escape_ascii().to_string())
            .collect::<Vec<_>>(),
        want.iter()
            .map(|l| l.escape_ascii().to_string())
            .collect::<Vec<_>>(),
        "{name}: dump differs from postmap -s\n--- source\n{}",
        bytes.escape_ascii()
    );
    // Every key (as written and folded) and a few absent ones, through `postmap -q - map`.
    let mut keys: Vec<Vec<u8>> = table.entries().map(|e| e.key().to_vec()).collect();
    keys.extend(table.entries().map(|e| e.key().to_ascii_uppercase()));
    keys.extend([
        b"absent@example.test".to_vec(),
        b"ALICE1".to_vec(),
        b"#".to_vec(),
    ]);
    keys.retain(|k| !k.is_empty() && !k.contains(&b'\n') && !k.contains(&0));
    let mut stdin = Vec::new();
    for k in &keys {
        stdin.extend_from_slice(k);
        stdin.push(b'\n');
    }
    let dir = oracle.config_dir();
    let map = format!("hash:{path}");
    let q = mailmig_tests::run_stdin(
        "postmap",
        &["-c", dir.as_str(), "-q", "-", &map],
        Some(&stdin),
    );
    assert!(!q.err().contains("fatal"), "{}", q.err());
    let hits: std::collections::HashMap<Vec<u8>, Vec<u8>> = q
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let tab = l.iter().position(|&b| b == b'\t')?;
            Some((l[..tab].to_vec(), l[tab + 1..].to_vec()))
        })
        .collect();
    for k in &keys {
        let ours = table.get(k, true).map(|e| e.value().to_vec());
        assert_eq!(
            ours.as_ref().map(|v| v.escape_ascii().to_string()),
            hits.get(k).map(|v| v.escape_ascii().to_string()),
            "{name}: lookup of {} differs",
            k.escape_ascii()
        );
    }
    // The warnings: texthash reads the same way and names a line for every warning but the
    // leading-whitespace one.
    let w = run(
        "postmap",
        &["-c", dir.as_str(), "-s", &format!("texthash:{path}")],
    );
    let want_lines = postmap_warning_lines(&w.stderr);
    let want_orphans = w.err().matches("must not start with whitespace").count();
    let diags = table.diagnostics(true);
    // The one-pass check and dump (what `map check` and `map dump` run) find what the table
    // finds.
    assert_eq!(
        check_source(bytes, &options(), true, ValueRules::Plain),
        table.findings(true, ValueRules::Plain),
        "{name}: the one-pass check differs from the table's"
    );
    let mut listed = Listed::default();
    dump_source(bytes, &options(), true, &mut listed);
    assert_eq!(listed.skipped, table.errors(), "{name}: one-pass dump");
    let kept: Vec<Vec<u8>> = table
        .effective_entries(true)
        .iter()
        .map(|e| [&e.lookup_key(true)[..], b"\t", e.value()].concat())
        .collect();
    assert_eq!(listed.entries, kept, "{name}: one-pass dump");
    let mut our_lines: Vec<usize> = diags
        .iter()
        .filter(|d| d.kind.reported_by_postmap() && d.kind.code() != "leading-whitespace")
        .map(|d| d.line)
        .collect();
    our_lines.sort_unstable();
    our_lines.dedup();
    assert_eq!(
        our_lines,
        want_lines,
        "{name}: warned lines differ\n{}",
        w.err()
    );
    let our_orphans = diags
        .iter()
        .filter(|d| d.kind.code() == "leading-whitespace")
        .count();
    assert_eq!(
        our_orphans,
        want_orphans,
        "{name}: orphan warnings differ\n{}",
        w.err()
    );

    if cli {
        let dump = mailmig(&[
            "--postfix-config",
            dir.as_str(),
            "map",
            "dump",
            path.as_str(),
        ]);
        assert_eq!(dump.code, 0, "{}", dump.err());
        let lines = mailmig_tests::sorted_lines(&dump.stdout);
        assert_eq!(
            lines, want,
            "{name}: `mailmig map dump` differs from postmap -s"
        );
        for k in keys.iter().take(12) {
            let ours = mailmig(&[
                OsStr::new("--postfix-config"),
                OsStr::new(dir.as_str()),
                OsStr::new("map"),
                OsStr::new("get"),
                OsStr::new(path.as_str()),
                OsStr::from_bytes(k),
            ]);
            let theirs = oracle.query(&path, OsStr::from_bytes(k));
            match theirs {
                Some(v) => {
                    assert_eq!(ours.code, 0, "{name}: map get {} missed", k.escape_ascii());
                    assert_eq!(ours.stdout, [&v[..], b"\n"].concat());
                }
                None => assert_eq!(ours.code, 1, "{name}: map get {} found", k.escape_ascii()),
            }
        }
        let check = mailmig(&[
            "--postfix-config",
            dir.as_str(),
            "map",
            "check",
            "--json",
            path.as_str(),
        ]);
        let mut check_lines: Vec<usize> = check
            .out()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
            .filter(|v| v["postmap"] == true && v["code"] != "leading-whitespace")
            .map(|v| v["line"].as_u64().expect("line") as usize)
            .collect();
        check_lines.sort_unstable();
        check_lines.dedup();
        assert_eq!(check_lines, want_lines, "{name}: `map check` lines differ");
        let expect_code = if diags.is_empty() { 0 } else { 65 };
        assert_eq!(check.code, expect_code, "{name}: map check exit code");
    }
}

#[test]
fn fixtures_match_postmap() {
    if !require(&["postmap"]) {
        return;
    }
    let oracle = PostmapOracle::new("");
    for path in fixtures_in("postfix") {
        let name = path.file_name().expect("name").to_string();
        let bytes = fs_err::read(&path).expect("fixture");
        compare(&oracle, &name, &bytes, true);
        compare(
            &oracle,
            &format!("crlf-{name}"),
            &swap_line_endings(&bytes),
            true,
        );
    }
}

#[test]
fn generated_maps_match_postmap() {
    if !require(&["postmap"]) {
        return;
    }
    let oracle = PostmapOracle::new("");
    let mut rng = Rng::new(0x5eed_2026);
    for i in 0..300 {
        let lines = 5 + rng.below(40);
        let bytes = tricky_map(&mut rng, lines);
        compare(&oracle, &format!("gen{i}.map"), &bytes, i % 25 == 0);
    }
}

#[test]
fn smtputf8_off_matches_postmap() {
    if !require(&["postmap"]) {
        return;
    }
    let oracle = PostmapOracle::new("smtputf8_enable = no\n");
    let bytes = fs_err::read(mailmig_tests::fixture("postfix/15-8bit-nul.map")).expect("fixture");
    let (path, built) = oracle.build("latin.map", &bytes);
    assert_eq!(built.code, 0);
    let want = oracle.dump(&path);
    let dir = oracle.config_dir();
    let dump = mailmig(&[
        "--postfix-config",
        dir.as_str(),
        "map",
        "dump",
        path.as_str(),
    ]);
    let lines = mailmig_tests::sorted_lines(&dump.stdout);
    assert_eq!(lines, want);
}
