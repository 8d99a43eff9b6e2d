//! The exact tier: the authority for every bloom *maybe* (`--exact`).
//!
//! One trait, [`ExactTier`], with a batched check-and-insert: a batch of queries
//! goes in, an answer per query comes out, in order, and a query sees the inserts
//! of the queries before it in the same batch. Batches, not records, are the unit
//! of work, so a remote tier costs one round trip per batch.

mod helper;
pub mod hugebuf;
pub mod memory;
pub mod redis;

use std::io::{self, Read, Write};

use crate::error::Result;
use crate::window::WindowIndex;
pub use memory::{FingerprintSet, MemoryTier};

/// One check-and-insert: is `fp` in any window `oldest ..= own`? Then insert it
/// into `own` either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactQuery {
    /// The keyed 128-bit fingerprint.
    pub fp: u128,
    /// The oldest retained window.
    pub oldest: WindowIndex,
    /// The record's own window.
    pub own: WindowIndex,
    /// The local tier answered *no* (new for sure, as far as this process knows).
    /// One instance may trust it where the tier holds nothing this process did not
    /// write; the memory tier ignores it.
    pub local_new: bool,
    /// An integer ID that a remote tier keeps as itself: `fp` then holds the
    /// mapped integer (`key::int::to_u64`) in its low 64 bits, not a fingerprint.
    /// Only a remote tier is given these (in process, integer IDs live in roaring
    /// bitmaps).
    pub int: bool,
}

impl ExactQuery {
    /// The first window the query looks in: the oldest retained one, or its own
    /// when that is older still.
    pub fn first_window(&self) -> i64 {
        self.oldest.0.min(self.own.0)
    }

    /// The windows the query looks in, oldest first, its own last.
    pub fn windows(&self) -> std::ops::RangeInclusive<i64> {
        self.first_window()..=self.own.0
    }
}

/// The answer to one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExactAnswer {
    /// Not seen before: the record is new.
    New,
    /// Seen in a retained window: the record is a duplicate.
    Seen,
    /// The tier could not answer (e.g. the server is away); `--on-exact-error` decides.
    Failed,
}

/// What an exact tier reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactStats {
    /// Fingerprints held (where known).
    pub fingerprints: u64,
    /// Bytes held (where known).
    pub bytes: u64,
    /// Round trips to a server.
    pub round_trips: u64,
    /// Queries answered.
    pub queries: u64,
    /// Failed batches.
    pub errors: u64,
    /// Whether the tier is failing now (a server away): from the first failed
    /// batch to the next call that works.
    pub outage: bool,
    /// Outages so far.
    pub outages: u64,
}

/// An exact tier.
pub trait ExactTier: Send {
    /// Checks and inserts each query in order, writing one answer per query.
    /// Returns `Err` only when the run must stop.
    fn check_and_insert(
        &mut self,
        queries: &[ExactQuery],
        answers: &mut Vec<ExactAnswer>,
    ) -> Result<()>;

    /// Drops every generation older than `oldest` (remote tiers let them expire).
    fn retire_before(&mut self, oldest: WindowIndex);

    /// Counters for the summary.
    fn stats(&self) -> ExactStats;

    /// The last error seen, for messages.
    fn last_error(&self) -> Option<String> {
        None
    }

    /// Writes what must survive a restart into a snapshot (nothing for remote tiers).
    fn save(&self, _w: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    /// Whether [`ExactTier::save`] writes anything (the in-process tier does).
    fn keeps_state(&self) -> bool {
        false
    }

    /// Whether the tier must hear when the records it answered for are written out
    /// ([`ExactTier::output_written`]): a tier that makes IDs durable only after
    /// their records are out, so that a crash in between re-emits, never loses.
    fn wants_output_written(&self) -> bool {
        false
    }

    /// The records of every answer given so far are written to the output;
    /// `idle`: and the input is quiet for now.
    fn output_written(&mut self, _idle: bool) {}

    /// Moves what was inserted so far to its final place (a remote tier compacts
    /// its journal); called at the end of a run. Failures are counted, not fatal:
    /// what is not moved now is moved by the next run. `Err` only when the run
    /// must stop with an error (the tier found it must not go on).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Reads what [`ExactTier::save`] wrote.
    fn load(&mut self, _r: &mut dyn Read) -> io::Result<()> {
        Ok(())
    }
}
