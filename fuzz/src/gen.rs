//! The input generator: a seeded SplitMix64 stream of byte strings, each a mix of random
//! bytes and pieces of the target's dictionary, so that inputs reach past the first check a
//! parser makes without any coverage feedback.

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// One input of up to `max_len` bytes (usually far fewer: short inputs are the likeliest to
/// reach an edge).
pub fn input(rng: &mut Rng, dict: &[&[u8]], max_len: usize) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => rng.below(64),
        1 | 2 => rng.below(1024),
        _ => rng.below(max_len),
    };
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        match rng.below(8) {
            0..=3 if !dict.is_empty() => out.extend_from_slice(dict[rng.below(dict.len())]),
            4 => out.extend_from_slice(b"\r\n"),
            5 => out.extend(std::iter::repeat_n(b"[{ \"a9.*>\\\r\n\0\xff"[rng.below(14)], rng.below(64))),
            _ => {
                let n = rng.below(16);
                out.extend((0..n).map(|_| rng.next_u64() as u8));
            }
        }
    }
    out.truncate(len);
    out
}
