//! Deterministic pseudo-random numbers for the generator.
//!
//! The datasets must be byte-for-byte reproducible from their spec and seed on any
//! machine and any version of any crate, so the harness carries its own small
//! generators instead of depending on a crate whose stream may change between
//! releases: SplitMix64 expands the seed, xoshiro256** draws the numbers (both are
//! published public-domain algorithms, written out here from their definitions).

/// SplitMix64: one 64-bit state, used to expand a seed into xoshiro's state and
/// as a stateless mixer (`mix`) for per-record derived values.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Starts the sequence at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next value of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
}

/// SplitMix64's finaliser: a bijective avalanche of one word. Used to derive the
/// fields of a record from its seed, so a duplicate that copies the seed renders
/// byte-identical fields without storing them.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256**: the generator's main stream.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seeds the four state words from SplitMix64, as the algorithm's authors advise
    /// (a state of all zeros would be a fixed point).
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        Rng { s: [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()] }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)` for `n > 0` (Lemire's multiply-shift; the bias is below
    /// 2^-64 · n and irrelevant for a benchmark corpus).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }
}

/// A distance in `1..=max` drawn from a bounded power law with exponent `s`
/// (`P(d) ∝ d^-s`): the continuous inverse-CDF approximation of a Zipf law over
/// distances, O(1) per draw and exact in its range. `s = 0` is uniform.
pub fn power_law(u: f64, max: u64, s: f64) -> u64 {
    let b = max as f64 + 1.0;
    let x = if s == 0.0 {
        1.0 + u * (b - 1.0)
    } else if (s - 1.0).abs() < 1e-9 {
        b.powf(u)
    } else {
        let e = 1.0 - s;
        ((b.powf(e) - 1.0) * u + 1.0).powf(1.0 / e)
    };
    (x as u64).clamp(1, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::new(1);
        for n in [1, 2, 3, 10, 1 << 40] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
    }

    #[test]
    fn power_law_prefers_short_distances() {
        let mut r = Rng::new(3);
        let (mut near, mut far) = (0, 0);
        for _ in 0..10_000 {
            let d = power_law(r.next_f64(), 1000, 1.2);
            assert!((1..=1000).contains(&d));
            if d <= 10 {
                near += 1;
            } else if d > 500 {
                far += 1;
            }
        }
        assert!(near > 5 * far, "near {near} far {far}");
        for _ in 0..1000 {
            assert_eq!(power_law(r.next_f64(), 1, 1.0), 1);
        }
    }
}
