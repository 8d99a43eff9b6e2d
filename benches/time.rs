//! Criterion: reading `--time-field` text, logdedup's own parser (`src/time.rs`)
//! against jiff's (its RFC 3339 / Temporal parser and `strtime`), on the same
//! inputs: records/s. This is the measurement `src/time.rs` is kept for.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jiff::fmt::strtime;
use jiff::fmt::temporal::DateTimeParser;
use jiff::tz::Offset;
use logdedup::time::TimeFormat;

/// Times of a day of log records, a few milliseconds apart, in several shapes.
fn texts(n: usize, shape: impl Fn(i64, i64) -> String) -> Vec<String> {
    let mut rng = common::Rng(7);
    let start = 1_521_911_725_000i64; // 2018-03-24T17:15:25Z, in ms
    (0..n)
        .map(|i| {
            let ms = start + i as i64 * 3 + (rng.next() % 1000) as i64;
            shape(ms / 1000, ms % 1000)
        })
        .collect()
}

fn civil(secs: i64) -> jiff::civil::DateTime {
    Offset::UTC.to_datetime(jiff::Timestamp::from_second(secs).unwrap())
}

fn ns(ts: jiff::Timestamp) -> Option<i64> {
    i64::try_from(ts.as_nanosecond()).ok()
}

fn time(c: &mut Criterion) {
    const N: usize = 20_000;
    let rfc3339 = texts(N, |s, ms| format!("{}.{ms:03}Z", civil(s).strftime("%Y-%m-%dT%H:%M:%S")));
    let hdfs = texts(N, |s, _| civil(s).strftime("%y%m%d %H%M%S").to_string());
    let apache = texts(N, |s, ms| format!("{},{ms:03}", civil(s).strftime("%Y-%m-%d %H:%M:%S")));
    let mut g = c.benchmark_group("logdedup::time");
    g.throughput(Throughput::Elements(N as u64));

    // Both read every text to the same instant (checked once, outside the timing).
    let parser = DateTimeParser::new();
    let jiff_rfc = |t: &str| ns(parser.parse_timestamp(t).ok()?);
    for t in &rfc3339 {
        assert_eq!(TimeFormat::Auto.parse(t.as_bytes()), jiff_rfc(t), "{t}");
    }
    g.bench_function("rfc3339/logdedup", |b| {
        b.iter(|| rfc3339.iter().filter_map(|t| TimeFormat::Auto.parse(t.as_bytes())).sum::<i64>())
    });
    g.bench_function("rfc3339/jiff", |b| {
        b.iter(|| rfc3339.iter().filter_map(|t| jiff_rfc(t)).sum::<i64>())
    });

    for (slug, format, texts) in [
        ("strftime-hdfs", "%y%m%d %H%M%S", &hdfs),
        ("strftime-ms", "%Y-%m-%d %H:%M:%S,%f", &apache),
    ] {
        let ours = TimeFormat::strftime(format).unwrap();
        let jiff = |t: &str| {
            let dt = strtime::parse(format, t).ok()?.to_datetime().ok()?;
            ns(Offset::UTC.to_timestamp(dt).ok()?)
        };
        for t in texts.iter() {
            assert_eq!(ours.parse(t.as_bytes()), jiff(t), "{format} {t}");
        }
        g.bench_function(format!("{slug}/logdedup"), |b| {
            b.iter(|| texts.iter().filter_map(|t| ours.parse(t.as_bytes())).sum::<i64>())
        });
        g.bench_function(format!("{slug}/jiff"), |b| {
            b.iter(|| texts.iter().filter_map(|t| jiff(t)).sum::<i64>())
        });
    }
    g.finish();
}

criterion_group!(benches, time);
criterion_main!(benches);
