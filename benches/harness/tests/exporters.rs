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
        s.extras.insert("redis_used_memory_growth_bytes".into(), 79e6);
        s.extras.insert("redis_keys".into(), 600_000.0);
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

/// A ratio to the floor reads the same in the table and on the chart.
#[test]
fn ratios_print_alike_in_markdown_and_svg() {
    let report = fixture();
    let md = export::MarkdownExporter.render(&report);
    let svg = export::SvgExporter.render(&report);
    let mut seen = 0;
    for t in &report.datasets[0].tools {
        if let Some(v) = t.summary.as_ref().and_then(|s| s.vs_floor) {
            let r = format!("{v:.2}×");
            assert!(md.contains(&format!("| {r} |")), "{} {r} not in report.md", t.slug);
            assert!(svg.contains(&format!("{r} floor")), "{} {r} not in report.svg", t.slug);
            seen += 1;
        }
    }
    assert_eq!(seen, 6);
}

/// `spec.records` is a JSON number, as the truth's `records` is.
#[test]
fn json_spec_records_is_a_number() {
    let v: serde_json::Value =
        serde_json::from_str(&export::JsonExporter.render(&fixture())).unwrap();
    let d = &v["datasets"][0];
    assert_eq!(d["spec"]["records"], serde_json::json!(1_000_000));
    assert_eq!(d["spec"]["records"], d["truth"]["records"]);
}

/// The pipeline's peak RSS (GNU time) is not named like logdedup's own
/// `peak_rss_bytes` in the extras beside it.
#[test]
fn summary_peaks_have_distinct_names() {
    let mut report = fixture();
    let t = &mut report.datasets[0].tools[3];
    t.samples.iter_mut().for_each(|s| {
        s.extras.insert("peak_rss_bytes".into(), 39e6);
    });
    t.summarise(1_000_000, 180_000_000, 700_000, Some(0.11));
    let v: serde_json::Value = serde_json::from_str(&export::JsonExporter.render(&report)).unwrap();
    let s = v["datasets"][0]["tools"][3]["summary"].as_object().unwrap();
    assert!(!s.contains_key("peak_rss_bytes"), "{s:?}");
    assert_eq!(s["pipeline_peak_rss_bytes"], serde_json::json!(40u64 << 20));
    assert_eq!(s["extras"]["peak_rss_bytes"], serde_json::json!(39e6));
}

/// Renames `pipeline_peak_rss_bytes` back to `peak_rss_bytes` in every summary.
fn to_old_names(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(x) = m.remove("pipeline_peak_rss_bytes") {
                m.insert("peak_rss_bytes".into(), x);
            }
            m.values_mut().for_each(to_old_names);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(to_old_names),
        _ => {}
    }
}

/// A report.json written before `records` became a number and the summary's
/// peak was renamed still loads, with the same values.
#[test]
fn old_report_json_still_loads() {
    let report = fixture();
    let mut v: serde_json::Value =
        serde_json::from_str(&export::JsonExporter.render(&report)).unwrap();
    to_old_names(&mut v);
    v["datasets"][0]["spec"]["records"] = serde_json::json!("1000000");
    let text = serde_json::to_string_pretty(&v).unwrap();
    assert!(text.contains(r#""peak_rss_bytes": 41943040"#) && !text.contains("pipeline_"));
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back.datasets[0].spec.records, Count(1_000_000));
    for (a, b) in back.datasets[0].tools.iter().zip(&report.datasets[0].tools) {
        assert_eq!(
            a.summary.as_ref().map(|s| s.pipeline_peak_rss_bytes),
            b.summary.as_ref().map(|s| s.pipeline_peak_rss_bytes)
        );
    }
    assert_eq!(back.rotation[1].tool.summary.as_ref().unwrap().pipeline_peak_rss_bytes, 39 << 20);
}

/// The committed reports (old format) load, when the checkout has them.
#[test]
fn committed_reports_still_load() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/harness/reports");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        println!("{} not found: nothing to check", root.display());
        return;
    };
    for dir in dirs {
        let dir = dir.unwrap().path();
        for p in [dir.join("report.json"), dir.join("raw/results.json")] {
            if let Ok(text) = std::fs::read_to_string(&p) {
                let r: Report =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(r.datasets.iter().all(|d| d.spec.records.0 > 0), "{}", p.display());
            }
        }
    }
}

/// Each linear chart's y axis ends on a round tick at or above its largest value
/// (not at the value itself), so the top point sits below the axis end.
#[test]
fn line_chart_axes_end_on_a_round_tick() {
    let mut report = fixture();
    for (p, (rate, rss)) in report.rotation.iter_mut().zip([
        (4_321_000.0, 37_300_000),
        (4_100_000.0, 36_000_000),
        (3_900_000.0, 35_000_000),
    ]) {
        let s = p.tool.summary.as_mut().unwrap();
        s.records_per_s = rate;
        s.pipeline_peak_rss_bytes = rss;
    }
    let svg = export::SvgExporter.render(&report);
    let attr = |tag: &str, name: &str| -> f64 {
        let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        tag[at..at + tag[at..].find('"').unwrap()].parse().unwrap()
    };
    // Per chart: the y axis's top, its tick labels, the points' heights.
    let mut charts: Vec<(f64, Vec<String>, Vec<f64>)> = Vec::new();
    for line in svg.lines() {
        if line.starts_with(r#"<line x1="90.0""#) && line.contains(r#"x2="90.0""#) {
            charts.push((attr(line, "y1"), Vec::new(), Vec::new()));
        } else if let Some(c) = charts.last_mut() {
            if let Some(at) = line.find(r##"text-anchor="end" fill="#555">"##) {
                let text =
                    &line[line[at..].find('>').unwrap() + at + 1..line.rfind("</text>").unwrap()];
                c.1.push(text.to_string());
            } else if line.starts_with("<circle") {
                c.2.push(attr(line, "cy"));
            }
        }
    }
    assert_eq!(charts[0].1, ["0", "2.00 M", "4.00 M", "6.00 M"]);
    assert_eq!(charts[1].1, ["0.0 KiB", "10.0 MiB", "20.0 MiB", "30.0 MiB", "40.0 MiB"]);
    for (top, _, ys) in &charts[..2] {
        assert_eq!(ys.len(), 3);
        assert!(ys.iter().all(|y| y > top), "a point on the axis end {top}: {ys:?}");
    }
}
