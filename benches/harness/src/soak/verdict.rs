//! The soak's criteria, judged from its samples alone (pure functions, so the
//! tests pin them on made-up runs):
//!
//! - **rate constant**: records/s over the second half of the run (by wall time)
//!   at least [`RATE_FLOOR`] × the first half's;
//! - **memory flat**: from the first rotation on, the peak RSS of every window the
//!   stream went through whole stays within ±[`RSS_BAND`] of the median of those
//!   peaks. Within a window RSS rises as the window fills and falls when it
//!   rotates out (with `--retain 1`, from a few MiB to the window's size), so what
//!   must not move is each window's peak: a leak or a growing table would raise
//!   it, window after window;
//! - **Redis memory per ID**: `used_memory` over the IDs Redis holds, at every
//!   sample from the first rotation on with at least [`REDIS_MIN_IDS`] of them,
//!   at most [`REDIS_MAX_BYTES_PER_ID`];
//! - and, as information: the share of the run the feeder waited on the full
//!   pipe (logdedup, not the generator, set the pace when it is well above 0).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SoakSample;

/// The second half's rate over the first half's, at least.
pub const RATE_FLOOR: f64 = 0.9;
/// How far a window's peak RSS may stray from the median peak.
pub const RSS_BAND: f64 = 0.10;
/// Redis bytes per live ID, at most.
pub const REDIS_MAX_BYTES_PER_ID: f64 = 12.0;
/// Below this many IDs Redis's own megabyte dominates its bytes per ID.
pub const REDIS_MIN_IDS: u64 = 1_000_000;

/// The peak and the lowest resident set of one window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowRss {
    /// The window index.
    pub window: i64,
    /// The highest RSS while the stream was in it, bytes.
    pub peak_bytes: u64,
    /// The lowest RSS sampled while the stream was in it, bytes.
    pub low_bytes: u64,
}

/// One half of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Half {
    /// Records/s.
    pub records_per_s: f64,
    /// logdedup's CPU seconds per second.
    pub cores: f64,
    /// logdedup's CPU time per record, µs.
    pub cpu_us_per_record: f64,
}

/// The criteria, with the figures they were judged on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Records/s over the first and the second half of the run (wall time).
    pub half_rates: (f64, f64),
    /// Second half at least [`RATE_FLOOR`] × the first.
    pub rate_ok: bool,
    /// The two halves in full: what logdedup's rate is made of. A rate that
    /// falls while the CPU per record stays put was given less CPU (the machine),
    /// not made slower by the stream.
    #[serde(default)]
    pub halves: Option<[Half; 2]>,
    /// Every whole window from the first rotation on.
    pub windows: Vec<WindowRss>,
    /// The median of their peaks, bytes.
    pub median_peak_bytes: u64,
    /// The lowest and the highest peak over that median, minus 1.
    pub peak_spread: (f64, f64),
    /// Both within ±[`RSS_BAND`] (and at least two windows to compare).
    pub rss_ok: bool,
    /// Redis bytes per live ID from the first rotation on: the highest sample,
    /// and the IDs it had.
    pub redis_bytes_per_id: Option<(f64, u64)>,
    /// The same in the first window (shown, not judged: the first window is
    /// built from an empty server).
    #[serde(default)]
    pub redis_bytes_per_id_before: Option<(f64, u64)>,
    /// At most [`REDIS_MAX_BYTES_PER_ID`].
    pub redis_ok: Option<bool>,
    /// Share of the wall time the feeder waited on the full pipe.
    pub feeder_wait_share: f64,
}

/// Judges a run from its samples; `first_window` is the window it started in.
pub fn judge(samples: &[SoakSample], first_window: i64) -> Verdict {
    let halves = halves(samples);
    let half_rates = halves.map_or((0.0, 0.0), |[a, b]| (a.records_per_s, b.records_per_s));
    let windows = window_rss(samples, first_window);
    let mut peaks: Vec<u64> = windows.iter().map(|w| w.peak_bytes).collect();
    peaks.sort_unstable();
    let median = peaks.get(peaks.len() / 2).copied().unwrap_or(0);
    let spread = |b: Option<&u64>| b.map_or(0.0, |&b| b as f64 / median.max(1) as f64 - 1.0);
    let peak_spread = (spread(peaks.first()), spread(peaks.last()));
    let redis_bytes_per_id = redis_peak(samples.iter().filter(|s| s.window > first_window));
    let redis_bytes_per_id_before = redis_peak(samples.iter().filter(|s| s.window == first_window));
    let any_redis = samples.iter().any(|s| s.redis.is_some());
    let fed = samples.iter().rev().find(|s| s.feeding).or(samples.last());
    Verdict {
        half_rates,
        halves,
        rate_ok: half_rates.0 > 0.0 && half_rates.1 >= RATE_FLOOR * half_rates.0,
        rss_ok: peaks.len() >= 2 && peak_spread.0 >= -RSS_BAND && peak_spread.1 <= RSS_BAND,
        windows,
        median_peak_bytes: median,
        peak_spread,
        redis_ok: any_redis
            .then(|| redis_bytes_per_id.is_some_and(|(b, _)| b <= REDIS_MAX_BYTES_PER_ID)),
        redis_bytes_per_id,
        redis_bytes_per_id_before,
        feeder_wait_share: fed.map_or(0.0, |s| s.feeder_wait_s / s.t_s.max(1e-9)),
    }
}

/// The highest Redis bytes per live ID among `samples` with at least
/// [`REDIS_MIN_IDS`] IDs, and the IDs it had.
fn redis_peak<'a>(samples: impl Iterator<Item = &'a SoakSample>) -> Option<(f64, u64)> {
    samples
        .filter_map(|s| s.redis)
        .filter(|r| r.live_ids >= REDIS_MIN_IDS)
        .map(|r| (r.used_memory as f64 / r.live_ids as f64, r.live_ids))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The first and the second half of the run by wall time, over the samples
/// taken while the feeder ran (the last interval, where it stopped, is partial).
fn halves(samples: &[SoakSample]) -> Option<[Half; 2]> {
    let fed: Vec<&SoakSample> = samples.iter().filter(|s| s.feeding).collect();
    let end = *fed.last()?;
    let mid = *fed.iter().find(|s| s.t_s >= end.t_s / 2.0)?;
    if mid.t_s >= end.t_s || mid.records_in == 0 || end.records_in <= mid.records_in {
        return None;
    }
    let half = |dt: f64, records: u64, cpu: f64| Half {
        records_per_s: records as f64 / dt,
        cores: cpu / dt,
        cpu_us_per_record: cpu * 1e6 / records as f64,
    };
    Some([
        half(mid.t_s, mid.records_in, mid.cpu_s),
        half(end.t_s - mid.t_s, end.records_in - mid.records_in, end.cpu_s - mid.cpu_s),
    ])
}

/// The RSS of each window the stream went through whole after `first`: an
/// interval's peak belongs to the window the interval began in (a peak just
/// before a rotation is the old window's).
fn window_rss(samples: &[SoakSample], first: i64) -> Vec<WindowRss> {
    let Some(last) = samples.last().map(|s| s.window) else { return Vec::new() };
    let whole = |w: i64| w > first && w < last;
    let mut by_window: BTreeMap<i64, WindowRss> = BTreeMap::new();
    let mut began_in = first;
    for s in samples {
        if whole(began_in) && s.peak_rss_bytes > 0 {
            let e = at(&mut by_window, began_in);
            e.peak_bytes = e.peak_bytes.max(s.peak_rss_bytes);
        }
        if whole(s.window) && s.rss_bytes > 0 {
            let e = at(&mut by_window, s.window);
            e.low_bytes = e.low_bytes.min(s.rss_bytes);
        }
        began_in = s.window;
    }
    by_window.into_values().filter(|w| w.peak_bytes > 0 && w.low_bytes != u64::MAX).collect()
}

fn at(m: &mut BTreeMap<i64, WindowRss>, w: i64) -> &mut WindowRss {
    m.entry(w).or_insert(WindowRss { window: w, peak_bytes: 0, low_bytes: u64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::RedisSample;

    const MIB: u64 = 1 << 20;

    /// A sample at second `t` with `n` records fed, in `window`, RSS `rss` MiB and
    /// a peak of `peak` MiB since the sample before.
    fn s(t: f64, n: u64, window: i64, rss: u64, peak: u64) -> SoakSample {
        SoakSample {
            t_s: t,
            records_in: n,
            emitted: n,
            records_per_s: 0.0,
            rss_bytes: rss * MIB,
            peak_rss_bytes: peak * MIB,
            window,
            feeding: true,
            cpu_s: t,
            feeder_wait_s: t / 4.0,
            load1: 0.0,
            redis: None,
        }
    }

    /// A sawtooth: each window of 3 samples fills from 10 to 100 MiB (peaks
    /// `peaks[w]`), 1M records a second; the last window is partial.
    fn sawtooth(peaks: &[u64]) -> Vec<SoakSample> {
        let mut v = Vec::new();
        for (w, &p) in peaks.iter().enumerate() {
            for k in 0..3u64 {
                let t = (v.len() + 1) as f64;
                let rss = [10, 50, p][k as usize];
                // The first interval of a window holds the old window's peak.
                let peak = if k == 0 && w > 0 { peaks[w - 1] } else { rss };
                v.push(s(t, t as u64 * 1_000_000, 7 + w as i64, rss, peak));
            }
        }
        v
    }

    #[test]
    fn a_steady_sawtooth_is_flat() {
        let v = judge(&sawtooth(&[80, 100, 102, 98, 101, 40]), 7);
        // Windows 8..=11: not the first (7), not the partial last (12).
        assert_eq!(v.windows.iter().map(|w| w.window).collect::<Vec<_>>(), [8, 9, 10, 11]);
        assert_eq!(
            v.windows[0],
            WindowRss { window: 8, peak_bytes: 100 * MIB, low_bytes: 10 * MIB }
        );
        assert_eq!(v.median_peak_bytes, 101 * MIB);
        assert!(v.rss_ok, "{v:?}");
        assert!((v.feeder_wait_share - 0.25).abs() < 1e-9);
    }

    #[test]
    fn a_growing_peak_is_not_flat() {
        let v = judge(&sawtooth(&[80, 100, 110, 120, 130, 140, 150, 40]), 7);
        assert!(!v.rss_ok, "{v:?}");
        assert!(v.peak_spread.1 > RSS_BAND, "{v:?}");
        // One window is not a comparison.
        assert!(!judge(&sawtooth(&[80, 100, 40]), 7).rss_ok);
    }

    #[test]
    fn halves_by_wall_time_and_the_partial_last_interval_left_out() {
        // 1M/s for 10 s, then 0.85M/s for 10 s; a partial last second at 0.1M/s.
        let mut v: Vec<SoakSample> = (1..=20)
            .map(|t| {
                let n = if t <= 10 { t * 1_000_000 } else { 10_000_000 + (t - 10) * 850_000 };
                s(t as f64, n, 0, 10, 10)
            })
            .collect();
        let mut tail = s(21.0, 18_600_000, 0, 0, 0);
        tail.feeding = false;
        v.push(tail);
        let j = judge(&v, 0);
        assert_eq!(j.half_rates, (1_000_000.0, 850_000.0));
        assert!(!j.rate_ok);
        // One CPU second per second throughout (`s` sets cpu_s = t): 1 µs per
        // record in the first half, 1/0.85 in the second.
        let [a, b] = j.halves.unwrap();
        assert_eq!((a.cores, b.cores), (1.0, 1.0));
        assert!((a.cpu_us_per_record - 1.0).abs() < 1e-9, "{a:?}");
        assert!((b.cpu_us_per_record - 1.0 / 0.85).abs() < 1e-9, "{b:?}");
        for x in &mut v[10..20] {
            x.records_in = 10_000_000 + (x.t_s as u64 - 10) * 950_000;
        }
        assert!(judge(&v, 0).rate_ok);
    }

    #[test]
    fn redis_bytes_per_id_from_the_first_rotation_and_a_million_ids_on() {
        let mut v = sawtooth(&[80, 100, 100, 40]);
        let r = |used_memory: u64, live_ids: u64| {
            Some(RedisSample {
                used_memory,
                cpu_s: 0.0,
                live_ids,
                journaled_ids: 0,
                expired_stale_perc: 0.0,
            })
        };
        v[1].redis = r(40_000_000, 2_000_000); // the first window: shown, not judged
        v[3].redis = r(1_000_000, 1_000); // too few IDs to judge
        v[4].redis = r(10_000_000, 1_000_000);
        v[5].redis = r(23_000_000, 2_000_000);
        let j = judge(&v, 7);
        assert_eq!(j.redis_bytes_per_id, Some((11.5, 2_000_000)));
        assert_eq!(j.redis_bytes_per_id_before, Some((20.0, 2_000_000)));
        assert_eq!(j.redis_ok, Some(true));
        v[6].redis = r(37_000_000, 3_000_000);
        assert_eq!(judge(&v, 7).redis_ok, Some(false));
        assert_eq!(judge(&sawtooth(&[1, 2]), 7).redis_ok, None);
    }
}
