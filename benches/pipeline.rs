//! Criterion: the whole pipeline in process, records/s, per ID kind and key.

mod common;

use std::io::{self, Write};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logdedup::{Config, KeySpec, KeyType, Pipeline};

struct Null;

impl Write for Null {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("logdedup::pipeline");
    g.sample_size(10);
    for p in common::PARAMS {
        let data = common::json_lines(&common::ids(p, 200_000));
        g.throughput(Throughput::Bytes(data.len() as u64));
        for (slug, key, exact) in [
            ("request_id/memory", ".request_id", "memory"),
            ("request_id/none", ".request_id", "none"),
            ("line/memory", "line", "memory"),
        ] {
            g.bench_function(format!("{}/{slug}", p.slug), |b| {
                b.iter(|| {
                    let config = Config {
                        key: KeySpec::parse(&[key.to_string()], None, KeyType::Auto).unwrap(),
                        exact: if exact == "none" {
                            logdedup::config::ExactConfig::None
                        } else {
                            logdedup::config::ExactConfig::Memory
                        },
                        ..Config::default()
                    };
                    let input = io::Cursor::new(data.clone());
                    Pipeline::new(config).run(input, Box::new(Null)).unwrap().emitted
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
