//! Any bytes: parse → render is the identity, nothing panics, and a new key set then removed
//! restores the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmig_core::postfix::{ParseOptions, PostfixVersion, Table};

fuzz_target!(|data: &[u8]| {
    let (flags, bytes) = match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, data),
    };
    let options = ParseOptions {
        smtputf8: flags & 1 == 0,
        version: if flags & 2 == 0 {
            PostfixVersion::DEBIAN_12
        } else {
            PostfixVersion::new(3, 1)
        },
    };
    let mut table = Table::parse(bytes.to_vec(), &options);
    assert_eq!(table.render(), bytes);
    let _ = table.diagnostics(true);
    let keys: Vec<Vec<u8>> = table.entries().map(|e| e.key().to_vec()).collect();
    for k in &keys {
        assert!(table.get(k, flags & 4 == 0).is_some() || flags & 4 != 0);
    }
    let key = b"fuzz-new-key@example.test";
    if table.get(key, true).is_none() {
        let id = table
            .set(key, b"dest@example.test", true)
            .expect("valid edit");
        let reparsed = Table::parse(table.render(), &options);
        assert_eq!(
            reparsed.get(key, true).map(|e| e.value().to_vec()),
            Some(b"dest@example.test".to_vec())
        );
        table.remove(id).expect("present");
        assert_eq!(table.render(), bytes);
    }
    // Edit then re-parse is stable: replacing a value keeps the entry count.
    let first = table.entries().next().map(|e| e.id());
    if let Some(id) = first {
        let before = table.entries().count();
        table
            .replace_value(id, b"replaced@example.test")
            .expect("valid value");
        let reparsed = Table::parse(table.render(), &options);
        assert_eq!(reparsed.render(), table.render());
        assert_eq!(reparsed.entries().count(), before);
    }
});
