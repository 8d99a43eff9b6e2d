//! Short soaks end to end through the `logdedup-bench soak` command: every record
//! fed is read by logdedup and every line it writes is counted, the windows
//! rotate as the event time says, the time limit stops the stream cleanly, and
//! with `--redis` the IDs the harness finds in Redis are the IDs logdedup found
//! new. The long runs (a billion records) are harness runs, in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use logdedup_bench::soak::SoakReport;

mod common;

use common::find_logdedup;

/// Runs `soak` with `args` into `out`; returns the report and the folder.
fn soak(logdedup: &Path, out: &Path, args: &[&str]) -> (SoakReport, PathBuf) {
    let run = Command::new(env!("CARGO_BIN_EXE_logdedup-bench"))
        .arg("soak")
        .args(args)
        .arg("--out-root")
        .arg(out)
        .arg("--logdedup")
        .arg(logdedup)
        .output()
        .unwrap();
    assert!(run.status.success(), "stderr: {}", String::from_utf8_lossy(&run.stderr));
    let dir = PathBuf::from(String::from_utf8(run.stdout).unwrap().trim());
    let text = std::fs::read_to_string(dir.join("soak.json")).unwrap();
    (serde_json::from_str(&text).unwrap(), dir)
}

/// logdedup's own count of `name` in the report's `--stats-json`.
fn stat(r: &SoakReport, name: &str) -> u64 {
    r.stats.as_ref().and_then(|s| s[name].as_u64()).unwrap_or_else(|| panic!("no {name}"))
}

fn logdedup_or_skip() -> Option<PathBuf> {
    let ld = find_logdedup();
    if ld.is_none() {
        println!("logdedup binary not built: skipped (cargo build --release to run it)");
    }
    ld
}

#[test]
fn a_short_soak_accounts_for_every_record_and_rotation() {
    let Some(ld) = logdedup_or_skip() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--records", "400k", "--window", "1s", "--event-rate", "100000", "--name", "t"];
    let (r, dir) = soak(&ld, tmp.path(), &args);
    assert_eq!(r.exit_code, 0);
    assert_eq!((r.records_in, stat(&r, "records_in")), (400_000, 400_000));
    // The harness counted the lines logdedup says it wrote: 30 % of the records are
    // repeats, some of them late (their window rotated out) and so emitted.
    assert_eq!(r.emitted, stat(&r, "emitted"));
    assert!((280_000..360_000).contains(&r.emitted), "{}", r.emitted);
    // 4 s of event time from a whole second: windows 0 to 3.
    assert_eq!((r.windows_spanned, stat(&r, "windows_rotated")), (3, 3));
    assert!(r.samples.windows(2).all(|p| p[0].records_in <= p[1].records_in));
    // On a quiet machine logdedup may have exited before the first sample (RSS 0):
    // the memory a live process shows is checked in the time-limited run below.
    assert!(r.samples.iter().all(|s| s.peak_rss_bytes >= s.rss_bytes));
    assert!(r.verdict.is_some() && r.generator_records_per_s > 0.0);
    let md = std::fs::read_to_string(dir.join("soak.md")).unwrap();
    assert!(md.contains("## Criteria") && md.contains("soak --records 400k --window 1s"), "{md}");
    let svg = std::fs::read_to_string(dir.join("soak.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Resident memory"), "{svg}");
    // `report DIR` judges the samples again and renders the same files.
    std::fs::remove_file(dir.join("soak.md")).unwrap();
    let again = Command::new(env!("CARGO_BIN_EXE_logdedup-bench"))
        .arg("report")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(again.status.success(), "stderr: {}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("soak.md")).unwrap(), md);
    let back: SoakReport =
        serde_json::from_str(&std::fs::read_to_string(dir.join("soak.json")).unwrap()).unwrap();
    assert_eq!(back.verdict, r.verdict);
}

/// The time limit ends the stream early; what was fed was still all read.
#[test]
fn the_time_limit_stops_the_stream_and_nothing_fed_is_lost() {
    let Some(ld) = logdedup_or_skip() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = soak(&ld, tmp.path(), &["--records", "1e9", "--seconds", "1", "--name", "t"]);
    assert_eq!(r.exit_code, 0);
    assert!(r.records_in > 0 && r.records_in < 1_000_000_000, "{}", r.records_in);
    assert_eq!(r.records_in, stat(&r, "records_in"));
    assert_eq!(r.emitted, stat(&r, "emitted"));
    assert!(r.samples.len() <= 2, "{}", r.samples.len());
    // The first sample is taken while logdedup still reads: its memory and the
    // peak since the start, which cannot be below it.
    let first = &r.samples[0];
    assert!(first.rss_bytes > 0 && first.peak_rss_bytes >= first.rss_bytes, "{first:?}");
}

/// With `--redis`, the IDs the harness counts in Redis (bucket directories and
/// journals) once logdedup has exited are exactly those logdedup found new.
#[test]
fn redis_holds_the_ids_logdedup_found_new() {
    let Some(ld) = logdedup_or_skip() else { return };
    if logdedup_bench::tools::find_program("redis-server").is_none() {
        println!("redis-server not on PATH: skipped (apt-get install redis-server; .ci/test does)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--records",
        "300k",
        "--time",
        "arrival",
        "--window",
        "1h",
        "--redis",
        "--redis-config",
        "active-expire-effort=5",
        "--name",
        "t",
    ];
    let (r, _) = soak(&ld, tmp.path(), &args);
    assert_eq!(r.exit_code, 0);
    assert!(r.args.contains(&"--exact".to_string()), "{:?}", r.args);
    assert_eq!(r.redis_config, ["active-expire-effort=5"]);
    let end = r.redis_end.expect("Redis sampled at the end");
    assert_eq!(end.live_ids, stat(&r, "new"));
    assert!(end.used_memory > end.live_ids * 8, "{end:?}");
    assert!(r.samples.iter().all(|s| s.redis.is_some()));
}
