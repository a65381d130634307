//! End-to-end one-record edits, fsyncs included: lock, read, parse, edit, render, write the
//! temporary file, fsync, rename, fsync the directory — on a 1,000,000-alias virtual map and a
//! 1,000,000-user passwd-file in a temporary directory on disk (`MAILMIG_BENCH_DIR` to choose).

use camino::Utf8PathBuf;
use criterion::{criterion_group, criterion_main, Criterion};
use mailmig_benches::{big_passwd, big_virtual_map, passwd_user};
use mailmig_core::dovecot::{NumericIds, PasswdFile, PasswdOptions};
use mailmig_core::postfix::{ParseOptions, Table};
use mailmig_core::transaction::{CommitOptions, FileTransaction};

fn commit(c: &mut Criterion) {
    let dir = match std::env::var("MAILMIG_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d),
        Err(_) => tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")),
    }
    .expect("tempdir");
    let root = Utf8PathBuf::try_from(dir.path().to_path_buf()).expect("utf8");
    let map = root.join("virtual");
    fs_err::write(&map, big_virtual_map(1_000_000)).expect("write map");
    let users = root.join("users");
    fs_err::write(&users, big_passwd(1_000_000)).expect("write passwd");
    let mut g = c.benchmark_group("commit_1m");
    g.sample_size(10);
    let mut n = 0u64;
    g.bench_function("virtual_set_one_alias", |b| {
        b.iter(|| {
            n += 1;
            let tx = FileTransaction::prepare(&map).expect("prepare");
            let mut t = Table::parse(tx.original().to_vec(), &ParseOptions::default());
            t.set(
                b"bench@d1.example",
                format!("user{n}@d1.example").as_bytes(),
                true,
            )
            .expect("valid");
            tx.commit(&t.render(), &CommitOptions::default())
                .expect("commit")
        })
    });
    let user = passwd_user(900_000);
    g.bench_function("passwd_set_one_field", |b| {
        b.iter(|| {
            n += 1;
            let tx = FileTransaction::prepare(&users).expect("prepare");
            let mut f = PasswdFile::parse(tx.original().to_vec(), &PasswdOptions::default());
            f.set_extra(
                &user,
                b"reason",
                Some(format!("r{n}").as_bytes()),
                &NumericIds,
            )
            .expect("valid");
            tx.commit(&f.render(), &CommitOptions::default())
                .expect("commit")
        })
    });
    g.finish();
}

criterion_group!(benches, commit);
criterion_main!(benches);
