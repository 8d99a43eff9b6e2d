//! One instance's compaction: moves pending IDs into their buckets and deletes
//! the journals that held them (`REDIS.md`, "One instance: journal and
//! compaction").
//!
//! A round reads the directories it does not know, *plans* each (group, window)
//! ([`plan_round`], [`plan_moves`]: pure functions of what was read, tested
//! below), then applies the plan: plain multi-member `SADD`s into the buckets that
//! do not split, reads of those that do, and one compare-and-set script call per
//! (group, window) that moves their members and sets the new directory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use redis::Value;

use super::journal::{Entry, Fast, Mix};
use super::layout::{
    address, bucket_key, dir_key, parse_dir, range_group, range_of, read_dir, window_base, Dir,
    FLAG_BYTE, JOURNAL_DIR, PROMOTE_AT, SPLIT_LOAD,
};
use super::{RedisTier, Sent};

/// A (group, window)'s first compaction makes buckets for this many times its
/// members: a window that stops there has buckets a quarter full (~50 members,
/// still ~10.6 B per ID), one that grows moves about half as many members.
const PRESIZE: u64 = 4;
/// Attempts per (group, window) when another writer changed its directory.
const COMPACT_TRIES: usize = 4;

/// Applies one (group, window)'s compaction if its directory is unchanged.
/// `KEYS[1]` is the directory (it routes the call on a cluster).
///
/// ```text
/// ARGV[1] directory key   ARGV[2..4] L, s, n as read ("0" when absent)
/// ARGV[5..6] new L, s     ARGV[7] expiry ms (0: never)  ARGV[8] fallback TTL ms
/// ARGV[9] 1 if a bucket is left without a key (sets x)
/// ARGV[10] members the client already added with plain SADDs (buckets that do
///          not split), counted in n whatever happens
/// ARGV[11] number of ops, then per op: kind ('r' SREM, 'a' SADD, 'n' SADD into a
///          new bucket), key, count, and count members
/// ```
///
/// Returns the new member count, or -1 if the directory changed since it was read.
pub(super) const APPLY: &str = include_str!("lua/apply.lua");

/// Members to move into their buckets, per (group, window).
type Todo = HashMap<(u8, i64), Vec<i64>>;
/// Sets integer IDs' bits in the containers of one (group, window) (see
/// `lua/bits.lua`). `KEYS[1]` is the directory (it routes the call on a cluster).
///
/// ```text
/// ARGV[1] the (group, window)'s key base  ARGV[2] expiry ms (0: never)
/// ARGV[3] fallback TTL ms                 ARGV[4] number of ranges, then per
///         range: h, 1 to make its container if absent, and either 'b' and the
///         range's bits as bytes, or 'o', a count, and that many bit offsets
/// ```
///
/// Returns the ranges it set nothing for (no container, none to be made).
pub(super) const BITS: &str =
    concat!(include_str!("lua/prelude.lua"), include_str!("lua/bits.lua"));

/// From this many IDs on, a range's bits go to the script as its whole bitmap
/// (8 KiB, one `BITOP OR` or `SETRANGE` on the server), not as offsets (a
/// `BITFIELD` operation each). Measured on 2M sequential IDs with gaps: offsets
/// cost Redis ~0.65 µs of CPU per ID, a whole bitmap ~1 µs per range.
const BITMAP_FROM: usize = 256;

/// One range's part of a [`BITS`] call: the range, whether to make its container
/// if absent, its IDs.
type RangeIds = (u64, bool, Vec<i64>);

/// The [`BITS`] call for (group `g`, window `w`) and its `ranges`.
fn bits_cmd(sha: &str, g: u8, w: i64, expiry: (i64, i64), ranges: &[RangeIds]) -> Sent {
    let mut c = redis::cmd("EVALSHA");
    c.arg(sha).arg(1).arg(dir_key(g, w)).arg(window_base(g, w)).arg(expiry.0).arg(expiry.1);
    c.arg(ranges.len());
    for (h, promote, ms) in ranges {
        c.arg(*h).arg(u8::from(*promote));
        if ms.len() >= BITMAP_FROM {
            let mut bits = vec![0u8; FLAG_BYTE as usize];
            for &m in ms {
                let off = range_of(m).1 as usize;
                bits[off / 8] |= 0x80 >> (off % 8);
            }
            c.arg("b").arg(bits);
        } else {
            c.arg("o").arg(ms.len());
            for &m in ms {
                c.arg(range_of(m).1);
            }
        }
    }
    (Arc::new(c), Some(BITS))
}

/// One (group, window)'s compaction, as planned from its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    key: (u8, i64),
    /// The directory as read, and after the additions.
    before: Dir,
    after: Dir,
    /// The old buckets that split: read, then rewritten by the script.
    reads: Vec<u64>,
    /// Members landing in buckets that do not split, by bucket: these go in with
    /// plain multi-member `SADD`s (no Lua in between), because such a bucket holds
    /// the same members under the old directory and the new one.
    plain: Vec<(u64, Vec<i64>)>,
    /// The other members, added by the script.
    scripted: Vec<i64>,
    /// The window's expiry and fallback TTL (ms, see [`RedisTier::expiry`]), and
    /// when the plain `SADD`s' keys expire (0: never).
    expiry: (i64, i64),
    plain_expire_at: i64,
    /// Every member of the todo, kept for another round if this one fails.
    members: Vec<i64>,
}

/// What the script does to one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    /// `SREM` the members that move out of a bucket that splits.
    Remove,
    /// `SADD` into a bucket that existed before.
    Add,
    /// `SADD` into a bucket the split creates.
    New,
}

impl OpKind {
    fn arg(self) -> &'static str {
        match self {
            OpKind::Remove => "r",
            OpKind::Add => "a",
            OpKind::New => "n",
        }
    }
}

/// The script's work for one (group, window), from [`plan_moves`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Moves {
    ops: Vec<(OpKind, u64, Vec<i64>)>,
    /// Whether a bucket is left without a key (then it has no expiry either).
    emptied: bool,
}

/// When keys written now for a window of `expiry` = (end of retention, fallback
/// TTL) expire, `now` being ms since the epoch: the end of its retention, or the
/// fallback TTL from now when that is past (old logs replayed), as the scripts do
/// with the server's clock; 0 (never) without windows.
pub(super) fn expire_after((at, fallback): (i64, i64), now: i64) -> i64 {
    if at == 0 {
        0
    } else if at > now {
        at
    } else {
        now.saturating_add(fallback)
    }
}

/// Milliseconds since the epoch by this machine's clock.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Plans a round: one [`Plan`] per (group, window) of `todo` whose directory is
/// in `dirs`, in key order. `expiry` gives a window's expiry and fallback TTL.
/// Those whose directory could not be read are returned unplanned, to be tried
/// again: dropped, their IDs would leave the pending set without reaching a
/// bucket, and a later run would not know them.
fn plan_round(
    todo: Todo,
    dirs: &HashMap<(u8, i64), Dir>,
    expiry: impl Fn(i64) -> (i64, i64),
    now: i64,
) -> (Vec<Plan>, Todo) {
    let mut plans = Vec::with_capacity(todo.len());
    let mut unread = Todo::new();
    for (key, members) in todo {
        match dirs.get(&key) {
            Some(&before) => plans.push(plan_group(key, before, members, expiry(key.1), now)),
            None => {
                unread.insert(key, members);
            }
        }
    }
    plans.sort_unstable_by_key(|p| p.key);
    (plans, unread)
}

/// Plans one (group, window): the directory after adding `members`, the old
/// buckets that split, and which members go in by plain `SADD`s.
fn plan_group(
    key: (u8, i64),
    before: Dir,
    members: Vec<i64>,
    expiry: (i64, i64),
    now: i64,
) -> Plan {
    let mut after = before;
    let mut n = before.n + members.len() as u64;
    if before.n == 0 {
        // Splitting an empty directory moves nothing: make room for the window
        // to grow a few times before members have to move.
        n *= PRESIZE;
    }
    let mut reads = Vec::new();
    while n > u64::from(SPLIT_LOAD) * after.buckets() {
        let b = after.split();
        if b < before.buckets() && !reads.contains(&b) {
            reads.push(b);
        }
    }
    let mut plain: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    let mut scripted = Vec::new();
    for &m in &members {
        let b = after.bucket(address(m));
        if b < before.buckets() && !reads.contains(&b) {
            plain.entry(b).or_default().push(m);
        } else {
            scripted.push(m);
        }
    }
    Plan {
        key,
        before,
        after,
        reads,
        plain: plain.into_iter().collect(),
        scripted,
        expiry,
        plain_expire_at: expire_after(expiry, now),
        members,
    }
}

/// Plans the script's work for `plan`, given `old`, the members of its buckets
/// that split as read: what moves out of each, then what goes into each bucket
/// (moved and scripted members), in bucket order.
fn plan_moves(plan: &Plan, old: Vec<(u64, Vec<i64>)>) -> Moves {
    let (before, after) = (plan.before, plan.after);
    let mut adds: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    let mut ops = Vec::new();
    let mut emptied = false;
    for (b, ms) in old {
        let (stay, moved): (Vec<i64>, Vec<i64>) =
            ms.into_iter().partition(|&m| after.bucket(address(m)) == b);
        if !moved.is_empty() {
            for &m in &moved {
                adds.entry(after.bucket(address(m))).or_default().push(m);
            }
            ops.push((OpKind::Remove, b, moved));
        }
        if stay.is_empty() {
            emptied = true;
        }
    }
    for &m in &plan.scripted {
        adds.entry(after.bucket(address(m))).or_default().push(m);
    }
    // A new bucket nothing lands in has no key (and so no expiry).
    emptied |= (before.buckets()..after.buckets()).any(|b| !adds.contains_key(&b));
    for (b, ms) in adds {
        let kind = if b >= before.buckets() { OpKind::New } else { OpKind::Add };
        ops.push((kind, b, ms));
    }
    Moves { ops, emptied }
}

/// Where one plan's commands are in a round trip: its reads, then its plain
/// `SADD`s (and their `PEXPIREAT`s).
type Span = (Range<usize>, Range<usize>);

/// The reads of the buckets that split and the plain `SADD`s (each followed by
/// its `PEXPIREAT` when keys expire) of every plan, and where each plan's
/// commands are among them: its reads, then its plain commands.
fn split_cmds(plans: &[Plan]) -> (Vec<Sent>, Vec<Span>) {
    let mut sent: Vec<Sent> = Vec::new();
    let mut spans = Vec::with_capacity(plans.len());
    for p in plans {
        let (g, w) = p.key;
        let reads = sent.len();
        for &b in &p.reads {
            sent.push((Arc::new(redis::cmd("SMEMBERS").arg(bucket_key(g, w, b)).clone()), None));
        }
        let plain = sent.len();
        for (b, ms) in &p.plain {
            let key = bucket_key(g, w, *b);
            sent.push((Arc::new(redis::cmd("SADD").arg(&key).arg(ms).clone()), None));
            if p.plain_expire_at > 0 {
                // The key may be new (an empty bucket has none).
                let c = redis::cmd("PEXPIREAT").arg(&key).arg(p.plain_expire_at).clone();
                sent.push((Arc::new(c), None));
            }
        }
        spans.push((reads..plain, plain..sent.len()));
    }
    (sent, spans)
}

/// The script call that applies `moves` to `plan`'s (group, window), counting
/// `plain_added` members the plain `SADD`s added.
fn apply_cmd(sha: &str, plan: &Plan, moves: &Moves, plain_added: i64) -> Sent {
    let (g, w) = plan.key;
    let (before, after) = (plan.before, plan.after);
    let mut c = redis::cmd("EVALSHA");
    c.arg(sha)
        .arg(1)
        .arg(dir_key(g, w))
        .arg(dir_key(g, w))
        .arg(before.l)
        .arg(before.s)
        .arg(before.n)
        .arg(after.l)
        .arg(after.s)
        .arg(plan.expiry.0)
        .arg(plan.expiry.1)
        .arg(u8::from(moves.emptied))
        .arg(plain_added)
        .arg(moves.ops.len());
    for (kind, b, ms) in &moves.ops {
        c.arg(kind.arg()).arg(bucket_key(g, w, *b)).arg(ms.len()).arg(ms);
    }
    (Arc::new(c), Some(APPLY))
}

impl RedisTier {
    /// Moves every pending ID into its bucket; deletes the journals when all are in.
    /// Returns whether everything was moved.
    pub(super) fn compact(&mut self) -> bool {
        let Some(mut fast) = self.fast.take() else { return true };
        // IDs whose records may not be out yet are kept for later.
        let fresh: HashSet<Entry, Mix> = fast.fresh.iter().copied().collect();
        let mut groups: Todo = HashMap::new();
        let mut ints: Vec<(i64, u64, i64)> = Vec::new();
        for &e in &fast.pending {
            let (w, g, m, int) = e;
            if fresh.contains(&e) {
                continue;
            }
            if int {
                ints.push((w, range_of(m).0, m));
            } else {
                groups.entry((g, w)).or_default().push(m);
            }
        }
        // Integer IDs first: those no container takes join the buckets' todo.
        let bits_left = self.compact_ints(&mut fast, ints, &mut groups);
        let mut left = groups;
        for _ in 0..COMPACT_TRIES {
            if left.is_empty() {
                break;
            }
            left = self.compact_round(&mut fast, left);
        }
        let done = left.is_empty() && bits_left.is_empty();
        if done {
            fast.pending.retain(|e| fresh.contains(e));
            let names = std::mem::take(&mut fast.journals);
            self.delete_journals(&names);
        } else {
            // Keep what was not moved; it is tried again at the next compaction.
            fast.pending.retain(|e| {
                left.contains_key(&(e.1, e.0))
                    || (e.3 && bits_left.contains(&(e.1, e.0)))
                    || fresh.contains(e)
            });
        }
        self.fast = Some(fast);
        done
    }

    /// Sets the bits of the integer IDs `ints` whose ranges have a container or
    /// get one now ([`PROMOTE_AT`] IDs at once), one [`BITS`] call per (group,
    /// window); the IDs of the other ranges go into `todo`, for the buckets.
    /// Where this process is the only writer (a window it owns) and no container
    /// of a range may exist ([`Fast::containers`]), that range's few IDs go to
    /// the buckets without asking. Returns the (group, window)s whose call failed.
    fn compact_ints(
        &mut self,
        fast: &mut Fast,
        mut ints: Vec<(i64, u64, i64)>,
        todo: &mut Todo,
    ) -> HashSet<(u8, i64)> {
        // Sorted into runs of one (window, range): sparse IDs are runs of one,
        // and a map of a vector per range cost as much as the rest of the run
        // (measured: 2M random 64-bit IDs, 1.9x the client CPU).
        ints.sort_unstable();
        let mut calls: BTreeMap<(u8, i64), Vec<RangeIds>> = BTreeMap::new();
        for run in ints.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (w, h) = (run[0].0, run[0].1);
            let g = range_group(h);
            let promote = run.len() >= PROMOTE_AT;
            let ms = run.iter().map(|e| e.2);
            if !promote && !fast.containers.contains(&(w, h)) && fast.owns(w) {
                todo.entry((g, w)).or_default().extend(ms);
            } else {
                calls.entry((g, w)).or_default().push((h, promote, ms.collect()));
            }
        }
        let sent = calls
            .iter()
            .map(|(&(g, w), rs)| bits_cmd(&self.bits_sha, g, w, self.expiry(w), rs))
            .collect();
        let results = self.exec(sent);
        let mut failed = HashSet::new();
        for ((key, ranges), r) in calls.into_iter().zip(results) {
            let (g, w) = key;
            let back =
                r.and_then(|v| redis::from_redis_value::<Vec<u64>>(v).map_err(|e| e.to_string()));
            match back {
                Ok(back) => {
                    for (h, _, ms) in ranges {
                        if back.contains(&h) {
                            todo.entry((g, w)).or_default().extend(ms);
                        } else {
                            fast.containers.insert((w, h));
                        }
                    }
                }
                Err(e) => {
                    // The call may have run (a lost reply) and made containers.
                    fast.containers.extend(ranges.iter().map(|r| (w, r.0)));
                    self.fail(e);
                    failed.insert(key);
                }
            }
        }
        failed
    }

    /// Deletes the journals `names`, whose IDs are all in their buckets. One not
    /// deleted now is compacted again by the next process (adding members already
    /// present changes nothing).
    fn delete_journals(&mut self, names: &[String]) {
        let mut sent: Vec<Sent> = Vec::new();
        for k in names {
            sent.push((Arc::new(redis::cmd("UNLINK").arg(k).clone()), None));
        }
        for chunk in names.chunks(1000) {
            sent.push((Arc::new(redis::cmd("SREM").arg(JOURNAL_DIR).arg(chunk).clone()), None));
        }
        if !sent.is_empty() {
            if let Some(e) = self.exec(sent).into_iter().find_map(|r| r.err()) {
                self.fail(e);
            }
        }
    }

    /// One round of compaction: read, plan, apply. Returns the (group, window)s
    /// still to do.
    fn compact_round(&mut self, fast: &mut Fast, todo: Todo) -> Todo {
        self.read_dirs(fast, todo.keys().copied());
        let (plans, unread) = plan_round(todo, &fast.dirs, |w| self.expiry(w), now_ms());
        let (sent, spans) = split_cmds(&plans);
        let mut results = self.exec(sent);
        let mut applies: Vec<Sent> = Vec::with_capacity(plans.len());
        let mut ok: Vec<bool> = Vec::with_capacity(plans.len());
        for (plan, (reads, plain)) in plans.iter().zip(spans) {
            let plain_added = self.plain_added(plan, &results[plain]);
            let Some(old) = self.take_reads(plan, &mut results[reads]) else {
                // Count what went in, so the directory's n stays the sum of its
                // buckets, and try the (group, window) again from a fresh read.
                if plain_added > 0 {
                    let (g, w) = plan.key;
                    let c =
                        redis::cmd("HINCRBY").arg(dir_key(g, w)).arg("n").arg(plain_added).clone();
                    let _ = self.exec(vec![(Arc::new(c), None)]);
                }
                ok.push(false);
                continue;
            };
            let moves = plan_moves(plan, old);
            applies.push(apply_cmd(&self.apply_sha, plan, &moves, plain_added));
            // Remember the planned directory; the count is set from the answer.
            fast.dirs.insert(plan.key, plan.after);
            ok.push(true);
        }
        let results = self.exec(applies);
        let mut left = self.applied(fast, plans, &ok, results);
        left.extend(unread);
        left
    }

    /// Reads the directories of `keys` this process does not know into `fast`.
    fn read_dirs(&mut self, fast: &mut Fast, keys: impl Iterator<Item = (u8, i64)>) {
        let unknown: Vec<(u8, i64)> = keys.filter(|k| !fast.dirs.contains_key(k)).collect();
        if unknown.is_empty() {
            return;
        }
        let sent = unknown.iter().map(|&(g, w)| read_dir(g, w)).collect();
        let results = self.exec(sent);
        for (k, r) in unknown.iter().zip(results) {
            match r {
                Ok(v) => {
                    fast.dirs.insert(*k, parse_dir(v).unwrap_or_default());
                }
                Err(e) => self.fail(e),
            }
        }
    }

    /// The members `plan`'s plain `SADD`s added (their answers are among
    /// `results`, each `SADD` maybe followed by its `PEXPIREAT`); counts the
    /// failures, and returns the count whatever happens next.
    fn plain_added(&mut self, plan: &Plan, results: &[Result<Value, String>]) -> i64 {
        let step = if plan.plain_expire_at > 0 { 2 } else { 1 };
        let mut added = 0;
        for r in results.iter().step_by(step) {
            if let Ok(Value::Int(n)) = r {
                added += n;
            }
        }
        results.iter().filter_map(|r| r.as_ref().err()).for_each(|e| self.fail(e));
        added
    }

    /// The members of `plan`'s buckets that split, taken from `results` (taken,
    /// not cloned: a read can hold hundreds of members); `None` if a read failed
    /// (counted).
    fn take_reads(
        &mut self,
        plan: &Plan,
        results: &mut [Result<Value, String>],
    ) -> Option<Vec<(u64, Vec<i64>)>> {
        let mut old = Vec::with_capacity(plan.reads.len());
        let mut good = true;
        for (&b, r) in plan.reads.iter().zip(results) {
            match std::mem::replace(r, Ok(Value::Nil)) {
                Ok(v) => old.push((b, redis::from_redis_value(v).unwrap_or_default())),
                Err(e) => {
                    self.fail(e);
                    good = false;
                }
            }
        }
        good.then_some(old)
    }

    /// Takes the script's answers in (one per plan marked `ok`, in order): a
    /// directory's new count, or the (group, window) back to the todo when its
    /// directory changed under another writer, the call failed or was not sent.
    fn applied(
        &mut self,
        fast: &mut Fast,
        plans: Vec<Plan>,
        ok: &[bool],
        results: Vec<Result<Value, String>>,
    ) -> Todo {
        let mut results = results.into_iter();
        let mut left = HashMap::new();
        for (plan, &good) in plans.into_iter().zip(ok) {
            let r = if good { results.next() } else { None };
            match r {
                Some(Ok(Value::Int(n))) if n >= 0 => {
                    if let Some(d) = fast.dirs.get_mut(&plan.key) {
                        d.n = n as u64;
                    }
                }
                other => {
                    if let Some(Err(e)) = other {
                        self.fail(e);
                    }
                    fast.dirs.remove(&plan.key);
                    left.insert(plan.key, plan.members);
                }
            }
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_EXPIRY: (i64, i64) = (0, 0);

    fn dir(l: u32, s: u64, n: u64) -> Dir {
        Dir { l, s, n }
    }

    /// A member whose address (last nine decimal digits) is `a`.
    fn at(a: u32) -> i64 {
        i64::from(a) + 7_000_000_000
    }

    fn plan(before: Dir, members: Vec<i64>) -> Plan {
        plan_group((1, 5), before, members, NO_EXPIRY, 0)
    }

    #[test]
    fn nothing_to_do() {
        // 5 buckets, full to the split load: nothing to add, nothing splits.
        let before = dir(2, 1, 1000);
        let p = plan(before, vec![]);
        assert_eq!(p.after, before);
        assert!(p.reads.is_empty() && p.plain.is_empty() && p.scripted.is_empty());
        let m = plan_moves(&p, vec![]);
        assert_eq!(m, Moves { ops: vec![], emptied: false });
        let (plans, unread) = plan_round(HashMap::new(), &HashMap::new(), |_| NO_EXPIRY, 0);
        assert!(plans.is_empty() && unread.is_empty());
    }

    #[test]
    fn room_left_means_plain_sadds_only() {
        // 2 buckets with 395 members: 5 more still fit (400 per 2 buckets).
        let before = dir(1, 0, 395);
        let p = plan(before, vec![at(0), at(1), at(2), at(3), at(5)]);
        assert_eq!(p.after, before);
        assert!(p.reads.is_empty() && p.scripted.is_empty());
        assert_eq!(p.plain, vec![(0, vec![at(0), at(2)]), (1, vec![at(1), at(3), at(5)])]);
    }

    #[test]
    fn one_bucket_over_its_limit_splits() {
        // One full bucket (200) and one more member: bucket 0 splits into 0 and 1.
        let p = plan(dir(0, 0, 200), vec![at(3)]);
        assert_eq!(p.after, dir(1, 0, 200));
        assert_eq!(p.reads, vec![0]);
        assert!(p.plain.is_empty());
        assert_eq!(p.scripted, vec![at(3)]);
        // Odd addresses move to the new bucket 1, even ones stay.
        let m = plan_moves(&p, vec![(0, vec![at(10), at(11), at(13)])]);
        assert_eq!(
            m.ops,
            vec![
                (OpKind::Remove, 0, vec![at(11), at(13)]),
                (OpKind::New, 1, vec![at(11), at(13), at(3)])
            ]
        );
        assert!(!m.emptied);
    }

    #[test]
    fn a_bucket_left_empty_or_never_made_is_said() {
        let p = plan(dir(0, 0, 200), vec![at(3)]);
        // Everything in bucket 0 moves out: it is left without a key.
        let m = plan_moves(&p, vec![(0, vec![at(1)])]);
        assert!(m.emptied);
        // Nothing lands in the new bucket 1 (an even member, nothing moves).
        let p = plan(dir(0, 0, 200), vec![at(4)]);
        let m = plan_moves(&p, vec![(0, vec![at(2)])]);
        assert_eq!(m.ops, vec![(OpKind::Add, 0, vec![at(4)])]);
        assert!(m.emptied);
    }

    #[test]
    fn only_buckets_that_split_are_read() {
        // 3 buckets (L=1, s=1: bucket 0 split already) holding 600: 2 more
        // members split bucket 1 only, into 1 and 3.
        let p = plan(dir(1, 1, 600), vec![at(4), at(5), at(7)]);
        assert_eq!(p.after, dir(2, 0, 600));
        assert_eq!(p.reads, vec![1]);
        assert_eq!(p.plain, vec![(0, vec![at(4)])]);
        assert_eq!(p.scripted, vec![at(5), at(7)]);
        let m = plan_moves(&p, vec![(1, vec![at(1), at(9), at(11)])]);
        assert_eq!(
            m.ops,
            vec![
                (OpKind::Remove, 1, vec![at(11)]),
                (OpKind::Add, 1, vec![at(5)]),
                (OpKind::New, 3, vec![at(11), at(7)]),
            ]
        );
        assert!(!m.emptied);
    }

    #[test]
    fn a_first_compaction_makes_room_to_grow() {
        // 100 members into nothing: buckets for 400 (PRESIZE), all by the script.
        let members: Vec<i64> = (0..100).map(at).collect();
        let p = plan(Dir::default(), members.clone());
        assert_eq!(p.after, dir(1, 0, 0));
        assert_eq!(p.reads, vec![0]);
        assert!(p.plain.is_empty());
        assert_eq!(p.scripted, members);
        // An existing directory with as many members does not presize.
        let p = plan(dir(0, 0, 1), (0..100).map(at).collect());
        assert_eq!(p.after, dir(0, 0, 1));
    }

    #[test]
    fn several_groups_and_windows_are_planned_apart() {
        let mut todo: Todo = HashMap::new();
        todo.insert((2, 6), vec![at(1)]);
        todo.insert((1, 5), vec![at(2)]);
        todo.insert((1, 6), vec![at(3)]);
        todo.insert((9, 5), vec![at(4)]); // its directory could not be read
        let mut dirs = HashMap::new();
        dirs.insert((1, 5), dir(0, 0, 200));
        dirs.insert((1, 6), dir(0, 0, 10));
        dirs.insert((2, 6), dir(1, 0, 10));
        let (ps, unread) = plan_round(todo, &dirs, |w| (w * 1000, 100), 0);
        // Not planned, and handed back to be tried again rather than dropped.
        assert_eq!(unread.into_iter().collect::<Vec<_>>(), vec![((9, 5), vec![at(4)])]);
        let keys: Vec<(u8, i64)> = ps.iter().map(|p| p.key).collect();
        assert_eq!(keys, vec![(1, 5), (1, 6), (2, 6)]);
        assert_eq!(ps[0].reads, vec![0]);
        assert_eq!(ps[1].plain, vec![(0, vec![at(3)])]);
        assert_eq!(ps[2].plain, vec![(1, vec![at(1)])]);
        assert_eq!([ps[0].expiry, ps[1].expiry], [(5000, 100), (6000, 100)]);
        assert_eq!(ps[0].members, vec![at(2)]);
    }

    #[test]
    fn a_window_already_expired_gets_the_fallback_ttl() {
        let p = |exp, now| plan_group((0, 3), dir(0, 0, 1), vec![at(1)], exp, now);
        assert_eq!(p((5_000, 700), 4_000).plain_expire_at, 5_000);
        assert_eq!(p((5_000, 700), 5_000).plain_expire_at, 5_700);
        assert_eq!(p((5_000, 700), 9_000).plain_expire_at, 9_700);
        assert_eq!(p(NO_EXPIRY, 9_000).plain_expire_at, 0);
        // The script is given the window's own expiry, and decides by its clock.
        assert_eq!(p((5_000, 700), 9_000).expiry, (5_000, 700));
    }

    #[test]
    fn split_commands_are_laid_out_per_plan() {
        let a = plan_group((1, 5), dir(0, 0, 200), vec![at(3)], (9_000, 1), 0);
        let b = plan_group((1, 6), dir(1, 0, 10), vec![at(1), at(2)], (9_000, 1), 0);
        let c = plan_group((1, 7), dir(1, 0, 10), vec![at(1)], NO_EXPIRY, 0);
        let (sent, spans) = split_cmds(&[a, b, c]);
        // a: one read; b: two SADDs each with its PEXPIREAT; c: one SADD.
        assert_eq!(spans, vec![(0..1, 1..1), (1..1, 1..5), (5..5, 5..6)]);
        assert_eq!(sent.len(), 6);
    }
}
