//! The soak's report files: charts over time (SVG) and a summary with the
//! criteria (Markdown). Pure functions of a [`SoakReport`].

use std::fmt::Write as _;

use super::verdict::{Verdict, RATE_FLOOR, REDIS_MAX_BYTES_PER_ID, REDIS_MIN_IDS, RSS_BAND};
use super::{SoakReport, SoakSample, TimeSource};
use crate::export::{bytes, count, si};
use crate::export::{Doc, LineChart, Series};
use crate::spec::Dur;

/// A chart of series over the samples' times.
fn chart(
    r: &SoakReport,
    series: Vec<Series>,
    y_fmt: fn(f64) -> String,
    y_binary: bool,
) -> LineChart {
    LineChart {
        height: 220.0,
        x_labels: r.samples.iter().map(|s| format!("{:.0}s", s.t_s)).collect(),
        series,
        y_fmt,
        y_binary,
        log_y: false,
        points_only: false,
    }
}

/// Per sample, the growth of `f` over the interval before it, per second.
fn per_second(samples: &[SoakSample], f: impl Fn(&SoakSample) -> Option<f64>) -> Vec<Option<f64>> {
    let mut prev = (0.0, Some(0.0));
    samples
        .iter()
        .map(|s| {
            let v = match (f(s), prev.1) {
                (Some(now), Some(before)) if s.t_s > prev.0 => {
                    Some((now - before) / (s.t_s - prev.0))
                }
                _ => None,
            };
            prev = (s.t_s, f(s));
            v
        })
        .collect()
}

/// The soak's charts: records/s, RSS, CPU, and with Redis its memory.
pub fn render_svg(r: &SoakReport) -> String {
    let mut doc = Doc::new();
    doc.title(
        &format!("logdedup soak: {} ({})", r.name, r.date),
        &format!(
            "{} records in {:.0} s, {} rotations; {} CPUs, {}",
            count(r.records_in),
            r.elapsed_s,
            r.windows_spanned,
            r.machine.nproc,
            r.machine.cpu
        ),
    );
    let s = &r.samples;
    let series = |name: &str, color, values| Series { name: name.into(), color, values };
    doc.title(
        "Records per second over time",
        &format!("generator alone: {}/s", si(r.generator_records_per_s)),
    );
    let rate = s.iter().map(|x| x.feeding.then_some(x.records_per_s)).collect();
    doc.chart(&chart(r, vec![series("records/s", "#d62728", rate)], si, false));
    doc.title(
        "Resident memory over time",
        "VmRSS of the logdedup process at each sample, and its peak since the sample before",
    );
    let rss = s.iter().map(|x| (x.rss_bytes > 0).then_some(x.rss_bytes as f64)).collect();
    let peak =
        s.iter().map(|x| (x.peak_rss_bytes > 0).then_some(x.peak_rss_bytes as f64)).collect();
    let rss_series = vec![series("RSS", "#9467bd", rss), series("peak", "#c5b0d5", peak)];
    doc.chart(&chart(r, rss_series, |v| bytes(v as u64), true));
    doc.title(
        "CPU over time",
        "cores in use (CPU seconds per second), and the machine's 1-minute load average",
    );
    let mut cpu = vec![series("logdedup", "#1f77b4", per_second(s, |x| Some(x.cpu_s)))];
    if s.iter().any(|x| x.load1 > 0.0) {
        let load = s.iter().map(|x| Some(x.load1)).collect();
        cpu.push(series("load average", "#7f7f7f", load));
    }
    if s.iter().any(|x| x.redis.is_some()) {
        cpu.push(series("redis-server", "#ff7f0e", per_second(s, |x| x.redis.map(|r| r.cpu_s))));
    }
    doc.chart(&chart(r, cpu, |v| format!("{v:.2}"), false));
    if s.iter().any(|x| x.redis.is_some()) {
        redis_charts(&mut doc, r);
    }
    doc.finish()
}

/// Redis's `used_memory` and its bytes per live ID over time.
fn redis_charts(doc: &mut Doc, r: &SoakReport) {
    let s = &r.samples;
    doc.title("Redis memory over time", "used_memory (INFO memory)");
    let used = s.iter().map(|x| x.redis.map(|r| r.used_memory as f64)).collect();
    let used = vec![Series { name: "used_memory".into(), color: "#ff7f0e", values: used }];
    doc.chart(&chart(r, used, |v| bytes(v as u64), true));
    doc.title(
        "Redis bytes per live ID over time",
        &format!(
            "used_memory over the IDs in its bucket directories and journals (from {} IDs)",
            count(REDIS_MIN_IDS)
        ),
    );
    let per_id = s
        .iter()
        .map(|x| {
            x.redis
                .filter(|r| r.live_ids >= REDIS_MIN_IDS)
                .map(|r| r.used_memory as f64 / r.live_ids as f64)
        })
        .collect();
    let per_id = vec![Series { name: "B per ID".into(), color: "#8c564b", values: per_id }];
    doc.chart(&chart(r, per_id, |v| format!("{v:.1}"), false));
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "**pass**"
    } else {
        "**FAIL**"
    }
}

/// How the windows rotate, in words.
fn windows_line(r: &SoakReport) -> String {
    let w = Dur(r.window_ms);
    let new = r.stats.as_ref().and_then(|s| s["new"].as_u64());
    let per_window = |records: f64| {
        let ids = new.map_or(String::new(), |n| {
            format!(" (~{} new IDs)", si(records * n as f64 / r.records_in.max(1) as f64))
        });
        format!("~{} records{ids} per window", si(records))
    };
    match r.time {
        TimeSource::Event => format!(
            "`--window {w}` of event time at {} records per event second: {}; {} rotations",
            count(r.event_rate as u64),
            per_window(r.event_rate * r.window_ms as f64 / 1000.0),
            r.windows_spanned
        ),
        TimeSource::Arrival => format!(
            "`--window {w}` of arrival time (the wall clock) at {}/s: {}; {} rotations",
            si(r.mean_records_per_s),
            per_window(r.mean_records_per_s * r.window_ms as f64 / 1000.0),
            r.windows_spanned
        ),
    }
}

/// The machine's 1-minute load average over the run, from the samples.
fn load_line(samples: &[SoakSample]) -> String {
    let mut l: Vec<f64> = samples.iter().map(|s| s.load1).filter(|&l| l > 0.0).collect();
    if l.is_empty() {
        return "not sampled".into();
    }
    l.sort_by(f64::total_cmp);
    format!(
        "1-minute load average {:.2} median ({:.2} – {:.2}); each thread that wants a CPU counts 1",
        l[l.len() / 2],
        l[0],
        l[l.len() - 1]
    )
}

/// The criteria table.
fn criteria(v: &Verdict) -> String {
    let mut t =
        String::from("| criterion | measured | target | result |\n| --- | --- | --- | --- |\n");
    let (a, b) = v.half_rates;
    let _ = writeln!(
        t,
        "| rate constant | first half {}/s → second half {}/s ({:.3}×) | ≥ {RATE_FLOOR}× | {} |",
        si(a),
        si(b),
        b / a.max(1e-9),
        pass(v.rate_ok)
    );
    if let Some([x, y]) = v.halves {
        let _ = writeln!(
            t,
            "| logdedup CPU per record (what the rate is made of) | first half {:.3} µs on {:.2} cores → \
             second half {:.3} µs on {:.2} cores ({:.3}×) | not judged: a rate that falls while this \
             stays put was given less CPU | |",
            x.cpu_us_per_record,
            x.cores,
            y.cpu_us_per_record,
            y.cores,
            y.cpu_us_per_record / x.cpu_us_per_record.max(1e-12)
        );
    }
    let (lo, hi) = (
        v.windows.iter().map(|w| w.peak_bytes).min(),
        v.windows.iter().map(|w| w.peak_bytes).max(),
    );
    let lows =
        (v.windows.iter().map(|w| w.low_bytes).min(), v.windows.iter().map(|w| w.low_bytes).max());
    let _ = writeln!(
        t,
        "| RSS flat | peak RSS of the {} whole window{} from the first rotation on: {} – {}, median {} \
         ({:+.1} % … {:+.1} %); lowest RSS in each window {} – {} | each peak within ±{:.0} % of the median \
         (at least two windows) | {} |",
        v.windows.len(),
        if v.windows.len() == 1 { "" } else { "s" },
        bytes(lo.unwrap_or(0)),
        bytes(hi.unwrap_or(0)),
        bytes(v.median_peak_bytes),
        v.peak_spread.0 * 100.0,
        v.peak_spread.1 * 100.0,
        bytes(lows.0.unwrap_or(0)),
        bytes(lows.1.unwrap_or(0)),
        RSS_BAND * 100.0,
        pass(v.rss_ok)
    );
    if let Some(ok) = v.redis_ok {
        let (b, ids) = v.redis_bytes_per_id.unwrap_or((f64::NAN, 0));
        let first = v.redis_bytes_per_id_before.map_or(String::new(), |(b, ids)| {
            format!("; in the first window (not judged) up to {b:.2} B (at {} IDs)", count(ids))
        });
        let _ = writeln!(
            t,
            "| Redis memory per live ID | `used_memory` over the IDs in buckets and journals, from the \
             first rotation on: highest {b:.2} B (at {} live IDs){first} | ≤ {REDIS_MAX_BYTES_PER_ID} B | {} |",
            count(ids),
            pass(ok)
        );
    }
    t
}

/// A Markdown summary of the soak: what ran, the figures, the criteria.
pub fn render_md(r: &SoakReport) -> String {
    let mut m = format!("# logdedup soak: {} ({})\n\n", r.name, r.date);
    if !r.about.is_empty() {
        let _ = write!(m, "{}\n\n", r.about);
    }
    let _ = write!(m, "Reproduce with:\n\n```sh\n{}\n```\n\n| | |\n| --- | --- |\n", r.command);
    let end = r.samples.iter().rev().find(|s| s.rss_bytes > 0);
    let cpu = r.samples.last().map_or(0.0, |s| s.cpu_s);
    let wait = r.verdict.as_ref().map_or(0.0, |v| v.feeder_wait_share);
    let rows = [
        ("machine", format!("{} ({} CPUs), {}", r.machine.cpu, r.machine.nproc, bytes(r.machine.mem_bytes))),
        ("logdedup", r.machine.tools.get("logdedup").cloned().unwrap_or_default()),
        ("logdedup args", format!("`{}`", r.args.join(" "))),
        ("windows", windows_line(r)),
        ("records fed", format!("{} in {:.1} s ({}/s mean)", count(r.records_in), r.elapsed_s, si(r.mean_records_per_s))),
        ("records emitted", count(r.emitted)),
        ("logdedup CPU", format!("{cpu:.1} s ({:.2} cores on average)", cpu / r.elapsed_s.max(1e-9))),
        (
            "generator",
            format!(
                "alone {}/s ({:.2}× logdedup's mean); {:.1} CPU s feeding; it waited on the full pipe {:.1} % of the run",
                si(r.generator_records_per_s),
                r.generator_records_per_s / r.mean_records_per_s.max(1e-9),
                r.generator_cpu_s,
                wait * 100.0
            ),
        ),
        (
            "peak RSS",
            format!(
                "{} over the run (the highest per-second peak; logdedup's own `peak_rss_bytes` \
                 covers only its last second, as the harness resets the high-water mark); {} at the last sample",
                bytes(r.samples.iter().map(|s| s.peak_rss_bytes).max().unwrap_or(0)),
                end.map_or("-".into(), |s| bytes(s.rss_bytes))
            ),
        ),
        ("machine load", load_line(&r.samples)),
        ("exit code", r.exit_code.to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    if let Some(x) = r.redis_end {
        let settings = if r.redis_config.is_empty() {
            "defaults".to_string()
        } else {
            r.redis_config.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(m, "| Redis settings | {settings} |");
        let _ = writeln!(
            m,
            "| Redis once logdedup exited | used_memory {}, {} live IDs ({} of them in journals), \
             {:.1} CPU s, {:.1} % of the keys with an expiry expired but not yet reclaimed |",
            bytes(x.used_memory),
            count(x.live_ids),
            count(x.journaled_ids),
            x.cpu_s,
            x.expired_stale_perc
        );
    }
    if let Some(v) = &r.verdict {
        let _ = write!(m, "\n## Criteria\n\n{}", criteria(v));
    }
    m.push_str("\nCharts: [soak.svg](soak.svg); samples, per-window RSS and logdedup's `--stats-json`: [soak.json](soak.json).\n");
    m
}
