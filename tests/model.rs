//! Property tests: the pipeline against a plain model, a `HashSet` of IDs per
//! window with DESIGN's clock rule, on random streams (STYLE 10, roaring's
//! `proptests.rs`, xsv's `prop_count`).
//!
//! The model: the clock is the newest window seen so far; the retained windows
//! are `newest-K+1 ..= newest`; a record older than that is *late* (never
//! inserted); otherwise it is a duplicate iff its ID is in one of the retained
//! windows up to its own, and it is inserted into its own window. Records
//! without a key (an empty value, a JSON `""`, is none), or without a readable
//! time under `--time-field`, are unkeyed.
//! The ID is the key's text (a JSON string's unescaped content, a number's
//! literal), so `"42"` and `42` are one ID; `--key-type int` makes every
//! non-canonical text unkeyed.
//!
//! Strategies for ID kinds, duplicate ratios and event times live here.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, FileFailurePersistence};

use logdedup::config::{BloomMode, Disposition, EmitMode, ExactConfig, OnLate, TimeConfig};
use logdedup::{Config, KeyType};

use crate::util::{self, key_spec, run_pipeline, TestCommand};

// ---------------------------------------------------------------------------
// Streams

/// A distinct ID of the pool records draw from.
#[derive(Debug, Clone)]
enum PoolId {
    Int(i64),
    Str(String),
}

/// How one record is written.
#[derive(Debug, Clone)]
struct RecSpec {
    /// Index into the pool (modulo its length).
    id: usize,
    /// Alternative spelling: an integer quoted (`"42"`), a string `\u`-escaped.
    alt: bool,
    /// 0 no `id`, 1 `"id":null`, 2 not JSON, 3 no `ts`, 4 unreadable `ts`, 5 JSON
    /// whose brackets close but whose grammar is wrong (no key, no time), else whole.
    shape: u8,
    /// Event-time jitter in seconds.
    jitter: i64,
    /// 0 number, 1 quoted number, 2 RFC 3339.
    ts_style: u8,
    /// Second part of a composite key.
    group: u8,
    /// Which decoy members come first (traps for a sloppy scanner).
    decoy: u8,
    /// `id` before `ts`, or after.
    id_first: bool,
    crlf: bool,
}

/// The end of the input.
#[derive(Debug, Clone, Copy)]
enum Tail {
    Newline,
    /// The last record has no `\n`.
    None,
    /// The last record ends with `\r` but no `\n` (so the `\r` is content).
    CrOnly,
}

#[derive(Debug, Clone)]
struct Stream {
    pool: Vec<PoolId>,
    recs: Vec<RecSpec>,
    /// Seconds at record 0.
    base: i64,
    /// Tenths of a second between records.
    step: i64,
    tail: Tail,
}

/// A record as the model sees it.
#[derive(Debug, Clone)]
struct Rec {
    raw: Vec<u8>,
    /// The ID's parts (one, or two for a composite key); `None`: no key.
    key: Option<Vec<Vec<u8>>>,
    /// Event time in seconds; `None`: no readable time.
    t: Option<i64>,
    /// Whether the record is a valid JSON object (what `--tag` tags).
    json: bool,
}

fn pool_id() -> impl Strategy<Value = PoolId> {
    prop_oneof![
        4 => (-20i64..20).prop_map(PoolId::Int),
        2 => any::<i64>().prop_map(PoolId::Int),
        1 => prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0),
            Just(-1),
            // The edges of the dense (roaring) range.
            Just(4_294_967_295),
            Just(4_294_967_296),
            Just(-4_294_967_296),
            Just(-4_294_967_297),
            Just(-1_608_999_687_919_862_906),
        ]
        .prop_map(PoolId::Int),
        3 => "[a-z]{1,3}".prop_map(PoolId::Str),
        // Digit strings: equal to an integer's text ("7") or not canonical ("07", "-0").
        2 => "[-+]?[0-9]{1,3}".prop_map(PoolId::Str),
        1 => prop_oneof![
            Just("042".to_string()),
            Just("-0".to_string()),
            Just("+1".to_string()),
            Just(String::new()),
            Just("a\"b".to_string()),
            Just("x\\y".to_string()),
            Just("tab\there\nnl".to_string()),
            Just("é😀".to_string()),
            Just("id".to_string()),
            Just("9223372036854775808".to_string()),
        ]
        .prop_map(PoolId::Str),
    ]
}

fn rec_spec() -> impl Strategy<Value = RecSpec> {
    (
        any::<usize>(),
        any::<bool>(),
        0u8..40,
        prop_oneof![3 => Just(0i64), 2 => -3i64..=3, 1 => -40i64..=40, 1 => -400i64..=400],
        0u8..3,
        0u8..3,
        0u8..8,
        any::<bool>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(id, alt, shape, jitter, ts_style, group, decoy, id_first, crlf)| RecSpec {
            id,
            alt,
            shape,
            jitter,
            ts_style,
            group,
            decoy,
            id_first,
            crlf,
        })
}

fn stream(max_recs: usize) -> impl Strategy<Value = Stream> {
    (
        // A small pool gives many duplicates, a large one few.
        prop::collection::vec(pool_id(), 1..40),
        prop::collection::vec(rec_spec(), 0..max_recs),
        -100i64..100,
        prop_oneof![Just(0i64), 0i64..5, 0i64..40],
        prop_oneof![Just(Tail::Newline), Just(Tail::None), Just(Tail::CrOnly)],
    )
        .prop_map(|(pool, recs, base, step, tail)| Stream { pool, recs, base, step, tail })
}

/// A JSON string literal. `all` writes every character as `\uXXXX` (surrogate
/// pairs beyond the BMP), otherwise only what must be escaped is.
fn json_str(s: &str, all: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if all {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{:04x}", u);
            }
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch seconds (Hinnant's civil_from_days).
fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Whether `text` is the canonical decimal spelling of an i64 (independent of
/// the crate's parser: round-trip through std).
fn canonical_int(text: &[u8]) -> bool {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i64>().ok().map(|v| v.to_string() == s))
        .unwrap_or(false)
}

/// Renders a stream into records (bytes and what the model knows of each).
fn render(s: &Stream) -> Vec<Rec> {
    let n = s.recs.len();
    let mut recs = Vec::with_capacity(n);
    for (i, r) in s.recs.iter().enumerate() {
        let t = s.base + (i as i64 * s.step) / 10 + r.jitter;
        let id = &s.pool[r.id % s.pool.len()];
        let (id_json, id_text) = match id {
            PoolId::Int(v) if r.alt => (format!("\"{v}\""), v.to_string().into_bytes()),
            PoolId::Int(v) => (v.to_string(), v.to_string().into_bytes()),
            PoolId::Str(x) => (json_str(x, r.alt), x.clone().into_bytes()),
        };
        let ts_json = match r.ts_style {
            0 => t.to_string(),
            1 => format!("\"{t}\""),
            _ => format!("\"{}\"", rfc3339(t)),
        };
        let mut members: Vec<String> = Vec::new();
        match r.decoy % 8 {
            1 => members.push(r#""msg":"say \"id\":999, \"ts\":1""#.into()),
            2 => members.push(r#""x":{"id":"nested","ts":5}"#.into()),
            3 => members.push(r#""arr":[{"id":1},"]","}"]"#.into()),
            4 => members.push(r#""id.x":5,"idx":6,"i":7"#.into()),
            5 => members.push(r#""\u0069dd":"escaped name that is not id""#.into()),
            _ => {}
        }
        let mut id_member = Some(format!("\"id\":{id_json}"));
        let mut key = Some(vec![id_text]);
        let mut time = Some(t);
        let mut ts_member = Some(format!("\"ts\":{ts_json}"));
        match r.shape {
            0 => {
                id_member = None;
                key = None;
            }
            1 => {
                id_member = Some("\"id\":null".into());
                key = None;
            }
            3 => {
                ts_member = None;
                time = None;
            }
            4 => {
                ts_member = Some("\"ts\":\"soon\"".into());
                time = None;
            }
            _ => {}
        }
        let (a, b) = if r.id_first { (id_member, ts_member) } else { (ts_member, id_member) };
        members.extend(a);
        members.extend(b);
        members.push(format!("\"g\":{}", r.group));
        if let Some(k) = &mut key {
            k.push(r.group.to_string().into_bytes());
        }
        members.push(format!("\"n\":{i}"));
        let json = r.shape != 2 && r.shape != 5;
        let mut raw = if r.shape == 2 {
            key = None;
            time = None;
            format!("not json {i} \"id\":{id_json}").into_bytes()
        } else if r.shape == 5 {
            key = None;
            time = None;
            match r.group {
                0 => format!("{{{},}}", members.join(",")),
                1 => format!("{{{},\"x\":tru}}", members.join(",")),
                _ => format!("{{\"x\":\"a\tb\",{}}}", members.join(",")),
            }
            .into_bytes()
        } else {
            format!("{{{}}}", members.join(",")).into_bytes()
        };
        let last = i + 1 == n;
        match (last, s.tail) {
            (true, Tail::None) => {}
            (true, Tail::CrOnly) => raw.push(b'\r'),
            _ => raw.extend_from_slice(if r.crlf { b"\r\n" } else { b"\n" }),
        }
        recs.push(Rec { raw, key, t: time, json });
    }
    recs
}

// ---------------------------------------------------------------------------
// Knobs: the flags a case runs with

#[derive(Debug, Clone)]
struct Knobs {
    emit: EmitMode,
    tag: bool,
    key_type: KeyType,
    composite: bool,
    /// Window width in seconds and retention; `None`: one window, arrival time.
    window: Option<(i64, u32)>,
    on_unkeyed: Disposition,
    on_late: OnLate,
    /// `--local-bloom on --fpr 0.5 --bloom-initial-capacity 4` (false positives
    /// galore, which the memory tier must absorb), or auto/off.
    bloom: BloomMode,
    tiny_bloom: bool,
    chunk: usize,
    max_read: usize,
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..16, 16usize..4096, 4096usize..=65536]
}

/// `--retain`: the per-window layouts (1-4), the layouts for a large K just past
/// them, and K far above the windows a stream reaches (sparse windows, one ID
/// over hundreds of them).
fn retains() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 1u32..=4, 2 => 5u32..=12, 1 => 50u32..=900, 1 => Just(100_000)]
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        prop_oneof![Just(EmitMode::New), Just(EmitMode::Dups), Just(EmitMode::All)],
        any::<bool>(),
        prop_oneof![4 => Just(KeyType::Auto), 2 => Just(KeyType::Str), 1 => Just(KeyType::Int)],
        prop::bool::weighted(0.25),
        prop::option::weighted(
            0.8,
            (prop_oneof![Just(1i64), Just(2), Just(5), Just(10), Just(60)], retains()),
        ),
        prop_oneof![Just(Disposition::Emit), Just(Disposition::Drop), Just(Disposition::Reject)],
        prop_oneof![Just(OnLate::Emit), Just(OnLate::Drop)],
        prop_oneof![Just(BloomMode::Auto), Just(BloomMode::On), Just(BloomMode::Off)],
        any::<bool>(),
        sizes(),
        sizes(),
    )
        .prop_map(
            |(
                emit,
                tag,
                key_type,
                composite,
                window,
                on_unkeyed,
                on_late,
                bloom,
                tiny,
                chunk,
                max_read,
            )| {
                Knobs {
                    emit,
                    tag: tag && emit == EmitMode::All,
                    // A composite key is a string: `--key-type int` refuses it.
                    key_type: if composite && key_type == KeyType::Int {
                        KeyType::Auto
                    } else {
                        key_type
                    },
                    composite,
                    window,
                    on_unkeyed,
                    on_late,
                    bloom,
                    tiny_bloom: tiny && bloom == BloomMode::On,
                    chunk,
                    max_read,
                }
            },
        )
}

fn config(k: &Knobs, reject: Option<&std::path::Path>) -> Config {
    let mut c = Config::default();
    let keys: &[&str] = if k.composite { &[".id", ".g"] } else { &[".id"] };
    c.key = key_spec(keys, None, k.key_type);
    c.emit.mode = k.emit;
    c.emit.tag = k.tag.then(|| "dup".to_string());
    c.emit.reject_file = reject.map(|p| p.to_path_buf());
    c.policies.on_unkeyed = k.on_unkeyed;
    c.policies.on_late = k.on_late;
    c.local.bloom = k.bloom;
    if k.tiny_bloom {
        c.local.fpr = 0.5;
        c.local.bloom_initial_capacity = Some(4);
    }
    if let Some((w, retain)) = k.window {
        c.window.width_ns = Some(w * 1_000_000_000);
        c.window.retain = retain;
        c.time = Some(TimeConfig { field: key_spec(&[".ts"], None, KeyType::Str), format: None });
    }
    c.framing.chunk_bytes = k.chunk;
    c
}

fn args(k: &Knobs, reject: Option<&std::path::Path>) -> Vec<String> {
    let mut a: Vec<String> = vec!["--key".into(), ".id".into()];
    if k.composite {
        a.extend(["--key".into(), ".g".into()]);
    }
    let kt = match k.key_type {
        KeyType::Auto => "auto",
        KeyType::Int => "int",
        KeyType::Str => "str",
    };
    let emit = match k.emit {
        EmitMode::New => "new",
        EmitMode::Dups => "dups",
        EmitMode::All => "all",
    };
    let disp = |d: Disposition| match d {
        Disposition::Emit => "emit",
        Disposition::Drop => "drop",
        Disposition::Reject => "reject",
    };
    let bloom = match k.bloom {
        BloomMode::Auto => "auto",
        BloomMode::On => "on",
        BloomMode::Off => "off",
    };
    let late = match k.on_late {
        OnLate::Emit => "emit",
        OnLate::Drop => "drop",
    };
    for (f, v) in [
        ("--key-type", kt),
        ("--emit", emit),
        ("--on-unkeyed", disp(k.on_unkeyed)),
        ("--on-late", late),
        ("--local-bloom", bloom),
    ] {
        a.extend([f.to_string(), v.to_string()]);
    }
    if k.tag {
        a.extend(["--tag".into(), "dup".into()]);
    }
    if k.tiny_bloom {
        a.extend(["--fpr".into(), "0.5".into(), "--bloom-initial-capacity".into(), "4".into()]);
    }
    if let Some(p) = reject {
        a.extend(["--reject-file".into(), p.display().to_string()]);
    }
    if let Some((w, retain)) = k.window {
        a.extend(["--window".into(), format!("{w}s"), "--retain".into(), retain.to_string()]);
        a.extend(["--time-field".into(), ".ts".into()]);
    }
    a
}

// ---------------------------------------------------------------------------
// The model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    New,
    Dup,
    Unkeyed,
    Late,
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    out: Vec<u8>,
    rejected: Vec<u8>,
    new: u64,
    dup: u64,
    unkeyed: u64,
    late: u64,
}

/// The verdict of every record: HashMap<window, HashSet<ID>> and the clock rule.
fn verdicts(recs: &[Rec], key_type: KeyType, window: Option<(i64, u32)>) -> Vec<V> {
    let mut seen: HashMap<i64, HashSet<Vec<Vec<u8>>>> = HashMap::new();
    let mut newest: Option<i64> = None;
    recs.iter()
        .map(|r| {
            let Some(key) = &r.key else { return V::Unkeyed };
            if key.iter().any(Vec::is_empty) {
                return V::Unkeyed; // an empty value is no key
            }
            if key_type == KeyType::Int && !canonical_int(&key[0]) {
                return V::Unkeyed;
            }
            let (w, retain) = match window {
                Some((width, retain)) => match r.t {
                    Some(t) => (t.div_euclid(width), retain as i64),
                    None => return V::Unkeyed,
                },
                None => (0, 1),
            };
            let n = newest.map_or(w, |n| n.max(w));
            newest = Some(n);
            let oldest = n - retain + 1;
            if w < oldest {
                return V::Late;
            }
            let dup = (oldest..=w).any(|x| seen.get(&x).is_some_and(|s| s.contains(key)));
            seen.entry(w).or_default().insert(key.clone());
            if dup {
                V::Dup
            } else {
                V::New
            }
        })
        .collect()
}

/// `raw` with `"dup":B` as its last member (the model's objects all have members).
fn tagged(raw: &[u8], dup: bool) -> Vec<u8> {
    assert_eq!(raw[0], b'{');
    let close = raw.iter().rposition(|&b| b == b'}').expect("an object");
    let mut v = raw[..close].to_vec();
    v.extend_from_slice(format!(",\"dup\":{dup}").as_bytes());
    v.extend_from_slice(&raw[close..]);
    v
}

/// Keeps only the first key part unless the key is composite.
fn single(recs: &[Rec], composite: bool) -> Vec<Rec> {
    recs.iter()
        .cloned()
        .map(|mut r| {
            if let (Some(key), false) = (&mut r.key, composite) {
                key.truncate(1);
            }
            r
        })
        .collect()
}

fn expected(recs: &[Rec], k: &Knobs) -> Expected {
    let recs = single(recs, k.composite);
    let vs = verdicts(&recs, k.key_type, k.window);
    let mut e = Expected::default();
    for (r, v) in recs.iter().zip(vs) {
        let write = |e: &mut Expected, dup: Option<bool>| match (k.tag, dup) {
            (true, Some(d)) => e.out.extend(tagged(&r.raw, d)),
            _ => e.out.extend_from_slice(&r.raw),
        };
        match v {
            V::New => {
                e.new += 1;
                if k.emit != EmitMode::Dups {
                    write(&mut e, Some(false));
                }
            }
            V::Dup => {
                e.dup += 1;
                if k.emit != EmitMode::New {
                    write(&mut e, Some(true));
                }
            }
            // Neither new nor a duplicate: `--emit dups` leaves them out, `--tag`
            // tags them `false` (when they are JSON objects).
            V::Unkeyed => {
                e.unkeyed += 1;
                match k.on_unkeyed {
                    Disposition::Emit if k.emit == EmitMode::Dups => {}
                    Disposition::Emit => write(&mut e, r.json.then_some(false)),
                    Disposition::Drop => {}
                    Disposition::Reject => e.rejected.extend_from_slice(&r.raw),
                }
            }
            V::Late => {
                e.late += 1;
                if k.on_late == OnLate::Emit && k.emit != EmitMode::Dups {
                    write(&mut e, r.json.then_some(false));
                }
            }
        }
    }
    e
}

fn input(recs: &[Rec]) -> Vec<u8> {
    recs.iter().flat_map(|r| r.raw.iter().copied()).collect()
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check_in_process(s: &Stream, k: &Knobs) -> Result<(), TestCaseError> {
    let recs = render(s);
    let want = expected(&recs, k);
    let dir = tempfile::tempdir().unwrap();
    let reject = (k.on_unkeyed == Disposition::Reject).then(|| dir.path().join("rejects"));
    let (out, stats) = run_pipeline(config(k, reject.as_deref()), input(&recs), k.max_read)
        .map_err(|e| TestCaseError::fail(format!("pipeline failed: {e}")))?;
    prop_assert_eq!(show(&out), show(&want.out));
    if let Some(p) = &reject {
        prop_assert_eq!(show(&std::fs::read(p).unwrap()), show(&want.rejected));
    }
    prop_assert_eq!(
        (stats.new, stats.duplicates, stats.unkeyed, stats.late),
        (want.new, want.dup, want.unkeyed, want.late)
    );
    prop_assert_eq!(stats.records_in, recs.len() as u64);
    Ok(())
}

/// `cases` per property, or `PROPTEST_CASES` when set (for a long soak run).
pub fn pt(cases: u32) -> PtConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    PtConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..PtConfig::default()
    }
}

proptest! {
    #![proptest_config(pt(160))]

    /// The pipeline in process, every knob, read sizes 1 B .. 64 KiB.
    #[test]
    fn pipeline_matches_model(s in stream(120), k in knobs()) {
        check_in_process(&s, &k)?;
    }
}

proptest! {
    #![proptest_config(pt(24))]

    /// Longer streams, fewer cases: more rotations and more growth.
    #[test]
    fn pipeline_matches_model_long(s in stream(1500), k in knobs()) {
        check_in_process(&s, &k)?;
    }
}

proptest! {
    #![proptest_config(pt(20))]

    /// The same, through the real executable.
    #[test]
    fn binary_matches_model(s in stream(150), k in knobs()) {
        let recs = render(&s);
        let want = expected(&recs, &k);
        let dir = tempfile::tempdir().unwrap();
        let reject = (k.on_unkeyed == Disposition::Reject).then(|| dir.path().join("rejects"));
        let a = args(&k, reject.as_deref());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = TestCommand::new(&a).stdin(input(&recs)).run();
        out.assert_ok();
        prop_assert_eq!(show(&out.stdout), show(&want.out));
        if let Some(p) = &reject {
            prop_assert_eq!(show(&std::fs::read(p).unwrap()), show(&want.rejected));
        }
        prop_assert_eq!(
            (out.stat("new"), out.stat("duplicates"), out.stat("unkeyed"), out.stat("late")),
            (want.new, want.dup, want.unkeyed, want.late)
        );
    }
}

// ---------------------------------------------------------------------------
// `--exact none`: the bloom alone. No false negatives, ever.

proptest! {
    #![proptest_config(pt(64))]

    /// Under `--exact none` every model duplicate is a duplicate; a model-new
    /// record may be called a duplicate (a false positive), nothing else differs.
    #[test]
    fn exact_none_has_no_false_negatives(
        s in stream(400),
        fpr in prop_oneof![Just(0.01f64), Just(0.1), Just(0.3), Just(0.6)],
        cap in prop_oneof![Just(4u64), Just(64), Just(1 << 20)],
        window in prop::option::of((prop_oneof![Just(1i64), Just(5), Just(60)], retains())),
        chunk in sizes(),
    ) {
        let k = Knobs {
            emit: EmitMode::All,
            tag: true,
            key_type: KeyType::Auto,
            composite: false,
            window,
            on_unkeyed: Disposition::Emit,
            on_late: OnLate::Emit,
            bloom: BloomMode::Auto,
            tiny_bloom: false,
            chunk,
            max_read: chunk,
        };
        let recs = render(&s);
        let mut c = config(&k, None);
        c.exact = ExactConfig::None;
        c.local.fpr = fpr;
        c.local.bloom_initial_capacity = Some(cap);
        let (out, stats) = run_pipeline(c, input(&recs), chunk)
            .map_err(|e| TestCaseError::fail(format!("pipeline failed: {e}")))?;
        let vs = verdicts(&single(&recs, false), KeyType::Auto, window);
        let got = util::split_records(&out);
        prop_assert_eq!(got.len(), recs.len(), "--emit all writes every record");
        let mut false_pos = 0u64;
        for ((r, v), g) in recs.iter().zip(&vs).zip(&got) {
            match v {
                V::Dup => prop_assert_eq!(show(g), show(&tagged(&r.raw, true)), "false negative"),
                V::New => {
                    if *g == tagged(&r.raw, true).as_slice() {
                        false_pos += 1;
                    } else {
                        prop_assert_eq!(show(g), show(&tagged(&r.raw, false)));
                    }
                }
                // Neither new nor a duplicate: tagged `false` if a JSON object.
                V::Unkeyed | V::Late if r.json => {
                    prop_assert_eq!(show(g), show(&tagged(&r.raw, false)))
                }
                V::Unkeyed | V::Late => prop_assert_eq!(show(g), show(&r.raw)),
            }
        }
        let model_dups = vs.iter().filter(|v| **v == V::Dup).count() as u64;
        prop_assert_eq!(stats.duplicates, model_dups + false_pos);
    }
}

// ---------------------------------------------------------------------------
// Measured: a bloom shrunk until it lies, with and without the exact tier.

/// `n` distinct string IDs, then `dups` repeats of the first ones.
fn unique_strings(n: usize, dups: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n * 12);
    for i in 0..n {
        let _ = writeln!(FmtVec(&mut v), "id-{i:x}-{}", i.wrapping_mul(2_654_435_761) % 9973);
    }
    for i in 0..dups {
        let _ = writeln!(FmtVec(&mut v), "id-{i:x}-{}", i.wrapping_mul(2_654_435_761) % 9973);
    }
    v
}

struct FmtVec<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for FmtVec<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `--local-bloom on --fpr 0.5 --bloom-initial-capacity 4 --exact memory`: the
/// bloom says *maybe* to a large share of new IDs, and the memory tier still
/// emits every unique record exactly once.
#[test]
fn tiny_bloom_in_front_of_memory_loses_nothing() {
    let (n, dups) = (200_000, 20_000);
    let mut c = Config::default();
    c.key = key_spec(&["line"], None, KeyType::Str);
    c.local.bloom = BloomMode::On;
    c.local.fpr = 0.5;
    c.local.bloom_initial_capacity = Some(4);
    let input = unique_strings(n, dups);
    let (out, stats) = run_pipeline(c, input.clone(), 1 << 16).unwrap();
    assert!(out == unique_strings(n, 0), "every unique record, once, in order");
    assert_eq!((stats.emitted, stats.duplicates), (n as u64, dups as u64));
    assert!(stats.false_maybes > 1000, "the bloom must really lie: {stats:?}");
    assert_eq!(stats.maybes, stats.false_maybes + stats.confirmed_dups);
    assert_eq!(stats.confirmed_dups, dups as u64);
}

/// `--exact none --fpr 0.01` drops no more unique records than the fpr predicts
/// (≤ 1.5 × fpr of the uniques), with one filter sized for the stream and with
/// growth from a small one. (A filter sized far above the stream would pass
/// trivially: the capacities are chosen so that the bloom fills.)
#[test]
fn exact_none_drops_no_more_than_the_fpr() {
    let n = 200_000;
    let fpr = 0.01;
    let input = unique_strings(n, 0);
    for cap in [n as u64, 1000] {
        let mut c = Config::default();
        c.key = key_spec(&["line"], None, KeyType::Str);
        c.exact = ExactConfig::None;
        c.local.fpr = fpr;
        c.local.bloom_initial_capacity = Some(cap);
        let (out, stats) = run_pipeline(c, input.clone(), 1 << 16).unwrap();
        let dropped = n as u64 - stats.emitted;
        assert_eq!(dropped, stats.duplicates);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count() as u64, stats.emitted);
        let rate = dropped as f64 / n as f64;
        assert!(stats.maybes > 0, "the bloom was not exercised: {stats:?}");
        assert!(
            rate <= 1.5 * fpr,
            "capacity {cap}: {dropped} of {n} unique records dropped ({rate:.4} > 1.5 x {fpr})"
        );
    }
}

/// Bits per ID of the bloom filters after `n` unique string IDs under `--exact
/// none`, and the share of them wrongly dropped.
fn bloom_bits_per_id(n: usize, fpr: f64, initial_capacity: u64) -> (f64, f64) {
    let mut c = Config::default();
    c.key = key_spec(&["line"], None, KeyType::Str);
    c.exact = ExactConfig::None;
    c.local.fpr = fpr;
    c.local.bloom_initial_capacity = Some(initial_capacity);
    let (_, stats) = run_pipeline(c, unique_strings(n, 0), 1 << 20).unwrap();
    (stats.bloom_bits as f64 / n as f64, stats.duplicates as f64 / n as f64)
}

/// A bloom sized for its stream (`--bloom-initial-capacity` = the distinct IDs,
/// so it never grows) stays within 1.8 × the information-theoretic bound,
/// log2(1/fpr) bits per ID (issue 2), and drops no more than the fpr allows.
/// Measured on 1M keys: 11.1 bits per ID at 1e-2 (bound 6.6, 1.67×), 23.5 at 1e-4
/// (bound 13.3, 1.77×).
#[test]
fn bloom_sized_for_its_stream_within_1_8x_of_the_bound() {
    let n = 1_000_000;
    for fpr in [1e-2, 1e-4] {
        let (per_id, dropped) = bloom_bits_per_id(n, fpr, n as u64);
        let bound = (1.0 / fpr).log2();
        assert!(per_id <= 1.8 * bound, "fpr {fpr}: {per_id:.2} bits per ID > 1.8 x {bound:.2}");
        assert!(dropped <= 1.5 * fpr, "fpr {fpr}: dropped {dropped}");
    }
}

/// With growth included (issue 25: within 2.5×): a filter whose hint is a ninth
/// of the distinct IDs, as the default start of 1M is of the 10M set's 9M,
/// grows to them in 4 more stages. Measured: 32.5 bits per ID at 1e-4 (2.44×, as
/// the model gives; 2.62× at 1e-2 by the model, where the bound's 6.6 bits leave
/// less room for the stages' tighter rates).
#[test]
fn bloom_grown_from_a_ninth_within_2_5x_of_the_bound() {
    let (n, fpr) = (1_000_000, 1e-4);
    let (per_id, dropped) = bloom_bits_per_id(n, fpr, n as u64 / 9);
    let bound = (1.0 / fpr).log2();
    assert!(per_id <= 2.5 * bound, "{per_id:.2} bits per ID > 2.5 x {bound:.2}");
    assert!(dropped <= 1.5 * fpr, "dropped {dropped}");
}

// ---------------------------------------------------------------------------
// No input makes anything panic (issue 2, "Errors"): random bytes, biased
// towards JSON, numbers and times so the scanners go deep, through every key
// extractor and the time parser, with read sizes of 1..64 bytes.

fn fuzz_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => any::<u8>().prop_map(|b| vec![b]),
        1 => prop::sample::select(vec![
            &b"{"[..], b"}", b"[", b"]", b"\"", b"\\", b":", b",", b"\"id\"", b"\"ts\"", b"\"a\"",
            b"\"b\"", b"\"x.y\"", b"null", b"true", b"-", b".", b" ", b"\t", b"|", b"\n", b"\r",
            b"\r\n", b"\\u", b"d83d", b"dc00", b"\\\"", b"0", b"42", b"-9223372036854775808",
            b"99999999999999999999", b"1521911725", b"2018-03-24T17:15:25.5+02:00", b"T", b"Z",
            b"Dec 10 06:55:46", b"081109 203615", b"1970-032", b"12:30 pm", b"\xff", b"\xc3",
            b"\xe2\x82", b"blk_-1", b"{\"id\":1,", b"\"ts\":5,", b"\"a\":\"q\"}",
        ])
        .prop_map(|t| t.to_vec()),
    ];
    prop::collection::vec(token, 0..max).prop_map(|v| v.concat())
}

const FUZZ_KEYS: &[&[&str]] = &[
    &["line"],
    &[".id"],
    &[".a.b"],
    &[r#"."x.y""#],
    &[r"regex:(\d+)"],
    &["regex:a(b)?"],
    &[r"regex:blk_(-?\d+)"],
    &["field:1"],
    &["field:3"],
    &[".id", "field:2"],
    &[r"regex:(\S+)", ".ts", "line"],
    &[".ts", ".id", ".a"],
];

const FUZZ_FORMATS: &[Option<&str>] = &[
    None,
    Some("%s"),
    Some("%s.%f"),
    Some("%Y-%m-%d %H:%M:%S"),
    Some("%FT%T%z"),
    Some("%b %e %T"),
    Some("%y%m%d %H%M%S"),
    Some("%Y-%j"),
    Some("%I:%M %p"),
    Some("[%a %b %d %T %Y]"),
];

#[derive(Debug, Clone)]
struct FuzzKnobs {
    keys: usize,
    delimiter: Option<u8>,
    key_type: KeyType,
    time: Option<(usize, usize)>,
    window: Option<(i64, u32)>,
    max_record: usize,
    tag: bool,
    bloom: BloomMode,
    chunk: usize,
    max_read: usize,
}

fn fuzz_knobs() -> impl Strategy<Value = FuzzKnobs> {
    (
        0..FUZZ_KEYS.len(),
        prop::option::of(prop::sample::select(vec![b'|', b',', b' ', b'\t', b'"'])),
        prop_oneof![Just(KeyType::Auto), Just(KeyType::Str), Just(KeyType::Int)],
        prop::option::of((0..FUZZ_KEYS.len(), 0..FUZZ_FORMATS.len())),
        prop::option::of((1i64..100_000, 1u32..=3)),
        prop_oneof![3 => Just(1usize << 20), 1 => 1usize..64],
        any::<bool>(),
        prop_oneof![Just(BloomMode::Auto), Just(BloomMode::On)],
        1usize..=64,
        1usize..=64,
    )
        .prop_map(
            |(keys, delimiter, kt, time, window, max_record, tag, bloom, chunk, max_read)| {
                FuzzKnobs {
                    keys,
                    delimiter,
                    key_type: if FUZZ_KEYS[keys].len() > 1 && kt == KeyType::Int {
                        KeyType::Auto
                    } else {
                        kt
                    },
                    time,
                    // `--time-field` needs `--window`.
                    window: window.or(time.map(|_| (60_000, 1))),
                    max_record,
                    tag,
                    bloom,
                    chunk,
                    max_read,
                }
            },
        )
}

fn fuzz_config(k: &FuzzKnobs) -> Config {
    let mut c = Config::default();
    c.key = key_spec(FUZZ_KEYS[k.keys], k.delimiter, k.key_type);
    if let Some((field, fmt)) = k.time {
        c.time = Some(TimeConfig {
            field: key_spec(&FUZZ_KEYS[field][..1], k.delimiter, KeyType::Str),
            format: FUZZ_FORMATS[fmt].map(str::to_string),
        });
    }
    if let Some((w, retain)) = k.window {
        c.window.width_ns = Some(w * 1_000_000);
        c.window.retain = retain;
    }
    c.framing.max_record_bytes = k.max_record;
    c.framing.chunk_bytes = k.chunk;
    c.emit.mode = EmitMode::All;
    c.emit.tag = k.tag.then(|| "t".to_string());
    c.local.bloom = k.bloom;
    c.local.bloom_initial_capacity = Some(2);
    c.local.fpr = 0.3;
    c
}

proptest! {
    #![proptest_config(pt(400))]

    /// The pipeline survives any bytes, counts every record, and under `--emit
    /// all` (no tag) writes its input back byte for byte.
    #[test]
    fn no_input_panics_the_pipeline(input in fuzz_bytes(300), k in fuzz_knobs()) {
        let (out, stats) = run_pipeline(fuzz_config(&k), input.clone(), k.max_read)
            .map_err(|e| TestCaseError::fail(format!("pipeline failed: {e}")))?;
        prop_assert_eq!(stats.records_in, util::split_records(&input).len() as u64);
        if !k.tag {
            prop_assert_eq!(show(&out), show(&input));
        } else {
            prop_assert!(out.len() >= input.len());
        }
    }

    /// The extractors and the time parser, called directly.
    #[test]
    fn no_input_panics_the_extractors(input in fuzz_bytes(200), fmt in ".{0,12}") {
        for keys in FUZZ_KEYS {
            for d in [None, Some(b'|'), Some(b' ')] {
                for kt in [KeyType::Auto, KeyType::Str] {
                    let spec = key_spec(keys, d, kt);
                    let mut scratch = spec.scratch();
                    let _ = spec.extract(&input, &mut scratch);
                    let mut scratch = spec.scratch();
                    let _ = spec.extract_text(&input, &mut scratch);
                    // Read together with a time field (in one walk where all are
                    // top-level JSON names).
                    for time in [".ts", ".id", "field:1"] {
                        let t = key_spec(&[time], d, KeyType::Str);
                        let fields = logdedup::key::Fields::new(spec.clone(), Some(t));
                        let mut scratch = fields.scratch();
                        fields.read(&input, &mut scratch);
                        let _ = fields.time(&input, &mut scratch);
                        let _ = fields.key(&input, &mut scratch);
                    }
                }
            }
        }
        for f in FUZZ_FORMATS {
            let tf = match f {
                Some(f) => logdedup::time::TimeFormat::strftime(f).unwrap(),
                None => logdedup::time::TimeFormat::Auto,
            };
            let _ = tf.parse(&input);
        }
        // Any format string compiles or is refused; a compiled one parses anything.
        if let Ok(tf) = logdedup::time::TimeFormat::strftime(&fmt) {
            let _ = tf.parse(&input);
        }
    }
}

proptest! {
    #![proptest_config(pt(24))]

    /// The binary survives any bytes too: exit 0, no panic, input echoed under `--emit all`.
    #[test]
    fn no_input_panics_the_binary(input in fuzz_bytes(400), k in fuzz_knobs()) {
        let mut a: Vec<String> = Vec::new();
        for key in FUZZ_KEYS[k.keys] {
            a.extend(["--key".into(), key.to_string()]);
        }
        if let Some(d) = k.delimiter {
            a.extend(["--delimiter".into(), (d as char).to_string()]);
        }
        if let Some((field, fmt)) = k.time {
            a.extend(["--time-field".into(), FUZZ_KEYS[field][0].to_string()]);
            if let Some(f) = FUZZ_FORMATS[fmt] {
                a.extend(["--time-format".into(), f.to_string()]);
            }
        }
        if let Some((w, retain)) = k.window {
            a.extend(["--window".into(), format!("{w}ms"), "--retain".into(), retain.to_string()]);
        }
        a.extend(["--emit".into(), "all".into(), "--max-record-bytes".into(), k.max_record.to_string()]);
        let kt = match k.key_type {
            KeyType::Auto => "auto",
            KeyType::Int => "int",
            KeyType::Str => "str",
        };
        a.extend(["--key-type".into(), kt.into()]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = TestCommand::new(&a).stdin(&input).run();
        prop_assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
        o.assert_ok();
        prop_assert_eq!(show(&o.stdout), show(&input));
        prop_assert_eq!(o.stat("records_in"), util::split_records(&input).len() as u64);
    }
}

proptest! {
    #![proptest_config(pt(200))]

    /// `--max-record-bytes`: a record whose content (without `\r\n`/`\n`) is
    /// longer than the limit is oversized, whatever the read sizes; under
    /// `--on-oversized drop --emit all` exactly the others are written.
    #[test]
    fn oversized_is_decided_on_content_length(
        lines in prop::collection::vec((0usize..40, any::<bool>(), any::<u8>()), 0..40),
        tail in prop_oneof![Just(Tail::Newline), Just(Tail::None), Just(Tail::CrOnly)],
        max in 1usize..24,
        chunk in 1usize..64,
        max_read in 1usize..64,
    ) {
        let mut input = Vec::new();
        let mut want = Vec::new();
        let mut oversized = 0;
        let mut records = 0u64;
        let n = lines.len();
        for (i, (len, crlf, fill)) in lines.iter().enumerate() {
            let fill = if *fill == b'\n' || *fill == b'\r' { b'x' } else { *fill };
            let mut raw = vec![fill; *len];
            let last = i + 1 == n;
            match (last, tail) {
                (true, Tail::None) => {}
                (true, Tail::CrOnly) => raw.push(b'\r'),
                _ => raw.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" }),
            }
            if raw.is_empty() {
                continue; // no bytes at all after the last newline: no record
            }
            records += 1;
            if util::content(&raw).len() > max {
                oversized += 1;
            } else {
                want.extend_from_slice(&raw);
            }
            input.extend_from_slice(&raw);
        }
        let mut c = Config::default();
        c.framing.max_record_bytes = max;
        c.policies.on_oversized = Disposition::Drop;
        c.framing.chunk_bytes = chunk;
        c.emit.mode = EmitMode::All;
        let (out, stats) = run_pipeline(c, input.clone(), max_read)
            .map_err(|e| TestCaseError::fail(format!("pipeline failed: {e}")))?;
        prop_assert_eq!(stats.records_in, records);
        prop_assert_eq!(stats.oversized, oversized);
        prop_assert_eq!(stats.dropped, oversized);
        prop_assert_eq!(show(&out), show(&want));
    }
}
