//! The command line: help, exit codes (0 ok, 1 usage naming the flag, 2 runtime),
//! a closed stdout, input files, the summary and `--stats-json`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::util::{self, TestCommand};

#[test]
fn help_and_version_exit_0() {
    for flag in ["--help", "-h"] {
        let o = TestCommand::raw(&[flag]).run();
        assert_eq!(o.code, 0, "{flag}: {}", o.stderr);
        let text = o.stdout_str();
        assert!(text.contains("Usage"), "{flag}: {text}");
        for f in ["--key", "--window", "--retain", "--emit", "--state-dir", "--exact"] {
            assert!(util::names_flag(&text, f), "{flag} does not mention {f}");
        }
    }
    let o = TestCommand::raw(&["--version"]).run();
    assert_eq!(o.code, 0);
    assert!(o.stdout_str().starts_with("logdedup "), "{}", o.stdout_str());
}

/// The check the tests below use: a flag is named whole, not as the start of a
/// longer one.
#[test]
fn a_flag_is_named_whole() {
    assert!(util::names_flag("error: --shared: needs", "--shared"));
    assert!(util::names_flag("provided:\n  --shared\n", "--shared"));
    assert!(util::names_flag("--key=.id", "--key"));
    assert!(!util::names_flag("error: --shared-lease: must", "--shared"));
    assert!(!util::names_flag("error: --key-type: bad", "--key"));
    assert!(!util::names_flag("error: ---key: bad", "--key"));
    assert!(!util::names_flag("no flag here", "--key"));
}

/// Usage errors exit 1 (not clap's 2) and the message names the flag.
#[test]
fn usage_errors_exit_1_and_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "--bogus"),
        (&["--window"], "--window"),
        (&["--window", "10x"], "--window"),
        (&["--window", "0s"], "--window"),
        (&["--retain", "0", "--window", "1m"], "--retain"),
        (&["--retain", "2"], "--retain"),
        (&["--key", "bogus"], "--key"),
        (&["--key", ".a..b"], "--key"),
        (&["--key", "regex:("], "--key"),
        (&["--key", "field:0"], "--key"),
        (&["--key", "field:x"], "--key"),
        (&["--key-type", "float"], "--key-type"),
        (&["--key-type", "int", "--key", ".a", "--key", ".b"], "--key-type"),
        (&["--delimiter", "ab"], "--delimiter"),
        (&["--fpr", "2"], "--fpr"),
        (&["--fpr", "0"], "--fpr"),
        (&["--fpr", "x"], "--fpr"),
        (&["--local-bloom", "off", "--exact", "none"], "--local-bloom"),
        (&["--bloom-initial-capacity", "0"], "--bloom-initial-capacity"),
        (&["--max-record-bytes", "lots"], "--max-record-bytes"),
        (&["--max-record-bytes", "0"], "--max-record-bytes"),
        (&["--on-unkeyed", "reject"], "--on-unkeyed"),
        (&["--on-oversized", "reject"], "--on-oversized"),
        (&["--on-late", "reject"], "--on-late"),
        (&["--emit", "bogus"], "--emit"),
        (&["--tag", "dup"], "--tag"),
        (&["--emit", "all", "--tag", "a\"b"], "--tag"),
        (&["--emit", "all", "--tag", ""], "--tag"),
        (&["--time-field", "nope"], "--time-field"),
        (&["--time-format", "%Y"], "--time-field"),
        (&["--time-field", ".ts", "--time-format", "%Q"], "--time-format"),
        (&["--checkpoint-every", "10"], "--state-dir"),
        (&["--state-dir", "/tmp/x", "--checkpoint-every", "soon"], "--checkpoint-every"),
        (&["--exact", "mysql://x"], "--exact"),
        (&["--exact", "redis://127.0.0.1:1", "--exact-timeout", "0s"], "--exact-timeout"),
        (&["--shared"], "--shared"),
        (&["--shared-lease", "1s"], "--shared"),
        (&["--exact", "redis://127.0.0.1:1", "--shared", "--shared-lease", "0s"], "--shared-lease"),
        (
            &["--exact", "redis://127.0.0.1:1", "--shared", "--shared-lease", "soon"],
            "--shared-lease",
        ),
    ];
    for (args, flag) in cases {
        let o = TestCommand::raw(args).stdin("x\n").run();
        assert_eq!(o.code, 1, "{args:?}: stderr {}", o.stderr);
        assert!(
            util::names_flag(&o.stderr, flag),
            "{args:?}: message does not name {flag}: {}",
            o.stderr
        );
        assert!(o.stdout.is_empty(), "{args:?}: nothing may be written on a usage error");
        assert!(!o.stderr.contains("panicked"), "{args:?}: {}", o.stderr);
    }
}

/// Failures at run time exit 2 with a message that says what failed.
#[test]
fn runtime_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.log");
    let o = TestCommand::raw(&[missing.to_str().unwrap()]).run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("missing.log"), "{}", o.stderr);
    // Every file is checked before any is read: a good file first writes nothing.
    let good = dir.path().join("good.log");
    std::fs::write(&good, "a\nb\n").unwrap();
    let sock = dir.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for bad in [missing.to_str().unwrap(), dir.path().to_str().unwrap(), sock.to_str().unwrap()] {
        let o = TestCommand::raw(&[good.to_str().unwrap(), bad]).run();
        assert_eq!(o.code, 2, "{}", o.stderr);
        assert!(o.stdout.is_empty() && o.stderr.contains(bad), "{}", o.stderr);
    }

    let bad = dir.path().join("no/such/dir/rejects");
    let o = TestCommand::raw(&["--on-unkeyed", "reject", "--reject-file", bad.to_str().unwrap()])
        .stdin("x\n")
        .run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(util::names_flag(&o.stderr, "--reject-file"), "{}", o.stderr);

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = TestCommand::raw(&["--state-dir", file.to_str().unwrap()]).stdin("x\n").run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(util::names_flag(&o.stderr, "--state-dir"), "{}", o.stderr);
    assert!(o.stderr.starts_with("logdedup: error: "), "{}", o.stderr);
}

/// A reject file that cannot be written is a run-time error (exit 2) naming
/// `--reject-file`, also when the rejects fit its buffer until the end.
#[test]
fn reject_file_write_error_exits_2() {
    let o =
        TestCommand::raw(&["--key", ".id", "--on-unkeyed", "reject", "--reject-file", "/dev/full"])
            .stdin("{\"id\":1}\nplain\n")
            .run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(util::names_flag(&o.stderr, "--reject-file"), "{}", o.stderr);
}

/// `logdedup | head -1`: stdout closes early; the program ends quietly with 0.
#[test]
fn closed_stdout_exits_0_quietly() {
    let mut child = Command::new(util::bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // Far more than any pipe or output buffer holds; stops when the child is gone.
        for i in 0..2_000_000u64 {
            if writeln!(stdin, "line {i}").is_err() {
                return;
            }
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "line 0\n");
    drop(out);
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "quietly: {}", String::from_utf8_lossy(&o.stderr));
}

/// The same through a real shell pipeline, as a user types it; `--stats-json`
/// still gets the counters so far.
#[test]
fn shell_pipe_into_head() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    for emit in ["new", "all", "all --tag dup"] {
        let script = format!(
            "seq 1 3000000 | '{}' --emit {emit} --stats-json '{}' | head -1; echo \"code ${{PIPESTATUS[1]}}\"",
            util::bin().display(),
            stats.display()
        );
        let o = Command::new("bash").arg("-c").arg(&script).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out, "1\ncode 0\n", "stderr: {}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
        assert!(n("records_in") >= 1 && n("emitted") >= 1, "{s}");
        assert!(n("records_in") < 3_000_000, "stopped early: {s}");
        let accounted =
            n("emitted") + n("suppressed") + n("dropped") + n("rejected") + n("unwritten");
        assert_eq!(accounted, n("records_in"), "{s}");
        let verdicts = ["new", "duplicates", "unkeyed", "late", "oversized", "unconfirmed"];
        assert_eq!(verdicts.map(n).iter().sum::<u64>(), n("records_in"), "{s}");
    }
}

/// Files are read in order, `-` is stdin, and a file whose last record has no
/// newline does not merge with the next file's first record.
#[test]
fn input_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("f1");
    let f2 = dir.path().join("f2");
    std::fs::write(&f1, "a\nb").unwrap();
    std::fs::write(&f2, "b\nc").unwrap();
    let (p1, p2) = (f1.to_str().unwrap(), f2.to_str().unwrap());
    let o = TestCommand::new(&[p1, p2]).run();
    o.assert_ok();
    assert_eq!(o.stdout_str(), "a\nb\nc");
    assert_eq!((o.stat("records_in"), o.stat("duplicates")), (4, 1));
    let o = TestCommand::new(&[p1, "-", p2]).stdin("x\nc").run();
    o.assert_ok();
    assert_eq!(o.stdout_str(), "a\nb\nx\nc\n");
    assert_eq!((o.stat("records_in"), o.stat("duplicates")), (6, 2));
}

/// The summary goes to stderr (never a line per duplicate), `-q` silences it,
/// `--stats-json` holds every counter, and no progress line off a terminal.
#[test]
fn summary_and_stats_json() {
    let input = "a\nb\na\na\n".repeat(1000);
    let o = TestCommand::raw(&[]).stdin(&input).run();
    assert_eq!(o.code, 0);
    assert_eq!(o.stdout_str(), "a\nb\n");
    assert!(o.stderr.contains("4000 records in"), "{}", o.stderr);
    assert!(o.stderr.contains("2 emitted"), "{}", o.stderr);
    assert!(o.stderr.contains("3998 suppressed by --emit"), "{}", o.stderr);
    assert!(o.stderr.contains("2 new, 3998 duplicates"), "{}", o.stderr);
    assert!(o.stderr.lines().count() < 10, "a summary, not a log: {}", o.stderr);
    assert!(!o.stderr.contains('\r'), "no progress line when stderr is not a terminal");

    let o = TestCommand::raw(&["-q"]).stdin(&input).run();
    assert_eq!(o.code, 0);
    assert!(o.stderr.is_empty(), "{}", o.stderr);

    let o = TestCommand::new(&[]).stdin(&input).run();
    o.assert_ok();
    let s = o.stats.as_ref().unwrap();
    for k in [
        "records_in",
        "emitted",
        "duplicates",
        "unkeyed",
        "late",
        "rejected",
        "dropped",
        "int_ids",
        "str_ids",
        "maybes",
        "exact_round_trips",
        "windows_rotated",
        "bytes_per_sec",
        "records_per_sec",
        "peak_rss_bytes",
        "bloom_fill",
        "bloom_expected_fpr",
    ] {
        assert!(s.get(k).is_some(), "--stats-json lacks {k}: {s}");
    }
    assert_eq!((o.stat("records_in"), o.stat("emitted"), o.stat("duplicates")), (4000, 2, 3998));
    assert_eq!(o.stat("str_ids"), 4000);
}

/// `--stats-json`'s bloom figures cover every live filter: under `--retain 2`
/// both windows' keys and bits, and bits per key is the one over the other. Each
/// live window's filter was sized from the window before (2,000 keys and 1/64)
/// with 9/10 of its half of `--fpr`: ~24.8 bits per key at 1e-4, 1.87× the
/// bound (a quarter of headroom at the whole `--fpr`, as before, took 2.2×).
#[test]
fn stats_json_bloom_bits_per_key_over_every_live_filter() {
    let mut input = String::new();
    for w in 0..3 {
        for i in 0..2000 {
            input += &format!("{{\"ts\":{},\"id\":\"w{w}-{i}\"}}\n", 1_700_000_000 + w);
        }
    }
    let args = ["--key", ".id", "--window", "1s", "--time-field", ".ts", "--retain", "2"];
    let o = TestCommand::new(&[&args[..], &["--exact", "none"]].concat()).stdin(&input).run();
    o.assert_ok();
    let s = o.stats.as_ref().unwrap();
    let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert!((3990..=4000).contains(&o.stat("bloom_keys")), "both live windows: {s}");
    let per_key = f("bloom_bits_per_key");
    assert!((per_key - f("bloom_bits") / f("bloom_keys")).abs() < 1e-9, "{s}");
    let times = per_key / 1e4f64.log2();
    assert!((1.7..2.0).contains(&times), "{per_key:.2} bits per key, {times:.2}x");
}

/// Empty input: nothing out, exit 0, zero counters.
#[test]
fn empty_input() {
    let o = TestCommand::new(&[]).stdin("").run();
    o.assert_ok();
    assert!(o.stdout.is_empty());
    assert_eq!(o.stat("records_in"), 0);
    let o = TestCommand::new(&["--key", ".id", "--window", "1m", "--time-field", ".ts"])
        .stdin("")
        .run();
    o.assert_ok();
    assert!(o.stdout.is_empty());
}

/// `good.log` (one record, `a`) and a named pipe `fifo` in `dir`.
fn file_then_fifo(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let good = dir.join("good.log");
    std::fs::write(&good, "a\n").unwrap();
    (good, fifo)
}

/// Waits up to 30 s for `child` to end; kills it and fails with `why` if not.
fn wait_bounded(child: &mut std::process::Child, why: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("logdedup did not finish: {why}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A named pipe among the input files is read like any file: the check made
/// before reading does not open it (that would wait for its writer and then
/// leave the writer without a reader).
#[test]
fn a_named_pipe_among_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (good, fifo) = file_then_fifo(dir.path());
    let mut child = Command::new(util::bin())
        .args(["-q", good.to_str().unwrap(), fifo.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening waits for the reader; it then takes every byte.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(b"b\na\nc\n").unwrap();
    drop(w);
    // A reader that let go of the pipe and opened it again would wait for a
    // writer forever: bounded here, not by the test harness.
    wait_bounded(&mut child, "it waits for a writer that is gone");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\nc\n");
}

/// A stop (SIGTERM) while a named pipe among the files has no writer yet ends the
/// run at once, with the state saved: the pipe is not opened in a way that waits.
#[test]
fn a_stop_while_a_named_pipe_waits_for_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (good, fifo) = file_then_fifo(dir.path());
    let state = dir.path().join("state");
    let mut child = Command::new(util::bin())
        .args(["-q", "--state-dir", state.to_str().unwrap()])
        .args([good.to_str().unwrap(), fifo.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first file is through once its record is out; then it waits on the pipe.
    let mut got = [0u8; 2];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut got).unwrap();
    assert_eq!(&got, b"a\n");
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_bounded(&mut child, "it did not stop while waiting for the pipe's writer");
    assert!(status.success());
    assert!(state.join("state.bin").exists());
}
