//! The real `postmap` is the oracle: for every fixture (LF and CRLF) and for hundreds of
//! generated maps, `mailmig map dump` equals `postmap -s`, `mailmig map get` / the library lookup
//! equal `postmap -q` for every key and some absent ones, and `mailmig map check` reports the
//! lines postmap warns about. On both stacks: the host's Postfix 3.7 (Debian 12) and Postfix
//! 3.10 in the Debian 13 root (its `postmap` and `mailmig` chrooted there, the library reading
//! with the rules of the release that answers).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use mailmig_core::postfix::{
    check_source, dump_source, Diagnostic, DumpSink, ParseOptions, PostfixVersion, Table,
    ValueRules,
};
use mailmig_tests::gen::{tricky_map, Rng};
use mailmig_tests::sandbox::{Sandbox, Stack};
use mailmig_tests::{
    fixtures_in, postmap_warning_lines, require, run, swap_line_endings, PostmapOracle,
};
use rstest::rstest;

/// A `postmap` to compare with, and the rules the library reads with for its release.
struct Oracle {
    postmap: PostmapOracle,
    options: ParseOptions,
    /// The Debian 13 sandbox whose root the oracle runs in (dropped after the oracle's files).
    _sandbox: Option<Sandbox>,
}

/// The oracle on `stack` with `extra` lines in its `main.cf`, or `None` when that stack is not
/// installed and not required.
fn oracle(stack: Stack, extra: &str) -> Option<Oracle> {
    let (postmap, postconf, sandbox) = match stack {
        Stack::Debian12 => {
            if !require(&["postmap", "postconf"]) {
                return None;
            }
            let postconf = run("postconf", &["-d", "-h", "mail_version"]);
            (PostmapOracle::new(extra), postconf, None)
        }
        Stack::Debian13 => {
            let sb = Sandbox::start_on(stack)?;
            let postconf = sb.run("postconf", &["-d", "-h", "mail_version"]);
            (PostmapOracle::on(&sb, extra), postconf, Some(sb))
        }
    };
    // The library reads with the rules of the release that answers (3.7 or 3.10).
    let text = postconf.out();
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>());
    let version = match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => PostfixVersion::new(major, minor),
        _ => panic!("postconf mail_version: {text:?} {}", postconf.err()),
    };
    let expected = match stack {
        Stack::Debian12 => PostfixVersion::DEBIAN_12,
        Stack::Debian13 => PostfixVersion::new(3, 10),
    };
    assert_eq!(version, expected, "{} runs another Postfix", stack.name());
    Some(Oracle {
        postmap,
        options: ParseOptions {
            smtputf8: !extra.contains("smtputf8_enable = no"),
            version,
        },
        _sandbox: sandbox,
    })
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
fn compare(stage: &Oracle, name: &str, bytes: &[u8], cli: bool) {
    let oracle = &stage.postmap;
    let options = &stage.options;
    let (path, built) = oracle.build(name, bytes);
    assert_eq!(built.code, 0, "{name}: postmap failed: {}", built.err());
    let want = oracle.dump(&path);
    let table = Table::parse(bytes.to_vec(), options);
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
    let q = oracle.postmap(&["-c", dir.as_str(), "-q", "-", &map], Some(&stdin));
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
    let w = oracle.postmap(
        &["-c", dir.as_str(), "-s", &format!("texthash:{path}")],
        None,
    );
    let want_lines = postmap_warning_lines(&w.stderr);
    let want_orphans = w.err().matches("must not start with whitespace").count();
    let diags = table.diagnostics(true);
    // The one-pass check and dump (what `map check` and `map dump` run) find what the table
    // finds.
    assert_eq!(
        check_source(bytes, options, true, ValueRules::Plain),
        table.findings(true, ValueRules::Plain),
        "{name}: the one-pass check differs from the table's"
    );
    let mut listed = Listed::default();
    dump_source(bytes, options, true, &mut listed);
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
        "{name}: warned lines differ\n{}--- source\n{}",
        w.err(),
        bytes.escape_ascii()
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
        let dump = oracle.mailmig(&[
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
            let ours = oracle.mailmig(&[
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
        let check = oracle.mailmig(&[
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

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn fixtures_match_postmap(#[case] stack: Stack) {
    let Some(oracle) = oracle(stack, "") else {
        return;
    };
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

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn generated_maps_match_postmap(#[case] stack: Stack) {
    let Some(oracle) = oracle(stack, "") else {
        return;
    };
    let mut rng = Rng::new(0x5eed_2026);
    for i in 0..300 {
        let lines = 5 + rng.below(40);
        let bytes = tricky_map(&mut rng, lines);
        compare(&oracle, &format!("gen{i}.map"), &bytes, i % 25 == 0);
    }
}

#[rstest]
#[case::debian12(Stack::Debian12)]
#[case::debian13(Stack::Debian13)]
fn smtputf8_off_matches_postmap(#[case] stack: Stack) {
    let Some(stage) = oracle(stack, "smtputf8_enable = no\n") else {
        return;
    };
    let oracle = &stage.postmap;
    let bytes = fs_err::read(mailmig_tests::fixture("postfix/15-8bit-nul.map")).expect("fixture");
    let (path, built) = oracle.build("latin.map", &bytes);
    assert_eq!(built.code, 0);
    let want = oracle.dump(&path);
    let dir = oracle.config_dir();
    let dump = oracle.mailmig(&[
        "--postfix-config",
        dir.as_str(),
        "map",
        "dump",
        path.as_str(),
    ]);
    let lines = mailmig_tests::sorted_lines(&dump.stdout);
    assert_eq!(lines, want);
}
