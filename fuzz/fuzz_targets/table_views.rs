//! Any bytes read as a virtual map and as an access map: the typed views, address parsing,
//! expansion and the reverse closure never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmig_core::postfix::{
    canonicalize, parse_address_list, AccessRule, Address, ClosureOptions, ParseOptions, Table,
    VirtualAlias, VirtualMap,
};

fuzz_target!(|data: &[u8]| {
    let table = Table::parse(data.to_vec(), &ParseOptions::default());
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
