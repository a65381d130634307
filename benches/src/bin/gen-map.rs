//! `gen-map N FILE`: write the benchmark virtual map of N aliases to FILE.
#![forbid(unsafe_code)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().ok_or("usage: gen-map N FILE")?.parse()?;
    let file = args.next().ok_or("usage: gen-map N FILE")?;
    fs_err::write(file, mailmig_benches::big_virtual_map(n))?;
    Ok(())
}
