//! Windows: fixed, epoch-aligned time windows and the ring of retained generations.
//!
//! Window index `w = floor(t / W)`. The clock is the newest window seen; `--retain
//! K` keeps windows `clock-K+1 ..= clock`. A record in window `w` is a duplicate iff
//! an earlier record with the same ID fell in a retained window `<= w`; every record
//! is inserted into its own window. A record older than every retained window is
//! *late*. Moving the clock drops the generations that fall out whole: O(1) per
//! generation, no scan, so memory stays flat however long the stream runs.

pub mod seen;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The index of a window: `floor(t / W)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowIndex(pub i64);

/// Where arrival time comes from. Injected, so tests never sleep.
pub trait Clock: Send + Sync {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
            .unwrap_or(0)
    }
}

/// A clock that tests set by hand.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `ns`.
    pub fn new(ns: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(ns)))
    }

    /// Sets the time.
    pub fn set(&self, ns: i64) {
        self.0.store(ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where a record falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Older than every retained window.
    Late,
    /// Check windows `oldest ..= own`, insert into `own`.
    Retained {
        /// The oldest retained window.
        oldest: WindowIndex,
        /// The record's own window.
        own: WindowIndex,
    },
}

/// The window clock: the newest window seen and the retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowClock {
    width_ns: Option<i64>,
    retain: i64,
    newest: Option<WindowIndex>,
    /// The window of the first record placed (or, after a snapshot is loaded,
    /// the oldest it retained): where the live windows start.
    first: Option<WindowIndex>,
}

impl WindowClock {
    /// A clock for windows of `width_ns` (`None`: one window for the whole stream),
    /// keeping `retain` of them.
    pub fn new(width_ns: Option<i64>, retain: u32) -> WindowClock {
        WindowClock { width_ns, retain: i64::from(retain.max(1)), newest: None, first: None }
    }

    /// The window of a time.
    #[inline]
    pub fn index(&self, t_ns: i64) -> WindowIndex {
        match self.width_ns {
            Some(w) => WindowIndex(t_ns.div_euclid(w)),
            None => WindowIndex(0),
        }
    }

    /// The newest window seen.
    pub fn newest(&self) -> Option<WindowIndex> {
        self.newest
    }

    /// Restores the newest window (from a snapshot).
    pub fn set_newest(&mut self, w: Option<WindowIndex>) {
        self.newest = w;
        self.first = self.oldest();
    }

    /// The retained windows from the first one this clock saw to the newest (at
    /// most `retain`): the live windows. A record older than the first record's
    /// window but still retained (input out of order) is not counted in.
    pub fn live(&self) -> u64 {
        match (self.oldest(), self.newest, self.first) {
            (Some(oldest), Some(newest), Some(first)) => {
                newest.0.saturating_sub(oldest.0.max(first.0)).saturating_add(1) as u64
            }
            _ => 0,
        }
    }

    /// The oldest retained window, if any window was seen.
    pub fn oldest(&self) -> Option<WindowIndex> {
        self.newest.map(|n| WindowIndex(n.0.saturating_sub(self.retain - 1)))
    }

    /// Places a record of window `w`. Returns the placement and, if the clock moved
    /// so that windows fell out, the new oldest retained window (the caller retires
    /// every generation below it).
    #[inline]
    pub fn place(&mut self, w: WindowIndex) -> (Placement, Option<WindowIndex>) {
        let mut retire = None;
        match self.newest {
            Some(n) if w <= n => {}
            Some(n) => {
                self.newest = Some(w);
                if w.0.saturating_sub(self.retain - 1) > n.0.saturating_sub(self.retain - 1) {
                    retire = self.oldest();
                }
            }
            None => {
                self.newest = Some(w);
                self.first = Some(w);
            }
        }
        let oldest = self.oldest().expect("set above");
        if w < oldest {
            (Placement::Late, retire)
        } else {
            (Placement::Retained { oldest, own: w }, retire)
        }
    }
}

/// Up to this `--retain`, the tiers keep one set per window: a record costs at most
/// this many lookups, and the sets are the most compact layout. Above it they
/// switch to layouts whose cost per record does not grow with K: the
/// [`seen::SeenIndex`] (integer IDs, fingerprints, and bloom hashes under `--exact
/// none`) and bloom filters that each cover a band of windows (see
/// [`bloom_band_width`]).
///
/// Why 4: per-window sets cost a lookup per retained window but ~22 B per (ID,
/// window); the index one lookup but ~33 B per ID slot, up to twice the live IDs
/// between sweeps, and a table that doubles. Measured on the first 1M lines of the
/// 10M set with `--window 30s` (~83k IDs a window): `--retain 4` (sets) 0.36 s user,
/// 23.8 MB peak RSS; `--retain 5` (index) 0.33 s user, 80.6 MB. Where K is small
/// the sets' memory wins; the time per record of the index does not grow with K
/// (20k records one per 1 s window: 0.02 s at `--retain` 1000 and 10000, against
/// 5.1 s and over 100 s with per-window sets).
pub const PER_WINDOW_MAX_RETAIN: u32 = 4;

/// Above [`PER_WINDOW_MAX_RETAIN`], how many bands of windows the bloom filters
/// of the retained windows are spread over (one more while the oldest band ends).
pub const BLOOM_BANDS: u32 = 4;

/// How many windows one bloom generation covers under `--retain retain`: one
/// per window up to [`PER_WINDOW_MAX_RETAIN`], else `retain / BLOOM_BANDS`
/// rounded up, so a record asks at most `BLOOM_BANDS + 1` filters.
pub fn bloom_band_width(retain: u32) -> i64 {
    if retain <= PER_WINDOW_MAX_RETAIN {
        1
    } else {
        i64::from(retain.div_ceil(BLOOM_BANDS))
    }
}

/// How many bloom generations a record is checked against under `--retain
/// retain`, at most: one per retained window up to [`PER_WINDOW_MAX_RETAIN`], else
/// [`BLOOM_BANDS`] and the band that is ending. Their false-positive rates add
/// up, so each generation is sized for this share of `--fpr`.
pub fn bloom_filters_asked(retain: u32) -> u32 {
    // Written as early returns: rustc 1.95.0 at `-O` compiled the equivalent
    // `if retain <= MAX { retain.max(1) } else { BANDS + 1 }` to `retain.max(1)`,
    // so `--retain 1000` sized each band's filter for `--fpr / 1000` (the test
    // `each_generation_gets_its_share_of_the_budget` fails on a release build of
    // that form; a debug build was right).
    if retain > PER_WINDOW_MAX_RETAIN {
        return BLOOM_BANDS + 1;
    }
    if retain == 0 {
        1
    } else {
        retain
    }
}

/// One value per band of windows (`first ..= last`), ordered by first window.
///
/// A band is `width` windows, epoch-aligned like the windows themselves; width 1
/// is one value per window. Values loaded from a snapshot written with another
/// width keep their own spans beside the new bands until they fall out.
#[derive(Debug, Clone)]
pub struct Generations<T> {
    width: i64,
    gens: VecDeque<(WindowIndex, WindowIndex, T)>,
}

impl<T> Default for Generations<T> {
    fn default() -> Self {
        Generations::with_width(1)
    }
}

impl<T> Generations<T> {
    /// Bands of `width` windows (at least 1).
    pub fn with_width(width: i64) -> Generations<T> {
        Generations { width: width.max(1), gens: VecDeque::new() }
    }

    /// How many windows a band covers.
    pub fn width(&self) -> i64 {
        self.width
    }

    /// The band of window `w`: its first and last window.
    #[inline]
    pub fn band(&self, w: WindowIndex) -> (WindowIndex, WindowIndex) {
        let first = w.0.div_euclid(self.width).saturating_mul(self.width);
        (WindowIndex(first), WindowIndex(first.saturating_add(self.width - 1)))
    }

    /// Drops every generation whose windows are all older than `oldest`; returns
    /// how many.
    pub fn retire_before(&mut self, oldest: WindowIndex) -> usize {
        let before = self.gens.len();
        // Spans are ordered by first window; a wide loaded span may end after a
        // narrower one that follows it, so look at every one.
        self.gens.retain(|(_, last, _)| *last >= oldest);
        before - self.gens.len()
    }

    /// The generation of the band of window `w`, made with `make` if missing.
    pub fn get_or_insert_with(&mut self, w: WindowIndex, make: impl FnOnce() -> T) -> &mut T {
        let (first, last) = self.band(w);
        self.get_or_insert_span(first, last, make)
    }

    /// The generation spanning exactly `first ..= last`, made with `make` if missing.
    pub fn get_or_insert_span(
        &mut self,
        first: WindowIndex,
        last: WindowIndex,
        make: impl FnOnce() -> T,
    ) -> &mut T {
        // Generations are few and nearly always appended at the back.
        let pos = match self.gens.iter().rposition(|(f, _, _)| *f <= first) {
            Some(i) if self.gens[i].0 == first && self.gens[i].1 == last => i,
            Some(i) => {
                self.gens.insert(i + 1, (first, last, make()));
                i + 1
            }
            None => {
                self.gens.push_front((first, last, make()));
                0
            }
        };
        &mut self.gens[pos].2
    }

    /// The generations holding any window of `lo ..= hi`.
    pub fn range(&self, lo: WindowIndex, hi: WindowIndex) -> impl Iterator<Item = &T> {
        self.gens.iter().filter(move |(f, l, _)| *l >= lo && *f <= hi).map(|(_, _, t)| t)
    }

    /// The generation with the newest first window.
    pub fn newest(&self) -> Option<&T> {
        self.gens.back().map(|(_, _, t)| t)
    }

    /// Every generation with its first window.
    pub fn iter(&self) -> impl Iterator<Item = (WindowIndex, &T)> {
        self.gens.iter().map(|(f, _, t)| (*f, t))
    }

    /// Every generation with its first and last window.
    pub fn spans(&self) -> impl Iterator<Item = (WindowIndex, WindowIndex, &T)> {
        self.gens.iter().map(|(f, l, t)| (*f, *l, t))
    }

    /// Every generation, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (WindowIndex, &mut T)> {
        self.gens.iter_mut().map(|(f, _, t)| (*f, t))
    }

    /// How many generations are held.
    pub fn len(&self) -> usize {
        self.gens.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.gens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_aligned_indices() {
        let c = WindowClock::new(Some(10), 1);
        assert_eq!(c.index(0), WindowIndex(0));
        assert_eq!(c.index(9), WindowIndex(0));
        assert_eq!(c.index(10), WindowIndex(1));
        assert_eq!(c.index(-1), WindowIndex(-1));
        assert_eq!(WindowClock::new(None, 1).index(123456), WindowIndex(0));
    }

    #[test]
    fn placement_and_retirement() {
        let mut c = WindowClock::new(Some(10), 2);
        assert_eq!(
            c.place(WindowIndex(5)),
            (Placement::Retained { oldest: WindowIndex(4), own: WindowIndex(5) }, None)
        );
        assert_eq!(
            c.place(WindowIndex(4)).0,
            Placement::Retained { oldest: WindowIndex(4), own: WindowIndex(4) }
        );
        assert_eq!(c.place(WindowIndex(3)).0, Placement::Late);
        assert_eq!(
            c.place(WindowIndex(6)),
            (
                Placement::Retained { oldest: WindowIndex(5), own: WindowIndex(6) },
                Some(WindowIndex(5))
            )
        );
        assert_eq!(c.place(WindowIndex(4)).0, Placement::Late);
        let (_, r) = c.place(WindowIndex(100));
        assert_eq!(r, Some(WindowIndex(99)));
    }

    #[test]
    fn live_windows_grow_to_retain() {
        let mut c = WindowClock::new(Some(10), 3);
        assert_eq!(c.live(), 0);
        c.place(WindowIndex(7));
        assert_eq!(c.live(), 1);
        c.place(WindowIndex(8));
        assert_eq!(c.live(), 2);
        c.place(WindowIndex(20));
        assert_eq!(c.live(), 3);
        // Loaded from a snapshot: every retained window counts.
        let mut loaded = WindowClock::new(Some(10), 3);
        loaded.set_newest(Some(WindowIndex(5)));
        assert_eq!(loaded.live(), 3);
        let mut one = WindowClock::new(None, 1);
        one.place(WindowIndex(0));
        assert_eq!(one.live(), 1);
    }

    #[test]
    fn generations_stay_sorted() {
        let mut g: Generations<u32> = Generations::default();
        *g.get_or_insert_with(WindowIndex(5), || 5) += 0;
        g.get_or_insert_with(WindowIndex(3), || 3);
        g.get_or_insert_with(WindowIndex(4), || 4);
        g.get_or_insert_with(WindowIndex(7), || 7);
        assert_eq!(*g.get_or_insert_with(WindowIndex(4), || 99), 4);
        assert_eq!(g.iter().map(|(w, _)| w.0).collect::<Vec<_>>(), vec![3, 4, 5, 7]);
        assert_eq!(
            g.range(WindowIndex(4), WindowIndex(5)).copied().collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(g.retire_before(WindowIndex(5)), 2);
        assert_eq!(g.len(), 2);
    }
}
