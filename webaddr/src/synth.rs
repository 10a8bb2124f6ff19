//! Synthetic lists for benchmarks and measurements: deterministic, realistic-looking names
//! (random labels of 5 to 12 letters and digits under common suffixes, a quarter of them with
//! one or two more labels in front, as phishing lists are).

/// Suffixes drawn from, with the two-label ones the walk must stop above.
const SUFFIXES: &[&str] = &[
    "com", "net", "org", "info", "xyz", "top", "co.uk", "de", "ru", "com.br", "online", "site",
];

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
    }

    /// A label of 5 to 12 lowercase letters and digits.
    pub fn label(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = 5 + self.below(8);
        (0..len)
            .map(|_| {
                char::from(
                    ALPHABET
                        .get(self.below(ALPHABET.len()))
                        .copied()
                        .unwrap_or(b'a'),
                )
            })
            .collect()
    }

    /// A registrable domain under one of the common suffixes.
    pub fn domain(&mut self) -> String {
        let suffix = SUFFIXES
            .get(self.below(SUFFIXES.len()))
            .copied()
            .unwrap_or("com");
        format!("{}.{suffix}", self.label())
    }

    /// A list entry: a domain, a quarter of them with one or two labels in front.
    pub fn entry(&mut self) -> String {
        let d = self.domain();
        match self.below(8) {
            0 => format!("{}.{d}", self.label()),
            1 => format!("{}.{}.{d}", self.label(), self.label()),
            _ => d,
        }
    }
}

/// `n` distinct-looking list entries, one a line.
pub fn domain_list(n: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(n * 20);
    for _ in 0..n {
        out.push_str(&rng.entry());
        out.push('\n');
    }
    out
}
