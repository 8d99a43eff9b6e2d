//! SVG charts, written by hand (no plotting dependency): one document of stacked
//! panels — throughput per tool and memory per distinct ID for each dataset,
//! throughput and peak RSS across window rotations, achieved vs configured fpr.
//!
//! Coordinates are printed with one decimal so the output is stable across
//! platforms and pinned by a snapshot test. [`LineChart`] is reused by the soak
//! report.

use std::fmt::Write;

use super::{bytes, prob, ratio, si, Exporter};
use crate::report::{DatasetResult, Report, Status, ToolResult};

/// Writes `report.svg`.
pub struct SvgExporter;

/// Document width in px.
const WIDTH: f64 = 960.0;
/// Left column for labels in bar charts, at least (it widens for long labels).
const LABEL_W: f64 = 330.0;
/// Width of one character of a 12 px sans-serif label, a little over the average
/// (DejaVu Sans), so a label's width is not underestimated.
const CHAR_W: f64 = 6.6;
/// Right column for the value annotations.
const NOTE_W: f64 = 190.0;
/// Height of one bar row.
const ROW: f64 = 22.0;

/// Escapes text for SVG.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn color(family: &str) -> &'static str {
    match family {
        "floor" => "#8c8c8c",
        "logdedup" => "#d62728",
        "redis" => "#ff7f0e",
        _ => "#1f77b4",
    }
}

/// An SVG document growing downwards, one panel after another.
pub(crate) struct Doc {
    body: String,
    y: f64,
    /// The widest panel so far (bar charts with long labels widen the document).
    width: f64,
}

impl Doc {
    pub(crate) fn new() -> Doc {
        Doc { body: String::new(), y: 10.0, width: WIDTH }
    }

    pub(crate) fn title(&mut self, text: &str, sub: &str) {
        self.y += 24.0;
        let _ = writeln!(
            self.body,
            r#"<text x="10" y="{:.1}" font-size="16" font-weight="bold">{}</text>"#,
            self.y,
            esc(text)
        );
        if !sub.is_empty() {
            self.y += 18.0;
            let _ = writeln!(
                self.body,
                r##"<text x="10" y="{:.1}" font-size="12" fill="#555">{}</text>"##,
                self.y,
                esc(sub)
            );
        }
        self.y += 10.0;
    }

    /// Horizontal bars: `(label, value, annotation, family)`; zero-valued rows show
    /// only their annotation (a skipped or failed tool).
    pub(crate) fn bars(&mut self, rows: &[(String, f64, String, String)]) {
        let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
        let span = WIDTH - LABEL_W - NOTE_W;
        // The label column fits the longest label (a command line can be long):
        // right-aligned text wider than its column would run off the left edge.
        let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let label_w = LABEL_W.max((longest as f64 * CHAR_W + 16.0).ceil());
        self.width = self.width.max(label_w + span + NOTE_W);
        for (label, v, note, family) in rows {
            let top = self.y;
            let _ = writeln!(
                self.body,
                r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                top + 15.0,
                esc(label)
            );
            let w = if max > 0.0 { v / max * span } else { 0.0 };
            if w > 0.0 {
                let _ = writeln!(
                    self.body,
                    r#"<rect x="{label_w:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}"/>"#,
                    top + 3.0,
                    ROW - 6.0,
                    color(family)
                );
            }
            let _ = writeln!(
                self.body,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#333">{}</text>"##,
                label_w + w + 6.0,
                top + 15.0,
                esc(note)
            );
            self.y += ROW;
        }
        self.y += 8.0;
    }

    /// Appends a finished chart's markup (height `h`).
    pub(crate) fn chart(&mut self, chart: &LineChart) {
        self.body.push_str(&chart.render(self.y));
        self.y += chart.height + 10.0;
    }

    pub(crate) fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}</svg>\n",
            self.body,
            w = self.width,
            h = self.y + 10.0,
        )
    }
}

/// One series of a line chart.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) color: &'static str,
    /// `None` = no point (the run failed).
    pub(crate) values: Vec<Option<f64>>,
}

/// A line chart over categorical or evenly spaced x positions, linear or log y.
pub(crate) struct LineChart {
    pub(crate) height: f64,
    pub(crate) x_labels: Vec<String>,
    pub(crate) series: Vec<Series>,
    pub(crate) y_fmt: fn(f64) -> String,
    /// Round the linear y axis in binary units (bytes: 16 MiB, not 16.8 MB).
    pub(crate) y_binary: bool,
    pub(crate) log_y: bool,
    /// Draw markers only (no connecting line).
    pub(crate) points_only: bool,
}

/// A linear axis from 0 for values up to `max`: its end, the smallest multiple of
/// the step at or above `max`, and the step, 1, 2, 2.5 or 5 times a power of ten
/// (of the KiB/MiB/GiB unit `max` is shown in, when `binary`), at most four steps.
pub(crate) fn nice_axis(max: f64, binary: bool) -> (f64, f64) {
    if !max.is_finite() || max <= 0.0 {
        return (1.0, 0.25);
    }
    let unit = if binary { 1024f64.powi((max.log2() / 10.0).floor().max(0.0) as i32) } else { 1.0 };
    let m = max / unit;
    let raw = m / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    // The tolerances absorb rounding: 4e6 / 4 = 1e6 must give a step of 1e6.
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|f| f * mag)
        .find(|s| *s >= raw * (1.0 - 1e-12))
        .unwrap_or(10.0 * mag);
    let steps = (m / step * (1.0 - 1e-12)).ceil().max(1.0);
    (steps * step * unit, step * unit)
}

/// Where a line chart's plot area is and what its axes span.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    /// The y axis: from `lo` to `hi`, logarithmic or linear.
    lo: f64,
    hi: f64,
    log_y: bool,
    /// Points on the x axis.
    n: usize,
}

impl Frame {
    fn ypos(&self, v: f64) -> f64 {
        let f = if self.log_y {
            if v <= 0.0 {
                return self.bottom;
            }
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            v / self.hi
        };
        self.bottom - f * (self.bottom - self.top)
    }

    fn xpos(&self, i: usize) -> f64 {
        if self.n == 1 {
            (self.left + self.right) / 2.0
        } else {
            self.left + 20.0 + i as f64 * (self.right - self.left - 40.0) / (self.n - 1) as f64
        }
    }
}

impl LineChart {
    fn render(&self, top: f64) -> String {
        let (left, right, bottom) = (90.0, WIDTH - 150.0, top + self.height - 30.0);
        let plot_top = top + 10.0;
        let (lo, hi, lin_step) = self.y_range();
        let n = self.x_labels.len().max(1);
        let f = Frame { left, right, top: plot_top, bottom, lo, hi, log_y: self.log_y, n };
        let mut o = String::new();
        self.axes(&mut o, &f, lin_step);
        for (k, s) in self.series.iter().enumerate() {
            self.line(&mut o, &f, k, s);
        }
        o
    }

    /// The y axis's ends, and its tick step when linear (the log axis ticks decades).
    fn y_range(&self) -> (f64, f64, f64) {
        let vals: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .filter(|v| !self.log_y || *v > 0.0)
            .collect();
        let (lin_hi, lin_step) = nice_axis(vals.iter().copied().fold(0.0, f64::max), self.y_binary);
        let (mut lo, mut hi) = if self.log_y {
            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().fold(0.0, f64::max);
            if vals.is_empty() {
                (1e-6, 1e-1)
            } else {
                (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()))
            }
        } else {
            (0.0, lin_hi)
        };
        if hi <= lo {
            hi = if self.log_y { lo * 10.0 } else { 1.0 };
        }
        if self.log_y && lo == hi {
            lo /= 10.0;
        }
        (lo, hi, lin_step)
    }

    /// The axes, the y ticks with their grid lines, and the x labels.
    fn axes(&self, o: &mut String, f: &Frame, lin_step: f64) {
        let Frame { left, right, top: plot_top, bottom, lo, hi, n, .. } = *f;
        let _ = writeln!(
            o,
            r##"<line x1="{left:.1}" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}" stroke="#999"/>"##
        );
        let _ = writeln!(
            o,
            r##"<line x1="{left:.1}" y1="{plot_top:.1}" x2="{left:.1}" y2="{bottom:.1}" stroke="#999"/>"##
        );
        // Y ticks: decades on a log axis, round steps up to its end on a linear one.
        let ticks: Vec<f64> = if self.log_y {
            let (a, b) = (lo.log10().round() as i32, hi.log10().round() as i32);
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            (0..=(hi / lin_step).round() as u32).map(|k| lin_step * k as f64).collect()
        };
        for t in ticks {
            let y = f.ypos(t);
            let _ = writeln!(
                o,
                r##"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#555">{}</text>"##,
                left - 5.0,
                y + 3.0,
                esc(&(self.y_fmt)(t))
            );
        }
        let step = n.div_ceil(12);
        for (i, l) in self.x_labels.iter().enumerate() {
            if i % step == 0 || i + 1 == n {
                let _ = writeln!(
                    o,
                    r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">{}</text>"##,
                    f.xpos(i),
                    bottom + 14.0,
                    esc(l)
                );
            }
        }
    }

    /// Series `k`: its line (or points) and its legend entry.
    fn line(&self, o: &mut String, f: &Frame, k: usize, s: &Series) {
        let pts: Vec<(f64, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (f.xpos(i), f.ypos(v))))
            .collect();
        if !self.points_only && pts.len() > 1 {
            let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                o,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                path.join(" "),
                s.color
            );
        }
        if pts.len() <= 60 {
            for (x, y) in &pts {
                let _ =
                    writeln!(o, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{}"/>"#, s.color);
            }
        }
        let ly = f.top + 6.0 + k as f64 * 16.0;
        let _ = writeln!(
            o,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            f.right + 10.0,
            ly - 8.0,
            s.color,
            f.right + 24.0,
            ly + 1.0,
            esc(&s.name)
        );
    }
}

fn tool_note(t: &ToolResult) -> String {
    match (&t.summary, t.status) {
        (_, Status::Skipped) => format!("skipped: {}", t.note),
        (_, Status::Failed) => "failed".into(),
        (Some(s), st) => {
            let mut n = format!("{}/s", si(s.records_per_s));
            if let Some(f) = s.vs_floor {
                let _ = write!(n, " · {} floor", ratio(f));
            }
            if st == Status::Mismatch {
                n.push_str(" · MISMATCH");
            }
            n
        }
        (None, _) => String::new(),
    }
}

impl Exporter for SvgExporter {
    fn file_name(&self) -> &'static str {
        "report.svg"
    }

    fn render(&self, r: &Report) -> String {
        let mut doc = Doc::new();
        doc.title(
            &format!("logdedup benchmark: {} ({})", r.name, r.date),
            &format!(
                "{} · {} CPUs · {} · {} runs per tool, medians",
                r.machine.cpu,
                r.machine.nproc,
                bytes(r.machine.mem_bytes),
                r.runs
            ),
        );
        for d in &r.datasets {
            throughput_bars(&mut doc, d);
            memory_bars(&mut doc, d);
        }
        if !r.rotation.is_empty() {
            rotation_charts(&mut doc, r);
        }
        if !r.fpr.is_empty() {
            fpr_chart(&mut doc, r);
        }
        doc.finish()
    }
}

/// Records per second of each tool on dataset `d`.
fn throughput_bars(doc: &mut Doc, d: &DatasetResult) {
    doc.title(
        &format!("Throughput per tool — {}", d.name),
        &format!(
            "{} records, {}; records per second (higher is better)",
            super::count(d.truth.records),
            bytes(d.truth.bytes)
        ),
    );
    let rows: Vec<_> = d
        .tools
        .iter()
        .map(|t| {
            let v = t
                .summary
                .as_ref()
                .filter(|_| t.status != Status::Failed)
                .map_or(0.0, |s| s.records_per_s);
            (t.label.clone(), v, tool_note(t), t.family.clone())
        })
        .collect();
    doc.bars(&rows);
}

/// Peak RSS per distinct ID of each tool that ran on dataset `d`.
fn memory_bars(doc: &mut Doc, d: &DatasetResult) {
    doc.title(
        &format!("Memory per distinct ID — {}", d.name),
        &format!(
            "peak RSS / {} distinct IDs, bytes (lower is better)",
            super::count(d.truth.unique_ids)
        ),
    );
    let rows: Vec<_> = d
        .tools
        .iter()
        .filter(|t| t.family != "floor" && t.summary.is_some() && t.status != Status::Failed)
        .map(|t| {
            let s = t.summary.as_ref().expect("filtered");
            let mut note =
                format!("{:.1} B/ID · {}", s.rss_bytes_per_id, bytes(s.pipeline_peak_rss_bytes));
            if let Some(m) = s.extras.get("redis_used_memory_bytes") {
                let _ = write!(note, " + Redis {:.0} B/ID", m / d.truth.unique_ids.max(1) as f64);
            }
            (t.label.clone(), s.rss_bytes_per_id, note, t.family.clone())
        })
        .collect();
    doc.bars(&rows);
}

/// Throughput and peak RSS across window rotations.
fn rotation_charts(doc: &mut Doc, r: &Report) {
    let labels: Vec<String> =
        r.rotation.iter().map(|p| format!("{} ({} rot.)", p.window, p.rotations)).collect();
    let rate =
        r.rotation.iter().map(|p| p.tool.summary.as_ref().map(|s| s.records_per_s)).collect();
    let rss = r
        .rotation
        .iter()
        .map(|p| p.tool.summary.as_ref().map(|s| s.pipeline_peak_rss_bytes as f64))
        .collect();
    let ds = r.rotation_dataset.as_deref().unwrap_or("?");
    doc.title(
        &format!("Throughput across window rotations — {ds}"),
        "records per second, by --window (rotations in the data)",
    );
    doc.chart(&LineChart {
        height: 200.0,
        x_labels: labels.clone(),
        series: vec![Series { name: "records/s".into(), color: "#d62728", values: rate }],
        y_fmt: |v| si(v),
        y_binary: false,
        log_y: false,
        points_only: false,
    });
    doc.title(&format!("Peak RSS across window rotations — {ds}"), "bytes, by --window");
    doc.chart(&LineChart {
        height: 200.0,
        x_labels: labels,
        series: vec![Series { name: "peak RSS".into(), color: "#9467bd", values: rss }],
        y_fmt: |v| bytes(v as u64),
        y_binary: true,
        log_y: false,
        points_only: false,
    });
}

/// The achieved false-positive rate of `--exact none` against the configured one.
fn fpr_chart(doc: &mut Doc, r: &Report) {
    doc.title(
        &format!(
            "Achieved vs configured fpr of --exact none — {}",
            r.fpr_dataset.as_deref().unwrap_or("?")
        ),
        "unique IDs wrongly dropped / unique IDs (log scale; an achieved 0 sits on the axis)",
    );
    doc.chart(&LineChart {
        height: 220.0,
        x_labels: r.fpr.iter().map(|p| format!("--fpr {}", prob(p.configured))).collect(),
        series: vec![
            Series {
                name: "configured".into(),
                color: "#7f7f7f",
                values: r.fpr.iter().map(|p| Some(p.configured)).collect(),
            },
            Series {
                name: "achieved".into(),
                color: "#d62728",
                values: r.fpr.iter().map(|p| p.achieved).collect(),
            },
        ],
        y_fmt: prob,
        y_binary: false,
        log_y: true,
        points_only: true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes_end_on_a_round_step_at_or_above_the_maximum() {
        assert_eq!(nice_axis(5_000_000.0, false), (6e6, 2e6));
        assert_eq!(nice_axis(4_761_904.8, false), (6e6, 2e6));
        assert_eq!(nice_axis(4e6, false), (4e6, 1e6));
        assert_eq!(nice_axis(937.0, false), (1000.0, 250.0));
        assert_eq!(nice_axis(0.0, false), (1.0, 0.25));
        // Bytes round in MiB: 41 MiB ends at 60 MiB, by 20 MiB.
        assert_eq!(
            nice_axis((41u64 << 20) as f64, true),
            ((60u64 << 20) as f64, (20u64 << 20) as f64)
        );
        assert_eq!(nice_axis(700.0, true), (800.0, 200.0));
        for max in [1.0, 3.3, 7.77, 12.5, 99.0, 1e9 + 1.0, 3.2e9] {
            for binary in [false, true] {
                let (hi, step) = nice_axis(max, binary);
                assert!(hi >= max && hi - step < max, "{max} {binary}: {hi} by {step}");
                assert!((hi / step).round() <= 4.0, "{max} {binary}: {hi} by {step}");
            }
        }
    }
}
