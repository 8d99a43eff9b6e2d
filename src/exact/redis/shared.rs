//! `--shared` (`REDIS.md`, "`--shared`: one script per call"): every ID is asked of the
//! check-and-insert script, which leases the IDs it answers new to this client
//! until their records are written; answers are kept in a ring of [`RING`] so a
//! resent call is answered as it was the first time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, FromRedisValue, Value};

use super::layout::{ident, lease_key, push_queries, ring_key, PREFIX, SPLIT_LOAD};
use super::{RedisTier, Sent};
use crate::exact::{ExactAnswer, ExactQuery};

/// Answers kept per client for resent calls. A call is resent only before the next
/// one is made, so a handful would do; 64 also covers a batch cut into many calls.
pub const RING: u64 = 64;
/// At most this many queries per script call: a call blocks Redis while it runs
/// (~1–2 µs per query), so a huge batch is cut into calls sent together.
const MAX_CALL_QUERIES: usize = 8192;
/// The script addresses windows and retention with 16-bit indices.
const MAX_WINDOWS_PER_CALL: usize = u16::MAX as usize;

/// `--shared`: pauses before asking again about IDs under another client's lease.
const WAIT_MIN: Duration = Duration::from_millis(5);
const WAIT_MAX: Duration = Duration::from_millis(200);

/// The check-and-insert script (`--shared`). Arguments (all strings; see the module
/// docs):
///
/// ```text
/// KEYS[1]   this client's replay ring
/// ARGV[1]   call sequence number        ARGV[2] ring slot (seq mod RING)
/// ARGV[3]   ring TTL (ms)               ARGV[4] key prefix
/// ARGV[5]   split load                  ARGV[6] this client's instance id
/// ARGV[7]   lease (ms)                  ARGV[8] nd: number of window descriptors
/// ARGV[9..] nd × (window index, expiry ms or 0 for never, fallback TTL ms)
/// ARGV[9+3nd]      header: 9 bytes per query: group, window j (u16 BE, 1-based
///                  descriptor of the own window), c (u16 BE: older windows to
///                  check, descriptors j-c .. j-1), address (u32 BE, see [`address`])
/// ARGV[10+3nd ..]  one member per query: the fingerprint's low 64 bits, signed decimal
/// ```
///
/// The answer is two bits per query, four to a byte, first query lowest:
/// [`NEW`] (inserted, and leased to this client), [`SEEN`], [`WAIT`] (held under
/// another client's live lease: ask again later), [`NEW_TAKEN`] (new here after a
/// lease of a client that did not end it lapsed; this client now holds that
/// lease, in whichever window of the query's range held it).
///
/// Lua numbers are doubles, so members stay strings end to end (Redis parses them
/// into the intset). The bucket address comes in the header (cheaper than parsing
/// in Lua); a split recomputes it from the stored member's last nine decimal digits,
/// which is exact in a double and equals [`address`].
///
/// What costs here is Lua, not Redis: each `redis.call` is ~0.5–1 µs and formatting
/// a number into a string (`%.14g`) about as much, hence the bucket key cache
/// (`lua/prelude.lua`).
pub(super) const SCRIPT: &str =
    concat!(include_str!("lua/prelude.lua"), include_str!("lua/shared.lua"));

/// Answers of [`SCRIPT`], two bits per query.
const NEW: u8 = 0;
const SEEN: u8 = 1;
const WAIT: u8 = 2;
const NEW_TAKEN: u8 = 3;

/// One script call: part of a batch (one group's part on a cluster).
struct Call {
    /// Positions of its queries in the batch, in order.
    idx: Vec<u32>,
    /// The `EVALSHA` command; the `EVAL` form is built from it on `NOSCRIPT`.
    cmd: Arc<Cmd>,
}

impl RedisTier {
    /// The per-query script for `queries` (`--shared`). Queries held under
    /// another client's lease are asked again, in order, after a pause that
    /// doubles from [`WAIT_MIN`] to [`WAIT_MAX`], until the holder has written its
    /// record (a duplicate here) or its lease lapsed (new here).
    pub(super) fn slow(&mut self, queries: &[ExactQuery], answers: &mut [ExactAnswer]) {
        let (mut ask, mut at): (Vec<ExactQuery>, Vec<usize>) =
            (queries.to_vec(), (0..queries.len()).collect());
        let mut pause = WAIT_MIN;
        loop {
            let calls = self.plan(&ask);
            let mut got = vec![ExactAnswer::Failed; ask.len()];
            let mut waiting = Vec::new();
            let error = self.run(&ask, calls, &mut got, &mut waiting);
            for (k, a) in got.into_iter().enumerate() {
                answers[at[k]] = a;
            }
            if let Some(e) = error {
                // The waiting ones stay Failed with the rest of what failed.
                self.fail(e);
                return;
            }
            self.recover_ok();
            if waiting.is_empty() {
                return;
            }
            waiting.sort_unstable();
            ask = waiting.iter().map(|&k| ask[k]).collect();
            at = waiting.iter().map(|&k| at[k]).collect();
            std::thread::sleep(pause);
            pause = (pause * 2).min(WAIT_MAX);
        }
    }

    /// Cuts a batch into script calls: one per group on a cluster (a group is one
    /// slot), one for everything on a single node; either cut further when a call
    /// would hold too many queries or windows.
    fn plan(&mut self, queries: &[ExactQuery]) -> Vec<Call> {
        let mut calls = Vec::new();
        if self.cluster {
            let mut by_group = std::mem::take(&mut self.by_group);
            for (i, q) in queries.iter().enumerate() {
                by_group[usize::from(ident(q).0)].push(i as u32);
            }
            for (g, idx) in by_group.iter_mut().enumerate() {
                if !idx.is_empty() {
                    let ring = ring_key(Some(g), &self.instance);
                    self.plan_part(queries, idx, &ring, &mut calls);
                    idx.clear();
                }
            }
            self.by_group = by_group;
        } else {
            let idx: Vec<u32> = (0..queries.len() as u32).collect();
            let ring = ring_key(None, &self.instance);
            self.plan_part(queries, &idx, &ring, &mut calls);
        }
        calls
    }

    fn plan_part(&mut self, queries: &[ExactQuery], idx: &[u32], ring: &str, out: &mut Vec<Call>) {
        let mut start = 0;
        while start < idx.len() {
            // Take queries while the call stays small: distinct (oldest, own) pairs
            // are few (one or two per window rotation), and the windows a call
            // needs are their union.
            let mut pairs: Vec<(i64, i64)> = Vec::new();
            let mut span = 0usize;
            let mut end = start;
            while end < idx.len() && end - start < MAX_CALL_QUERIES {
                let q = &queries[idx[end] as usize];
                let pair = (q.first_window(), q.own.0);
                if !pairs.contains(&pair) {
                    let len = (pair.1 - pair.0) as usize + 1;
                    if span + len > MAX_WINDOWS_PER_CALL && end > start {
                        break;
                    }
                    span += len;
                    pairs.push(pair);
                }
                end += 1;
            }
            out.push(self.call(queries, &idx[start..end], &pairs, ring));
            start = end;
        }
    }

    fn call(
        &mut self,
        queries: &[ExactQuery],
        idx: &[u32],
        pairs: &[(i64, i64)],
        ring: &str,
    ) -> Call {
        let mut windows: Vec<i64> = pairs.iter().flat_map(|&(o, w)| o..=w).collect();
        windows.sort_unstable();
        windows.dedup();
        let pos: HashMap<i64, usize> =
            windows.iter().enumerate().map(|(i, &w)| (w, i + 1)).collect();
        self.seq += 1;
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.sha.as_str())
            .arg(1)
            .arg(ring)
            .arg(self.seq)
            .arg(self.seq % RING)
            .arg(self.ring_ttl_ms)
            .arg(PREFIX)
            .arg(SPLIT_LOAD)
            .arg(self.instance.as_str())
            .arg(self.lease_ms)
            .arg(windows.len());
        for &w in &windows {
            let (exp, fallback) = self.expiry(w);
            cmd.arg(w).arg(exp).arg(fallback);
        }
        push_queries(&mut cmd, queries, idx.iter().map(|&i| i as usize), &pos, true);
        Call { idx: idx.to_vec(), cmd: Arc::new(cmd) }
    }

    /// Runs the calls (concurrently, through [`RedisTier::exec`], which resends
    /// what failed on the way once), together with the release of the leases
    /// whose records are written; fills `answers`, adds the positions of queries
    /// held under another client's lease to `waiting` (their answers stay
    /// [`ExactAnswer::Failed`]) and returns the first error of a call that never
    /// succeeded.
    fn run(
        &mut self,
        queries: &[ExactQuery],
        calls: Vec<Call>,
        answers: &mut [ExactAnswer],
        waiting: &mut Vec<usize>,
    ) -> Option<String> {
        // The releases go first: on one server they then run before the calls, so
        // a lone client never finds its own last leases (which would cost an HGET
        // per duplicate), and others stop waiting for those records sooner.
        let mut sent: Vec<Sent> = self.release_cmds().into_iter().map(|c| (c, None)).collect();
        let released = sent.len();
        sent.extend(calls.iter().map(|c| (c.cmd.clone(), Some(SCRIPT))));
        let mut results = self.exec(sent);
        let answered = results.split_off(released);
        self.check_released(results);
        let mut error = None;
        for (call, result) in calls.iter().zip(answered) {
            let bits =
                result.and_then(|v| Vec::<u8>::from_redis_value(v).map_err(|e| e.to_string()));
            let e = match bits {
                Ok(bits) if bits.len() == call.idx.len().div_ceil(4) => {
                    for (n, &i) in call.idx.iter().enumerate() {
                        let i = i as usize;
                        answers[i] = match bits[n / 4] >> (2 * (n % 4)) & 3 {
                            SEEN => ExactAnswer::Seen,
                            WAIT => {
                                waiting.push(i);
                                ExactAnswer::Failed
                            }
                            code @ (NEW | NEW_TAKEN) => {
                                self.stats.fingerprints += 1;
                                self.leased.push(Lease::of(&queries[i], code == NEW_TAKEN));
                                ExactAnswer::New
                            }
                            _ => unreachable!("two bits"),
                        };
                    }
                    continue;
                }
                Ok(bits) => format!(
                    "the script answered {} bytes for {} queries",
                    bits.len(),
                    call.idx.len()
                ),
                Err(e) => e,
            };
            error.get_or_insert(e);
        }
        error
    }

    /// The commands that end the leases in [`RedisTier::released`], which it
    /// empties: one `HDEL` per (group, window). Unconditional: a lease that lapsed
    /// and was taken over by another client is deleted too, which is safe, because
    /// this client has written the record (the taker's is a duplicate).
    pub(super) fn release_cmds(&mut self) -> Vec<Arc<Cmd>> {
        let released = std::mem::take(&mut self.released);
        let mut keyed: Vec<(u8, i64, i64)> = released
            .iter()
            .flat_map(|l| l.windows().map(move |w| (l.group, w, l.member)))
            .collect();
        keyed.sort_unstable();
        keyed.dedup();
        let mut cmds = Vec::new();
        for run in keyed.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            for part in run.chunks(MAX_CALL_QUERIES) {
                let mut cmd = redis::cmd("HDEL");
                cmd.arg(lease_key(part[0].0, part[0].1));
                for &(_, _, m) in part {
                    cmd.arg(m);
                }
                cmds.push(Arc::new(cmd));
            }
        }
        cmds
    }

    /// Counts a failure among the results of [`RedisTier::release_cmds`]. Not a
    /// reason to back off: the leases lapse by themselves, and at worst another
    /// instance that meets one of these IDs within `--shared-lease` waits for it.
    pub(super) fn check_released(&mut self, results: Vec<Result<Value, String>>) {
        if let Some(e) = results.into_iter().find_map(|r| r.err()) {
            self.stats.errors += 1;
            self.set_error(format!("Redis at {}: ending leases: {e}", self.shown));
        }
    }
}

/// An ID this client found new under `--shared`, leased to it in Redis until its
/// record is written.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lease {
    group: u8,
    member: i64,
    first: i64,
    own: i64,
    /// Taken over from a lapsed lease, in some window of `first ..= own`; else the
    /// lease is in `own`.
    taken: bool,
}

impl Lease {
    fn of(q: &ExactQuery, taken: bool) -> Lease {
        let (group, member) = ident(q);
        Lease { group, member, first: q.first_window(), own: q.own.0, taken }
    }

    /// The windows that may hold this client's lease on it.
    fn windows(&self) -> std::ops::RangeInclusive<i64> {
        if self.taken {
            self.first..=self.own
        } else {
            self.own..=self.own
        }
    }
}
