//! `edit-loop FILE PREFIX COUNT`: add COUNT entries `PREFIX-N@example.test` to a Postfix table
//! through mailmig's transactions (read under the lock, edit, commit). The concurrency test runs
//! several at once on the same file.
#![forbid(unsafe_code)]

use camino::Utf8PathBuf;
use mailmig_core::postfix::{ParseOptions, Table};
use mailmig_core::transaction::{CommitOptions, FileTransaction};

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: edit-loop FILE PREFIX COUNT";
    let file = Utf8PathBuf::from(args.next().expect(usage));
    let prefix = args.next().expect(usage);
    let count: usize = args.next().expect(usage).parse().expect(usage);
    for n in 0..count {
        let tx = FileTransaction::prepare(&file).expect("prepare");
        let mut table = Table::parse(tx.original().to_vec(), &ParseOptions::default());
        table
            .set(
                format!("{prefix}-{n}@example.test").as_bytes(),
                format!("dest-{n}@example.test").as_bytes(),
                true,
            )
            .expect("valid edit");
        tx.commit(&table.render(), &CommitOptions::default())
            .expect("commit");
    }
}
