//! Inputs for mailmig's benchmarks: large, realistic table files, generated deterministically.
#![forbid(unsafe_code)]

/// A virtual alias map of `n` aliases (about 60 bytes each): a comment every 50 records, one in
/// five multi-destination values, one in ten continued over two lines with a comment inside,
/// nested aliases (`list` → `team` → mailbox), and the mailboxes `user0@d0.example` ...
pub fn big_virtual_map(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 64);
    for i in 0..n {
        if i % 50 == 0 {
            out.extend_from_slice(format!("# block {}\n", i / 50).as_bytes());
        }
        let d = i % 97;
        let user = i % 50_000;
        match i % 10 {
            0 => out.extend_from_slice(
                format!(
                    "alias{i}@d{d}.example\tuser{user}@d{d}.example,\n# removed someone\n    user{}@d{d}.example\n",
                    (user + 1) % 50_000
                )
                .as_bytes(),
            ),
            1 | 2 => out.extend_from_slice(
                format!(
                    "team{i}@d{d}.example  user{user}@d{d}.example, user{}@d{d}.example\n",
                    (user + 7) % 50_000
                )
                .as_bytes(),
            ),
            3 => out.extend_from_slice(
                format!("list{i}@d{d}.example  team{}@d{d}.example\n", i.saturating_sub(1)).as_bytes(),
            ),
            _ => out.extend_from_slice(
                format!("a{i}.name@d{d}.example    user{user}@d{d}.example\n").as_bytes(),
            ),
        }
    }
    out
}

/// A mailbox address of [`big_virtual_map`].
pub fn mailbox(i: usize) -> Vec<u8> {
    format!("user{}@d{}.example", i % 50_000, i % 97).into_bytes()
}
