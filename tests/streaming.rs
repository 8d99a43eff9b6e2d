//! Live streams through the binary ([issue 23]): output goes out while input keeps
//! coming, a stop never writes (nor remembers) a record cut short, and a run that
//! fails still reports its counters. The tests order events (a line seen before
//! the producer stops); none asserts a duration.
//!
//! [issue 23]: items 1, 2 and 6

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::redis::RedisServer;
use crate::util;

/// `logdedup ARGS --no-progress` with stdin, stdout and stderr piped.
fn spawn(args: &[&str]) -> Child {
    Command::new(util::bin())
        .args(args)
        .arg("--no-progress")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logdedup")
}

/// Each line of the child's stdout, as it comes.
fn output_lines(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A slow producer: writes `lines` one at a time, pausing ~100 ms after each
/// (while watching the output), and stops early once `want` comes out. Whether
/// `want` came out while the producer was still writing.
fn produce_until_seen(
    stdin: &mut ChildStdin,
    out: &Receiver<String>,
    lines: impl IntoIterator<Item = String>,
    want: &str,
) -> bool {
    for line in lines {
        if stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush()).is_err() {
            return false;
        }
        let pause = Instant::now() + Duration::from_millis(100);
        while let Some(left) = pause.checked_duration_since(Instant::now()) {
            match out.recv_timeout(left) {
                Ok(got) if got == want => return true,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }
    false
}

/// Issue 23 item 1: with a record every ~100 ms the input is never quiet for
/// long, and the output still comes out while the producer writes (before the
/// fix it came out only when the producer stopped, at any rate).
#[test]
fn output_comes_out_while_input_keeps_coming() {
    for extra in [&[][..], &["--flush-interval", "0"], &["--flush-interval", "50ms"]] {
        let mut child = spawn(&[&["-q"], extra].concat());
        let out = output_lines(&mut child);
        let mut stdin = child.stdin.take().unwrap();
        let lines = (0..100).map(|i| format!("record {i}\n"));
        let seen = produce_until_seen(&mut stdin, &out, lines, "record 0");
        drop(stdin);
        let status = child.wait().unwrap();
        assert!(seen, "{extra:?}: the first record came out only after the producer stopped");
        assert!(status.success(), "{extra:?}");
    }
}

/// Issue 23 item 1: a window that rotates writes out what waits, however long
/// `--flush-interval` is.
#[test]
fn a_window_rotation_flushes() {
    let args = ["-q", "--key", ".id", "--time-field", ".t", "--window", "1m"];
    let mut child = spawn(&[&args[..], &["--flush-interval", "1h"]].concat());
    let out = output_lines(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    // `b` opens a window two minutes on: the window of `a` retires.
    let first = [r#"{"id":"a","t":0}"#, r#"{"id":"b","t":120}"#].map(|l| format!("{l}\n"));
    let later = (0..100).map(|i| format!("{{\"id\":\"c{i}\",\"t\":121}}\n"));
    let seen = produce_until_seen(
        &mut stdin,
        &out,
        first.clone().into_iter().chain(later),
        first[1].trim(),
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(seen, "the records before the rotation waited for the end of the input");
}

/// Waits (bounded) until the child has read everything written into `stdin`.
fn wait_until_read(stdin: &ChildStdin) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int; the descriptor is this test's pipe.
        let rc = unsafe { libc::ioctl(stdin.as_raw_fd(), libc::FIONREAD, &mut queued) };
        assert_eq!(rc, 0, "FIONREAD on a pipe");
        if queued == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "logdedup did not read its input");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `logdedup ARGS` on a pipe fed `writes` one after the other (each read
/// before the next), sends SIGTERM once it has read them all (the pipe still
/// open: the input is not at its end), and returns the exit code, what it
/// wrote, and its `--stats-json`.
fn stopped_after(
    args: &[&str],
    writes: &[&[u8]],
    stats: &Path,
) -> (i32, Vec<u8>, serde_json::Value) {
    let mut child = spawn(&[args, &["--stats-json", stats.to_str().unwrap()]].concat());
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
        out
    });
    let mut stdin = child.stdin.take().unwrap();
    for w in writes {
        stdin.write_all(w).unwrap();
        wait_until_read(&stdin);
    }
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let stats = util::read_stats(stats).unwrap();
    (out.status.code().unwrap_or(-1), reader.join().unwrap(), stats)
}

/// The `--stats-json` counters add up, with `incomplete` among them.
fn assert_conserved(s: &serde_json::Value) {
    let g = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("no {k} in {s}"));
    let by_action = ["emitted", "suppressed", "dropped", "rejected", "unwritten", "incomplete"];
    assert_eq!(g("records_in"), by_action.iter().map(|k| g(k)).sum::<u64>(), "{s}");
}

/// Issue 23 item 2, the issue's repro: a stop in the middle of a record from a
/// pipe, then the whole input again with the same state directory. The cut
/// record is neither written nor remembered by the first run (it is counted as
/// `incomplete`), so the second writes it: each record once, whole, across both.
#[test]
fn a_stop_mid_record_from_a_pipe_loses_nothing_on_replay() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let args = ["-q", "--key", "field:1", "--state-dir", s.to_str().unwrap()];
    let stats = dir.path().join("stats.json");
    let (code, out1, st) = stopped_after(&args, &[b"id0 whole\nid1 first-half"], &stats);
    assert_eq!(code, 0, "a stop ends with 0");
    assert_eq!(String::from_utf8_lossy(&out1), "id0 whole\n", "the cut record was written");
    assert_eq!((st["incomplete"].as_u64(), st["records_in"].as_u64()), (Some(1), Some(2)));
    assert_conserved(&st);

    let all = "id0 whole\nid1 first-half second-half\nid2 x\n";
    let o = util::TestCommand::new(&args[1..]).stdin(all).run();
    o.assert_ok();
    assert_eq!(o.stdout_str(), "id1 first-half second-half\nid2 x\n");
    assert_eq!(o.stat("incomplete"), 0);
}

/// Issue 23 item 2: JSON records cut just before their newline by a stop; the
/// two runs' outputs, appended to one file, are whole lines, each record once
/// (before the fix: `{"id":"a"}{"id":"b"}` on one line, and `a` lost).
#[test]
fn json_records_cut_by_a_stop_do_not_merge_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let args = ["-q", "--key", ".id", "--state-dir", s.to_str().unwrap()];
    let stats = dir.path().join("stats.json");
    let (code, out1, st) = stopped_after(&args, &[br#"{"id":"a"}"#], &stats);
    assert_eq!(code, 0);
    assert_eq!(st["incomplete"].as_u64(), Some(1), "{st}");
    let o = util::TestCommand::new(&args[1..]).stdin("{\"id\":\"a\"}\n{\"id\":\"b\"}\n").run();
    o.assert_ok();
    let both = [out1, o.stdout].concat();
    let ids: Vec<String> = String::from_utf8(both)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids, ["\"a\"", "\"b\""]);
}

/// Issue 23 item 6: a run that fails (exit 2) still prints its summary and
/// writes `--stats-json`, with the error. Here stdout is `/dev/full`: every
/// write fails with ENOSPC.
#[test]
fn a_failed_write_still_reports_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let input: String = (0..1000).map(|i| format!("r{}\n", i % 600)).collect();
    let mut child = Command::new(util::bin())
        .args(["--stats-json", stats.to_str().unwrap(), "--no-progress"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::options().write(true).open("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("logdedup: 1000 records in"), "no summary:\n{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("logdedup: error: writing output"), "the error comes last:\n{stderr}");
    let st = util::read_stats(&stats).unwrap();
    assert_eq!(st["records_in"].as_u64(), Some(1000), "{st}");
    assert_eq!(st["duplicates"].as_u64(), Some(400), "{st}");
    assert!(st["error"].as_str().unwrap().contains("No space left"), "{st}");
    assert_conserved(&st);
}

/// `logdedup --key .id` over the Redis at `url` under `--on-exact-error abort`,
/// with `--stats-json STATS` and `extra` arguments (as [`spawn`]).
fn spawn_aborting(url: &str, stats: &Path, extra: &[&str]) -> Child {
    let args = ["--key", ".id", "--exact", url, "--exact-timeout", "300ms"];
    let abort = ["--on-exact-error", "abort", "--stats-json", stats.to_str().unwrap()];
    spawn(&[&args[..], &abort, extra].concat())
}

/// Issue 23 item 6, the issue's case: `--on-exact-error abort` stops the run
/// (exit 2) after records were written; the summary and `--stats-json` give
/// them, and every record counted as emitted was written.
#[test]
fn an_exact_tier_abort_reports_what_was_written() {
    let mut server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let mut child = spawn_aborting(&url, &stats, &[]);
    let out = output_lines(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let first: String = (0..500).map(|i| format!("{{\"id\":\"a{i}\"}}\n")).collect();
    stdin.write_all(first.as_bytes()).unwrap();
    let mut written = Vec::new();
    while written.len() < 500 {
        written.push(out.recv_timeout(Duration::from_secs(30)).expect("the first records"));
    }
    server.kill();
    let more: String = (0..500).map(|i| format!("{{\"id\":\"b{i}\"}}\n")).collect();
    let _ = stdin.write_all(more.as_bytes());
    drop(stdin);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    written.extend(out.iter());
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("records in"), "no summary:\n{stderr}");
    assert!(stderr.lines().last().unwrap_or_default().contains("abort"), "{stderr}");
    let st = util::read_stats(&stats).unwrap();
    assert!(st["error"].as_str().unwrap().contains("abort"), "{st}");
    assert_eq!(st["emitted"].as_u64(), Some(written.len() as u64), "{st}");
    assert!(st["records_in"].as_u64().unwrap() >= 500, "{st}");
    assert_conserved(&st);
}

/// The `--stats-json` counters named, in order.
fn counters(s: &serde_json::Value, names: &[&str]) -> Vec<u64> {
    names.iter().map(|k| s[k].as_u64().unwrap_or_else(|| panic!("no {k} in {s}"))).collect()
}

/// Issue 23 item 2, an exact-tier abort: the record the reader holds cut short
/// (read without its newline, the pipe still open) is counted as `incomplete`,
/// and the whole records read with it as `unwritten`; none of them is written.
/// (Before: the cut record was in no counter, nor its bytes in `bytes_in`.)
#[test]
fn an_exact_tier_abort_counts_the_record_the_reader_holds() {
    let mut server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let mut child = spawn_aborting(&url, &stats, &["-q"]);
    let out = output_lines(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"id\":\"a\"}\n").unwrap();
    let first = out.recv_timeout(Duration::from_secs(30)).expect("the first record");
    assert_eq!(first, r#"{"id":"a"}"#);
    server.kill();
    // One write shorter than PIPE_BUF, so one read: two whole records and the
    // start of a third. The pipe stays open until logdedup has exited.
    let more = b"{\"id\":\"b\"}\n{\"id\":\"c\"}\n{\"id\":\"d";
    stdin.write_all(more).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(2));
    let after: Vec<String> = out.iter().collect();
    assert!(after.is_empty(), "written after the abort: {after:?}");
    let st = util::read_stats(&stats).unwrap();
    let names = ["records_in", "emitted", "unwritten", "incomplete", "bytes_in"];
    assert_eq!(counters(&st, &names), [4, 1, 2, 1, 11 + more.len() as u64], "{st}");
    assert_conserved(&st);
}

/// As above over a file: the reader, ahead of the batch the abort stopped,
/// holds whole records and one cut short by the end of its last read; they are
/// counted (`unwritten`, `incomplete`), so `bytes_in` is a whole number of
/// records plus the cut one. Records are 25 bytes: reads are powers of two
/// from the start of the file, so no read ends at a record's end.
#[test]
fn an_exact_tier_abort_over_a_file_counts_the_record_the_reader_holds() {
    let mut server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let input = dir.path().join("in.jsonl");
    let text: String = (0..1_000_000u64).map(|i| format!("{{\"id\":\"r{i:014}\"}}\n")).collect();
    assert_eq!(text.len(), 25_000_000);
    std::fs::write(&input, text).unwrap();
    let mut child = spawn_aborting(&url, &stats, &["-q", input.to_str().unwrap()]);
    let out = output_lines(&mut child);
    let first = out.recv_timeout(Duration::from_secs(30)).expect("the first record");
    server.kill();
    let status = child.wait().unwrap();
    let written = 1 + out.iter().count() as u64;
    assert_eq!(status.code(), Some(2), "{first}");
    let st = util::read_stats(&stats).unwrap();
    let [records_in, emitted, incomplete, bytes_in] =
        counters(&st, &["records_in", "emitted", "incomplete", "bytes_in"])[..]
    else {
        unreachable!()
    };
    assert!(bytes_in < 25_000_000, "the run read to the end before the abort: {st}");
    assert_eq!((incomplete, emitted), (1, written), "{st}");
    assert!(bytes_in % 25 > 0 && records_in == bytes_in / 25 + 1, "{st}");
    assert_conserved(&st);
}

/// Issue 23 item 2: a stop inside a record longer than `--max-record-bytes`
/// whose first part went out already ends it with a newline where it went
/// (stdout, the reject file), so the output stays whole lines; cut short, it is
/// counted as `incomplete`. (Before: the output ended inside the record, and a
/// next run appending to it would have joined its first line to it.)
#[test]
fn a_stop_inside_a_long_record_ends_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let rejects = dir.path().join("rejects");
    let long = [b'x'; 100];
    let with_newline = [&long[..], b"\n"].concat();
    for (policy, out_want, rejects_want) in [
        ("emit", [&b"r1\n"[..], &with_newline].concat(), &b""[..]),
        ("reject", b"r1\n".to_vec(), &with_newline[..]),
        ("drop", b"r1\n".to_vec(), b""),
    ] {
        let _ = std::fs::remove_file(&rejects);
        let mut args = vec!["-q", "--max-record-bytes", "10", "--on-oversized", policy];
        if policy == "reject" {
            args.extend(["--reject-file", rejects.to_str().unwrap()]);
        }
        // The second read finds no newline in more than the limit: the record
        // starts going out.
        let (code, out, st) = stopped_after(&args, &[b"r1\n", &long[..90], &long[90..]], &stats);
        assert_eq!(code, 0, "{policy}");
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&out_want), "{policy}");
        let rejected = std::fs::read(&rejects).unwrap_or_default();
        assert_eq!(rejected, rejects_want, "{policy}");
        let names = ["records_in", "emitted", "incomplete", "oversized", "bytes_in"];
        assert_eq!(counters(&st, &names), [2, 1, 1, 0, 103], "{policy}: {st}");
        assert_conserved(&st);
    }
}

/// As above with a long record (over `--max-record-bytes`) behind the failed
/// batch, read without its end in the same read as the batch: the reader still
/// holds it whole (it hands a record on in parts once a read ends with more than
/// the limit and no newline), so it is `incomplete`; none of it is written.
#[test]
fn an_exact_tier_abort_counts_a_long_record_behind_it() {
    let mut server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let mut child = spawn_aborting(&url, &stats, &["-q", "--max-record-bytes", "50"]);
    let out = output_lines(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"id\":\"a\"}\n").unwrap();
    let first = out.recv_timeout(Duration::from_secs(30)).expect("the first record");
    assert_eq!(first, r#"{"id":"a"}"#);
    server.kill();
    let more = [&b"{\"id\":\"b\"}\n{\"id\":\"c\"}\n"[..], &[b'x'; 200]].concat();
    stdin.write_all(&more).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(2));
    let after: Vec<String> = out.iter().collect();
    assert!(after.is_empty(), "written after the abort: {after:?}");
    let st = util::read_stats(&stats).unwrap();
    let names = ["records_in", "emitted", "unwritten", "incomplete", "oversized", "bytes_in"];
    assert_eq!(counters(&st, &names), [4, 1, 2, 1, 0, 11 + more.len() as u64], "{st}");
    assert_conserved(&st);
}

/// A write that fails (stdout is `/dev/full`) on the first part of a long
/// record: the run stops (exit 2), and that record, begun but not ended, is
/// counted once, as `incomplete`; the rest of it, read behind, adds only bytes.
#[test]
fn a_failed_write_inside_a_long_record_counts_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let mut child = Command::new(util::bin())
        .args(["--max-record-bytes", "50", "--no-progress", "-q", "--stats-json"])
        .arg(&stats)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::options().write(true).open("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // One read, no newline in more than the limit: the record starts going
    // out, and that write fails. The pipe stays open: the record has no end.
    stdin.write_all(&[b'x'; 200]).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let st = util::read_stats(&stats).unwrap();
    assert!(st["error"].as_str().unwrap().contains("No space left"), "{st}");
    let names = ["records_in", "incomplete", "unwritten", "oversized", "emitted", "bytes_in"];
    assert_eq!(counters(&st, &names), [1, 1, 0, 0, 0, 200], "{st}");
    assert_conserved(&st);
}
