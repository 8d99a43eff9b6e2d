//! The `logdedup-bench` command: a thin clap front end over the library. Default
//! paths resolve against the repository this binary was built in, so it works
//! from any directory.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logdedup_bench::error::{Error, Result};
use logdedup_bench::gen::{write_dataset, TruthFile};
use logdedup_bench::spec::{Count, DatasetSpec, Dur, GenConfig, IdKind, SuiteSpec};
use logdedup_bench::{export, machine, setnx, soak, suite};

/// Benchmark harness for logdedup: datasets with truth, peer runs, reports.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a deterministic dataset (and optionally its truth file).
    Gen {
        #[command(flatten)]
        cfg: GenConfig,
        /// Write records here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the truth file (JSON) here.
        #[arg(long)]
        truth: Option<PathBuf>,
        /// Also count the truth for this window length (repeatable).
        #[arg(long = "also-window")]
        also_window: Vec<Dur>,
    },
    /// Run every tool on one data file, check against its truth, write a report.
    Run {
        /// The data file.
        #[arg(long)]
        data: PathBuf,
        /// Its truth file (from `gen --truth`).
        #[arg(long)]
        truth: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Configured fprs to try with `--exact none` (comma-separated).
        #[arg(long, value_delimiter = ',')]
        fpr: Vec<f64>,
    },
    /// Generate the datasets of a spec, run everything, write the report.
    All {
        /// Suite spec (default: datasets/specs/standard.json, or quick.json).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// The quick suite: small data, finishes in under 2 minutes on 2 cores.
        #[arg(long)]
        quick: bool,
        /// Override every dataset's record count.
        #[arg(long)]
        records: Option<Count>,
        /// Where data files go (large; not committed).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Re-render report.md, report.json and report.svg of a run folder from raw/
    /// (of a soak folder: soak.md and soak.svg, judged again from soak.json).
    Report {
        /// The run folder.
        dir: PathBuf,
    },
    /// The Redis peer: stdin lines whose `SET id 1 NX EX ttl` succeeded, to stdout.
    Setnx {
        /// Redis URL (redis://host:port, redis+unix:///path).
        #[arg(long)]
        redis: String,
        /// JSON field names or field:N, comma-separated (several: composite key).
        #[arg(long, value_delimiter = ',', required = true)]
        key: Vec<String>,
        /// Commands per pipelined round trip.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// EX seconds of each key.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
    /// Stream generated records into logdedup's stdin; chart records/s and RSS.
    Soak(SoakArgs),
}

/// The flags of `soak`.
#[derive(clap::Args)]
struct SoakArgs {
    /// Records to stream, e.g. 1e9; the run ends there (or at --seconds).
    #[arg(long, default_value = "1e9")]
    records: Count,
    /// Time limit in seconds (default: none, the run ends after --records).
    #[arg(long)]
    seconds: Option<u64>,
    /// logdedup --window.
    #[arg(long, default_value = "1s")]
    window: Dur,
    /// Which clock rotates the windows: the records' event time, or arrival.
    #[arg(long, value_enum, default_value_t = soak::TimeSource::Event)]
    time: soak::TimeSource,
    /// Records per second of event time (how fast windows rotate).
    #[arg(long, default_value_t = 100_000.0)]
    event_rate: f64,
    /// Shape of the IDs.
    #[arg(long, value_enum, default_value_t = IdKind::Uuid)]
    id_kind: IdKind,
    /// Fraction of duplicates.
    #[arg(long, default_value_t = 0.3)]
    dup_ratio: f64,
    /// Run the exact tier on a private redis-server (sampled: memory, CPU, IDs held).
    #[arg(long)]
    redis: bool,
    /// A setting of that server, NAME=VALUE (CONFIG SET; repeatable).
    #[arg(long = "redis-config", value_name = "NAME=VALUE", requires = "redis")]
    redis_config: Vec<String>,
    /// The logdedup binary.
    #[arg(long)]
    logdedup: Option<PathBuf>,
    /// Run name.
    #[arg(long, default_value = "soak")]
    name: String,
    /// Why the run is shaped as it is (a paragraph at the top of soak.md).
    #[arg(long, default_value = "")]
    about: String,
    /// Parent of the run folder.
    #[arg(long)]
    out_root: Option<PathBuf>,
    /// Further logdedup arguments.
    #[arg(last = true)]
    extra: Vec<String>,
}

/// Flags shared by `run` and `all`.
#[derive(clap::Args)]
struct Common {
    /// Run name: the report goes to <out-root>/<date>-<name>/.
    #[arg(long)]
    name: Option<String>,
    /// Interleaved runs per tool (default: the spec's).
    #[arg(long)]
    runs: Option<usize>,
    /// Parent of the dated run folders.
    #[arg(long)]
    out_root: Option<PathBuf>,
    /// The logdedup binary.
    #[arg(long)]
    logdedup: Option<PathBuf>,
    /// Only tools whose slug contains one of these (comma-separated; floor always runs).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// No per-run progress on stderr.
    #[arg(long)]
    quiet: bool,
}

/// The repository this harness was built in.
fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from)
}

fn default_logdedup() -> PathBuf {
    target_dir().join("release").join("logdedup")
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).map(|a| shell_quote(&a)).collect();
    format!("cargo run --release -p logdedup-bench -- {}", args.join(" "))
}

/// `a` as a shell reads it back: bare when it is plain, else in single quotes.
fn shell_quote(a: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,:/=+%@".contains(c);
    if !a.is_empty() && a.chars().all(plain) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Cmd::Gen { cfg, out, truth, also_window } => gen(&cfg, out, truth, &also_window),
        Cmd::Run { data, truth, common, fpr } => run(data, truth, common, fpr),
        Cmd::All { spec, quick, records, work_dir, common } => {
            all(spec, quick, records, work_dir, common)
        }
        Cmd::Report { dir } if dir.join("soak.json").is_file() => {
            soak::rerender(&dir).map(|files| {
                for f in files {
                    println!("{}", f.display());
                }
            })
        }
        Cmd::Report { dir } => suite::rerender(&dir).map(|files| {
            for f in files {
                println!("{}", f.display());
            }
        }),
        Cmd::Setnx { redis, key, batch, ttl } => setnx::run(&redis, &key, batch.max(1), ttl),
        Cmd::Soak(a) => soak(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logdedup-bench: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn soak(a: SoakArgs) -> Result<()> {
    let o = soak::SoakOptions {
        gen: GenConfig {
            records: a.records,
            id_kind: a.id_kind,
            dup_ratio: a.dup_ratio,
            ..Default::default()
        },
        seconds: a.seconds,
        window: a.window,
        event_rate: a.event_rate,
        time: a.time,
        redis: a.redis,
        redis_config: a.redis_config,
        logdedup: a.logdedup.unwrap_or_else(default_logdedup),
        extra_args: a.extra,
        out_root: a.out_root.unwrap_or_else(|| repo_root().join("datasets/harness/reports")),
        name: a.name,
        about: a.about,
        command: command_line(),
    };
    let m = machine::describe(&o.logdedup);
    soak::run(&o, m).map(|dir| println!("{}", dir.display()))
}

fn gen(cfg: &GenConfig, out: Option<PathBuf>, truth: Option<PathBuf>, also: &[Dur]) -> Result<()> {
    cfg.validate()?;
    let mut sink: Box<dyn Write> = match &out {
        Some(p) => Box::new(File::create(p).map_err(Error::file(p)).map_err(Error::flag("--out"))?),
        None => Box::new(io::stdout().lock()),
    };
    match write_dataset(cfg, &mut sink, truth.is_some().then_some(also)) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(Error::Stream { what: "writing records", source }),
        Ok(Some(t)) => {
            suite::save_json(&truth.expect("truth requested"), &t).map_err(Error::flag("--truth"))
        }
        Ok(None) => Ok(()),
    }
}

fn options(common: Common, spec: SuiteSpec, default_name: &str) -> Result<suite::Options> {
    Ok(suite::Options {
        spec,
        name: common.name.unwrap_or_else(|| default_name.to_string()),
        out_root: common.out_root.unwrap_or_else(|| repo_root().join("datasets/harness/reports")),
        work_dir: target_dir().join("bench-data"),
        logdedup: common.logdedup.unwrap_or_else(default_logdedup),
        bench: std::env::current_exe().map_err(Error::program("logdedup-bench"))?,
        runs: common.runs,
        records: None,
        only: common.only,
        command: command_line(),
        verbose: !common.quiet,
        prepared: None,
    })
}

fn run(data: PathBuf, truth: PathBuf, common: Common, fprs: Vec<f64>) -> Result<()> {
    let t: TruthFile = suite::load_json(&truth).map_err(Error::flag("--truth"))?;
    let name = data.file_stem().map_or("data".into(), |s| s.to_string_lossy().to_string());
    let spec = SuiteSpec {
        about: String::new(),
        runs: 3,
        datasets: vec![DatasetSpec {
            name: name.clone(),
            about: format!("file {}", data.display()),
            gen: t.spec.clone(),
        }],
        rotation_windows: t.extra_windows.iter().map(|w| Dur(w.window_ms)).collect(),
        rotation_dataset: (!t.extra_windows.is_empty()).then(|| name.clone()),
        fpr_dataset: (!fprs.is_empty()).then(|| name.clone()),
        fprs,
    };
    let mut o = options(common, spec, &name)?;
    o.prepared = Some((data, t));
    let dir = suite::run(&o)?;
    print_outputs(&dir);
    Ok(())
}

fn all(
    spec: Option<PathBuf>,
    quick: bool,
    records: Option<Count>,
    work_dir: Option<PathBuf>,
    common: Common,
) -> Result<()> {
    let default = if quick { "quick" } else { "standard" };
    let path = spec.unwrap_or_else(|| repo_root().join(format!("datasets/specs/{default}.json")));
    let s = SuiteSpec::load(&path)?;
    let name = path.file_stem().map_or(default.into(), |s| s.to_string_lossy().to_string());
    let mut o = options(common, s, &name)?;
    o.records = records.map(|c| c.0);
    if let Some(w) = work_dir {
        o.work_dir = w;
    }
    let dir = suite::run(&o)?;
    print_outputs(&dir);
    Ok(())
}

fn print_outputs(dir: &Path) {
    for e in export::all() {
        println!("{}", dir.join(e.file_name()).display());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_are_quoted_for_the_shell() {
        assert_eq!(super::shell_quote("--window"), "--window");
        assert_eq!(super::shell_quote("redis+unix:///tmp/r.sock"), "redis+unix:///tmp/r.sock");
        assert_eq!(super::shell_quote("two words"), "'two words'");
        assert_eq!(super::shell_quote("it's"), "'it'\\''s'");
        assert_eq!(super::shell_quote(""), "''");
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
