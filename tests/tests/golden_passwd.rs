//! Golden fixtures for every passwd-file edge case (formats.md 19–33): byte-exact round trip
//! first, then a snapshot of what Dovecot's auth would make of each record; each fixture again
//! with LF and CRLF swapped.

use mailmig_core::dovecot::{
    ExtraField, LineKind, LoadStatus, PasswdFile, PasswdOptions, SystemIds,
};
use mailmig_tests::{fixtures_in, swap_line_endings};

fn esc(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn describe(file: &PasswdFile) -> String {
    let ids = SystemIds::new(&[("vmail", 999), ("root", 0)], &[("vmail", 995)]);
    let loaded = file.load(&ids);
    let mut out = String::new();
    for line in file.lines() {
        let n = line.number();
        match line.kind() {
            LineKind::Record => {}
            kind => {
                out.push_str(&format!("L{n} {kind:?} \"{}\"\n", esc(line.raw())));
                continue;
            }
        }
        let Some(entry) = line.entry() else { continue };
        let status = loaded
            .statuses()
            .iter()
            .find(|(i, _)| *i + 1 == n)
            .map_or(LoadStatus::Active, |(_, s)| s.clone());
        out.push_str(&format!(
            "L{n} user=\"{}\" fields={} status={status:?}\n",
            esc(entry.user()),
            entry.field_count()
        ));
        let extra: Vec<String> = entry
            .extra()
            .iter()
            .map(|ExtraField { key, value, .. }| match value {
                Some(v) => format!("{}={}", esc(key), esc(v)),
                None => esc(key),
            })
            .collect();
        out.push_str(&format!("    extra  {extra:?}\n"));
        let pairs = |f: &[(Vec<u8>, Option<Vec<u8>>)]| -> Vec<String> {
            f.iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{}={}", esc(k), esc(v)),
                    None => esc(k),
                })
                .collect()
        };
        match entry.passdb() {
            Ok(p) => out.push_str(&format!(
                "    passdb password={:?} {:?}\n",
                p.password.as_deref().map(esc),
                pairs(&p.fields)
            )),
            Err(e) => out.push_str(&format!("    passdb FAILS: {e}\n")),
        }
        match entry.userdb(&ids) {
            Ok(Some(u)) => out.push_str(&format!("    userdb {:?}\n", pairs(&u.fields))),
            Ok(None) => out.push_str("    userdb unknown user\n"),
            Err(e) => out.push_str(&format!("    userdb FAILS: {e}\n")),
        }
    }
    out.push_str("-- diagnostics\n");
    for d in file.diagnostics(&ids) {
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

fn check(name: &str, bytes: &[u8], suffix: &str) {
    let file = PasswdFile::parse(bytes.to_vec(), &PasswdOptions::default());
    assert_eq!(
        file.render(),
        bytes,
        "{name}: render(parse(bytes)) != bytes"
    );
    // `passwd check` reads the file through a buffer: the same findings as the document's.
    let ids = SystemIds::new(&[("vmail", 999), ("root", 0)], &[("vmail", 995)]);
    let mut temp = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut temp, bytes).expect("write");
    let opened = fs_err::File::open(temp.path()).expect("open");
    assert_eq!(
        PasswdFile::check_file(&opened, &PasswdOptions::default(), &ids).expect("read"),
        file.diagnostics(&ids),
        "{name}: the read check differs from the document's"
    );
    insta::with_settings!({
        snapshot_suffix => format!("{name}-{suffix}"),
        description => format!("tests/fixtures/passwd/{name} ({suffix})"),
        omit_expression => true,
    }, {
        insta::assert_snapshot!(describe(&file));
    });
}

#[test]
fn passwd_fixtures() {
    let files = fixtures_in("passwd");
    assert!(files.len() >= 15, "fixtures missing");
    for path in files {
        let name = path.file_stem().expect("name").to_string();
        let bytes = fs_err::read(&path).expect("read fixture");
        check(&name, &bytes, "lf");
        check(&name, &swap_line_endings(&bytes), "crlf");
    }
}
