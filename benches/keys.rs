//! Criterion: each key extractor and the hashes, records/s.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logdedup::hash::Seed;
use logdedup::{KeySpec, KeyType};

fn keys(c: &mut Criterion) {
    let ids = common::ids(&common::PARAMS[2], 20_000);
    let data = common::json_lines(&ids);
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut g = c.benchmark_group("logdedup::key");
    g.throughput(Throughput::Elements(lines.len() as u64));
    for (slug, spec) in [
        ("line", vec!["line"]),
        ("json-top", vec![".request_id"]),
        ("json-late-member", vec![".msg"]),
        ("regex", vec![r#"regex:"request_id":"([^"]+)""#]),
        ("field", vec!["field:1"]),
        ("composite", vec![".user", ".request_id"]),
    ] {
        let spec = KeySpec::parse(
            &spec.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            None,
            KeyType::Auto,
        )
        .unwrap();
        let mut scratch = spec.scratch();
        g.bench_function(slug, |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &lines {
                    if let Some(k) = spec.extract(l, &mut scratch) {
                        n += k.bytes().len();
                    }
                }
                n
            })
        });
    }
    g.finish();

    let seed = Seed { bloom: 1, k0: 2, k1: 3 };
    let mut g = c.benchmark_group("logdedup::hash");
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("xxh3-bloom/uuid", |b| {
        b.iter(|| ids.iter().fold(0u64, |a, id| a ^ seed.bloom_hash(id.as_bytes())))
    });
    g.bench_function("siphash13-128/uuid", |b| {
        b.iter(|| ids.iter().fold(0u128, |a, id| a ^ seed.fingerprint(id.as_bytes())))
    });
    g.bench_function("siphash13-128/180B-line", |b| {
        b.iter(|| lines.iter().fold(0u128, |a, l| a ^ seed.fingerprint(l)))
    });
    g.finish();
}

criterion_group!(benches, keys);
criterion_main!(benches);
