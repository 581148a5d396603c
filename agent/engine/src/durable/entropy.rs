//! The randomness a run draws: its `random` imports and its retry jitter.
//! The operating system's normally; under a simulation, a generator seeded
//! from the simulation, so a schedule replays bit for bit.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A run's source of randomness.
pub trait Entropy: Send + Sync {
    /// The next 64 random bits.
    fn next_u64(&self) -> u64;

    /// A number in `0.0..1.0`.
    fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `len` random bytes.
    fn bytes(&self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// The operating system's randomness.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn next_u64(&self) -> u64 {
        rand::random()
    }
}

/// A generator seeded once: the same seed draws the same numbers.
pub struct SeededEntropy(Mutex<StdRng>);

impl SeededEntropy {
    /// Draws from `seed`.
    pub fn new(seed: u64) -> SeededEntropy {
        SeededEntropy(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl Entropy for SeededEntropy {
    fn next_u64(&self) -> u64 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_numbers_and_units_stay_in_range() {
        let (a, b) = (SeededEntropy::new(7), SeededEntropy::new(7));
        assert_eq!(a.bytes(13), b.bytes(13));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(SeededEntropy::new(8).next_u64(), SeededEntropy::new(7).next_u64());
        for _ in 0..1000 {
            let u = a.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
        assert_eq!(OsEntropy.bytes(5).len(), 5);
    }
}
