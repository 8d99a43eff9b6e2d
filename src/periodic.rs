//! What a long run reports while it runs: the `--metrics` series and, every
//! `--stats-every`, the `--stats-json` file (rewritten atomically) and the summary
//! on stderr (when stderr is not a terminal, where the progress line is drawn).
//!
//! The pipeline calls [`Periodic::tick`] after each batch and each idle wake-up
//! with its running counters, which only costs a few atomic stores. The figures
//! of the tiers (IDs and bytes held, bloom fill, which scans the bloom bits) are
//! gathered only when due: at most every 10 s and only after a scrape for the
//! metrics, and at the `--stats-every` interval.

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::ReportConfig;
use crate::error::Result;
use crate::metrics::{Endpoint, Metrics};
use crate::stats::Stats;

/// How often at most the tier gauges of `--metrics` are refreshed, and only after
/// a scrape. They scan the bloom bits: one scan cost 2.2 % of the instructions of
/// a 200k-record run under `--exact none` (callgrind, 516.4M against 527.7M, two
/// runs each), and a scan grows with the filter; every 10 s at most keeps it
/// below 1 % of a run at full speed. Prometheus scrapes every 15 s by default.
const GAUGES_EVERY: Duration = Duration::from_secs(10);

/// The state of a run's periodic reports.
#[derive(Debug)]
pub struct Periodic {
    metrics: Option<(Arc<Metrics>, Endpoint)>,
    stats_every: Option<Duration>,
    stats_json: Option<std::path::PathBuf>,
    /// The summary goes to stderr at each `--stats-every`.
    summary: bool,
    started: Instant,
    last_gauges: Instant,
    last_stats: Instant,
}

/// A snapshot of the run's figures, as [`Stats`] at the end has them, and the
/// number of live windows.
pub type Snapshot = (Stats, u64);

impl Periodic {
    /// Starts the reports of a run that started at `started`: binds `--metrics`
    /// (a bad or busy address is a configuration error naming the flag).
    pub fn start(config: &ReportConfig, started: Instant) -> Result<Periodic> {
        let metrics = match &config.metrics {
            Some(addr) => {
                let m = Arc::new(Metrics::new());
                let endpoint = Endpoint::bind(addr, m.clone())?;
                Some((m, endpoint))
            }
            None => None,
        };
        Ok(Periodic {
            metrics,
            stats_every: config.stats_every,
            stats_json: config.stats_json.clone(),
            summary: config.summary && !io::stderr().is_terminal(),
            started,
            last_gauges: started,
            last_stats: started,
        })
    }

    /// The address `--metrics` listens on.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(|(_, e)| e.local_addr())
    }

    /// Publishes the running `counters`; when the tier gauges or `--stats-every`
    /// are due, takes a `snapshot` too and reports it.
    pub fn tick(&mut self, counters: &Stats, snapshot: impl FnOnce() -> Snapshot) -> Result<()> {
        let Some(metrics) = self.metrics.as_ref().map(|(m, _)| m) else {
            if self.stats_every.is_some_and(|d| self.last_stats.elapsed() >= d) {
                self.report(snapshot())?;
            }
            return Ok(());
        };
        metrics.publish_counters(counters);
        // A scrape now sees the gauges of the tick after the scrape before it.
        let gauges_due = self.last_gauges.elapsed() >= GAUGES_EVERY && metrics.take_scraped();
        let stats_due = self.stats_every.is_some_and(|d| self.last_stats.elapsed() >= d);
        if gauges_due || stats_due {
            let snap = snapshot();
            if gauges_due {
                self.last_gauges = Instant::now();
                metrics.publish_gauges(&snap.0, snap.1);
            }
            if stats_due {
                self.report(snap)?;
            }
        }
        Ok(())
    }

    /// Writes `--stats-json` and the summary for `--stats-every`.
    fn report(&mut self, (mut stats, _): Snapshot) -> Result<()> {
        self.last_stats = Instant::now();
        stats.finish(self.started.elapsed());
        if let Some(p) = &self.stats_json {
            stats.write_json_file(p)?;
        }
        if self.summary {
            eprint!("{}", stats.summary());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stats.json");
        std::fs::write(&p, "old").unwrap();
        let s = Stats { records_in: 7, ..Stats::default() };
        s.write_json_file(&p).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["records_in"], 7);
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = s.write_json_file(&dir.path().join("missing/stats.json")).unwrap_err();
        assert!(e.to_string().starts_with("--stats-json: writing"), "{e}");
    }

    #[test]
    fn gauges_and_stats_only_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        let config = ReportConfig {
            stats_json: Some(p.clone()),
            stats_every: Some(Duration::from_secs(3600)),
            metrics: Some("127.0.0.1:0".into()),
            ..ReportConfig::default()
        };
        let started = Instant::now();
        let mut periodic = Periodic::start(&config, started).unwrap();
        assert!(periodic.metrics_addr().is_some());
        let counters = Stats { records_in: 5, ..Stats::default() };
        // Neither is due yet: no snapshot is taken.
        periodic.tick(&counters, || panic!("snapshot taken before it was due")).unwrap();
        assert!(!p.exists());
        let m = periodic.metrics.as_ref().unwrap().0.clone();
        assert!(m.render(false).contains("logdedup_input_records_total 5\n"));
        // The gauges, after a scrape (render above).
        periodic.last_gauges = started - GAUGES_EVERY;
        let mut taken = 0;
        let mut snapshot = || {
            taken += 1;
            (Stats { records_in: 5, bloom_keys: 9, ..Stats::default() }, 2)
        };
        periodic.tick(&counters, &mut snapshot).unwrap();
        assert!(!p.exists(), "--stats-every not due yet");
        assert!(m.render(false).contains("logdedup_ids{tier=\"bloom\"} 9"));
        assert!(m.render(false).contains("logdedup_windows 2\n"));
        // Due again, but nobody scraped since: no bloom scan.
        assert!(m.take_scraped());
        periodic.last_gauges = started - GAUGES_EVERY;
        periodic.tick(&counters, || panic!("gauges refreshed without a scrape")).unwrap();
        // --stats-every due.
        periodic.last_stats = started - Duration::from_secs(3600);
        periodic.tick(&counters, &mut snapshot).unwrap();
        assert_eq!(taken, 2);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["bloom_keys"], 9);
    }
}
