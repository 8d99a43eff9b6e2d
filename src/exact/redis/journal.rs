//! One instance's fast path: a journal per batch, grouped inserts later.
//!
//! Without `--shared`, where Redis holds nothing this process did not write (the
//! windows it *owns*), the local tier's *no* is authoritative, so most IDs need no
//! question to Redis: each batch's IDs go to a pending set and, once its records
//! are written out, to a journal string; a compaction thread moves them into the
//! buckets with multi-member `SADD`s and a compare-and-set script per (group,
//! window). `REDIS.md` ("One instance: journal and compaction") describes the
//! protocol, the windows that were not empty when first met, and journals left by
//! a process that died.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{mpsc, Arc};

use redis::{Cmd, Value};

use super::compact::{expire_after, now_ms};
use super::layout::{
    bucket_key, container_key, containers_key, dir_key, ident, journal_key, parse_dir,
    push_queries, read_dir, Dir, FLAG_BYTE, JOURNAL_DIR, PREFIX, RANGE,
};
use super::{RedisTier, Sent};
use crate::error::{Error, Result};
use crate::exact::{ExactAnswer, ExactQuery};

/// Compact when the pending set holds this many IDs.
const COMPACT_AT: usize = 1 << 19;
/// Bucket reads sent per round trip when a window is read whole.
const PRELOAD_READS: usize = 4096;
/// Journal format version (the first bytes of every journal).
const JOURNAL_MAGIC: &[u8; 4] = b"LDJ2";

/// The read-only lookup: is each query's member in a bucket of its windows
/// `j - c ..= j`? `KEYS[1]` routes the call (a key of the queries' group);
/// `ARGV[1]` the key prefix, `ARGV[2]` nd, `ARGV[3..]` the nd window indices, then
/// the 9-byte header per query and the members, as for the check-and-insert
/// script. Answers two bitmaps of one bit per query, one after the other: seen in
/// any of its windows; seen in its own window `j` (then it need not be added).
pub(super) const LOOKUP: &str =
    concat!(include_str!("lua/prelude.lua"), include_str!("lua/lookup.lua"));

/// A fast hasher for pending entries: the members are keyed hashes already.
#[derive(Default)]
pub(super) struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(23) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(super) type Mix = BuildHasherDefault<MixHasher>;

/// What one process knows of an ID without asking Redis ([`RedisTier::known`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    /// Redis held it in a window read whole (`own`: in the query's own window).
    Held { own: bool },
    /// Every window is owned or was read whole without it: the local *no* is exact.
    Exact,
    /// Some window is neither: only Redis can tell.
    Unknown,
}

/// The (group, member) pairs Redis held in one window, read whole.
type Held = HashSet<(u8, i64), Mix>;

/// A pending entry: (window, group, member, whether it is an integer ID kept as
/// itself: see `layout::ident`).
pub(super) type Entry = (i64, u8, i64, bool);

/// The fast path's state (one instance only).
#[derive(Default)]
pub(super) struct Fast {
    /// Windows met so far: whether this process owns them.
    owned: HashMap<i64, bool>,
    /// IDs of owned windows not yet compacted into their buckets.
    pub(super) pending: HashSet<Entry, Mix>,
    /// Journal keys written since the last compaction.
    pub(super) journals: Vec<String>,
    /// IDs answered whose records may not be written out yet: neither journaled
    /// nor compacted until they are (a crash then re-emits them, never loses them).
    pub(super) fresh: Vec<Entry>,
    /// IDs whose records are written out, for the next journal.
    unjournaled: Vec<Entry>,
    /// Directories as this process last wrote them (checked by compare and set).
    pub(super) dirs: HashMap<(u8, i64), Dir>,
    /// What Redis held in each window not owned when this process met it, read
    /// whole (`None`: too large, or the read failed). This process is the only
    /// writer, so with it the local tier's *no* is exact there as well.
    held: HashMap<i64, Option<Held>>,
    /// The most IDs a window may hold to be read whole.
    preload_max: u64,
    /// The (window, range)s that may have an integer container: this process
    /// made or met one there, or a call that could have made one failed. Their
    /// IDs always go through the script that checks (`compact.rs`, BITS), so a
    /// range that has a container never gets members in a bucket from here.
    pub(super) containers: HashSet<(i64, u64)>,
}

impl Fast {
    /// Empty, reading whole the windows of at most `preload_max` IDs.
    pub(super) fn new(preload_max: u64) -> Fast {
        Fast { preload_max, ..Fast::default() }
    }

    /// Forgets windows older than `oldest`: their IDs are no longer looked for.
    pub(super) fn retire_before(&mut self, oldest: i64) {
        self.owned.retain(|&w, _| w >= oldest);
        self.pending.retain(|e| e.0 >= oldest);
        self.fresh.retain(|e| e.0 >= oldest);
        self.unjournaled.retain(|e| e.0 >= oldest);
        self.dirs.retain(|k, _| k.1 >= oldest);
        self.held.retain(|&w, _| w >= oldest);
        self.containers.retain(|&(w, _)| w >= oldest);
    }

    /// Whether this process owns window `w`: it met it empty, so no key of the
    /// window holds anything it did not write.
    pub(super) fn owns(&self, w: i64) -> bool {
        self.owned.get(&w) == Some(&true)
    }
}

/// What the compaction thread is given: pending IDs and the journals holding them.
struct Job {
    entries: Vec<Entry>,
    journals: Vec<String>,
    /// The windows the process owns, and the ranges that may have containers
    /// (see [`Fast::containers`]): where integer IDs go.
    owned: Vec<i64>,
    containers: HashSet<(i64, u64)>,
}

/// What it reports: what it could not move (and those IDs' journals), and its
/// counters since the last report.
struct Done {
    left: Vec<Entry>,
    journals: Vec<String>,
    /// The ranges that may have containers, now.
    containers: HashSet<(i64, u64)>,
    round_trips: u64,
    errors: u64,
    last_error: Option<String>,
}

/// The compaction thread, seen from the tier: it compacts one set of pending IDs
/// at a time on its own connection while the stream goes on.
pub(super) struct Worker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Done>,
    /// IDs handed over and not reported done: still answered from here.
    frozen: HashSet<Entry, Mix>,
    busy: bool,
}

/// Encodes journal entries: magic, then runs of one window and kind: `w (i64 LE)
/// | kind (u8: 1 integer IDs, 0 fingerprints) | n (u32 LE) | n × (group u8,
/// member i64 LE)`.
fn encode_journal(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + entries.len() * 9 + 13);
    out.extend_from_slice(JOURNAL_MAGIC);
    let mut i = 0;
    while i < entries.len() {
        let (w, int) = (entries[i].0, entries[i].3);
        let run = entries[i..].iter().take_while(|e| (e.0, e.3) == (w, int)).count();
        out.extend_from_slice(&w.to_le_bytes());
        out.push(u8::from(int));
        out.extend_from_slice(&(run as u32).to_le_bytes());
        for e in &entries[i..i + run] {
            out.push(e.1);
            out.extend_from_slice(&e.2.to_le_bytes());
        }
        i += run;
    }
    out
}

/// Decodes a journal; `None` if it is not one.
pub(super) fn decode_journal(bytes: &[u8]) -> Option<Vec<Entry>> {
    let mut rest = bytes.strip_prefix(JOURNAL_MAGIC)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let w = i64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let int = match rest.get(8)? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let n = u32::from_le_bytes(rest.get(9..13)?.try_into().ok()?) as usize;
        rest = &rest[13..];
        let body = rest.get(..n.checked_mul(9)?)?;
        for e in body.chunks_exact(9) {
            out.push((w, e[0], i64::from_le_bytes(e[1..9].try_into().ok()?), int));
        }
        rest = &rest[n * 9..];
    }
    Some(out)
}

impl RedisTier {
    /// Starts the compaction thread around `worker` (a second connection).
    pub(super) fn start_worker(&mut self, mut worker: RedisTier) -> Result<()> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel::<Done>();
        std::thread::Builder::new()
            .name("logdedup-compact".into())
            .spawn(move || {
                while let Ok(job) = job_rx.recv() {
                    let before = worker.stats;
                    let fast = worker.fast.get_or_insert_with(Fast::default);
                    fast.pending.extend(job.entries);
                    fast.journals = job.journals;
                    fast.owned = job.owned.into_iter().map(|w| (w, true)).collect();
                    fast.containers = job.containers;
                    worker.compact();
                    let fast = worker.fast.as_mut().expect("set above");
                    let report = Done {
                        left: fast.pending.drain().collect(),
                        journals: std::mem::take(&mut fast.journals),
                        containers: std::mem::take(&mut fast.containers),
                        round_trips: worker.stats.round_trips - before.round_trips,
                        errors: worker.stats.errors - before.errors,
                        last_error: worker.last_error.take(),
                    };
                    if done_tx.send(report).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("starting the compaction thread", e))?;
        self.worker = Some(Worker { jobs, done, frozen: HashSet::default(), busy: false });
        Ok(())
    }

    /// Takes the compaction thread's report in, waiting for it if `wait`.
    pub(super) fn poll_worker(&mut self, wait: bool) {
        let Some(w) = &mut self.worker else { return };
        if !w.busy {
            return;
        }
        let report = if wait {
            w.done.recv().map_err(|_| mpsc::TryRecvError::Disconnected)
        } else {
            w.done.try_recv()
        };
        let d = match report {
            Ok(d) => d,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => {
                // The thread is gone: take its IDs back and compact here, from
                // freshly read directories.
                let frozen = std::mem::take(&mut w.frozen);
                self.worker = None;
                if let Some(f) = &mut self.fast {
                    f.pending.extend(frozen);
                    f.dirs.clear();
                }
                return;
            }
        };
        w.busy = false;
        w.frozen.clear();
        if let Some(f) = &mut self.fast {
            f.pending.extend(d.left);
            f.journals.extend(d.journals);
            f.containers.extend(d.containers);
        }
        self.stats.round_trips += d.round_trips;
        self.stats.errors += d.errors;
        if d.last_error.is_some() {
            self.last_error = d.last_error;
        }
    }

    /// Hands the pending IDs to the compaction thread (after the previous set is
    /// done), or compacts them here when there is no thread.
    fn compact_beside(&mut self) {
        self.poll_worker(true);
        let (Some(w), Some(f)) = (&mut self.worker, &mut self.fast) else {
            self.compact();
            return;
        };
        // The next pending set starts at full size (it grows back to it anyway).
        let next = HashSet::with_capacity_and_hasher(f.pending.len(), Mix::default());
        w.frozen = std::mem::replace(&mut f.pending, next);
        // IDs whose records may not be out yet stay here until they are.
        for e in &f.fresh {
            w.frozen.remove(e);
            f.pending.insert(*e);
        }
        let job = Job {
            entries: w.frozen.iter().copied().collect(),
            journals: std::mem::take(&mut f.journals),
            owned: f.owned.iter().filter(|o| *o.1).map(|o| *o.0).collect(),
            containers: f.containers.clone(),
        };
        if let Err(mpsc::SendError(job)) = w.jobs.send(job) {
            let frozen = std::mem::take(&mut w.frozen);
            self.worker = None;
            if let Some(f) = &mut self.fast {
                f.pending.extend(frozen);
                f.journals.extend(job.journals);
            }
            self.compact();
            return;
        }
        w.busy = true;
    }

    /// Compacts what is pending here, after the compaction thread's last set: at
    /// the end of a run. The thread has moved buckets since this side last read
    /// directories, so they are read again.
    pub(super) fn compact_last(&mut self) {
        self.poll_worker(true);
        if let (Some(f), Some(_)) = (&mut self.fast, &self.worker) {
            f.dirs.clear();
        }
        if self.fast.is_some() {
            self.compact();
        }
    }

    /// Forgets pending IDs (here and with the compaction thread) of windows older
    /// than `oldest`.
    pub(super) fn retire_pending(&mut self, oldest: i64) {
        if let Some(f) = &mut self.fast {
            f.retire_before(oldest);
        }
        if let Some(w) = &mut self.worker {
            w.frozen.retain(|e| e.0 >= oldest);
        }
    }

    /// Whether `e` is pending here or with the compaction thread.
    fn is_pending(&self, fast: &Fast, e: &Entry) -> bool {
        fast.pending.contains(e) || self.worker.as_ref().is_some_and(|w| w.frozen.contains(e))
    }

    /// The fast path for one batch (all queries in owned windows); fills `answers`.
    pub(super) fn fast_batch(&mut self, queries: &[ExactQuery], answers: &mut [ExactAnswer]) {
        let mut fast = self.fast.take().expect("one instance");
        let mut lookups: Vec<usize> = Vec::new();
        for (i, q) in queries.iter().enumerate() {
            let ((g, m), int) = (ident(q), q.int);
            let own = (q.own.0, g, m, int);
            // The local tier holds every ID this process met in its windows, so a
            // local *no* is in no pending set either: only a *maybe* looks.
            let older = !q.local_new && {
                if self.is_pending(&fast, &own) {
                    answers[i] = ExactAnswer::Seen;
                    continue;
                }
                (q.first_window()..q.own.0).any(|w| self.is_pending(&fast, &(w, g, m, int)))
            };
            fast.pending.insert(own);
            fast.fresh.push(own);
            answers[i] = if older {
                ExactAnswer::Seen
            } else if q.local_new {
                ExactAnswer::New
            } else {
                lookups.push(i);
                ExactAnswer::Failed
            };
        }
        // The journal of the IDs whose records are out by now rides along.
        let mut sent: Vec<Sent> = Vec::new();
        let name = self.journal_cmds(&mut fast, &mut sent);
        let lookup_from = sent.len();
        let parts = self.lookup_parts(queries, lookups);
        for p in &parts {
            sent.push((Arc::new(lookup_cmd(&self.lookup_sha, queries, p)), Some(LOOKUP)));
        }
        let results = self.exec(sent);
        let journal_ok = results.iter().take(lookup_from).all(|r| r.is_ok());
        let mut error = results.iter().find_map(|r| r.as_ref().err().cloned());
        // IDs Redis already holds in their own window need no journal or compaction
        // (a restart over data written before meets mostly those).
        let held = take_lookups(queries, &parts, &results[lookup_from..], answers, &mut error);
        if !held.is_empty() {
            // Each was added by this batch (a pending ID is not looked up).
            for e in &held {
                fast.pending.remove(e);
            }
            fast.fresh.retain(|e| !held.contains(e));
        }
        // A journal that could not be written leaves the answers as they are (the
        // local tier's are exact here); the IDs stay pending and are inserted by
        // the next compaction, and the failure is counted.
        if let (true, Some(k)) = (journal_ok, name) {
            fast.journals.push(k);
        }
        self.stats.fingerprints +=
            answers.iter().filter(|&&a| a == ExactAnswer::New).count() as u64;
        if let Some(e) = error {
            self.fail(e);
        } else {
            self.recover_ok();
        }
        let due = fast.pending.len() >= COMPACT_AT;
        self.fast = Some(fast);
        if due && self.retry_at.is_none() {
            self.compact_beside();
        }
    }

    /// The lookups of a batch, by call: one per group on a cluster (a group is
    /// one slot), one on a single node.
    fn lookup_parts(&self, queries: &[ExactQuery], lookups: Vec<usize>) -> Vec<Vec<usize>> {
        if lookups.is_empty() {
            Vec::new()
        } else if self.cluster {
            let mut by_group: HashMap<u8, Vec<usize>> = HashMap::new();
            for &i in &lookups {
                by_group.entry(ident(&queries[i]).0).or_default().push(i);
            }
            by_group.into_values().collect()
        } else {
            vec![lookups]
        }
    }

    /// When keys written now for window `w` expire (ms since the epoch; 0: never):
    /// the end of its retention, or the fallback TTL from now when that is past
    /// (old logs replayed), as the scripts do with the server's clock.
    fn expire_at(&self, w: i64) -> i64 {
        expire_after(self.expiry(w), now_ms())
    }

    /// The commands that write the journal of the IDs whose records are out (none
    /// if there are none); returns the journal's key.
    fn journal_cmds(&mut self, fast: &mut Fast, sent: &mut Vec<Sent>) -> Option<String> {
        if fast.unjournaled.is_empty() {
            return None;
        }
        let mut journal = std::mem::take(&mut fast.unjournaled);
        journal.sort_unstable_by_key(|e| (e.0, e.3));
        self.seq += 1;
        let key = journal_key(self.seq, &self.instance);
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(encode_journal(&journal));
        let newest = journal.last().map(|e| e.0).unwrap_or(0);
        let at = self.expire_at(newest);
        if at > 0 {
            set.arg("PXAT").arg(at);
        }
        sent.push((Arc::new(redis::cmd("SADD").arg(JOURNAL_DIR).arg(&key).clone()), None));
        sent.push((Arc::new(set), None));
        Some(key)
    }

    /// The records of the IDs answered so far are written out: their IDs go into
    /// the next journal, written now if the input is `idle`.
    pub(super) fn mark_written(&mut self, idle: bool) {
        let Some(mut fast) = self.fast.take() else { return };
        let fresh = std::mem::take(&mut fast.fresh);
        fast.unjournaled.extend(fresh);
        if idle && !self.backing_off() {
            let mut sent = Vec::new();
            if let Some(k) = self.journal_cmds(&mut fast, &mut sent) {
                let results = self.exec(sent);
                match results.into_iter().find_map(|r| r.err()) {
                    None => fast.journals.push(k),
                    Some(e) => self.fail(e),
                }
            }
        }
        self.fast = Some(fast);
    }

    /// Whether every window of `oldest ..= own` is owned, asking Redis about windows
    /// not met before. A window is owned when none of its directories exists.
    pub(super) fn owns(&mut self, queries: &[ExactQuery]) -> Vec<bool> {
        let mut fast = self.fast.take().expect("one instance");
        let mut unknown: Vec<i64> = Vec::new();
        let mut last = None;
        for q in queries {
            // Consecutive queries mostly share their windows.
            if last == Some((q.oldest, q.own)) {
                continue;
            }
            last = Some((q.oldest, q.own));
            for w in q.windows() {
                if !fast.owned.contains_key(&w) && !unknown.contains(&w) {
                    unknown.push(w);
                }
            }
        }
        if !unknown.is_empty() {
            let mut sent: Vec<Sent> = Vec::new();
            for &w in &unknown {
                if self.cluster {
                    for g in 0..=255u8 {
                        sent.push((
                            Arc::new(redis::cmd("EXISTS").arg(dir_key(g, w)).clone()),
                            None,
                        ));
                    }
                } else {
                    let mut c = redis::cmd("EXISTS");
                    (0..=255u8).for_each(|g| {
                        c.arg(dir_key(g, w));
                    });
                    sent.push((Arc::new(c), None));
                }
            }
            let results = self.exec(sent);
            let per = if self.cluster { 256 } else { 1 };
            for (k, &w) in unknown.iter().enumerate() {
                let rs = &results[k * per..(k + 1) * per];
                // An unanswered window is not owned: every ID in it is looked up.
                let owned = rs.iter().all(|r| matches!(r, Ok(Value::Int(0))));
                fast.owned.insert(w, owned);
                if !owned {
                    let held = self.read_window(&mut fast, w);
                    fast.held.insert(w, held);
                }
            }
        }
        let mut last = None;
        let out = queries
            .iter()
            .map(|q| match last {
                Some((o, w, v)) if (o, w) == (q.oldest, q.own) => v,
                _ => {
                    let v = q.windows().all(|w| fast.owned[&w]);
                    last = Some((q.oldest, q.own, v));
                    v
                }
            })
            .collect();
        self.fast = Some(fast);
        out
    }

    /// Reads every member Redis holds in window `w` (its directories, then every
    /// bucket), or `None` if it holds more than `preload_max` IDs or a read fails.
    /// The directories read are kept for the next compaction.
    fn read_window(&mut self, fast: &mut Fast, w: i64) -> Option<Held> {
        if fast.preload_max == 0 {
            return None;
        }
        let sent = (0..=255u8).map(|g| read_dir(g, w)).collect();
        let mut dirs = Vec::with_capacity(256);
        for (g, r) in (0..=255u8).zip(self.exec(sent)) {
            dirs.push((g, parse_dir(r.ok()?)?));
        }
        if dirs.iter().map(|d| d.1.n).sum::<u64>() > fast.preload_max {
            return None;
        }
        let reads: Vec<(u8, u64)> = dirs
            .iter()
            .filter(|d| d.1.n > 0)
            .flat_map(|&(g, d)| (0..d.buckets()).map(move |b| (g, b)))
            .collect();
        let mut held = Held::default();
        for part in reads.chunks(PRELOAD_READS) {
            let sent = part
                .iter()
                .map(|&(g, b)| {
                    (Arc::new(redis::cmd("SMEMBERS").arg(bucket_key(g, w, b)).clone()), None)
                })
                .collect();
            for (&(g, _), r) in part.iter().zip(self.exec(sent)) {
                let members: Vec<i64> = redis::from_redis_value(r.ok()?).ok()?;
                held.extend(members.into_iter().map(|m| (g, m)));
            }
        }
        let bits = self.read_containers(w)?;
        if (held.len() + bits.len()) as u64 > fast.preload_max {
            return None;
        }
        held.extend(bits);
        for (g, d) in dirs {
            fast.dirs.entry((g, w)).or_insert(d);
        }
        Some(held)
    }

    /// The integer IDs in the containers of window `w`, as (group, member);
    /// `None` if a read fails.
    fn read_containers(&mut self, w: i64) -> Option<Vec<(u8, i64)>> {
        let sent = (0..=255u8)
            .map(|g| (Arc::new(redis::cmd("SMEMBERS").arg(containers_key(g, w)).clone()), None))
            .collect();
        let mut ranges: Vec<(u8, u64)> = Vec::new();
        for (g, r) in (0..=255u8).zip(self.exec(sent)) {
            let hs: Vec<u64> = redis::from_redis_value(r.ok()?).ok()?;
            ranges.extend(hs.into_iter().map(|h| (g, h)));
        }
        let mut out = Vec::new();
        for part in ranges.chunks(PRELOAD_READS) {
            let sent = part
                .iter()
                .map(|&(g, h)| {
                    (Arc::new(redis::cmd("GET").arg(container_key(g, w, h)).clone()), None)
                })
                .collect();
            for (&(g, h), r) in part.iter().zip(self.exec(sent)) {
                let bytes: Option<Vec<u8>> = redis::from_redis_value(r.ok()?).ok()?;
                out.extend(container_members(h, &bytes.unwrap_or_default()).map(|m| (g, m)));
            }
        }
        Some(out)
    }

    /// What this process knows of `q`'s ID from the windows of its range, without
    /// asking Redis (windows it owns, windows it read whole).
    pub(super) fn known(&self, q: &ExactQuery) -> Known {
        let Some(fast) = &self.fast else { return Known::Unknown };
        let id = ident(q);
        let mut out = Known::Exact;
        // The own window first, so that `own` says whether it holds the ID.
        for w in q.windows().rev() {
            match (fast.owned.get(&w), fast.held.get(&w)) {
                (Some(true), _) => {}
                (Some(false), Some(Some(h))) => {
                    if h.contains(&id) {
                        return Known::Held { own: w == q.own.0 };
                    }
                }
                _ => out = Known::Unknown,
            }
        }
        out
    }

    /// Adds `q`'s ID to the pending set of its own window (inserted into Redis by
    /// the next compaction), when Redis cannot be asked now.
    pub(super) fn pending_insert(&mut self, q: &ExactQuery) {
        if let Some(fast) = &mut self.fast {
            let (g, m) = ident(q);
            let e = (q.own.0, g, m, q.int);
            if fast.pending.insert(e) {
                fast.fresh.push(e);
            }
        }
    }

    /// Whether an ID of `q` is pending in one of its windows (so it was seen).
    pub(super) fn pending_seen(&self, q: &ExactQuery) -> bool {
        let Some(fast) = &self.fast else { return false };
        let (g, m) = ident(q);
        q.windows().any(|w| self.is_pending(fast, &(w, g, m, q.int)))
    }

    /// Compacts journals left by processes that stopped before compacting them.
    pub(super) fn recover_journals(&mut self) -> Result<(), String> {
        let names: Vec<String> = match self
            .exec(vec![(Arc::new(redis::cmd("SMEMBERS").arg(JOURNAL_DIR).clone()), None)])
            .pop()
        {
            Some(Ok(v)) => redis::from_redis_value(v).map_err(|e| e.to_string())?,
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        };
        if names.is_empty() {
            return Ok(());
        }
        let sent =
            names.iter().map(|k| (Arc::new(redis::cmd("GET").arg(k).clone()), None)).collect();
        let shared = self.fast.is_none();
        let mut fast = self.fast.take().unwrap_or_default();
        for (k, r) in names.iter().zip(self.exec(sent)) {
            match r {
                Ok(Value::Nil) => {}
                Ok(Value::BulkString(b)) => {
                    let entries = decode_journal(&b)
                        .ok_or_else(|| format!("{k} is not a logdedup journal"))?;
                    fast.pending.extend(entries);
                }
                Ok(other) => return Err(format!("{k}: unexpected {other:?}")),
                Err(e) => return Err(e),
            }
            fast.journals.push(k.clone());
        }
        self.fast = Some(fast);
        let done = self.compact();
        if shared {
            // `--shared` keeps no fast-path state.
            self.fast = None;
        }
        if done {
            Ok(())
        } else {
            Err(self.last_error.clone().unwrap_or_else(|| "compaction failed".into()))
        }
    }
}

/// The integer IDs whose bits are set in `bytes`, the container of range `h`
/// (its flag byte after [`RANGE`] bits is not an ID).
pub(super) fn container_members(h: u64, bytes: &[u8]) -> impl Iterator<Item = i64> + '_ {
    let bits = &bytes[..bytes.len().min(FLAG_BYTE as usize)];
    bits.iter().enumerate().flat_map(move |(i, &b)| {
        (0..8u64)
            .filter(move |k| b & (0x80 >> k) != 0)
            .map(move |k| crate::key::int::from_u64(h * RANGE + i as u64 * 8 + k))
    })
}

/// Takes the lookups' answers (`results`, one per part of `parts`) into
/// `answers`; returns the IDs Redis already holds in their own window. A reply
/// that is not a lookup's sets `error` if it is not set yet.
fn take_lookups(
    queries: &[ExactQuery],
    parts: &[Vec<usize>],
    results: &[Result<Value, String>],
    answers: &mut [ExactAnswer],
    error: &mut Option<String>,
) -> HashSet<Entry> {
    let mut held: HashSet<Entry> = HashSet::new();
    for (p, r) in parts.iter().zip(results) {
        match r {
            Ok(Value::BulkString(bits)) if bits.len() == 2 * p.len().div_ceil(8) => {
                let (seen, own) = bits.split_at(p.len().div_ceil(8));
                for (n, &i) in p.iter().enumerate() {
                    let bit = |b: &[u8]| b[n / 8] >> (n % 8) & 1 == 1;
                    answers[i] = if bit(seen) { ExactAnswer::Seen } else { ExactAnswer::New };
                    if bit(own) {
                        let q = &queries[i];
                        let (g, m) = ident(q);
                        held.insert((q.own.0, g, m, q.int));
                    }
                }
            }
            Ok(other) => {
                error.get_or_insert(format!("the lookup answered {other:?}"));
            }
            Err(_) => {}
        }
    }
    held
}

/// The lookup call for queries `idx` (their windows' descriptors and header).
fn lookup_cmd(sha: &str, queries: &[ExactQuery], idx: &[usize]) -> Cmd {
    let mut windows: Vec<i64> = Vec::new();
    for &i in idx {
        let q = &queries[i];
        for w in q.windows() {
            windows.push(w);
        }
    }
    windows.sort_unstable();
    windows.dedup();
    let pos: HashMap<i64, usize> = windows.iter().enumerate().map(|(i, &w)| (w, i + 1)).collect();
    // The one key routes the call on a cluster (every key it reads has its group's tag).
    let first = &queries[idx[0]];
    let mut c = redis::cmd("EVALSHA");
    c.arg(sha).arg(1).arg(dir_key(ident(first).0, first.own.0)).arg(PREFIX).arg(windows.len());
    for w in &windows {
        c.arg(*w);
    }
    push_queries(&mut c, queries, idx.iter().copied(), &pos, false);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_roundtrip() {
        let e = vec![
            (3, 0, -1, false),
            (3, 255, i64::MAX, false),
            (3, 7, 42, true),
            (7, 9, i64::MIN, false),
        ];
        let bytes = encode_journal(&e);
        // Three runs: (3, fingerprints), (3, integers), (7, fingerprints).
        assert_eq!(bytes.len(), 4 + 3 * 13 + 4 * 9);
        assert_eq!(decode_journal(&bytes), Some(e));
        assert_eq!(decode_journal(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_journal(b"LDJ1"), None);
        assert_eq!(decode_journal(b"LDJ2"), Some(vec![]));
        let mut bad_kind = bytes.clone();
        bad_kind[12] = 2;
        assert_eq!(decode_journal(&bad_kind), None);
    }
}
