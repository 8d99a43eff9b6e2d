//! In-process stream synthesis shared by the criterion benches: IDs of each kind,
//! duplicate ratios and JSON lines, from a fixed seed so runs compare.

#![allow(dead_code)]

/// One benchmark input.
pub struct Param {
    /// Short name used in the benchmark id.
    pub slug: &'static str,
    /// Fraction of records repeating an earlier ID.
    pub dup_ratio: f64,
    /// What the IDs look like.
    pub kind: IdKind,
}

/// ID shapes.
#[derive(Clone, Copy)]
pub enum IdKind {
    /// Sequential integers with small gaps.
    Seq,
    /// Random signed 64-bit integers (HDFS block ids).
    RandomI64,
    /// UUID strings.
    Uuid,
}

/// The standard spread.
pub const PARAMS: &[Param] = &[
    Param { slug: "seq-10pct", dup_ratio: 0.1, kind: IdKind::Seq },
    Param { slug: "i64-10pct", dup_ratio: 0.1, kind: IdKind::RandomI64 },
    Param { slug: "uuid-10pct", dup_ratio: 0.1, kind: IdKind::Uuid },
    Param { slug: "uuid-90pct", dup_ratio: 0.9, kind: IdKind::Uuid },
];

/// splitmix64: small, fast, deterministic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` ID texts for `p`.
pub fn ids(p: &Param, n: usize) -> Vec<String> {
    let mut rng = Rng(0x5EED);
    let mut out: Vec<String> = Vec::with_capacity(n);
    let mut seq = 1_000_000u64;
    for _ in 0..n {
        if !out.is_empty() && rng.unit() < p.dup_ratio {
            let back = (rng.next() % out.len().min(100_000) as u64) as usize + 1;
            let id = out[out.len() - back].clone();
            out.push(id);
            continue;
        }
        let id = match p.kind {
            IdKind::Seq => {
                seq += 1 + rng.next() % 3;
                seq.to_string()
            }
            IdKind::RandomI64 => (rng.next() as i64).to_string(),
            IdKind::Uuid => {
                let (a, b) = (rng.next(), rng.next());
                format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xfff,
                    b >> 52,
                    b & 0xffff_ffff_ffff
                )
            }
        };
        out.push(id);
    }
    out
}

/// JSON lines of ~180 bytes carrying the IDs as `request_id`.
pub fn json_lines(ids: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 190);
    for (i, id) in ids.iter().enumerate() {
        let line = format!(
            "{{\"ts\":\"2026-11-23T10:{:02}:{:02}.000Z\",\"level\":\"info\",\"request_id\":\"{id}\",\"user\":\"u{}\",\"msg\":\"request handled by upstream cache shard\"}}\n",
            (i / 60) % 60,
            i % 60,
            i % 9973
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}
