//! Soak mode: generated records streamed straight into a logdedup child's stdin
//! (no file, so the stream can be far larger than the disk) up to a record count
//! or a time limit, with windows rotating many times. Every second it samples the
//! child (resident memory and its peak since the last sample from
//! `/proc/PID/status`, CPU from `/proc/PID/stat`), the records fed and emitted,
//! how long the feeder waited on the full pipe, and with `--redis` the private
//! `redis-server` (`INFO memory`, `INFO cpu`, the IDs it holds). The report charts
//! all of it over time and judges the run by [`verdict`]'s criteria.
//!
//! What it shows: cost linear in records, memory flat across rotations.
//!
//! Layout: [`feed`] the pipes (generator in, line counter out), [`probe`] the
//! per-second samples, [`verdict`] the criteria, [`render`] the report files.

mod feed;
mod probe;
mod render;
pub mod verdict;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use self::probe::{RedisSample, SoakSample};
pub use self::render::{render_md, render_svg};
use self::verdict::Verdict;
use crate::error::{Error, Result};
use crate::gen::base_time;
use crate::redis_server::RedisServer;
use crate::report::Machine;
use crate::spec::{Dur, GenConfig};
use crate::suite::{load_json, save_json, today};

/// Which clock rotates logdedup's windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    /// The records' `.ts` (`--time-field`): `--event-rate` records per event
    /// second, so every window holds the same number of records at any speed.
    Event,
    /// The arrival time (no `--time-field`), as `tail -F | logdedup` runs: windows
    /// follow the wall clock, as Redis's expiry does.
    Arrival,
}

/// What `soak` needs.
pub struct SoakOptions {
    /// Generator knobs (`records` is where the stream ends).
    pub gen: GenConfig,
    /// Time limit, seconds (none: run until `gen.records` are fed).
    pub seconds: Option<u64>,
    /// logdedup `--window`.
    pub window: Dur,
    /// Records per second of event time: sets how fast windows rotate.
    pub event_rate: f64,
    /// Which clock rotates the windows.
    pub time: TimeSource,
    /// Run the exact tier on a private `redis-server`.
    pub redis: bool,
    /// `NAME=VALUE` settings for that server (`CONFIG SET`).
    pub redis_config: Vec<String>,
    /// The logdedup binary.
    pub logdedup: PathBuf,
    /// Extra logdedup arguments.
    pub extra_args: Vec<String>,
    /// Parent of the run folder.
    pub out_root: PathBuf,
    /// Run name.
    pub name: String,
    /// Why the run is shaped as it is (shown at the top of the report).
    pub about: String,
    /// The command that reproduces this run.
    pub command: String,
}

/// The soak result, saved as `soak.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakReport {
    /// Run name.
    pub name: String,
    /// UTC date.
    pub date: String,
    /// How to reproduce.
    pub command: String,
    /// Why the run is shaped as it is.
    #[serde(default)]
    pub about: String,
    /// The machine.
    pub machine: Machine,
    /// logdedup arguments (the Redis URL is a temporary socket).
    pub args: Vec<String>,
    /// Settings of the private Redis server beyond its defaults (`NAME=VALUE`).
    #[serde(default)]
    pub redis_config: Vec<String>,
    /// Generator knobs.
    pub gen: GenConfig,
    /// Records per event-second.
    pub event_rate: f64,
    /// The clock of the windows.
    #[serde(default = "event")]
    pub time: TimeSource,
    /// `--window`, ms.
    #[serde(default)]
    pub window_ms: u64,
    /// The generator alone, records/s (the ceiling of this measurement).
    pub generator_records_per_s: f64,
    /// CPU seconds the feeding thread (the generator) used.
    #[serde(default)]
    pub generator_cpu_s: f64,
    /// Wall time, s.
    pub elapsed_s: f64,
    /// Records fed.
    pub records_in: u64,
    /// Records emitted.
    pub emitted: u64,
    /// Windows the stream crossed.
    pub windows_spanned: u64,
    /// The window the stream started in.
    #[serde(default)]
    pub first_window: Option<i64>,
    /// Mean records/s.
    pub mean_records_per_s: f64,
    /// Whether each sample's peak RSS is the peak since the sample before (the
    /// kernel's high-water mark reset after every sample), not since the start.
    #[serde(default)]
    pub peak_per_interval: bool,
    /// The criteria, judged from the samples.
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// logdedup's exit code.
    pub exit_code: i32,
    /// logdedup's `--stats-json`, if written.
    pub stats: Option<serde_json::Value>,
    /// The Redis server once logdedup has exited, with `--redis`.
    #[serde(default)]
    pub redis_end: Option<RedisSample>,
    /// Per-second samples.
    pub samples: Vec<SoakSample>,
}

fn event() -> TimeSource {
    TimeSource::Event
}

/// Runs the soak and writes `<out-root>/<date>-<name>/` (soak.json, soak.svg,
/// soak.md); returns the folder.
pub fn run(o: &SoakOptions, machine: Machine) -> Result<PathBuf> {
    if !o.logdedup.is_file() {
        return Err(Error::Usage {
            flag: "--logdedup",
            message: format!(
                "{} not found (build it with cargo build --release)",
                o.logdedup.display()
            ),
        });
    }
    if o.window.ms() == 0 || o.event_rate.is_nan() || o.event_rate <= 0.0 {
        let flag = if o.window.ms() == 0 { "--window" } else { "--event-rate" };
        return Err(Error::Usage { flag, message: "must be above 0".into() });
    }
    let mut gen = o.gen.clone();
    gen.span = Dur((gen.records.0 as f64 / o.event_rate * 1000.0).max(1.0) as u64);
    gen.validate()?;
    let dir = o.out_root.join(format!("{}-{}", today(), o.name));
    fs::create_dir_all(&dir).map_err(Error::file(&dir))?;
    let redis = o.redis.then(RedisServer::try_start).transpose()?;
    let gen_rate = feed::generator_rate(&gen);
    let mut args = logdedup_args(o, &gen);
    if let Some(r) = &redis {
        args.extend(["--exact".to_string(), r.url()]);
    }
    let (samples, stream) = stream(o, &gen, &args, &dir, redis.as_ref())?;
    let stats = fs::read_to_string(dir.join("logdedup-stats.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let report = SoakReport {
        name: o.name.clone(),
        date: today(),
        command: o.command.clone(),
        about: o.about.clone(),
        machine,
        args,
        redis_config: o.redis_config.clone(),
        event_rate: o.event_rate,
        time: o.time,
        window_ms: o.window.ms(),
        generator_records_per_s: gen_rate,
        generator_cpu_s: stream.generator_cpu_s,
        elapsed_s: stream.elapsed_s,
        records_in: stream.records_in,
        emitted: stream.emitted,
        windows_spanned: samples
            .last()
            .map_or(0, |s| (s.window - stream.first_window).max(0) as u64),
        first_window: Some(stream.first_window),
        mean_records_per_s: stream.records_in as f64 / stream.elapsed_s,
        peak_per_interval: stream.peak_per_interval,
        verdict: Some(verdict::judge(&samples, stream.first_window)),
        exit_code: stream.exit_code,
        stats,
        redis_end: stream.redis_end,
        samples,
        gen,
    };
    write(&dir, &report)?;
    Ok(dir)
}

/// Writes `soak.json`, `soak.svg` and `soak.md` into `dir`; returns their paths.
fn write(dir: &Path, report: &SoakReport) -> Result<Vec<PathBuf>> {
    let json = dir.join("soak.json");
    save_json(&json, report)?;
    let mut written = vec![json];
    for (name, text) in [("soak.svg", render_svg(report)), ("soak.md", render_md(report))] {
        let p = dir.join(name);
        fs::write(&p, text).map_err(Error::file(&p))?;
        written.push(p);
    }
    Ok(written)
}

/// Judges a soak folder again from the samples in its `soak.json` and renders
/// its files anew (after the criteria or the charts changed); returns the paths.
pub fn rerender(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut r: SoakReport = load_json(&dir.join("soak.json"))?;
    let last = r.samples.last().map_or(0, |s| s.window);
    let first = *r.first_window.get_or_insert(last - r.windows_spanned as i64);
    r.verdict = Some(verdict::judge(&r.samples, first));
    write(dir, &r)
}

/// What one streamed run measured besides its samples.
struct Stream {
    elapsed_s: f64,
    records_in: u64,
    redis_end: Option<RedisSample>,
    emitted: u64,
    generator_cpu_s: f64,
    peak_per_interval: bool,
    first_window: i64,
    exit_code: i32,
}

/// Starts logdedup, feeds it, samples it until the stream ends, and waits for it.
fn stream(
    o: &SoakOptions,
    gen: &GenConfig,
    args: &[String],
    dir: &Path,
    redis: Option<&RedisServer>,
) -> Result<(Vec<SoakSample>, Stream)> {
    let mut probe = probe::Probe::new(window_of(o, gen), redis, o.seconds)?;
    probe.configure(&o.redis_config)?;
    let mut child = Command::new(&o.logdedup)
        .args(args)
        .arg("--stats-json")
        .arg(dir.join("logdedup-stats.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr_file(dir)?)
        .spawn()
        .map_err(Error::program(o.logdedup.display()))?;
    let counts = feed::Counts::default();
    let writer = feed::feed(child.stdin.take().expect("piped"), gen.clone(), counts.clone());
    let reader = feed::count_lines(child.stdout.take().expect("piped"), counts.emitted.clone());
    let start = Instant::now();
    let samples = probe.sample(child.id(), &counts, &writer);
    counts.stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| Error::Panicked("writer"))?;
    let status = child.wait().map_err(Error::program(o.logdedup.display()))?;
    reader.join().map_err(|_| Error::Panicked("reader"))?;
    let records_in = counts.fed.load(Ordering::Relaxed);
    let redis_end = probe.redis_sample(probe.window(records_in));
    let s = Stream {
        elapsed_s: start.elapsed().as_secs_f64(),
        records_in,
        redis_end,
        emitted: counts.emitted.load(Ordering::Relaxed),
        generator_cpu_s: counts.feeder_cpu_ticks.load(Ordering::Relaxed) as f64 / 100.0,
        peak_per_interval: probe.peak_per_interval,
        first_window: probe.first_window,
        exit_code: status.code().unwrap_or(-1),
    };
    Ok((samples, s))
}

/// The window a sample is in, from the records fed so far: the window of the
/// newest record's event time, or of the wall clock with arrival time.
fn window_of(o: &SoakOptions, gen: &GenConfig) -> Box<dyn Fn(u64) -> i64 + Send> {
    let w = o.window.ms() as i64;
    match o.time {
        TimeSource::Event => {
            let gen = gen.clone();
            Box::new(move |fed| base_time(&gen, fed.saturating_sub(1)).div_euclid(w))
        }
        TimeSource::Arrival => Box::new(move |_| probe::now_ms().div_euclid(w)),
    }
}

/// The file logdedup's stderr goes to.
fn stderr_file(dir: &Path) -> Result<File> {
    let p = dir.join("logdedup-stderr.txt");
    File::create(&p).map_err(Error::file(&p))
}

/// logdedup's arguments for the generated stream: its key, window and time field.
fn logdedup_args(o: &SoakOptions, gen: &GenConfig) -> Vec<String> {
    let mut args: Vec<String> =
        gen.key_specs().into_iter().flat_map(|k| ["--key".to_string(), k]).collect();
    args.extend(["--window".into(), o.window.to_string()]);
    if let (TimeSource::Event, Some(tf)) = (o.time, gen.time_field()) {
        args.extend(["--time-field".into(), tf]);
    }
    args.extend(o.extra_args.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample at second `t` in `window` with `rss` MiB, peak the same.
    fn sample(t: u64, window: i64, rss: u64) -> SoakSample {
        SoakSample {
            t_s: t as f64,
            records_in: t * 1000,
            emitted: t * 900,
            records_per_s: 1000.0,
            rss_bytes: rss << 20,
            peak_rss_bytes: rss << 20,
            window,
            feeding: true,
            cpu_s: t as f64 / 2.0,
            feeder_wait_s: 0.0,
            load1: 1.0,
            redis: None,
        }
    }

    /// A folder written before `first_window` was recorded is judged again from
    /// the window its `windows_spanned` implies: windows 11 and 12 are whole.
    #[test]
    fn report_dir_judges_an_old_soak_folder_again() {
        let rss = [50, 90, 10, 100, 20, 101, 30];
        let samples: Vec<SoakSample> = rss
            .iter()
            .enumerate()
            .map(|(i, &m)| sample(i as u64 + 1, 10 + i as i64 / 2, m))
            .collect();
        let report = SoakReport {
            name: "t".into(),
            date: "2026-12-07".into(),
            command: String::new(),
            about: String::new(),
            machine: Machine::default(),
            args: Vec::new(),
            redis_config: Vec::new(),
            gen: GenConfig::default(),
            event_rate: 1.0,
            time: TimeSource::Event,
            window_ms: 1000,
            generator_records_per_s: 1.0,
            generator_cpu_s: 0.0,
            elapsed_s: 7.0,
            records_in: 7000,
            emitted: 6300,
            windows_spanned: 3,
            first_window: None,
            mean_records_per_s: 1000.0,
            peak_per_interval: true,
            verdict: None,
            exit_code: 0,
            stats: None,
            redis_end: None,
            samples,
        };
        let dir = tempfile::tempdir().unwrap();
        save_json(&dir.path().join("soak.json"), &report).unwrap();
        assert_eq!(rerender(dir.path()).unwrap().len(), 3);
        let back: SoakReport = load_json(&dir.path().join("soak.json")).unwrap();
        assert_eq!(back.first_window, Some(10));
        let v = back.verdict.unwrap();
        assert_eq!(v, verdict::judge(&back.samples, 10));
        assert_eq!(v.windows.iter().map(|w| w.window).collect::<Vec<_>>(), [11, 12]);
        assert!(std::fs::read_to_string(dir.path().join("soak.md"))
            .unwrap()
            .contains("## Criteria"));
    }
}
