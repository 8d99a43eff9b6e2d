//! `--metrics` scraped by a real Prometheus: the counters it stored match
//! `--stats-json` at the end, and `promtool check metrics` passes on the
//! endpoint's output. Also `--stats-every` and a bad or busy `--metrics` address.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::daemon::{free_port, http_get, installed, url_encode, wait_for, Daemon};
use crate::util::{self, TestCommand};

/// Each Prometheus counter series and the `--stats-json` field it shows.
const SERIES: &[(&str, &str)] = &[
    ("logdedup_input_records_total", "records_in"),
    ("logdedup_input_bytes_total", "bytes_in"),
    ("logdedup_records_total{action=\"emitted\"}", "emitted"),
    ("logdedup_records_total{action=\"suppressed\"}", "suppressed"),
    ("logdedup_records_total{action=\"dropped\"}", "dropped"),
    ("logdedup_records_total{action=\"rejected\"}", "rejected"),
    ("logdedup_records_total{action=\"unwritten\"}", "unwritten"),
    ("logdedup_records_total{action=\"incomplete\"}", "incomplete"),
    ("logdedup_verdicts_total{verdict=\"new\"}", "new"),
    ("logdedup_verdicts_total{verdict=\"duplicate\"}", "duplicates"),
    ("logdedup_verdicts_total{verdict=\"unkeyed\"}", "unkeyed"),
    ("logdedup_verdicts_total{verdict=\"late\"}", "late"),
    ("logdedup_verdicts_total{verdict=\"oversized\"}", "oversized"),
    ("logdedup_verdicts_total{verdict=\"unconfirmed\"}", "unconfirmed"),
    ("logdedup_keyed_records_total{id=\"int\"}", "int_ids"),
    ("logdedup_keyed_records_total{id=\"str\"}", "str_ids"),
    ("logdedup_bloom_maybes_total", "maybes"),
    ("logdedup_bloom_confirmed_duplicates_total", "confirmed_dups"),
    ("logdedup_bloom_false_positives_total", "false_maybes"),
    ("logdedup_exact_queries_total", "exact_queries"),
    ("logdedup_exact_round_trips_total", "exact_round_trips"),
    ("logdedup_exact_errors_total", "exact_errors"),
    ("logdedup_windows_rotated_total", "windows_rotated"),
    ("logdedup_checkpoints_total", "checkpoints"),
    ("logdedup_exact_outages_total", "exact_outages"),
];

/// Records with integer and string IDs, duplicates, and records without a key.
fn input() -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut n = 0;
    for i in 0..400u32 {
        match i % 4 {
            0 => writeln!(out, "{{\"id\":{}}}", i % 150).unwrap(),
            1 | 2 => writeln!(out, "{{\"id\":\"s{}\"}}", i % 170).unwrap(),
            _ if i % 40 == 3 => writeln!(out, "not json {i}").unwrap(),
            _ => writeln!(out, "{{\"id\":\"t{i}\"}}").unwrap(),
        }
        n += 1;
    }
    (out, n)
}

/// `logdedup --metrics` reading a pipe that the test keeps open, so it runs
/// (idle) until the test closes its stdin.
struct Running {
    daemon: Daemon,
    stdin: Option<std::process::ChildStdin>,
    addr: SocketAddr,
}

fn start_logdedup(dir: &Path, extra: &[&str]) -> Running {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = Command::new(util::bin())
        .args(["--key", ".id", "--exact", "none", "--no-progress", "--quiet"])
        .arg("--metrics")
        .arg(addr.to_string())
        .arg("--stats-json")
        .arg(dir.join("stats.json"))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(File::create(dir.join("out")).unwrap())
        .stderr(File::create(dir.join("err")).unwrap())
        .spawn()
        .expect("spawn logdedup");
    let stdin = child.stdin.take();
    Running { daemon: Daemon(Some(child)), stdin, addr }
}

/// The value of a sample line `series VALUE` in the text format.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A Prometheus server on loopback, scraping `target` every 200 ms, with its
/// storage in a temp dir; killed on drop.
struct Prometheus {
    _daemon: Daemon,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n\
                 scrape_configs:\n  - job_name: logdedup\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("spawn prometheus");
        Prometheus { _daemon: Daemon(Some(child)), addr, _dir: dir }
    }

    /// The instant vector of `query`: each series (name and labels as the text
    /// format writes them, `job` and `instance` left out) and its value.
    fn query(&self, query: &str) -> Option<BTreeMap<String, f64>> {
        let (status, body) =
            http_get(self.addr, &format!("/api/v1/query?query={}", url_encode(query)), None)?;
        if !status.contains(" 200 ") {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let mut out = BTreeMap::new();
        for r in v["data"]["result"].as_array()? {
            let m = r["metric"].as_object()?;
            let labels: Vec<String> = m
                .iter()
                .filter(|(k, _)| !["__name__", "job", "instance"].contains(&k.as_str()))
                .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or("")))
                .collect();
            let name = m["__name__"].as_str()?.to_string();
            let series =
                if labels.is_empty() { name } else { format!("{name}{{{}}}", labels.join(",")) };
            out.insert(series, r["value"][1].as_str()?.parse().ok()?);
        }
        Some(out)
    }
}

#[test]
fn prometheus_stores_what_stats_json_says() {
    if !installed("prometheus") || !installed("promtool") {
        eprintln!(
            "skipping prometheus_stores_what_stats_json_says: prometheus and promtool are not \
             installed (apt-get install prometheus; .ci/test does this)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut run = start_logdedup(dir.path(), &[]);
    let (data, n) = input();
    run.stdin.as_mut().unwrap().write_all(&data).unwrap();
    run.stdin.as_mut().unwrap().flush().unwrap();
    // The endpoint shows every record read (the input stays open: the run goes on).
    let text = wait_for("the endpoint to count every record", Duration::from_secs(30), || {
        let (_, body) = http_get(run.addr, "/metrics", None)?;
        (sample(&body, "logdedup_input_records_total") == Some(n as f64)
            && sample(&body, "logdedup_windows") == Some(1.0))
        .then_some(body)
    });
    promtool_accepts(&text);

    let prometheus = Prometheus::start(run.addr);
    let stored = wait_for("Prometheus to scrape the final counts", Duration::from_secs(60), || {
        let v = prometheus.query("{__name__=~\"logdedup_.+_total\"}")?;
        (v.get("logdedup_input_records_total") == Some(&(n as f64))).then_some(v)
    });
    let windows = prometheus.query("logdedup_windows").unwrap_or_default();
    assert_eq!(windows.get("logdedup_windows"), Some(&1.0), "{windows:?}");

    drop(run.stdin.take());
    let status = run.daemon.wait_exit(Duration::from_secs(30)).expect("logdedup exits at EOF");
    assert!(status.success(), "{}", std::fs::read_to_string(dir.path().join("err")).unwrap());
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("stats.json")).unwrap())
            .unwrap();
    assert_eq!(stored.len(), SERIES.len(), "series stored: {stored:?}");
    for (series, field) in SERIES {
        assert_eq!(
            stored.get(*series).copied(),
            stats[field].as_f64(),
            "{series} against --stats-json {field}"
        );
    }
    // Not all zero: the run had duplicates, unkeyed records and bloom maybes.
    for field in ["duplicates", "unkeyed", "maybes", "int_ids", "str_ids"] {
        assert!(stats[field].as_u64().unwrap() > 0, "{field}: {stats}");
    }
}

/// `promtool check metrics` (its linter for the Prometheus text format) passes.
fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `--stats-every` the stats file is rewritten with the counts so far, and
/// the summary goes to stderr (not a terminal here), while the run goes on.
#[test]
fn stats_every_rewrites_the_file_while_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start_logdedup(dir.path(), &["--stats-every", "100ms"]);
    let stdin = run.stdin.as_mut().unwrap();
    stdin.write_all(b"{\"id\":1}\n{\"id\":1}\n{\"id\":2}\n").unwrap();
    stdin.flush().unwrap();
    let stats_file = dir.path().join("stats.json");
    let read = |min_in: u64| {
        let text = std::fs::read_to_string(&stats_file).ok()?;
        // Created empty at the start (so a bad path fails at once); after that a
        // reader never sees half a file: it parses whenever it is not empty.
        if text.is_empty() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&text).expect("a whole JSON file");
        (v["records_in"].as_u64()? >= min_in).then_some(v)
    };
    let first = wait_for("a first periodic stats file", Duration::from_secs(30), || read(3));
    assert_eq!((first["emitted"].as_u64(), first["duplicates"].as_u64()), (Some(2), Some(1)));
    stdin.write_all(b"{\"id\":3}\n{\"id\":2}\n").unwrap();
    stdin.flush().unwrap();
    let second =
        wait_for("the periodic stats file to move on", Duration::from_secs(30), || read(5));
    assert_eq!(second["duplicates"].as_u64(), Some(2));
    // --quiet holds the periodic summary back too; the run above has it.
    let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
    assert!(!err.contains("records in"), "{err}");
    drop(run.stdin.take());
    assert!(run.daemon.wait_exit(Duration::from_secs(30)).unwrap().success());

    let o = TestCommand::new(&["--key", ".id", "--stats-every", "1ms"])
        .stdin("{\"id\":1}\n".repeat(3))
        .run();
    o.assert_ok();
    assert_eq!(o.stat("duplicates"), 2);
}

#[test]
fn summary_every_interval_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Daemon(Some(
        Command::new(util::bin())
            .args(["--key", ".id", "--stats-every", "100ms"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("err")).unwrap())
            .spawn()
            .unwrap(),
    ));
    let mut stdin = child.child().stdin.take().unwrap();
    stdin.write_all(b"{\"id\":1}\n{\"id\":1}\n").unwrap();
    stdin.flush().unwrap();
    wait_for("two periodic summaries", Duration::from_secs(30), || {
        let err = std::fs::read_to_string(dir.path().join("err")).ok()?;
        (err.matches("logdedup: 2 records in").count() >= 2).then_some(())
    });
    drop(stdin);
    assert!(child.wait_exit(Duration::from_secs(30)).unwrap().success());
}

#[test]
fn a_bad_or_busy_metrics_address_is_a_usage_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    for addr in ["nonsense", "127.0.0.1:99999", busy.as_str()] {
        let o = TestCommand::new(&["--metrics", addr]).stdin("a\n").run();
        assert_eq!(o.code, 1, "{addr}: {}", o.stderr);
        assert!(o.stderr.contains("--metrics"), "{addr}: {}", o.stderr);
    }
    let o = TestCommand::new(&["--stats-every", "0s"]).run();
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("--stats-every"), "{}", o.stderr);
}
