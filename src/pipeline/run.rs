//! The main thread's stages: window, local tier, exact tier, verdict, sink, and
//! the snapshots of the state directory.
//!
//! Within a batch, integer IDs are decided at once; string IDs are collected and
//! resolved together (prefetched bloom lookups, one exact-tier call), and always
//! before a window retires, so rotation never races a pending lookup.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::batch::{Id, Item};
use super::classify::Classifier;
use super::reader::{Reader, Work};
use crate::config::{Checkpoint, Config, OnExactError};
use crate::error::{Bug, Error, ExactError, Result};
use crate::exact::{ExactAnswer, ExactQuery, ExactTier};
use crate::framing::Records;
use crate::hash::Seed;
use crate::local::LocalTier;
use crate::periodic::{Periodic, Snapshot};
use crate::progress::Progress;
use crate::sink::{push_run, Sink};
use crate::state::StateDir;
use crate::stats::Stats;
use crate::verdict::{decide, Action, Verdict};
use crate::window::{Placement, WindowClock, WindowIndex};

/// Bloom lookups are prefetched this many keys ahead.
const PREFETCH_AHEAD: usize = 16;
/// How long the input may be quiet before what is buffered is written out.
const IDLE: Duration = Duration::from_millis(200);

/// The stages the main thread runs, built and loaded before the run starts.
pub(super) struct Stages {
    pub(super) wclock: WindowClock,
    pub(super) local: LocalTier,
    pub(super) exact: Option<Box<dyn ExactTier>>,
    pub(super) sink: Sink,
    pub(super) state: Option<StateDir>,
    pub(super) seed: Seed,
}

/// A string ID waiting for the bloom and the exact tier.
#[derive(Debug, Clone, Copy)]
struct PendingStr {
    index: usize,
    bloom: u64,
    fp: u128,
    /// `fp` is an integer ID (see `ExactQuery::int`).
    int: bool,
    oldest: WindowIndex,
    own: WindowIndex,
}

/// The main thread's state during a run.
pub(super) struct Run<'c> {
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
    /// Since when written records may wait in the sink's buffer (`None`: all out).
    unflushed_since: Option<Instant>,
    /// `windows_rotated` at the last flush: a rotation flushes.
    rotations_flushed: u64,
    /// Records emitted and flushed: what the progress line shows.
    written: u64,
    /// Parts of a long record went through and its last part has not come.
    part_open: bool,
}

impl<'c> Run<'c> {
    pub(super) fn new(config: &'c Config, s: Stages) -> Run<'c> {
        Run {
            config,
            wclock: s.wclock,
            local: s.local,
            exact: s.exact,
            sink: s.sink,
            state: s.state,
            seed: s.seed,
            stats: Stats::default(),
            verdicts: Vec::new(),
            pending: Vec::new(),
            kept: Vec::new(),
            queries: Vec::new(),
            answers: Vec::new(),
            rotated: false,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            unflushed_since: None,
            rotations_flushed: 0,
            written: 0,
            part_open: false,
        }
    }

    /// Decides and writes what the reader hands on until the input ends (or a
    /// stop), then writes out everything and takes the last snapshot. On a
    /// failure, what the reader still holds is counted, not decided
    /// ([`Run::abandon`]).
    pub(super) fn drive(
        &mut self,
        mut reader: Reader,
        classifier: &Classifier,
        shutdown: &AtomicBool,
        progress: &mut Progress,
        periodic: &mut Periodic,
    ) -> Result<()> {
        let result = self.decide_all(&mut reader, classifier, shutdown, progress, periodic);
        // Stdout closing early (`| head`) is no failure but the reader downstream
        // having had enough: the run ends there, counting what it decided, as it
        // always has (GUIDE.md, Counters).
        if result.as_ref().is_err_and(|e| !e.is_broken_pipe()) {
            self.abandon(&mut reader);
        }
        result
    }

    fn decide_all(
        &mut self,
        reader: &mut Reader,
        classifier: &Classifier,
        shutdown: &AtomicBool,
        progress: &mut Progress,
        periodic: &mut Periodic,
    ) -> Result<()> {
        loop {
            match reader.rx.recv_timeout(self.wait()) {
                Ok(Work::Batch(b)) => {
                    if reader.shared {
                        b.classify_unclaimed(classifier, &mut None);
                    }
                    let items = b.items().ok_or(Bug::Panicked("classifying a batch of records"))?;
                    self.batch(&b.records, items)?
                }
                Ok(Work::Oversized { part, last, cut, .. }) => self.oversized(&part, last, cut)?,
                Ok(Work::Incomplete(bytes)) => self.count_incomplete(bytes),
                Ok(Work::Failed(e)) => return Err(Error::io("reading input", e)),
                Err(RecvTimeoutError::Timeout) => {
                    // Quiet input: the stream may be quiet for hours (`tail -F`),
                    // so output and checkpoints must not wait for the next batch.
                    self.flush(true)?;
                    if shutdown.load(Ordering::Relaxed) && !reader.polled && !reader.is_finished() {
                        // Another reader may block in a read for as long as its
                        // input is quiet: stop without it. (A polled input's reader
                        // ends by itself within its poll interval.)
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    reader.join()?;
                    break;
                }
            }
            self.flush_if_due()?;
            self.maybe_checkpoint()?;
            progress.update(&self.stats, self.written);
            periodic.tick(&self.stats, || self.snapshot())?;
        }
        // Only a reader left blocked above leaves a long record open.
        self.end_open_part()?;
        self.flush(true)?;
        self.checkpoint()?;
        if let Some(e) = &mut self.exact {
            e.flush()?;
        }
        Ok(())
    }

    /// After a failure: stops the reader and counts what it still holds, so that
    /// the counters account for every record read (nothing of it is decided,
    /// written or remembered, so a replay writes it). Whole records and long ones
    /// not begun are `unwritten` (they are in, with no action: see
    /// [`crate::stats::Stats::unwritten`]); the record the reader holds cut
    /// short, and a long record partly out, are `incomplete`.
    fn abandon(&mut self, reader: &mut Reader) {
        reader.halt();
        let open = self.part_open;
        // Best effort: the run failed already (perhaps writing).
        let _ = self.end_open_part();
        // Parts of the long record just ended may follow: only bytes now.
        let mut rest_of_ended = open;
        loop {
            match reader.rx.recv_timeout(IDLE) {
                Ok(Work::Batch(b)) => {
                    self.stats.records_in += b.records.spans.len() as u64;
                    self.stats.bytes_in += b.records.data.len() as u64;
                }
                Ok(Work::Oversized { part, first, last, .. }) => {
                    self.stats.bytes_in += part.len() as u64;
                    rest_of_ended &= !first;
                    if last && !rest_of_ended {
                        self.stats.records_in += 1;
                    }
                    rest_of_ended &= !last;
                }
                Ok(Work::Incomplete(bytes)) => self.count_incomplete(bytes),
                Ok(Work::Failed(_)) => {}
                // A polled reader ends within its poll interval; another may block
                // in a read for as long as its input is quiet.
                Err(RecvTimeoutError::Timeout) if reader.polled => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = reader.join();
                    break;
                }
            }
        }
    }

    /// Counts a record cut short by a stop, left out: `bytes` long.
    fn count_incomplete(&mut self, bytes: usize) {
        self.stats.records_in += 1;
        self.stats.bytes_in += bytes as u64;
        self.stats.incomplete += 1;
    }

    /// How long to wait for the reader: until the output is due (see
    /// [`Run::flush_if_due`]), and at most [`IDLE`] so that a quiet stream is
    /// noticed.
    fn wait(&self) -> Duration {
        match self.unflushed_since {
            Some(t) => self.config.emit.flush_interval.saturating_sub(t.elapsed()).min(IDLE),
            None => IDLE,
        }
    }

    /// Writes out what waits in the sink once it has waited `--flush-interval`
    /// or a window rotated. A tier that must hear of every write
    /// ([`ExactTier::wants_output_written`]) hears after every batch, so that
    /// its leases and journal never wait for the timer.
    fn flush_if_due(&mut self) -> Result<()> {
        if self.exact.as_ref().is_some_and(|e| e.wants_output_written()) {
            return self.flush(false);
        }
        if !self.sink.unflushed() {
            // Out already (a checkpoint flushed).
            self.unflushed_since = None;
            self.written = self.stats.emitted;
            return Ok(());
        }
        let since = *self.unflushed_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.config.emit.flush_interval
            || self.stats.windows_rotated != self.rotations_flushed
        {
            self.flush(false)?;
        }
        Ok(())
    }

    /// Writes out everything buffered and tells the exact tier that every record
    /// decided so far is out (`idle`: and the input is quiet).
    fn flush(&mut self, idle: bool) -> Result<()> {
        self.sink.flush()?;
        self.unflushed_since = None;
        self.rotations_flushed = self.stats.windows_rotated;
        self.written = self.stats.emitted;
        if let Some(e) = &mut self.exact {
            e.output_written(idle);
        }
        Ok(())
    }

    /// Decides, counts and writes one batch of records.
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
        self.place(items)?;
        self.resolve_strings()?;
        self.write(records)
    }

    /// Places each keyed record in its window: integer IDs are decided here,
    /// string IDs wait in `pending`; windows that fall out of retention retire.
    fn place<'i>(&mut self, items: impl Iterator<Item = &'i Item>) -> Result<()> {
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
                Id::Str { bloom, fp, int } => {
                    self.stats.str_ids += 1;
                    self.pending.push(PendingStr { index: i, bloom, fp, int, oldest, own });
                }
                Id::Unkeyed => unreachable!("skipped above"),
            }
        }
        Ok(())
    }

    /// Counts the batch's records by verdict and action, then writes them.
    fn write(&mut self, records: &Records) -> Result<()> {
        // Tagged output is rewritten record by record; the rest is written as runs
        // of the batch's buffer. Every record is counted before any is written, so
        // a write that fails (stdout closed) leaves no record of the batch uncounted.
        let tagging = self.config.emit.tag.is_some();
        let rejected_before = self.stats.rejected;
        self.kept.clear();
        for (i, span) in records.spans.iter().enumerate() {
            if let Action::Write { .. } = self.count(self.verdicts[i]) {
                if !tagging {
                    push_run(&mut self.kept, span.start as usize..span.end as usize);
                }
            }
        }
        if tagging || self.stats.rejected > rejected_before {
            let c = self.config;
            for (i, span) in records.spans.iter().enumerate() {
                match decide(self.verdicts[i], &c.policies, &c.emit) {
                    Action::Write { tag } if tagging => self.sink.write(records.raw(span), tag)?,
                    Action::Reject => self.sink.reject(records.raw(span))?,
                    _ => {}
                }
            }
        }
        self.sink.write_runs(&records.data, &self.kept)
    }

    /// Counts a record by its verdict and by what is done with it.
    #[inline]
    fn count(&mut self, v: Verdict) -> Action {
        let s = &mut self.stats;
        match v {
            Verdict::New => s.new += 1,
            Verdict::Dup => s.duplicates += 1,
            Verdict::Unkeyed => s.unkeyed += 1,
            Verdict::Late => s.late += 1,
            Verdict::Oversized => s.oversized += 1,
            Verdict::Unconfirmed => s.unconfirmed += 1,
        }
        let action = decide(v, &self.config.policies, &self.config.emit);
        match action {
            Action::Write { .. } => s.emitted += 1,
            Action::Suppress => s.suppressed += 1,
            Action::Drop => s.dropped += 1,
            Action::Reject => s.rejected += 1,
        }
        action
    }

    /// Decides the pending string IDs: bloom first (if on), then the exact tier.
    fn resolve_strings(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let maybe = self.ask_bloom();
        if self.exact.is_none() {
            // `--exact none`: trust the bloom.
            for (p, &m) in self.pending.iter().zip(&maybe) {
                self.verdicts[p.index] = if m { Verdict::Dup } else { Verdict::New };
            }
            self.pending.clear();
            return Ok(());
        }
        self.ask_exact(&maybe)
    }

    /// The bloom's answer for each pending ID, inserting it (all *maybe* when
    /// there is no bloom).
    fn ask_bloom(&mut self) -> Vec<bool> {
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
        maybe
    }

    /// Decides the pending IDs by the exact tier, given the bloom's `maybe`s.
    fn ask_exact(&mut self, maybe: &[bool]) -> Result<()> {
        let Some(exact) = &mut self.exact else { return Ok(()) };
        self.queries.clear();
        let bloom = self.local.has_bloom();
        self.queries.extend(self.pending.iter().zip(maybe).map(|(p, &m)| ExactQuery {
            fp: p.fp,
            oldest: p.oldest,
            own: p.own,
            local_new: bloom && !m,
            int: p.int,
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

    /// A part of a record longer than `--max-record-bytes`: passed, dropped or
    /// rejected by `--on-oversized` as it comes, counted (before it is written,
    /// as a batch is) once its `last` part is in. `cut`: a stop ended the record
    /// there; its parts are out already, so it is ended with a newline where they
    /// went ([`Run::end_open_part`]).
    fn oversized(&mut self, part: &[u8], last: bool, cut: bool) -> Result<()> {
        self.stats.bytes_in += part.len() as u64;
        self.part_open = !last;
        if last {
            self.stats.records_in += 1;
            self.since_checkpoint += 1;
            if cut {
                self.stats.incomplete += 1;
            } else {
                self.count(Verdict::Oversized);
            }
        }
        self.pass_part(part)?;
        if cut {
            self.pass_part(b"\n")?;
        }
        Ok(())
    }

    /// Where `--on-oversized` sends a part of a long record.
    fn pass_part(&mut self, part: &[u8]) -> Result<()> {
        match decide(Verdict::Oversized, &self.config.policies, &self.config.emit) {
            Action::Write { .. } => self.sink.write_part(part),
            Action::Reject => self.sink.reject(part),
            Action::Drop | Action::Suppress => Ok(()),
        }
    }

    /// Ends the long record going out, if one is (the run stopping or failing
    /// before its last part came), with a newline where its parts went: the
    /// output (and the reject file) stays whole lines, so the next program in the
    /// pipe, or the next run appending to the same file, never sees it joined to
    /// the line after. Cut short, it counts as `incomplete`, like a record a stop
    /// leaves out; a replay writes it again, whole (long records are never
    /// deduplicated).
    fn end_open_part(&mut self) -> Result<()> {
        if !self.part_open {
            return Ok(());
        }
        self.part_open = false;
        self.stats.records_in += 1;
        self.stats.incomplete += 1;
        self.pass_part(b"\n")
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

    /// Writes out what the sink holds (after an error: the records counted as
    /// emitted before it).
    pub(super) fn sink_flush(&mut self) -> Result<()> {
        self.sink.flush()
    }

    /// The counters, with what the tiers hold at the end.
    pub(super) fn finish(self) -> Stats {
        self.snapshot().0
    }

    /// The counters with what the tiers hold now, and the live windows.
    /// Scans the bloom bits: for the end and for periodic reports, not per batch.
    fn snapshot(&self) -> Snapshot {
        let mut s = self.stats.clone();
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
        (s, self.wclock.live())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::framing::{Frame, FrameReader};
    use crate::pipeline::batch::Batch;
    use crate::pipeline::classify::tests::classifier;

    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);
    impl Write for Out {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Decides one small batch (three lines, one a duplicate).
    fn decide_a_batch(run: &mut Run<'_>) {
        let mut fr = FrameReader::new(&b"a\nb\na\n"[..], 1 << 16, 1 << 10);
        let Some(Frame::Records(rs)) = fr.next_frame().unwrap() else { panic!("records") };
        let b = Batch::new(rs, 0);
        b.classify_unclaimed(&classifier("line", None), &mut None);
        run.batch(&b.records, b.items().unwrap()).unwrap();
    }

    /// A small batch waits in the sink until `--flush-interval` is up; until then
    /// the progress line's count (`written`) does not include it.
    #[test]
    fn kept_records_wait_for_the_flush_interval_and_count_as_written_after() {
        for (interval, out_at_once) in [(Duration::from_secs(3600), false), (Duration::ZERO, true)]
        {
            let mut config = Config::default();
            config.emit.flush_interval = interval;
            let out = Out::default();
            let stages = Stages {
                wclock: WindowClock::new(None, 1),
                local: LocalTier::new(false, 1e-4, Some(1 << 10)),
                exact: Some(Box::new(crate::exact::MemoryTier::new())),
                sink: Sink::new(Box::new(out.clone()), None, None).unwrap(),
                state: None,
                seed: Seed::random(),
            };
            let mut run = Run::new(&config, stages);
            decide_a_batch(&mut run);
            run.flush_if_due().unwrap();
            assert_eq!(run.stats.emitted, 2);
            let (want, written) = if out_at_once { (&b"a\nb\n"[..], 2) } else { (&b""[..], 0) };
            assert_eq!(out.0.lock().unwrap().as_slice(), want, "{interval:?}");
            assert_eq!(run.written, written, "{interval:?}");
            run.flush(true).unwrap();
            assert_eq!(out.0.lock().unwrap().as_slice(), b"a\nb\n");
            assert_eq!(run.written, 2);
        }
    }
}
