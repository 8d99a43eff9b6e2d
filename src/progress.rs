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
    pub fn update(&mut self, stats: &Stats) {
        if !self.on || self.last.elapsed() < EVERY {
            return;
        }
        self.last = Instant::now();
        eprint!("\r{}   ", line(stats, self.started.elapsed()));
    }

    /// Erases the line.
    pub fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

/// The text of the line after `elapsed`.
fn line(s: &Stats, elapsed: Duration) -> String {
    let rate = s.records_in as f64 / elapsed.as_secs_f64();
    format!(
        "logdedup: {} in, {} emitted, {} duplicates, {:.0} records/s",
        s.records_in, s.emitted, s.duplicates, rate
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counts_and_rate() {
        let s = Stats { records_in: 3000, emitted: 2000, duplicates: 1000, ..Stats::default() };
        assert_eq!(
            line(&s, Duration::from_secs(2)),
            "logdedup: 3000 in, 2000 emitted, 1000 duplicates, 1500 records/s"
        );
    }
}
