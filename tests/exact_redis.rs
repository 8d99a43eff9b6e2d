//! The Redis exact tier (issue 3), against real servers started by the guards in
//! `redis.rs`: byte-identical output to `--exact memory` on one node and on a
//! three-master cluster, restarts and `--shared` instances, a server killed
//! mid-stream under each `--on-exact-error` policy, bad URLs, the seed handshake,
//! round trips per record and Redis memory per ID.
//!
//! The big measurements (script vs pipelined commands, 1M IDs, throughput) are
//! `#[ignore]`d: run them with
//! `cargo test --release --test tests exact_redis::measure -- --ignored --nocapture`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logdedup::config::{RedisConfig, WindowConfig};
use logdedup::exact::{ExactAnswer, ExactQuery, ExactTier};
use logdedup::window::WindowIndex;

use crate::redis::{RedisCluster, RedisServer};
use crate::util::{self, Output, TestCommand, XorShift};

/// A deterministic stream of JSON lines: int IDs (dense small ones and sparse
/// 64-bit ones), string IDs and `"42"`-style strings that equal an int, about half
/// duplicates, and event times 20 per second with up to 15 s of jitter backwards,
/// so windows of 10 s rotate and some records are late.
fn stream(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let mut next = move || rng.next_u64();
    let mut out = Vec::new();
    let distinct = (n / 2).max(1) as u64;
    for i in 0..n {
        let r = next();
        let k = r % distinct;
        let id = match k % 4 {
            0 => format!("{k}"),
            1 => format!("\"{k}\""),
            2 => format!("{}", (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1) as i64),
            _ => format!("\"req-{k:x}\""),
        };
        let ts = 1_700_000_000 + (i as u64) / 20 - (next() % 16);
        writeln!(out, "{{\"ts\":{ts},\"id\":{id},\"seq\":{i}}}").unwrap();
    }
    out
}

/// Sequential integer IDs with gaps, as order IDs and stream offsets are: one
/// in ten skips up to 100 numbers; about a third of the records repeat one of
/// the last thousand IDs. They start at `start` (below zero: negative IDs, and a
/// range across zero), `per_second` records a second with up to 15 s of jitter
/// backwards. Dense: most ranges get a container.
fn dense_stream(n: usize, seed: u64, per_second: u64, start: i64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::new();
    let (mut next, mut recent) = (start, Vec::with_capacity(1000));
    for i in 0..n {
        let id = if !recent.is_empty() && rng.next_u64().is_multiple_of(3) {
            recent[(rng.next_u64() % recent.len() as u64) as usize]
        } else {
            let gap = if rng.next_u64().is_multiple_of(10) { 1 + rng.next_u64() % 100 } else { 0 };
            next += 1 + gap as i64;
            if recent.len() == 1000 {
                recent.remove(0);
            }
            recent.push(next);
            next
        };
        let ts = 1_700_000_000 + (i as u64) / per_second - (rng.next_u64() % 16);
        writeln!(out, "{{\"ts\":{ts},\"id\":{id},\"seq\":{i}}}").unwrap();
    }
    out
}

/// The container keys in the server, one per line.
fn containers(server: &RedisServer) -> Vec<String> {
    let keys = server.cli(&["--scan", "--pattern", "logdedup:{g*}:w*:c*"]);
    keys.lines().filter(|k| !k.ends_with(":cs")).map(String::from).collect()
}

/// The IDs (the `"id"` text) of JSON lines, as written.
fn ids(lines: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(lines)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            match &v["id"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        })
        .collect()
}

/// Runs `logdedup ARGS --exact TIER` over `input`.
fn run(tier: &str, args: &[&str], input: &[u8]) -> Output {
    let out = TestCommand::new(args).arg("--exact").arg(tier).stdin(input).run();
    out.assert_ok();
    out
}

/// Asserts that `tier` writes exactly what `--exact memory` writes.
fn same_as_memory(tier: &str, args: &[&str], input: &[u8]) -> Output {
    let want = run("memory", args, input);
    let got = run(tier, args, input);
    assert!(
        got.stdout == want.stdout,
        "{tier} {args:?}: output differs from --exact memory ({} vs {} bytes)",
        got.stdout.len(),
        want.stdout.len()
    );
    for k in ["emitted", "duplicates", "late", "unkeyed"] {
        assert_eq!(got.stat(k), want.stat(k), "{k}");
    }
    assert_eq!(got.stat("exact_errors"), 0);
    assert_eq!(got.stat("unconfirmed"), 0);
    got
}

const WINDOWED: &[&str] =
    &["--key", ".id", "--window", "10s", "--time-field", ".ts", "--retain", "2"];

#[test]
fn single_node_matches_memory() {
    let server = RedisServer::start();
    let input = stream(20_000, 7);
    let out = same_as_memory(&server.url(), &["--key", ".id"], &input);
    assert!(out.stat("exact_round_trips") >= 1);
    server.cli(&["flushall"]);
    let out = same_as_memory(&server.url(), WINDOWED, &input);
    assert!(out.stat("windows_rotated") > 10, "the stream must cross many windows");
    assert!(out.stat("late") > 0, "some records must be late");
    // Bucket sets stay intsets and every window key expires.
    let keys = server.cli(&["--scan", "--pattern", "logdedup:{g*}:w*:b*"]);
    let keys: Vec<&str> = keys.lines().collect();
    assert!(!keys.is_empty());
    for k in keys.iter().take(20) {
        assert_eq!(server.cli(&["object", "encoding", k]), "intset", "{k}");
        let ttl: i64 = server.cli(&["pttl", k]).parse().unwrap();
        assert!(ttl > 0, "{k} has no expiry ({ttl})");
    }
}

#[test]
fn dense_integer_ids_live_in_bitmap_containers() {
    // Sequential IDs go into containers (one 8 KiB string per range and window)
    // and the output stays the memory tier's; a second run, one instance or
    // `--shared`, finds every ID, and every key expires with its window.
    let server = RedisServer::start();
    // A first run warms the server up (Lua, the script cache): what is measured
    // is the cost of the IDs of the second.
    run(&server.url(), &["--key", ".id"], &dense_stream(30_000, 4, 20, 1 << 40));
    let input = dense_stream(100_000, 5, 20, -30_000);
    let before = server.used_memory();
    let out = same_as_memory(&server.url(), &["--key", ".id"], &input);
    let distinct = out.stat("emitted");
    let bytes = server.used_memory() - before;
    let per_id = bytes as f64 / distinct as f64;
    eprintln!("dense IDs: {bytes} B of Redis for {distinct} IDs, {per_id:.2} B per ID");
    // Fingerprints in intsets cost ~9.5 B per ID; the bits of these IDs (one in
    // ~6 numbers) ~0.8 B, and the few IDs of the ranges at either end of the
    // span go into buckets.
    assert!(per_id < 1.5, "{per_id:.2} B per ID");
    let cs = containers(&server);
    assert!(cs.len() >= 2, "{cs:?}");
    for k in &cs {
        assert_eq!(server.cli(&["strlen", k]), "8185", "{k}");
    }
    for args in [&["--key", ".id"][..], &["--key", ".id", "--shared"]] {
        let again = run(&server.url(), args, &input);
        assert_eq!(again.stat("emitted"), 0, "{args:?}");
    }
    // Windows: containers, their sets and the directories expire with them.
    server.cli(&["flushall"]);
    let input = dense_stream(60_000, 6, 2_000, -30_000);
    same_as_memory(&server.url(), WINDOWED, &input);
    let cs = containers(&server);
    assert!(!cs.is_empty());
    for k in &cs {
        let base = &k[..k.rfind(':').unwrap()];
        for key in [k.clone(), format!("{base}:cs"), format!("{base}:m")] {
            let ttl: i64 = server.cli(&["pttl", &key]).parse().unwrap();
            assert!(ttl > 0, "{key} has no expiry ({ttl})");
        }
    }
    // `--shared` alike, from an empty server, and one instance after it.
    server.cli(&["flushall"]);
    let input = dense_stream(30_000, 7, 20, -30_000);
    let want = run("memory", &["--key", ".id"], &input);
    let got = run(&server.url(), &["--key", ".id", "--shared"], &input);
    assert!(got.stdout == want.stdout, "--shared differs from memory");
    assert!(!containers(&server).is_empty(), "--shared made no container");
    assert_eq!(run(&server.url(), &["--key", ".id"], &input).stat("emitted"), 0);
}

/// The seed of the golden dump's deployment.
const GOLDEN_META: &str =
    "logdedup-layout-v2 groups=256 load=200 seed=5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// The input of the golden dump: 1,500 IDs of one range but every seventh
/// (a container), and five sparse ones (buckets), some twice.
fn golden_input() -> Vec<u8> {
    let mut out = Vec::new();
    let dense = (1_000_000i64..1_001_500).filter(|v| v % 7 != 0);
    let sparse = [-7, 42, i64::MIN, i64::MAX, 1 << 40];
    for v in dense.chain(sparse).chain(sparse) {
        writeln!(out, "{{\"id\":{v}}}").unwrap();
    }
    out
}

/// Every key in `server`, sorted, one line each: name, type, and value (a
/// string's length and its nonzero bytes as `offset:hex`, a set's members
/// sorted, a hash's fields sorted as `field=value`).
fn dump(server: &RedisServer) -> String {
    const BYTES: &str = "local s = redis.call('GET', KEYS[1]) local o = {#s} \
        for i = 1, #s do local b = s:byte(i) \
        if b ~= 0 then o[#o + 1] = (i - 1) .. ':' .. string.format('%02x', b) end end \
        return table.concat(o, ' ')";
    let mut keys: Vec<String> =
        server.cli(&["--scan", "--pattern", "*"]).lines().map(String::from).collect();
    keys.sort();
    let mut out = String::new();
    for k in keys {
        let kind = server.cli(&["type", &k]);
        let value = match kind.as_str() {
            "string" if k == "logdedup:meta" => server.cli(&["get", &k]),
            "string" => server.cli(&["eval", BYTES, "1", &k]),
            "set" => {
                let mut m: Vec<i64> =
                    server.cli(&["smembers", &k]).lines().map(|l| l.parse().unwrap()).collect();
                m.sort_unstable();
                m.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" ")
            }
            "hash" => {
                let f: Vec<String> =
                    server.cli(&["hgetall", &k]).lines().map(String::from).collect();
                let mut kv: Vec<String> =
                    f.chunks(2).map(|p| format!("{}={}", p[0], p[1])).collect();
                kv.sort();
                kv.join(" ")
            }
            other => panic!("{k}: unexpected type {other}"),
        };
        out.push_str(&format!("{k} {kind} {value}\n"));
    }
    out
}

/// Writes the keys of a [`dump`] into `server`.
fn load(server: &RedisServer, dump: &str) {
    const BYTES: &str = "redis.call('SETRANGE', KEYS[1], tonumber(ARGV[1]) - 1, '\\0') \
        for i = 2, #ARGV do \
        local off, hex = string.match(ARGV[i], '(%d+):(%x+)') \
        redis.call('SETRANGE', KEYS[1], tonumber(off), string.char(tonumber(hex, 16))) end \
        return 1";
    for line in dump.lines() {
        let mut parts = line.splitn(3, ' ');
        let (k, kind, value) =
            (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let words: Vec<&str> = value.split(' ').collect();
        match kind {
            "string" if k == "logdedup:meta" => server.cli(&["set", k, value]),
            "string" => server.cli(&[&["eval", BYTES, "1", k][..], &words].concat()),
            "set" => server.cli(&[&["sadd", k][..], &words].concat()),
            "hash" => {
                let kv: Vec<&str> = words.iter().flat_map(|w| w.splitn(2, '=')).collect();
                server.cli(&[&["hset", k][..], &kv].concat())
            }
            other => panic!("{k}: unexpected type {other}"),
        };
    }
}

#[test]
fn the_container_layout_is_pinned_by_a_golden_dump() {
    // What a small input leaves in Redis (one container and its set, directories,
    // buckets of sparse IDs) is `tests/data/redis-layout-v2.txt`, key by key; and
    // that dump, loaded into an empty server, holds every ID of the input for
    // this version, as it must for later ones (set LOGDEDUP_BLESS=1 to rewrite
    // the file after a deliberate layout change, with a new layout version).
    let path = util::repo().join("tests/data/redis-layout-v2.txt");
    let server = RedisServer::start();
    server.cli(&["set", "logdedup:meta", GOLDEN_META]);
    let input = golden_input();
    let first = run(&server.url(), &["--key", ".id"], &input);
    assert_eq!(first.stat("emitted"), 1_500 - 214 + 5);
    let got = dump(&server);
    if std::env::var_os("LOGDEDUP_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert!(got == want, "the layout changed:\n--- got\n{got}\n--- want\n{want}");
    assert!(want.contains(":c140875061657743 string 8185 "), "one container");
    server.cli(&["flushall"]);
    load(&server, &want);
    assert_eq!(dump(&server), want, "the dump loads back as it was");
    let again = run(&server.url(), &["--key", ".id"], &input);
    assert_eq!(again.stat("emitted"), 0, "{}", again.stdout_str());
    let more: Vec<u8> = b"{\"id\":1000006}\n{\"id\":-8}\n{\"id\":1000008}\n".to_vec();
    let out = run(&server.url(), &["--key", ".id", "--shared"], &more);
    assert_eq!(out.stdout_str(), "{\"id\":1000006}\n{\"id\":-8}\n");
}

#[test]
fn zeek_ntp_matches_memory() {
    let server = RedisServer::start();
    let input = std::fs::read(util::repo().join("datasets/zeek/ntp.json")).unwrap();
    same_as_memory(&server.url(), &["--key", ".uid"], &input);
    server.cli(&["flushall"]);
    same_as_memory(
        &server.url(),
        &["--key", ".uid", "--window", "1m", "--time-field", ".ts"],
        &input,
    );
}

#[test]
fn cluster_matches_memory() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let input = stream(20_000, 11);
    same_as_memory(&url, &["--key", ".id"], &input);
    // The hash-tag groups spread over every master.
    let sizes = cluster.dbsizes();
    assert!(sizes.iter().all(|&s| s > 0), "keys per master: {sizes:?}");
    same_as_memory(&url, WINDOWED, &stream(20_000, 12));
    let zeek = std::fs::read(util::repo().join("datasets/zeek/ntp.json")).unwrap();
    same_as_memory(&url, &["--key", ".uid"], &zeek);
    // A second run over the same cluster emits nothing new.
    let again = run(&url, &["--key", ".uid"], &zeek);
    assert_eq!(again.stat("emitted"), 0);
    // `--shared` alike, and it ends the leases it took (one call per slot).
    // (IDs none of the runs above used.)
    let input: Vec<u8> = (0..20_000u64)
        .flat_map(|i| {
            format!("{{\"id\":\"shared-{}\",\"seq\":{i}}}\n", i * 7919 % 9000).into_bytes()
        })
        .collect();
    let want = run("memory", &["--key", ".id"], &input);
    let got = run(&url, &["--key", ".id", "--shared"], &input);
    assert_eq!(got.stat("emitted"), 9000);
    assert!(got.stdout == want.stdout, "--shared on the cluster differs from memory");
    for &port in &cluster.ports {
        let left = cluster.cli(port, &["--scan", "--pattern", "logdedup:*:p"]);
        assert_eq!(left, "", "leases left on {port}");
    }
    // Dense integer IDs: containers in the slots of their ranges' groups, one
    // instance and `--shared` (IDs none of the runs above used).
    let dense = dense_stream(30_000, 14, 20, 1 << 50);
    same_as_memory(&url, &["--key", ".id"], &dense);
    assert_eq!(run(&url, &["--key", ".id", "--shared"], &dense).stat("emitted"), 0);
    let made: usize = cluster
        .ports
        .iter()
        .map(|&p| cluster.cli(p, &["--scan", "--pattern", "logdedup:*:c*"]).lines().count())
        .sum();
    assert!(made >= 2, "containers on the cluster: {made}");
    let dense = dense_stream(30_000, 15, 20, 1 << 51);
    let want = run("memory", &["--key", ".id"], &dense);
    let got = run(&url, &["--key", ".id", "--shared"], &dense);
    assert!(got.stdout == want.stdout, "--shared dense IDs on the cluster differ from memory");
}

#[test]
fn second_run_emits_nothing_new() {
    let server = RedisServer::start();
    let input = stream(10_000, 3);
    let first = run(&server.url(), &["--key", ".id"], &input);
    assert!(first.stat("emitted") > 1000);
    let second = run(&server.url(), &["--key", ".id"], &input);
    assert_eq!(second.stat("emitted"), 0, "{}", second.stdout_str());
    assert_eq!(second.stat("duplicates"), second.stat("records_in"));
}

#[test]
fn a_restart_mid_stream_writes_what_one_run_writes() {
    // The second process meets windows that already hold data, so it looks every
    // ID up (a local *no* proves nothing there): its output continues the first
    // run's exactly as one `--exact memory` run over the whole stream would, with
    // windows rotating and IDs seen only in older windows.
    let server = RedisServer::start();
    let input = stream(30_000, 13);
    let cut = input[..input.len() / 2].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    for args in [&["--key", ".id"][..], WINDOWED] {
        server.cli(&["flushall"]);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_str().unwrap();
        let with_state: Vec<&str> = args.iter().copied().chain(["--state-dir", state]).collect();
        let want = run("memory", args, &input);
        let first = run(&server.url(), &with_state, &input[..cut]);
        let second = run(&server.url(), &with_state, &input[cut..]);
        assert!(second.stat("emitted") > 1000, "{args:?}: the second part must be mostly new");
        assert!(second.stat("duplicates") > 0, "{args:?}: and repeat some IDs");
        let both = [first.stdout.as_slice(), second.stdout.as_slice()].concat();
        assert!(both == want.stdout, "{args:?}: the two runs differ from one memory run");
    }
}

#[test]
fn shared_instances_emit_each_unique_once() {
    let server = RedisServer::start();
    let input = stream(40_000, 5);
    let want = run("memory", &["--key", ".id"], &input);
    let url = server.url();
    let runs: Vec<Output> = std::thread::scope(|s| {
        let hs: Vec<_> =
            (0..2).map(|_| s.spawn(|| run(&url, &["--key", ".id", "--shared"], &input))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut union: Vec<String> = runs.iter().flat_map(|o| o.lines()).collect();
    let mut expected = want.lines();
    union.sort();
    expected.sort();
    assert_eq!(union.len(), expected.len(), "emitted between them vs unique records");
    assert!(union == expected, "the union of both outputs is not the unique set");
    // Every lease ended once its record was written.
    assert_eq!(server.cli(&["--scan", "--pattern", "logdedup:*:p"]), "", "leases left");
}

#[test]
fn tiny_bloom_drops_no_unique_record() {
    let server = RedisServer::start();
    let args =
        ["--key", ".id", "--local-bloom", "on", "--fpr", "0.5", "--bloom-initial-capacity", "8"];
    let out = same_as_memory(&server.url(), &args, &stream(20_000, 9));
    assert!(out.stat("false_maybes") > 0, "the bloom must be wrong often");
}

#[test]
fn password_and_database_in_the_url() {
    let server = RedisServer::start_tcp(&["--requirepass", "s3cret"]);
    let url = format!("redis://:s3cret@127.0.0.1:{}/3", server.port.unwrap());
    same_as_memory(&url, &["--key", ".id"], &stream(2_000, 4));
    assert!(server.cli(&["-n", "3", "dbsize"]).parse::<u64>().unwrap() > 0);
    assert_eq!(server.cli(&["-n", "0", "dbsize"]), "0");
    // A wrong password is a clear error at start, and the password is not shown.
    let bad = format!("redis://:wrong@127.0.0.1:{}/3", server.port.unwrap());
    let out = TestCommand::new(&["--exact", &bad]).stdin("x\n").run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--exact"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong"), "{}", out.stderr);
}

#[test]
fn tls() {
    let (server, ca) = RedisServer::start_tls();
    let url = format!("rediss://127.0.0.1:{}/0", server.port.unwrap());
    let input = stream(3_000, 31);
    let want = run("memory", &["--key", ".id"], &input);
    let tls_run = || {
        let mut child = Command::new(util::bin())
            .args(["--key", ".id", "--exact", &url])
            .env("SSL_CERT_FILE", &ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = tls_run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == want.stdout, "rediss:// output differs from --exact memory");
    assert!(server.cli(&["dbsize"]).parse::<u64>().unwrap() > 1);
    // Without the CA the certificate is refused: a clear error naming --exact.
    let out = TestCommand::new(&["--exact", &url]).stdin("x\n").run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--exact"), "{}", out.stderr);
}

#[test]
fn bad_url_or_unreachable_server_names_exact() {
    let out = TestCommand::new(&["--exact", "redis://127.0.0.1:notaport/0"]).stdin("x\n").run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("--exact"), "{}", out.stderr);
    let out = TestCommand::new(&["--exact", "redis+cluster://"]).stdin("x\n").run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("--exact"), "{}", out.stderr);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis+unix://{}/nobody.sock", dir.path().display());
    let t = Instant::now();
    let out = TestCommand::new(&["--exact", &url, "--exact-timeout", "300ms"]).stdin("x\n").run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--exact") && out.stderr.contains("cannot connect"),
        "{}",
        out.stderr
    );
    assert!(t.elapsed() < Duration::from_secs(10), "gave up after {:?}", t.elapsed());
}

#[test]
fn seed_is_shared_and_a_mismatch_is_an_error() {
    let server = RedisServer::start();
    let state = tempfile::tempdir().unwrap();
    let sd = state.path().to_str().unwrap();
    let input = stream(2_000, 8);
    let first = run(&server.url(), &["--key", ".id", "--state-dir", sd], &input);
    let meta = server.cli(&["get", "logdedup:meta"]);
    assert!(meta.starts_with("logdedup-layout-v2 groups=256 load=200 seed="), "{meta}");
    // The same state dir and Redis agree: nothing new.
    let again = run(&server.url(), &["--key", ".id", "--state-dir", sd], &input);
    assert_eq!(again.stat("emitted"), 0);
    assert!(first.stat("emitted") > 0);
    // Another deployment's seed in Redis: a clear error, not wrong answers.
    server.cli(&["flushall"]);
    let other = format!("logdedup-layout-v2 groups=256 load=200 seed={}", "ab".repeat(24));
    server.cli(&["set", "logdedup:meta", &other]);
    let out = TestCommand::new(&["--key", ".id", "--state-dir", sd, "--exact", &server.url()])
        .stdin(&input)
        .run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("seed") && out.stderr.contains("--state-dir"), "{}", out.stderr);
    // A layout this version does not know is refused too.
    server.cli(&["set", "logdedup:meta", "logdedup-layout-v9 whatever"]);
    let out = TestCommand::new(&["--exact", &server.url()]).stdin("x\n").run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("logdedup:meta"), "{}", out.stderr);
    // So is the layout before integer containers: its integer IDs are
    // fingerprints in other groups, which this version would not find.
    server.cli(&["set", "logdedup:meta", &other.replace("layout-v2", "layout-v1")]);
    let out = TestCommand::new(&["--exact", &server.url()]).stdin("x\n").run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("logdedup:meta") && out.stderr.contains("logdedup-layout-v1"),
        "{}",
        out.stderr
    );
}

#[test]
fn round_trips_per_thousand_records() {
    // Records of ~40 bytes: a 1 MiB read holds ~25k of them, one round trip.
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    let mut data = Vec::new();
    for i in 0..200_000u64 {
        writeln!(data, "id-{:x} some payload", i * 7 % 150_000).unwrap();
    }
    std::fs::write(&file, &data).unwrap();
    let out = TestCommand::new(&["--key", "field:1", "--exact", &server.url()]).arg(&file).run();
    out.assert_ok();
    let (rt, n) = (out.stat("exact_round_trips"), out.stat("records_in"));
    assert!(rt >= 1 && rt * 1000 <= n, "{rt} round trips for {n} records");
    assert_eq!(out.stat("emitted"), 150_000);
}

#[test]
fn memory_per_id_in_redis() {
    // Redis's used_memory grows by at most 12 B per stored ID. A first run warms
    // the server up (Lua VM, script cache, the 256 groups' directories), so what is
    // measured is the marginal cost of 200k more IDs; the figure for 1M IDs from
    // an empty server is in BENCHMARKS.md's Redis section (`measure` below).
    let server = RedisServer::start();
    let ids = |range: std::ops::Range<u64>| {
        let mut data = Vec::new();
        for i in range {
            writeln!(data, "request-{i}").unwrap();
        }
        data
    };
    let drop_rings = || {
        for k in server.cli(&["--scan", "--pattern", "logdedup:r:*"]).lines() {
            server.cli(&["del", k]);
        }
    };
    run(&server.url(), &[], &ids(0..20_000));
    drop_rings();
    let before = server.used_memory();
    run(&server.url(), &[], &ids(20_000..220_000));
    drop_rings();
    let per_id = (server.used_memory() - before) as f64 / 200_000.0;
    eprintln!("Redis memory per ID: {per_id:.2} B");
    assert!(per_id <= 12.0, "{per_id:.2} B per ID");
}

/// The tier through the library: `n` random fingerprints in batches of 5000.
fn tier_queries(n: usize, seed: u64, own: i64, oldest: i64) -> Vec<ExactQuery> {
    let mut rng = XorShift::new(seed);
    (0..n)
        .map(|_| {
            let mut fp = 0u128;
            for _ in 0..2 {
                fp = fp << 64 | u128::from(rng.next_u64());
            }
            ExactQuery {
                fp,
                oldest: WindowIndex(oldest),
                own: WindowIndex(own),
                local_new: false,
                int: false,
            }
        })
        .collect()
}

/// Integer-ID queries (the mapped integer in `fp`, `int` set): `dense`
/// consecutive IDs from `start`, skipping one in eight (their ranges get
/// containers), then `sparse` random 64-bit ones (each alone in its range: kept
/// in buckets).
fn int_queries(start: i64, dense: usize, sparse: usize, own: i64, oldest: i64) -> Vec<ExactQuery> {
    let mut rng = XorShift::new(start as u64 ^ 0x5EED);
    let values = (0..dense as i64)
        .map(|k| start + k + k / 7)
        .chain((0..sparse).map(|_| rng.next_u64() as i64));
    values
        .map(|v| ExactQuery {
            fp: u128::from(logdedup::key::int::to_u64(v)),
            oldest: WindowIndex(oldest),
            own: WindowIndex(own),
            local_new: false,
            int: true,
        })
        .collect()
}

fn tier(url: &str, window: WindowConfig) -> Box<dyn ExactTier> {
    tier_reading(url, window, RedisConfig::DEFAULT_PRELOAD_MAX)
}

/// One instance that reads whole the windows of at most `preload_max` IDs.
fn tier_reading(url: &str, window: WindowConfig, preload_max: u64) -> Box<dyn ExactTier> {
    let cfg = RedisConfig {
        url: url.into(),
        timeout: Duration::from_secs(5),
        shared: false,
        lease: RedisConfig::DEFAULT_LEASE,
        preload_max,
    };
    logdedup::exact::redis::connect(&cfg, &window, None).unwrap().0
}

fn answers(t: &mut dyn ExactTier, qs: &[ExactQuery]) -> Vec<ExactAnswer> {
    let (mut all, mut part) = (Vec::new(), Vec::new());
    for b in qs.chunks(5000) {
        t.check_and_insert(b, &mut part).unwrap();
        // As the pipeline does once a batch's records are written out.
        t.output_written(false);
        all.extend_from_slice(&part);
    }
    all
}

/// Checks every bucket of window `w` in groups `groups`: an intset under the limit,
/// and the directory's count equals the members; returns the members.
fn check_buckets(server: &RedisServer, w: i64, groups: &[u8]) -> u64 {
    let mut total = 0;
    for &g in groups {
        let dir = server.cli(&["hmget", &format!("logdedup:{{g{g}}}:w{w}:m"), "L", "s", "n"]);
        let v: Vec<u64> = dir.lines().map(|l| l.parse().unwrap()).collect();
        let buckets = (1 << v[0]) + v[1];
        let mut sum = 0;
        for b in 0..buckets {
            let k = format!("logdedup:{{g{g}}}:w{w}:b{b}");
            let n: u64 = server.cli(&["scard", &k]).parse().unwrap();
            assert!(n <= 512, "{k}: {n}");
            if n > 0 {
                assert_eq!(server.cli(&["object", "encoding", &k]), "intset", "{k}");
            }
            sum += n;
        }
        assert_eq!(sum, v[2], "group {g}");
        total += sum;
    }
    total
}

#[test]
fn splits_keep_every_member_findable() {
    // 150k members in one window: one instance journals them, then compacts them
    // into buckets, splitting each bucket several times.
    let server = RedisServer::start();
    let mut t = tier(&server.url(), WindowConfig::default());
    let qs = tier_queries(150_000, 1, 0, 0);
    assert!(answers(t.as_mut(), &qs).iter().all(|&a| a == ExactAnswer::New));
    // Repeats are answered from what is pending: the only round trip left is the
    // one carrying the previous pass's last journal.
    let before = t.stats().round_trips;
    assert!(answers(t.as_mut(), &qs).iter().all(|&a| a == ExactAnswer::Seen));
    assert_eq!(t.stats().round_trips, before + 1);
    t.flush().unwrap();
    let s = t.stats();
    assert_eq!((s.queries, s.errors, s.fingerprints), (300_000, 0, 150_000));
    // One round trip per batch of 5000 (journal and lookups together), one to learn
    // that the window is new, and a few for the compaction.
    assert!(s.round_trips >= 31 && s.round_trips <= 40, "{}", s.round_trips);
    assert_eq!(server.cli(&["scard", "logdedup:{j}:dir"]), "0", "journals left");
    assert!(check_buckets(&server, 0, &[0, 77, 255]) > 1000);
    // Another process finds the window filled and asks the per-query script, which
    // reads the buckets this client split.
    let mut t = tier(&server.url(), WindowConfig::default());
    assert!(answers(t.as_mut(), &qs).iter().all(|&a| a == ExactAnswer::Seen));
    // Older windows are checked, and the answer is inserted into the own window.
    let w = WindowConfig { width_ns: Some(10_000_000_000), retain: 2 };
    let mut t = tier(&server.url(), w);
    let first = tier_queries(20_000, 2, 100, 99);
    assert!(answers(t.as_mut(), &first).iter().all(|&a| a == ExactAnswer::New));
    let next: Vec<ExactQuery> = first
        .iter()
        .map(|q| ExactQuery { own: WindowIndex(101), oldest: WindowIndex(100), ..*q })
        .collect();
    assert!(answers(t.as_mut(), &next).iter().all(|&a| a == ExactAnswer::Seen));
    // Retain 2: window 102 sees 101 (where the repeats were inserted), not 100.
    let later: Vec<ExactQuery> = first
        .iter()
        .map(|q| ExactQuery { own: WindowIndex(102), oldest: WindowIndex(101), ..*q })
        .collect();
    assert!(answers(t.as_mut(), &later).iter().all(|&a| a == ExactAnswer::Seen));
    let beyond: Vec<ExactQuery> = first
        .iter()
        .map(|q| ExactQuery { own: WindowIndex(104), oldest: WindowIndex(103), ..*q })
        .collect();
    assert!(answers(t.as_mut(), &beyond).iter().all(|&a| a == ExactAnswer::New));
}

fn shared_tier(url: &str) -> Box<dyn ExactTier> {
    shared_tier_leasing(url, RedisConfig::DEFAULT_LEASE)
}

/// A `--shared` client with `--shared-lease LEASE`.
fn shared_tier_leasing(url: &str, lease: Duration) -> Box<dyn ExactTier> {
    let cfg = RedisConfig {
        url: url.into(),
        timeout: Duration::from_secs(5),
        shared: true,
        lease,
        preload_max: RedisConfig::DEFAULT_PRELOAD_MAX,
    };
    logdedup::exact::redis::connect(&cfg, &WindowConfig::default(), None).unwrap().0
}

/// The members of window `w` by the directories' counts (all groups).
fn members_in(server: &RedisServer, w: i64) -> u64 {
    (0..=255)
        .map(|g| {
            let n = server.cli(&["hget", &format!("logdedup:{{g{g}}}:w{w}:m"), "n"]);
            n.parse::<u64>().unwrap_or(0)
        })
        .sum()
}

#[test]
fn a_container_takes_later_ids_as_a_bitmap_and_as_offsets() {
    // A range's container, made by one compaction, takes the IDs of later ones:
    // many at once as a whole bitmap ORed in (which must keep its size, its
    // flag and its expiry), a few as bit offsets; IDs of its range that a later
    // process could not put there stay findable in the buckets. Window 1e9 of
    // 10 s windows: its keys expire in the future.
    let server = RedisServer::start();
    let w = WindowConfig { width_ns: Some(10_000_000_000), retain: 1 };
    let at = |qs: Vec<ExactQuery>| -> Vec<ExactQuery> {
        qs.into_iter()
            .map(|q| ExactQuery {
                own: WindowIndex(1_000_000_000),
                oldest: WindowIndex(1_000_000_000),
                ..q
            })
            .collect()
    };
    let first = at(int_queries(0, 2_000, 0, 0, 0));
    let many = at(int_queries(3_000, 1_000, 0, 0, 0));
    let few = at(int_queries(5_000, 100, 0, 0, 0));
    let mut done: Vec<ExactQuery> = Vec::new();
    for part in [&first, &many, &few] {
        let mut t = tier(&server.url(), w.clone());
        assert!(answers(t.as_mut(), part).iter().all(|&a| a == ExactAnswer::New));
        t.flush().unwrap();
        drop(t);
        done.extend(part.iter());
        let mut t = tier_reading(&server.url(), w.clone(), 0);
        let again = answers(t.as_mut(), &done);
        let missed = again.iter().filter(|&&a| a != ExactAnswer::Seen).count();
        assert_eq!(missed, 0, "after {} IDs", done.len());
    }
    let cs = containers(&server);
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert_eq!(server.cli(&["strlen", &cs[0]]), "8185");
    assert_eq!(server.cli(&["bitcount", &cs[0]]), (3_100 + 1).to_string(), "IDs and the flag");
    let ttl: i64 = server.cli(&["pttl", &cs[0]]).parse().unwrap();
    assert!(ttl > 0, "{} has no expiry ({ttl})", cs[0]);
    // One 8 KiB allocation (and the key's own ~90 B), not jemalloc's next class.
    let usage: u64 = server.cli(&["memory", "usage", &cs[0]]).parse().unwrap();
    assert!(usage < 8_400, "{usage} B");
}

#[test]
fn a_journal_left_behind_is_moved_by_the_next_process() {
    let server = RedisServer::start();
    let qs = tier_queries(20_000, 5, 0, 0);
    let mut t = tier(&server.url(), WindowConfig::default());
    assert!(answers(t.as_mut(), &qs).iter().all(|&a| a == ExactAnswer::New));
    // A batch's journal rides with the next batch's call; a quiet input writes it.
    assert_eq!(server.cli(&["scard", "logdedup:{j}:dir"]), "3");
    t.output_written(true);
    // A last batch answered but whose records were never written out (the process
    // dies first) is in no journal: the next process takes its IDs as new again.
    let unwritten = tier_queries(1_000, 9, 0, 0);
    let mut part = Vec::new();
    t.check_and_insert(&unwritten, &mut part).unwrap();
    assert!(part.iter().all(|&a| a == ExactAnswer::New));
    // Dropped without `flush`: a process killed after writing its answers.
    drop(t);
    let journals: u64 = server.cli(&["scard", "logdedup:{j}:dir"]).parse().unwrap();
    assert_eq!(journals, 4, "one journal per batch written out");
    assert_eq!(members_in(&server, 0), 0, "nothing compacted yet");
    // The next process moves the journals into buckets before answering.
    let mut t = tier(&server.url(), WindowConfig::default());
    assert_eq!(server.cli(&["scard", "logdedup:{j}:dir"]), "0");
    assert_eq!(server.cli(&["--scan", "--pattern", "logdedup:*:j:*"]), "");
    assert_eq!(members_in(&server, 0), 20_000);
    assert!(answers(t.as_mut(), &qs).iter().all(|&a| a == ExactAnswer::Seen));
    assert!(answers(t.as_mut(), &unwritten).iter().all(|&a| a == ExactAnswer::New));
    check_buckets(&server, 0, &[0, 128, 255]);
}

#[test]
fn a_window_met_with_data_is_read_whole_or_asked_alike() {
    // A restarted instance meets windows that already hold IDs. Read whole (the
    // default) or asked ID by ID (`preload_max` 0), it answers as the memory tier
    // does over both runs: IDs held in its own window, IDs held only in an older
    // one (which must then join the own window), and new IDs, each twice.
    // Integer IDs too: in containers and in buckets, in both windows.
    let first: Vec<ExactQuery> = [
        tier_queries(3_000, 41, 0, 0),
        tier_queries(3_000, 43, 1, 0),
        int_queries(-1_000, 3_000, 300, 0, 0),
        int_queries(1 << 40, 3_000, 300, 1, 0),
    ]
    .concat();
    let mut second: Vec<ExactQuery> = Vec::new();
    for base in [
        tier_queries(1_500, 41, 1, 0),
        tier_queries(1_500, 43, 1, 0),
        int_queries(-1_000, 1_500, 0, 1, 0),
        int_queries(1 << 40, 1_500, 0, 1, 0),
        int_queries(-1_000, 3_000, 300, 1, 0)[3_000..].to_vec(),
    ] {
        second.extend(&base);
    }
    second.extend(tier_queries(3_000, 47, 1, 0));
    second.extend(int_queries(1 << 20, 2_000, 300, 1, 0));
    let mut met: HashSet<u128> = HashSet::new();
    for q in &mut second {
        // A fresh local tier says *no* to an ID's first occurrence in this run.
        q.local_new = met.insert(q.fp);
    }
    let again: Vec<ExactQuery> =
        second.iter().map(|q| ExactQuery { local_new: false, ..*q }).collect();
    let second = [second, again].concat();
    let mut memory = logdedup::exact::MemoryTier::new();
    answers(&mut memory, &first);
    let want = answers(&mut memory, &second);
    assert!(want.contains(&ExactAnswer::New) && want.contains(&ExactAnswer::Seen));
    for preload_max in [RedisConfig::DEFAULT_PRELOAD_MAX, 0] {
        let server = RedisServer::start();
        let mut t = tier(&server.url(), WindowConfig::default());
        answers(t.as_mut(), &first);
        t.flush().unwrap();
        drop(t);
        let cs = containers(&server);
        assert!(cs.iter().any(|k| k.contains(":w0:")) && cs.iter().any(|k| k.contains(":w1:")));
        let mut t = tier_reading(&server.url(), WindowConfig::default(), preload_max);
        assert_eq!(answers(t.as_mut(), &second), want, "preload_max {preload_max}");
        t.flush().unwrap();
        drop(t);
        // What the second run added is in Redis, in window 1 (also the IDs it
        // held only in window 0): a third process asking window 1 alone agrees.
        let mut t = tier_reading(&server.url(), WindowConfig::default(), preload_max);
        let only_own: Vec<ExactQuery> =
            second.iter().map(|q| ExactQuery { oldest: q.own, ..*q }).collect();
        let third = answers(t.as_mut(), &only_own);
        assert!(third.iter().all(|&a| a == ExactAnswer::Seen), "preload_max {preload_max}");
        drop(t);
        // A `--shared` client checks containers and buckets alike.
        let mut t = shared_tier(&server.url());
        let fourth = answers(t.as_mut(), &only_own);
        assert!(fourth.iter().all(|&a| a == ExactAnswer::Seen), "preload_max {preload_max}");
    }
}

#[test]
fn journals_of_old_logs_outlive_their_long_past_windows() {
    // Event times from 2023 with 10 s windows: the windows' ends are long past on
    // the clock, so keys take the fallback TTL from now, journals included.
    let server = RedisServer::start();
    let w = WindowConfig { width_ns: Some(10_000_000_000), retain: 1 };
    let qs = tier_queries(3_000, 41, 170_000_000, 169_999_999);
    let mut t = tier(&server.url(), w.clone());
    assert!(answers(t.as_mut(), &qs).iter().all(|&a| a == ExactAnswer::New));
    t.output_written(true);
    drop(t);
    let names = server.cli(&["smembers", "logdedup:{j}:dir"]);
    let name = names.lines().next().expect("a journal");
    let ttl: i64 = server.cli(&["pttl", name]).parse().unwrap();
    assert!(ttl > 10_000, "{name}: pttl {ttl}");
    let mut t = tier(&server.url(), w);
    assert_eq!(members_in(&server, 170_000_000), 3_000);
    assert!(answers(t.as_mut(), &qs).iter().all(|&a| a == ExactAnswer::Seen));
    for g in [0, 255] {
        let k = format!("logdedup:{{g{g}}}:w170000000:b0");
        let ttl: i64 = server.cli(&["pttl", &k]).parse().unwrap();
        assert!(ttl > 10_000, "{k}: pttl {ttl}");
    }
}

#[test]
fn shared_clients_wait_for_a_lease_and_take_it_when_it_lapses() {
    // Client A finds IDs new; until their records are written they are leased to
    // A. Client B meeting one meanwhile neither calls it a duplicate (A may die
    // before writing it) nor new (A may write it): it asks again until the lease
    // is ended (written: a duplicate) or lapses (A died: new, leased to B now).
    let server = RedisServer::start();
    let url = server.url();
    let leases = || server.cli(&["--scan", "--pattern", "logdedup:*:p"]);
    let qs = tier_queries(3, 40, 0, 0);
    let (lapses, written, third) = (&qs[0..1], &qs[1..2], &qs[2..3]);
    let mut a = shared_tier_leasing(&url, Duration::from_millis(300));
    let mut b = shared_tier_leasing(&url, Duration::from_secs(600));
    let mut ans = Vec::new();
    a.check_and_insert(&qs, &mut ans).unwrap();
    assert_eq!(ans, [ExactAnswer::New; 3]);
    assert_eq!(leases().lines().count(), 3, "one lease per ID (three groups)");
    // A's lease lapses while B waits for it: new for B, and B holds it now (so
    // the same ID again in the batch is a duplicate).
    b.check_and_insert(&[lapses[0], lapses[0]], &mut ans).unwrap();
    assert_eq!(ans, [ExactAnswer::New, ExactAnswer::Seen], "{:?}", b.last_error());
    // A writes its records and ends its leases, the one B took over too (A's
    // record is out, so B's is the duplicate).
    a.output_written(true);
    assert_eq!(leases(), "", "A's leases end");
    b.check_and_insert(written, &mut ans).unwrap();
    assert_eq!(ans, [ExactAnswer::Seen], "written by A: a duplicate");
    b.check_and_insert(&[lapses[0], third[0]], &mut ans).unwrap();
    assert_eq!(ans, [ExactAnswer::Seen; 2]);
    // B's own lease is B's: a duplicate at once, for B.
    let fresh = tier_queries(1, 42, 0, 0);
    b.check_and_insert(&[fresh[0], fresh[0]], &mut ans).unwrap();
    assert_eq!(ans, [ExactAnswer::New, ExactAnswer::Seen]);
    assert_eq!(leases().lines().count(), 1, "B holds one lease");
    b.output_written(true);
    assert_eq!(leases(), "", "every lease ended");
    assert_eq!(a.stats().errors + b.stats().errors, 0);
}

#[test]
fn compaction_after_another_writer_split_the_buckets() {
    // The per-query script of another client splits the buckets this client
    // compacted into (200k IDs: ~780 per group, several splits each); then this
    // client compacts more. Every ID stays findable and the counts add up.
    let server = RedisServer::start();
    let url = server.url();
    let (a, b, c) = (
        tier_queries(30_000, 10, 0, 0),
        tier_queries(200_000, 12, 0, 0),
        tier_queries(30_000, 14, 0, 0),
    );
    let mut fast = tier(&url, WindowConfig::default());
    assert!(answers(fast.as_mut(), &a).iter().all(|&x| x == ExactAnswer::New));
    fast.flush().unwrap();
    // The per-query script of another client splits the same buckets.
    let mut other = shared_tier(&url);
    let got = answers(other.as_mut(), &b);
    assert!(got.iter().all(|&x| x == ExactAnswer::New), "{:?} {:?}", other.last_error(), &got[..5]);
    assert!(answers(fast.as_mut(), &c).iter().all(|&x| x == ExactAnswer::New));
    fast.flush().unwrap();
    assert_eq!(fast.stats().errors, 0);
    assert_eq!(members_in(&server, 0), 260_000);
    check_buckets(&server, 0, &[0, 1, 254]);
    let mut check = tier(&url, WindowConfig::default());
    for qs in [&a, &b, &c] {
        assert!(answers(check.as_mut(), qs).iter().all(|&x| x == ExactAnswer::Seen));
    }
}

/// `logdedup --key .id --exact URL ARGS` with piped stdin and stdout, stderr dropped.
fn spawn_keyed(url: &str, args: &[&str]) -> std::process::Child {
    Command::new(util::bin())
        .args(["--key", ".id", "--exact", url, "--no-progress"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn killed_with_sigkill_a_rerun_neither_loses_nor_repeats_what_was_written() {
    // One instance writes a journal of the IDs whose records are out; after
    // `kill -9` the next run over the same input emits exactly the rest.
    for input in [stream(40_000, 31), dense_stream(40_000, 31, 20, -30_000)] {
        killed_then_rerun(&input);
    }
}

fn killed_then_rerun(input: &[u8]) {
    let server = RedisServer::start();
    let url = server.url();
    let half = input[..input.len() / 2].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let mut child = spawn_keyed(&url, &[]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&input[..half]).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    // Wait until the output has stopped growing (the input is quiet: the last
    // journal is written), then kill without warning, stdin still open.
    let (mut last, mut stable) = (0, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(60);
    while stable.elapsed() < Duration::from_millis(800) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let n = got.lock().unwrap().len();
        if n != last || n == 0 {
            (last, stable) = (n, Instant::now());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let first = got.lock().unwrap().clone();
    let first = &first[..first.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)];
    assert!(!first.is_empty(), "the first run wrote nothing");
    let second = run(&url, &["--key", ".id"], input);
    let a: HashSet<String> = ids(first).into_iter().collect();
    let b: Vec<String> = ids(&second.stdout);
    let repeated: Vec<&String> = b.iter().filter(|id| a.contains(*id)).take(5).collect();
    assert!(repeated.is_empty(), "written by both runs: {repeated:?}");
    let all: HashSet<String> = ids(input).into_iter().collect();
    let emitted: HashSet<String> = a.into_iter().chain(b).collect();
    assert_eq!(emitted, all, "every ID is written by one of the runs");
}

#[test]
fn killed_with_its_output_blocked_a_rerun_loses_nothing() {
    // Records decided but not yet written out when the process dies (here: stuck
    // on a full stdout that nobody reads) come back in the next run: in a window
    // the process owns, and in one that held data when the process met it (a
    // restart), where every ID is looked up in Redis instead of trusted locally;
    // and under `--shared`, where the dead process's IDs are leased, not final,
    // until their records are out.
    // Dense integer IDs (containers) too, in two of the cases.
    let shared: &[&str] = &["--shared", "--shared-lease", "1s"];
    for (prefill, args, dense) in [
        (false, &[][..], false),
        (true, &[][..], false),
        (false, shared, false),
        (true, shared, false),
        (true, &[][..], true),
        (true, shared, true),
    ] {
        let server = RedisServer::start();
        let url = server.url();
        let keyed = [&["--key", ".id"][..], args].concat();
        let shape =
            |n, seed| if dense { dense_stream(n, seed, 20, -30_000) } else { stream(n, seed) };
        let before: HashSet<String> = if prefill {
            ids(&run(&url, &keyed, &shape(20_000, 7)).stdout).into_iter().collect()
        } else {
            HashSet::new()
        };
        let input = shape(200_000, 31);
        let mut child = spawn_keyed(&url, args);
        let mut stdin = child.stdin.take().unwrap();
        let fed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer = {
            let (fed, input) = (fed.clone(), input.clone());
            std::thread::spawn(move || {
                for chunk in input.chunks(4096) {
                    if stdin.write_all(chunk).is_err() {
                        break;
                    }
                    fed.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
                }
            })
        };
        // Once stdout's pipe is full the process stops taking input.
        let (mut last, mut stable) = (usize::MAX, Instant::now());
        let deadline = Instant::now() + Duration::from_secs(60);
        while stable.elapsed() < Duration::from_millis(800) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let n = fed.load(std::sync::atomic::Ordering::SeqCst);
            if n != last {
                (last, stable) = (n, Instant::now());
            }
        }
        assert!(last < input.len(), "all input was taken although stdout was blocked");
        child.kill().unwrap();
        child.wait().unwrap();
        writer.join().unwrap();
        let mut written = Vec::new();
        std::io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut written).unwrap();
        let written = &written[..written.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)];
        let prefill = format!("{prefill} {args:?} dense {dense}");
        assert!(!written.is_empty(), "prefill {prefill}: nothing was written before the kill");
        let rerun = run(&url, &keyed, &input);
        let order = ids(written);
        let a: HashSet<String> = order.iter().cloned().collect();
        let b: Vec<String> = ids(&rerun.stdout);
        // The records whose write was under way are not journaled yet: the rerun
        // may write them again, but only a tail of what was written (the blocked
        // batch), never anything from before it.
        let again: HashSet<&String> = b.iter().filter(|id| a.contains(*id)).collect();
        if let Some(first) = order.iter().position(|id| again.contains(id)) {
            let gaps: Vec<&String> =
                order[first..].iter().filter(|id| !again.contains(id)).collect();
            assert!(gaps.is_empty(), "prefill {prefill}: repeats are not a tail: {gaps:?}");
            assert!(first > 0, "prefill {prefill}: everything written was written again");
        }
        let stale: Vec<&String> = a.iter().chain(&b).filter(|id| before.contains(*id)).collect();
        assert!(stale.is_empty(), "prefill {prefill}: seen before, written again: {stale:?}");
        let want: HashSet<String> =
            ids(&input).into_iter().filter(|id| !before.contains(id)).collect();
        let got: HashSet<String> = a.into_iter().chain(b).collect();
        let lost = want.difference(&got).count();
        assert_eq!(lost, 0, "prefill {prefill}: {lost} IDs written by neither run");
        assert_eq!(got, want);
    }
}

/// Feeds `input` to a running logdedup slowly (chunks with pauses), calling
/// `at(chunk)` between chunks; returns the output and the exit code.
fn slow_run(args: &[&str], input: &[u8], chunks: usize, mut at: impl FnMut(usize)) -> Output {
    let stats = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(util::bin())
        .args(args)
        .arg("--stats-json")
        .arg(stats.path())
        .arg("--no-progress")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        for line in BufReader::new(stdout).split(b'\n') {
            out.extend_from_slice(&line.unwrap());
            out.push(b'\n');
        }
        out
    });
    let mut stdin = child.stdin.take().unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let per = lines.len().div_ceil(chunks);
    for (c, part) in lines.chunks(per).enumerate() {
        at(c);
        for l in part {
            if stdin.write_all(l).is_err() {
                break; // the run stopped (abort)
            }
        }
        let _ = stdin.flush();
        std::thread::sleep(Duration::from_millis(60));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stats = util::read_stats(stats.path());
    Output {
        stdout: reader.join().unwrap(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
        stats: stats.as_ref().ok().cloned(),
        stats_missing: stats.err(),
    }
}

#[test]
fn server_killed_mid_stream_open() {
    let mut server = RedisServer::start();
    let url = server.url();
    let input = stream(30_000, 21);
    let args =
        ["--key", ".id", "--exact", &url, "--exact-timeout", "300ms", "--on-exact-error", "open"];
    let out = slow_run(&args, &input, 30, |c| match c {
        10 => server.kill(),
        16 => server.restart(),
        _ => {}
    });
    out.assert_ok();
    assert!(
        out.stat("unconfirmed") > 0 || out.stat("exact_errors") > 0,
        "the outage must show in the stats: {:?}",
        out.stats
    );
    // Open: no unique record is lost.
    let emitted: HashSet<String> = ids(&out.stdout).into_iter().collect();
    let want: HashSet<String> = ids(&input).into_iter().collect();
    let missing: Vec<&String> = want.difference(&emitted).take(5).collect();
    assert!(missing.is_empty(), "IDs never emitted: {missing:?}");
    // The tier came back: the restarted server holds the later records' IDs.
    let keys: u64 = server.cli(&["dbsize"]).parse().unwrap();
    assert!(keys > 1, "nothing was written after the restart");
}

/// Keyed by `.id` against `url` with a short timeout and `--on-exact-error POLICY`.
fn outage_args<'a>(url: &'a str, policy: &'a str) -> Vec<&'a str> {
    vec!["--key", ".id", "--exact", url, "--exact-timeout", "300ms", "--on-exact-error", policy]
}

/// Kills the server at the third of ten chunks under `--on-exact-error abort`
/// (after a first run over the same input, then `--shared`, when `prefill`): the
/// run must stop with exit 2 and say why.
fn abort_when_the_server_dies(seed: u64, prefill: bool) {
    let mut server = RedisServer::start();
    let url = server.url();
    let input = stream(10_000, seed);
    if prefill {
        run(&url, &["--key", ".id"], &input);
    }
    let mut args = outage_args(&url, "abort");
    if prefill {
        args.push("--shared");
    }
    let out = slow_run(&args, &input, 10, |c| {
        if c == 3 {
            server.kill();
        }
    });
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--on-exact-error abort"), "{}", out.stderr);
}

#[test]
fn server_killed_mid_stream_abort() {
    // Abort: the first failure stops the run with exit 2, whether or not a record
    // needed Redis's answer (here a first run filled Redis and `--shared` makes
    // Redis decide every ID; one instance would read the window whole instead).
    abort_when_the_server_dies(22, true);
}

#[test]
fn abort_also_stops_on_a_journal_that_cannot_be_written() {
    // A fresh database: every ID is decided locally, but the journal that makes
    // them durable cannot be written once the server is gone.
    abort_when_the_server_dies(24, false);
}

#[test]
fn closed_policy_drops_unconfirmed() {
    // A first run filled Redis, and `--shared` asks Redis about every ID.
    let mut server = RedisServer::start();
    let url = server.url();
    let input = stream(6_000, 23);
    run(&url, &["--key", ".id"], &input);
    let mut args = outage_args(&url, "closed");
    args.push("--shared");
    let out = slow_run(&args, &input, 6, |c| {
        if c == 2 {
            server.kill();
        }
    });
    out.assert_ok();
    assert!(out.stat("unconfirmed") > 0, "{:?}", out.stats);
    // Closed: what Redis could not answer for is dropped, and Redis already held
    // every ID, so nothing is emitted (a fresh bloom's "no" proves nothing here).
    assert_eq!(out.stat("emitted"), 0, "{:?}", out.stats);
    // Counted as dropped, not as held back by --emit; and under --emit dups or
    // all they are not written either.
    assert_eq!(out.stat("dropped"), out.stat("unconfirmed"), "{:?}", out.stats);
}

/// Waits until a client connected to `server` has agreed on the metadata.
fn wait_for_meta(server: &RedisServer) {
    let start = Instant::now();
    while server.cli(&["get", "logdedup:meta"]).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "no client stored the metadata");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The IDs whose first occurrence is in a chunk before `k` of `slow_run`'s
/// cut of `input` into `chunks`.
fn ids_first_seen_before(input: &[u8], chunks: usize, k: usize) -> HashSet<String> {
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let per = lines.len().div_ceil(chunks);
    ids(&lines[..(k * per).min(lines.len())].concat()).into_iter().collect()
}

#[test]
fn a_server_restart_mid_run_keeps_the_seed() {
    // The server restarts (no persistence) once the client has connected: the
    // client stores the metadata again, so a second run uses the same seed and
    // finds every ID written after the restart. Once before any record, once
    // midway. One instance still holds every ID it met (its pending set), so all
    // of them end up in the new server; `--shared` keeps nothing in process, so
    // there only IDs first seen before the restart may come again (the server
    // lost them), never one written after it.
    for (k, shared) in [(0, false), (4, false), (4, true)] {
        let mut server = RedisServer::start();
        let url = server.url();
        let input = stream(8_000, 41 + k as u64);
        let mut args = vec!["--key", ".id", "--exact", &url, "--exact-timeout", "300ms"];
        if shared {
            args.push("--shared");
        }
        let out = slow_run(&args, &input, 8, |c| {
            if c == 0 {
                wait_for_meta(&server);
            }
            if c == k {
                server.restart();
            }
        });
        out.assert_ok();
        let case = format!("k {k} shared {shared}");
        assert!(out.stderr.contains("logdedup:meta was gone"), "{case}: {}", out.stderr);
        assert!(!server.cli(&["get", "logdedup:meta"]).is_empty());
        let before = ids_first_seen_before(&input, 8, k);
        let unique: HashSet<String> = ids(&input).into_iter().collect();
        let emitted = ids(&out.stdout);
        let distinct: HashSet<String> = emitted.iter().cloned().collect();
        assert_eq!(distinct, unique, "{case}: every ID comes out");
        // Failed calls while the server was away answer by the policy (open:
        // written, maybe again); otherwise a repeat is one the server lost.
        let failed = out.stat("exact_errors") > 0;
        if !failed {
            let mut once = HashSet::new();
            let repeats: Vec<&String> = emitted.iter().filter(|i| !once.insert(*i)).collect();
            let stray: Vec<&&String> = repeats.iter().filter(|i| !before.contains(**i)).collect();
            assert!(
                stray.is_empty(),
                "{case}: repeated though written after the restart: {stray:?}"
            );
            if !shared {
                assert!(repeats.is_empty(), "{case}: {repeats:?}");
            }
        }
        let again = run(&url, &["--key", ".id"], &input);
        if !shared {
            assert_eq!(again.stat("emitted"), 0, "{case}");
        } else if !failed {
            let repeated: HashSet<String> = ids(&again.stdout).into_iter().collect();
            let stray: Vec<&String> = repeated.difference(&before).take(5).collect();
            assert!(
                stray.is_empty(),
                "{case}: written after the restart, emitted again: {stray:?}"
            );
        }
    }
}

#[test]
fn a_client_finding_another_seed_stops() {
    // The server lost the metadata and another deployment stored its own before
    // this client could: it stops with exit 2 rather than mixing seeds.
    for shared in [false, true] {
        let mut server = RedisServer::start();
        let url = server.url();
        let input = stream(8_000, 51);
        let mut args = vec!["--key", ".id", "--exact", &url, "--exact-timeout", "300ms"];
        if shared {
            args.push("--shared");
        }
        let other = format!("logdedup-layout-v2 groups=256 load=200 seed={}", "ab".repeat(24));
        let out = slow_run(&args, &input, 8, |c| {
            if c == 0 {
                wait_for_meta(&server);
            }
            if c == 3 {
                server.restart();
                server.cli(&["set", "logdedup:meta", &other]);
            }
        });
        assert_eq!(out.code, 2, "shared {shared}: {}", out.stderr);
        assert!(
            out.stderr.contains("logdedup:meta now holds") && out.stderr.contains(&other),
            "shared {shared}: {}",
            out.stderr
        );
        assert_eq!(server.cli(&["get", "logdedup:meta"]), other, "the other's value stays");
    }
}

#[test]
fn an_outage_is_said_when_it_starts_and_when_it_ends() {
    let mut server = RedisServer::start();
    let url = server.url();
    let input = stream(40_000, 61);
    let args = outage_args(&url, "open");
    let out = slow_run(&args, &input, 40, |c| match c {
        0 => wait_for_meta(&server),
        5 => server.kill(),
        12 => server.restart(),
        _ => {}
    });
    out.assert_ok();
    let lines: Vec<&str> = out.stderr.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("logdedup: warning: Redis at"));
    let end = lines.iter().position(|l| l.contains("answering again after"));
    assert!(start.is_some() && end > start, "{}", out.stderr);
    // Rate-limited: a short outage is one line each way, not one per batch.
    let said = lines.iter().filter(|l| l.contains("Redis at")).count();
    assert!(said <= 4, "{said} lines: {}", out.stderr);
    assert!(out.stat("exact_outages") >= 1, "{:?}", out.stats);
    assert_eq!(out.stats.as_ref().unwrap()["exact_outage"], false);
}

#[test]
fn secrets_in_the_url_are_never_shown() {
    // `?pass=` (the form the client reads for unix sockets), `?password=` (a form
    // it ignores, which still holds a secret) and `user:pass@`.
    let mut server = RedisServer::start_tcp(&["--requirepass", "s3cret-pw"]);
    let sock = server.sock.display().to_string();
    let port = server.port.unwrap();
    let good = format!("redis+unix://{sock}?pass=s3cret-pw");
    let wrong = [
        format!("redis+unix://{sock}?pass=wr0ng-pw"),
        format!("redis+unix://{sock}?db=0&password=wr0ng-pw"),
        format!("redis://u:wr0ng-pw@127.0.0.1:{port}/0"),
        format!("redis+cluster://u:wr0ng-pw@127.0.0.1:{port}"),
        format!("redis:/u:wr0ng-pw@127.0.0.1:{port}"),
    ];
    for url in &wrong {
        let out =
            TestCommand::new(&["--exact", url, "--exact-timeout", "300ms"]).stdin("x\n").run();
        assert_ne!(out.code, 0, "{url}: {}", out.stderr);
        assert!(out.stderr.contains("--exact"), "{url}: {}", out.stderr);
        assert!(!out.stderr.contains("wr0ng"), "{url}: {}", out.stderr);
    }
    // Errors while running, the summary and --stats-json: the server goes away
    // midway and the run ends before it is back.
    let input = stream(6_000, 71);
    let out = slow_run(&outage_args(&good, "open"), &input, 6, |c| {
        if c == 2 {
            server.kill();
        }
    });
    out.assert_ok();
    let stats = out.stats.as_ref().unwrap();
    assert_eq!(stats["exact_outage"], true, "{stats}");
    let error = stats["exact_error"].as_str().unwrap();
    assert!(error.contains("pass=***"), "{error}");
    assert!(out.stderr.contains("pass=***"), "{}", out.stderr);
    assert!(out.stderr.contains("still failing at the end"), "{}", out.stderr);
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
    assert!(!stats.to_string().contains("s3cret"), "{stats}");
}

// ---- Measurements (ignored: run by hand, figures in BENCHMARKS.md's Redis section) ----

/// Script per batch vs pipelined multi-member commands, on the same server and
/// the same fingerprints; and throughput of the binary on one node, a cluster and
/// `--exact memory`.
#[test]
#[ignore]
fn measure() {
    measure_script_vs_pipeline();
    measure_bytes_per_id(1_000_000);
    measure_throughput();
}

fn fps(n: usize, seed: u64) -> Vec<i64> {
    let mut rng = XorShift::new(seed);
    (0..n).map(|_| rng.next_u64() as i64).collect()
}

fn measure_script_vs_pipeline() {
    use redis::AsyncCommands as _;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let n = 1_000_000;
    let batch = 5000;
    // (a) the tier itself, through the library: the per-query script (`--shared`),
    // one call per batch; and one instance (journal, compaction beside, flushed).
    let server = RedisServer::start();
    let qs = tier_queries(n, 99, 0, 0);
    let ids: Vec<i64> = qs.iter().map(|q| q.fp as u64 as i64).collect();
    let mut t = shared_tier(&server.url());
    let start = Instant::now();
    let got = answers(t.as_mut(), &qs);
    let script = start.elapsed();
    assert!(got.iter().all(|&a| a == ExactAnswer::New));
    let server1 = RedisServer::start();
    let mut t = tier(&server1.url(), WindowConfig::default());
    let start = Instant::now();
    let got = answers(t.as_mut(), &qs);
    t.output_written(true);
    t.flush().unwrap();
    let journal = start.elapsed();
    assert!(got.iter().all(|&a| a == ExactAnswer::New));
    eprintln!(
        "1M new IDs, batches of {batch}, one instance (journal, compaction): {:.2} s ({:.0} IDs/s)",
        journal.as_secs_f64(),
        n as f64 / journal.as_secs_f64()
    );
    // (b) pipelined: per batch, MULTI; SMISMEMBER per bucket; SADD per bucket; EXEC
    // — fixed 4096 buckets (no growth), answers from SMISMEMBER.
    let server2 = RedisServer::start();
    let client = redis::Client::open(server2.url()).unwrap();
    let t = Instant::now();
    rt.block_on(async {
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        for chunk in ids.chunks(batch) {
            let mut by: HashMap<u64, Vec<i64>> = HashMap::new();
            for &v in chunk {
                by.entry((v as u64) >> 52).or_default().push(v);
            }
            let mut p = redis::pipe();
            p.atomic();
            for (b, vs) in &by {
                p.cmd("SMISMEMBER").arg(format!("p:w0:b{b}")).arg(vs);
            }
            for (b, vs) in &by {
                p.cmd("SADD").arg(format!("p:w0:b{b}")).arg(vs).ignore();
            }
            let _: Vec<Vec<u8>> = p.query_async(&mut con).await.unwrap();
        }
        let _: () = con.set("done", 1).await.unwrap();
    });
    let pipelined = t.elapsed();
    eprintln!(
        "1M new IDs, batches of {batch}: per-query script (--shared) {:.2} s ({:.0} IDs/s); \
         pipelined MULTI SMISMEMBER+SADD, fixed 4096 buckets {:.2} s ({:.0} IDs/s)",
        script.as_secs_f64(),
        n as f64 / script.as_secs_f64(),
        pipelined.as_secs_f64(),
        n as f64 / pipelined.as_secs_f64()
    );
}

fn measure_bytes_per_id(n: usize) {
    let server = RedisServer::start();
    let before = server.used_memory();
    let mut data = Vec::new();
    for v in fps(n, 5) {
        writeln!(data, "{v:x}").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.txt");
    std::fs::write(&file, &data).unwrap();
    let out = TestCommand::new(&["--exact", &server.url()]).arg(&file).run();
    out.assert_ok();
    for k in server.cli(&["--scan", "--pattern", "logdedup:r:*"]).lines() {
        server.cli(&["del", k]);
    }
    let after = server.used_memory();
    let keys: u64 = server.cli(&["dbsize"]).parse().unwrap();
    eprintln!(
        "{n} IDs: used_memory {} -> {} = {:.2} B/ID, {keys} keys, round trips {} for {} records",
        before,
        after,
        (after - before) as f64 / n as f64,
        out.stat("exact_round_trips"),
        out.stat("records_in")
    );
}

fn measure_throughput() {
    let n = 1_000_000;
    let mut data = Vec::new();
    for (i, v) in fps(n, 77).iter().enumerate() {
        // Half duplicates, ~60-byte JSON lines.
        let id = if i % 2 == 0 { *v } else { fps(1, i as u64)[0] };
        writeln!(data, "{{\"request_id\":\"r-{:x}\",\"seq\":{i},\"pad\":\"xxxxxxxx\"}}", id >> 40)
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, &data).unwrap();
    let time = |tier: &str| {
        let t = Instant::now();
        let out = TestCommand::new(&["--key", ".request_id", "--exact", tier]).arg(&file).run();
        out.assert_ok();
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "{tier}: {:.2} s, {:.0} records/s, {} emitted, {} round trips",
            s,
            n as f64 / s,
            out.stat("emitted"),
            out.stat("exact_round_trips")
        );
        out.stdout
    };
    let mem = time("memory");
    let server = RedisServer::start();
    assert!(time(&server.url()) == mem);
    let cluster = RedisCluster::start();
    assert!(time(&cluster.url()) == mem);
}
