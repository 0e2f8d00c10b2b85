//! A small pseudo-random sequence for tests that act at random moments, seeded from
//! the clock or an environment variable and printed, so a failure can be replayed.

use std::time::{SystemTime, UNIX_EPOCH};

pub struct Dice(u64);

impl Dice {
    /// Seeded from `$seed_var` when set, else from the clock; prints the seed.
    pub fn new(seed_var: &str) -> Dice {
        let seed = std::env::var(seed_var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("seed: {seed_var}={seed}");
        Dice(seed | 1)
    }

    /// A number in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
