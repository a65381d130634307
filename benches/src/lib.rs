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

/// A passwd-file of `n` records of about 185 bytes, like a real one: SHA512-CRYPT hashes (16-byte
/// salt, 86-byte hash), vmail ids, per-domain homes; a comment every 1000 records.
pub fn big_passwd(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 190);
    for i in 0..n {
        if i % 1000 == 0 {
            out.extend_from_slice(format!("# accounts block {}\n", i / 1000).as_bytes());
        }
        let d = i % 97;
        out.extend_from_slice(
            format!(
                "user{i}@d{d}.example:{{SHA512-CRYPT}}$6$s{:015}$h{:085}:999:995::/srv/mail/d{d}.example/user{i}::\n",
                i, i
            )
            .as_bytes(),
        );
    }
    out
}

/// A user of [`big_passwd`].
pub fn passwd_user(i: usize) -> Vec<u8> {
    format!("user{i}@d{}.example", i % 97).into_bytes()
}
