//! The soak's per-second samples of the logdedup child and, with `--redis`, of
//! its `redis-server`.
//!
//! Memory is read from `/proc/PID/status` while the child runs, never from its
//! `ru_maxrss` at exit (a child's `ru_maxrss` can carry the high-water mark of
//! the parent it was forked from). After each sample the kernel's high-water mark
//! is reset (`5` into `/proc/PID/clear_refs`), so the next sample's `VmHWM` is the
//! peak of that second alone: a window's peak is caught even when it falls
//! between two samples. (logdedup reads the same mark for its own
//! `peak_rss_bytes`, which then covers only its last second; the run's peak is
//! the highest of the samples' peaks.)

use std::fs;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::feed::{stat_cpu_ticks, Counts};
use crate::error::{Error, Result};
use crate::export::{bytes, si};
use crate::redis_server::RedisServer;

/// Groups of the Redis layout (`logdedup:{g<g>}:w<w>:m`, REDIS.md, layout v1).
const REDIS_GROUPS: u32 = 256;
/// The set of the journals not yet compacted (REDIS.md, layout v1).
const JOURNAL_DIR: &str = "logdedup:{j}:dir";

/// One per-second sample.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakSample {
    /// Seconds since the child started.
    pub t_s: f64,
    /// Records written to the child so far.
    pub records_in: u64,
    /// Records the child emitted so far.
    pub emitted: u64,
    /// Records per second over the last interval.
    pub records_per_s: f64,
    /// Child's resident set (`VmRSS`), bytes; 0 once it has exited.
    pub rss_bytes: u64,
    /// Child's peak resident set since the previous sample (`VmHWM`, reset after
    /// each sample), bytes.
    #[serde(default)]
    pub peak_rss_bytes: u64,
    /// The window of the newest record fed (event time), or of the wall clock.
    #[serde(default)]
    pub window: i64,
    /// Whether the feeder was still running: the whole interval was stream.
    #[serde(default)]
    pub feeding: bool,
    /// CPU seconds (user + system) the child used so far.
    #[serde(default)]
    pub cpu_s: f64,
    /// Seconds the feeder spent waiting on the full pipe so far.
    #[serde(default)]
    pub feeder_wait_s: f64,
    /// The machine's 1-minute load average (`/proc/loadavg`): runnable threads
    /// of every process, the harness's and logdedup's included. Above the CPU
    /// count, logdedup waited for a CPU.
    #[serde(default)]
    pub load1: f64,
    /// The Redis server, with `--redis`.
    #[serde(default)]
    pub redis: Option<RedisSample>,
}

/// What the Redis server held and spent at one sample.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct RedisSample {
    /// `INFO memory` `used_memory`, bytes.
    pub used_memory: u64,
    /// `INFO cpu` `used_cpu_user + used_cpu_sys`, seconds so far.
    pub cpu_s: f64,
    /// IDs Redis holds: the sum of the `n` of every bucket directory of the
    /// windows the run reached (expired windows are gone and count nothing), plus
    /// `journaled_ids`.
    pub live_ids: u64,
    /// IDs in journals not yet compacted into buckets.
    #[serde(default)]
    pub journaled_ids: u64,
    /// `INFO stats` `expired_stale_perc`: Redis's estimate of the share of its
    /// keys with an expiry that have expired but are not reclaimed yet.
    #[serde(default)]
    pub expired_stale_perc: f64,
}

/// Milliseconds since the epoch, the clock logdedup's arrival time reads.
pub(super) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Samples the child and the Redis server once a second.
pub(super) struct Probe {
    window_of: Box<dyn Fn(u64) -> i64 + Send>,
    redis: Option<redis::Connection>,
    seconds: Option<u64>,
    /// The window the stream starts in.
    pub first_window: i64,
    /// Whether resetting the high-water mark worked (else peaks are since start).
    pub peak_per_interval: bool,
}

impl Probe {
    /// A probe; `window_of(records fed)` says which window the stream is in.
    pub fn new(
        window_of: Box<dyn Fn(u64) -> i64 + Send>,
        redis: Option<&RedisServer>,
        seconds: Option<u64>,
    ) -> Result<Probe> {
        let redis = match redis {
            Some(r) => Some(
                redis::Client::open(r.url())
                    .and_then(|c| c.get_connection())
                    .map_err(Error::redis(r.url()))?,
            ),
            None => None,
        };
        let first_window = window_of(0);
        Ok(Probe { window_of, redis, seconds, first_window, peak_per_interval: true })
    }

    /// Sets `NAME=VALUE` settings on the Redis server (`CONFIG SET`).
    pub fn configure(&mut self, settings: &[String]) -> Result<()> {
        let Some(con) = self.redis.as_mut() else { return Ok(()) };
        for kv in settings {
            let bad = |message: String| Error::Usage { flag: "--redis-config", message };
            let (k, v) =
                kv.split_once('=').ok_or_else(|| bad(format!("'{kv}' is not NAME=VALUE")))?;
            redis::cmd("CONFIG")
                .arg("SET")
                .arg(k)
                .arg(v)
                .query::<()>(con)
                .map_err(|e| bad(format!("CONFIG SET {k} {v}: {e}")))?;
        }
        Ok(())
    }

    /// The window the stream is in after `fed` records.
    pub fn window(&self, fed: u64) -> i64 {
        (self.window_of)(fed)
    }

    /// Samples the child `pid` once a second until the feeder ends (and one more
    /// sample, of the drain) or the time limit passes.
    pub fn sample(
        &mut self,
        pid: u32,
        counts: &Counts,
        writer: &JoinHandle<()>,
    ) -> Vec<SoakSample> {
        let start = Instant::now();
        let mut samples: Vec<SoakSample> = Vec::new();
        let (mut last_t, mut last_n) = (0.0, 0u64);
        loop {
            // Keep to whole seconds from the start, whatever each sample took.
            let next = Duration::from_secs(samples.len() as u64 + 1);
            thread::sleep(next.saturating_sub(start.elapsed()));
            let feeding = !writer.is_finished();
            let t = start.elapsed().as_secs_f64();
            let n = counts.fed.load(Ordering::Relaxed);
            let s =
                self.one(pid, counts, t, n, (n - last_n) as f64 / (t - last_t).max(1e-9), feeding);
            eprintln!(
                "soak {t:>6.1} s  {n:>13} records  {:>10}/s  RSS {}{}",
                si(s.records_per_s),
                bytes(s.rss_bytes),
                s.redis.map_or(String::new(), |r| format!(
                    "  Redis {} for {} IDs",
                    bytes(r.used_memory),
                    crate::export::count(r.live_ids)
                ))
            );
            samples.push(s);
            (last_t, last_n) = (t, n);
            if !feeding || self.seconds.is_some_and(|limit| t >= limit as f64) {
                return samples;
            }
        }
    }

    /// One sample at `t` seconds, `n` records fed.
    fn one(
        &mut self,
        pid: u32,
        counts: &Counts,
        t: f64,
        n: u64,
        rate: f64,
        feeding: bool,
    ) -> SoakSample {
        let (rss, hwm) = proc_status(pid);
        // The peak of the next second starts from here (Linux ≥ 4.0).
        if fs::write(format!("/proc/{pid}/clear_refs"), "5").is_err() && rss > 0 {
            self.peak_per_interval = false;
        }
        let cpu = fs::read_to_string(format!("/proc/{pid}/stat")).map_or(0, |s| stat_cpu_ticks(&s));
        let window = self.window(n);
        let redis = self.redis_sample(window);
        SoakSample {
            t_s: t,
            records_in: n,
            emitted: counts.emitted.load(Ordering::Relaxed),
            records_per_s: rate,
            rss_bytes: rss,
            peak_rss_bytes: hwm,
            window,
            feeding,
            cpu_s: cpu as f64 / 100.0,
            feeder_wait_s: counts.wait_ns.load(Ordering::Relaxed) as f64 / 1e9,
            load1: fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0),
            redis,
        }
    }

    /// `INFO memory`, `INFO cpu`, and the IDs of the windows from the first to
    /// the one after `window` (the window of the newest record fed; logdedup may
    /// be a window ahead of the sample), in buckets and in journals.
    pub fn redis_sample(&mut self, window: i64) -> Option<RedisSample> {
        let con = self.redis.as_mut()?;
        let memory: String = redis::cmd("INFO").arg("memory").query(con).ok()?;
        let cpu: String = redis::cmd("INFO").arg("cpu").query(con).ok()?;
        let stats: String = redis::cmd("INFO").arg("stats").query(con).ok()?;
        let mut pipe = redis::pipe();
        for w in self.first_window..=window + 1 {
            for g in 0..REDIS_GROUPS {
                pipe.cmd("HGET").arg(format!("logdedup:{{g{g}}}:w{w}:m")).arg("n");
            }
        }
        let bucketed: Vec<Option<u64>> = pipe.query(con).ok()?;
        let journals: Vec<String> = redis::cmd("SMEMBERS").arg(JOURNAL_DIR).query(con).ok()?;
        let mut pipe = redis::pipe();
        for j in &journals {
            pipe.cmd("STRLEN").arg(j);
        }
        let lens: Vec<u64> = if journals.is_empty() { Vec::new() } else { pipe.query(con).ok()? };
        let journaled_ids = lens.into_iter().map(journal_ids).sum::<u64>();
        Some(RedisSample {
            used_memory: info_number(&memory, "used_memory")? as u64,
            cpu_s: info_number(&cpu, "used_cpu_user")? + info_number(&cpu, "used_cpu_sys")?,
            live_ids: bucketed.into_iter().flatten().sum::<u64>() + journaled_ids,
            journaled_ids,
            expired_stale_perc: info_number(&stats, "expired_stale_perc").unwrap_or(0.0),
        })
    }
}

/// IDs in a journal of `len` bytes: `LDJ1`, then per window a 12-byte header and
/// 9 bytes per ID. The headers' 3 bytes over a multiple of 9 tell how many
/// windows there are (one to three; a batch spans more only across three
/// rotations).
fn journal_ids(len: u64) -> u64 {
    let Some(body) = len.checked_sub(4).filter(|&b| b > 0) else { return 0 };
    let windows = match (body % 9) / 3 {
        0 => 3,
        k => k,
    };
    body.saturating_sub(12 * windows) / 9
}

/// A numeric field of an `INFO` reply.
pub(super) fn info_number(info: &str, name: &str) -> Option<f64> {
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
}

/// `VmRSS` and `VmHWM` of `pid`, bytes; zeros once it has exited.
fn proc_status(pid: u32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read_by_exact_name() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_rss:2000000\r\n\
                    used_cpu_sys:1.250000\r\nused_cpu_user:0.5\r\n";
        assert_eq!(info_number(info, "used_memory"), Some(1_048_576.0));
        assert_eq!(info_number(info, "used_memory_rss"), Some(2_000_000.0));
        assert_eq!(info_number(info, "used_cpu_sys"), Some(1.25));
        assert_eq!(info_number(info, "used_cpu"), None);
    }

    #[test]
    fn journal_ids_from_its_length() {
        for (windows, ids) in [(1u64, 0u64), (1, 1), (1, 2_900), (2, 7), (3, 500)] {
            assert_eq!(journal_ids(4 + 12 * windows + 9 * ids), ids, "{windows} {ids}");
        }
        assert_eq!(journal_ids(0), 0);
        assert_eq!(journal_ids(4), 0);
    }

    /// This process's own status: a resident set above zero, a peak at or above it.
    #[test]
    fn status_of_a_live_process() {
        let (rss, hwm) = proc_status(std::process::id());
        assert!(rss > 0 && hwm >= rss, "{rss} {hwm}");
        assert_eq!(proc_status(u32::MAX), (0, 0));
    }
}
