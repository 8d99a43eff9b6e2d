//! The quick pipeline end to end on tiny data: generate, run every installed tool,
//! check counts against the truth, write the three report files, and parse them.
//! logdedup's own rows are checked when a built binary is found
//! (`target/release/logdedup`, else `target/debug/logdedup`); otherwise the test
//! says so and checks the rest.

use std::path::PathBuf;
use std::process::Command;

use logdedup_bench::report::{Report, Status};

mod common;

use common::find_logdedup;

#[test]
fn quick_suite_writes_reports_that_agree_with_the_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let logdedup = find_logdedup();
    if logdedup.is_none() {
        println!("logdedup binary not built: its rows are skipped (cargo build --release to include them)");
    }
    let ld = logdedup.clone().unwrap_or_else(|| tmp.path().join("no-logdedup"));
    let out = Command::new(env!("CARGO_BIN_EXE_logdedup-bench"))
        .args(["all", "--quick", "--records", "3000", "--runs", "1", "--quiet", "--name", "test"])
        .arg("--out-root")
        .arg(tmp.path().join("reports"))
        .arg("--work-dir")
        .arg(tmp.path().join("data"))
        .arg("--logdedup")
        .arg(&ld)
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<PathBuf> =
        String::from_utf8(out.stdout).unwrap().lines().map(PathBuf::from).collect();
    assert_eq!(files.len(), 3);
    for f in &files {
        assert!(f.is_file() && f.metadata().unwrap().len() > 0, "{}", f.display());
    }
    let dir = files[0].parent().unwrap();
    assert!(dir.join("raw/results.json").is_file() && dir.join("raw/machine.json").is_file());
    let report: Report =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report.datasets.len(), 2);
    for d in &report.datasets {
        assert_eq!(d.truth.records, 3000);
        for t in &d.tools {
            // Nothing that ran may disagree with the truth.
            assert_ne!(t.status, Status::Mismatch, "{} on {}: {}", t.slug, d.name, t.note);
            match t.family.as_str() {
                "logdedup" if logdedup.is_none() => assert_eq!(t.status, Status::Skipped),
                "logdedup" => {
                    if t.status != Status::Ok {
                        println!("{} on {}: {:?} {}", t.slug, d.name, t.status, t.note);
                    }
                }
                _ if t.status == Status::Skipped => println!("{} skipped: {}", t.slug, t.note),
                _ => {
                    assert_eq!(t.status, Status::Ok, "{} on {}: {}", t.slug, d.name, t.note);
                    assert_eq!(t.output, Some(t.expected), "{}", t.slug);
                    assert!(t.summary.as_ref().unwrap().median_s > 0.0);
                }
            }
        }
        let floor = d.tools.iter().find(|t| t.slug == "floor").unwrap();
        assert_eq!(floor.output, Some(3000));
    }
    if logdedup.is_some() {
        assert!(!report.rotation.is_empty() && !report.fpr.is_empty());
        for p in &report.fpr {
            if let Some(a) = p.achieved {
                assert!((0.0..=1.0).contains(&a));
            }
        }
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Machine") && md.contains("quick-uuid"));
}
