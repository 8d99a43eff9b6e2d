//! `--metrics ADDR`: the run's counters as Prometheus series over HTTP, while the
//! stream runs.
//!
//! Every counter of `--stats-json` is a `logdedup_*` series, named the Prometheus
//! way: counters end in `_total`, and one family with a label stands for a group
//! of fields (`logdedup_records_total{action="emitted"}`, `…{verdict="duplicate"}`).
//! Beside them, gauges of what the tiers hold now and a `logdedup_build_info`.
//!
//! | series | `--stats-json` |
//! |---|---|
//! | `logdedup_input_records_total`, `logdedup_input_bytes_total` | `records_in`, `bytes_in` |
//! | `logdedup_records_total{action}` (emitted, suppressed, dropped, rejected, unwritten, incomplete) | the fields of the same names |
//! | `logdedup_verdicts_total{verdict}` (new, duplicate, unkeyed, late, oversized, unconfirmed) | `new`, `duplicates`, … |
//! | `logdedup_keyed_records_total{id}` (int, str) | `int_ids`, `str_ids` |
//! | `logdedup_bloom_maybes_total`, `…_confirmed_duplicates_total`, `…_false_positives_total` | `maybes`, `confirmed_dups`, `false_maybes` |
//! | `logdedup_exact_queries_total`, `…_round_trips_total`, `…_errors_total`, `…_outages_total` | `exact_queries`, `exact_round_trips`, `exact_errors`, `exact_outages` |
//! | `logdedup_exact_outage` (1 or 0) | `exact_outage` |
//! | `logdedup_windows_rotated_total`, `logdedup_checkpoints_total` | `windows_rotated`, `checkpoints` |
//! | `logdedup_windows` | retained windows from the first one seen to the newest |
//! | `logdedup_ids{tier}`, `logdedup_memory_bytes{tier}` (bitmap, exact, bloom) | `bitmap_ids`, `exact_fingerprints`, `bloom_keys`; `bitmap_bytes`, `exact_bytes`, `bloom_bits` / 8 |
//! | `logdedup_bloom_fill_ratio`, `logdedup_bloom_expected_fpr` | `bloom_fill`, `bloom_expected_fpr` |
//! | `logdedup_peak_rss_bytes` | `peak_rss_bytes` |
//!
//! The values are atomics that the pipeline stores into ([`Metrics::publish_counters`]
//! per batch; [`Metrics::publish_gauges`] at most every 10 s and only after a
//! scrape, since the tier gauges scan the bloom bits); a scrape only reads them, so
//! it never waits for the pipeline nor holds it up. The listener ([`Endpoint`]) is one std thread
//! that serves one connection at a time: a scrape is a few KiB every few seconds.
//!
//! The body is OpenMetrics text for a client that asks for it (Prometheus does),
//! and the Prometheus text format 0.0.4 otherwise (`curl`, `promtool check metrics`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::ConfigError;
use crate::stats::Stats;

/// The label of a series in a family, e.g. `("verdict", "new")`.
type Label = Vec<(&'static str, &'static str)>;
/// A gauge holding an `f64`.
type FloatGauge = Gauge<f64, AtomicU64>;

/// One series: its family, help text, label, and the value it shows.
struct Def<T> {
    family: &'static str,
    help: &'static str,
    label: Option<(&'static str, &'static str)>,
    get: fn(&Stats) -> T,
}

macro_rules! def {
    ($family:literal, $help:expr, $get:expr) => {
        Def { family: $family, help: $help, label: None, get: $get }
    };
    ($family:literal, $help:expr, $k:literal = $v:literal, $get:expr) => {
        Def { family: $family, help: $help, label: Some(($k, $v)), get: $get }
    };
}

const ACTIONS: &str =
    "Records by what was done with them; they add up to logdedup_input_records_total";
const VERDICTS: &str = "Records decided, by verdict; with the unwritten and incomplete ones they add up to logdedup_input_records_total";
const KEYED: &str = "Keyed records by the kind of their ID";

/// The counters, in `--stats-json` order (registered without `_total`, which the
/// encoder adds).
const COUNTERS: &[Def<u64>] = &[
    def!("input_records", "Records read", |s| s.records_in),
    def!("input_bytes", "Bytes read", |s| s.bytes_in),
    def!("records", ACTIONS, "action" = "emitted", |s| s.emitted),
    def!("records", ACTIONS, "action" = "suppressed", |s| s.suppressed),
    def!("records", ACTIONS, "action" = "dropped", |s| s.dropped),
    def!("records", ACTIONS, "action" = "rejected", |s| s.rejected),
    def!("records", ACTIONS, "action" = "unwritten", |s| s.unwritten),
    def!("records", ACTIONS, "action" = "incomplete", |s| s.incomplete),
    def!("verdicts", VERDICTS, "verdict" = "new", |s| s.new),
    def!("verdicts", VERDICTS, "verdict" = "duplicate", |s| s.duplicates),
    def!("verdicts", VERDICTS, "verdict" = "unkeyed", |s| s.unkeyed),
    def!("verdicts", VERDICTS, "verdict" = "late", |s| s.late),
    def!("verdicts", VERDICTS, "verdict" = "oversized", |s| s.oversized),
    def!("verdicts", VERDICTS, "verdict" = "unconfirmed", |s| s.unconfirmed),
    def!("keyed_records", KEYED, "id" = "int", |s| s.int_ids),
    def!("keyed_records", KEYED, "id" = "str", |s| s.str_ids),
    def!("bloom_maybes", "Bloom filter maybes (sent to the exact tier)", |s| s.maybes),
    def!(
        "bloom_confirmed_duplicates",
        "Bloom maybes the exact tier confirmed as duplicates",
        |s| s.confirmed_dups
    ),
    def!("bloom_false_positives", "Bloom maybes the exact tier found new", |s| s.false_maybes),
    def!("exact_queries", "Queries sent to the exact tier", |s| s.exact_queries),
    def!("windows_rotated", "Windows that fell out of retention", |s| s.windows_rotated),
    def!("checkpoints", "Snapshots written to the state directory", |s| s.checkpoints),
];

/// The counters the exact tier keeps itself (the pipeline's running counters do
/// not have them): published with the gauges, from a snapshot.
const TIER_COUNTERS: &[Def<u64>] = &[
    def!("exact_round_trips", "Round trips to a remote exact tier", |s| s.exact_round_trips),
    def!("exact_errors", "Batches the exact tier failed", |s| s.exact_errors),
    def!(
        "exact_outages",
        "Outages of a remote exact tier, each from a failed batch to the next call that works",
        |s| s.exact_outages
    ),
];

const IDS: &str = "IDs held now, per tier";
const BYTES: &str = "Bytes held now, per tier";

/// The gauges of what the tiers hold (filled from a snapshot, see [`Metrics::publish_gauges`]).
const GAUGES: &[Def<f64>] = &[
    def!("ids", IDS, "tier" = "bitmap", |s| s.bitmap_ids as f64),
    def!("ids", IDS, "tier" = "exact", |s| s.exact_fingerprints as f64),
    def!("ids", IDS, "tier" = "bloom", |s| s.bloom_keys as f64),
    def!("memory_bytes", BYTES, "tier" = "bitmap", |s| s.bitmap_bytes as f64),
    def!("memory_bytes", BYTES, "tier" = "exact", |s| s.exact_bytes as f64),
    def!("memory_bytes", BYTES, "tier" = "bloom", |s| (s.bloom_bits / 8) as f64),
    def!("bloom_fill_ratio", "Fraction of the bloom filter bits set", |s| s.bloom_fill),
    def!(
        "bloom_expected_fpr",
        "The chance now that a new ID gets a bloom maybe (any live filter)",
        |s| s.bloom_expected_fpr
    ),
    def!("peak_rss_bytes", "Peak resident memory of the process", |s| s.peak_rss_bytes as f64),
    def!("exact_outage", "1 while the remote exact tier is failing, else 0", |s| f64::from(
        u8::from(s.exact_outage)
    )),
];

/// The series of a run, ready to be scraped.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    counters: Vec<Counter>,
    tier_counters: Vec<Counter>,
    gauges: Vec<FloatGauge>,
    windows: Gauge,
    scraped: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every series, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logdedup");
        let counters = register_all::<Counter>(&mut registry, COUNTERS);
        let tier_counters = register_all::<Counter>(&mut registry, TIER_COUNTERS);
        let gauges = register_all::<FloatGauge>(&mut registry, GAUGES);
        let windows = Gauge::default();
        registry.register(
            "windows",
            "Retained windows from the first one seen to the newest (at most --retain)",
            windows.clone(),
        );
        let build = Family::<Label, Gauge>::default();
        build.get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))]).set(1);
        registry.register("build_info", "The logdedup build; the value is 1", build);
        Metrics {
            registry,
            counters,
            tier_counters,
            gauges,
            windows,
            scraped: AtomicBool::new(false),
        }
    }

    /// Whether the series were read since the last call: the tier gauges are
    /// only worth their bloom scan when someone looks.
    pub fn take_scraped(&self) -> bool {
        self.scraped.swap(false, Ordering::Relaxed)
    }

    /// Shows the counters of `stats` (the running totals of the run).
    pub fn publish_counters(&self, stats: &Stats) {
        for (c, def) in self.counters.iter().zip(COUNTERS) {
            c.inner().store((def.get)(stats), Ordering::Relaxed);
        }
    }

    /// Shows what the tiers hold and count: `stats` as filled at the end of a run
    /// (ID counts, bytes, bloom figures, peak RSS, the exact tier's round trips
    /// and errors), and the live windows ([`crate::window::WindowClock::live`]).
    pub fn publish_gauges(&self, stats: &Stats, windows: u64) {
        for (c, def) in self.tier_counters.iter().zip(TIER_COUNTERS) {
            c.inner().store((def.get)(stats), Ordering::Relaxed);
        }
        for (g, def) in self.gauges.iter().zip(GAUGES) {
            g.set((def.get)(stats));
        }
        self.windows.set(i64::try_from(windows).unwrap_or(i64::MAX));
    }

    /// The series as OpenMetrics text (`openmetrics`) or the Prometheus text
    /// format 0.0.4.
    pub fn render(&self, openmetrics: bool) -> String {
        self.scraped.store(true, Ordering::Relaxed);
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String does not fail");
        if openmetrics {
            text
        } else {
            to_text_format(&text)
        }
    }
}

/// Registers one metric per definition, a family per distinct name with a label.
fn register_all<M>(registry: &mut Registry, defs: &[Def<impl Copy>]) -> Vec<M>
where
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Clone
        + Default
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let mut families: Vec<(&str, Family<Label, M>)> = Vec::new();
    let mut out = Vec::with_capacity(defs.len());
    for def in defs {
        let Some((k, v)) = def.label else {
            let m = M::default();
            registry.register(def.family, def.help, m.clone());
            out.push(m);
            continue;
        };
        let family = match families.iter().find(|(name, _)| *name == def.family) {
            Some((_, f)) => f.clone(),
            None => {
                let f = Family::<Label, M>::default();
                registry.register(def.family, def.help, f.clone());
                families.push((def.family, f.clone()));
                f
            }
        };
        // A handle to the family's series: storing into it needs no lookup.
        out.push(family.get_or_create(&vec![(k, v)]).clone());
    }
    out
}

/// OpenMetrics text into the Prometheus text format 0.0.4, for clients that do
/// not ask for OpenMetrics: the two differ, for what is registered here, in the
/// counters' family names (`# TYPE x counter` before samples `x_total` becomes
/// `# TYPE x_total counter`) and in the closing `# EOF`.
fn to_text_format(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').or(Some((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let name = if kind == "counter" { format!("{name}_total") } else { name.to_string() };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The HTTP listener of `--metrics`: a thread answering `GET /metrics`, until dropped.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How long one connection may take to send its request or read the answer, so
/// a stuck client cannot hold the (single) listener thread.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a request that is read: the request line and headers of a scrape.
const MAX_REQUEST: usize = 16 << 10;

impl Endpoint {
    /// Listens on `addr` (`HOST:PORT`) and serves `metrics` from a thread. A bad or
    /// busy address is an error naming `--metrics`.
    pub fn bind(addr: &str, metrics: Arc<Metrics>) -> Result<Endpoint, ConfigError> {
        let bad = |why: String| ConfigError::new("--metrics", why);
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| {
                bad(format!(
                    "invalid address '{addr}' (expected HOST:PORT, e.g. 127.0.0.1:9187): {e}"
                ))
            })?
            .collect();
        let listener = TcpListener::bind(&addrs[..])
            .map_err(|e| bad(format!("cannot listen on {addr}: {e}")))?;
        let local =
            listener.local_addr().map_err(|e| bad(format!("cannot listen on {addr}: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("logdedup-metrics".into())
                .spawn(move || serve(&listener, &metrics, &stop))
                .map_err(|e| bad(format!("cannot start the listener thread: {e}")))?
        };
        Ok(Endpoint { addr: local, stop, thread: Some(thread) })
    }

    /// The address listened on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocking accept; the thread then sees the flag. An unspecified
        // address (0.0.0.0, ::) is reached through loopback.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn serve(listener: &TcpListener, metrics: &Metrics, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // A failed connection concerns that client only.
        if let Ok(stream) = conn {
            let _ = answer(stream, metrics);
        }
    }
}

/// Reads one request and answers it; the connection is closed after.
fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let response = respond(&head, metrics);
    stream.write_all(&response)?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// The request line and headers (up to the blank line, or [`MAX_REQUEST`]).
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The HTTP response to a request whose head is `head`.
fn respond(head: &str, metrics: &Metrics) -> Vec<u8> {
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let openmetrics = head.lines().skip(1).any(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("accept:") && l.contains("application/openmetrics-text")
            });
            let ct = if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                "text/plain; version=0.0.4; charset=utf-8"
            };
            ("200 OK", ct, metrics.render(openmetrics))
        }
        ("GET" | "HEAD", _) => {
            ("404 Not Found", "text/plain; charset=utf-8", "logdedup serves /metrics\n".into())
        }
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "GET /metrics\n".into()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field each counter shows holds its own value, so a series wired to the
    /// wrong field shows up.
    fn distinct() -> Stats {
        Stats {
            records_in: 1001,
            bytes_in: 1002,
            emitted: 1003,
            suppressed: 1004,
            dropped: 1005,
            rejected: 1006,
            unwritten: 1007,
            incomplete: 1025,
            new: 1008,
            duplicates: 1009,
            unkeyed: 1010,
            late: 1011,
            oversized: 1012,
            unconfirmed: 1013,
            int_ids: 1014,
            str_ids: 1015,
            maybes: 1016,
            confirmed_dups: 1017,
            false_maybes: 1018,
            exact_queries: 1019,
            exact_round_trips: 1020,
            exact_errors: 1021,
            windows_rotated: 1022,
            checkpoints: 1023,
            exact_outages: 1024,
            exact_outage: true,
            bitmap_ids: 2001,
            exact_fingerprints: 2002,
            bloom_keys: 2003,
            bitmap_bytes: 2004,
            exact_bytes: 2005,
            bloom_bits: 8 * 2006,
            bloom_fill: 0.25,
            bloom_expected_fpr: 0.125,
            peak_rss_bytes: 2009,
            ..Stats::default()
        }
    }

    /// The value of series `series` in `text`.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn every_counter_shows_its_own_field() {
        let m = Metrics::new();
        m.publish_counters(&distinct());
        // The exact tier's counters come with the gauges, from a snapshot.
        assert_eq!(value(&m.render(false), "logdedup_exact_round_trips_total"), Some(0.0));
        m.publish_gauges(&distinct(), 1);
        let text = m.render(false);
        let s = serde_json::to_value(distinct()).unwrap();
        for (series, field) in [
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
        ] {
            assert_eq!(value(&text, series), s[field].as_f64(), "{series} is not {field}");
        }
        assert_eq!(
            text.lines().filter(|l| l.starts_with("logdedup_") && l.contains("_total")).count(),
            25
        );
    }

    #[test]
    fn every_gauge_shows_its_own_field() {
        let m = Metrics::new();
        m.publish_gauges(&distinct(), 3);
        let text = m.render(true);
        for (series, v) in [
            ("logdedup_ids{tier=\"bitmap\"}", 2001.0),
            ("logdedup_ids{tier=\"exact\"}", 2002.0),
            ("logdedup_ids{tier=\"bloom\"}", 2003.0),
            ("logdedup_memory_bytes{tier=\"bitmap\"}", 2004.0),
            ("logdedup_memory_bytes{tier=\"exact\"}", 2005.0),
            ("logdedup_memory_bytes{tier=\"bloom\"}", 2006.0),
            ("logdedup_bloom_fill_ratio", 0.25),
            ("logdedup_bloom_expected_fpr", 0.125),
            ("logdedup_peak_rss_bytes", 2009.0),
            ("logdedup_windows", 3.0),
            ("logdedup_exact_outage", 1.0),
            (concat!("logdedup_build_info{version=\"", env!("CARGO_PKG_VERSION"), "\"}"), 1.0),
        ] {
            assert_eq!(value(&text, series), Some(v), "{series}");
        }
        // The run's counters are left alone by a gauge update.
        assert_eq!(value(&text, "logdedup_input_records_total"), Some(0.0));
        assert_eq!(value(&text, "logdedup_exact_errors_total"), Some(1021.0));
    }

    #[test]
    fn the_two_text_formats() {
        let m = Metrics::new();
        m.publish_counters(&distinct());
        let om = m.render(true);
        assert!(om.contains("# TYPE logdedup_input_records counter\n"));
        assert!(om.ends_with("# EOF\n"));
        let text = m.render(false);
        assert!(text.contains(
            "# HELP logdedup_input_records_total Records read.\n# TYPE logdedup_input_records_total counter\nlogdedup_input_records_total 1001\n"
        ));
        assert!(text.contains("# TYPE logdedup_windows gauge\n"));
        assert!(!text.contains("# EOF"));
        // Nothing but the counters' metadata and the end marker differ.
        let strip = |t: &str| -> Vec<String> {
            t.lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect()
        };
        assert_eq!(strip(&om), strip(&text));
    }

    #[test]
    fn http_answers() {
        let m = Metrics::new();
        m.publish_counters(&distinct());
        let ok =
            String::from_utf8(respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &m)).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4"));
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert_eq!(value(body, "logdedup_input_records_total"), Some(1001.0));
        let om = String::from_utf8(respond(
            "GET /metrics?x=1 HTTP/1.1\r\nACCEPT: application/openmetrics-text;version=1.0.0\r\n\r\n",
            &m,
        ))
        .unwrap();
        assert!(
            om.contains("Content-Type: application/openmetrics-text") && om.ends_with("# EOF\n")
        );
        let head_only = String::from_utf8(respond("HEAD /metrics HTTP/1.1\r\n\r\n", &m)).unwrap();
        assert!(head_only.ends_with("\r\n\r\n"));
        let missing = String::from_utf8(respond("GET /other HTTP/1.1\r\n\r\n", &m)).unwrap();
        assert!(missing.starts_with("HTTP/1.1 404 "));
        let post = String::from_utf8(respond("POST /metrics HTTP/1.1\r\n\r\n", &m)).unwrap();
        assert!(post.starts_with("HTTP/1.1 405 "));
        assert!(String::from_utf8(respond("", &m)).unwrap().starts_with("HTTP/1.1 405 "));
    }

    #[test]
    fn a_bad_or_busy_address_names_the_flag() {
        let m = Arc::new(Metrics::new());
        let e = Endpoint::bind("nonsense", m.clone()).unwrap_err();
        assert_eq!(e.flag, "--metrics");
        let first = Endpoint::bind("127.0.0.1:0", m.clone()).unwrap();
        let busy = Endpoint::bind(&first.local_addr().to_string(), m).unwrap_err();
        assert_eq!(busy.flag, "--metrics");
        assert!(busy.message.contains("cannot listen"), "{busy}");
    }

    #[test]
    fn served_over_tcp_until_dropped() {
        let m = Arc::new(Metrics::new());
        m.publish_counters(&distinct());
        let ep = Endpoint::bind("127.0.0.1:0", m).unwrap();
        let addr = ep.local_addr();
        let get = || -> io::Result<String> {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        };
        for _ in 0..2 {
            let answer = get().unwrap();
            assert_eq!(value(&answer, "logdedup_input_records_total"), Some(1001.0));
        }
        drop(ep);
        // The port is free again: nothing listens after the drop.
        assert!(TcpStream::connect(addr).is_err());
    }
}
