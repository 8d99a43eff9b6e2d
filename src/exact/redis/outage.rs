//! What the user hears of a Redis outage: a line on stderr when it starts, at
//! most one more every [`EVERY`] while it lasts (with the count so far), and one
//! when it ends; and whether one is under way, for the stats.
//!
//! Pure bookkeeping over instants given by the caller, so that the rate limit is
//! tested without waiting.

use std::time::{Duration, Instant};

/// At most one line per this long, except the one that says an outage ended
/// after its start was said.
pub(super) const EVERY: Duration = Duration::from_secs(10);

/// The outage bookkeeping of one tier.
#[derive(Debug, Default)]
pub(super) struct Outage {
    /// When the current outage started (`None`: none under way).
    since: Option<Instant>,
    /// Failed batches in the current outage.
    failures: u64,
    /// Outages started since the last line, and their failures (those whose lines
    /// the rate limit held back).
    unsaid: u64,
    unsaid_failures: u64,
    /// Whether the current outage's start was said.
    said: bool,
    /// When the last line was written.
    last_line: Option<Instant>,
    /// Outages started so far.
    pub(super) count: u64,
}

impl Outage {
    /// Whether an outage is under way.
    pub(super) fn active(&self) -> bool {
        self.since.is_some()
    }

    fn may_say(&self, now: Instant) -> bool {
        self.last_line.is_none_or(|t| now.duration_since(t) >= EVERY)
    }

    /// A batch failed with `error`; returns the line to write, if one is due.
    pub(super) fn failed(&mut self, now: Instant, error: &str) -> Option<String> {
        let Some(since) = self.since else {
            self.since = Some(now);
            self.failures = 1;
            self.count += 1;
            self.said = self.may_say(now);
            if !self.said {
                self.unsaid += 1;
                return None;
            }
            self.last_line = Some(now);
            let earlier = self.take_unsaid();
            return Some(format!(
                "{error}; answering by --on-exact-error until it is back{earlier}"
            ));
        };
        self.failures += 1;
        if !self.may_say(now) {
            return None;
        }
        self.last_line = Some(now);
        self.said = true;
        Some(format!(
            "still failing after {:.0} s, {} failed batches so far: {error}",
            now.duration_since(since).as_secs_f64(),
            self.failures
        ))
    }

    /// A call worked; returns the line to write if an outage ended and is due.
    pub(super) fn ok(&mut self, now: Instant) -> Option<String> {
        let since = self.since.take()?;
        let (failures, said) = (std::mem::take(&mut self.failures), self.said);
        if !said {
            // Its start was held back: so is its end, unless a line is due anyway.
            if !self.may_say(now) {
                self.unsaid_failures += failures;
                return None;
            }
            self.unsaid -= 1;
        }
        self.last_line = Some(now);
        let earlier = self.take_unsaid();
        Some(format!(
            "answering again after {:.1} s; {failures} batches failed meanwhile{earlier}",
            now.duration_since(since).as_secs_f64()
        ))
    }

    /// A note on outages whose lines the rate limit held back, if any.
    fn take_unsaid(&mut self) -> String {
        let (n, f) = (std::mem::take(&mut self.unsaid), std::mem::take(&mut self.unsaid_failures));
        if n == 0 {
            return String::new();
        }
        format!(" (and {n} shorter outages before, {f} failed batches, not said one by one)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_start_end_and_at_most_one_line_per_interval() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut o = Outage::default();
        assert!(!o.active());
        assert_eq!(o.ok(at(0)), None, "no outage, nothing to say");
        let l = o.failed(at(0), "Redis at x: refused").unwrap();
        assert!(l.starts_with("Redis at x: refused"), "{l}");
        assert!(o.active());
        // More failures within the interval say nothing; after it, one line with the count.
        assert_eq!(o.failed(at(100), "e"), None);
        assert_eq!(o.failed(at(9_000), "e"), None);
        let l = o.failed(at(10_000), "e").unwrap();
        assert!(l.contains("4 failed batches so far"), "{l}");
        assert_eq!(o.failed(at(12_000), "e"), None);
        // The end is said even within the interval, once its start was.
        let l = o.ok(at(12_500)).unwrap();
        assert!(l.contains("after 12.5 s; 5 batches failed"), "{l}");
        assert!(!o.active());
        assert_eq!(o.ok(at(12_600)), None);
        // A blip right after is held back, start and end; the next line tells of it.
        assert_eq!(o.failed(at(13_000), "e"), None);
        assert_eq!(o.ok(at(13_100)), None);
        assert_eq!(o.count, 2);
        let l = o.failed(at(30_000), "e").unwrap();
        assert!(l.contains("1 shorter outages before, 1 failed batches"), "{l}");
        assert_eq!(o.count, 3);
    }

    #[test]
    fn a_held_back_end_is_said_once_the_interval_passed() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut o = Outage::default();
        o.failed(at(0), "e").unwrap();
        o.ok(at(1)).unwrap();
        assert_eq!(o.failed(at(2), "e"), None);
        // Twenty seconds on: the end of the unsaid outage is said, with its count.
        let l = o.ok(at(22)).unwrap();
        assert!(l.contains("after 20.0 s; 1 batches failed"), "{l}");
    }
}
