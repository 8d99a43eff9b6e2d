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
//! stages in [`classify`], the main thread's in [`run`].

mod batch;
mod classify;
mod reader;
mod run;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{BloomMode, Config, ExactConfig};
use crate::error::{Bug, Result};
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
        let started = Instant::now();
        let c = &self.config;
        c.validate()?;
        // First, so that a bad or busy --metrics address is a usage error at once.
        let mut periodic = Periodic::start(&c.report, started)?;
        let (stages, classifier) = self.build(output)?;
        let reader = reader::spawn(Source {
            input: input.into(),
            classifier: classifier.clone(),
            clock: self.clock.clone(),
            shutdown: self.shutdown.clone(),
            framing: c.framing.clone(),
        })?;
        let mut run = Run::new(c, stages);
        let mut progress = Progress::new(c.report.progress, started);
        let result = run.drive(reader, &classifier, &self.shutdown, &mut progress, &mut periodic);
        progress.clear();
        self.report(run, result, started)
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
            ExactConfig::Memory => Some(Box::new(MemoryTier::retaining(retain))),
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

    /// The counters of a finished run, also written to `--stats-json`.
    fn report(&self, run: Run<'_>, result: Result<()>, started: Instant) -> Result<Stats> {
        let c = &self.config;
        // Stdout closed (`| head`) is a normal end for the caller, which still gets
        // the counters so far in `--stats-json`.
        let closed = match result {
            Ok(()) => None,
            Err(e) if e.is_broken_pipe() && c.report.stats_json.is_some() => Some(e),
            Err(e) => return Err(e),
        };
        let mut stats = run.finish();
        stats.finish(started.elapsed());
        if closed.is_some() {
            // What was read and not yet written or counted (the rest of the batch
            // being written) is `unwritten`, so the counters add up to `records_in`.
            stats.unwritten = stats.records_in.saturating_sub(stats.by_action());
        } else {
            stats.check_conservation().map_err(Bug::from)?;
        }
        if let Some(p) = &c.report.stats_json {
            stats.write_json_file(p)?;
        }
        closed.map_or(Ok(stats), Err)
    }
}
