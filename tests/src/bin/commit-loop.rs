//! `commit-loop FILE`: commit two different contents to FILE alternately, forever, through
//! mailmig's transactions. The crash test kills it with SIGKILL at random moments.
#![forbid(unsafe_code)]

use camino::Utf8PathBuf;
use mailmig_core::transaction::{CommitOptions, FileTransaction};

fn main() {
    let file = Utf8PathBuf::from(std::env::args().nth(1).expect("usage: commit-loop FILE"));
    let a = mailmig_tests::crash_content(b'a');
    let b = mailmig_tests::crash_content(b'b');
    loop {
        let tx = FileTransaction::prepare(&file).expect("prepare");
        let next = if tx.original() == a.as_slice() {
            &b
        } else {
            &a
        };
        tx.commit(next, &CommitOptions::default()).expect("commit");
    }
}
