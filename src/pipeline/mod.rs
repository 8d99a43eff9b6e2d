//! The pipeline: the only place that knows the order of the stages.
//!
//! ```text
//! reader thread:  read ─▶ framing ─▶ key extraction ─▶ hashing ─▶ event time
//!                                                                   │ channel (bounded)
//! main thread:    window ─▶ local tier ─▶ exact tier ─▶ verdict ─▶ sink
//! ```
//!
//! Two threads because the machine this was built on has two cores: framing,
//! key scanning and SipHash run beside the table lookups and the output copy.
//! Data flows one way, a batch (one read's worth of records) at a time; the main
//! thread classifies the part of a batch the reader has not reached rather than
//! wait for it (see [`batch`]). The reader thread is in [`reader`], its per-record
//! stages in [`classify`], the main thread's in [`run`]. The memory tier shares
//! each batch's table inserts with a thread of its own (`exact::helper`): the
//! inserts wait on memory, and the main thread is the slower of the two.

mod batch;
mod classify;
mod reader;
mod run;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{BloomMode, Config, ExactConfig};
use crate::error::{Bug, Error, Result};
use crate::exact::{ExactTier, MemoryTier};
use crate::framing::Input;
use crate::hash::Seed;
use crate::local::LocalTier;
use crate::periodic::Periodic;
use crate::progress::Progress;
use crate::settings;
use crate::sink::Sink;
use crate::state::StateDir;
use crate::stats::Stats;
use crate::window::{Clock, SystemClock, WindowClock};
use classify::Classifier;
use reader::Source;
use run::{Run, Stages};

/// Runs logdedup over one input.
pub struct Pipeline {
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: Arc<AtomicBool>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("config", &self.config).finish()
    }
}

impl Pipeline {
    /// A pipeline for `config`, on the system clock.
    pub fn new(config: Config) -> Pipeline {
        Pipeline {
            config,
            clock: Arc::new(SystemClock),
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Uses `clock` for arrival time (tests use a [`crate::window::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Pipeline {
        self.clock = clock;
        self
    }

    /// Stops reading when `flag` becomes true (SIGINT/SIGTERM): what was read is
    /// still decided and written, the state is saved, and the run ends normally.
    pub fn with_shutdown(mut self, flag: Arc<AtomicBool>) -> Pipeline {
        self.shutdown = flag;
        self
    }

    /// Reads `input` to its end (or to a shutdown), writes kept records to `output`,
    /// and returns the counters.
    pub fn run(
        self,
        input: impl Into<Input<'static>>,
        output: Box<dyn Write + Send>,
    ) -> Result<Stats> {
        let outcome = self.run_to_end(input, output);
        outcome.error.map_or(Ok(outcome.stats), Err)
    }

    /// Runs as [`Pipeline::run`], and returns the counters also when the run
    /// fails (a panic included): what was read, decided and written up to the
    /// error. `--stats-json` is written in either case, with the error.
    pub fn run_to_end(
        self,
        input: impl Into<Input<'static>>,
        output: Box<dyn Write + Send>,
    ) -> Outcome {
        let started = Instant::now();
        let c = &self.config;
        if let Err(e) = c.validate() {
            return Outcome { stats: Stats::default(), error: Some(e.into()), ran: false };
        }
        // First, so that a bad or busy --metrics address is a usage error at once.
        let mut periodic = match Periodic::start(&c.report, started) {
            Ok(p) => p,
            Err(e) => return Outcome { stats: Stats::default(), error: Some(e), ran: false },
        };
        let built = unwound(|| {
            let (stages, classifier) = self.build(output)?;
            let reader = reader::spawn(Source {
                input: input.into(),
                classifier: classifier.clone(),
                clock: self.clock.clone(),
                shutdown: self.shutdown.clone(),
                framing: c.framing.clone(),
            })?;
            Ok((stages, classifier, reader))
        });
        let (stages, classifier, reader) = match built {
            Ok(b) => b,
            Err(e) => return self.report(None, Err(e), started),
        };
        let mut run = Run::new(c, stages);
        let mut progress = Progress::new(c.report.progress, started);
        let shutdown = &self.shutdown;
        let result =
            unwound(|| run.drive(reader, &classifier, shutdown, &mut progress, &mut periodic));
        progress.clear();
        self.report(Some(run), result, started)
    }

    /// Builds the main thread's stages and the classifier: loads the state
    /// directory, connects the exact tier, and makes sure the output files can be
    /// written before anything is read.
    fn build(&self, output: Box<dyn Write + Send>) -> Result<(Stages, Arc<Classifier>)> {
        let c = &self.config;
        let bloom_on = match c.local.bloom {
            BloomMode::On => true,
            BloomMode::Off => false,
            BloomMode::Auto => !matches!(c.exact, ExactConfig::Memory),
        };
        let exact_behind = !matches!(c.exact, ExactConfig::None);
        let (fpr, retain) = (c.local.fpr, c.window.retain);
        let cap = c.local.bloom_initial_capacity;
        let mut local = LocalTier::retaining(retain, bloom_on, exact_behind, fpr, cap);
        let mut exact: Option<Box<dyn ExactTier>> = match c.exact {
            ExactConfig::Memory => {
                let tier = MemoryTier::retaining(retain);
                // A third thread takes half of each batch's table work where a core
                // is free for it beside the reader and this thread. On two cores it
                // was slower: 10M-line file, 5 interleaved rounds, median wall 1.45 s
                // with it against 1.27 s without (keyed 1.85 against 1.63 s).
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                Some(Box::new(if cores > 2 { tier.with_helper_thread() } else { tier }))
            }
            ExactConfig::None | ExactConfig::Redis(_) => None,
        };
        let state = match &c.state.dir {
            Some(d) => Some(StateDir::open(d, settings::text(c, bloom_on))?),
            None => None,
        };
        let loaded = match &state {
            Some(s) => {
                s.load(&mut local, exact.as_mut().map(|e| e.as_mut() as &mut dyn ExactTier))?
            }
            None => None,
        };
        let mut wclock = WindowClock::new(c.window.width_ns, c.window.retain);
        let mut seed = loaded.as_ref().map_or_else(Seed::random, |l| l.seed);
        if let Some(l) = &loaded {
            wclock.set_newest(l.newest);
        }
        if let ExactConfig::Redis(rc) = &c.exact {
            let (tier, agreed) =
                crate::exact::redis::connect(rc, &c.window, loaded.as_ref().map(|l| l.seed))?;
            seed = agreed;
            exact = Some(tier);
        }
        let classifier = Classifier::new(c, seed, bloom_on, exact.is_some())?;
        let sink = Sink::new(output, c.reject_file(), c.emit.tag.as_deref())?;
        if let Some(p) = &c.report.stats_json {
            Stats::create_json_file(p)?;
        }
        Ok((Stages { wclock, local, exact, sink, state, seed }, Arc::new(classifier)))
    }

    /// The counters of a finished run (`None`: it failed before it started),
    /// also written to `--stats-json`, with the error if it failed.
    fn report(&self, run: Option<Run<'_>>, result: Result<()>, started: Instant) -> Outcome {
        let mut error = result.err();
        let ran = run.is_some();
        let mut stats = match run {
            Some(mut run) => {
                if error.is_some() {
                    // Records counted as emitted may still wait in the output
                    // buffer: out with them (best effort, the run failed already).
                    let _ = run.sink_flush();
                }
                run.finish()
            }
            None => Stats::default(),
        };
        stats.finish(started.elapsed());
        if error.is_some() {
            // What was read and neither decided nor written (the batch the error
            // stopped) is `unwritten`, so the counters still add up to `records_in`.
            stats.unwritten = stats.records_in.saturating_sub(stats.by_action());
        } else if let Err(e) = stats.check_conservation() {
            error = Some(Bug::from(e).into());
        }
        if let Some(p) = &self.config.report.stats_json {
            let written = match &error {
                None => stats.write_json_file(p),
                Some(e) => stats.write_failed_json_file(p, format!("{e:#}")),
            };
            if let (Err(e), None) = (written, &error) {
                error = Some(e);
            }
        }
        Outcome { stats, error, ran }
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The counters: of the whole run, or up to the error (zero if it failed
    /// before reading).
    pub stats: Stats,
    /// Why the run failed, if it did.
    pub error: Option<Error>,
    /// Whether it got as far as reading its input (it did not when the state
    /// directory or the exact tier could not be used).
    pub ran: bool,
}

/// `f()`, with a panic turned into the error it is: the run then still reports
/// its counters (the panic's message is on stderr already).
fn unwound<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Bug::Panicked("the run").into()))
}
