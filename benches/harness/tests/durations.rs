//! The harness reads durations as logdedup reads its flags (one parser): the
//! same texts are accepted and refused by both, and a bare number is an error
//! naming the flag, or the spec file it is in.

use std::process::{Command, Output};

mod common;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logdedup-bench")).args(args).output().unwrap()
}

#[test]
fn a_bare_number_is_an_error_naming_the_flag() {
    for args in [
        &["gen", "--records", "1", "--window", "10"][..],
        &["gen", "--records", "1", "--span", "60"],
        &["gen", "--records", "1", "--also-window", "5"],
        &["soak", "--records", "1", "--window", "10"],
    ] {
        let o = bench(args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let flag = args[args.len() - 2];
        assert!(!o.status.success(), "{args:?} was accepted");
        assert!(
            stderr.contains(&format!("'{flag} <")),
            "{args:?}: the flag is not named: {stderr}"
        );
        assert!(stderr.contains("needs a unit"), "{args:?}: {stderr}");
        assert!(o.stdout.is_empty(), "{args:?} wrote records");
    }
}

#[test]
fn a_bare_number_in_a_spec_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bare.json");
    let text = r#"{"about": "x", "runs": 1, "datasets": [], "rotation_windows": [60]}"#;
    std::fs::write(&spec, text).unwrap();
    // Into the temp dir, were the spec accepted.
    let (out, work) = (dir.path().join("reports"), dir.path().join("data"));
    let spec = spec.to_str().unwrap();
    let args = ["all", "--spec", spec, "--quiet", "--out-root", out.to_str().unwrap()];
    let o = bench(&[&args[..], &["--work-dir", work.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "accepted: {stderr}");
    assert!(stderr.contains("bare.json") && stderr.contains("needs a unit"), "{stderr}");
}

/// Each text, as the harness's `--span` and as logdedup's `--flush-interval`
/// (a flag that takes 0): both accept it or both refuse it.
#[test]
fn the_harness_and_logdedup_accept_the_same_durations() {
    let Some(logdedup) = common::find_logdedup() else {
        println!("logdedup binary not built: skipped (cargo build to include it)");
        return;
    };
    let texts = ["0", "10", "1h30m", "1.5s", "500ms", "2d", "10x", "", "-1s", "+5s", " 7m "];
    let mut agreed = (0, 0);
    for t in texts {
        let harness = bench(&["gen", "--records", "1", "--span", t]).status.success();
        let ld = Command::new(&logdedup)
            .args(["--flush-interval", t, "-q", "/dev/null"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&ld.stderr);
        assert_eq!(harness, ld.status.success(), "{t:?}: logdedup says {stderr}");
        if harness {
            agreed.0 += 1;
        } else {
            agreed.1 += 1;
        }
    }
    // Both sides of the rule are tried.
    assert!(agreed.0 >= 4 && agreed.1 >= 3, "{agreed:?}");
}
