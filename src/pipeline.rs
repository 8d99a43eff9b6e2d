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
//! wait for it (see [`Batch`]). Within a
//! batch, integer IDs are decided at once; string IDs are collected and resolved
//! together (prefetched bloom lookups, one exact-tier call), and always before a
//! window retires, so rotation never races a pending lookup.

use std::io::{self, IsTerminal, Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::{BloomMode, Checkpoint, Config, Disposition, ExactConfig, OnExactError};
use crate::error::{Bug, Error, ExactError, Result};
use crate::exact::{ExactAnswer, ExactQuery, ExactTier, MemoryTier};
use crate::framing::{Frame, FrameReader, RawInput, Records, Span};
use crate::hash::Seed;
use crate::key::{int, Fields, Key, KeyType};
use crate::local::LocalTier;
use crate::sink::{push_run, Sink};
use crate::state::StateDir;
use crate::stats::Stats;
use crate::time::TimeFormat;
use crate::verdict::{decide, Action, Verdict};
use crate::window::{Clock, Placement, SystemClock, WindowClock, WindowIndex};

/// Batches in flight between the reader thread and the main thread. Each holds a
/// read's worth of records (512 KiB by default): the queue absorbs the moments when
/// one thread runs slower than the other (a table growing, the pipe running dry).
/// 8 × 512 KiB against 4 × 1 MiB, 10M keyed lines, three loops: 4-7 % less wall
/// time, 2 MiB less peak RSS; 16 × 256 KiB and 12 × 512 KiB were no better than 4 ×
/// 1 MiB, and 8 × 1 MiB cost 6 MiB of RSS.
const CHANNEL_DEPTH: usize = 8;
/// Bloom lookups are prefetched this many keys ahead.
const PREFETCH_AHEAD: usize = 16;

/// How a record's ID is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    /// No key, or no readable event time.
    Unkeyed,
    /// Integer ID for the roaring tier.
    Int(u64),
    /// String ID: bloom hash and exact fingerprint (each 0 when not needed).
    Str { bloom: u64, fp: u128 },
}

/// A record after the reader thread's stages.
#[derive(Debug, Clone, Copy)]
struct Item {
    id: Id,
    time_ns: i64,
}

/// What the reader thread sends.
enum Work {
    Batch(Arc<Batch>),
    Oversized { part: Bytes, last: bool },
    Failed(io::Error),
}

/// Records per segment of a [`Batch`]: the unit of classifying that either
/// thread may claim.
const SEGMENT: usize = 512;

/// A batch of framed records, classified a segment at a time.
///
/// The reader thread classifies what it reads, but the cost per batch of the two
/// threads varies (table loads and growth on the main thread, the pipe and the
/// record shapes on the reader), so with a short queue each sometimes waits for
/// the other; on two cores a waiting main thread is an idle core. So a batch is
/// handed on as soon as the queue has room, and the two threads classify its
/// segments together, each claiming the next unclaimed one: the main thread,
/// having nothing else to do, helps with the batch it is about to decide, and
/// waits only for segments the reader has already begun.
struct Batch {
    records: Records,
    arrival_ns: i64,
    segments: Vec<OnceLock<Vec<Item>>>,
    /// The first segment no thread has claimed.
    next: AtomicUsize,
}

impl Batch {
    fn new(records: Records, arrival_ns: i64) -> Batch {
        let segments =
            (0..records.spans.len().div_ceil(SEGMENT)).map(|_| OnceLock::new()).collect();
        Batch { records, arrival_ns, segments, next: AtomicUsize::new(0) }
    }

    /// The records of segment `k`.
    fn spans(&self, k: usize) -> &[Span] {
        let all = &self.records.spans;
        &all[k * SEGMENT..((k + 1) * SEGMENT).min(all.len())]
    }

    /// Claims and classifies segments until none is left unclaimed.
    fn classify_unclaimed(&self, classifier: &Classifier, last_time: &mut Option<i64>) {
        loop {
            let s = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = self.segments.get(s) else { return };
            let claim = Claim(slot);
            let spans = self.spans(s);
            let mut items = Vec::with_capacity(spans.len());
            classifier.classify(&self.records, spans, self.arrival_ns, last_time, &mut items);
            // Claimed by this thread alone, so the slot is empty.
            let _ = claim.0.set(items);
        }
    }

    /// Every record's item, in order, once every segment is classified (waiting
    /// for those another thread is still on); `None` if a segment came back short
    /// (its thread panicked).
    fn items(&self) -> Option<impl Iterator<Item = &Item>> {
        let whole =
            self.segments.iter().enumerate().all(|(k, s)| s.wait().len() == self.spans(k).len());
        whole.then(|| self.segments.iter().flat_map(|s| s.wait().iter()))
    }
}

/// A claimed segment: filled even if classifying it panics (with nothing, which
/// [`Batch::items`] reports), so the other thread never waits on it forever.
struct Claim<'a>(&'a OnceLock<Vec<Item>>);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let _ = self.0.set(Vec::new());
    }
}

/// Everything a thread needs to classify records.
struct Classifier {
    /// The key and the time field.
    fields: Fields,
    /// How the time field is written (with `--time-field`).
    time_format: Option<TimeFormat>,
    seed: Seed,
    need_bloom: bool,
    need_fp: bool,
    /// Integer IDs go to the exact tier too (a shared, remote tier is the authority
    /// for them as well: `--shared`, restarts without a state directory).
    ints_exact: bool,
}

impl Classifier {
    /// Whether records may be classified out of order, by two threads: not when a
    /// time without a year is read relative to the record before.
    fn shareable(&self) -> bool {
        self.time_format.as_ref().is_none_or(|f| !f.lacks_year())
    }

    /// Appends the items of the records at `spans` to `items`. `last_time` is the
    /// last event time read: a time format without a year takes the year that puts
    /// each record closest to the one before (the arrival time for the first).
    fn classify(
        &self,
        records: &Records,
        spans: &[Span],
        arrival_ns: i64,
        last_time: &mut Option<i64>,
        items: &mut Vec<Item>,
    ) {
        let mut scratch = self.fields.scratch();
        items.reserve(spans.len());
        for span in spans {
            let content = records.content(span);
            self.fields.read(content, &mut scratch);
            // A time that can be read counts (`last_time`), keyed or not: a JSON
            // time field is only found in a whole JSON record.
            let time_ns = match &self.time_format {
                Some(fmt) => {
                    let near = last_time.unwrap_or(arrival_ns);
                    match self
                        .fields
                        .time(content, &mut scratch)
                        .and_then(|t| fmt.parse_near(t, near))
                    {
                        Some(t) => {
                            *last_time = Some(t);
                            t
                        }
                        None => {
                            items.push(Item { id: Id::Unkeyed, time_ns: 0 });
                            continue;
                        }
                    }
                }
                None => arrival_ns,
            };
            let key = self.fields.key(content, &mut scratch);
            let id = match key {
                None => Id::Unkeyed,
                Some(Key::Int { value, .. }) if int::is_dense_range(value) && !self.ints_exact => {
                    Id::Int(value)
                }
                Some(k) => {
                    let b = k.bytes();
                    Id::Str {
                        bloom: if self.need_bloom { self.seed.bloom_hash(b) } else { 0 },
                        fp: if self.need_fp { self.seed.fingerprint(b) } else { 0 },
                    }
                }
            };
            items.push(Item { id, time_ns });
        }
    }
}

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

    /// The settings that decide what a key is; a state directory is bound to them.
    ///
    /// The text is part of the snapshot format (unchanged since version 1): every
    /// piece is spelled out here rather than taken from `Debug`, so renaming a type
    /// cannot break loading an old snapshot.
    fn settings(&self, bloom: bool) -> String {
        let c = &self.config;
        let key_type = match c.key.key_type() {
            KeyType::Auto => "Auto",
            KeyType::Int => "Int",
            KeyType::Str => "Str",
        };
        let opt =
            |v: Option<String>| v.map_or_else(|| "None".to_string(), |v| format!("Some({v})"));
        format!(
            "v1 key={} key_type={key_type} delimiter={} window_ns={} bloom={}",
            c.key.describe(),
            opt(c.key.delimiter().map(|d| d.to_string())),
            opt(c.window.width_ns.map(|w| w.to_string())),
            u8::from(bloom)
        )
    }

    /// Reads `input` to its end (or to a shutdown), writes kept records to `output`,
    /// and returns the counters.
    pub fn run<R: Read + Send + 'static>(
        self,
        input: R,
        output: Box<dyn Write + Send>,
    ) -> Result<Stats> {
        let started = Instant::now();
        let c = &self.config;
        c.validate()?;
        let bloom_on = match c.local.bloom {
            BloomMode::On => true,
            BloomMode::Off => false,
            BloomMode::Auto => !matches!(c.exact, ExactConfig::Memory),
        };
        let mut local = LocalTier::new(bloom_on, c.local.fpr, c.local.bloom_initial_capacity);
        let mut exact: Option<Box<dyn ExactTier>> = match c.exact {
            ExactConfig::Memory => Some(Box::new(MemoryTier::new())),
            ExactConfig::None | ExactConfig::Redis(_) => None,
        };
        let state = match &c.state.dir {
            Some(d) => Some(StateDir::open(d, self.settings(bloom_on))?),
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
        let time_format = match &c.time {
            Some(t) => Some(match &t.format {
                Some(f) => TimeFormat::strftime(f)?,
                None => TimeFormat::Auto,
            }),
            None => None,
        };
        let classifier = Arc::new(Classifier {
            fields: Fields::new(c.key.clone(), c.time.as_ref().map(|t| t.field.clone())),
            time_format,
            seed,
            need_bloom: bloom_on,
            need_fp: exact.is_some(),
            ints_exact: matches!(c.exact, ExactConfig::Redis(_)),
        });
        let shared = classifier.shareable();
        let sink = Sink::new(output, c.emit.reject_file.as_deref(), c.emit.tag.as_deref())?;
        if let Some(p) = &c.report.stats_json {
            // Found out now, not after hours of stream: the counters must have a home.
            std::fs::File::create(p).map_err(|e| {
                Error::io(format!("--stats-json: cannot create {}", p.display()), e)
            })?;
        }

        // A raw input never blocks its reader for long (it polls), so on shutdown
        // the reader stops by itself and everything it read is decided.
        let polled = (&input as &dyn std::any::Any).is::<RawInput>();
        let (tx, rx) = mpsc::sync_channel::<Work>(CHANNEL_DEPTH);
        let shutdown = self.shutdown.clone();
        let clock = self.clock.clone();
        let (chunk, max_record) = (c.framing.chunk_bytes, c.framing.max_record_bytes);
        let reader_classifier = classifier.clone();
        let reader = thread::Builder::new()
            .name("logdedup-reader".into())
            .spawn(move || {
                let classifier = reader_classifier;
                let mut last_time = None;
                let mut fr = FrameReader::new(input, chunk, max_record).with_raw_input();
                loop {
                    if shutdown.load(Ordering::Relaxed) {
                        let input = fr.get_ref() as &dyn std::any::Any;
                        let rereadable =
                            input.downcast_ref::<RawInput>().is_some_and(RawInput::rereadable);
                        fr.finish_input(!rereadable);
                    }
                    let work = match fr.next_frame() {
                        Ok(None) => break,
                        Ok(Some(Frame::Records(rs))) => {
                            let batch = Arc::new(Batch::new(rs, clock.now_ns()));
                            if shared {
                                // Handed on first when there is room, so an idle
                                // main thread can help (see `Batch`).
                                match tx.try_send(Work::Batch(batch.clone())) {
                                    Ok(()) => {
                                        batch.classify_unclaimed(&classifier, &mut last_time);
                                        continue;
                                    }
                                    Err(TrySendError::Full(_)) => {}
                                    Err(TrySendError::Disconnected(_)) => break,
                                }
                            }
                            batch.classify_unclaimed(&classifier, &mut last_time);
                            Work::Batch(batch)
                        }
                        Ok(Some(Frame::Oversized { part, last, .. })) => {
                            Work::Oversized { part, last }
                        }
                        // Idle input: look at the shutdown flag, then wait again.
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                        Err(e) => Work::Failed(e),
                    };
                    let failed = matches!(work, Work::Failed(_));
                    if tx.send(work).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("starting the reader thread", e))?;

        let mut run = Run {
            config: &self.config,
            wclock,
            local,
            exact,
            sink,
            state,
            seed,
            stats: Stats::default(),
            verdicts: Vec::new(),
            pending: Vec::new(),
            kept: Vec::new(),
            queries: Vec::new(),
            answers: Vec::new(),
            rotated: false,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        };
        let progress = c.report.progress && io::stderr().is_terminal();
        let mut last_progress = Instant::now();
        let result = (|| -> Result<()> {
            loop {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(Work::Batch(b)) => {
                        if shared {
                            b.classify_unclaimed(&classifier, &mut None);
                        }
                        let items =
                            b.items().ok_or(Bug::Panicked("classifying a batch of records"))?;
                        run.batch(&b.records, items)?
                    }
                    Ok(Work::Oversized { part, last }) => run.oversized(&part, last)?,
                    Ok(Work::Failed(e)) => return Err(Error::io("reading input", e)),
                    Err(RecvTimeoutError::Timeout) => {
                        // Idle input: the stream may be quiet for hours (`tail -F`),
                        // so output and checkpoints must not wait for the next batch.
                        run.sink.flush()?;
                        if let Some(e) = &mut run.exact {
                            e.output_written(true);
                        }
                        if self.shutdown.load(Ordering::Relaxed) && !polled && !reader.is_finished()
                        {
                            // Another reader may block in a read for as long as
                            // its input is quiet: stop without it. (A raw input's
                            // reader ends by itself within its poll interval.)
                            break;
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        // The reader has ended; a panic must not pass for the end
                        // of the input.
                        if reader.join().is_err() {
                            return Err(Bug::Panicked("the reader thread").into());
                        }
                        break;
                    }
                }
                run.maybe_checkpoint()?;
                if progress && last_progress.elapsed() >= Duration::from_secs(1) {
                    last_progress = Instant::now();
                    let s = &run.stats;
                    let rate = s.records_in as f64 / started.elapsed().as_secs_f64();
                    eprint!(
                        "\rlogdedup: {} in, {} emitted, {} duplicates, {:.0} records/s   ",
                        s.records_in, s.emitted, s.duplicates, rate
                    );
                }
            }
            run.sink.flush()?;
            run.checkpoint()?;
            if let Some(e) = &mut run.exact {
                e.output_written(true);
                e.flush()?;
            }
            Ok(())
        })();
        if progress {
            eprint!("\r\x1b[K");
        }
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
            std::fs::write(p, stats.to_json())
                .map_err(|e| Error::io(format!("--stats-json: writing {}", p.display()), e))?;
        }
        closed.map_or(Ok(stats), Err)
    }
}

/// A string ID waiting for the bloom and the exact tier.
#[derive(Debug, Clone, Copy)]
struct PendingStr {
    index: usize,
    bloom: u64,
    fp: u128,
    oldest: WindowIndex,
    own: WindowIndex,
}

/// The main thread's state during a run.
struct Run<'c> {
    config: &'c Config,
    wclock: WindowClock,
    local: LocalTier,
    exact: Option<Box<dyn ExactTier>>,
    sink: Sink,
    state: Option<StateDir>,
    seed: Seed,
    stats: Stats,
    verdicts: Vec<Verdict>,
    pending: Vec<PendingStr>,
    /// The byte ranges of the batch's records to write, adjacent ones merged.
    kept: Vec<Range<usize>>,
    queries: Vec<ExactQuery>,
    answers: Vec<ExactAnswer>,
    rotated: bool,
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl Run<'_> {
    fn batch<'i>(
        &mut self,
        records: &Records,
        items: impl Iterator<Item = &'i Item>,
    ) -> Result<()> {
        let n = records.spans.len();
        self.stats.records_in += n as u64;
        self.stats.bytes_in += records.data.len() as u64;
        self.since_checkpoint += n as u64;
        self.verdicts.clear();
        self.verdicts.resize(n, Verdict::Unkeyed);
        self.pending.clear();
        for (i, item) in items.enumerate() {
            if item.id == Id::Unkeyed {
                continue;
            }
            let w = self.wclock.index(item.time_ns);
            let (placement, retire) = self.wclock.place(w);
            if let Some(oldest) = retire {
                // Decide every string ID placed so far before its window can go.
                self.resolve_strings()?;
                self.local.retire_before(oldest);
                if let Some(e) = &mut self.exact {
                    e.retire_before(oldest);
                }
                self.stats.windows_rotated += 1;
                self.rotated = true;
            }
            let Placement::Retained { oldest, own } = placement else {
                self.verdicts[i] = Verdict::Late;
                continue;
            };
            match item.id {
                Id::Int(v) => {
                    self.stats.int_ids += 1;
                    let seen = self.local.check_insert_int(v, oldest, own);
                    self.verdicts[i] = if seen { Verdict::Dup } else { Verdict::New };
                }
                Id::Str { bloom, fp } => {
                    self.stats.str_ids += 1;
                    self.pending.push(PendingStr { index: i, bloom, fp, oldest, own });
                }
                Id::Unkeyed => unreachable!("skipped above"),
            }
        }
        self.resolve_strings()?;
        let c = self.config;
        // Tagged output is rewritten record by record; the rest is written as runs
        // of the batch's buffer. Every record is counted before any is written, so
        // a write that fails (stdout closed) leaves no record of the batch uncounted.
        let tagging = c.emit.tag.is_some();
        let rejected_before = self.stats.rejected;
        self.kept.clear();
        for (i, span) in records.spans.iter().enumerate() {
            let v = self.verdicts[i];
            match v {
                Verdict::New => self.stats.new += 1,
                Verdict::Dup => self.stats.duplicates += 1,
                Verdict::Unkeyed => self.stats.unkeyed += 1,
                Verdict::Late => self.stats.late += 1,
                Verdict::Oversized => self.stats.oversized += 1,
                Verdict::Unconfirmed => self.stats.unconfirmed += 1,
            }
            match decide(v, &c.policies, &c.emit) {
                Action::Write { .. } => {
                    self.stats.emitted += 1;
                    if !tagging {
                        push_run(&mut self.kept, span.start as usize..span.end as usize);
                    }
                }
                Action::Suppress => self.stats.suppressed += 1,
                Action::Drop => self.stats.dropped += 1,
                Action::Reject => self.stats.rejected += 1,
            }
        }
        if tagging || self.stats.rejected > rejected_before {
            for (i, span) in records.spans.iter().enumerate() {
                match decide(self.verdicts[i], &c.policies, &c.emit) {
                    Action::Write { tag } if tagging => self.sink.write(records.raw(span), tag)?,
                    Action::Reject => self.sink.reject(records.raw(span))?,
                    _ => {}
                }
            }
        }
        self.sink.write_runs(&records.data, &self.kept)?;
        if let Some(e) = self.exact.as_mut().filter(|e| e.wants_output_written()) {
            self.sink.flush()?;
            e.output_written(false);
        }
        Ok(())
    }

    /// Decides the pending string IDs: bloom first (if on), then the exact tier.
    fn resolve_strings(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // `maybe[j]`: the bloom's answer for pending j (true when there is no bloom).
        let mut maybe = vec![true; self.pending.len()];
        if self.local.has_bloom() {
            for p in self.pending.iter().take(PREFETCH_AHEAD) {
                self.local.prefetch_bloom(p.bloom, p.own);
            }
            for (j, m) in maybe.iter_mut().enumerate() {
                if let Some(a) = self.pending.get(j + PREFETCH_AHEAD) {
                    self.local.prefetch_bloom(a.bloom, a.own);
                }
                let p = self.pending[j];
                *m = self.local.check_insert_bloom(p.bloom, p.oldest, p.own);
                if *m {
                    self.stats.maybes += 1;
                }
            }
        }
        let Some(exact) = &mut self.exact else {
            // `--exact none`: trust the bloom.
            for (p, &m) in self.pending.iter().zip(&maybe) {
                self.verdicts[p.index] = if m { Verdict::Dup } else { Verdict::New };
            }
            self.pending.clear();
            return Ok(());
        };
        self.queries.clear();
        let bloom = self.local.has_bloom();
        self.queries.extend(self.pending.iter().zip(&maybe).map(|(p, &m)| ExactQuery {
            fp: p.fp,
            oldest: p.oldest,
            own: p.own,
            local_new: bloom && !m,
        }));
        let errors_before = exact.stats().errors;
        exact.check_and_insert(&self.queries, &mut self.answers)?;
        // `abort`: any failure of the tier stops the run, also one the local tier
        // could answer around (a journal not written, a compaction that failed).
        let tier_failed = exact.stats().errors > errors_before;
        self.stats.exact_queries += self.queries.len() as u64;
        let mut failed = false;
        for (j, p) in self.pending.iter().enumerate() {
            let v = match self.answers[j] {
                ExactAnswer::New => Verdict::New,
                ExactAnswer::Seen => Verdict::Dup,
                ExactAnswer::Failed => {
                    failed = true;
                    Verdict::Unconfirmed
                }
            };
            if bloom && maybe[j] {
                match v {
                    Verdict::Dup => self.stats.confirmed_dups += 1,
                    Verdict::New => self.stats.false_maybes += 1,
                    _ => {}
                }
            }
            self.verdicts[p.index] = v;
        }
        self.pending.clear();
        if (failed || tier_failed) && self.config.policies.on_exact_error == OnExactError::Abort {
            let reason = exact.last_error().unwrap_or_else(|| "a batch failed".into());
            return Err(ExactError::Aborted { reason }.into());
        }
        Ok(())
    }

    fn oversized(&mut self, part: &[u8], last: bool) -> Result<()> {
        self.stats.bytes_in += part.len() as u64;
        match self.config.framing.on_oversized {
            Disposition::Emit => self.sink.write_part(part)?,
            Disposition::Drop => {}
            Disposition::Reject => self.sink.reject(part)?,
        }
        if last {
            self.stats.records_in += 1;
            self.stats.oversized += 1;
            self.since_checkpoint += 1;
            match self.config.framing.on_oversized {
                Disposition::Emit => self.stats.emitted += 1,
                Disposition::Drop => self.stats.dropped += 1,
                Disposition::Reject => self.stats.rejected += 1,
            }
        }
        Ok(())
    }

    fn maybe_checkpoint(&mut self) -> Result<()> {
        if self.state.is_none() {
            return Ok(());
        }
        let due = self.rotated
            || match self.config.state.checkpoint_every {
                Checkpoint::Never => false,
                Checkpoint::Records(n) => n > 0 && self.since_checkpoint >= n,
                Checkpoint::Every(d) => self.last_checkpoint.elapsed() >= d,
            };
        if due {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Flushes the output, then snapshots: the snapshot never holds an ID whose
    /// record was not written.
    fn checkpoint(&mut self) -> Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        self.sink.flush()?;
        state.save(
            &self.seed,
            self.wclock.newest(),
            &self.local,
            self.exact.as_ref().map(|e| e.as_ref() as &dyn ExactTier),
        )?;
        self.stats.checkpoints += 1;
        self.rotated = false;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    fn finish(self) -> Stats {
        let mut s = self.stats;
        let l = self.local.stats();
        s.bitmap_ids = l.bitmap_ids;
        s.bitmap_bytes = l.bitmap_bytes;
        s.bloom_keys = l.bloom_keys;
        s.bloom_bits = l.bloom_bits;
        s.bloom_fill = l.bloom_fill;
        s.bloom_expected_fpr = l.bloom_expected_fpr;
        if let Some(e) = &self.exact {
            let es = e.stats();
            s.exact_fingerprints = es.fingerprints;
            s.exact_bytes = es.bytes;
            // The tier counts its round trips and failed batches for the whole run.
            s.exact_round_trips = es.round_trips;
            s.exact_errors = es.errors;
            s.exact_outages = es.outages;
            s.exact_outage = es.outage;
            s.exact_error = if es.outage { e.last_error() } else { None };
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeySpec;

    fn classifier(key: &str, time: Option<&str>) -> Classifier {
        let spec = |k: &str| KeySpec::parse(&[k.to_string()], None, KeyType::Auto).unwrap();
        Classifier {
            fields: Fields::new(spec(key), time.map(spec)),
            time_format: time.map(|_| TimeFormat::Auto),
            seed: Seed::random(),
            need_bloom: true,
            need_fp: true,
            ints_exact: false,
        }
    }

    /// One batch of `n` records: string, integer and missing IDs, some cut.
    fn records(n: usize) -> Records {
        let mut data = Vec::new();
        for i in 0..n {
            let line = match i % 5 {
                0 => format!("{{\"id\":\"s{}\",\"t\":{}}}\n", i % 97, 1_700_000_000 + i),
                1 => format!("{{\"id\":{},\"t\":{}}}\n", i % 89, 1_700_000_000 + i),
                2 => format!("{{\"other\":{i}}}\n"),
                3 => format!("{{\"id\":\"cut{i}\",\"t\":1\n"),
                _ => format!("{{\"t\":{},\"id\":\"s{}\"}}\r\n", 1_700_000_000 + i, i % 13),
            };
            data.extend_from_slice(line.as_bytes());
        }
        let mut fr = FrameReader::new(io::Cursor::new(data), 1 << 24, 1 << 20);
        match fr.next_frame().unwrap() {
            Some(Frame::Records(rs)) => rs,
            _ => panic!("one batch of records expected"),
        }
    }

    #[test]
    fn two_threads_classify_a_batch_as_one_does() {
        for time in [None, Some(".t")] {
            let c = Arc::new(classifier(".id", time));
            assert!(c.shareable());
            let rs = records(20 * SEGMENT + 7);
            let mut alone = Vec::new();
            c.classify(&rs, &rs.spans, 5, &mut None, &mut alone);
            assert_eq!(alone.len(), rs.spans.len());
            for _ in 0..20 {
                let b = Arc::new(Batch::new(rs.clone(), 5));
                let (b2, c2) = (b.clone(), c.clone());
                let helper = thread::spawn(move || b2.classify_unclaimed(&c2, &mut None));
                b.classify_unclaimed(&c, &mut None);
                let shared: Vec<Item> =
                    b.items().expect("every segment classified").copied().collect();
                helper.join().unwrap();
                assert_eq!(shared.len(), alone.len());
                for (k, (x, y)) in shared.iter().zip(&alone).enumerate() {
                    assert!(x.id == y.id && x.time_ns == y.time_ns, "record {k}: {x:?} vs {y:?}");
                }
            }
            // The batch holds every kind of item, so the comparison above means something.
            assert!(alone.iter().any(|i| matches!(i.id, Id::Str { .. })));
            assert!(alone.iter().any(|i| matches!(i.id, Id::Int(_))));
            assert!(alone.iter().any(|i| i.id == Id::Unkeyed));
        }
    }

    #[test]
    fn a_year_less_time_is_read_in_order_by_one_thread() {
        let mut c = classifier(".id", Some(".t"));
        c.time_format = Some(TimeFormat::strftime("%b %d %H:%M:%S").unwrap());
        assert!(!c.shareable());
        assert!(classifier("line", None).shareable());
    }

    #[test]
    fn a_segment_whose_thread_panicked_is_reported_not_waited_for() {
        let b = Arc::new(Batch::new(records(3 * SEGMENT), 0));
        // Another thread claims the second segment and panics while classifying it.
        b.next.store(3, Ordering::Relaxed);
        let b2 = b.clone();
        let failed = thread::spawn(move || {
            let _claim = Claim(&b2.segments[1]);
            panic!("classifying failed");
        })
        .join();
        assert!(failed.is_err());
        let c = classifier(".id", None);
        for k in [0, 2] {
            let mut items = Vec::new();
            c.classify(&b.records, b.spans(k), 0, &mut None, &mut items);
            b.segments[k].set(items).unwrap();
        }
        assert!(b.items().is_none());
    }
}
