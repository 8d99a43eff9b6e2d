//! The dataset generator and its truth file.
//!
//! [`Generator`] renders records one at a time into a caller's buffer, so the same
//! code writes a file (`gen`) or feeds a child's stdin forever (`soak`). Each record
//! is a pure function of `(id, event time, seed)`: a duplicate copies those three
//! values from an earlier record and so renders byte-identical fields without the
//! generator keeping any line. [`Truth`] watches the stream and counts what a
//! correct deduplicator must emit; see [`TruthFile`] for exactly what each number
//! means.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::rng::{mix, power_law, Rng};
use crate::spec::{DupTime, Dur, Format, GenConfig, IdKind, RatePattern, Skew, START_MS};

/// What identifies one generated record; enough to render it again.
#[derive(Clone, Copy, Debug, Default)]
struct Past {
    id: u128,
    ts: i64,
    seed: u64,
}

/// What the caller learns about each record it is handed.
#[derive(Clone, Copy, Debug)]
pub struct RecordInfo {
    /// The ID, as a number unique per distinct key text.
    pub id: u128,
    /// Event time, ms since the epoch.
    pub ts_ms: i64,
}

/// Words the `msg` padding is cut from; no byte needs JSON escaping.
const WORDS: &[&str] = &[
    "request",
    "served",
    "upstream",
    "cache",
    "miss",
    "hit",
    "retry",
    "queue",
    "commit",
    "offset",
    "partition",
    "broker",
    "shipper",
    "delivered",
    "ack",
    "timeout",
    "batch",
    "flushed",
    "session",
    "token",
    "refreshed",
    "payment",
    "order",
    "accepted",
    "worker",
];

/// The event time of the `i`-th record of `cfg`'s stream (a fresh record's, before
/// any out-of-order lag): times grow evenly from [`START_MS`] across `--span`
/// (without `--rate-swing`, which only [`Generator`] follows).
pub fn base_time(cfg: &GenConfig, i: u64) -> i64 {
    let total = cfg.records.0.max(1) as u128;
    START_MS + ((i as u128 * cfg.span.ms() as u128) / total) as i64
}

/// A deterministic stream of records. See the module docs.
pub struct Generator {
    cfg: GenConfig,
    rng: Rng,
    index: u64,
    total: u64,
    ring: Vec<Past>,
    next_seq: u64,
    pad: Vec<u8>,
    day_cache: (i64, [u8; 10]),
    /// With `--rate-swing`: the share of the records before each window's start.
    rate: Option<Vec<f64>>,
}

impl Generator {
    /// A generator for `cfg` (call [`GenConfig::validate`] first).
    pub fn new(cfg: &GenConfig) -> Generator {
        let total = cfg.records.0.max(1);
        let ring_len = cfg.burst.min(total).max(1) as usize;
        let mut rng = Rng::new(cfg.seed);
        let mut pad = Vec::with_capacity(cfg.record_bytes * 2 + 8192);
        while pad.len() < cfg.record_bytes * 2 + 4096 {
            pad.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            pad.push(b' ');
        }
        Generator {
            cfg: cfg.clone(),
            rng,
            index: 0,
            total,
            ring: vec![Past::default(); ring_len],
            next_seq: 1_000_000,
            pad,
            day_cache: (i64::MIN, [0; 10]),
            rate: (cfg.rate_swing > 0.0).then(|| window_shares(cfg)),
        }
    }

    /// The event time of record `i` (before any lag): even over the span, or
    /// with `--rate-swing`, each window's share of the records spread evenly
    /// over that window.
    fn base_ts(&self, i: u64) -> i64 {
        let (span, total) = (self.cfg.span.ms(), self.total);
        let Some(starts) = &self.rate else {
            return base_time(&self.cfg, i);
        };
        let f = i as f64 / total as f64;
        let w = starts.partition_point(|&s| s <= f).saturating_sub(1);
        let end = starts.get(w + 1).copied().unwrap_or(1.0);
        let width = self.cfg.window.ms();
        let len = width.min(span - w as u64 * width) as f64;
        let into = if end > starts[w] { (f - starts[w]) / (end - starts[w]) } else { 0.0 };
        START_MS + (w as u64 * width) as i64 + (into * len) as i64
    }

    /// Appends the next record (with its newline) to `line`; `None` once
    /// `--records` records were produced.
    pub fn next_into(&mut self, line: &mut Vec<u8>) -> Option<RecordInfo> {
        if self.index >= self.total {
            return None;
        }
        let i = self.index;
        self.index += 1;
        let base_ts = self.base_ts(i);
        let available = i.min(self.ring.len() as u64);
        let rec = if available > 0 && self.rng.chance(self.cfg.dup_ratio) {
            let back = match self.cfg.skew {
                Skew::Uniform => 1 + self.rng.below(available),
                Skew::Zipf(s) => power_law(self.rng.next_f64(), available, s),
            };
            let mut p = self.ring[((i - back) % self.ring.len() as u64) as usize];
            if self.cfg.dup_time == DupTime::Now {
                p.ts = base_ts;
            }
            p
        } else {
            let mut ts = base_ts;
            if self.rng.chance(self.cfg.out_of_order) && self.cfg.lateness.ms() > 0 {
                ts = (ts - 1 - self.rng.below(self.cfg.lateness.ms()) as i64).max(START_MS);
            }
            Past { id: self.fresh_id(), ts, seed: self.rng.next_u64() }
        };
        let slot = (i % self.ring.len() as u64) as usize;
        self.ring[slot] = rec;
        self.render(&rec, line);
        Some(RecordInfo { id: rec.id, ts_ms: rec.ts })
    }

    /// An ID never handed out before (random kinds: with overwhelming probability;
    /// the truth counts real collisions anyway).
    fn fresh_id(&mut self) -> u128 {
        match self.cfg.id_kind {
            IdKind::Seq | IdKind::Composite => {
                // Sequential with gaps: one ID in ten skips up to 100 numbers, as
                // IDs of deleted or filtered events do.
                let gap = if self.rng.below(10) == 0 { 1 + self.rng.below(100) } else { 0 };
                self.next_seq += 1 + gap;
                let seq = self.next_seq as u128;
                if self.cfg.id_kind == IdKind::Seq {
                    seq
                } else {
                    let user = self.rng.below(10_000) as u128;
                    let batch = self.rng.below(8) as u128;
                    (user << 96) | (seq << 8) | batch
                }
            }
            IdKind::I64 => self.rng.next_u64() as u128,
            IdKind::Uuid => {
                let v = ((self.rng.next_u64() as u128) << 64) | self.rng.next_u64() as u128;
                // Version 4, variant 10xx, as RFC 9562 lays out a random UUID.
                (v & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
            }
        }
    }

    fn render(&mut self, r: &Past, out: &mut Vec<u8>) {
        let start = out.len();
        let level = match mix(r.seed) % 100 {
            0..=79 => "info",
            80..=89 => "warn",
            90..=94 => "error",
            _ => "debug",
        };
        let (user, order, batch) = match self.cfg.id_kind {
            IdKind::Composite => {
                ((r.id >> 96) as u64, ((r.id >> 8) as u64) & ((1 << 56) - 1), r.id as u64 & 0xff)
            }
            _ => (mix(r.seed ^ 1) % 10_000, mix(r.seed ^ 2) % 1_000_000_000, mix(r.seed ^ 3) % 8),
        };
        match self.cfg.format {
            Format::Json => {
                out.extend_from_slice(b"{\"ts\":\"");
                self.push_ts(r.ts, out);
                out.extend_from_slice(b"\",\"level\":\"");
                out.extend_from_slice(level.as_bytes());
                out.extend_from_slice(b"\",\"request_id\":");
                self.push_request_id(r, true, out);
                out.extend_from_slice(b",\"user\":\"u");
                push_u64(user, out);
                out.extend_from_slice(b"\",\"order\":");
                push_u64(order, out);
                out.extend_from_slice(b",\"batch\":");
                push_u64(batch, out);
                out.extend_from_slice(b",\"msg\":\"");
                self.push_pad(r.seed, out.len() - start + 3, out);
                out.extend_from_slice(b"\"}\n");
            }
            Format::Plain => {
                self.push_ts(r.ts, out);
                out.push(b' ');
                out.extend_from_slice(level.to_ascii_uppercase().as_bytes());
                out.push(b' ');
                if self.cfg.id_kind == IdKind::Composite {
                    out.push(b'u');
                    push_u64(user, out);
                    out.push(b' ');
                    push_u64(order, out);
                    out.push(b' ');
                    push_u64(batch, out);
                    out.extend_from_slice(b" req=");
                    self.push_request_id(r, false, out);
                } else {
                    self.push_request_id(r, false, out);
                    out.extend_from_slice(b" user=u");
                    push_u64(user, out);
                    out.extend_from_slice(b" order=");
                    push_u64(order, out);
                }
                out.push(b' ');
                self.push_pad(r.seed, out.len() - start + 1, out);
                out.push(b'\n');
            }
        }
    }

    fn push_request_id(&self, r: &Past, quoted: bool, out: &mut Vec<u8>) {
        match self.cfg.id_kind {
            IdKind::Seq => push_u64(r.id as u64, out),
            IdKind::I64 => push_i64(r.id as u64 as i64, out),
            IdKind::Uuid => {
                if quoted {
                    out.push(b'"');
                }
                push_uuid(r.id, out);
                if quoted {
                    out.push(b'"');
                }
            }
            IdKind::Composite => {
                // Not the key here: a per-record tag, copied by redeliveries.
                if quoted {
                    out.push(b'"');
                }
                out.push(b'r');
                push_hex(r.seed as u128, 16, out);
                if quoted {
                    out.push(b'"');
                }
            }
        }
    }

    /// Pads the message so the record reaches `--record-bytes` (at least 4 bytes
    /// of text, so short targets still give a readable message).
    fn push_pad(&self, seed: u64, used: usize, out: &mut Vec<u8>) {
        let len = self.cfg.record_bytes.saturating_sub(used).max(4);
        let room = self.pad.len() - len;
        let at = (mix(seed ^ 4) % room as u64) as usize;
        let slice = &self.pad[at..at + len];
        out.extend_from_slice(slice);
        // A word cut at the end may leave a trailing space; keep lines tidy.
        if let Some(last) = out.last_mut() {
            if *last == b' ' {
                *last = b'.';
            }
        }
    }

    /// RFC 3339 with milliseconds and `Z`.
    fn push_ts(&mut self, ms: i64, out: &mut Vec<u8>) {
        let day = ms.div_euclid(86_400_000);
        if self.day_cache.0 != day {
            let (y, m, d) = civil_from_days(day);
            let mut b = Vec::with_capacity(10);
            push_padded(y as u64, 4, &mut b);
            b.push(b'-');
            push_padded(m as u64, 2, &mut b);
            b.push(b'-');
            push_padded(d as u64, 2, &mut b);
            self.day_cache = (day, b.try_into().expect("10 bytes"));
        }
        out.extend_from_slice(&self.day_cache.1);
        let rem = ms.rem_euclid(86_400_000) as u64;
        out.push(b'T');
        push_padded(rem / 3_600_000, 2, out);
        out.push(b':');
        push_padded(rem / 60_000 % 60, 2, out);
        out.push(b':');
        push_padded(rem / 1000 % 60, 2, out);
        out.push(b'.');
        push_padded(rem % 1000, 3, out);
        out.push(b'Z');
    }
}

/// Where each window of `--window` (from the start of the span) begins, as the
/// share of the records before it: window `w` gets a weight of `1 + swing·x`,
/// `x` in -1..1 drawn at random or a sine over 24 windows, times the part of the
/// window inside the span. A generator of its own, so the records' draws are
/// those of the same seed without a swing.
fn window_shares(cfg: &GenConfig) -> Vec<f64> {
    let (span, width) = (cfg.span.ms().max(1), cfg.window.ms());
    let windows = span.div_ceil(width);
    let mut rng = Rng::new(cfg.seed ^ 0x5157_494e_4753_5741);
    let weights: Vec<f64> = (0..windows)
        .map(|w| {
            let x = match cfg.rate_pattern {
                RatePattern::Random => 2.0 * rng.next_f64() - 1.0,
                RatePattern::Wave => (w as f64 / 24.0 * std::f64::consts::TAU).sin(),
            };
            let part = width.min(span - w * width) as f64 / width as f64;
            (1.0 + cfg.rate_swing * x) * part
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            let start = acc / total;
            acc += w;
            start
        })
        .collect()
}

/// Formats an epoch-ms time as RFC 3339 with milliseconds (for reports).
pub fn rfc3339(ms: i64) -> String {
    let mut g = Generator::new(&GenConfig {
        records: crate::spec::Count(1),
        burst: 1,
        ..Default::default()
    });
    let mut out = Vec::new();
    g.push_ts(ms, &mut out);
    String::from_utf8(out).expect("ascii")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar, by the era/day-of-era decomposition (400-year cycles of 146097 days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn push_u64(mut v: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_i64(v: i64, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(v.unsigned_abs(), out);
}

fn push_padded(v: u64, width: usize, out: &mut Vec<u8>) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = v;
    while v > 0 || buf.len() - i < width {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_hex(v: u128, digits: usize, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for k in (0..digits).rev() {
        out.push(HEX[((v >> (4 * k)) & 0xf) as usize]);
    }
}

fn push_uuid(v: u128, out: &mut Vec<u8>) {
    push_hex(v >> 96, 8, out);
    out.push(b'-');
    push_hex(v >> 80, 4, out);
    out.push(b'-');
    push_hex(v >> 64, 4, out);
    out.push(b'-');
    push_hex(v >> 48, 4, out);
    out.push(b'-');
    push_hex(v, 12, out);
}

/// A hasher for keys that are already well spread or small integers: one
/// SplitMix64 finalisation per word, far cheaper than SipHash.
#[derive(Default)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = mix(self.0 ^ u64::from_le_bytes(w));
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = mix(self.0 ^ mix(v as u64) ^ (v >> 64) as u64);
    }
}

/// A `HashSet` of 128-bit IDs or fingerprints.
pub type FastSet = HashSet<u128, BuildHasherDefault<MixHasher>>;

/// A 128-bit fingerprint of a whole line: two independent lanes, each mixed to
/// full avalanche per 8-byte word, so two distinct lines collide only if both
/// lanes do (negligible at the 10^7–10^8 lines a truth file covers).
pub fn line_fingerprint(line: &[u8]) -> u128 {
    let (mut a, mut b) = (0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344u64);
    let mut chunks = line.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        a = mix(a ^ w);
        b = mix(b.wrapping_add(w).rotate_left(23));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let w = u64::from_le_bytes(tail) ^ ((line.len() as u64) << 56);
    a = mix(a ^ w);
    b = mix(b.wrapping_add(w).rotate_left(23));
    ((a as u128) << 64) | b as u128
}

/// Counts for one event-time window, in the order windows became current.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowCount {
    /// Window index, `floor(t / W)`.
    pub index: i64,
    /// Start of the window, RFC 3339.
    pub start: String,
    /// Records that arrived while this was the newest window, late ones included.
    pub records: u64,
    /// Records in this window whose ID had not been seen in it before: emitted.
    pub new: u64,
    /// Records in this window whose ID had: dropped.
    pub duplicates: u64,
    /// Records that arrived while this was the newest window but belong to an older
    /// one: late, emitted under `--on-late emit`.
    pub late: u64,
}

/// The windowed expectation, for `--window W --retain 1` and the default
/// `--on-late emit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowTruth {
    /// `W`.
    pub window: String,
    /// `W` in milliseconds.
    pub window_ms: u64,
    /// Always 1: only the newest window is retained.
    pub retain: u32,
    /// What a correct deduplicator emits: `new + late`.
    pub emitted: u64,
    /// First occurrences of an ID within its window.
    pub new: u64,
    /// Records dropped as duplicates within their window.
    pub duplicates: u64,
    /// Records older than the newest window seen so far.
    pub late: u64,
    /// How many times the newest window moved forward.
    pub rotations: u64,
    /// Per-window counts.
    pub windows: Vec<WindowCount>,
}

/// The truth file written by `gen --truth`. What each count means:
///
/// - `unique_lines`: distinct whole lines — what `sort -u`, `awk '!seen[$0]++'`,
///   runiq, huniq and `logdedup` without `--key` must emit;
/// - `unique_ids`: records whose ID (the `keys` of the dataset) appears for the
///   first time in the file — what any keyed dedup without a window must emit;
/// - `window`: with `--window W --time-field .ts --retain 1`, window index
///   `w = floor(t / W)` of the record's event time. Walking the stream in order with
///   `newest` = the largest `w` seen so far: a record with `w < newest` is *late*
///   (counted, and emitted, as `--on-late emit` does); otherwise it is a duplicate
///   iff an earlier non-late record with the same ID had the same `w`, and new
///   (emitted) if not. `emitted = new + late`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthFile {
    /// The knobs that made the file.
    pub spec: GenConfig,
    /// logdedup `--key` values that select the ID.
    pub keys: Vec<String>,
    /// logdedup `--time-field`, when the format has one.
    pub time_field: Option<String>,
    /// Records written.
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Distinct whole lines.
    pub unique_lines: u64,
    /// Distinct IDs.
    pub unique_ids: u64,
    /// The windowed expectation.
    pub window: WindowTruth,
    /// The same for other window lengths (rotation experiment), without the
    /// per-window list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_windows: Vec<WindowTruth>,
}

/// One window length being tracked: the IDs of the newest window and its counts.
struct WindowState {
    truth: WindowTruth,
    ids: FastSet,
    newest: Option<i64>,
    /// Keep the per-window list (the primary window only; extra windows of the
    /// rotation experiment may have thousands).
    per_window: bool,
}

impl WindowState {
    fn new(window: Dur, per_window: bool) -> WindowState {
        WindowState {
            truth: WindowTruth {
                window: window.to_string(),
                window_ms: window.ms(),
                retain: 1,
                ..Default::default()
            },
            ids: FastSet::default(),
            newest: None,
            per_window,
        }
    }

    fn observe(&mut self, id: u128, ts_ms: i64) {
        let wt = &mut self.truth;
        let w = ts_ms.div_euclid(wt.window_ms as i64);
        if self.newest.is_none_or(|n| w > n) {
            if self.newest.is_some() {
                wt.rotations += 1;
            }
            self.newest = Some(w);
            self.ids.clear();
            if self.per_window {
                wt.windows.push(WindowCount {
                    index: w,
                    start: rfc3339(w * wt.window_ms as i64),
                    ..Default::default()
                });
            }
        }
        let mut scratch = WindowCount::default();
        let cur = wt.windows.last_mut().unwrap_or(&mut scratch);
        cur.records += 1;
        if Some(w) < self.newest {
            cur.late += 1;
            wt.late += 1;
            wt.emitted += 1;
        } else if self.ids.insert(id) {
            cur.new += 1;
            wt.new += 1;
            wt.emitted += 1;
        } else {
            cur.duplicates += 1;
            wt.duplicates += 1;
        }
    }
}

/// Watches a stream of records and builds a [`TruthFile`].
pub struct Truth {
    file: TruthFile,
    lines: FastSet,
    ids: FastSet,
    windows: Vec<WindowState>,
}

impl Truth {
    /// An empty truth for `cfg`, also tracking each of `extra_windows`.
    pub fn new(cfg: &GenConfig, extra_windows: &[Dur]) -> Truth {
        let file = TruthFile {
            spec: cfg.clone(),
            keys: cfg.key_specs(),
            time_field: cfg.time_field(),
            ..Default::default()
        };
        let cap = cfg.records.0.min(1 << 26) as usize;
        let mut windows = vec![WindowState::new(cfg.window, true)];
        windows.extend(extra_windows.iter().map(|w| WindowState::new(*w, false)));
        Truth {
            file,
            lines: FastSet::with_capacity_and_hasher(cap, Default::default()),
            ids: FastSet::with_capacity_and_hasher(cap, Default::default()),
            windows,
        }
    }

    /// Counts one record and its rendered line (newline included).
    pub fn observe(&mut self, info: &RecordInfo, line: &[u8]) {
        let f = &mut self.file;
        f.records += 1;
        f.bytes += line.len() as u64;
        if self.lines.insert(line_fingerprint(line)) {
            f.unique_lines += 1;
        }
        if self.ids.insert(info.id) {
            f.unique_ids += 1;
        }
        for w in &mut self.windows {
            w.observe(info.id, info.ts_ms);
        }
    }

    /// The finished truth file.
    pub fn finish(mut self) -> TruthFile {
        let mut ws = self.windows.into_iter().map(|w| w.truth);
        self.file.window = ws.next().expect("primary window");
        self.file.extra_windows = ws.collect();
        self.file
    }
}

/// Writes the whole dataset to `out`, and returns its truth when `truth_windows`
/// is given (the extra window lengths to track besides `cfg.window`).
pub fn write_dataset(
    cfg: &GenConfig,
    out: &mut dyn Write,
    truth_windows: Option<&[Dur]>,
) -> io::Result<Option<TruthFile>> {
    let mut g = Generator::new(cfg);
    let mut truth = truth_windows.map(|w| Truth::new(cfg, w));
    // Lines are rendered straight into a 1 MiB block and written a block at a time.
    let mut buf = Vec::with_capacity(1 << 20);
    loop {
        let at = buf.len();
        let Some(info) = g.next_into(&mut buf) else { break };
        if let Some(t) = truth.as_mut() {
            t.observe(&info, &buf[at..]);
        }
        if buf.len() >= (1 << 20) - 8192 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(truth.map(Truth::finish))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Count;

    fn lines(cfg: &GenConfig) -> (Vec<u8>, TruthFile) {
        let mut out = Vec::new();
        let t = write_dataset(cfg, &mut out, Some(&[Dur(1000)])).unwrap().unwrap();
        assert_eq!(t.extra_windows.len(), 1);
        (out, t)
    }

    #[test]
    fn deterministic_and_seeded() {
        let cfg = GenConfig { records: Count(2000), ..Default::default() };
        assert_eq!(lines(&cfg).0, lines(&cfg).0);
        let other = GenConfig { seed: 9, ..cfg.clone() };
        assert_ne!(lines(&cfg).0, lines(&other).0);
    }

    #[test]
    fn json_lines_parse_and_have_the_fields() {
        for kind in [IdKind::Seq, IdKind::I64, IdKind::Uuid, IdKind::Composite] {
            let cfg = GenConfig { records: Count(500), id_kind: kind, ..Default::default() };
            let (out, t) = lines(&cfg);
            let text = String::from_utf8(out).unwrap();
            let mut total = 0;
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(v["ts"].as_str().unwrap().ends_with('Z'));
                assert!(v.get("request_id").is_some() && v.get("msg").is_some());
                total += line.len() + 1;
            }
            assert_eq!(t.records, 500);
            assert_eq!(t.bytes as usize, total);
            // ~180 bytes a record by default.
            assert!((170..=200).contains(&(total / 500)), "{kind:?}: {}", total / 500);
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(START_MS + 123), "2026-11-23T10:00:00.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn dup_ratio_is_respected_and_copies_are_identical() {
        let cfg = GenConfig { records: Count(20_000), dup_ratio: 0.5, ..Default::default() };
        let (_, t) = lines(&cfg);
        let dups = t.records - t.unique_ids;
        assert!((9_000..11_000).contains(&dups), "{dups}");
        // Copies are byte-identical, so whole-line and keyed counts agree.
        assert_eq!(t.unique_lines, t.unique_ids);
        // Without out-of-order records, no copy crosses into a later window...
        // except copies of records from a window that has already closed.
        assert_eq!(t.window.emitted, t.window.new + t.window.late);
        assert_eq!(t.window.new + t.window.duplicates + t.window.late, t.records);
    }

    /// With a swing, each window's count stays within it of the mean and the
    /// counts do swing; times still grow and stay inside the span.
    #[test]
    fn window_counts_swing_as_asked() {
        for pattern in [RatePattern::Random, RatePattern::Wave] {
            let cfg = GenConfig {
                records: Count(48_000),
                span: Dur(48 * 60_000),
                window: Dur(60_000),
                rate_swing: 0.25,
                rate_pattern: pattern,
                ..Default::default()
            };
            let mut g = Generator::new(&cfg);
            let (mut counts, mut line, mut last) = (vec![0u64; 48], Vec::new(), START_MS);
            for i in 0..48_000 {
                let ts = g.base_ts(i);
                assert!(ts >= last && ts < START_MS + 48 * 60_000, "{pattern:?} record {i}");
                last = ts;
                counts[((ts - START_MS) / 60_000) as usize] += 1;
            }
            assert!(g.next_into(&mut line).is_some());
            let (lo, hi) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
            assert!(lo >= 740 && hi <= 1260, "{pattern:?}: {lo}..{hi}");
            assert!(hi - lo > 300, "{pattern:?}: the counts barely swing, {lo}..{hi}");
        }
    }

    #[test]
    fn retries_differ_by_time_only() {
        let cfg = GenConfig {
            records: Count(5000),
            dup_ratio: 0.4,
            dup_time: DupTime::Now,
            ..Default::default()
        };
        let (_, t) = lines(&cfg);
        assert!(t.unique_lines > t.unique_ids);
        assert_eq!(t.window.late, 0);
    }

    #[test]
    fn truth_matches_a_model_computed_from_the_text() {
        let cfg = GenConfig {
            records: Count(30_000),
            id_kind: IdKind::Seq,
            dup_ratio: 0.3,
            out_of_order: 0.05,
            lateness: Dur(60_000),
            window: Dur(60_000),
            burst: 5000,
            skew: Skew::Zipf(1.1),
            ..Default::default()
        };
        let (out, t) = lines(&cfg);
        let text = String::from_utf8(out).unwrap();
        let mut ids = HashSet::new();
        let mut all = HashSet::new();
        let (mut newest, mut cur, mut emitted) = (i64::MIN, HashSet::new(), 0u64);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = v["request_id"].to_string();
            all.insert(line.to_string());
            ids.insert(id.clone());
            let ts = v["ts"].as_str().unwrap();
            let secs = (ts[11..13].parse::<i64>().unwrap() * 3600
                + ts[14..16].parse::<i64>().unwrap() * 60)
                + ts[17..19].parse::<i64>().unwrap();
            let w = secs / 60;
            if w > newest {
                newest = w;
                cur.clear();
            }
            if w < newest || cur.insert(id) {
                emitted += 1;
            }
        }
        assert_eq!(t.unique_ids, ids.len() as u64);
        assert_eq!(t.unique_lines, all.len() as u64);
        assert_eq!(t.window.emitted, emitted);
        assert!(t.window.late > 0 && t.window.rotations >= 59);
    }

    #[test]
    fn plain_lines_put_the_key_in_field_three() {
        let cfg = GenConfig { records: Count(100), format: Format::Plain, ..Default::default() };
        let (out, _) = lines(&cfg);
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        let f: Vec<&str> = first.split_whitespace().collect();
        assert_eq!(f[0].len(), 24);
        assert_eq!(f[2].len(), 36, "{first}");
    }
}
