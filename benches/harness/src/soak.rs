//! Soak mode: generated records streamed straight into a logdedup child's stdin
//! (no file, so the stream can be far larger than the disk), for a record count or
//! a time limit, with event time advancing so the windows rotate many times. Every
//! second it samples the child's resident memory (`VmRSS` in `/proc/PID/status`)
//! and the records fed and emitted; the report charts records/s and RSS over time.
//! What it shows: cost linear in records, memory flat across rotations.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::export::{bytes, si};
use crate::export::{Doc, LineChart, Series};
use crate::gen::Generator;
use crate::report::Machine;
use crate::spec::{Dur, GenConfig};
use crate::suite::{save_json, today};

/// What `soak` needs.
pub struct SoakOptions {
    /// Generator knobs (`records` is the upper bound of the stream).
    pub gen: GenConfig,
    /// Time limit, seconds.
    pub seconds: u64,
    /// logdedup `--window`.
    pub window: Dur,
    /// Records per second of event time: sets how fast windows rotate.
    pub event_rate: f64,
    /// The logdedup binary.
    pub logdedup: PathBuf,
    /// Extra logdedup arguments.
    pub extra_args: Vec<String>,
    /// Parent of the run folder.
    pub out_root: PathBuf,
    /// Run name.
    pub name: String,
    /// The command that reproduces this run.
    pub command: String,
}

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
    /// Child's resident set, bytes.
    pub rss_bytes: u64,
    /// Child's peak resident set so far (`VmHWM`), bytes.
    pub hwm_bytes: u64,
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
    /// The machine.
    pub machine: Machine,
    /// logdedup arguments.
    pub args: Vec<String>,
    /// Generator knobs.
    pub gen: GenConfig,
    /// Records per event-second.
    pub event_rate: f64,
    /// The generator alone, records/s (the ceiling of this measurement).
    pub generator_records_per_s: f64,
    /// Wall time, s.
    pub elapsed_s: f64,
    /// Records fed.
    pub records_in: u64,
    /// Records emitted.
    pub emitted: u64,
    /// Windows the event time crossed.
    pub windows_spanned: u64,
    /// Mean records/s.
    pub mean_records_per_s: f64,
    /// Mean records/s in the first and the second half of the run.
    pub half_rates: (f64, f64),
    /// Median RSS in the first and the second half, bytes.
    pub half_rss: (u64, u64),
    /// logdedup's exit code.
    pub exit_code: i32,
    /// logdedup's `--stats-json`, if written.
    pub stats: Option<serde_json::Value>,
    /// Per-second samples.
    pub samples: Vec<SoakSample>,
}

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

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// How fast the generator alone renders records (about one second of work).
fn generator_rate(cfg: &GenConfig) -> f64 {
    let mut g = Generator::new(cfg);
    let mut buf = Vec::with_capacity(1 << 20);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..10_000 {
            if g.next_into(&mut buf).is_none() {
                break;
            }
            n += 1;
            if buf.len() > 1 << 20 {
                buf.clear();
            }
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
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
    let mut gen = o.gen.clone();
    gen.span = Dur((gen.records.0 as f64 / o.event_rate * 1000.0).max(1.0) as u64);
    gen.validate()?;
    let dir = o.out_root.join(format!("{}-{}", today(), o.name));
    fs::create_dir_all(&dir).map_err(Error::file(&dir))?;
    let gen_rate = generator_rate(&gen);
    let stats_path = dir.join("logdedup-stats.json");
    let args = logdedup_args(o, &gen);
    let mut child = Command::new(&o.logdedup)
        .args(&args)
        .arg("--stats-json")
        .arg(&stats_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr_file(&dir)?)
        .spawn()
        .map_err(Error::program(o.logdedup.display()))?;
    let counts = Counts::default();
    let writer = feed(child.stdin.take().expect("piped"), gen.clone(), counts.clone());
    let reader = count_lines(child.stdout.take().expect("piped"), counts.emitted.clone());
    let start = Instant::now();
    let samples = sample(child.id(), &counts, &writer, o.seconds);
    counts.stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| Error::Panicked("writer"))?;
    let status = child.wait().map_err(Error::program(o.logdedup.display()))?;
    reader.join().map_err(|_| Error::Panicked("reader"))?;
    let elapsed = start.elapsed().as_secs_f64();
    let records_in = counts.fed.load(Ordering::Relaxed);
    let half = samples.len() / 2;
    let rate_of =
        |s: &[SoakSample]| s.iter().map(|x| x.records_per_s).sum::<f64>() / s.len().max(1) as f64;
    let stats = fs::read_to_string(&stats_path).ok().and_then(|t| serde_json::from_str(&t).ok());
    let report = SoakReport {
        name: o.name.clone(),
        date: today(),
        command: o.command.clone(),
        machine,
        args,
        event_rate: o.event_rate,
        generator_records_per_s: gen_rate,
        elapsed_s: elapsed,
        records_in,
        emitted: counts.emitted.load(Ordering::Relaxed),
        windows_spanned: (records_in as f64 / o.event_rate * 1000.0 / o.window.ms().max(1) as f64)
            as u64,
        mean_records_per_s: records_in as f64 / elapsed,
        half_rates: (rate_of(&samples[..half]), rate_of(&samples[half..])),
        half_rss: (
            median_u64(samples[..half].iter().map(|s| s.rss_bytes).collect()),
            median_u64(samples[half..].iter().map(|s| s.rss_bytes).collect()),
        ),
        exit_code: status.code().unwrap_or(-1),
        stats,
        samples,
        gen,
    };
    save_json(&dir.join("soak.json"), &report)?;
    for (name, text) in [("soak.svg", render_svg(&report)), ("soak.md", render_md(&report))] {
        let p = dir.join(name);
        fs::write(&p, text).map_err(Error::file(&p))?;
    }
    Ok(dir)
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
    if let Some(tf) = gen.time_field() {
        args.extend(["--time-field".into(), tf]);
    }
    args.extend(o.extra_args.iter().cloned());
    args
}

/// What the feeding and counting threads share with the sampler.
#[derive(Clone, Default)]
struct Counts {
    /// Records written to the child so far.
    fed: Arc<AtomicU64>,
    /// Lines the child wrote so far.
    emitted: Arc<AtomicU64>,
    /// Tells the feeder to stop (the time limit is up).
    stop: Arc<AtomicBool>,
}

/// Feeds generated records into the child's stdin, 1 MiB at a time, until the
/// generator ends or `stop` is set; closing stdin then ends logdedup's input.
fn feed(mut stdin: ChildStdin, gen: GenConfig, counts: Counts) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut g = Generator::new(&gen);
        let mut buf = Vec::with_capacity(1 << 20);
        let mut n = 0u64;
        loop {
            let more = g.next_into(&mut buf).is_some();
            if more {
                n += 1;
            }
            if buf.len() >= (1 << 20) - 4096 || !more {
                if stdin.write_all(&buf).is_err() {
                    break;
                }
                buf.clear();
                counts.fed.store(n, Ordering::Relaxed);
                if !more || counts.stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
        // Dropping stdin closes the pipe: logdedup sees end of input.
    })
}

/// Counts the lines the child writes, into `emitted`.
fn count_lines(mut stdout: ChildStdout, emitted: Arc<AtomicU64>) -> JoinHandle<()> {
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

/// Samples the child `pid` once a second until the feeder ends or `seconds` pass.
fn sample(pid: u32, counts: &Counts, writer: &JoinHandle<()>, seconds: u64) -> Vec<SoakSample> {
    let start = Instant::now();
    let mut samples: Vec<SoakSample> = Vec::new();
    let (mut last_t, mut last_n) = (0.0, 0u64);
    loop {
        thread::sleep(Duration::from_millis(1000).saturating_sub(Duration::from_secs_f64(
            (start.elapsed().as_secs_f64() - samples.len() as f64).clamp(0.0, 0.5),
        )));
        let t = start.elapsed().as_secs_f64();
        let n = counts.fed.load(Ordering::Relaxed);
        let (rss, hwm) = proc_status(pid);
        let done = writer.is_finished();
        samples.push(SoakSample {
            t_s: t,
            records_in: n,
            emitted: counts.emitted.load(Ordering::Relaxed),
            records_per_s: (n - last_n) as f64 / (t - last_t).max(1e-9),
            rss_bytes: rss,
            hwm_bytes: hwm,
        });
        eprintln!(
            "soak {t:>6.1} s  {:>12} records  {:>10}/s  RSS {}",
            n,
            si((n - last_n) as f64 / (t - last_t)),
            bytes(rss)
        );
        (last_t, last_n) = (t, n);
        if done || t >= seconds as f64 {
            return samples;
        }
    }
}

/// The soak's charts: records/s and RSS over time.
pub fn render_svg(r: &SoakReport) -> String {
    let mut doc = Doc::new();
    doc.title(
        &format!("logdedup soak: {} ({})", r.name, r.date),
        &format!(
            "{} records in {:.0} s, {} windows of event time; {} CPUs, {}",
            crate::export::count(r.records_in),
            r.elapsed_s,
            r.windows_spanned,
            r.machine.nproc,
            r.machine.cpu
        ),
    );
    let labels: Vec<String> = r.samples.iter().map(|s| format!("{:.0}s", s.t_s)).collect();
    doc.title(
        "Records per second over time",
        &format!("generator alone: {}/s", si(r.generator_records_per_s)),
    );
    doc.chart(&LineChart {
        height: 220.0,
        x_labels: labels.clone(),
        series: vec![Series {
            name: "records/s".into(),
            color: "#d62728",
            values: r.samples.iter().map(|s| Some(s.records_per_s)).collect(),
        }],
        y_fmt: |v| si(v),
        y_binary: false,
        log_y: false,
        points_only: false,
    });
    doc.title("Resident memory over time", "VmRSS of the logdedup process");
    doc.chart(&LineChart {
        height: 220.0,
        x_labels: labels,
        series: vec![Series {
            name: "RSS".into(),
            color: "#9467bd",
            values: r.samples.iter().map(|s| Some(s.rss_bytes as f64)).collect(),
        }],
        y_fmt: |v| bytes(v as u64),
        y_binary: true,
        log_y: false,
        points_only: false,
    });
    doc.finish()
}

/// A short Markdown summary of the soak.
pub fn render_md(r: &SoakReport) -> String {
    format!(
        "# logdedup soak: {} ({})\n\nReproduce with:\n\n```sh\n{}\n```\n\n\
         | | |\n| --- | --- |\n| machine | {} ({} CPUs), {} |\n| logdedup args | `{}` |\n\
         | records fed | {} in {:.1} s ({}/s mean) |\n| records emitted | {} |\n\
         | event-time windows crossed | {} |\n| records/s, first half → second half | {}/s → {}/s |\n\
         | median RSS, first half → second half | {} → {} |\n| generator alone | {}/s |\n| exit code | {} |\n\n\
         Charts: [soak.svg](soak.svg); samples: [soak.json](soak.json).\n",
        r.name,
        r.date,
        r.command,
        r.machine.cpu,
        r.machine.nproc,
        bytes(r.machine.mem_bytes),
        r.args.join(" "),
        crate::export::count(r.records_in),
        r.elapsed_s,
        si(r.mean_records_per_s),
        crate::export::count(r.emitted),
        r.windows_spanned,
        si(r.half_rates.0),
        si(r.half_rates.1),
        bytes(r.half_rss.0),
        bytes(r.half_rss.1),
        si(r.generator_records_per_s),
        r.exit_code
    )
}
