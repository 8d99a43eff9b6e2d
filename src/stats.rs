//! Counters: every record is counted exactly once by verdict and once by action.
//!
//! Conservation, checked at the end of every run and in every end-to-end test:
//! `records_in = emitted + suppressed + dropped + rejected`. Under the default
//! `--emit new`, `suppressed` is the duplicates, which gives DESIGN's
//! `records_in = emitted + duplicates + dropped_by_policy + rejected`.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::error::{ConservationError, Error};

/// The counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Records read.
    pub records_in: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Records written to stdout.
    pub emitted: u64,
    /// Records not written because of `--emit` (duplicates under `new`).
    pub suppressed: u64,
    /// Records dropped by a policy (`--on-unkeyed`, `--on-late`, `--on-oversized drop`).
    pub dropped: u64,
    /// Records written to the reject file.
    pub rejected: u64,
    /// Records read but neither decided nor written because the run stopped on
    /// an error first (the exact tier's `--on-exact-error abort`, a failed read
    /// or write): the batch the error stopped and the whole records read behind
    /// it. Every record of a batch is counted before the batch is written, so
    /// stdout closing (`| head`) leaves none here.
    pub unwritten: u64,
    /// Records cut short by a stop (SIGINT, SIGTERM, an error): no newline yet and
    /// the input not at its end. Neither written nor remembered, so a replay of
    /// the input writes them once, whole. A record longer than
    /// `--max-record-bytes` whose first parts went out already is ended with a
    /// newline and counted here too.
    pub incomplete: u64,
    /// Verdict: first occurrences.
    pub new: u64,
    /// Verdict: duplicates.
    pub duplicates: u64,
    /// Verdict: records without a key (or without a readable time).
    pub unkeyed: u64,
    /// Verdict: records older than every retained window.
    pub late: u64,
    /// Verdict: records longer than `--max-record-bytes`.
    pub oversized: u64,
    /// Verdict: bloom *maybe*s the exact tier could not confirm.
    pub unconfirmed: u64,
    /// Keyed records with integer IDs (roaring path).
    pub int_ids: u64,
    /// Keyed records with string IDs (hash path).
    pub str_ids: u64,
    /// Bloom *maybe*s.
    pub maybes: u64,
    /// *Maybe*s that the exact tier confirmed as duplicates.
    pub confirmed_dups: u64,
    /// *Maybe*s that the exact tier found new (bloom false positives).
    pub false_maybes: u64,
    /// Queries sent to the exact tier.
    pub exact_queries: u64,
    /// Round trips to a remote exact tier.
    pub exact_round_trips: u64,
    /// Batches the exact tier failed.
    pub exact_errors: u64,
    /// Outages of a remote exact tier (each from a failed batch to the next call
    /// that works).
    pub exact_outages: u64,
    /// Whether the remote exact tier is failing now.
    pub exact_outage: bool,
    /// While it is failing, the error (any secret in its URL hidden).
    pub exact_error: Option<String>,
    /// Windows that fell out of retention.
    pub windows_rotated: u64,
    /// Snapshots written to the state directory.
    pub checkpoints: u64,
    /// Wall time of the run, in seconds.
    pub elapsed_secs: f64,
    /// Peak resident memory of the process, in bytes.
    pub peak_rss_bytes: u64,
    /// Peak RSS per distinct ID held, in bytes.
    pub rss_per_id: f64,
    /// Integer IDs held in bitmaps at the end.
    pub bitmap_ids: u64,
    /// Bytes of the bitmaps at the end.
    pub bitmap_bytes: u64,
    /// Fingerprints held by the in-process exact tier at the end.
    pub exact_fingerprints: u64,
    /// Bytes of the in-process exact tier at the end.
    pub exact_bytes: u64,
    /// Keys in the bloom filters at the end.
    pub bloom_keys: u64,
    /// Bits of the bloom filters at the end.
    pub bloom_bits: u64,
    /// Fraction of bloom bits set.
    pub bloom_fill: f64,
    /// Bloom bits per key: the bits of every live filter (all stages) over the
    /// distinct keys they hold.
    pub bloom_bits_per_key: f64,
    /// The chance now that a new key gets a *maybe* (any live filter).
    pub bloom_expected_fpr: f64,
    /// Records per second.
    pub records_per_sec: f64,
    /// Bytes per second.
    pub bytes_per_sec: f64,
}

impl Stats {
    /// The records counted by what was done with them: the right-hand side of
    /// conservation.
    pub fn by_action(&self) -> u64 {
        self.emitted
            + self.suppressed
            + self.dropped
            + self.rejected
            + self.unwritten
            + self.incomplete
    }

    /// Whether every record was counted exactly once, by action and by verdict
    /// (records not decided, `unwritten` and `incomplete`, have no verdict).
    pub fn check_conservation(&self) -> Result<(), ConservationError> {
        let by_action = self.by_action();
        let by_verdict = self.new
            + self.duplicates
            + self.unkeyed
            + self.late
            + self.oversized
            + self.unconfirmed
            + self.unwritten
            + self.incomplete;
        if by_action != self.records_in || by_verdict != self.records_in {
            return Err(ConservationError {
                records_in: self.records_in,
                emitted: self.emitted,
                suppressed: self.suppressed,
                dropped: self.dropped,
                rejected: self.rejected,
                unwritten: self.unwritten,
                incomplete: self.incomplete,
                by_action,
                by_verdict,
            });
        }
        Ok(())
    }

    /// Fills the derived rates from the elapsed time.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed_secs = elapsed.as_secs_f64();
        if self.elapsed_secs > 0.0 {
            self.records_per_sec = self.records_in as f64 / self.elapsed_secs;
            self.bytes_per_sec = self.bytes_in as f64 / self.elapsed_secs;
        }
        self.peak_rss_bytes = peak_rss_bytes();
        let ids = self.bitmap_ids + self.exact_fingerprints.max(self.bloom_keys);
        if ids > 0 {
            self.rss_per_id = self.peak_rss_bytes as f64 / ids as f64;
        }
        if self.bloom_keys > 0 {
            self.bloom_bits_per_key = self.bloom_bits as f64 / self.bloom_keys as f64;
        }
    }

    /// The summary printed on stderr at the end. Its first line counts the
    /// records by what was done with them (adding up to the records in, whatever
    /// `--emit` is: conservation) and its second the records decided, by verdict.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "logdedup: {} records in ({}): {} emitted, {} suppressed by --emit, {} dropped, {} rejected",
            self.records_in,
            human_bytes(self.bytes_in as f64),
            self.emitted,
            self.suppressed,
            self.dropped,
            self.rejected,
        );
        if self.unwritten > 0 {
            let _ = write!(s, ", {} unwritten (stopped by an error)", self.unwritten);
        }
        if self.incomplete > 0 {
            let _ = write!(s, ", {} incomplete (cut short by the stop)", self.incomplete);
        }
        let _ = writeln!(
            s,
            "\nlogdedup: {} new, {} duplicates, {} unkeyed, {} late, {} oversized, {} unconfirmed",
            self.new, self.duplicates, self.unkeyed, self.late, self.oversized, self.unconfirmed
        );
        let _ = writeln!(
            s,
            "logdedup: ids: {} int, {} str; bloom maybes {} ({} confirmed dup, {} false); exact queries {} in {} round trips, {} failed batches; windows rotated {}; checkpoints {}",
            self.int_ids,
            self.str_ids,
            self.maybes,
            self.confirmed_dups,
            self.false_maybes,
            self.exact_queries,
            self.exact_round_trips,
            self.exact_errors,
            self.windows_rotated,
            self.checkpoints
        );
        if let Some(e) = &self.exact_error {
            let _ = writeln!(s, "logdedup: the exact tier was still failing at the end: {e}");
        }
        if self.bloom_bits > 0 {
            let _ = writeln!(
                s,
                "logdedup: bloom: {} keys, {:.1} bits/key, fill {:.3}, expected fpr {:.2e}",
                self.bloom_keys, self.bloom_bits_per_key, self.bloom_fill, self.bloom_expected_fpr
            );
        }
        let _ = writeln!(
            s,
            "logdedup: {:.2} s, {:.0} records/s, {}/s, peak RSS {}",
            self.elapsed_secs,
            self.records_per_sec,
            human_bytes(self.bytes_per_sec),
            human_bytes(self.peak_rss_bytes as f64)
        );
        s
    }

    /// The counters as JSON (`--stats-json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("stats serialize")
    }

    /// Creates (or truncates) the `--stats-json` file at the start of a run, so a
    /// path that cannot be written fails the run now, not after hours of stream.
    pub fn create_json_file(path: &Path) -> Result<(), Error> {
        File::create(path)
            .map(drop)
            .map_err(|e| Error::io(format!("--stats-json: cannot create {}", path.display()), e))
    }

    /// Writes the counters as JSON to the `--stats-json` file at `path`,
    /// atomically: into a temporary file beside it, renamed over it, so a reader
    /// (a sidecar under `--stats-every`) sees the old file or the new one, never
    /// half of one.
    pub fn write_json_file(&self, path: &Path) -> Result<(), Error> {
        write_atomically(path, &self.to_json())
    }

    /// As [`Stats::write_json_file`] for a run that failed: the counters up to
    /// the failure, then its `error` (one more member).
    pub fn write_failed_json_file(&self, path: &Path, error: String) -> Result<(), Error> {
        let json =
            serde_json::to_string_pretty(&Failed { stats: self, error }).expect("stats serialize");
        write_atomically(path, &json)
    }
}

/// Writes `json` to the `--stats-json` file `path` through a temporary file
/// beside it, renamed over it.
fn write_atomically(path: &Path, json: &str) -> Result<(), Error> {
    let err = |e| Error::io(format!("--stats-json: writing {}", path.display()), e);
    let Some(name) = path.file_name() else {
        return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file")));
    };
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp);
    std::fs::write(&tmp, json).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

/// The counters of a run that failed, and why (`--stats-json`).
#[derive(Serialize)]
struct Failed<'a> {
    #[serde(flatten)]
    stats: &'a Stats,
    error: String,
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The process's peak resident memory (`VmHWM`), 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    proc_status_kib("VmHWM:") * 1024
}

/// The process's current resident memory (`VmRSS`), 0 where unknown.
pub fn current_rss_bytes() -> u64 {
    proc_status_kib("VmRSS:") * 1024
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conservation() {
        let mut s = Stats {
            records_in: 3,
            emitted: 1,
            suppressed: 1,
            dropped: 1,
            new: 1,
            duplicates: 1,
            unkeyed: 1,
            ..Stats::default()
        };
        assert!(s.check_conservation().is_ok());
        s.emitted += 1;
        let e = s.check_conservation().unwrap_err();
        assert_eq!((e.records_in, e.by_action, e.by_verdict), (3, 4, 3));
        s.emitted -= 1;
        s.new += 1;
        assert_eq!(s.check_conservation().unwrap_err().by_verdict, 4);
        // Reported as the bug it is, with every counter the sum is made of.
        let shown = crate::Error::from(crate::error::Bug::from(e)).to_string();
        assert!(shown.starts_with("internal error (a bug in logdedup"), "{shown}");
        assert!(shown.contains("records_in 3 but emitted 2 + suppressed 1"), "{shown}");
        // A record cut short by a stop, or left undecided by an error, is in, with
        // no verdict: its own counter stands on both sides.
        s.new -= 1;
        s.records_in += 2;
        s.incomplete += 1;
        s.unwritten += 1;
        assert!(s.check_conservation().is_ok());
        s.incomplete -= 1;
        let e = s.check_conservation().unwrap_err();
        assert_eq!((e.records_in, e.by_action, e.by_verdict), (5, 4, 4));
    }

    #[test]
    fn json_and_summary() {
        let s = Stats { records_in: 10, emitted: 10, new: 10, ..Stats::default() };
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["records_in"], 10);
        assert!(s.summary().contains("10 records in"));
        assert_eq!(human_bytes(2048.0), "2.0 KiB");
        // A failed run's file has the counters and the error; a good run's no error.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stats.json");
        s.write_failed_json_file(&p, "exact tier: gone".into()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!((&v["records_in"], &v["error"]), (&10.into(), &"exact tier: gone".into()));
        s.write_json_file(&p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert!(v.get("error").is_none() && v["records_in"] == 10, "{v}");
        assert!(!s.summary().contains("still failing"));
        let down = Stats { exact_outage: true, exact_error: Some("refused".into()), ..s };
        assert!(down.summary().contains("still failing at the end: refused"));
        let v: serde_json::Value = serde_json::from_str(&down.to_json()).unwrap();
        assert_eq!((&v["exact_outage"], &v["exact_error"]), (&true.into(), &"refused".into()));
    }

    /// A run where every counter holds its own value, so a swapped field or
    /// argument shows in a snapshot. Conservation holds (by action and by
    /// verdict) and the bloom is on; the derived figures are set by hand, as
    /// [`Stats::finish`] would, without reading this process's RSS.
    fn full() -> Stats {
        Stats {
            records_in: 993_049,
            bytes_in: 187_654_321,
            emitted: 698_992,
            suppressed: 250_017,
            dropped: 30_011,
            rejected: 9_013,
            unwritten: 4_007,
            incomplete: 1_009,
            new: 697_950,
            duplicates: 250_013,
            unkeyed: 21_019,
            late: 11_027,
            oversized: 5_023,
            unconfirmed: 3_001,
            int_ids: 600_037,
            str_ids: 350_041,
            maybes: 259_113,
            confirmed_dups: 248_053,
            false_maybes: 8_059,
            exact_queries: 262_067,
            exact_round_trips: 1_061,
            exact_errors: 3,
            exact_outages: 2,
            exact_outage: false,
            exact_error: None,
            windows_rotated: 7,
            checkpoints: 2,
            elapsed_secs: 1.25,
            peak_rss_bytes: 53_477_376,
            rss_per_id: 75.84,
            bitmap_ids: 410_071,
            bitmap_bytes: 1_048_583,
            exact_fingerprints: 290_077,
            exact_bytes: 4_718_592,
            bloom_keys: 295_081,
            bloom_bits: 4_194_304,
            bloom_fill: 0.4321,
            bloom_bits_per_key: 14.214,
            bloom_expected_fpr: 0.000123,
            records_per_sec: 794_439.2,
            bytes_per_sec: 150_123_456.8,
        }
    }

    #[test]
    fn summary_snapshot() {
        let s = full();
        assert!(s.check_conservation().is_ok());
        insta::assert_snapshot!("summary_with_bloom", s.summary());
    }

    #[test]
    fn summary_without_bloom_snapshot() {
        // No bloom bits: the bloom line is left out, the rest is unchanged.
        let s = Stats {
            bloom_keys: 0,
            bloom_bits: 0,
            bloom_fill: 0.0,
            bloom_bits_per_key: 0.0,
            bloom_expected_fpr: 0.0,
            ..full()
        };
        insta::assert_snapshot!("summary_without_bloom", s.summary());
    }

    /// `--stats-json` field names are read by users' scripts (and by the bench
    /// harness): renaming one must show up here.
    #[test]
    fn stats_json_snapshot() {
        insta::assert_snapshot!("stats_json", full().to_json());
    }
}
