//! Any bytes read as a virtual map and as an access map: the typed views, address parsing,
//! expansion and the reverse closure never panic, and the one-pass check and dump find what
//! the table finds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmig_core::postfix::{
    canonicalize, check_source, dump_source, parse_address_list, AccessRule, Address,
    ClosureOptions, Diagnostic, DumpSink, ParseOptions, Table, ValueRules, VirtualAlias,
    VirtualMap,
};

/// What a dump lists: the skipped records, then each kept entry's key and value.
#[derive(Debug, Default, PartialEq)]
struct Listed {
    skipped: Vec<Diagnostic>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl DumpSink for Listed {
    fn skipped(&mut self, errors: Vec<Diagnostic>) {
        self.skipped = errors;
    }
    fn entry(&mut self, key: &[u8], value: &[u8]) {
        self.entries.push((key.to_vec(), value.to_vec()));
    }
}

fuzz_target!(|data: &[u8]| {
    let table = Table::parse(data.to_vec(), &ParseOptions::default());
    for rules in [ValueRules::Plain, ValueRules::Virtual, ValueRules::Access] {
        let one_pass = check_source(data, &ParseOptions::default(), true, rules);
        assert_eq!(one_pass, table.findings(true, rules));
    }
    let mut listed = Listed::default();
    dump_source(data, &ParseOptions::default(), true, &mut listed);
    let mut expected = Listed {
        skipped: table.errors(),
        entries: Vec::new(),
    };
    table.for_each_effective_entry(true, |e| {
        expected
            .entries
            .push((e.lookup_key(true).into_owned(), e.value().to_vec()));
    });
    assert_eq!(listed, expected);
    for entry in table.entries() {
        let rule = AccessRule::new(entry);
        let _ = rule.problem();
        let alias = VirtualAlias::new(entry);
        for a in &alias.destinations().addresses {
            let _ = canonicalize(a, Some(b"example.test"));
        }
    }
    let list = parse_address_list(data);
    let _ = list.problem();
    let options = ClosureOptions {
        myorigin: Some(b"example.test".to_vec()),
        recipient_delimiter: b"+-".to_vec(),
        recursion_limit: 50,
        expansion_limit: 50,
        ..ClosureOptions::default()
    };
    let vm = VirtualMap::new(&[&table], options);
    let targets: Vec<Vec<u8>> = table
        .entries()
        .take(4)
        .flat_map(|e| parse_address_list(e.value()).addresses)
        .map(|a| a.0)
        .collect();
    for t in targets {
        let _ = vm.reverse_closure(&Address(t));
    }
});
