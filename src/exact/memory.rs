//! The in-process exact tier: 128-bit fingerprints per window.
//!
//! A [`FingerprintSet`] is 16 open-addressing tables chosen by the fingerprint's
//! top bits. Each table is an array of 64-byte buckets (one cache line, four
//! `u128` slots, 0 = empty) probed linearly bucket by bucket. Nothing is ever
//! deleted (a window is dropped whole), so the first empty slot ends every probe.
//! An insert of a new fingerprint walks to the end of its cluster: on average 1.4
//! buckets at a load of 0.6, 3.2 at 0.8 and 9 at 0.9 (simulated), each a cache
//! miss that waits for the one before. The memory tier therefore inserts a batch
//! with many walks in flight at once ([`FingerprintSet::insert_all`]), and with a
//! helper thread, on two cores: a core keeps only so many misses in flight
//! (profiled: over half of the inserting thread's time waits at the prefetch that
//! starts a walk), and the tables' groups are independent.
//!
//! Growth: a table grows ×1.5 at a load of 0.9, in its own memory (moved and
//! lengthened with `mremap`, then re-placed from the top down). Each table follows
//! the size schedule 4 × 1.5^step buckets, table i starting i/16 of a step along
//! it, so at any moment their loads spread over [0.6, 0.9] instead of all dropping
//! together: ~22 B per ID (16 B / mean load), and no old and new copy of a table
//! are ever resident together. (One `HashSet<u128>` costs 17 B per slot at a load
//! that swings between 0.44 and 0.875 and briefly holds two tables.)
//!
//! Pages: the tables are ~200 MB at 9M IDs, far beyond what the TLB maps in 4 KiB
//! pages, and a lookup is one random cache line, so huge pages matter (measured:
//! ~10 % less CPU over a 10M-line run). A grown tail gets huge pages only where it
//! covers whole aligned 2 MiB pages, so once a table passes 8 MiB its size is
//! rounded to whole huge pages ([`HugeBuf::whole_pages`]), and on passing it the
//! table is copied into a fresh mapping rather than moved (moved small pages stay
//! small). Below 8 MiB the sizes stay exact: rounding 16 small tables to 2 MiB
//! steps would bring them into step with each other (35 B per ID at 1.9M IDs,
//! measured). Why 16 tables: 64 tables would be ~3 MiB each at 9M IDs, below 8 MiB
//! and so on small pages, and 8 spread their loads less evenly (24.3 B per ID of
//! peak RSS at 9M IDs, against 23.0).

use std::io::{self, Read, Write};
use std::sync::Mutex;

use super::helper::Helper;
use super::hugebuf::{prefetch, HugeBuf};
use super::{ExactAnswer, ExactQuery, ExactStats, ExactTier};
use crate::error::Result;
use crate::window::seen::SeenIndex;
use crate::window::{Generations, WindowIndex, PER_WINDOW_MAX_RETAIN};

const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;
const SLOTS: usize = 4;
const MAX_LOAD: f64 = 0.9;
const GROWTH: f64 = 1.5;
const MIN_BUCKETS: f64 = 4.0;

/// One cache line of slots.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket([u128; SLOTS]);

// SAFETY: integers only; all-zero is an empty bucket.
unsafe impl super::hugebuf::Zeroable for Bucket {}

/// The most fingerprints `n` buckets hold before the table grows.
fn limit_for(n: usize) -> usize {
    ((n * SLOTS) as f64 * MAX_LOAD) as usize
}

#[derive(Debug)]
struct Table {
    buckets: HugeBuf<Bucket>,
    len: usize,
    /// Grow before `len` passes this.
    limit: usize,
    /// Where the table is on its size schedule (see [`Table::size_at`]).
    step: f64,
}

impl Table {
    /// A table at `step` of the size schedule.
    fn at_step(step: f64) -> Table {
        let n = Table::size_at(step);
        Table { buckets: HugeBuf::zeroed(n), len: 0, limit: limit_for(n), step }
    }

    /// The bucket count at `step`: [`MIN_BUCKETS`] × [`GROWTH`]^`step`, in whole
    /// huge pages past 8 MiB ([`HugeBuf::whole_pages`]). Sizes come from the
    /// real-valued schedule, not by compounding rounded sizes, so tables started at
    /// different fractional steps stay apart however often they grow.
    fn size_at(step: f64) -> usize {
        let n = (MIN_BUCKETS * GROWTH.powf(step)).ceil() as usize;
        HugeBuf::<Bucket>::whole_pages(n.max(1))
    }

    #[inline]
    fn home(&self, fp: u128) -> usize {
        // Lemire's multiply-shift maps the low 64 bits onto any bucket count.
        (((fp as u64) as u128 * self.buckets.len() as u128) >> 64) as usize
    }

    #[inline]
    fn contains(&self, fp: u128) -> bool {
        let mut i = self.home(fp);
        loop {
            match self.look(fp, i) {
                Probe::Found => return true,
                Probe::Free => return false,
                Probe::Next(next) => i = next,
            }
        }
    }

    /// One step of a lookup: whether bucket `i` holds `fp`, ends the probe without
    /// it, or is full without it.
    #[inline]
    fn look(&self, fp: u128, i: usize) -> Probe {
        for &v in &self.buckets[i].0 {
            if v == fp {
                return Probe::Found;
            }
            if v == 0 {
                return Probe::Free;
            }
        }
        Probe::Next(if i + 1 == self.buckets.len() { 0 } else { i + 1 })
    }

    /// Inserts; returns whether `fp` was new.
    #[inline]
    fn insert(&mut self, fp: u128) -> bool {
        if self.len >= self.limit {
            self.grow();
        }
        let mut i = self.home(fp);
        loop {
            match self.probe(fp, i) {
                Probe::Found => return false,
                Probe::Free => return true,
                Probe::Next(next) => i = next,
            }
        }
    }

    /// One step of an insert: looks for `fp` in bucket `i`, takes its first empty
    /// slot if it is not there, or says which bucket to look at next. The caller
    /// has made room (`len < limit`), so some bucket has an empty slot.
    #[inline]
    fn probe(&mut self, fp: u128, i: usize) -> Probe {
        for v in &mut self.buckets[i].0 {
            if *v == fp {
                return Probe::Found;
            }
            if *v == 0 {
                *v = fp;
                self.len += 1;
                return Probe::Free;
            }
        }
        Probe::Next(if i + 1 == self.buckets.len() { 0 } else { i + 1 })
    }

    /// Moves the table to the next larger size of its schedule (×[`GROWTH`], give
    /// or take the rounding to whole huge pages), in its own memory (see
    /// [`HugeBuf::grow`]).
    ///
    /// The home bucket `(x · n) >> 64` is monotone in `x`, so a fingerprint's new
    /// home is at least its old one scaled by the growth. Walking the old buckets
    /// from the top down, each fingerprint is cleared from its bucket and placed
    /// from its new home upward: everything at or above the bucket being walked is
    /// already rebuilt or fresh, everything below is still old. The few whose new
    /// home lies below that line (a long probe near the start) or whose probe would
    /// wrap past the end are held back and placed last, when no old bucket is left
    /// to be cleared under a probe path.
    fn grow(&mut self) {
        let n = self.buckets.len();
        let mut m = n;
        while m <= n {
            self.step += 1.0;
            m = Table::size_at(self.step);
        }
        self.buckets.grow(m);
        self.limit = limit_for(m);
        let mut held = Vec::new();
        for b in (0..n).rev() {
            let old = std::mem::take(&mut self.buckets[b]).0;
            for fp in old.into_iter().take_while(|&v| v != 0) {
                let home = self.home(fp);
                if home < b || !self.place_below_end(fp, home) {
                    held.push(fp);
                }
            }
        }
        for fp in held {
            self.place_unique(fp);
        }
    }

    /// Puts `fp` into the first free slot from `home` without wrapping past the
    /// last bucket; false if there is none.
    #[inline]
    fn place_below_end(&mut self, fp: u128, home: usize) -> bool {
        for i in home..self.buckets.len() {
            if let Some(v) = self.buckets[i].0.iter_mut().find(|v| **v == 0) {
                *v = fp;
                return true;
            }
        }
        false
    }

    /// Puts a fingerprint known to be absent into the first free slot from its
    /// home, wrapping to the first bucket past the last (rebuilding: no duplicate
    /// check, no growth check, no count). The table is never full, so the second
    /// pass finds a slot before it comes back to the home.
    #[inline]
    fn place_unique(&mut self, fp: u128) {
        let home = self.home(fp);
        if !self.place_below_end(fp, home) {
            let placed = self.place_below_end(fp, 0);
            debug_assert!(placed, "a table at load <= {MAX_LOAD} has a free slot");
        }
    }

    /// Prefetches the home of `fp` and returns it: the first step of a walk.
    #[inline]
    fn start(&self, fp: u128) -> usize {
        let home = self.home(fp);
        prefetch(&self.buckets[home]);
        home
    }

    /// What a walk does after a step that found `step`: goes on to the next
    /// bucket (prefetched, returned) or ends, calling `found` if the fingerprint
    /// was there.
    #[inline]
    fn after(&self, step: Probe, found: impl FnOnce()) -> Option<usize> {
        match step {
            Probe::Next(b) => {
                prefetch(&self.buckets[b]);
                Some(b)
            }
            Probe::Found => {
                found();
                None
            }
            Probe::Free => None,
        }
    }

    fn bytes(&self) -> u64 {
        (self.buckets.len() * std::mem::size_of::<Bucket>()) as u64
    }

    fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.buckets.iter().flat_map(|b| b.0.iter().copied().take_while(|&v| v != 0))
    }
}

/// What one step of a walk found in a bucket ([`Table::probe`], [`Table::look`]).
enum Probe {
    /// The fingerprint.
    Found,
    /// A free slot and not the fingerprint: an insert took the slot, a lookup
    /// ends there (absent).
    Free,
    /// Neither (the bucket is full): go on at this bucket.
    Next(usize),
}

/// How many walks [`interleave`] keeps in flight.
const IN_FLIGHT: usize = 32;

/// Into how many groups of tables [`FingerprintSet::insert_all_split`] divides
/// the work the two threads claim in turn: enough that a helper starting late
/// still finds some left.
const PARTS: usize = 8;

/// How many fingerprints [`FingerprintSet::insert_all`] makes room for at a time.
const INSERT_CHUNK: usize = 4096;

/// Walks items `0..n` through a table [`IN_FLIGHT`] at a time, in turn, one
/// bucket each. `step(i, None)` starts item `i` and returns the bucket it goes to
/// first (prefetched); `step(i, Some(bucket))` looks at that bucket and returns
/// the next one (prefetched), or `None` once the item is done. Items start in
/// order, and an item started earlier takes each of its k-th steps before a later
/// one takes its k-th.
fn interleave(n: usize, mut step: impl FnMut(usize, Option<usize>) -> Option<usize>) {
    // (item, the bucket it looks at next); usize::MAX: a free slot.
    let mut ring = [(usize::MAX, 0usize); IN_FLIGHT];
    let (mut next, mut active, mut slot) = (0, 0, 0);
    loop {
        let (i, bucket) = ring[slot];
        if i != usize::MAX {
            match step(i, Some(bucket)) {
                Some(b) => ring[slot].1 = b,
                None => {
                    ring[slot].0 = usize::MAX;
                    active -= 1;
                }
            }
        }
        if ring[slot].0 == usize::MAX && next < n {
            let first = step(next, None).expect("a walk has a first bucket");
            ring[slot] = (next, first);
            next += 1;
            active += 1;
        } else if active == 0 && next == n {
            return;
        }
        slot = if slot + 1 == IN_FLIGHT { 0 } else { slot + 1 };
    }
}

/// The places in `fps` of the fingerprints each part of [`PARTS`] holds.
fn by_part(fps: &[u128]) -> Vec<Vec<usize>> {
    let mut parts: Vec<Vec<usize>> =
        (0..PARTS).map(|_| Vec::with_capacity(fps.len() / PARTS * 2)).collect();
    for (i, &fp) in fps.iter().enumerate() {
        parts[FingerprintSet::shard(FingerprintSet::norm(fp)) / (SHARDS / PARTS)].push(i);
    }
    parts
}

/// Inserts `fps[i]` for each `i` of `mine` (all in `tables`, shards `first..`),
/// in order and [`IN_FLIGHT`] at a time, and calls `seen(i)` for each that was not
/// new (see [`FingerprintSet::insert_all`]). Tables are grown before the walks
/// start, since growing moves everything: by the count each receives, repeats
/// included.
fn insert_chunk(
    tables: &mut [Table],
    first: usize,
    fps: &[u128],
    mine: &[usize],
    mut seen: impl FnMut(usize),
) {
    let mut incoming = [0usize; SHARDS];
    for &i in mine {
        incoming[FingerprintSet::shard(FingerprintSet::norm(fps[i])) - first] += 1;
    }
    for (t, &k) in tables.iter_mut().zip(&incoming) {
        while t.len + k > t.limit {
            t.grow();
        }
    }
    interleave(mine.len(), |j, at| {
        let i = mine[j];
        let fp = FingerprintSet::norm(fps[i]);
        let table = &mut tables[FingerprintSet::shard(fp) - first];
        let Some(bucket) = at else {
            return Some(table.start(fp));
        };
        let step = table.probe(fp, bucket);
        table.after(step, || seen(i))
    });
}

/// Calls `found(i)` for each `i` of `mine` whose `fps[i]` is in `tables` (which
/// hold its shard; they are shards `first..`), looking them up [`IN_FLIGHT`] at a
/// time.
fn contains_in(
    tables: &[Table],
    first: usize,
    fps: &[u128],
    mine: &[usize],
    mut found: impl FnMut(usize),
) {
    interleave(mine.len(), |j, at| {
        let i = mine[j];
        let fp = FingerprintSet::norm(fps[i]);
        let table = &tables[FingerprintSet::shard(fp) - first];
        let Some(bucket) = at else {
            return Some(table.start(fp));
        };
        table.after(table.look(fp, bucket), || found(i))
    });
}

/// A set of 128-bit fingerprints.
#[derive(Debug)]
pub struct FingerprintSet {
    shards: Vec<Table>,
}

impl Default for FingerprintSet {
    fn default() -> Self {
        FingerprintSet::new()
    }
}

impl FingerprintSet {
    /// An empty set.
    pub fn new() -> FingerprintSet {
        FingerprintSet::with_expected(0)
    }

    /// An empty set sized to take `expected` fingerprints without a rebuild (at a
    /// load of ~0.8). Windows of one stream hold similar counts, so a new window
    /// sized like the last one skips the rebuilds and first touches of growing
    /// from nothing.
    pub fn with_expected(expected: u64) -> FingerprintSet {
        let per_shard = expected as f64 / SHARDS as f64 / (SLOTS as f64 * 0.8);
        let first = (per_shard.max(MIN_BUCKETS) / MIN_BUCKETS).log(GROWTH).ceil();
        let shards = (0..SHARDS)
            // Stagger: shard i is i/SHARDS of a step further along the schedule,
            // so the shards reach their growth points at different times.
            .map(|i| Table::at_step(first + i as f64 / SHARDS as f64))
            .collect();
        FingerprintSet { shards }
    }

    #[inline]
    fn norm(fp: u128) -> u128 {
        // 0 marks an empty slot; a fingerprint of 0 (chance 2^-128) is stored as 1.
        fp.max(1)
    }

    #[inline]
    fn shard(fp: u128) -> usize {
        (fp >> (128 - SHARD_BITS)) as usize
    }

    /// Inserts; returns whether it was new.
    #[inline]
    pub fn insert(&mut self, fp: u128) -> bool {
        let fp = Self::norm(fp);
        self.shards[Self::shard(fp)].insert(fp)
    }

    /// Whether it is present.
    #[inline]
    pub fn contains(&self, fp: u128) -> bool {
        let fp = Self::norm(fp);
        self.shards[Self::shard(fp)].contains(fp)
    }

    /// Inserts every fingerprint of `fps` as [`FingerprintSet::insert`] would, one
    /// after the other, and calls `seen(i)` for each `fps[i]` that was not new.
    ///
    /// A table at a load of 0.6-0.9 sends an insert through one to several buckets
    /// (cache lines) in a row, each a miss that the next step waits for. Here the
    /// inserts advance [`IN_FLIGHT`] at a time (see [`interleave`]), so the misses
    /// of many inserts overlap instead of only their first. Two inserts of one
    /// fingerprint walk the same buckets, the earlier always at least one turn
    /// ahead, so the later one finds what the earlier one put in: the answers are
    /// those of inserting in order. Tables are grown before the walks start, since
    /// growing moves everything: by the count each receives of the next
    /// [`INSERT_CHUNK`] fingerprints, repeats included, so a table grows at most
    /// that many fingerprints early (a batch of a million repeats of one line does
    /// not make room for a million).
    pub fn insert_all(&mut self, fps: &[u128], mut seen: impl FnMut(usize)) {
        for (c, chunk) in fps.chunks(INSERT_CHUNK).enumerate() {
            let all: Vec<usize> = (0..chunk.len()).collect();
            insert_chunk(&mut self.shards, 0, chunk, &all, |i| seen(c * INSERT_CHUNK + i));
        }
    }

    /// [`FingerprintSet::insert_all`] on two threads: the tables are filled in
    /// [`PARTS`] groups, each by whichever of this thread and `helper`'s claims it
    /// first. A fingerprint's answer depends only on its own table, so the answers
    /// are those of `insert_all`; `seen` is called in no particular order.
    pub(crate) fn insert_all_split(
        &mut self,
        fps: &[u128],
        helper: &Helper,
        mut seen: impl FnMut(usize),
    ) {
        for (c, chunk) in fps.chunks(INSERT_CHUNK).enumerate() {
            let mine = by_part(chunk);
            let parts: Vec<Mutex<(&mut [Table], Vec<usize>)>> = self
                .shards
                .chunks_mut(SHARDS / PARTS)
                .map(|tables| Mutex::new((tables, Vec::new())))
                .collect();
            helper.share(PARTS, |k| {
                let mut part = parts[k].lock().unwrap_or_else(|p| p.into_inner());
                let (tables, seen) = &mut *part;
                insert_chunk(tables, k * (SHARDS / PARTS), chunk, &mine[k], |i| seen.push(i));
            });
            for part in parts {
                let (_, part_seen) = part.into_inner().unwrap_or_else(|p| p.into_inner());
                part_seen.into_iter().for_each(|i| seen(c * INSERT_CHUNK + i));
            }
        }
    }

    /// [`FingerprintSet::contains_all`] on two threads, as
    /// [`FingerprintSet::insert_all_split`] does; `found` is called in no
    /// particular order.
    pub(crate) fn contains_all_split(
        &self,
        fps: &[u128],
        helper: &Helper,
        mut found: impl FnMut(usize),
    ) {
        let parts: Vec<Mutex<Vec<usize>>> = (0..PARTS).map(|_| Mutex::default()).collect();
        let mine = by_part(fps);
        helper.share(PARTS, |k| {
            let tables = &self.shards[k * (SHARDS / PARTS)..(k + 1) * (SHARDS / PARTS)];
            let mut part = parts[k].lock().unwrap_or_else(|p| p.into_inner());
            contains_in(tables, k * (SHARDS / PARTS), fps, &mine[k], |i| part.push(i));
        });
        for part in parts {
            part.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().for_each(&mut found);
        }
    }

    /// Calls `found(i)` for each `fps[i]` in the set, looking them up
    /// [`IN_FLIGHT`] at a time as [`FingerprintSet::insert_all`] does.
    pub fn contains_all(&self, fps: &[u128], found: impl FnMut(usize)) {
        let all: Vec<usize> = (0..fps.len()).collect();
        contains_in(&self.shards, 0, fps, &all, found);
    }

    /// Prefetches the slot a lookup of `fp` starts at.
    #[inline]
    pub fn prefetch(&self, fp: u128) {
        let fp = Self::norm(fp);
        self.shards[Self::shard(fp)].start(fp);
    }

    /// Fingerprints held.
    pub fn len(&self) -> u64 {
        self.shards.iter().map(|t| t.len as u64).sum()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the tables.
    pub fn bytes(&self) -> u64 {
        self.shards.iter().map(Table::bytes).sum()
    }

    /// Every fingerprint held, table by table.
    pub fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.shards.iter().flat_map(Table::iter)
    }

    fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(&self.len().to_le_bytes())?;
        let mut buf = Vec::with_capacity(64 * 1024);
        for t in &self.shards {
            for v in t.iter() {
                buf.extend_from_slice(&v.to_le_bytes());
                if buf.len() >= 64 * 1024 {
                    w.write_all(&buf)?;
                    buf.clear();
                }
            }
        }
        w.write_all(&buf)
    }

    fn read_from<R: Read + ?Sized>(r: &mut R) -> io::Result<FingerprintSet> {
        let mut n = [0u8; 8];
        r.read_exact(&mut n)?;
        let n = u64::from_le_bytes(n);
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad fingerprint list");
        let mut set = FingerprintSet::new();
        // One read per chunk that `insert_all` makes room for at a time.
        let mut bytes = vec![0u8; INSERT_CHUNK * 16];
        let mut fps = Vec::with_capacity(INSERT_CHUNK);
        let mut left = n;
        while left > 0 {
            let k = left.min(INSERT_CHUNK as u64) as usize;
            r.read_exact(&mut bytes[..k * 16])?;
            fps.clear();
            fps.extend(
                bytes[..k * 16]
                    .chunks_exact(16)
                    .map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes"))),
            );
            if fps.contains(&0) {
                return Err(bad());
            }
            let mut repeated = false;
            set.insert_all(&fps, |_| repeated = true);
            if repeated {
                return Err(bad());
            }
            left -= k as u64;
        }
        Ok(set)
    }
}

/// `--exact memory`: one [`FingerprintSet`] per retained window, or above
/// [`PER_WINDOW_MAX_RETAIN`] one index entry per fingerprint holding its windows
/// ([`SeenIndex`]), so a record's cost does not grow with `--retain`.
#[derive(Debug, Default)]
pub struct MemoryTier {
    gens: Generations<FingerprintSet>,
    /// `Some` above [`PER_WINDOW_MAX_RETAIN`]; then `gens` stays empty.
    index: Option<SeenIndex<[u64; 2]>>,
    queries: u64,
    /// The fingerprints of a run of queries (reused).
    fps: Vec<u128>,
    /// Those new to their own window, and their places in the run (reused).
    unseen: Vec<u128>,
    unseen_at: Vec<usize>,
    /// Shares runs of at least [`SPLIT_MIN`] queries with a second thread.
    helper: Option<Helper>,
}

/// The shortest run of queries worth handing half of to the helper thread: its
/// handover costs a few microseconds, the table work of a query ~50 ns.
const SPLIT_MIN: usize = 512;

impl MemoryTier {
    /// An empty tier with one set per window.
    pub fn new() -> MemoryTier {
        MemoryTier::default()
    }

    /// An empty tier for `--retain retain`.
    pub fn retaining(retain: u32) -> MemoryTier {
        MemoryTier {
            index: (retain > PER_WINDOW_MAX_RETAIN).then(SeenIndex::new),
            ..MemoryTier::default()
        }
    }

    /// Shares the table work of each batch with a second thread (see
    /// [`Helper`]): for a machine with a core to spare. Stays on one thread if
    /// the thread cannot be started.
    pub fn with_helper_thread(mut self) -> MemoryTier {
        self.helper = Helper::start().ok();
        self
    }

    /// The generations (for tests and stats).
    pub fn generations(&self) -> &Generations<FingerprintSet> {
        &self.gens
    }

    /// Per-window sets: runs of queries with the same windows (nearly always the
    /// whole batch) share one lookup of their generations.
    fn check_and_insert_sets(&mut self, queries: &[ExactQuery], answers: &mut [ExactAnswer]) {
        let mut i = 0;
        while i < queries.len() {
            let (oldest, own) = (queries[i].oldest, queries[i].own);
            let run_len =
                queries[i..].iter().take_while(|q| q.oldest == oldest && q.own == own).count();
            let run = &queries[i..i + run_len];
            let answers = &mut answers[i..i + run_len];
            self.fps.clear();
            self.fps.extend(run.iter().map(|q| q.fp));
            // A new window is sized like the newest one held.
            let hint = self.gens.iter().last().map_or(0, |(_, s)| s.len());
            let set = self.gens.get_or_insert_with(own, || FingerprintSet::with_expected(hint));
            let seen = |k: usize| answers[k] = ExactAnswer::Seen;
            match &self.helper {
                Some(h) if run_len >= SPLIT_MIN => set.insert_all_split(&self.fps, h, seen),
                _ => set.insert_all(&self.fps, seen),
            }
            if oldest < own {
                // Only what is new to its own window is looked up in the older ones
                // (a run's older windows take no inserts from it, so the order of
                // the two steps does not matter).
                self.unseen.clear();
                self.unseen_at.clear();
                for (k, &fp) in self.fps.iter().enumerate() {
                    if answers[k] == ExactAnswer::New {
                        self.unseen.push(fp);
                        self.unseen_at.push(k);
                    }
                }
                let (unseen, at) = (&self.unseen, &self.unseen_at);
                for set in self.gens.range(oldest, WindowIndex(own.0 - 1)) {
                    let found = |j: usize| answers[at[j]] = ExactAnswer::Seen;
                    match &self.helper {
                        Some(h) if unseen.len() >= SPLIT_MIN => {
                            set.contains_all_split(unseen, h, found)
                        }
                        _ => set.contains_all(unseen, found),
                    }
                }
            }
            i += run_len;
        }
    }
}

/// A fingerprint as the index keys it (0 stored as 1, as in the sets, so that a
/// snapshot's lists hold no 0).
#[inline]
fn words(fp: u128) -> [u64; 2] {
    let fp = FingerprintSet::norm(fp);
    [fp as u64, (fp >> 64) as u64]
}

impl ExactTier for MemoryTier {
    fn check_and_insert(
        &mut self,
        queries: &[ExactQuery],
        answers: &mut Vec<ExactAnswer>,
    ) -> Result<()> {
        answers.clear();
        answers.resize(queries.len(), ExactAnswer::New);
        self.queries += queries.len() as u64;
        match &mut self.index {
            Some(index) => {
                for (q, a) in queries.iter().zip(answers.iter_mut()) {
                    if index.check_insert(words(q.fp), q.first_window(), q.own.0) {
                        *a = ExactAnswer::Seen;
                    }
                }
            }
            None => self.check_and_insert_sets(queries, answers),
        }
        Ok(())
    }

    fn retire_before(&mut self, oldest: WindowIndex) {
        self.gens.retire_before(oldest);
        if let Some(index) = &mut self.index {
            index.retire_before(oldest.0);
        }
    }

    fn stats(&self) -> ExactStats {
        let (fingerprints, bytes) = match &self.index {
            Some(index) => (index.len(), index.bytes()),
            None => (
                self.gens.iter().map(|(_, s)| s.len()).sum(),
                self.gens.iter().map(|(_, s)| s.bytes()).sum(),
            ),
        };
        ExactStats {
            fingerprints,
            bytes,
            round_trips: 0,
            queries: self.queries,
            errors: 0,
            ..ExactStats::default()
        }
    }

    /// Per window, oldest first: 8 B window, then the window's fingerprint list
    /// ([`FingerprintSet::write_to`]). An index is written in the same layout, so
    /// a snapshot loads under any `--retain`.
    fn save(&self, w: &mut dyn Write) -> io::Result<()> {
        match &self.index {
            None => {
                w.write_all(&(self.gens.len() as u32).to_le_bytes())?;
                for (win, set) in self.gens.iter() {
                    w.write_all(&win.0.to_le_bytes())?;
                    set.write_to(w)?;
                }
            }
            Some(index) => {
                let pairs = index.pairs();
                let windows = pairs.chunk_by(|a, b| a.0 == b.0);
                w.write_all(&(windows.clone().count() as u32).to_le_bytes())?;
                for group in windows {
                    w.write_all(&group[0].0.to_le_bytes())?;
                    w.write_all(&(group.len() as u64).to_le_bytes())?;
                    for &(_, [lo, hi]) in group {
                        w.write_all(&lo.to_le_bytes())?;
                        w.write_all(&hi.to_le_bytes())?;
                    }
                }
            }
        }
        Ok(())
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn load(&mut self, r: &mut dyn Read) -> io::Result<()> {
        let mut n = [0u8; 4];
        r.read_exact(&mut n)?;
        let mut gens = Generations::default();
        let mut index = self.index.as_ref().map(|_| SeenIndex::new());
        let mut last = None;
        for _ in 0..u32::from_le_bytes(n) {
            let mut w = [0u8; 8];
            r.read_exact(&mut w)?;
            let w = WindowIndex(i64::from_le_bytes(w));
            // Written oldest first, each once: anything else would overwrite a set.
            if last.is_some_and(|l| w <= l) {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "windows out of order"));
            }
            last = Some(w);
            let set = FingerprintSet::read_from(r)?;
            match &mut index {
                // (Read as a set first: the set's checks refuse a damaged list.)
                Some(index) => set.iter().for_each(|fp| index.insert(words(fp), w.0)),
                None => *gens.get_or_insert_with(w, FingerprintSet::new) = set,
            }
        }
        self.gens = gens;
        self.index = index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(i: u64) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes())
    }

    #[test]
    fn set_is_exact_through_growth() {
        let mut s = FingerprintSet::new();
        for i in 0..100_000 {
            assert!(s.insert(fp(i)));
        }
        for i in 0..100_000 {
            assert!(!s.insert(fp(i)));
            assert!(s.contains(fp(i)));
        }
        assert!(!s.contains(fp(100_001)));
        assert_eq!(s.len(), 100_000);
        // The staggered ×1.5 growth keeps the tables between 0.6 and 0.9 full.
        let per_id = s.bytes() as f64 / s.len() as f64;
        assert!(per_id < 24.0, "{per_id} B per ID");
        assert!(s.insert(0) && s.contains(0) && !s.insert(1));
    }

    #[test]
    fn bytes_per_id_stay_low_at_every_size() {
        // The tables' loads stay spread over [0.6, 0.9] while they grow, also where
        // their sizes move to whole huge pages (which could bring them into step).
        let mut s = FingerprintSet::new();
        let mut next = 50_000u64;
        for i in 0..4_000_000u64 {
            s.insert(fp(i));
            if i + 1 == next {
                let per_id = s.bytes() as f64 / s.len() as f64;
                assert!((18.0..=23.5).contains(&per_id), "{per_id:.2} B per ID at {next}");
                next = next * 21 / 20;
            }
        }
    }

    #[test]
    fn growth_in_place_keeps_every_fingerprint_reachable() {
        // Homes crowd the first and the last buckets, where the in-place rebuild
        // holds fingerprints back (a new home below the walk, a probe past the end),
        // mixed with spread ones; then spread ones only, until the table's size
        // moves in whole huge pages (past 8 MiB, after a copy into a fresh mapping).
        // Everything is checked after each growth.
        let mut t = Table::at_step(0.0);
        let mut held: Vec<u128> = Vec::new();
        for i in 0..520_000u64 {
            let r = fp(i);
            let low = match i % 4 {
                0 if i < 40_000 => u64::MAX - (r as u64 >> 40),
                1 if i < 40_000 => r as u64 >> 40,
                _ => r as u64,
            };
            let v = (r >> 64 << 64) | u128::from(low) | 1 << 100;
            let grows = t.len >= t.limit;
            assert!(t.insert(v));
            held.push(v);
            if grows || (i < 40_000 && i % 4096 == 0) {
                assert_eq!(t.len, held.len());
                assert!(held.iter().all(|&h| t.contains(h)), "lost a fingerprint at {i}");
                assert!(held.iter().all(|&h| !t.insert(h)), "a duplicate taken as new at {i}");
                assert_eq!(t.iter().count(), held.len());
            }
        }
        let huge = 2 << 20;
        assert!(t.bytes() > 4 * huge && t.bytes().is_multiple_of(huge), "{} bytes", t.bytes());
        assert!(held.iter().all(|&h| !t.insert(h)));
        assert!(!t.contains(fp(1 << 40) | 1 << 101));
    }

    /// Batched inserts answer as inserts one by one do, and batched lookups as
    /// lookups one by one, on one thread and shared with a helper: a `HashSet` model over streams with repeats close
    /// together (inside the in-flight window and just past it) and far apart, in
    /// batches of many sizes through growth, with homes spread and homes crowded
    /// onto 256 points per table (long walks that run into each other).
    #[test]
    fn insert_all_answers_as_inserts_in_order() {
        let helper = Helper::start().unwrap();
        for (crowded, split) in [(false, false), (true, false), (false, true), (true, true)] {
            let helper = split.then_some(&helper);
            let mut s = FingerprintSet::new();
            let mut model = std::collections::HashSet::new();
            let mut stream = Vec::new();
            for i in 0..60_000u64 {
                // Every third is a repeat: of the one just before, of one up to
                // 2 x IN_FLIGHT back, or of one anywhere earlier.
                let v = match i % 6 {
                    1 => stream[i as usize - 1],
                    3 => {
                        stream[i as usize - 1 - (i as usize / 6) % (2 * IN_FLIGHT).min(i as usize)]
                    }
                    5 => stream[(fp(i) % i as u128) as usize],
                    _ if crowded => fp(i) >> 64 << 64 | u128::from(fp(i) as u64 >> 56 << 56),
                    _ => fp(i),
                };
                stream.push(v);
            }
            let mut at = 0;
            for (k, size) in [1usize, 7, 33, 1000, 9000].iter().cycle().enumerate() {
                if at == stream.len() {
                    break;
                }
                let batch = &stream[at..(at + size + k % 3).min(stream.len())];
                let mut seen = vec![false; batch.len()];
                match helper {
                    Some(h) => s.insert_all_split(batch, h, |j| seen[j] = true),
                    None => s.insert_all(batch, |j| seen[j] = true),
                }
                for (j, &v) in batch.iter().enumerate() {
                    assert_eq!(seen[j], !model.insert(v), "crowded {crowded}, record {}", at + j);
                }
                at += batch.len();
            }
            assert_eq!(s.len(), model.len() as u64);
            assert!(model.iter().all(|&v| s.contains(v)));
            // Batched lookups of everything held and of as many absent ones.
            let absent = (0..60_000u64).map(|i| fp(i | 1 << 40));
            let probes: Vec<u128> = stream.iter().copied().chain(absent).collect();
            let mut found = vec![false; probes.len()];
            match helper {
                Some(h) => s.contains_all_split(&probes, h, |j| found[j] = true),
                None => s.contains_all(&probes, |j| found[j] = true),
            }
            for (v, f) in probes.iter().zip(found) {
                assert_eq!(f, model.contains(v), "crowded {crowded}");
            }
        }
    }

    /// Room is made per chunk of a batch, repeats counted: a large batch of one
    /// fingerprint leaves the set with room for one chunk, not for the batch.
    #[test]
    fn a_batch_of_repeats_does_not_grow_the_set() {
        let mut s = FingerprintSet::new();
        let mut seen = 0;
        s.insert_all(&vec![fp(7); 1_000_000], |_| seen += 1);
        assert_eq!((s.len(), seen), (1, 999_999));
        // Room for one chunk in one table is ~70 kB; for the whole batch, 21 MB.
        assert!(s.bytes() < 1 << 20, "{} bytes", s.bytes());
    }

    #[test]
    fn windows_and_retention() {
        let mut t = MemoryTier::new();
        let q = |fp, oldest, own| ExactQuery {
            fp,
            oldest: WindowIndex(oldest),
            own: WindowIndex(own),
            local_new: false,
            int: false,
        };
        let mut a = Vec::new();
        t.check_and_insert(&[q(1, 0, 0), q(1, 0, 0), q(2, 0, 1), q(1, 0, 1), q(2, 1, 1)], &mut a)
            .unwrap();
        use ExactAnswer::*;
        assert_eq!(a, vec![New, Seen, New, Seen, Seen]);
        // A record of window 0 does not see window 1.
        t.check_and_insert(&[q(2, 0, 0)], &mut a).unwrap();
        assert_eq!(a, vec![New]);
        t.retire_before(WindowIndex(1));
        t.check_and_insert(&[q(1, 1, 2), q(3, 2, 2)], &mut a).unwrap();
        assert_eq!(a, vec![Seen, New]);
        let mut buf = Vec::new();
        t.save(&mut buf).unwrap();
        let mut u = MemoryTier::new();
        u.load(&mut buf.as_slice()).unwrap();
        u.check_and_insert(&[q(3, 2, 2), q(1, 1, 1)], &mut a).unwrap();
        assert_eq!(a, vec![Seen, Seen]);
        assert_eq!(u.stats().fingerprints, t.stats().fingerprints);
    }

    /// A tier sharing its table work with a helper thread answers as one that
    /// does not, over batches long enough to be shared, with repeats inside a
    /// batch, across batches and across windows (looked up in the older ones).
    #[test]
    fn a_tier_with_a_helper_thread_answers_as_one_without() {
        let mut alone = MemoryTier::new();
        let mut shared = MemoryTier::new().with_helper_thread();
        assert!(shared.helper.is_some());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut x = 11u64;
        for batch in 0..60i64 {
            let own = batch / 6;
            let qs: Vec<ExactQuery> = (0..3_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ExactQuery {
                        fp: fp(x % 40_000),
                        oldest: WindowIndex(own - 2),
                        own: WindowIndex(own),
                        local_new: false,
                        int: false,
                    }
                })
                .collect();
            alone.check_and_insert(&qs, &mut a).unwrap();
            shared.check_and_insert(&qs, &mut b).unwrap();
            assert_eq!(a, b, "batch {batch}");
            assert!(a.contains(&ExactAnswer::Seen) && a.contains(&ExactAnswer::New));
            alone.retire_before(WindowIndex(own - 2));
            shared.retire_before(WindowIndex(own - 2));
        }
        assert_eq!(alone.stats().fingerprints, shared.stats().fingerprints);
    }

    /// Above the per-window limit the tier answers as the model does (a set of
    /// windows per ID), on a stream whose records come up to twice K windows out
    /// of order, in batches; its snapshot loads into either layout and answers on.
    #[test]
    fn index_layout_answers_as_the_model_and_snapshots_across_layouts() {
        use std::collections::{BTreeSet, HashMap};
        let retain = 600i64;
        let mut model: HashMap<u64, BTreeSet<i64>> = HashMap::new();
        let (mut newest, mut x, mut stream) = (i64::MIN, 7u64, Vec::new());
        for i in 0..30_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let own = i / 20 - (x % 1201) as i64;
            newest = newest.max(own);
            let oldest = newest - retain + 1;
            if own >= oldest {
                let id = (x >> 30) % 2000;
                let s = model.entry(id).or_default();
                stream.push((
                    ExactQuery {
                        fp: fp(id),
                        oldest: WindowIndex(oldest),
                        own: WindowIndex(own),
                        local_new: false,
                        int: false,
                    },
                    s.range(oldest..=own).next().is_some(),
                ));
                s.insert(own);
            }
        }
        let (first, rest) = stream.split_at(stream.len() / 2);
        // (The per-window layout asks every window of a query's range: a few
        // thousand queries keep it quick.)
        let rest = &rest[..2_000];
        let mut t = MemoryTier::retaining(retain as u32);
        let mut a = Vec::new();
        for batch in first.chunks(333) {
            let qs: Vec<ExactQuery> = batch.iter().map(|(q, _)| *q).collect();
            t.check_and_insert(&qs, &mut a).unwrap();
            for ((_, dup), got) in batch.iter().zip(&a) {
                assert_eq!(*got == ExactAnswer::Seen, *dup);
            }
        }
        assert!(t.generations().is_empty() && t.stats().fingerprints > 0);
        let mut buf = Vec::new();
        t.save(&mut buf).unwrap();
        for to in [3, retain as u32] {
            let mut u = MemoryTier::retaining(to);
            u.load(&mut buf.as_slice()).unwrap();
            let qs: Vec<ExactQuery> = rest.iter().map(|(q, _)| *q).collect();
            u.check_and_insert(&qs, &mut a).unwrap();
            for (k, ((_, dup), got)) in rest.iter().zip(&a).enumerate() {
                assert_eq!(*got == ExactAnswer::Seen, *dup, "loaded into --retain {to}, query {k}");
            }
        }
    }

    /// A snapshot holds every fingerprint of every window, also a window's list
    /// long enough to be written in several blocks, each in its own window.
    #[test]
    fn snapshot_keeps_every_fingerprint_in_its_window() {
        let q = |i: u64, own| ExactQuery {
            fp: fp(i),
            oldest: WindowIndex(7),
            own: WindowIndex(own),
            local_new: false,
            int: false,
        };
        // 20,000 fingerprints (320 kB) in window 7, 5,000 in window 8.
        let queries: Vec<ExactQuery> =
            (0..25_000).map(|i| q(i, if i < 20_000 { 7 } else { 8 })).collect();
        let mut t = MemoryTier::new();
        let mut a = Vec::new();
        t.check_and_insert(&queries, &mut a).unwrap();
        let mut buf = Vec::new();
        t.save(&mut buf).unwrap();
        assert_eq!(buf.len(), 4 + 2 * (8 + 8) + 25_000 * 16);
        let mut u = MemoryTier::new();
        u.load(&mut buf.as_slice()).unwrap();
        let sizes: Vec<(i64, u64)> = u.generations().iter().map(|(w, s)| (w.0, s.len())).collect();
        assert_eq!(sizes, [(7, 20_000), (8, 5_000)]);
        // A record of window 7 sees window 7's fingerprints only.
        let again: Vec<ExactQuery> = (0..25_000).map(|i| q(i, 7)).collect();
        u.check_and_insert(&again, &mut a).unwrap();
        assert!(a[..20_000].iter().all(|&x| x == ExactAnswer::Seen));
        assert!(a[20_000..].iter().all(|&x| x == ExactAnswer::New));
    }

    /// A fingerprint list holding a 0, or one fingerprint twice, or fewer than it
    /// says, is refused (never loaded as a smaller set), and so is a window listed
    /// twice.
    #[test]
    fn damaged_fingerprint_lists_are_refused() {
        // One window (3) with the given list.
        let snapshot = |fps: &[u128]| {
            let mut b = 1u32.to_le_bytes().to_vec();
            b.extend(3i64.to_le_bytes());
            b.extend((fps.len() as u64).to_le_bytes());
            fps.iter().for_each(|f| b.extend(f.to_le_bytes()));
            b
        };
        let mut t = MemoryTier::new();
        t.load(&mut snapshot(&[fp(1), fp(2)]).as_slice()).unwrap();
        assert_eq!(t.stats().fingerprints, 2);
        let mut short = snapshot(&[fp(1), fp(2)]);
        short.truncate(short.len() - 1);
        // Window 3 twice: the second list would replace the first.
        let mut twice = snapshot(&[fp(1)]);
        twice[..4].copy_from_slice(&2u32.to_le_bytes());
        twice.extend_from_slice(&snapshot(&[fp(2)])[4..]);
        let e = MemoryTier::new().load(&mut twice.as_slice()).unwrap_err();
        assert!(e.to_string().contains("order"), "{e}");
        for bad in [snapshot(&[fp(1), fp(2), fp(1)]), snapshot(&[fp(1), 0]), short] {
            let e = MemoryTier::new().load(&mut bad.as_slice()).unwrap_err();
            assert!(
                matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof),
                "{e}"
            );
        }
    }
}
