//! `parse-once FILE [N] [--no-render]`: parse (and render) FILE N times; for profilers.
#![forbid(unsafe_code)]

use mailmig_core::postfix::{ParseOptions, Table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = args
        .first()
        .ok_or("usage: parse-once FILE [N] [--no-render]")?;
    let n: usize = args.get(1).map_or(Ok(1), |s| s.parse())?;
    let render = !args.iter().any(|a| a == "--no-render");
    let bytes = fs_err::read(file)?;
    let mut total = 0;
    for _ in 0..n {
        let t = Table::parse(bytes.clone(), &ParseOptions::default());
        total += t.items().count();
        if render {
            total += t.render().len();
        }
    }
    std::hint::black_box(total);
    Ok(())
}
