//! Criterion: framing throughput (MB/s) across read sizes.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logdedup::framing::{Frame, FrameReader};

fn framing(c: &mut Criterion) {
    let data = common::json_lines(&common::ids(&common::PARAMS[2], 100_000));
    let mut g = c.benchmark_group("logdedup::framing");
    g.throughput(Throughput::Bytes(data.len() as u64));
    for chunk in [4 << 10, 64 << 10, 1 << 20] {
        g.bench_with_input(BenchmarkId::new("chunk", chunk), &chunk, |b, &chunk| {
            b.iter(|| {
                let mut r = FrameReader::new(data.as_slice(), chunk, 1 << 20);
                let mut n = 0;
                while let Some(f) = r.next_frame().unwrap() {
                    if let Frame::Records(rs) = f {
                        n += rs.spans.len();
                    }
                }
                assert_eq!(n, 100_000);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
