//! One entry per ID: the retained windows it was seen in. Used where `--retain K`
//! is large, so that the cost of a record does not grow with K.
//!
//! A record of window `w` is a duplicate iff an earlier record with its ID fell in
//! a retained window `oldest ..= w` (see [`crate::window`]). One set per window
//! answers that with up to K lookups per record; this index answers it with one
//! hash lookup, whatever K is:
//!
//! - Each ID maps to the windows it was seen in, ascending ([`Windows`]): nearly
//!   always one window, inline. A record's question is "is the first window at or
//!   after `oldest` also at or before `w`?" Windows older than `oldest` are dropped
//!   from the front as the entry is met, so after that the answer is the front
//!   alone: O(1). In-order records append at the back (O(1)); a record older than
//!   its ID's newest window is inserted in place, moving the windows after it
//!   (as many as the ID has between the record's window and the newest: none for
//!   in-order streams, a few for jittered event times).
//! - The newest window alone would not do: a late record in window 6 of an ID
//!   seen in windows 2 and 8 must know whether anything fell in `oldest ..= 6`;
//!   with `oldest` = 3 the answer is no, with `oldest` = 2 it is yes. Keeping every
//!   retained window is what keeps out-of-order records exact.
//! - Stale entries (every window below `oldest`) are reclaimed by a sweep each time
//!   the index has doubled since the last sweep: a sweep costs O(entries) and
//!   follows at least as many inserts, so it is O(1) per record amortized, and the
//!   index holds at most twice the live IDs. Rotation itself is O(1): it only moves
//!   `oldest`, which every lookup compares against.
//!
//! Memory: one hash-table slot per ID (key and an inline window, ~32-40 B with the
//! table's load) against one fingerprint per (ID, window) pair in per-window sets
//! (~22 B each): more per ID that occurs in one window, less for IDs that recur
//! across many windows.

use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};

/// Sweep no sooner than at this many entries (a small index is never worth it).
const MIN_SWEEP: usize = 1 << 12;

/// The windows an ID was seen in, ascending, no repeats. May hold windows that
/// have fallen out (below `oldest`) until the entry is next met or swept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Windows {
    /// One window (nearly every ID).
    One(i64),
    /// Two or more (boxed: keeps the slot at 16 bytes for the many IDs with one).
    Many(Box<Vec<i64>>),
}

impl Windows {
    /// Whether a window in `oldest ..= own` is held; then inserts `own`. Drops the
    /// windows below `oldest` on the way.
    #[inline]
    pub fn check_insert(&mut self, oldest: i64, own: i64) -> bool {
        match self {
            Windows::One(x) => {
                let x = *x;
                if x == own {
                    return true;
                }
                if x < oldest {
                    *self = Windows::One(own);
                    return false;
                }
                *self = Windows::Many(Box::new(if x < own { vec![x, own] } else { vec![own, x] }));
                x < own
            }
            Windows::Many(v) => {
                let stale = v.partition_point(|&x| x < oldest);
                v.drain(..stale);
                let at = v.partition_point(|&x| x < own);
                // After the drop the front is the first retained window: a hit iff
                // it is at or before `own`.
                let seen = v.first().is_some_and(|&x| x <= own);
                if v.get(at) != Some(&own) {
                    v.insert(at, own);
                }
                if v.len() == 1 {
                    *self = Windows::One(v[0]);
                }
                seen
            }
        }
    }

    /// Drops the windows below `oldest`; false if none is left.
    fn prune(&mut self, oldest: i64) -> bool {
        match self {
            Windows::One(x) => *x >= oldest,
            Windows::Many(v) => {
                let stale = v.partition_point(|&x| x < oldest);
                v.drain(..stale);
                match v.len() {
                    0 => false,
                    1 => {
                        *self = Windows::One(v[0]);
                        true
                    }
                    _ => true,
                }
            }
        }
    }

    /// Windows held on the heap (a list's capacity).
    #[inline]
    fn heap(&self) -> usize {
        match self {
            Windows::One(_) => 0,
            Windows::Many(v) => v.capacity(),
        }
    }

    /// The windows, ascending.
    pub fn as_slice(&self) -> &[i64] {
        match self {
            Windows::One(x) => std::slice::from_ref(x),
            Windows::Many(v) => v,
        }
    }

    /// The newest window.
    pub fn newest(&self) -> i64 {
        *self.as_slice().last().expect("never empty")
    }
}

/// A key the index holds: an integer ID, a 64-bit bloom hash or a 128-bit
/// fingerprint.
pub trait SeenKey: Copy + Eq + Hash + Ord {}
impl SeenKey for u64 {}
/// A 128-bit fingerprint as two words: 8-byte alignment keeps a slot at 32 bytes
/// (a `u128` key is 16-aligned and pads it to 48).
impl SeenKey for [u64; 2] {}

/// Hashes a key by folding a 128-bit multiply (the foldhash/wyhash mix): integer
/// IDs are not random, and hashbrown takes both the low bits (bucket) and the top
/// seven (control byte) from the hash.
#[derive(Debug, Clone, Copy, Default)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        let m = u128::from(self.0 ^ x ^ 0x243f_6a88_85a3_08d3).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
    #[inline]
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, _: usize) {
        // The length prefix `[u64; 2]` hashes first: constant, nothing to mix.
    }
}

/// Builds [`FoldHasher`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildFold;

impl BuildHasher for BuildFold {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher::default()
    }
}

/// IDs and the retained windows each was seen in.
#[derive(Debug, Clone)]
pub struct SeenIndex<K> {
    map: HashMap<K, Windows, BuildFold>,
    /// The oldest retained window as last told ([`SeenIndex::retire_before`]).
    oldest: i64,
    /// Sweep stale entries when the index reaches this many.
    sweep_at: usize,
    /// Windows held in lists on the heap, kept up to date so that [`SeenIndex::bytes`]
    /// is O(1) (the pipeline asks for a tier's counters after each batch).
    heap: usize,
}

impl<K: SeenKey> Default for SeenIndex<K> {
    fn default() -> Self {
        SeenIndex { map: HashMap::default(), oldest: i64::MIN, sweep_at: MIN_SWEEP, heap: 0 }
    }
}

impl<K: SeenKey> SeenIndex<K> {
    /// An empty index.
    pub fn new() -> SeenIndex<K> {
        SeenIndex::default()
    }

    /// Whether `key` was seen in a window of `oldest ..= own`; then inserts it into
    /// `own`.
    #[inline]
    pub fn check_insert(&mut self, key: K, oldest: i64, own: i64) -> bool {
        if self.map.len() >= self.sweep_at {
            self.sweep(oldest);
        }
        match self.map.entry(key) {
            Entry::Occupied(mut e) => {
                let ws = e.get_mut();
                let before = ws.heap();
                let seen = ws.check_insert(oldest, own);
                self.heap = self.heap + ws.heap() - before;
                seen
            }
            Entry::Vacant(e) => {
                e.insert(Windows::One(own));
                false
            }
        }
    }

    /// Every window below `oldest` has fallen out. O(1): entries are pruned when
    /// met or swept.
    pub fn retire_before(&mut self, oldest: i64) {
        self.oldest = self.oldest.max(oldest);
    }

    /// Drops the stale entries and the stale windows of the others; the next sweep
    /// comes when the index has doubled.
    fn sweep(&mut self, oldest: i64) {
        let oldest = self.oldest.max(oldest);
        self.oldest = oldest;
        self.map.retain(|_, w| w.prune(oldest));
        self.heap = self.map.values().map(Windows::heap).sum();
        self.sweep_at = (2 * self.map.len()).max(MIN_SWEEP);
    }

    /// IDs held (stale ones not yet swept included).
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held: the table's slots and the window lists.
    pub fn bytes(&self) -> u64 {
        let slot = std::mem::size_of::<(K, Windows)>() + 1;
        (self.map.capacity() * slot + self.heap * 8) as u64
    }

    /// Every (window, key) pair in a window at or after `oldest`, ordered by
    /// window, then key: the per-window layout snapshots use.
    pub fn pairs(&self) -> Vec<(i64, K)> {
        let oldest = self.oldest;
        let mut v: Vec<(i64, K)> = self
            .map
            .iter()
            .flat_map(|(k, w)| w.as_slice().iter().filter(move |&&x| x >= oldest).map(|&x| (x, *k)))
            .collect();
        v.sort_unstable();
        v
    }

    /// Records `key` as seen in window `w` (loading a snapshot).
    pub fn insert(&mut self, key: K, w: i64) {
        self.check_insert(key, i64::MIN, w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap as Model};

    #[test]
    fn windows_answer_for_the_retained_range_only() {
        let mut w = Windows::One(5);
        assert!(w.check_insert(0, 5));
        assert!(!w.check_insert(0, 4), "window 5 is after 4");
        assert_eq!(w.as_slice(), [4, 5]);
        assert!(w.check_insert(4, 6));
        assert_eq!(w.as_slice(), [4, 5, 6]);
        assert_eq!(std::mem::size_of::<([u64; 2], Windows)>(), 32);
        // Window 4 fell out; 5 is the first retained.
        assert!(w.check_insert(5, 5));
        assert_eq!(w.as_slice(), [5, 6]);
        assert!(!w.check_insert(7, 7));
        assert_eq!(w, Windows::One(7));
        let mut w = Windows::One(2);
        assert!(!w.check_insert(3, 9));
        assert_eq!(w, Windows::One(9));
    }

    /// Against a model (a set of windows per ID, the DESIGN rule) on a stream of
    /// jittered windows over a clock that moves forward, with sweeps on.
    #[test]
    fn index_matches_a_model_out_of_order() {
        for retain in [1i64, 2, 5, 40, 1000] {
            let mut idx: SeenIndex<u64> = SeenIndex::new();
            let mut model: Model<u64, BTreeSet<i64>> = Model::new();
            let mut newest = i64::MIN;
            let mut x = 0x1234_5678u64;
            for i in 0..60_000i64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let w = i / 50 - (x % 97) as i64 % 30;
                newest = newest.max(w);
                let oldest = newest - retain + 1;
                if w < oldest {
                    continue;
                }
                idx.retire_before(oldest);
                let id = (x >> 20) % 3000;
                let s = model.entry(id).or_default();
                let want = s.range(oldest..=w).next().is_some();
                s.insert(w);
                assert_eq!(idx.check_insert(id, oldest, w), want, "retain {retain}, record {i}");
            }
            assert!(idx.len() <= 2 * 3000 + MIN_SWEEP as u64);
        }
    }

    /// The running count of listed windows is what a count from scratch gives.
    #[test]
    fn bytes_are_counted_as_they_change() {
        let mut idx: SeenIndex<u64> = SeenIndex::new();
        for i in 0..20_000i64 {
            idx.check_insert((i % 300) as u64, i / 100 - 20, i / 100 - (i % 7));
        }
        let heap: usize = idx.map.values().map(Windows::heap).sum();
        assert!(heap > 300, "lists were made");
        assert_eq!(idx.heap, heap);
    }

    #[test]
    fn stale_entries_are_swept() {
        let mut idx: SeenIndex<[u64; 2]> = SeenIndex::new();
        for i in 0..100_000u64 {
            let w = (i / 100) as i64;
            idx.retire_before(w - 9);
            assert!(!idx.check_insert([i, !i], w - 9, w));
        }
        // Ten windows of 100 live; sweeps keep it within twice the peak since.
        assert!(idx.len() <= 2 * MIN_SWEEP as u64, "{}", idx.len());
        let pairs = idx.pairs();
        assert!(pairs.iter().all(|&(w, _)| w >= 990));
        assert!(pairs.windows(2).all(|p| p[0] < p[1]));
    }
}
