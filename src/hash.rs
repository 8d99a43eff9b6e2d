//! Hashing of string IDs: xxh3 under a seed for the bloom filter's bits, and a
//! keyed 128-bit SipHash-1-3 fingerprint for the exact tier.
//!
//! Two hashes because they guard different things. A bloom collision only costs
//! an exact-tier lookup, so the fast xxh3 is enough. A fingerprint collision in the
//! exact tier would silently drop a unique record; seeded xxh3 does not stop
//! crafted collisions, a keyed PRF does. The [`Seed`] is random per deployment and
//! stored with the state (and in the exact tier's metadata) so every instance and
//! every restart agrees.

use std::hash::Hasher as _;

use siphasher::sip128::{Hasher128, SipHasher13};

/// The per-deployment secrets: the bloom seed and the SipHash key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    /// Seed of the xxh3 bloom hash.
    pub bloom: u64,
    /// SipHash key, first half.
    pub k0: u64,
    /// SipHash key, second half.
    pub k1: u64,
}

impl Seed {
    /// The size of [`Seed::to_bytes`].
    pub const LEN: usize = 24;

    /// A fresh random seed from the operating system.
    pub fn random() -> Seed {
        let mut b = [0u8; Seed::LEN];
        getrandom::getrandom(&mut b).expect("the operating system's random source failed");
        Seed::from_bytes(&b)
    }

    /// Little-endian bytes: bloom, k0, k1.
    pub fn to_bytes(&self) -> [u8; Seed::LEN] {
        let mut b = [0u8; Seed::LEN];
        b[..8].copy_from_slice(&self.bloom.to_le_bytes());
        b[8..16].copy_from_slice(&self.k0.to_le_bytes());
        b[16..].copy_from_slice(&self.k1.to_le_bytes());
        b
    }

    /// The inverse of [`Seed::to_bytes`].
    pub fn from_bytes(b: &[u8; Seed::LEN]) -> Seed {
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        Seed { bloom: word(0), k0: word(8), k1: word(16) }
    }

    /// The bloom filter hash of a key.
    #[inline]
    pub fn bloom_hash(&self, key: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(key, self.bloom)
    }

    /// The exact tier's fingerprint of a key: keyed SipHash-1-3, 128 bits.
    #[inline]
    pub fn fingerprint(&self, key: &[u8]) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(key);
        h.finish128().as_u128()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed of the literal values below.
    const SEED: Seed = Seed { bloom: 1, k0: 2, k1: 3 };

    #[test]
    fn seed_roundtrip_and_keying() {
        let s = Seed::random();
        assert_eq!(Seed::from_bytes(&s.to_bytes()), s);
        // Each part of the seed keys its own hash, and only that one.
        let other_bloom = Seed { bloom: 9, ..SEED };
        let other_k0 = Seed { k0: 9, ..SEED };
        let other_k1 = Seed { k1: 9, ..SEED };
        assert_ne!(other_bloom.bloom_hash(b"abc"), SEED.bloom_hash(b"abc"));
        assert_eq!(other_bloom.fingerprint(b"abc"), SEED.fingerprint(b"abc"));
        assert_ne!(other_k0.fingerprint(b"abc"), SEED.fingerprint(b"abc"));
        assert_ne!(other_k1.fingerprint(b"abc"), SEED.fingerprint(b"abc"));
        assert_eq!(other_k0.bloom_hash(b"abc"), SEED.bloom_hash(b"abc"));
        assert_ne!(SEED.fingerprint(b"abc"), SEED.fingerprint(b"abd"));
    }

    /// Seeds, bloom hashes and fingerprints are a stable format: state
    /// directories and Redis written by one version are read by the next, so
    /// these literals must never change. They were computed independently of
    /// the crates used here: the fingerprints with a plain implementation of the
    /// SipHash reference (checked against its published 128-bit test vectors) at
    /// one compression and three finalization rounds, low half in the low bits;
    /// the bloom hashes with XXH3-64's short-input steps from its specification.
    #[test]
    fn stable_values() {
        assert_eq!(
            SEED.to_bytes(),
            [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(SEED.fingerprint(b"request-1"), 0xb373708c2a67aae9047edd4d461e86f6);
        assert_eq!(SEED.fingerprint(b"abc"), 0x103aa3581d8065e1b85f4fdb293d3376);
        assert_eq!(SEED.fingerprint(b""), 0x73dc5e9fe6826cecfc152a86857e1098);
        assert_eq!(SEED.bloom_hash(b"request-1"), 0x23afb5bf51eba6eb);
        assert_eq!(SEED.bloom_hash(b""), 0x4dc5b0cc826f6703);
    }
}
