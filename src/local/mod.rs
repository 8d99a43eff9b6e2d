//! The local tier: one generation per retained window, in process.
//!
//! Integer IDs go to roaring bitmaps (exact), string IDs to a growing bloom filter
//! (no false negatives; a *maybe* goes to the exact tier). The bloom is optional:
//! in front of the in-process memory tier it is bypassed, because every new key
//! is inserted into the exact set anyway, so the bloom only adds a memory access.

pub mod bitmap;
pub mod bloom;

use std::io::{self, Read, Write};

pub use bitmap::ShardedBitmap;
pub use bloom::BloomFilter;

use crate::window::{Generations, WindowIndex};

/// Shards per bitmap generation. The pipeline has one writer, so a few shards
/// only keep each treemap's top-level map small.
pub const BITMAP_SHARDS: usize = 4;

/// What the local tier reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LocalStats {
    /// Integer IDs held in bitmaps.
    pub bitmap_ids: u64,
    /// Bytes of the bitmaps (serialized size).
    pub bitmap_bytes: u64,
    /// Keys inserted into the bloom filters.
    pub bloom_keys: u64,
    /// Bits of the bloom filters.
    pub bloom_bits: u64,
    /// Fraction of the bloom bits set.
    pub bloom_fill: f64,
    /// The chance a new key is reported present now (newest generation).
    pub bloom_expected_fpr: f64,
    /// Sub-filters added by growth (newest generation).
    pub bloom_filters: u64,
}

/// Bitmaps and (optionally) bloom filters, per window.
#[derive(Debug)]
pub struct LocalTier {
    bitmaps: Generations<ShardedBitmap>,
    blooms: Option<Generations<BloomFilter>>,
    fpr: f64,
    bloom_capacity: u64,
}

impl LocalTier {
    /// A local tier; `bloom` says whether string IDs pass a bloom filter.
    pub fn new(bloom: bool, fpr: f64, bloom_capacity: u64) -> LocalTier {
        LocalTier {
            bitmaps: Generations::default(),
            blooms: bloom.then(Generations::default),
            fpr,
            bloom_capacity,
        }
    }

    /// Whether string IDs pass a bloom filter.
    pub fn has_bloom(&self) -> bool {
        self.blooms.is_some()
    }

    /// Checks integer `id` in windows `oldest ..= own` and inserts it into `own`;
    /// returns whether it was seen.
    #[inline]
    pub fn check_insert_int(&mut self, id: u64, oldest: WindowIndex, own: WindowIndex) -> bool {
        let mut seen = false;
        if oldest < own {
            seen = self.bitmaps.range(oldest, WindowIndex(own.0 - 1)).any(|b| b.contains(id));
        }
        let b = self.bitmaps.get_or_insert_with(own, || ShardedBitmap::new(BITMAP_SHARDS));
        seen | !b.insert(id)
    }

    /// Checks bloom hash `h` in windows `oldest ..= own` and inserts it into `own`;
    /// returns whether it may have been seen. Needs a bloom ([`LocalTier::has_bloom`]).
    #[inline]
    pub fn check_insert_bloom(&mut self, h: u64, oldest: WindowIndex, own: WindowIndex) -> bool {
        let (fpr, cap) = (self.fpr, self.bloom_capacity);
        let blooms = self.blooms.as_mut().expect("bloom enabled");
        let mut maybe = false;
        if oldest < own {
            maybe = blooms.range(oldest, WindowIndex(own.0 - 1)).any(|b| b.contains(h));
        }
        let b = blooms.get_or_insert_with(own, || BloomFilter::new(fpr, cap));
        b.insert(h) | maybe
    }

    /// Prefetches the bloom blocks a lookup of `h` in `own` touches.
    #[inline]
    pub fn prefetch_bloom(&self, h: u64, own: WindowIndex) {
        if let Some(blooms) = &self.blooms {
            blooms.range(own, own).for_each(|b| b.prefetch(h));
        }
    }

    /// Drops every generation older than `oldest`.
    pub fn retire_before(&mut self, oldest: WindowIndex) {
        self.bitmaps.retire_before(oldest);
        if let Some(b) = &mut self.blooms {
            b.retire_before(oldest);
        }
    }

    /// Counters for the summary. Scans the bloom bits: call at the end, not per batch.
    pub fn stats(&self) -> LocalStats {
        let mut s = LocalStats {
            bitmap_ids: self.bitmaps.iter().map(|(_, b)| b.len()).sum(),
            bitmap_bytes: self.bitmaps.iter().map(|(_, b)| b.serialized_size() as u64).sum(),
            ..LocalStats::default()
        };
        if let Some(blooms) = &self.blooms {
            s.bloom_keys = blooms.iter().map(|(_, b)| b.len()).sum();
            s.bloom_bits = blooms.iter().map(|(_, b)| b.bits()).sum();
            let ones: f64 = blooms.iter().map(|(_, b)| b.fill() * b.bits() as f64).sum();
            s.bloom_fill = if s.bloom_bits > 0 { ones / s.bloom_bits as f64 } else { 0.0 };
            if let Some((_, newest)) = blooms.iter().last() {
                s.bloom_expected_fpr = newest.expected_fpr();
                s.bloom_filters = newest.filter_count() as u64;
            }
        }
        s
    }

    /// Writes the bitmaps and blooms of every generation.
    pub fn save(&self, w: &mut dyn Write) -> io::Result<()> {
        w.write_all(&(self.bitmaps.len() as u32).to_le_bytes())?;
        for (win, b) in self.bitmaps.iter() {
            w.write_all(&win.0.to_le_bytes())?;
            b.write_to(&mut *w)?;
        }
        match &self.blooms {
            None => w.write_all(&u32::MAX.to_le_bytes())?,
            Some(blooms) => {
                w.write_all(&(blooms.len() as u32).to_le_bytes())?;
                for (win, b) in blooms.iter() {
                    w.write_all(&win.0.to_le_bytes())?;
                    b.write_to(&mut *w)?;
                }
            }
        }
        Ok(())
    }

    /// Reads what [`LocalTier::save`] wrote into a snapshot of format `version`. A
    /// snapshot with blooms loads into a tier without (they are dropped) but not the
    /// other way round.
    pub fn load(&mut self, r: &mut dyn Read, version: u32) -> io::Result<()> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        let n = read_u32(r)?;
        if n > 1 << 20 {
            return Err(bad("too many bitmap generations"));
        }
        let mut bitmaps = Generations::default();
        for _ in 0..n {
            let w = WindowIndex(read_i64(r)?);
            let b = ShardedBitmap::read_from(&mut *r)?;
            *bitmaps.get_or_insert_with(w, || ShardedBitmap::new(1)) = b;
        }
        let n = read_u32(r)?;
        let mut blooms = Generations::default();
        if n != u32::MAX {
            if n > 1 << 20 {
                return Err(bad("too many bloom generations"));
            }
            for _ in 0..n {
                let w = WindowIndex(read_i64(r)?);
                let b = BloomFilter::read_from(&mut *r, version)?;
                *blooms.get_or_insert_with(w, || BloomFilter::new(0.5, 1)) = b;
            }
        } else if self.blooms.is_some() {
            return Err(bad("the snapshot has no bloom filters but this run needs them (was --exact or --local-bloom changed?)"));
        }
        self.bitmaps = bitmaps;
        if self.blooms.is_some() {
            self.blooms = Some(blooms);
        }
        Ok(())
    }
}

pub(crate) fn read_u32(r: &mut dyn Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

pub(crate) fn read_i64(r: &mut dyn Read) -> io::Result<i64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(i64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_per_window() {
        let mut t = LocalTier::new(false, 1e-4, 100);
        let w = WindowIndex;
        assert!(!t.check_insert_int(7, w(0), w(0)));
        assert!(t.check_insert_int(7, w(0), w(0)));
        assert!(t.check_insert_int(7, w(0), w(1)));
        assert!(t.check_insert_int(7, w(1), w(1)));
        t.retire_before(w(2));
        assert!(!t.check_insert_int(7, w(2), w(2)));
        let mut buf = Vec::new();
        t.save(&mut buf).unwrap();
        let mut u = LocalTier::new(false, 1e-4, 100);
        u.load(&mut buf.as_slice(), crate::state::VERSION).unwrap();
        assert!(u.check_insert_int(7, w(2), w(2)));
        let mut v = LocalTier::new(true, 1e-4, 100);
        assert!(v.load(&mut buf.as_slice(), crate::state::VERSION).is_err());
    }

    #[test]
    fn bloom_path() {
        let mut t = LocalTier::new(true, 1e-4, 100);
        let w = WindowIndex;
        assert!(!t.check_insert_bloom(42, w(0), w(0)));
        assert!(t.check_insert_bloom(42, w(0), w(0)));
        assert!(t.check_insert_bloom(42, w(0), w(1)));
        let s = t.stats();
        assert_eq!(s.bloom_keys, 2);
        assert!(s.bloom_bits > 0 && s.bloom_fill > 0.0);
    }
}
