//! The one random generator training uses (SplitMix64): small, fixed and seeded, so the same data
//! and settings train the same bytes on every machine. It orders examples, drops features out,
//! starts the weights and seeds the codebook's centroids.

/// SplitMix64's finaliser: every bit of `z` moves every bit of the result (also how training
/// spreads names that differ in a character, such as writers `h3` and `h4`, over folds).
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 from a seed.
pub struct SplitMix(pub u64);

impl SplitMix {
    #[inline]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [-1, 1), 24 bits of it.
    #[inline]
    pub fn signed_unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    /// Uniform in [0, 1), 53 bits of it.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_seeded_and_stays_in_range() {
        let (mut a, mut b) = (SplitMix(7), SplitMix(7));
        let first: Vec<u64> = (0..4).map(|_| a.next()).collect();
        assert_eq!(first, (0..4).map(|_| b.next()).collect::<Vec<_>>());
        assert_ne!(first[0], SplitMix(8).next());
        for _ in 0..10_000 {
            let (u, s) = (a.unit(), a.signed_unit());
            assert!((0.0..1.0).contains(&u), "{u}");
            assert!((-1.0..1.0).contains(&s), "{s}");
        }
    }
}
