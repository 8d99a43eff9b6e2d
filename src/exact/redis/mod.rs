//! The Redis exact tier (`--exact redis://…`, `rediss://…`, `redis+unix://…`,
//! `redis+cluster://…`): the shared, restart-proof authority for every *maybe*.
//!
//! The key layout (a stable format), the one-instance journal path, the
//! `--shared` script and its leases, lost replies and faults are described once,
//! in `REDIS.md` at the root of the repository; change it with the code. In
//! short: a fingerprint's top 8 bits pick one of [`GROUPS`] groups (one hash tag,
//! so one cluster slot and one script call each), and its low 64 bits are the
//! member, kept in intset buckets that split by linear hashing at [`SPLIT_LOAD`]
//! members per bucket and expire with their window.
//!
//! One file per concern: `conn.rs` the URL and the connection, `layout.rs` the
//! stable key layout (matching `lua/prelude.lua`), `meta.rs` the metadata key,
//! `journal.rs` one instance's journal path, `compact.rs` its compaction,
//! `shared.rs` `--shared` and its leases, `outage.rs` what is said of an outage.
//! This file holds the [`RedisTier`] both modes share: connecting, sending
//! commands, failures and backoff. The client runs on a current-thread tokio
//! runtime owned by the tier; the pipeline is synchronous and each batch is one
//! `block_on`.

mod compact;
mod conn;
mod journal;
mod layout;
mod meta;
mod outage;
mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Cmd, Value};

use super::{ExactAnswer, ExactQuery, ExactStats, ExactTier};
use crate::config::{RedisConfig, WindowConfig};
use crate::error::{ConfigError, Error, ExactError, NoAnswer, Result, StateError};
use crate::hash::Seed;
use crate::window::WindowIndex;
pub use conn::redact;
use conn::{resendable, send_value, Conn, Target};
pub use layout::{GROUPS, PREFIX, SPLIT_LOAD};
pub use meta::META_KEY;
use meta::{agree_meta, parse_meta, LAYOUT};
pub use shared::RING;
use shared::{Lease, SCRIPT};

/// A command and, for `EVALSHA`, the script's text (sent with `EVAL` when the
/// server does not know it yet).
type Sent = (Arc<Cmd>, Option<&'static str>);

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
        bits_sha: redis::Script::new(compact::BITS).get_hash().to_string(),
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
    bits_sha: String,
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

    /// Runs commands concurrently (pipelined on one connection), resending those
    /// that failed on the way once; one result per command, in order.
    ///
    /// The tier that speaks for the run sends the metadata's re-assertion first
    /// in every round trip (one short script; on one server it runs before the
    /// rest): a server that lost it gets it back before this client's writes,
    /// and another deployment's value stops the run at the next batch
    /// ([`RedisTier::foreign_meta`]).
    fn exec(&mut self, mut sent: Vec<Sent>) -> Vec<Result<Value, String>> {
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
    fn exec_raw(&mut self, sent: Vec<Sent>) -> Vec<Result<Value, String>> {
        let mut out: Vec<Option<Result<Value, String>>> = (0..sent.len()).map(|_| None).collect();
        let conn = self.conn.clone().expect("connected");
        let mut todo: Vec<usize> = (0..sent.len()).collect();
        for attempt in 0..ATTEMPTS {
            if todo.is_empty() {
                break;
            }
            self.stats.round_trips += 1;
            let timeout = self.timeout;
            let batch: Vec<(usize, Sent)> = todo.iter().map(|&k| (k, sent[k].clone())).collect();
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
