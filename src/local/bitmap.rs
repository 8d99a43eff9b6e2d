//! Integer IDs in roaring bitmaps, sharded by container.
//!
//! Roaring is exact, so the integer path needs no exact tier. Shards are chosen
//! by `(id >> 16) % S`, the roaring container, not by a hash of the whole ID: IDs
//! that share a container share a shard, which keeps the locality that makes
//! roaring small, and lets each shard have one writer.

use std::io::{self, Read, Write};

use roaring::RoaringTreemap;

/// The integer IDs of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardedBitmap {
    shards: Vec<RoaringTreemap>,
}

impl ShardedBitmap {
    /// An empty set with `shards` shards (at least 1).
    pub fn new(shards: usize) -> ShardedBitmap {
        ShardedBitmap { shards: vec![RoaringTreemap::new(); shards.max(1)] }
    }

    #[inline]
    fn shard(&self, id: u64) -> usize {
        ((id >> 16) % self.shards.len() as u64) as usize
    }

    /// Inserts `id`; returns whether it was new.
    #[inline]
    pub fn insert(&mut self, id: u64) -> bool {
        let s = self.shard(id);
        self.shards[s].insert(id)
    }

    /// Whether `id` is present.
    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        self.shards[self.shard(id)].contains(id)
    }

    /// Every ID, shard by shard.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// How many IDs are held.
    pub fn len(&self) -> u64 {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }

    /// Bytes of the serialized form: a close estimate of the memory held.
    pub fn serialized_size(&self) -> usize {
        self.shards.iter().map(|s| s.serialized_size()).sum()
    }

    /// Writes the shard count and each shard in roaring's portable treemap format.
    pub fn write_to<W: Write>(&self, mut w: W) -> io::Result<()> {
        w.write_all(&(self.shards.len() as u32).to_le_bytes())?;
        for s in &self.shards {
            w.write_all(&(s.serialized_size() as u64).to_le_bytes())?;
            s.serialize_into(&mut w)?;
        }
        Ok(())
    }

    /// Reads what [`ShardedBitmap::write_to`] wrote.
    pub fn read_from<R: Read>(mut r: R) -> io::Result<ShardedBitmap> {
        let mut n = [0u8; 4];
        r.read_exact(&mut n)?;
        let n = u32::from_le_bytes(n) as usize;
        if n == 0 || n > 1 << 16 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad bitmap shard count"));
        }
        let mut shards = Vec::with_capacity(n);
        for _ in 0..n {
            let mut len = [0u8; 8];
            r.read_exact(&mut len)?;
            let len = u64::from_le_bytes(len);
            let mut take = (&mut r).take(len);
            shards.push(RoaringTreemap::deserialize_from(&mut take)?);
            if take.limit() != 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bitmap length mismatch"));
            }
        }
        Ok(ShardedBitmap { shards })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_roundtrip() {
        let mut b = ShardedBitmap::new(4);
        assert!(b.insert(5));
        assert!(!b.insert(5));
        assert!(b.insert(u64::MAX));
        assert!(b.insert(1 << 40));
        assert!(b.contains(1 << 40));
        assert!(!b.contains(6));
        assert_eq!(b.len(), 3);
        let mut buf = Vec::new();
        b.write_to(&mut buf).unwrap();
        let c = ShardedBitmap::read_from(buf.as_slice()).unwrap();
        assert_eq!(b, c);
        assert!(ShardedBitmap::read_from(&buf[..buf.len() - 1]).is_err());
    }
}
