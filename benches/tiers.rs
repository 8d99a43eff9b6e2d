//! Criterion: the tiers, ops/s — roaring (dense and random 64-bit IDs), the
//! bloom filter, and the memory exact tier (also grown against presized at 9M
//! IDs). The random-i64 pair is the measurement behind routing sparse 64-bit IDs to
//! the string path.

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use logdedup::exact::{ExactAnswer, ExactQuery, ExactTier, FingerprintSet, MemoryTier};
use logdedup::hash::Seed;
use logdedup::key::int;
use logdedup::local::{BloomFilter, Growth, ShardedBitmap};
use logdedup::window::WindowIndex;

const N: usize = 1_000_000;

/// The seed every tier bench hashes with, fixed so runs compare.
const SEED: Seed = Seed { bloom: 1, k0: 2, k1: 3 };

/// Roaring on dense and random 64-bit IDs, with its memory beside the
/// fingerprint set's (the other half of the roaring-or-string decision).
fn bitmap(c: &mut Criterion) {
    let mut g = c.benchmark_group("logdedup::local::bitmap");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for p in &common::PARAMS[..2] {
        let ids: Vec<u64> =
            common::ids(p, N).iter().map(|s| int::to_u64(s.parse::<i64>().unwrap())).collect();
        // Memory beside time: the other half of the roaring-or-string decision.
        let mut bm = ShardedBitmap::new(4);
        let mut fs = FingerprintSet::new();
        for &id in &ids {
            bm.insert(id);
            fs.insert(SEED.fingerprint(&id.to_le_bytes()));
        }
        eprintln!(
            "{}: roaring {:.1} B/ID (serialized), fingerprint set {:.1} B/ID, {} distinct",
            p.slug,
            bm.serialized_size() as f64 / bm.len() as f64,
            fs.bytes() as f64 / fs.len() as f64,
            bm.len()
        );
        g.bench_function(p.slug, |b| {
            b.iter_batched(
                || ShardedBitmap::new(4),
                |mut bm| ids.iter().filter(|&&id| bm.insert(id)).count(),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// The fingerprint set alone and the memory tier in batches, on string IDs.
fn memory(c: &mut Criterion) {
    let mut g = c.benchmark_group("logdedup::exact::memory");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for p in &common::PARAMS[1..3] {
        let fps: Vec<u128> =
            common::ids(p, N).iter().map(|s| SEED.fingerprint(s.as_bytes())).collect();
        g.bench_function(format!("fingerprint-set/{}", p.slug), |b| {
            b.iter_batched(
                FingerprintSet::new,
                |mut s| fps.iter().filter(|&&fp| s.insert(fp)).count(),
                BatchSize::LargeInput,
            )
        });
        let queries: Vec<ExactQuery> = fps
            .iter()
            .map(|&fp| ExactQuery {
                fp,
                oldest: WindowIndex(0),
                own: WindowIndex(0),
                local_new: false,
                int: false,
            })
            .collect();
        g.bench_function(format!("tier-batched/{}", p.slug), |b| {
            b.iter_batched(
                MemoryTier::new,
                |mut t| {
                    let mut a = Vec::new();
                    let mut new = 0;
                    for batch in queries.chunks(5000) {
                        t.check_and_insert(batch, &mut a).unwrap();
                        new += a.iter().filter(|&&x| x == ExactAnswer::New).count();
                    }
                    new
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// At the size of the 10M-line stream (9M distinct): a set grown from nothing
/// against one sized for the stream, inserted one by one with a prefetch 16
/// ahead (the gap is what growth and the high loads it runs at cost), and a
/// set grown from nothing in batches as the memory tier inserts.
fn memory_9m(c: &mut Criterion) {
    let big = 10 * N;
    let mut g = c.benchmark_group("logdedup::exact::memory-9m");
    g.throughput(Throughput::Elements(big as u64));
    g.sample_size(10);
    let fps: Vec<u128> = (0..big as u64)
        .map(|i| SEED.fingerprint(&(i % (big as u64 / 10 * 9)).to_le_bytes()))
        .collect();
    // As the memory tier inserts: in batches, many walks in flight.
    g.bench_function("grown-insert-all", |b| {
        b.iter_batched(
            FingerprintSet::new,
            |mut s| {
                let mut seen = 0usize;
                for batch in fps.chunks(4096) {
                    s.insert_all(batch, |_| seen += 1);
                }
                seen
            },
            BatchSize::LargeInput,
        )
    });
    for (name, expected) in [("grown", 0), ("presized", big as u64 / 10 * 9)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || FingerprintSet::with_expected(expected),
                |mut s| {
                    inserts_prefetched(
                        &mut s,
                        &fps,
                        FingerprintSet::prefetch,
                        FingerprintSet::insert,
                    )
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// The bloom filter on UUIDs, one by one and with a prefetch ahead.
fn bloom(c: &mut Criterion) {
    let mut g = c.benchmark_group("logdedup::local::bloom");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    let hs: Vec<u64> =
        common::ids(&common::PARAMS[2], N).iter().map(|s| SEED.bloom_hash(s.as_bytes())).collect();
    g.bench_function("insert/uuid-10pct", |b| {
        b.iter_batched(
            || BloomFilter::new(1e-4, 1 << 20, Growth::Unknown),
            |mut bf| hs.iter().filter(|&&h| bf.insert(h)).count(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("insert-prefetched/uuid-10pct", |b| {
        b.iter_batched(
            || BloomFilter::new(1e-4, 1 << 20, Growth::Unknown),
            |mut bf| inserts_prefetched(&mut bf, &hs, BloomFilter::prefetch, BloomFilter::insert),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Inserts `keys` into `set`, prefetching 16 keys ahead as the pipeline does;
/// returns how many inserts answered true.
fn inserts_prefetched<S, K: Copy>(
    set: &mut S,
    keys: &[K],
    prefetch: fn(&S, K),
    insert: fn(&mut S, K) -> bool,
) -> usize {
    let mut yes = 0;
    for (i, &k) in keys.iter().enumerate() {
        if let Some(&a) = keys.get(i + 16) {
            prefetch(set, a);
        }
        yes += usize::from(insert(set, k));
    }
    yes
}

criterion_group!(benches, bitmap, memory, memory_9m, bloom);
criterion_main!(benches);
