//! The `logdedup-bench` command: thin clap front end over the library.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logdedup_bench::gen::write_dataset;
use logdedup_bench::spec::GenConfig;

/// Benchmark harness for logdedup: datasets with truth, peer runs, reports.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Gen { cfg, out, truth } => gen(&cfg, out, truth),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logdedup-bench: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn gen(cfg: &GenConfig, out: Option<PathBuf>, truth: Option<PathBuf>) -> Result<(), String> {
    cfg.validate()?;
    let mut sink: Box<dyn Write> = match &out {
        Some(p) => Box::new(File::create(p).map_err(|e| format!("--out {}: {e}", p.display()))?),
        None => Box::new(io::stdout().lock()),
    };
    let t = write_dataset(cfg, &mut sink, truth.is_some());
    match t {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(format!("writing records: {e}")),
        Ok(Some(t)) => {
            let p = truth.expect("truth requested");
            let f = File::create(&p).map_err(|e| format!("--truth {}: {e}", p.display()))?;
            serde_json::to_writer_pretty(BufWriter::new(f), &t).map_err(|e| format!("--truth: {e}"))?;
        }
        Ok(None) => {}
    }
    Ok(())
}
