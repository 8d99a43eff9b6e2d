//! `--state-dir`: a restart does not re-emit; `kill -9` loses nothing; SIGTERM
//! saves; damaged, foreign or mismatched snapshots are clear errors (exit 2);
//! the committed golden snapshots load.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logdedup::config::Checkpoint;
use logdedup::{Config, KeyType};

use crate::util::{self, TestCommand};

fn sd(dir: &Path) -> String {
    dir.join("state").display().to_string()
}

fn run(args: &[&str], input: impl AsRef<[u8]>) -> util::Output {
    let o = TestCommand::new(args).stdin(input).run();
    o.assert_ok();
    o
}

fn ev(id: &str, ts: i64) -> String {
    format!("{{\"id\":\"{id}\",\"ts\":{ts}}}\n")
}

#[test]
fn second_run_emits_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let input: String =
        (0..5000).map(|i| format!("{{\"id\":{},\"s\":\"k{}\"}}\n", i % 700, i % 300)).collect();
    for key in [".id", ".s"] {
        let s = format!("{s}{key}");
        let args = ["--key", key, "--state-dir", &s];
        let first = run(&args, &input);
        assert!(first.stat("emitted") > 0);
        assert!(first.stat("checkpoints") >= 1);
        let again = run(&args, &input);
        assert!(again.stdout.is_empty(), "{key}: re-emitted {}", again.stdout_str());
        assert_eq!(again.stat("duplicates"), 5000);
        let more = format!("{input}{{\"id\":100000,\"s\":\"new\"}}\n");
        let o = run(&args, &more);
        assert_eq!(o.stdout_str(), "{\"id\":100000,\"s\":\"new\"}\n");
    }
}

#[test]
fn clock_and_windows_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let args = [
        "--key",
        ".id",
        "--window",
        "10s",
        "--retain",
        "2",
        "--time-field",
        ".ts",
        "--state-dir",
        &s,
    ];
    run(&args, ev("a", 100) + &ev("b", 115));
    // Window 11 is newest, 10 retained: `a` at 105 is a duplicate, at 95 late.
    let o = run(&args, ev("a", 105) + &ev("a", 95) + &ev("b", 116));
    assert_eq!(o.stdout_str(), ev("a", 95));
    assert_eq!((o.stat("duplicates"), o.stat("late")), (2, 1));
    // The clock moves on: window 10 falls out, so `a` is new again at 120.
    let o = run(&args, ev("a", 120));
    assert_eq!(o.stdout_str(), ev("a", 120));
}

#[test]
fn other_settings_are_refused_and_the_snapshot_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    run(&["--key", ".id", "--state-dir", &s], "{\"id\":1}\n");
    let file = PathBuf::from(&s).join("state.bin");
    let before = std::fs::read(&file).unwrap();
    for other in [
        &["--key", ".other"][..],
        &["--key", ".id", "--key-type", "str"],
        &["--key", ".id", "--window", "1h"],
        &["--key", ".id", "--local-bloom", "on"],
        &["--key", ".id", "--exact", "none"],
    ] {
        let mut a = other.to_vec();
        a.extend(["--state-dir", &s]);
        let o = TestCommand::new(&a).stdin("{\"id\":1}\n").run();
        assert_eq!(o.code, 2, "{other:?}: {}", o.stderr);
        assert!(o.stderr.contains("settings"), "{other:?}: {}", o.stderr);
        assert!(o.stdout.is_empty());
        assert_eq!(std::fs::read(&file).unwrap(), before, "{other:?}: snapshot overwritten");
    }
}

/// `n` JSON records with the distinct string IDs k0, k1, ….
fn keyed_input(n: usize) -> String {
    (0..n).map(|i| format!("{{\"id\":\"k{i}\"}}\n")).collect()
}

/// A state directory written by a run of `n` records keyed on `.id`: the directory's
/// guard, its path and the input.
fn keyed_snapshot(n: usize) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let input = keyed_input(n);
    run(&["--key", ".id", "--state-dir", &s], &input);
    (dir, s, input)
}

/// Rewrites the snapshot's trailing checksum (xxh3-64 of every byte before it) so
/// only the intended change remains.
fn reseal(b: &mut [u8]) {
    let n = b.len() - 8;
    let sum = xxhash_rust::xxh3::xxh3_64(&b[..n]);
    b[n..].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn damaged_or_foreign_snapshots_are_errors() {
    let (_dir, s, input) = keyed_snapshot(100);
    let args = ["--key", ".id", "--state-dir", &s];
    let file = PathBuf::from(&s).join("state.bin");
    let good = std::fs::read(&file).unwrap();
    let mut damaged: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("text".into(), b"hello, world\n".to_vec()),
        ("truncated".into(), good[..good.len() / 2].to_vec()),
        ("one byte short".into(), good[..good.len() - 1].to_vec()),
        ("one byte more".into(), [&good[..], b"\0"].concat()),
        ("zeros".into(), vec![0; good.len()]),
    ];
    for at in [0, 17, 20, 30, good.len() / 2, good.len() - 9, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x40;
        damaged.push((format!("bit flipped at {at}"), b));
    }
    for (what, bytes) in damaged {
        std::fs::write(&file, &bytes).unwrap();
        let o = TestCommand::new(&args).stdin(&input).run();
        assert_eq!(o.code, 2, "{what}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{what}: no silent fresh start");
        assert!(o.stderr.contains("state.bin"), "{what}: names the file: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{what}: {}", o.stderr);
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{what}: the evidence is kept");
    }
    std::fs::write(&file, &good).unwrap();
    let o = run(&args, &input);
    assert!(o.stdout.is_empty());
}

/// A snapshot from another format version, newer or older, is refused by name,
/// not read as this one or as garbage.
#[test]
fn other_versions_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let args = ["--state-dir", &s];
    run(&args, "a\n");
    let file = PathBuf::from(&s).join("state.bin");
    let good = std::fs::read(&file).unwrap();
    for version in [4u32, 0] {
        let mut b = good.clone();
        b[16..20].copy_from_slice(&version.to_le_bytes());
        reseal(&mut b);
        std::fs::write(&file, &b).unwrap();
        let o = TestCommand::new(&args).stdin("a\nb\n").run();
        assert_eq!(o.code, 2, "{version}: {}", o.stderr);
        assert!(o.stderr.contains(&format!("version {version}")), "{}", o.stderr);
        assert!(o.stdout.is_empty(), "{version}: no silent start");
    }
}

/// A snapshot written with the in-process exact tier does not load into a run
/// without one, nor the other way round (the bloom setting the same both times):
/// an error that names `--exact`, not "damaged", and nothing emitted.
#[test]
fn a_changed_exact_tier_is_named() {
    let input = keyed_input(20);
    let memory = ["--key", ".id", "--local-bloom", "on"];
    let none = ["--key", ".id", "--local-bloom", "on", "--exact", "none"];
    for (first, then) in [(&memory[..], &none[..]), (&none[..], &memory[..])] {
        let dir = tempfile::tempdir().unwrap();
        let s = sd(dir.path());
        let with = |a: &[&'static str]| -> Vec<&str> {
            a.iter().copied().chain(["--state-dir", s.as_str()]).collect()
        };
        let (f, t) = (with(first), with(then));
        let o = run(&f, &input);
        assert_eq!(o.stat("new"), 20);
        let o = TestCommand::new(&t).stdin(&input).run();
        assert_eq!(o.code, 2, "{first:?} then {then:?}: {}", o.stderr);
        assert!(crate::util::names_flag(&o.stderr, "--exact"), "{}", o.stderr);
        assert!(!o.stderr.contains("damaged"), "{}", o.stderr);
        assert!(o.stdout.is_empty());
        // The same flags as before still load it.
        let o = run(&f, &input);
        assert_eq!(o.stat("new"), 0);
    }
}

/// A snapshot of `--exact none` loads under a Redis tier and the other way
/// round, as GUIDE.md ("Restarts") says: the seed and the bloom filters carry
/// over, but the IDs a Redis tier never held are written again, and a `none`
/// run finds the string IDs of a Redis run in the bloom filters but not its
/// integer IDs (Redis, not the bitmaps, held those). Nothing is lost either way.
#[test]
fn none_and_redis_share_a_state_dir_without_loss() {
    let server = crate::redis::RedisServer::start();
    let url = server.url();
    let strings = keyed_input(20);
    let ints: String = (0..20).map(|i| format!("{{\"id\":{i}}}\n")).collect();
    let input = format!("{strings}{ints}");
    let dir = tempfile::tempdir().unwrap();
    let (s, s2) = (sd(dir.path()), dir.path().join("second").display().to_string());
    let none = |s: &str| run(&["--key", ".id", "--exact", "none", "--state-dir", s], &input);
    let redis = |s: &str| run(&["--key", ".id", "--exact", &url, "--state-dir", s], &input);
    assert_eq!(none(&s).stat("new"), 40);
    // Redis was empty: everything the `none` run saw is written again.
    let o = redis(&s);
    assert_eq!((o.stat("new"), o.stdout_str()), (40, input.clone()));
    assert_eq!(redis(&s).stat("new"), 0, "Redis holds them now");
    // A state directory only a Redis run wrote: `none` finds the strings only.
    assert_eq!(redis(&s2).stat("new"), 0);
    let o = none(&s2);
    assert_eq!((o.stat("new"), o.stdout_str()), (20, ints));
}

/// Bytes after the last section are refused even under a valid checksum: the
/// file is not what this version wrote.
#[test]
fn trailing_bytes_under_a_valid_checksum_are_refused() {
    let (_dir, s, input) = keyed_snapshot(10);
    let args = ["--key", ".id", "--state-dir", &s];
    let file = PathBuf::from(&s).join("state.bin");
    let good = std::fs::read(&file).unwrap();
    let n = good.len() - 8;
    let mut b = [&good[..n], b"\0", &good[n..]].concat();
    reseal(&mut b);
    std::fs::write(&file, &b).unwrap();
    let o = TestCommand::new(&args).stdin(&input).run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("trailing bytes"), "{}", o.stderr);
    assert!(o.stdout.is_empty(), "no silent start");
    assert_eq!(std::fs::read(&file).unwrap(), b, "the evidence is kept");
}

/// `--checkpoint-every N` snapshots every N records (in process, small reads,
/// so batches are small).
#[test]
fn checkpoint_every_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.state.dir = Some(dir.path().join("s"));
    c.state.checkpoint_every = Checkpoint::Records(50);
    c.framing.chunk_bytes = 64;
    let input: Vec<u8> = (0..1000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    let (out, stats) = util::run_pipeline(c.clone(), input.clone(), 64).unwrap();
    assert_eq!(out, input);
    assert!(stats.checkpoints >= 1000 / 50, "{} checkpoints", stats.checkpoints);
    let (out, _) = util::run_pipeline(c, input, 1 << 16).unwrap();
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------
// Processes killed mid-stream

/// A running `logdedup` whose stdout is collected in the background.
struct Running {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        Running::start_with(args, Stdio::piped())
    }

    /// Like [`Running::start`], reading `stdin` (`Running::stdin` is then `None`).
    fn start_with(args: &[&str], stdin: Stdio) -> Running {
        let mut child = Command::new(util::bin())
            .args(args)
            .arg("--quiet")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 1 << 16];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Running { child, stdin, out, reader: Some(reader) }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.stdin.as_mut().unwrap().write_all(bytes).unwrap();
        self.stdin.as_mut().unwrap().flush().unwrap();
    }

    /// Polls (bounded) until `cond` holds; panics after 60 s.
    fn wait_for(&self, what: &str, cond: impl Fn(&[u8]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond(&self.out.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit; returns the exit status and everything written.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<u8>) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let out = self.out.lock().unwrap().clone();
        (status, out)
    }
}

fn ids_of(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn distinct(ids: &[String], what: &str) -> HashSet<String> {
    let set: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "{what}: an ID was emitted twice within one run");
    set
}

/// After `kill -9` mid-stream, a rerun over the whole input emits every unique
/// record the killed run did not: nothing is lost; and the snapshot spared the
/// rerun at least part of what was already emitted.
#[test]
fn kill_9_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let args = ["--key", ".id", "--state-dir", &s, "--checkpoint-every", "2000"];
    let n = 200_000;
    let rec = |i: usize| format!("{{\"id\":\"k{}\",\"n\":{i}}}\n", (i * 7919) % 60_000);
    let first: String = (0..n / 2).map(rec).collect();
    let all: String = (0..n).map(rec).collect();
    let uniques: HashSet<String> = (0..n).map(|i| format!("k{}", (i * 7919) % 60_000)).collect();

    let mut r = Running::start(&args);
    r.feed(first.as_bytes());
    let state = PathBuf::from(&s).join("state.bin");
    r.wait_for("a checkpoint and some output", |o| !o.is_empty() && state.exists());
    // Kill while the rest of the input is still flowing in.
    let mut stdin = r.stdin.take().unwrap();
    let rest = all.as_bytes()[first.len()..].to_vec();
    let writer = std::thread::spawn(move || {
        for chunk in rest.chunks(4096) {
            if stdin.write_all(chunk).is_err() {
                break;
            }
        }
    });
    r.child.kill().unwrap(); // SIGKILL
    writer.join().unwrap();
    let (status, out1) = r.finish();
    assert!(!status.success(), "the process was killed");
    // Only whole records count as emitted; a torn last line would be re-emitted.
    let cut = out1.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let ids1 = ids_of(&out1[..cut]);
    let set1 = distinct(&ids1, "killed run");

    let o = run(&args, &all);
    let ids2 = ids_of(&o.stdout);
    let set2 = distinct(&ids2, "rerun");
    let union: HashSet<String> = set1.union(&set2).cloned().collect();
    let lost: Vec<&String> = uniques.difference(&union).take(5).collect();
    assert!(lost.is_empty(), "lost after kill -9: {lost:?}");
    assert_eq!(union.len(), uniques.len());
    assert!(
        set1.intersection(&set2).count() < set1.len(),
        "the snapshot spared nothing: all {} IDs re-emitted",
        set1.len()
    );
}

/// SIGTERM: the state is saved, exit 0, and a rerun over what was processed
/// emits nothing.
#[test]
fn sigterm_saves_state_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let args = ["--key", ".id", "--state-dir", &s];
    let part: String =
        (0..3000).map(|i| format!("{{\"id\":\"k{}\",\"n\":{i}}}\n", i % 1000)).collect();
    let mut r = Running::start(&args);
    r.feed(part.as_bytes());
    // The last new record (k999) appears once the input goes idle.
    r.wait_for("the first part's output", |o| o.ends_with(b"{\"id\":\"k999\",\"n\":999}\n"));
    // SAFETY: sending a signal to our own child by its pid.
    let rc = unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = r.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let (_, out) = r.finish();
    assert_eq!(status.code(), Some(0), "SIGTERM ends with 0");
    assert_eq!(ids_of(&out).len(), 1000);
    let o = run(&args, &part);
    assert!(o.stdout.is_empty(), "re-emitted after SIGTERM: {}", o.stdout_str());
    let o = run(&args, format!("{part}{{\"id\":\"fresh\"}}\n"));
    assert_eq!(o.stdout_str(), "{\"id\":\"fresh\"}\n");
}

/// SIGTERM, a quiet moment, then more records while logdedup saves its state and
/// stops: whatever it took from its input it also decided and wrote; the rest is
/// still in the pipe. Nothing falls between. (The test holds the pipe's read end
/// too, so it can read what was left; a large state makes the save take a while.)
#[test]
fn sigterm_takes_nothing_it_does_not_emit() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let (pipe_r, mut pipe_w) = std::io::pipe().unwrap();
    let mut r = Running::start_with(
        &["--key", ".id", "--state-dir", &s],
        Stdio::from(pipe_r.try_clone().unwrap()),
    );
    let line = |i: usize| format!("{{\"id\":\"u{i}\"}}\n");
    let first = 200_000;
    let body: String = (0..first).map(line).collect();
    pipe_w.write_all(body.as_bytes()).unwrap();
    let last = line(first - 1);
    r.wait_for("the first part", |o| o.ends_with(last.as_bytes()));
    // SAFETY: sending a signal to our own child by its pid.
    assert_eq!(unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(250));
    // Then records, one at a time, until it has stopped (at most ~60 KB, so the
    // pipe never fills and no write blocks).
    let mut written = first;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if r.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        if written < first + 3000 {
            pipe_w.write_all(line(written).as_bytes()).unwrap();
            written += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let (status, out) = r.finish();
    assert_eq!(status.code(), Some(0), "SIGTERM ends with 0");
    drop(pipe_w);
    let mut left = String::new();
    let mut pipe_r = pipe_r;
    pipe_r.read_to_string(&mut left).unwrap();
    let out = String::from_utf8(out).unwrap();
    let emitted: Vec<&str> = out.lines().collect();
    let remaining: Vec<&str> = left.lines().collect();
    assert_eq!(
        emitted.len() + remaining.len(),
        written,
        "{} emitted + {} left in the pipe != {written} written",
        emitted.len(),
        remaining.len()
    );
    let all: Vec<String> = (0..written).map(|i| line(i).trim_end().to_string()).collect();
    let seen: Vec<&str> = emitted.iter().chain(&remaining).copied().collect();
    assert!(seen == all, "emitted then left over is not the input, in order");
}

// ---------------------------------------------------------------------------
// Golden snapshots (tests/data/README.md): every later version must load them.

const GOLDEN_FLAGS: [&str; 8] =
    ["--key", ".id", "--window", "1h", "--retain", "2", "--time-field", ".ts"];

/// Copies a committed snapshot to a temporary state dir (runs rewrite it).
fn golden(name: &str) -> (tempfile::TempDir, String) {
    let src = util::repo().join("tests/data").join(name).join("state.bin");
    let bytes = std::fs::read(&src).unwrap();
    assert_eq!(&bytes[..16], b"LOGDEDUP-STATE\0\0", "magic");
    let version = ["-v1", "-v2", "-v3"].iter().position(|v| name.contains(v)).unwrap() as u32 + 1;
    assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), version, "format version");
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    std::fs::create_dir(&s).unwrap();
    std::fs::write(s.join("state.bin"), bytes).unwrap();
    let s = s.display().to_string();
    (dir, s)
}

fn check_golden(name: &str, extra: &[&str]) {
    let input = std::fs::read(util::repo().join("tests/data/golden-state-v1/input.jsonl")).unwrap();
    let h = 1_521_910_800; // the input's first hour
    let owned = |s: &str| -> Vec<String> {
        let mut a: Vec<String> = GOLDEN_FLAGS.iter().chain(extra).map(|x| x.to_string()).collect();
        a.extend(["--state-dir".to_string(), s.to_string()]);
        a
    };
    let args = |s: &str| -> Vec<&'static str> {
        // Test-lifetime strings: a handful per test.
        owned(s).into_iter().map(|x| &*x.leak()).collect()
    };
    // Re-feeding the same input emits only the record without an ID.
    let (_d, s) = golden(name);
    let o = run(&args(&s), &input);
    assert_eq!(o.stdout_str(), format!("{{\"ts\":{},\"msg\":\"no id\"}}\n", h + 3599), "{name}");
    assert_eq!((o.stat("new"), o.stat("late"), o.stat("unkeyed")), (0, 0, 1), "{name}");
    // Each kind of ID is known: dense int, "42" as 42, sparse int, escaped string.
    let (_d, s) = golden(name);
    let known = [
        "1",
        "-7",
        "\"42\"",
        "9223372036854775807",
        "-1608999687919862906",
        "4294967296",
        "\"x\\\"y\"",
        "\"é\"",
    ]
    .map(|id| format!("{{\"ts\":{},\"id\":{id}}}\n", h + 3600 + 5))
    .concat();
    let fresh =
        ["4", "\"43\"", "9223372036854775806", "-1608999687919862907", "\"x\\\\y\"", "\"e\""]
            .map(|id| format!("{{\"ts\":{},\"id\":{id}}}\n", h + 3600 + 5))
            .concat();
    let o = run(&args(&s), format!("{known}{fresh}"));
    assert_eq!(o.stdout_str(), fresh, "{name}: only the new IDs");
    // What that run saved (in this version's format) holds both.
    let o = run(&args(&s), format!("{fresh}{known}"));
    assert_eq!(o.stdout_str(), "", "{name}: after a save in this version's format");
    // The window clock was restored: hour h-1 is late, hour h+2 retires hour h.
    let (_d, s) = golden(name);
    let o = run(&args(&s), format!("{{\"ts\":{},\"id\":1}}\n", h - 1));
    assert_eq!(o.stat("late"), 1, "{name}");
    let (_d, s) = golden(name);
    let o = run(
        &args(&s),
        format!(
            "{{\"ts\":{t},\"id\":\"late-free\"}}\n{{\"ts\":{t},\"id\":\"a\"}}\n",
            t = h + 2 * 3600
        ),
    );
    // `late-free` was seen in hour h+1 (still retained), `a` only in hour h (retired).
    assert_eq!(o.stdout_str(), format!("{{\"ts\":{},\"id\":\"a\"}}\n", h + 2 * 3600), "{name}");
    assert_eq!((o.stat("new"), o.stat("duplicates")), (1, 1), "{name}");
    // The settings string binds the snapshot to its flags.
    let (_d, s) = golden(name);
    let o = TestCommand::new(&["--key", ".id", "--state-dir", &s]).stdin(&input).run();
    assert_eq!(o.code, 2, "{name}: {}", o.stderr);
}

#[test]
fn golden_snapshot_v1_loads() {
    check_golden("golden-state-v1", &[]);
}

#[test]
fn golden_snapshot_v1_with_bloom_loads() {
    check_golden("golden-state-v1-bloom", &["--local-bloom", "on"]);
}

/// Format 2 stores each bloom filter's layout (format 1 had split-block only).
#[test]
fn golden_snapshot_v2_with_bloom_loads() {
    check_golden("golden-state-v2-bloom", &["--local-bloom", "on"]);
}

/// With `--exact none` the blooms alone answer for string IDs, so a filter read in
/// the wrong layout would show here (with the memory tier behind it, it would not).
#[test]
fn golden_snapshot_v2_bloom_alone_loads() {
    check_golden("golden-state-v2-bloom-alone", &["--local-bloom", "on", "--exact", "none"]);
}

/// Format 3 stores the windows each bloom filter covers. Written under `--retain
/// 6`, past the per-window layouts: bloom filters over bands of two windows in
/// front of the memory tier's index (written per window). Loaded here under
/// `--retain 2` (one set per window), and re-fed under `--retain 6`.
#[test]
fn golden_snapshot_v3_bands_load() {
    check_golden("golden-state-v3-bloom", &["--local-bloom", "on"]);
    check_golden_retain_6("golden-state-v3-bloom", &["--local-bloom", "on"]);
}

/// Format 3 under `--exact none --retain 6`: the bloom hashes with their windows.
#[test]
fn golden_snapshot_v3_hash_index_loads() {
    let extra = ["--local-bloom", "on", "--exact", "none"];
    check_golden("golden-state-v3-index-alone", &extra);
    check_golden_retain_6("golden-state-v3-index-alone", &extra);
}

/// Re-feeding the golden input under the `--retain 6` it was written with emits
/// only the record without an ID, and the layout is this version's.
fn check_golden_retain_6(name: &str, extra: &[&str]) {
    let input = std::fs::read(util::repo().join("tests/data/golden-state-v1/input.jsonl")).unwrap();
    let (_d, s) = golden(name);
    let mut a: Vec<&str> = GOLDEN_FLAGS[..4].to_vec();
    a.extend(["--retain", "6", "--time-field", ".ts", "--state-dir", &s]);
    a.extend(extra);
    let o = run(&a, &input);
    assert_eq!((o.stat("new"), o.stat("late"), o.stat("unkeyed")), (0, 0, 1), "{name}");
}

/// The in-process API loads the golden snapshot too (a restart through the library).
#[test]
fn golden_snapshot_loads_in_process() {
    let (_d, s) = golden("golden-state-v1");
    let mut c = Config::default();
    c.key = util::key_spec(&[".id"], None, KeyType::Auto);
    c.window.width_ns = Some(3_600_000_000_000);
    c.window.retain = 2;
    c.time = Some(logdedup::config::TimeConfig {
        field: util::key_spec(&[".ts"], None, KeyType::Str),
        format: None,
    });
    c.state.dir = Some(PathBuf::from(s));
    let input = std::fs::read(util::repo().join("tests/data/golden-state-v1/input.jsonl")).unwrap();
    let (_, stats) = util::run_pipeline(c, input, 7).unwrap();
    assert_eq!((stats.new, stats.unkeyed), (0, 1));
}

/// One process per state directory: a second run over a directory in use is
/// refused (exit 2, nothing written) instead of writing its snapshot over the
/// first's; once the first ends, the next run goes on from its snapshot.
#[test]
fn a_state_dir_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let mut first = Command::new(util::bin())
        .args(["-q", "--state-dir", &s])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    first.stdin.as_mut().unwrap().write_all(b"a\n").unwrap();
    // Its first record out: it holds the directory now.
    let mut got = [0u8; 2];
    first.stdout.as_mut().unwrap().read_exact(&mut got).unwrap();
    assert_eq!(&got, b"a\n");

    let o = TestCommand::raw(&["--state-dir", &s]).stdin("b\n").run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("in use"), "{}", o.stderr);
    assert!(o.stdout.is_empty());

    drop(first.stdin.take());
    assert!(first.wait().unwrap().success());
    let o = run(&["--state-dir", &s], "a\nb\n");
    assert_eq!(o.stdout_str(), "b\n");
}

/// A stop (SIGTERM) in the middle of an input file, then a rerun over the same
/// file: the two runs together write every record once, whole. The record the
/// stop cut short is not written by the first run (its ID would make the rerun
/// skip the whole record); a pipe is held to the same in `streaming.rs`.
#[test]
fn a_stop_mid_file_neither_cuts_nor_loses_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = sd(dir.path());
    let file = dir.path().join("app.log");
    // The key last and of one width: a record cut anywhere but at its end has no
    // key or one no other record has, so a cut record written by the first run
    // shows in its output.
    let text: String =
        (0..200_000).map(|i| format!("{} id{i:06}\n", "x".repeat(40 + i % 50))).collect();
    std::fs::write(&file, &text).unwrap();
    let args = ["-q", "--key", "field:2", "--state-dir", &s, file.to_str().unwrap()];
    let mut child = Command::new(util::bin()).args(args).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    // Its output is not read for a while: it stops mid-file, blocked on stdout.
    let mut first = [0u8; 4];
    out.read_exact(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let run1 = [&first[..], &rest].concat();
    assert!(run1.len() < text.len(), "stopped mid-file");
    let run2 = TestCommand::new(&args[1..]).run();
    run2.assert_ok();

    let whole: HashSet<&str> = text.lines().collect();
    let run1 = String::from_utf8(run1).unwrap();
    assert!(run1.ends_with('\n'), "no record cut short");
    let mut seen = HashSet::new();
    for line in run1.lines().chain(run2.stdout_str().lines().collect::<Vec<_>>()) {
        assert!(whole.contains(line), "not a whole record: {line:?}");
        assert!(seen.insert(line.to_string()), "written twice: {line}");
    }
    assert_eq!(seen.len(), whole.len(), "every record written");
}
