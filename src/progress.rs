//! The progress line on stderr: shown only when stderr is a terminal, redrawn at
//! most once a second, and cleared at the end so the summary starts on a clean line.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use crate::stats::Stats;

/// How often the line is redrawn.
const EVERY: Duration = Duration::from_secs(1);

/// The progress line of a run.
#[derive(Debug)]
pub struct Progress {
    on: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    /// A progress line for a run that started at `started`, drawn only if
    /// `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, started: Instant) -> Progress {
        Progress { on: wanted && io::stderr().is_terminal(), started, last: Instant::now() }
    }

    /// Redraws the line from `stats` if a second has passed since the last time.
    /// `written`: the records emitted that are out of the output buffer (those
    /// still in it are not shown as written).
    pub fn update(&mut self, stats: &Stats, written: u64) {
        if !self.on || self.last.elapsed() < EVERY {
            return;
        }
        self.last = Instant::now();
        eprint!("\r{}   ", line(stats, written, self.started.elapsed()));
    }

    /// Erases the line.
    pub fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

/// The text of the line after `elapsed`.
fn line(s: &Stats, written: u64, elapsed: Duration) -> String {
    let rate = s.records_in as f64 / elapsed.as_secs_f64();
    format!(
        "logdedup: {} in, {written} written, {} duplicates, {rate:.0} records/s",
        s.records_in, s.duplicates
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counts_and_rate() {
        let s = Stats { records_in: 3000, emitted: 2000, duplicates: 1000, ..Stats::default() };
        // 1500 of the 2000 emitted are out of the buffer: only they show.
        assert_eq!(
            line(&s, 1500, Duration::from_secs(2)),
            "logdedup: 3000 in, 1500 written, 1000 duplicates, 1500 records/s"
        );
    }
}
