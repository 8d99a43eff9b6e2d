//! The stable key layout (`REDIS.md`, "Layout (stable format, version 2)"): key
//! names, an ID's group and member (and an integer's range), a member's bucket address and the
//! bucket directory's linear hashing, as `lua/prelude.lua` computes them on the
//! server side. Changing any of it changes the layout version in the metadata key
//! (`meta.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use redis::{Cmd, Value};

use super::Sent;
use crate::exact::ExactQuery;

/// The key prefix (namespace) of every key this tier writes.
pub const PREFIX: &str = "logdedup";
/// Number of hash-tag groups: the fingerprint's top 8 bits. On a cluster this is
/// how many slots the data spreads over, and the most calls one batch makes.
pub const GROUPS: usize = 256;
/// Mean members per bucket at which the next bucket splits (see the module docs).
pub const SPLIT_LOAD: u32 = 200;

/// The set of journal keys not yet compacted (one slot on a cluster).
pub(super) const JOURNAL_DIR: &str = "logdedup:{j}:dir";

/// IDs per integer container: the bits of 8184 bytes. With the flag byte after
/// them ([`FLAG_BYTE`]) and the string's 5-byte header and terminator, a
/// container is one 8 KiB allocation (a whole 2^16-bit range would take
/// jemalloc's next size class, 10 KiB).
pub const RANGE: u64 = 8184 * 8;
/// The byte after a container's bits: 1 if no fingerprint of its range was in
/// its (group, window)'s buckets when it was made (then none ever is, and a
/// reader need not look there), else 0.
pub(super) const FLAG_BYTE: u64 = RANGE / 8;
/// A range promoted to a container once this many of its IDs are written at
/// once: 8 KiB is what ~860 members cost in intset buckets (~9.5 B each), so a
/// container never costs more than the members it replaces.
pub const PROMOTE_AT: usize = 1024;

/// A bucket directory: `2^l + s` buckets holding `n` members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Dir {
    pub(super) l: u32,
    pub(super) s: u64,
    pub(super) n: u64,
}

impl Dir {
    pub(super) fn buckets(&self) -> u64 {
        (1u64 << self.l) + self.s
    }

    pub(super) fn bucket(&self, a: u32) -> u64 {
        let a = u64::from(a);
        let b = a & ((1u64 << self.l) - 1);
        if b < self.s {
            a & ((2u64 << self.l) - 1)
        } else {
            b
        }
    }

    /// One split: bucket `s` becomes `s` and `s + 2^l`. Returns the bucket split.
    pub(super) fn split(&mut self) -> u64 {
        let b = self.s;
        self.s += 1;
        if self.s == 1u64 << self.l {
            self.l += 1;
            self.s = 0;
        }
        b
    }
}

/// What the keys of (group `g`, window `w`) start with.
pub(super) fn window_base(g: u8, w: i64) -> String {
    format!("{PREFIX}:{{g{g}}}:w{w}")
}

/// The key of bucket `b` of (group `g`, window `w`).
pub(super) fn bucket_key(g: u8, w: i64, b: u64) -> String {
    format!("{PREFIX}:{{g{g}}}:w{w}:b{b}")
}

/// The directory (hash `L`, `s`, `n`, `x`) of (group `g`, window `w`).
pub(super) fn dir_key(g: u8, w: i64) -> String {
    format!("{PREFIX}:{{g{g}}}:w{w}:m")
}

/// The read of (g, w)'s directory: `HMGET` of `L`, `s`, `n`.
pub(super) fn read_dir(g: u8, w: i64) -> Sent {
    (Arc::new(redis::cmd("HMGET").arg(dir_key(g, w)).arg("L").arg("s").arg("n").clone()), None)
}

/// A directory from [`read_dir`]'s reply (absent fields are 0); `None` if the
/// reply is not one.
pub(super) fn parse_dir(v: Value) -> Option<Dir> {
    let f: Vec<Option<u64>> = redis::from_redis_value(v).ok()?;
    let get = |i: usize| f.get(i).copied().flatten().unwrap_or(0);
    Some(Dir { l: get(0).min(62) as u32, s: get(1), n: get(2) })
}

/// The container (a string of [`RANGE`] bits and a flag byte) of integer range
/// `h` in (group `g`, window `w`).
pub(super) fn container_key(g: u8, w: i64, h: u64) -> String {
    format!("{PREFIX}:{{g{g}}}:w{w}:c{h}")
}

/// The set of the ranges that have a container in (group `g`, window `w`).
pub(super) fn containers_key(g: u8, w: i64) -> String {
    format!("{PREFIX}:{{g{g}}}:w{w}:cs")
}

/// The hash of `--shared` leases in (group `g`, window `w`): member → holder.
pub(super) fn lease_key(g: u8, w: i64) -> String {
    format!("{PREFIX}:{{g{g}}}:w{w}:p")
}

/// A `--shared` client's replay ring: one per group on a cluster (`Some(g)`, so
/// that it lives in the slot of the group's calls), one on a single node.
pub(super) fn ring_key(g: Option<usize>, instance: &str) -> String {
    match g {
        Some(g) => format!("{PREFIX}:{{g{g}}}:r:{instance}"),
        None => format!("{PREFIX}:r:{instance}"),
    }
}

/// The journal of a client's call `seq` (`seq mod 256` spreads journals over the
/// slots of a cluster).
pub(super) fn journal_key(seq: u64, instance: &str) -> String {
    format!("{PREFIX}:{{g{}}}:j:{}:{}", seq % 256, instance, seq)
}

/// Appends the scripts' per-query arguments: the header (9 bytes per query:
/// group, own window's 1-based descriptor `pos` (u16 BE), older windows to check
/// (u16 BE), bucket address (u32 BE)), one member per query, then the integer
/// section ([`push_ints`]).
pub(super) fn push_queries(
    cmd: &mut Cmd,
    queries: &[ExactQuery],
    idx: impl Iterator<Item = usize> + Clone,
    pos: &HashMap<i64, usize>,
    promote: bool,
) {
    let mut hdr = Vec::with_capacity(idx.size_hint().0 * 9);
    for i in idx.clone() {
        let q = &queries[i];
        let j = pos[&q.own.0] as u16;
        let c = (q.own.0 - q.first_window()) as u16;
        let (g, m) = ident(q);
        hdr.push(g);
        hdr.extend_from_slice(&j.to_be_bytes());
        hdr.extend_from_slice(&c.to_be_bytes());
        hdr.extend_from_slice(&address(m).to_be_bytes());
    }
    cmd.arg(hdr);
    for i in idx.clone() {
        cmd.arg(ident(&queries[i]).1);
    }
    push_ints(cmd, queries, idx, promote);
}

/// Appends the integer section of the scripts' arguments, one string: per
/// integer query its 1-based position among the queries (u32 BE), 1 if the
/// range's container is to be made (u8: with `promote`, when the call holds at
/// least [`PROMOTE_AT`] IDs of the range in the same window), its range (7 bytes
/// BE) and its bit (u16 BE) (see `lua/prelude.lua`, `read_ints`).
fn push_ints(
    cmd: &mut Cmd,
    queries: &[ExactQuery],
    idx: impl Iterator<Item = usize>,
    promote: bool,
) {
    let mut ints = Vec::new();
    let mut count: HashMap<(i64, u64), usize> = HashMap::new();
    for (k, i) in idx.enumerate() {
        let q = &queries[i];
        if q.int {
            let (h, off) = range_of(ident(q).1);
            ints.push((k as u32 + 1, q.own.0, h, off as u16));
            *count.entry((q.own.0, h)).or_default() += 1;
        }
    }
    let mut out = Vec::with_capacity(ints.len() * 14);
    for (k, w, h, off) in ints {
        out.extend_from_slice(&k.to_be_bytes());
        out.push(u8::from(promote && count[&(w, h)] >= PROMOTE_AT));
        out.extend_from_slice(&h.to_be_bytes()[1..]);
        out.extend_from_slice(&off.to_be_bytes());
    }
    cmd.arg(out);
}

/// A member's bucket address: its last nine decimal digits, `|m| mod 10^9`. Any
/// fixed function of the member would do; this one is exact both here and in Lua
/// (whose numbers are doubles), which must agree on it when a bucket splits. It is
/// uniform to within 10^9 / 2^64, and `mod 2^L` of it stays uniform to within
/// 2^L / 10^9 (L is ~7 at 10M IDs per window, ~14 at a billion).
#[inline]
pub(super) fn address(m: i64) -> u32 {
    (m.unsigned_abs() % 1_000_000_000) as u32
}

/// Where a query's ID is kept: its (group, member). A string ID's are cut from
/// its fingerprint; an integer ID is its own member, in the group of its range
/// (so that its container and its bucket share a hash slot).
#[inline]
pub(super) fn ident(q: &ExactQuery) -> (u8, i64) {
    if q.int {
        let v = q.fp as u64;
        (range_group(v / RANGE), crate::key::int::from_u64(v))
    } else {
        (group(q.fp) as u8, member(q.fp))
    }
}

/// An integer member's range and its bit in the range's container.
#[inline]
pub(super) fn range_of(m: i64) -> (u64, u32) {
    let v = crate::key::int::to_u64(m);
    (v / RANGE, (v % RANGE) as u32)
}

/// The group of integer range `h`: consecutive ranges land in different groups
/// (slots of a cluster) by a multiplicative hash.
#[inline]
pub(super) fn range_group(h: u64) -> u8 {
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// The hash-tag group of a fingerprint: its top 8 bits.
#[inline]
pub(super) fn group(fp: u128) -> usize {
    (fp >> 120) as usize
}

/// The stored member: the fingerprint's low 64 bits as a signed integer, so that
/// Redis keeps it in an intset (it parses canonical decimal `i64` text as integers).
#[inline]
pub(super) fn member(fp: u128) -> i64 {
    fp as u64 as i64
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

    #[test]
    fn dir_matches_linear_hashing() {
        // The script's rule: b = a mod 2^L, or a mod 2^(L+1) when b < s.
        let mut d = Dir::default();
        assert_eq!(d.buckets(), 1);
        assert_eq!(d.split(), 0);
        assert_eq!((d.l, d.s, d.buckets()), (1, 0, 2));
        assert_eq!(d.split(), 0);
        assert_eq!((d.l, d.s, d.buckets()), (1, 1, 3));
        for a in 0..64u32 {
            let want = if a % 2 < 1 { a % 4 } else { a % 2 };
            assert_eq!(d.bucket(a), u64::from(want), "{a}");
        }
    }
}
