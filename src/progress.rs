//! The progress line on stderr: shown only when stderr is a terminal, redrawn at
//! most once a second, and cleared at the end so the summary starts on a clean line.
//! Drawn by `indicatif`, which fits the line to the terminal's width (a line
//! longer than the terminal, redrawn by hand with `\r`, left a row behind at each
//! redraw) and clears it.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::stats::Stats;

/// How often the line is redrawn. The pipeline asks once a batch; between
/// redraws that costs a clock read, as the line drawn by hand did.
const EVERY: Duration = Duration::from_secs(1);

/// The progress line of a run.
#[derive(Debug)]
pub struct Progress {
    /// `None` when no line is shown.
    bar: Option<ProgressBar>,
    started: Instant,
    last: Instant,
}

impl Progress {
    /// A progress line for a run that started at `started`, drawn only if
    /// `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, started: Instant) -> Progress {
        let bar = (wanted && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(ProgressStyle::with_template("{wide_msg}").expect("a valid template"));
            bar
        });
        Progress { bar, started, last: Instant::now() }
    }

    /// Redraws the line from `stats` if a second has passed since the last time.
    /// `written`: the records emitted that are out of the output buffer (those
    /// still in it are not shown as written).
    pub fn update(&mut self, stats: &Stats, written: u64) {
        let Some(bar) = &self.bar else { return };
        if self.last.elapsed() < EVERY {
            return;
        }
        self.last = Instant::now();
        bar.set_message(line(stats, written, self.started.elapsed()));
    }

    /// Erases the line.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
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
