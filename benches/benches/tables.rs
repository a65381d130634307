//! Table benchmarks on a generated map of 1,000,000 aliases (about 60 MB; set
//! `MAILMIG_BENCH_ALIASES` to change the size, `MAILMIG_BENCH_FILE` to read an existing file).
//! `benches/compare-sed.sh` runs these and a GNU sed pass over the same file.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mailmig_benches::{big_virtual_map, mailbox};
use mailmig_core::postfix::{
    check_source, value_problem, Address, ClosureOptions, ParseOptions, Table, ValueRules,
    VirtualMap,
};

fn input() -> Vec<u8> {
    if let Ok(path) = std::env::var("MAILMIG_BENCH_FILE") {
        return fs_err::read(path).expect("MAILMIG_BENCH_FILE readable");
    }
    let n = std::env::var("MAILMIG_BENCH_ALIASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    big_virtual_map(n)
}

fn tables(c: &mut Criterion) {
    let bytes = input();
    let options = ParseOptions::default();
    let mut g = c.benchmark_group("virtual_1m");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("parse", |b| {
        b.iter_batched(
            || bytes.clone(),
            |v| Table::parse(v, &options),
            BatchSize::LargeInput,
        )
    });
    // What `map check --kind virtual` runs once the file is read: one pass over the records.
    g.bench_function("check_source_virtual", |b| {
        b.iter(|| check_source(&bytes, &options, true, ValueRules::Virtual))
    });
    let table = Table::parse(bytes.clone(), &options);
    g.bench_function("render_vec", |b| b.iter(|| table.render()));
    let values: Vec<&[u8]> = table.entries().map(|e| e.value()).collect();
    g.bench_function("value_problem_every_value", |b| {
        b.iter(|| values.iter().filter(|v| value_problem(v).is_some()).count())
    });
    // The same output as `sed ... > /dev/null`: parse, then write the document to /dev/null.
    let mut devnull = fs_err::File::create("/dev/null").expect("/dev/null");
    g.bench_function("parse_render", |b| {
        b.iter_batched(
            || bytes.clone(),
            |v| {
                let t = Table::parse(v, &options);
                t.write_to(&mut devnull).expect("write to /dev/null");
                t // dropped outside the measurement, as in `parse`
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("write_to_devnull", |b| {
        b.iter(|| table.write_to(&mut devnull).expect("write"))
    });
    g.bench_function("closure_index", |b| {
        b.iter(|| VirtualMap::new(&[&table], ClosureOptions::default()))
    });
    // What `aliases`, `hold add` and a one-user plan run once the map is parsed: the
    // preparation for one closure (no reverse index) and that closure.
    g.bench_function("one_mailbox_prepare_and_closure", |b| {
        b.iter(|| {
            let vm = VirtualMap::for_one_mailbox(&[&table], ClosureOptions::default());
            vm.reverse_closure(&Address(mailbox(12_345)))
        })
    });
    g.bench_function("one_mailbox_prepare", |b| {
        b.iter(|| VirtualMap::for_one_mailbox(&[&table], ClosureOptions::default()))
    });
    let vm = VirtualMap::new(&[&table], ClosureOptions::default());
    g.throughput(Throughput::Elements(1));
    g.bench_function("reverse_closure_one", |b| {
        b.iter(|| vm.reverse_closure(&Address(mailbox(12_345))))
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("reverse_closure_1000_one_pass", |b| {
        b.iter(|| {
            let vm = VirtualMap::new(&[&table], ClosureOptions::default());
            (0..1000)
                .map(|i| {
                    vm.reverse_closure(&Address(mailbox(i * 37)))
                        .addresses
                        .len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, tables);
criterion_main!(benches);
