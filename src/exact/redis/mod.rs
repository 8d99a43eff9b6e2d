//! The Redis exact tier (`--exact redis://…`, `rediss://…`, `redis+unix://…`,
//! `redis+cluster://…`): the shared, restart-proof authority for every *maybe*.
//!
//! The key layout (a stable format), the one-instance journal path, the
//! `--shared` script and its leases, lost replies and faults are described once,
//! in `REDIS.md` at the root of the repository; change it with the code. In
//! short: a fingerprint's top 8 bits pick one of [`GROUPS`] groups (one hash tag,
//! so one cluster slot and one script call each), and its low 64 bits are the
//! member, kept in intset buckets that split by linear hashing at [`SPLIT_LOAD`]
//! members per bucket and expire with their window. Without `--shared` every
//! window takes the path in `journal.rs`; this file holds the connection, the
//! layout, and the `--shared` script, whose answers each client keeps in a ring of
//! [`RING`] so a resent call is answered as it was the first time. The client runs
//! on a current-thread tokio runtime owned by the tier; the pipeline is
//! synchronous and each batch is one `block_on`.

mod compact;
mod conn;
mod journal;
mod meta;
mod outage;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Cmd, FromRedisValue, Value};

use super::{ExactAnswer, ExactQuery, ExactStats, ExactTier};
use crate::config::{RedisConfig, WindowConfig};
use crate::error::{ConfigError, Error, ExactError, NoAnswer, Result, StateError};
use crate::hash::Seed;
use crate::window::WindowIndex;
pub use conn::redact;
use conn::{resendable, send_value, Conn, Target};
pub use meta::META_KEY;
use meta::{agree_meta, parse_meta, LAYOUT};

/// The key prefix (namespace) of every key this tier writes.
pub const PREFIX: &str = "logdedup";
/// Number of hash-tag groups: the fingerprint's top 8 bits. On a cluster this is
/// how many slots the data spreads over, and the most calls one batch makes.
pub const GROUPS: usize = 256;
/// Mean members per bucket at which the next bucket splits (see the module docs).
pub const SPLIT_LOAD: u32 = 200;
/// Answers kept per client for resent calls. A call is resent only before the next
/// one is made, so a handful would do; 64 also covers a batch cut into many calls.
pub const RING: u64 = 64;
/// At most this many queries per script call: a call blocks Redis while it runs
/// (~1–2 µs per query), so a huge batch is cut into calls sent together.
const MAX_CALL_QUERIES: usize = 8192;
/// The script addresses windows and retention with 16-bit indices.
const MAX_WINDOWS_PER_CALL: usize = u16::MAX as usize;
/// The largest `--retain` the layout supports.
const MAX_RETAIN: u32 = 4096;
/// Keys outlive their window by this much (clock skew, delivery lag).
const SLACK_MS: i64 = 60_000;
/// Attempts per call: the first, and one resend (answered from the ring if the
/// first one ran and only its reply was lost).
const ATTEMPTS: usize = 2;
/// Backoff after a failed batch: first and longest.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
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
const SCRIPT: &str = concat!(include_str!("lua/prelude.lua"), include_str!("lua/shared.lua"));

/// Answers of [`SCRIPT`], two bits per query.
const NEW: u8 = 0;
const SEEN: u8 = 1;
const WAIT: u8 = 2;
const NEW_TAKEN: u8 = 3;

/// Connects to Redis (or a Redis Cluster), agrees on the deployment seed, and
/// returns the tier and the seed every instance uses.
///
/// `window` gives the window width and retention, from which bucket expiry is
/// computed. If Redis holds no seed yet, ours (`local`, the state directory's, or
/// a fresh one) is stored with `SET NX` and read back, so concurrent first starts
/// agree. A state directory whose seed differs from Redis's is an error: its
/// fingerprints would not match what Redis holds.
pub fn connect(
    cfg: &RedisConfig,
    window: &WindowConfig,
    local: Option<Seed>,
) -> Result<(Box<dyn ExactTier>, Seed)> {
    let target = Target::parse(&cfg.url)?;
    if window.retain > MAX_RETAIN {
        return Err(ConfigError::new(
            "--retain",
            format!("at most {MAX_RETAIN} with a Redis exact tier (got {})", window.retain),
        )
        .into());
    }
    // rustls needs a process-wide crypto provider before the first TLS connect;
    // another part of the process may have installed one already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut tier = open(cfg, window, &target)?;
    let shown = tier.shown.clone();
    let secrets = tier.secrets.clone();
    let unreachable = |source: Box<dyn std::error::Error + Send + Sync>| ExactError::Failed {
        tier: shown.clone(),
        what: "cannot connect",
        source,
    };
    let deadline = tier.timeout.saturating_mul(3).max(Duration::from_secs(1));
    let mut conn = tier.conn.clone().expect("connected");
    let meta = tier
        .rt
        .block_on(async { tokio::time::timeout(deadline, agree_meta(&mut conn, local)).await })
        .map_err(|_| unreachable(NoAnswer(deadline).into()))?
        // The client's message may quote the URL: only its scrubbed text is kept.
        .map_err(|e| unreachable(conn::connect_failure(&e, &secrets).into()))?;
    let seed = parse_meta(&meta).ok_or_else(|| ExactError::Layout {
        tier: shown.clone(),
        key: META_KEY,
        found: meta.clone(),
        expected: format!("{LAYOUT} groups={GROUPS} load={SPLIT_LOAD}"),
    })?;
    if let Some(l) = local {
        if l != seed {
            return Err(StateError::SeedMismatch { tier: shown, key: META_KEY }.into());
        }
    }
    // From now on every round trip re-asserts the metadata (see `lua/meta.lua`).
    tier.meta = meta;
    // A journal left by a process that stopped early holds IDs that are in no
    // bucket yet: move them before answering anything.
    tier.recover_journals().map_err(|e| ExactError::Failed {
        tier: shown.clone(),
        what: "moving the journal of an earlier run",
        source: e.into(),
    })?;
    tier.foreign_meta()?;
    tier.stats = ExactStats::default();
    if !cfg.shared {
        // Compaction runs beside the stream on its own connection.
        let worker = open(cfg, window, &target)?;
        tier.start_worker(worker)?;
    }
    Ok((Box::new(tier), seed))
}

/// Opens one connection and the tier around it (no metadata, no recovery).
fn open(cfg: &RedisConfig, window: &WindowConfig, target: &Target) -> Result<RedisTier> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the Redis client runtime", e))?;
    let shown = redact(&cfg.url);
    let secrets = conn::secrets(&cfg.url);
    let timeout = cfg.timeout;
    // Connecting may retry inside the client; never wait for more than a few timeouts.
    let deadline = timeout.saturating_mul(3).max(Duration::from_secs(1));
    let conn = rt
        .block_on(async { tokio::time::timeout(deadline, Conn::open(target, timeout)).await })
        .map_err(|_| ExactError::Failed {
            tier: shown.clone(),
            what: "cannot connect",
            source: NoAnswer(deadline).into(),
        })?
        .map_err(|e| ExactError::Failed {
            tier: shown.clone(),
            what: "cannot connect",
            source: conn::connect_failure(&e, &secrets).into(),
        })?;
    let mut id = [0u8; 8];
    getrandom::getrandom(&mut id).expect("the operating system's random source failed");
    let instance = format!("{:016x}", u64::from_le_bytes(id));
    Ok(RedisTier {
        conn: Some(conn),
        rt,
        cluster: matches!(target, Target::Cluster(_)),
        shown,
        secrets,
        timeout,
        width_ns: window.width_ns,
        retain: i64::from(window.retain.max(1)),
        instance,
        ring_ttl_ms: (timeout.as_millis() as i64).saturating_mul(20).max(60_000),
        seq: 0,
        sha: Arc::new(redis::Script::new(SCRIPT).get_hash().to_string()),
        lookup_sha: redis::Script::new(journal::LOOKUP).get_hash().to_string(),
        apply_sha: redis::Script::new(compact::APPLY).get_hash().to_string(),
        lease_ms: (cfg.lease.as_millis() as i64).clamp(1, i64::MAX / 4),
        leased: Vec::new(),
        released: Vec::new(),
        stats: ExactStats::default(),
        last_error: None,
        backoff: BACKOFF_MIN,
        retry_at: None,
        by_group: vec![Vec::new(); GROUPS],
        fast: (!cfg.shared).then(|| journal::Fast::new(cfg.preload_max)),
        worker: None,
        meta: String::new(),
        meta_sha: redis::Script::new(meta::ASSERT).get_hash().to_string(),
        foreign: None,
        outage: outage::Outage::default(),
    })
}

/// One script call: part of a batch (one group's part on a cluster).
struct Call {
    /// Positions of its queries in the batch, in order.
    idx: Vec<u32>,
    /// The `EVALSHA` command; the `EVAL` form is built from it on `NOSCRIPT`.
    cmd: Arc<Cmd>,
}

/// The Redis exact tier. See the module docs.
pub struct RedisTier {
    /// `Some` until dropped (it must be dropped inside the runtime's context).
    conn: Option<Conn>,
    rt: tokio::runtime::Runtime,
    cluster: bool,
    /// The URL without its secrets, for messages.
    shown: String,
    /// The secrets hidden from `shown`, scrubbed from every message.
    secrets: Vec<String>,
    timeout: Duration,
    width_ns: Option<i64>,
    retain: i64,
    /// This client's id in replay-ring keys.
    instance: String,
    ring_ttl_ms: i64,
    /// The last call's sequence number.
    seq: u64,
    sha: Arc<String>,
    /// The journal scripts' hashes.
    lookup_sha: String,
    apply_sha: String,
    /// `--shared-lease` in ms.
    lease_ms: i64,
    /// `--shared`: leases on IDs answered new whose records are not written yet.
    leased: Vec<Lease>,
    /// `--shared`: leases whose records are written, to end with the next call.
    released: Vec<Lease>,
    stats: ExactStats,
    last_error: Option<String>,
    /// The next backoff after a failed batch.
    backoff: Duration,
    /// While set and in the future, batches fail at once.
    retry_at: Option<Instant>,
    /// Scratch: query positions per group (cluster).
    by_group: Vec<Vec<u32>>,
    /// One instance's journal fast path (`None` with `--shared`).
    fast: Option<journal::Fast>,
    /// The thread that compacts beside the stream (one instance).
    worker: Option<journal::Worker>,
    /// The metadata agreed on at start, re-asserted with every round trip
    /// (empty: not re-asserted, on the compaction thread's connection).
    meta: String,
    meta_sha: String,
    /// What the metadata key held instead of `meta`: the run must stop.
    foreign: Option<String>,
    /// The outage under way, if any, and what was said of it.
    outage: outage::Outage,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("url", &self.shown)
            .field("cluster", &self.cluster)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Drop for RedisTier {
    fn drop(&mut self) {
        // The worker ends when its queue closes; a compaction it is running is
        // not waited for (its journals stay and the next process moves them).
        self.worker.take();
        // The client's handles may touch the runtime when dropped.
        let _guard = self.rt.enter();
        self.conn.take();
    }
}

impl RedisTier {
    /// Expiry of window `w`'s keys: `(w + K + 1)·W + slack` in ms since the epoch,
    /// and the fallback TTL when that is already past; `(0, 0)` without windows.
    fn expiry(&self, w: i64) -> (i64, i64) {
        let Some(width) = self.width_ns else { return (0, 0) };
        let end_ms = (i128::from(w) + i128::from(self.retain) + 1) * i128::from(width) / 1_000_000;
        let ttl_ms = i128::from(self.retain + 1) * i128::from(width) / 1_000_000;
        let clamp = |v: i128| v.clamp(1, i128::from(i64::MAX / 4)) as i64;
        (clamp(end_ms + i128::from(SLACK_MS)), clamp(ttl_ms + i128::from(SLACK_MS)))
    }

    /// Cuts a batch into script calls: one per group on a cluster (a group is one
    /// slot), one for everything on a single node; either cut further when a call
    /// would hold too many queries or windows.
    fn plan(&mut self, queries: &[ExactQuery]) -> Vec<Call> {
        let mut calls = Vec::new();
        if self.cluster {
            let mut by_group = std::mem::take(&mut self.by_group);
            for (i, q) in queries.iter().enumerate() {
                by_group[group(q.fp)].push(i as u32);
            }
            for (g, idx) in by_group.iter_mut().enumerate() {
                if !idx.is_empty() {
                    let ring = format!("{PREFIX}:{{g{g}}}:r:{}", self.instance);
                    self.plan_part(queries, idx, &ring, &mut calls);
                    idx.clear();
                }
            }
            self.by_group = by_group;
        } else {
            let idx: Vec<u32> = (0..queries.len() as u32).collect();
            let ring = format!("{PREFIX}:r:{}", self.instance);
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
        push_queries(&mut cmd, queries, idx.iter().map(|&i| i as usize), &pos);
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
        let mut sent: Vec<journal::Sent> =
            self.release_cmds().into_iter().map(|c| (c, None)).collect();
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
    fn release_cmds(&mut self) -> Vec<Arc<Cmd>> {
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
                cmd.arg(format!("{PREFIX}:{{g{}}}:w{}:p", part[0].0, part[0].1));
                for &(_, _, m) in part {
                    cmd.arg(m);
                }
                cmds.push(Arc::new(cmd));
            }
        }
        cmds
    }
}

/// An ID this client found new under `--shared`, leased to it in Redis until its
/// record is written.
#[derive(Debug, Clone, Copy)]
struct Lease {
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
        Lease {
            group: group(q.fp) as u8,
            member: member(q.fp),
            first: q.first_window(),
            own: q.own.0,
            taken,
        }
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

/// Appends the scripts' per-query arguments: the header (9 bytes per query:
/// group, own window's 1-based descriptor `pos` (u16 BE), older windows to check
/// (u16 BE), bucket address (u32 BE)), then one member per query.
fn push_queries(
    cmd: &mut Cmd,
    queries: &[ExactQuery],
    idx: impl Iterator<Item = usize> + Clone,
    pos: &HashMap<i64, usize>,
) {
    let mut hdr = Vec::with_capacity(idx.size_hint().0 * 9);
    for i in idx.clone() {
        let q = &queries[i];
        let j = pos[&q.own.0] as u16;
        let c = (q.own.0 - q.first_window()) as u16;
        hdr.push(group(q.fp) as u8);
        hdr.extend_from_slice(&j.to_be_bytes());
        hdr.extend_from_slice(&c.to_be_bytes());
        hdr.extend_from_slice(&address(member(q.fp)).to_be_bytes());
    }
    cmd.arg(hdr);
    for i in idx {
        cmd.arg(member(queries[i].fp));
    }
}

/// A member's bucket address: its last nine decimal digits, `|m| mod 10^9`. Any
/// fixed function of the member would do; this one is exact both here and in Lua
/// (whose numbers are doubles), which must agree on it when a bucket splits. It is
/// uniform to within 10^9 / 2^64, and `mod 2^L` of it stays uniform to within
/// 2^L / 10^9 (L is ~7 at 10M IDs per window, ~14 at a billion).
#[inline]
fn address(m: i64) -> u32 {
    (m.unsigned_abs() % 1_000_000_000) as u32
}

/// The hash-tag group of a fingerprint: its top 8 bits.
#[inline]
fn group(fp: u128) -> usize {
    (fp >> 120) as usize
}

/// The stored member: the fingerprint's low 64 bits as a signed integer, so that
/// Redis keeps it in an intset (it parses canonical decimal `i64` text as integers).
#[inline]
fn member(fp: u128) -> i64 {
    fp as u64 as i64
}

impl RedisTier {
    /// Counts a failure and starts (or lengthens) the backoff.
    fn fail(&mut self, e: impl std::fmt::Display) {
        self.stats.errors += 1;
        self.set_error(format!("Redis at {}: {e}", self.shown));
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Records `error` (secrets scrubbed) as the last one, and says on stderr
    /// that an outage started or goes on, when a line is due (see `outage.rs`).
    fn set_error(&mut self, error: String) {
        let error = conn::scrub(&error, &self.secrets);
        if self.announces() {
            if let Some(line) = self.outage.failed(Instant::now(), &error) {
                eprintln!("logdedup: warning: {line}");
            }
        }
        self.last_error = Some(error);
    }

    /// Whether this tier speaks for the run (the compaction thread's does not:
    /// what it meets, the stream's own calls meet too).
    fn announces(&self) -> bool {
        !self.meta.is_empty()
    }

    /// The error that stops the run when another deployment's metadata was
    /// found (see [`RedisTier::exec`]).
    fn foreign_meta(&mut self) -> Result<()> {
        match self.foreign.take() {
            None => Ok(()),
            Some(found) => Err(StateError::MetaReplaced {
                tier: self.shown.clone(),
                key: META_KEY,
                found,
                ours: self.meta.clone(),
            }
            .into()),
        }
    }

    /// Counts a failure among the results of [`RedisTier::release_cmds`]. Not a
    /// reason to back off: the leases lapse by themselves, and at worst another
    /// instance that meets one of these IDs within `--shared-lease` waits for it.
    fn check_released(&mut self, results: Vec<Result<Value, String>>) {
        if let Some(e) = results.into_iter().find_map(|r| r.err()) {
            self.stats.errors += 1;
            self.set_error(format!("Redis at {}: ending leases: {e}", self.shown));
        }
    }

    /// Ends the backoff after a call that worked.
    fn recover_ok(&mut self) {
        self.retry_at = None;
        self.backoff = BACKOFF_MIN;
        if let Some(line) = self.outage.ok(Instant::now()) {
            eprintln!("logdedup: Redis at {}: {line}", self.shown);
        }
    }

    /// Whether a recent failure still holds batches back.
    fn backing_off(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    /// The per-query script for `queries` (`--shared`). Queries held under
    /// another client's lease are asked again, in order, after a pause that
    /// doubles from [`WAIT_MIN`] to [`WAIT_MAX`], until the holder has written its
    /// record (a duplicate here) or its lease lapsed (new here).
    fn slow(&mut self, queries: &[ExactQuery], answers: &mut [ExactAnswer]) {
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

    /// Runs commands concurrently (pipelined on one connection), resending those
    /// that failed on the way once; one result per command, in order.
    ///
    /// The tier that speaks for the run sends the metadata's re-assertion first
    /// in every round trip (one short script; on one server it runs before the
    /// rest): a server that lost it gets it back before this client's writes,
    /// and another deployment's value stops the run at the next batch
    /// ([`RedisTier::foreign_meta`]).
    fn exec(&mut self, mut sent: Vec<journal::Sent>) -> Vec<Result<Value, String>> {
        if sent.is_empty() || !self.announces() {
            return self.exec_raw(sent);
        }
        sent.insert(0, (meta::assert_cmd(&self.meta_sha, &self.meta), Some(meta::ASSERT)));
        let mut results = self.exec_raw(sent);
        match results.remove(0).map(|v| meta::parse_asserted(&v)) {
            Ok(Some(meta::Asserted::Restored)) => eprintln!(
                "logdedup: warning: Redis at {}: the key {META_KEY} was gone (a restart \
                 without persistence, or a flush); stored it again, so later runs keep this \
                 run's seed. The IDs the server lost are emitted again by a later run",
                self.shown
            ),
            Ok(Some(meta::Asserted::Foreign(v))) => self.foreign = Some(v),
            // Anything else fails the other calls too, which count it.
            _ => {}
        }
        results
    }

    /// [`RedisTier::exec`] without the metadata.
    fn exec_raw(&mut self, sent: Vec<journal::Sent>) -> Vec<Result<Value, String>> {
        let mut out: Vec<Option<Result<Value, String>>> = (0..sent.len()).map(|_| None).collect();
        let conn = self.conn.clone().expect("connected");
        let mut todo: Vec<usize> = (0..sent.len()).collect();
        for attempt in 0..ATTEMPTS {
            if todo.is_empty() {
                break;
            }
            self.stats.round_trips += 1;
            let timeout = self.timeout;
            let batch: Vec<(usize, journal::Sent)> =
                todo.iter().map(|&k| (k, sent[k].clone())).collect();
            let results = self.rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for (k, (cmd, script)) in batch {
                    let mut conn = conn.clone();
                    set.spawn(async move { (k, send_value(&mut conn, &cmd, script).await) });
                }
                let mut results = Vec::new();
                let deadline = tokio::time::Instant::now() + timeout;
                while let Ok(Some(done)) = tokio::time::timeout_at(deadline, set.join_next()).await
                {
                    if let Ok(r) = done {
                        results.push(r);
                    }
                }
                results
            });
            let last = attempt + 1 == ATTEMPTS;
            for (k, r) in results {
                out[k] = Some(match r {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        if !last && resendable(&e) {
                            continue;
                        }
                        Err(e.to_string())
                    }
                });
            }
            todo.retain(|&k| out[k].is_none());
            if last {
                for &k in &todo {
                    out[k] = Some(Err(format!("no answer within {timeout:?}")));
                }
            }
        }
        out.into_iter().map(|o| o.unwrap_or_else(|| Err("not sent".into()))).collect()
    }
}

impl ExactTier for RedisTier {
    fn check_and_insert(
        &mut self,
        queries: &[ExactQuery],
        answers: &mut Vec<ExactAnswer>,
    ) -> Result<()> {
        // Another deployment's metadata met by an idle call stops the run before
        // this batch, and one met by this batch's calls before its records go out.
        self.foreign_meta()?;
        self.answer(queries, answers);
        self.foreign_meta()
    }

    fn retire_before(&mut self, oldest: WindowIndex) {
        // Keys expire on their own at the end of their window's retention (see the
        // module docs); deleting them here could race other instances still
        // reading those windows.
        self.retire_pending(oldest.0);
    }

    fn wants_output_written(&self) -> bool {
        true
    }

    fn output_written(&mut self, idle: bool) {
        if self.fast.is_some() {
            self.mark_written(idle);
            return;
        }
        // `--shared`: the leases of written records end with the next call, or
        // now when the input is quiet.
        self.released.append(&mut self.leased);
        if idle && !self.released.is_empty() && !self.backing_off() {
            let sent = self.release_cmds().into_iter().map(|c| (c, None)).collect();
            let results = self.exec(sent);
            self.check_released(results);
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.compact_last();
        self.foreign_meta()
    }

    fn stats(&self) -> ExactStats {
        ExactStats { outage: self.outage.active(), outages: self.outage.count, ..self.stats }
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.clone()
    }
}

impl RedisTier {
    /// [`ExactTier::check_and_insert`] but for the metadata's check.
    fn answer(&mut self, queries: &[ExactQuery], answers: &mut Vec<ExactAnswer>) {
        answers.clear();
        answers.resize(queries.len(), ExactAnswer::Failed);
        if queries.is_empty() {
            return;
        }
        self.stats.queries += queries.len() as u64;
        self.poll_worker(false);
        if self.backing_off() {
            // The server failed recently: do not make the stream wait for it
            // again before the backoff is over. One instance still knows what it
            // has pending.
            self.stats.errors += 1;
            self.still_failing();
            if self.fast.is_some() {
                for (q, a) in queries.iter().zip(answers.iter_mut()) {
                    if self.pending_seen(q) {
                        *a = ExactAnswer::Seen;
                    } else {
                        // Where the local tier's *no* is exact, it is new.
                        if q.local_new && self.known(q) == journal::Known::Exact {
                            *a = ExactAnswer::New;
                        }
                        self.pending_insert(q);
                    }
                }
            }
            return;
        }
        if self.fast.is_none() {
            self.slow(queries, answers);
        } else {
            self.answer_one_instance(queries, answers);
        }
    }

    /// [`RedisTier::answer`] for one instance (not `--shared`).
    fn answer_one_instance(&mut self, queries: &[ExactQuery], answers: &mut [ExactAnswer]) {
        // One instance: in a window it owns, a local *no* is new at once. A window
        // that held data when first met (a restart, a second run) may hold IDs the
        // local tier never saw, so there every ID is looked up. Either way new IDs
        // are journaled only once their records are out (kill -9 loses nothing).
        // Runs are taken in order, so each sees the ones before.
        let owned = self.owns(queries);
        let mut start = 0;
        while start < queries.len() {
            let kind = owned[start];
            let end =
                owned[start..].iter().position(|&o| o != kind).map_or(owned.len(), |p| start + p);
            let (qs, ans) = (&queries[start..end], &mut answers[start..end]);
            if kind {
                self.fast_batch(qs, ans);
            } else {
                // What Redis held when the window was met answers for itself (an ID
                // held only in an older window still joins its own); the rest
                // trusts the local *no* where that is exact, else looks up.
                let (mut ask, mut at) = (Vec::with_capacity(qs.len()), Vec::new());
                for (k, q) in qs.iter().enumerate() {
                    match self.known(q) {
                        journal::Known::Held { own } => {
                            if !own {
                                self.pending_insert(q);
                            }
                            ans[k] = ExactAnswer::Seen;
                        }
                        known => {
                            let local_new = q.local_new && known == journal::Known::Exact;
                            ask.push(ExactQuery { local_new, ..*q });
                            at.push(k);
                        }
                    }
                }
                let mut got = vec![ExactAnswer::Failed; ask.len()];
                self.fast_batch(&ask, &mut got);
                for (k, a) in at.into_iter().zip(got) {
                    ans[k] = a;
                }
            }
            start = end;
        }
    }

    /// Counts a batch failed at once while backing off in the outage under way.
    fn still_failing(&mut self) {
        let error = self.last_error.clone().unwrap_or_default();
        if self.announces() {
            if let Some(line) = self.outage.failed(Instant::now(), &error) {
                eprintln!("logdedup: warning: {line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_is_the_last_nine_digits() {
        for m in [0i64, 5, -5, 999_999_999, 1_000_000_000, -1_234_567_890, i64::MIN, i64::MAX] {
            let text = m.to_string();
            let tail = &text[text.len().saturating_sub(9)..];
            let want: i64 = tail.trim_start_matches('-').parse().unwrap();
            assert_eq!(i64::from(address(m)), want, "{m}");
        }
    }

    #[test]
    fn fingerprint_split() {
        let fp = (0xABu128 << 120) | 0xFFFF_FFFF_FFFF_FFFF;
        assert_eq!(group(fp), 0xAB);
        assert_eq!(member(fp), -1);
    }
}
