//! The soak's pipes: the generator writing into logdedup's stdin, a thread
//! counting the lines it writes out, and the generator's own speed.
//!
//! The feeder times each write: a write into a full pipe waits until logdedup
//! has read, so the share of the run spent waiting says whether logdedup (not the
//! generator) set the pace.

use std::fs;
use std::io::{Read, Write};
use std::process::{ChildStdin, ChildStdout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::gen::Generator;
use crate::spec::GenConfig;

/// Bytes per write into the pipe.
const CHUNK: usize = 1 << 20;

/// What the feeding and counting threads share with the sampler.
#[derive(Clone, Default)]
pub(super) struct Counts {
    /// Records written to the child so far.
    pub fed: Arc<AtomicU64>,
    /// Lines the child wrote so far.
    pub emitted: Arc<AtomicU64>,
    /// Nanoseconds the feeder spent in `write` (waiting on the full pipe).
    pub wait_ns: Arc<AtomicU64>,
    /// CPU time of the feeding thread, in clock ticks (1/100 s), when it ended.
    pub feeder_cpu_ticks: Arc<AtomicU64>,
    /// Tells the feeder to stop (the time limit is up).
    pub stop: Arc<AtomicBool>,
}

/// How fast the generator alone renders records (about one second of work).
pub(super) fn generator_rate(cfg: &GenConfig) -> f64 {
    let mut g = Generator::new(cfg);
    let mut buf = Vec::with_capacity(CHUNK);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..10_000 {
            if g.next_into(&mut buf).is_none() {
                break;
            }
            n += 1;
            if buf.len() > CHUNK {
                buf.clear();
            }
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Feeds generated records into the child's stdin, 1 MiB at a time, until the
/// generator ends or `stop` is set; closing stdin then ends logdedup's input.
pub(super) fn feed(mut stdin: ChildStdin, gen: GenConfig, counts: Counts) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut g = Generator::new(&gen);
        let mut buf = Vec::with_capacity(CHUNK);
        let mut n = 0u64;
        loop {
            let more = g.next_into(&mut buf).is_some();
            if more {
                n += 1;
            }
            if buf.len() >= CHUNK - 4096 || !more {
                let t = Instant::now();
                let ok = stdin.write_all(&buf).is_ok();
                counts.wait_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                if !ok {
                    break;
                }
                buf.clear();
                counts.fed.store(n, Ordering::Relaxed);
                if !more || counts.stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
        counts.feeder_cpu_ticks.store(thread_cpu_ticks(), Ordering::Relaxed);
        // Dropping stdin closes the pipe: logdedup sees end of input.
    })
}

/// The calling thread's user + system CPU time, in clock ticks (`USER_HZ`, 100 on
/// Linux), from `/proc/thread-self/stat`; 0 where that cannot be read.
fn thread_cpu_ticks() -> u64 {
    fs::read_to_string("/proc/thread-self/stat").map_or(0, |s| stat_cpu_ticks(&s))
}

/// utime + stime of a `/proc/…/stat` line: fields 14 and 15, counted after the
/// command name, which is in parentheses and may hold spaces.
pub(super) fn stat_cpu_ticks(stat: &str) -> u64 {
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> =
        rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum()
}

/// Counts the lines the child writes, into `emitted`.
pub(super) fn count_lines(mut stdout: ChildStdout, emitted: Arc<AtomicU64>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 18];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            let lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            emitted.fetch_add(lines, Ordering::Relaxed);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields 14 and 15 of `stat`, with a command name that holds `) ` and spaces.
    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        let line = "4242 (a) b c) S 1 4242 4242 0 -1 4194304 120 0 0 0 250 37 0 0 20 0 3 0 9 0";
        assert_eq!(stat_cpu_ticks(line), 287);
        assert_eq!(stat_cpu_ticks("garbage"), 0);
        assert!(thread_cpu_ticks() < 100 * 3600, "this thread has not run for an hour");
    }
}
