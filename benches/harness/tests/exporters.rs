//! Snapshot tests of the report writers (insta): a fixed report in, the committed
//! snapshots out, byte for byte. After an intended change to a format, run
//! `INSTA_UPDATE=always cargo test -p logdedup-bench --test exporters` (or
//! `cargo insta review`) and read the diff of `tests/snapshots/` before committing.

use std::collections::BTreeMap;

use logdedup_bench::export::{self, Exporter};
use logdedup_bench::report::{
    DatasetResult, Expect, FprPoint, Machine, Report, RotationPoint, Sample, Status, ToolResult,
    TruthSummary,
};
use logdedup_bench::spec::{Count, GenConfig};

fn sample(wall_s: f64, rss_mib: u64, output: u64, extras: &[(&str, f64)]) -> Sample {
    Sample {
        wall_s,
        user_s: wall_s * 0.8,
        sys_s: wall_s * 0.1,
        max_rss_bytes: rss_mib << 20,
        minor_faults: rss_mib * 256,
        exit_code: 0,
        output,
        extras: extras.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

fn tool(
    slug: &str,
    label: &str,
    family: &str,
    expect: Expect,
    expected: u64,
    walls: &[f64],
    rss: u64,
) -> ToolResult {
    ToolResult {
        slug: slug.into(),
        label: label.into(),
        family: family.into(),
        command: format!(r#"cat "$DATA" | {slug}"#),
        expect,
        expected,
        output: Some(expected),
        status: Status::Ok,
        note: String::new(),
        samples: walls.iter().map(|w| sample(*w, rss, expected, &[])).collect(),
        summary: None,
    }
}

fn fixture() -> Report {
    let (records, bytes, ids) = (1_000_000, 180_000_000, 700_000);
    let mut tools = vec![
        tool(
            "floor",
            "cat | wc -l (floor)",
            "floor",
            Expect::Records,
            records,
            &[0.10, 0.11, 0.12],
            2,
        ),
        tool(
            "sort-u",
            "LC_ALL=C sort -u",
            "peer",
            Expect::UniqueLines,
            ids,
            &[0.6, 0.58, 0.61],
            240,
        ),
        tool("gawk", "gawk '!seen[$0]++'", "peer", Expect::UniqueLines, ids, &[2.5, 2.6, 2.4], 300),
        tool(
            "logdedup-memory",
            "logdedup --key .request_id",
            "logdedup",
            Expect::UniqueIds,
            ids,
            &[0.2, 0.21, 0.19],
            40,
        ),
        tool(
            "redis-setnx",
            "Redis SET NX EX, pipelined 1000",
            "redis",
            Expect::UniqueIds,
            ids,
            &[3.0, 3.1, 2.9],
            6,
        ),
    ];
    tools[4].samples.iter_mut().for_each(|s| {
        s.extras.insert("redis_used_memory_bytes".into(), 80e6);
    });
    let mut skipped = tool("huniq", "huniq", "peer", Expect::UniqueLines, ids, &[], 0);
    skipped.status = Status::Skipped;
    skipped.output = None;
    skipped.note = "huniq not found".into();
    tools.push(skipped);
    let mut wrong = tool(
        "logdedup-window",
        "logdedup --window 10m",
        "logdedup",
        Expect::Windowed,
        705_000,
        &[0.25],
        41,
    );
    wrong.status = Status::Mismatch;
    wrong.output = Some(704_999);
    wrong.note = "emitted 704999 records, truth says 705000".into();
    tools.push(wrong);
    for t in &mut tools {
        t.summarise(records, bytes, ids, Some(0.11));
    }
    let mut rotation = Vec::new();
    for (i, (w, ms, rot)) in
        [("1h", 3_600_000, 0), ("1m", 60_000, 59), ("1s", 1000, 3599)].into_iter().enumerate()
    {
        let mut t = tool(
            &format!("logdedup-window-{w}"),
            w,
            "logdedup",
            Expect::Windowed,
            ids + i as u64,
            &[0.2 + 0.01 * i as f64],
            40 - i as u64,
        );
        t.samples[0].extras.insert("windows_rotated".into(), rot as f64);
        t.summarise(records, bytes, ids, None);
        rotation.push(RotationPoint { window: w.into(), window_ms: ms, rotations: rot, tool: t });
    }
    let mut fpr = Vec::new();
    for (f, dropped) in [(1e-2, 6_800u64), (1e-4, 0)] {
        let mut t =
            tool("logdedup-none", "none", "logdedup", Expect::AtMostUniqueIds, ids, &[0.18], 30);
        t.output = Some(ids - dropped);
        t.samples[0].extras.insert("maybes".into(), 300_000.0 + dropped as f64);
        t.summarise(records, bytes, ids, None);
        fpr.push(FprPoint {
            configured: f,
            unique_ids: ids,
            emitted: Some(ids - dropped),
            wrongly_dropped: Some(dropped),
            achieved: Some(dropped as f64 / ids as f64),
            tool: t,
        });
    }
    Report {
        name: "fixture".into(),
        date: "2026-01-02".into(),
        command: "cargo run --release -p logdedup-bench -- all --quick".into(),
        machine: Machine {
            nproc: 2,
            cpu: "Test CPU".into(),
            mem_bytes: 24 << 30,
            kernel: "6.1.0".into(),
            hypervisor: true,
            thp: "always [madvise] never".into(),
            tools: BTreeMap::from([("gawk".into(), "GNU Awk 5.2.1".into())]),
        },
        runs: 3,
        notes: vec!["huniq not found on PATH: skipped".into()],
        datasets: vec![DatasetResult {
            name: "uuid-1m".into(),
            about: "UUIDs, 30 % redeliveries.".into(),
            spec: GenConfig { records: Count(records), ..Default::default() },
            truth: TruthSummary {
                records,
                bytes,
                unique_lines: ids,
                unique_ids: ids,
                window: "10m".into(),
                window_emitted: 705_000,
                window_late: 5_000,
                window_rotations: 5,
            },
            tools,
        }],
        rotation_dataset: Some("uuid-1m".into()),
        rotation,
        fpr_dataset: Some("uuid-1m".into()),
        fpr,
    }
}

/// One snapshot per format (`tests/snapshots/exporters__<file name>.snap`).
#[test]
fn every_exporter_matches_its_snapshot() {
    let report = fixture();
    for e in export::all() {
        insta::assert_snapshot!(e.file_name(), e.render(&report));
    }
}

#[test]
fn json_report_round_trips() {
    let report = fixture();
    let text = export::JsonExporter.render(&report);
    let back: Report = serde_json::from_str(&text).unwrap();
    // Not compared whole: serde_json's default float parser may differ in the
    // last bit; every count and label must survive.
    assert_eq!(back.datasets[0].tools.len(), report.datasets[0].tools.len());
    for (a, b) in back.datasets[0].tools.iter().zip(&report.datasets[0].tools) {
        assert_eq!(
            (&a.slug, a.status, a.output, a.expected),
            (&b.slug, b.status, b.output, b.expected)
        );
    }
    assert_eq!(back.fpr.len(), 2);
    assert_eq!(back.rotation[2].rotations, 3599);
}

#[test]
fn svg_is_well_formed_enough() {
    let svg = export::SvgExporter.render(&fixture());
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
}

/// A label longer than the label column widens it (and the document) instead of
/// running off the left edge: every bar label starts inside the page.
#[test]
fn long_labels_fit_in_the_svg() {
    let mut report = fixture();
    let long = "logdedup --key .user --key .order --key .batch --window 10m --time-field .ts";
    report.datasets[0].tools[3].label = long.into();
    let svg = export::SvgExporter.render(&report);
    let attr = |tag: &str, name: &str| -> f64 {
        let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        tag[at..at + tag[at..].find('"').unwrap()].parse().unwrap()
    };
    let width = attr(&svg[..svg.find('>').unwrap()], "width");
    assert!(width > 960.0, "width {width}");
    let mut seen = 0;
    let labels = svg
        .lines()
        .filter(|l| l.starts_with("<text") && l.contains(r#"font-size="12" text-anchor="end""#));
    for line in labels {
        let text = &line[line.find('>').unwrap() + 1..line.rfind("</text>").unwrap()];
        // 12 px sans-serif: at most ~6.5 px a character.
        let x = attr(line, "x");
        assert!(x >= text.chars().count() as f64 * 6.5, "{line}");
        assert!(x < width);
        seen += usize::from(text == long);
    }
    assert_eq!(seen, 2, "the long label in the throughput and the memory chart");
}
