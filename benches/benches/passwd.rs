//! passwd-file benchmarks on a generated file of 1,000,000 records (about 185 MB; set
//! `MAILMIG_BENCH_USERS` to change the size, `MAILMIG_BENCH_PASSWD` to read an existing file).
//! `benches/compare-sed.sh` runs these and a GNU sed pass over the same file.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mailmig_benches::{big_passwd, passwd_user};
use mailmig_core::dovecot::{NumericIds, PasswdFile, PasswdOptions};

fn input() -> (Vec<u8>, usize) {
    let n = std::env::var("MAILMIG_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if let Ok(path) = std::env::var("MAILMIG_BENCH_PASSWD") {
        return (
            fs_err::read(path).expect("MAILMIG_BENCH_PASSWD readable"),
            n,
        );
    }
    (big_passwd(n), n)
}

fn passwd(c: &mut Criterion) {
    let (bytes, n) = input();
    let options = PasswdOptions::default();
    let mut g = c.benchmark_group("passwd_1m");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut devnull = fs_err::File::create("/dev/null").expect("/dev/null");
    g.bench_function("parse", |b| {
        b.iter_batched(
            || bytes.clone(),
            |v| PasswdFile::parse(v, &options),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("parse_render", |b| {
        b.iter_batched(
            || bytes.clone(),
            |v| {
                let f = PasswdFile::parse(v, &options);
                f.write_to(&mut devnull).expect("write");
                f
            },
            BatchSize::LargeInput,
        )
    });
    // What `passwd check` runs once the file is read: Dovecot's load beside the line checks.
    let parsed = PasswdFile::parse(bytes.clone(), &options);
    g.bench_function("diagnostics", |b| {
        b.iter(|| parsed.diagnostics(&NumericIds))
    });
    drop(parsed);
    // The lock-out edit mailmig makes: one extra field on one user near the end, then write.
    let user = passwd_user(n * 9 / 10);
    g.bench_function("parse_edit_render", |b| {
        b.iter_batched(
            || bytes.clone(),
            |v| {
                let mut f = PasswdFile::parse(v, &options);
                f.set_extra(&user, b"allow_nets", Some(b""), &NumericIds)
                    .expect("user exists");
                f.write_to(&mut devnull).expect("write");
                f
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, passwd);
criterion_main!(benches);
