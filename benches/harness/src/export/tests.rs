//! The number formats, and one snapshot per exporter of a small report built by
//! hand (hyperfine's `export/tests.rs`): a change to any format shows as a diff
//! of `snapshots/`, to be read and accepted with `cargo insta review` (or
//! `INSTA_UPDATE=always`).
//!
//! Every figure of the report is fixed here: no clock, no machine, no files.
//! Figures are distinct, so a column or field shown in the wrong place shows.
//! (`tests/exporters.rs` pins a larger fixture as plain golden files.)

use std::collections::BTreeMap;

use super::*;
use crate::report::{
    DatasetResult, Expect, FprPoint, Machine, RotationPoint, Sample, Status, ToolResult,
    TruthSummary,
};
use crate::spec::{Count, DupTime, Dur, Format, GenConfig, IdKind, Skew};

#[test]
fn number_formats() {
    assert_eq!(count(0), "0");
    assert_eq!(count(1234567), "1,234,567");
    assert_eq!(si(1_234_567.0), "1.23 M");
    assert_eq!(bytes(3 << 20), "3.0 MiB");
    assert_eq!(prob(0.0), "0");
    assert_eq!(prob(0.000123), "1.23e-4");
}

/// One run: wall, user and system seconds, peak RSS, minor faults, records
/// emitted and extras.
fn sample(
    (wall_s, user_s, sys_s): (f64, f64, f64),
    max_rss_bytes: u64,
    minor_faults: u64,
    output: u64,
    extras: &[(&str, f64)],
) -> Sample {
    Sample {
        wall_s,
        user_s,
        sys_s,
        max_rss_bytes,
        minor_faults,
        exit_code: 0,
        output,
        extras: extras.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

fn tool(
    slug: &str,
    label: &str,
    family: &str,
    command: &str,
    expect: Expect,
    expected: u64,
) -> ToolResult {
    ToolResult {
        slug: slug.into(),
        label: label.into(),
        family: family.into(),
        command: command.into(),
        expect,
        expected,
        output: None,
        status: Status::Ok,
        note: String::new(),
        samples: Vec::new(),
        summary: None,
    }
}

/// One machine, 3 runs, one note; one dataset with the floor, logdedup (with
/// extras from its stats JSON), a peer whose count is wrong and a skipped peer;
/// one point of the rotation experiment and one of the fpr experiment.
fn report() -> Report {
    let truth = TruthSummary {
        records: 10_000,
        bytes: 1_843_200,
        unique_lines: 7_400,
        unique_ids: 7_000,
        window: "10m".into(),
        window_emitted: 7_120,
        window_late: 37,
        window_rotations: 5,
    };
    let spec = GenConfig {
        records: Count(10_000),
        format: Format::Json,
        id_kind: IdKind::Uuid,
        dup_ratio: 0.3,
        skew: Skew::Zipf(1.1),
        burst: 1_000,
        span: Dur(3_600_000),
        out_of_order: 0.05,
        lateness: Dur(30_000),
        dup_time: DupTime::Now,
        record_bytes: 180,
        window: Dur(600_000),
        seed: 42,
    };

    let mut floor = tool(
        "floor",
        "cat | wc -l (floor)",
        "floor",
        r#"cat "$DATA" | wc -l"#,
        Expect::Records,
        10_000,
    );
    floor.output = Some(10_000);
    floor.samples = vec![
        sample((0.021, 0.0158, 0.0026), 2_097_152, 110, 10_000, &[]),
        sample((0.019, 0.0142, 0.0024), 2_162_688, 112, 10_000, &[]),
        sample((0.024, 0.018, 0.003), 2_129_920, 111, 10_000, &[]),
    ];

    let ld_extras = |maybes: f64, rss: f64| {
        [
            ("records_in", 10_000.0),
            ("emitted", 7_120.0),
            ("duplicates", 2_843.0),
            ("late", 37.0),
            ("maybes", maybes),
            ("windows_rotated", 5.0),
            ("peak_rss_bytes", rss),
        ]
    };
    let mut ld = tool(
        "logdedup-window",
        "logdedup --key .request_id --window 10m --time-field .ts",
        "logdedup",
        r#"cat "$DATA" | "$LOGDEDUP" --stats-json "$STATS" --key .request_id --window 10m --time-field .ts"#,
        Expect::Windowed,
        7_120,
    );
    ld.output = Some(7_120);
    ld.samples = vec![
        sample((0.052, 0.039, 0.0065), 9_437_184, 2_301, 7_120, &ld_extras(2_851.0, 9_400_000.0)),
        sample((0.047, 0.0353, 0.0059), 9_961_472, 2_305, 7_120, &ld_extras(2_849.0, 9_900_000.0)),
        sample((0.050, 0.0375, 0.0063), 9_699_328, 2_299, 7_120, &ld_extras(2_850.0, 9_650_000.0)),
    ];

    let mut sort = tool(
        "sort-u",
        "LC_ALL=C sort -u",
        "peer",
        r#"cat "$DATA" | LC_ALL=C sort -u"#,
        Expect::UniqueLines,
        7_400,
    );
    sort.output = Some(7_398);
    sort.status = Status::Mismatch;
    sort.samples = vec![
        sample((0.140, 0.105, 0.0175), 3_145_728, 801, 7_398, &[]),
        sample((0.151, 0.1132, 0.0189), 3_211_264, 805, 7_398, &[]),
        sample((0.138, 0.1035, 0.0173), 3_178_496, 803, 7_398, &[]),
    ];

    let mut runiq =
        tool("runiq", "runiq", "peer", r#"cat "$DATA" | runiq -"#, Expect::UniqueLines, 7_400);
    runiq.status = Status::Skipped;
    runiq.note = "runiq not found on PATH".into();

    // As `suite::run_dataset` does: the floor's median is the ratio's unit.
    let mut tools = vec![floor, ld, sort, runiq];
    let floor_s = {
        let mut f = tools[0].clone();
        f.summarise(truth.records, truth.bytes, truth.unique_ids, None);
        f.summary.map(|s| s.median_s)
    };
    for t in &mut tools {
        t.summarise(truth.records, truth.bytes, truth.unique_ids, floor_s);
    }

    let mut rot = tool(
        "logdedup-window-1m",
        "logdedup --window 1m",
        "logdedup",
        r#"cat "$DATA" | "$LOGDEDUP" --stats-json "$STATS" --key .request_id --window 1m --time-field .ts"#,
        Expect::Windowed,
        7_050,
    );
    rot.output = Some(7_050);
    rot.samples = vec![
        sample((0.061, 0.0457, 0.0076), 8_388_608, 2_101, 7_050, &[("windows_rotated", 59.0)]),
        sample((0.058, 0.0435, 0.0073), 8_454_144, 2_103, 7_050, &[("windows_rotated", 59.0)]),
        sample((0.064, 0.048, 0.008), 8_421_376, 2_102, 7_050, &[("windows_rotated", 59.0)]),
    ];
    // As `suite::run`'s experiments do: no floor ratio.
    rot.summarise(truth.records, truth.bytes, truth.unique_ids, None);

    let mut none = tool(
        "logdedup-none-fpr-1e-2",
        "logdedup --exact none --fpr 1e-2",
        "logdedup",
        r#"cat "$DATA" | "$LOGDEDUP" --stats-json "$STATS" --key .request_id --exact none --fpr 1e-2"#,
        Expect::AtMostUniqueIds,
        7_000,
    );
    none.output = Some(6_931);
    none.samples = vec![
        sample((0.031, 0.0232, 0.0039), 1_572_864, 501, 6_931, &[("maybes", 3_069.0)]),
        sample((0.033, 0.0248, 0.0041), 1_605_632, 503, 6_931, &[("maybes", 3_069.0)]),
        sample((0.030, 0.0225, 0.0037), 1_589_248, 502, 6_931, &[("maybes", 3_069.0)]),
    ];
    none.summarise(truth.records, truth.bytes, truth.unique_ids, None);

    Report {
        name: "snapshot".into(),
        date: "2026-11-23".into(),
        command: "logdedup-bench run --name snapshot --runs 3 --spec datasets/suite.json".into(),
        machine: Machine {
            nproc: 2,
            cpu: "Example CPU 3000 @ 3.00GHz".into(),
            mem_bytes: 24 << 30,
            kernel: "6.1.0-test-amd64".into(),
            hypervisor: true,
            thp: "madvise".into(),
            tools: BTreeMap::from([
                ("logdedup".to_string(), "logdedup 0.1.0".to_string()),
                ("sort".to_string(), "sort (GNU coreutils) 9.7".to_string()),
            ]),
        },
        runs: 3,
        notes: vec!["runiq not found on PATH: skipped".into()],
        datasets: vec![DatasetResult {
            name: "json-uuid".into(),
            about: "JSON records keyed by a UUID; retries repeat them at the current time.".into(),
            spec,
            truth,
            tools,
        }],
        rotation_dataset: Some("json-uuid".into()),
        rotation: vec![RotationPoint {
            window: "1m".into(),
            window_ms: 60_000,
            rotations: 59,
            tool: rot,
        }],
        fpr_dataset: Some("json-uuid".into()),
        fpr: vec![FprPoint {
            configured: 0.01,
            unique_ids: 7_000,
            emitted: Some(6_931),
            wrongly_dropped: Some(69),
            achieved: Some(69.0 / 7_000.0),
            tool: none,
        }],
    }
}

/// One snapshot per exporter, named after the file it writes.
#[test]
fn exporters_snapshot() {
    let r = report();
    let names: Vec<&str> = all().iter().map(|e| e.file_name()).collect();
    assert_eq!(names, ["report.md", "report.json", "report.svg"]);
    for e in all() {
        insta::assert_snapshot!(e.file_name(), e.render(&r));
    }
}
