//! The `logdedup` binary: parses arguments, runs the library's pipeline, and maps
//! the outcome to an exit code. All logic lives in the library.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use logdedup::error::Bug;
use logdedup::framing::RawInput;
use logdedup::{Config, Error, Outcome, Pipeline, Stats};

/// The exit codes: 0 done (also when stdout was closed), 1 bad usage or
/// configuration, 2 failure at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Ok = 0,
    Usage = 1,
    Runtime = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Keeps the read buffers on the heap, where freed ones are reused. glibc serves
/// allocations of 128 KiB and more from fresh mappings by default, so every 1 MiB
/// read chunk would fault in and zero 256 new pages (measured: ~10 % of the run
/// spent in `clear_page`). The big tables map their own memory (`HugeBuf`).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// Asks for a 1 MiB pipe buffer on stdin when it is a pipe: the writer and
/// logdedup then move data in fewer, larger steps with fewer context switches.
/// Best effort: the system limit (`/proc/sys/fs/pipe-max-size`) may refuse it.
fn widen_stdin_pipe() {
    #[cfg(target_os = "linux")]
    // SAFETY: fcntl on fd 0 with integer arguments; failure is ignored.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(0, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO {
            libc::fcntl(0, libc::F_SETPIPE_SZ, 1 << 20);
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    widen_stdin_pipe();
    let args = match cli::Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // clap would exit with 2 on a usage error; DESIGN says 1.
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Ok
                }
                _ => Exit::Usage,
            }
            .into();
        }
    };
    if let Some(what) = args.generate {
        return generate(what).into();
    }
    let config = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logdedup: error: {e}");
            return Exit::Usage.into();
        }
    };
    run(args.files, config).into()
}

/// `--generate`: writes a man page or a shell completion script to stdout.
fn generate(what: cli::GenerateArg) -> Exit {
    use std::io::Write;
    let written = cli::generate(what).and_then(|text| std::io::stdout().write_all(&text));
    match written {
        Ok(()) => Exit::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => {
            eprintln!("logdedup: error: stdout: {e}");
            Exit::Runtime
        }
    }
}

/// Runs the pipeline over `files` (stdin if none) into stdout, stopping on
/// SIGINT or SIGTERM, and says how it ended.
fn run(files: Vec<PathBuf>, config: Config) -> Exit {
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, shutdown.clone()) {
            eprintln!("logdedup: error: cannot handle signals: {e}");
            return Exit::Runtime;
        }
    }
    let output = match logdedup::sink::stdout_writer() {
        Ok(o) => o,
        Err(e) => return failed_before_run(&config, Error::io("stdout", e)),
    };
    let input = if files.is_empty() {
        RawInput::stdin()
    } else {
        match RawInput::files(files) {
            Ok(i) => i,
            Err(e) => return failed_before_run(&config, Error::io("input", e)),
        }
    };
    let summary = config.report.summary;
    let pipeline = Pipeline::new(config).with_shutdown(shutdown);
    // A panic is a bug, but still a failure at run time: exit 2 (the panic message
    // is already on stderr), not Rust's 101. The pipeline reports its own panics
    // with its counters; this catches any other.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pipeline.run_to_end(input, output)
    }));
    let Outcome { stats, error, ran } = run.unwrap_or_else(|_| Outcome {
        stats: Stats::default(),
        error: Some(Bug::Panicked("logdedup").into()),
        ran: false,
    });
    match error {
        None => {
            if summary {
                eprint!("{}", stats.summary());
            }
            Exit::Ok
        }
        Some(e) if e.is_broken_pipe() => Exit::Ok,
        Some(e @ Error::Config(_)) => {
            eprintln!("logdedup: error: {e:#}");
            Exit::Usage
        }
        Some(e) => {
            // The counters up to the failure (if it got to reading), then the
            // error as the last word.
            if summary && ran {
                eprint!("{}", stats.summary());
            }
            eprintln!("logdedup: error: {e:#}");
            Exit::Runtime
        }
    }
}

/// A failure before the run could start: said on stderr, and `--stats-json`
/// written (nothing read) with the error, as every exit 2 writes it.
fn failed_before_run(config: &Config, e: Error) -> Exit {
    eprintln!("logdedup: error: {e:#}");
    if let Some(p) = &config.report.stats_json {
        if let Err(we) = Stats::default().write_failed_json_file(p, format!("{e:#}")) {
            eprintln!("logdedup: error: {we:#}");
        }
    }
    Exit::Runtime
}
