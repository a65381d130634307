//! A deterministic generator of tricky but realistic Postfix table files, for differential tests
//! and benchmarks.

/// A small xorshift generator: deterministic, no dependencies.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    /// Next raw value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `pct`%.
    pub fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
    /// One element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const LOCALS: &[&str] = &[
    "alice", "Bob", "carol", "dave", "team", "ALL", "info", "j.smith", "x-y",
];
const DOMAINS: &[&str] = &[
    "example.test",
    "Example.TEST",
    "other.test",
    "sub.example.test",
];

fn address(rng: &mut Rng) -> String {
    format!(
        "{}{}@{}",
        rng.pick(LOCALS),
        rng.below(40),
        rng.pick(DOMAINS)
    )
}

/// A generated map: many edge cases mixed, `lines` logical records or so.
pub fn tricky_map(rng: &mut Rng, lines: usize) -> Vec<u8> {
    let crlf = rng.chance(20);
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::new();
    for _ in 0..lines {
        let mut line: Vec<u8> = match rng.below(24) {
            0 => b"# a comment".to_vec(),
            1 => b"   # indented comment".to_vec(),
            2 => Vec::new(),
            3 => b" \t ".to_vec(),
            4 => format!("  orphan {}", address(rng)).into_bytes(),
            5 => format!("{}:\t{}", address(rng), address(rng)).into_bytes(),
            6 => address(rng).into_bytes(),
            7 => format!("{}   ", address(rng)).into_bytes(),
            8 => format!(
                "\"{} {}\"@x.test  {}",
                rng.pick(LOCALS),
                rng.below(9),
                address(rng)
            )
            .into_bytes(),
            9 => format!("\"unbalanced{}@x.test v", rng.below(9)).into_bytes(),
            10 => format!("{}\\ x@y.test v", rng.pick(LOCALS)).into_bytes(),
            11 => {
                let mut l = format!("{}  {},", address(rng), address(rng)).into_bytes();
                for _ in 0..rng.below(3) + 1 {
                    l.extend_from_slice(eol);
                    if rng.chance(30) {
                        l.extend_from_slice(b"# removed");
                        l.extend_from_slice(eol);
                    }
                    if rng.chance(20) {
                        l.extend_from_slice(eol);
                    }
                    l.extend_from_slice(if rng.chance(50) { b"\t" } else { b"    " });
                    l.extend_from_slice(address(rng).as_bytes());
                }
                l
            }
            12 => format!("{}\t{}  ", address(rng), address(rng)).into_bytes(),
            13 => format!("{} {} # not a comment", address(rng), address(rng)).into_bytes(),
            14 => {
                let mut l = format!("latin{}", rng.below(9)).into_bytes();
                l.push(0xe9);
                l.extend_from_slice(b"@x.test v");
                l
            }
            15 => format!("\u{dc}ber{}@x.test  Stra\u{df}e", rng.below(9)).into_bytes(),
            16 => format!("@{}  {}", rng.pick(DOMAINS), address(rng)).into_bytes(),
            17 => format!("{}  REJECT go away", address(rng)).into_bytes(),
            _ => format!(
                "{}{}{}",
                address(rng),
                rng.pick(&[" ", "\t", "   ", " \t "]),
                address(rng)
            )
            .into_bytes(),
        };
        if rng.chance(4) {
            // A NUL byte anywhere in the line (or in one of its continuation lines): Postfix
            // 3.9 and later warn about it, earlier ones read up to it silently.
            let at = rng.below(line.len() + 1);
            line.insert(at, 0);
        }
        out.extend_from_slice(&line);
        out.extend_from_slice(eol);
    }
    if rng.chance(25) {
        // No final newline.
        while out.last() == Some(&b'\n') || out.last() == Some(&b'\r') {
            out.pop();
        }
    }
    out
}
