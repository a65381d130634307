//! `gen-input virtual|passwd N FILE`: write a benchmark input of N records to FILE.
#![forbid(unsafe_code)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: gen-input virtual|passwd N FILE";
    let mut args = std::env::args().skip(1);
    let kind = args.next().ok_or(usage)?;
    let n: usize = args.next().ok_or(usage)?.parse()?;
    let file = args.next().ok_or(usage)?;
    let bytes = match kind.as_str() {
        "virtual" => mailmig_benches::big_virtual_map(n),
        "passwd" => mailmig_benches::big_passwd(n),
        _ => return Err(usage.into()),
    };
    fs_err::write(file, bytes)?;
    Ok(())
}
