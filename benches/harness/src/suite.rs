//! The whole benchmark: generate (or reuse) each dataset of a spec, run the
//! line-up on it, run the rotation and fpr experiments, and write the dated run
//! folder `<out-root>/<date>-<name>/` with `raw/` (results, truth files, machine)
//! and the three report files.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::export;
use crate::gen::{rfc3339, write_dataset, TruthFile};
use crate::machine;
use crate::measure::{Expected, Runner};
use crate::redis_server::RedisServer;
use crate::report::{
    DatasetResult, FprPoint, Report, RotationPoint, Status, ToolResult, TruthSummary,
};
use crate::spec::{Count, DatasetSpec, Dur, SuiteSpec};
use crate::tools::{self, find_program, Context};

/// Everything `all` needs to know.
pub struct Options {
    /// The suite.
    pub spec: SuiteSpec,
    /// Run name (folder suffix).
    pub name: String,
    /// Parent of the dated run folders.
    pub out_root: PathBuf,
    /// Where the (large, uncommitted) data files go.
    pub work_dir: PathBuf,
    /// logdedup binary.
    pub logdedup: PathBuf,
    /// This harness's binary.
    pub bench: PathBuf,
    /// Override of the spec's runs.
    pub runs: Option<usize>,
    /// Override of every dataset's record count.
    pub records: Option<u64>,
    /// Only tools whose slug contains one of these (empty: all).
    pub only: Vec<String>,
    /// The command that reproduces this run.
    pub command: String,
    /// Progress on stderr.
    pub verbose: bool,
    /// An existing data file and its truth (`run`): used instead of generating
    /// the spec's single dataset.
    pub prepared: Option<(PathBuf, TruthFile)>,
}

/// Today's UTC date, `YYYY-MM-DD`.
pub fn today() -> String {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    rfc3339(ms)[..10].to_string()
}

/// Writes `value` as pretty JSON.
pub fn save_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let f = File::create(path).map_err(Error::file(path))?;
    serde_json::to_writer_pretty(BufWriter::new(f), value)
        .map_err(|source| Error::Json { path: path.into(), source })
}

/// Reads a JSON file.
pub fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(Error::file(path))?;
    serde_json::from_str(&text).map_err(|source| Error::Json { path: path.into(), source })
}

/// Generates `d` into `work_dir` unless an identical dataset (same knobs, same
/// extra windows) is already there; returns the data path and its truth.
pub fn ensure_dataset(
    d: &DatasetSpec,
    work_dir: &Path,
    extra: &[Dur],
    verbose: bool,
) -> Result<(PathBuf, TruthFile)> {
    fs::create_dir_all(work_dir).map_err(Error::file(work_dir))?;
    let ext = match d.gen.format {
        crate::spec::Format::Json => "jsonl",
        crate::spec::Format::Plain => "log",
    };
    let data = work_dir.join(format!("{}.{ext}", d.name));
    let truth_path = work_dir.join(format!("{}.truth.json", d.name));
    if data.is_file() {
        if let Ok(text) = fs::read_to_string(&truth_path) {
            if let Ok(t) = serde_json::from_str::<TruthFile>(&text) {
                let windows: Vec<u64> = t.extra_windows.iter().map(|w| w.window_ms).collect();
                let wanted: Vec<u64> = extra.iter().map(|w| w.ms()).collect();
                let len = fs::metadata(&data).map_or(0, |m| m.len());
                if t.spec == d.gen && windows == wanted && len == t.bytes {
                    if verbose {
                        eprintln!("dataset {}: reusing {}", d.name, data.display());
                    }
                    return Ok((data, t));
                }
            }
        }
    }
    let start = Instant::now();
    let f = File::create(&data).map_err(Error::file(&data))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let t = write_dataset(&d.gen, &mut w, Some(extra))
        .map_err(Error::file(&data))?
        .expect("truth requested");
    save_json(&truth_path, &t)?;
    if verbose {
        eprintln!(
            "dataset {}: generated {} records in {:.1} s",
            d.name,
            t.records,
            start.elapsed().as_secs_f64()
        );
    }
    Ok((data, t))
}

fn summary_of(t: &TruthFile) -> TruthSummary {
    TruthSummary {
        records: t.records,
        bytes: t.bytes,
        unique_lines: t.unique_lines,
        unique_ids: t.unique_ids,
        window: t.window.window.clone(),
        window_emitted: t.window.emitted,
        window_late: t.window.late,
        window_rotations: t.window.rotations,
    }
}

fn expected(t: &TruthFile, windowed: u64) -> Expected {
    Expected {
        records: t.records,
        unique_lines: t.unique_lines,
        unique_ids: t.unique_ids,
        windowed,
    }
}

fn wanted(only: &[String], slug: &str) -> bool {
    only.is_empty() || only.iter().any(|o| slug.contains(o.as_str()))
}

/// Runs the standard line-up on one dataset.
pub fn run_dataset(
    runner: &Runner,
    d: &DatasetSpec,
    data: &Path,
    t: &TruthFile,
    runs: usize,
    only: &[String],
) -> DatasetResult {
    let ctx = Context {
        spec: d.gen.clone(),
        logdedup: runner.logdedup.clone(),
        redis: runner.redis.is_some(),
    };
    let exp = expected(t, t.window.emitted);
    let tools: Vec<_> = tools::standard(&ctx)
        .into_iter()
        .filter(|x| x.slug == "floor" || wanted(only, &x.slug))
        .map(|x| (x, exp))
        .collect();
    if runner.verbose {
        eprintln!("dataset {}: {} tools × {runs} runs", d.name, tools.len());
    }
    let mut results = runner.interleaved(&tools, data, runs);
    let floor = results.iter().find(|r| r.slug == "floor").and_then(|r| {
        let mut f = r.clone();
        f.summarise(t.records, t.bytes, t.unique_ids, None);
        f.summary.map(|s| s.median_s)
    });
    for r in &mut results {
        r.summarise(t.records, t.bytes, t.unique_ids, floor);
    }
    DatasetResult {
        name: d.name.clone(),
        about: d.about.clone(),
        spec: d.gen.clone(),
        truth: summary_of(t),
        tools: results,
    }
}

fn summarise_all(rs: &mut [ToolResult], t: &TruthFile) {
    for r in rs {
        r.summarise(t.records, t.bytes, t.unique_ids, None);
    }
}

/// Runs the whole suite and writes the run folder; returns its path.
pub fn run(opts: &Options) -> Result<PathBuf> {
    let spec = &opts.spec;
    let runs = opts.runs.unwrap_or(spec.runs).max(1);
    let dir = opts.out_root.join(format!("{}-{}", today(), opts.name));
    let raw = dir.join("raw");
    fs::create_dir_all(&raw).map_err(Error::file(&raw))?;
    let scratch = tempfile::Builder::new()
        .prefix("logdedup-bench")
        .tempdir()
        .map_err(Error::file(std::env::temp_dir()))?;
    let mut notes = Vec::new();
    let redis = start_redis(&mut notes);
    notes.extend(missing_tools(&opts.logdedup));
    let machine = machine::describe(&opts.logdedup);
    save_json(&raw.join("machine.json"), &machine)?;
    let runner = Runner {
        scratch: scratch.path().to_path_buf(),
        logdedup: opts.logdedup.clone(),
        bench: opts.bench.clone(),
        redis,
        verbose: opts.verbose,
    };
    let mut results = Results::default();
    for d in &spec.datasets {
        run_experiments(&runner, opts, d, runs, &raw, &mut results)?;
    }
    let Results { datasets, rotation, fpr } = results;
    let report = Report {
        name: opts.name.clone(),
        date: today(),
        command: opts.command.clone(),
        machine,
        runs,
        notes,
        datasets,
        rotation_dataset: spec.rotation_dataset.clone().filter(|_| !rotation.is_empty()),
        rotation,
        fpr_dataset: spec.fpr_dataset.clone().filter(|_| !fpr.is_empty()),
        fpr,
    };
    save_json(&raw.join("results.json"), &report)?;
    export::write_all(&report, &dir)?;
    Ok(dir)
}

/// The harness's own Redis server, or `None` with a note saying why not.
fn start_redis(notes: &mut Vec<String>) -> Option<RedisServer> {
    if find_program("redis-server").is_none() {
        notes.push("Redis tools skipped: redis-server not found on PATH".into());
        return None;
    }
    RedisServer::try_start().map_err(|e| notes.push(format!("Redis tools skipped: {e}"))).ok()
}

/// A note for each program of the line-up that is not there (its tools are skipped).
fn missing_tools(logdedup: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    if !logdedup.is_file() {
        notes.push(format!(
            "logdedup tools skipped: binary {} not found (build it with cargo build --release)",
            logdedup.display()
        ));
    }
    for p in ["runiq", "huniq", "gawk", "mawk"] {
        if find_program(p).is_none() {
            notes.push(format!("{p} not found on PATH: skipped"));
        }
    }
    notes
}

/// What the datasets of a suite produce, in the order they ran.
#[derive(Default)]
struct Results {
    datasets: Vec<DatasetResult>,
    rotation: Vec<RotationPoint>,
    fpr: Vec<FprPoint>,
}

/// One dataset: the line-up, then the rotation and fpr experiments if the spec
/// runs them on it.
fn run_experiments(
    runner: &Runner,
    opts: &Options,
    d: &DatasetSpec,
    runs: usize,
    raw: &Path,
    out: &mut Results,
) -> Result<()> {
    let spec = &opts.spec;
    let mut d = d.clone();
    if let Some(n) = opts.records {
        d.gen.records = Count(n);
    }
    let extra: Vec<Dur> = if spec.rotation_dataset.as_deref() == Some(&d.name) {
        spec.rotation_windows.clone()
    } else {
        Vec::new()
    };
    let (data, truth) = match &opts.prepared {
        Some((data, truth)) => (data.clone(), truth.clone()),
        None => ensure_dataset(&d, &opts.work_dir, &extra, opts.verbose)?,
    };
    save_json(&raw.join(format!("{}.truth.json", d.name)), &truth)?;
    out.datasets.push(run_dataset(runner, &d, &data, &truth, runs, &opts.only));
    let ctx = Context { spec: d.gen.clone(), logdedup: opts.logdedup.clone(), redis: false };
    let run = Experiment { runner, ctx: &ctx, data: &data, truth: &truth, runs };
    if !extra.is_empty() && wanted(&opts.only, "logdedup-window") {
        if opts.verbose {
            eprintln!("rotation experiment on {}: {} windows", d.name, extra.len());
        }
        out.rotation.extend(run.rotation(&extra));
    }
    if spec.fpr_dataset.as_deref() == Some(&d.name) && wanted(&opts.only, "logdedup-none") {
        if opts.verbose {
            eprintln!("fpr experiment on {}: {} settings", d.name, spec.fprs.len());
        }
        out.fpr.extend(run.fpr(&spec.fprs));
    }
    Ok(())
}

/// An experiment on one dataset: logdedup across one knob's values.
struct Experiment<'a> {
    runner: &'a Runner,
    ctx: &'a Context,
    data: &'a Path,
    truth: &'a TruthFile,
    runs: usize,
}

impl Experiment<'_> {
    /// Throughput and memory across window lengths (so across rotation counts).
    fn rotation(&self, windows: &[Dur]) -> Vec<RotationPoint> {
        let truth = self.truth;
        let tools: Vec<_> = windows
            .iter()
            .zip(&truth.extra_windows)
            .map(|(w, wt)| (tools::windowed(self.ctx, *w), expected(truth, wt.emitted)))
            .collect();
        let mut rs = self.runner.interleaved(&tools, self.data, self.runs);
        summarise_all(&mut rs, truth);
        rs.into_iter()
            .zip(windows)
            .zip(&truth.extra_windows)
            .map(|((r, w), wt)| RotationPoint {
                window: w.to_string(),
                window_ms: w.ms(),
                rotations: wt.rotations,
                tool: r,
            })
            .collect()
    }

    /// The achieved false-positive rate of `--exact none` at each configured one.
    fn fpr(&self, fprs: &[f64]) -> Vec<FprPoint> {
        let truth = self.truth;
        let tools: Vec<_> =
            fprs.iter().map(|f| (tools::exact_none(self.ctx, *f), expected(truth, 0))).collect();
        let mut rs = self.runner.interleaved(&tools, self.data, self.runs);
        summarise_all(&mut rs, truth);
        rs.into_iter()
            .zip(fprs)
            .map(|(r, f)| {
                let ran = matches!(r.status, Status::Ok | Status::Mismatch);
                let emitted = r.output.filter(|_| ran);
                let dropped = emitted.map(|e| truth.unique_ids.saturating_sub(e));
                FprPoint {
                    configured: *f,
                    unique_ids: truth.unique_ids,
                    emitted,
                    wrongly_dropped: dropped,
                    achieved: dropped.map(|x| x as f64 / truth.unique_ids.max(1) as f64),
                    tool: r,
                }
            })
            .collect()
    }
}

/// Re-renders the report files of a run folder from its `raw/results.json`.
pub fn rerender(dir: &Path) -> Result<Vec<PathBuf>> {
    let p = dir.join("raw").join("results.json");
    let report: Report = load_json(&p)?;
    export::write_all(&report, dir)
}
