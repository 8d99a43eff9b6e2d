//! One test per bug found, named after it (ripgrep's `regression.rs`). Each says
//! what was fed, what DESIGN/issue 2 expects, and what the program did when the
//! bug was found. A test here stays forever, also after its fix.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::util::{self, TestCommand};

/// Runs the binary with an address-space limit, so that a runaway allocation
/// fails fast instead of waking the OOM killer on a machine that overcommits.
fn run_limited(args: &[&str], input: &[u8]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(util::bin());
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 4 << 30, rlim_max: 4 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    w.join().unwrap();
    // A signal (abort) has no code: report it as 128 + signal, like a shell.
    let code = o.status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + o.status.signal().unwrap_or(0)
    });
    (code, o.stdout, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A flag value the validation accepts must not crash the run: either it is a
/// usage error naming the flag (exit 1), or the run works (exit 0).
fn assert_usage_error_or_ok(args: &[&str], flag: &str) {
    let (code, out, err) = run_limited(args, b"k1\nk2\nk1\n");
    let first = err.lines().next().unwrap_or("");
    match code {
        1 => assert!(
            crate::util::names_flag(&err, flag),
            "{args:?}: exit 1 must name {flag}: {first}"
        ),
        0 => assert_eq!(out, b"k1\nk2\n", "{args:?}"),
        _ => panic!("{args:?}: exit {code} (expected 1 naming {flag}, or 0): {first}"),
    }
    assert!(!err.contains("panicked"), "{args:?}: {first}");
}

/// Bug: `--fpr 1e-30` passes validation (0 < fpr < 1), then the first string ID
/// sizes a split-block bloom for it: `memory allocation of 67108864000 bytes
/// failed`, abort, exit 134. Expected: exit 1 naming `--fpr` (or a filter that
/// fits). `--fpr 1e-20` "works" but holds 875 MB of bloom for 1000 keys.
#[test]
fn tiny_fpr_aborts_on_the_first_string_id() {
    assert_usage_error_or_ok(&["-q", "--exact", "none", "--fpr", "1e-30"], "--fpr");
    assert_usage_error_or_ok(&["-q", "--local-bloom", "on", "--fpr", "1e-300"], "--fpr");
}

/// Bug: `--bloom-initial-capacity 18446744073709551615` panics with `capacity
/// overflow` (exit 101); `10000000000000` aborts on a 31 TB allocation (exit
/// 134). Expected: exit 1 naming the flag (or a run that works).
#[test]
fn huge_bloom_initial_capacity_panics() {
    for cap in ["18446744073709551615", "10000000000000"] {
        assert_usage_error_or_ok(
            &["-q", "--exact", "none", "--bloom-initial-capacity", cap],
            "--bloom-initial-capacity",
        );
    }
}

/// Bug: a negative number after a flag is taken by clap for an unknown flag:
/// `--retain -1` says `unexpected argument '-1' found`, naming no flag (exit 1
/// is right, the message is not: DESIGN wants the flag named). Same for
/// `--fpr -1`, `--window -5m`, `--bloom-initial-capacity -5`.
#[test]
fn negative_value_error_does_not_name_the_flag() {
    for (args, flag) in [
        (&["--retain", "-1", "--window", "1m"][..], "--retain"),
        (&["--fpr", "-1"], "--fpr"),
        (&["--window", "-5m"], "--window"),
        (&["--bloom-initial-capacity", "-5"], "--bloom-initial-capacity"),
        (&["--max-record-bytes", "-1"], "--max-record-bytes"),
    ] {
        let o = TestCommand::raw(args).stdin("x\n").run();
        assert_eq!(o.code, 1, "{args:?}");
        assert!(
            crate::util::names_flag(&o.stderr, flag),
            "{args:?}: message does not name {flag}: {}",
            o.stderr
        );
    }
}

/// Bug: a truncated JSON record (`{"id":1` — a line cut short, invalid JSON) is
/// keyed by the targeted scan as ID 1. DESIGN: "A record without the key
/// (field missing, invalid JSON, …) is unkeyed". So the complete record
/// `{"id":1}` that follows is dropped as its duplicate: the whole record is lost
/// in favour of the broken one.
/// Input `{"id":1\n{"id":1}\n`, `--key .id`: expected both lines (the first
/// unkeyed), got only `{"id":1`.
#[test]
fn truncated_json_record_is_keyed() {
    let o = TestCommand::new(&["--key", ".id"]).stdin("{\"id\":1\n{\"id\":1}\n").run();
    o.assert_ok();
    assert_eq!(o.stdout_str(), "{\"id\":1\n{\"id\":1}\n");
    assert_eq!((o.stat("unkeyed"), o.stat("new")), (1, 1));
    let o = TestCommand::new(&["--key", ".id"])
        .stdin("{\"id\":\"a\",\"msg\":\"cut sh\n{\"id\":\"a\"}\n")
        .run();
    o.assert_ok();
    assert_eq!(o.stat("unkeyed"), 1, "{}", o.stdout_str());
}

/// Bug: an unwritable `--stats-json` path was found only after the whole stream
/// had been read and written (exit 2 at the end, counters lost). Expected: the
/// run stops at the start, names the flag and writes nothing.
#[test]
fn unwritable_stats_json_is_found_before_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("no-such-dir").join("stats.json");
    let o = TestCommand::raw(&["--stats-json", bad.to_str().unwrap()]).stdin("a\nb\n").run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(crate::util::names_flag(&o.stderr, "--stats-json"), "{}", o.stderr);
    assert!(o.stdout.is_empty(), "records were written: {:?}", o.stdout_str());
}
