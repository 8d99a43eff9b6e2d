//! Markdown report: the page a reader opens first. Machine, notes, one table per
//! dataset (correctness beside speed and memory), the window-rotation table and
//! the achieved-vs-configured fpr table.

use std::fmt::Write;

use super::{bytes, count, prob, ratio, si, Exporter};
use crate::redis_server::USED_MEMORY_GROWTH;
use crate::report::{DatasetResult, Machine, Report, Status, ToolResult};

/// Writes `report.md`.
pub struct MarkdownExporter;

fn check(t: &ToolResult) -> String {
    match t.status {
        Status::Ok => "ok".into(),
        Status::Mismatch => "**MISMATCH**".into(),
        Status::Failed => "failed".into(),
        Status::Skipped => "skipped".into(),
    }
}

/// Text safe inside a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A serde enum's wire name (`json`, `uuid`), as the flags spell it.
fn wire<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn tool_row(out: &mut String, t: &ToolResult) {
    let emitted = t.output.map_or("–".into(), count);
    // The measured cells, or a dash in each when the tool did not run.
    let measured: Vec<String> = match &t.summary {
        Some(s) => vec![
            format!("{:.3}", s.median_s),
            format!("{:.3}–{:.3}", s.min_s, s.max_s),
            format!("{}/s", si(s.records_per_s)),
            format!("{:.0}", s.mb_per_s),
            s.vs_floor.map_or("–".into(), ratio),
            bytes(s.pipeline_peak_rss_bytes),
            format!("{:.1}", s.rss_bytes_per_id),
            count(s.minor_faults),
        ],
        None => vec!["–".into(); 8],
    };
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |",
        cell(&t.label),
        check(t),
        emitted,
        count(t.expected),
        measured.join(" | ")
    );
}

impl Exporter for MarkdownExporter {
    fn file_name(&self) -> &'static str {
        "report.md"
    }

    fn render(&self, r: &Report) -> String {
        let mut o = String::new();
        intro(&mut o, r);
        machine(&mut o, &r.machine);
        if !r.notes.is_empty() {
            let _ = writeln!(o, "\n## Notes\n");
            for n in &r.notes {
                let _ = writeln!(o, "- {n}");
            }
        }
        for d in &r.datasets {
            dataset(&mut o, d);
        }
        if !r.rotation.is_empty() {
            rotation(&mut o, r);
        }
        if !r.fpr.is_empty() {
            fpr(&mut o, r);
        }
        let _ = writeln!(o, "\nCharts: [report.svg](report.svg). Raw data: [raw/](raw/), [report.json](report.json).");
        o
    }
}

/// The title, the command that reproduces the report, and how it measures.
fn intro(o: &mut String, r: &Report) {
    let _ = writeln!(o, "# logdedup benchmark: {} ({})\n", r.name, r.date);
    let _ = writeln!(o, "Reproduce with:\n\n```sh\n{}\n```\n", r.command);
    let _ = writeln!(
        o,
        "Each tool reads the same file through a pipe (`cat FILE | tool`) and writes into a pipe \
         that the harness drains and counts. Runs are interleaved (A B C … A B C …), {} per tool; \
         times are wall-clock medians with min–max. `× floor` is the median time over the median \
         time of `cat | wc -l`. Peak RSS is the largest process of the pipeline (GNU time); \
         `RSS B/ID` is that peak over the dataset's distinct IDs. \"check\" compares the records \
         emitted with the truth file of the generator.\n",
        r.runs
    );
}

/// The machine the report was measured on.
fn machine(o: &mut String, m: &Machine) {
    let _ = writeln!(o, "## Machine\n");
    let _ = writeln!(o, "| | |\n| --- | --- |");
    let _ = writeln!(
        o,
        "| CPU | {} ({} logical CPUs{}) |",
        m.cpu,
        m.nproc,
        if m.hypervisor { ", virtual machine" } else { "" }
    );
    let _ = writeln!(o, "| memory | {} |", bytes(m.mem_bytes));
    let _ = writeln!(o, "| kernel | {} |", m.kernel);
    let _ = writeln!(o, "| transparent huge pages | {} |", m.thp);
    for (k, v) in &m.tools {
        let _ = writeln!(o, "| {k} | {v} |");
    }
}

/// One dataset: what it is, its truth, and one row per tool.
fn dataset(o: &mut String, d: &DatasetResult) {
    let t = &d.truth;
    let s = &d.spec;
    let _ = writeln!(o, "\n## Dataset `{}`\n", d.name);
    if !d.about.is_empty() {
        let _ = writeln!(o, "{}\n", d.about);
    }
    let _ = writeln!(
        o,
        "{} records, {} ({} B/record); {} lines, {} IDs, dup ratio {}, skew {}, burst {}, \
         span {}, out-of-order {}, duplicates' time: {}, seed {}.\n",
        count(t.records),
        bytes(t.bytes),
        t.bytes.checked_div(t.records).unwrap_or(0),
        wire(&s.format),
        wire(&s.id_kind),
        s.dup_ratio,
        s.skew,
        s.burst,
        s.span,
        s.out_of_order,
        wire(&s.dup_time),
        s.seed
    );
    let _ = writeln!(
        o,
        "Truth: {} distinct lines, {} distinct IDs; with `--window {}`: {} emitted ({} late), {} rotations.\n",
        count(t.unique_lines),
        count(t.unique_ids),
        t.window,
        count(t.window_emitted),
        count(t.window_late),
        count(t.window_rotations)
    );
    let _ = writeln!(
        o,
        "| tool | check | emitted | truth | median s | min–max s | records/s | MB/s | × floor | peak RSS | RSS B/ID | minor faults |"
    );
    let _ = writeln!(
        o,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for tool in &d.tools {
        tool_row(o, tool);
    }
    redis_memory(o, d);
    let notes: Vec<&ToolResult> = d.tools.iter().filter(|t| !t.note.is_empty()).collect();
    if !notes.is_empty() {
        let _ = writeln!(o);
        for t in notes {
            let _ = writeln!(o, "- {}: {}", t.label, cell(&t.note));
        }
    }
}

/// What each Redis run left in Redis, beside its time: `used_memory`'s growth
/// from the flushed server over the dataset's distinct IDs.
fn redis_memory(o: &mut String, d: &DatasetResult) {
    let growth = |t: &ToolResult| t.summary.as_ref()?.extras.get(USED_MEMORY_GROWTH).copied();
    let rows: Vec<&ToolResult> = d.tools.iter().filter(|t| growth(t).is_some()).collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\nRedis memory: growth of `used_memory` (`INFO memory`) over the run, from the \
         flushed server, medians; per distinct ID of the dataset.\n"
    );
    let _ = writeln!(o, "| tool | median s | Redis memory | Redis B/ID | Redis keys |");
    let _ = writeln!(o, "| --- | ---: | ---: | ---: | ---: |");
    for t in rows {
        let s = t.summary.as_ref().expect("has a growth");
        let g = growth(t).unwrap_or(0.0).max(0.0);
        let per_id = if d.truth.unique_ids > 0 { g / d.truth.unique_ids as f64 } else { 0.0 };
        let keys = s.extras.get("redis_keys").copied().unwrap_or(0.0);
        let _ = writeln!(
            o,
            "| {} | {:.3} | {} | {:.2} | {} |",
            cell(&t.label),
            s.median_s,
            bytes(g as u64),
            per_id,
            count(keys as u64)
        );
    }
}

/// Throughput and memory across window rotations.
fn rotation(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "\n## Throughput and memory across window rotations (dataset `{}`)\n",
        r.rotation_dataset.as_deref().unwrap_or("?")
    );
    let _ = writeln!(o, "| window | rotations (truth) | check | emitted | truth | median s | records/s | peak RSS | windows_rotated (stats) |");
    let _ = writeln!(o, "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for p in &r.rotation {
        let t = &p.tool;
        let (med, rate, rss, rot) = match &t.summary {
            Some(s) => (
                format!("{:.3}", s.median_s),
                format!("{}/s", si(s.records_per_s)),
                bytes(s.pipeline_peak_rss_bytes),
                s.extras.get("windows_rotated").map_or("–".into(), |v| count(*v as u64)),
            ),
            None => ("–".into(), "–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {med} | {rate} | {rss} | {rot} |",
            p.window,
            count(p.rotations),
            check(t),
            t.output.map_or("–".into(), count),
            count(t.expected)
        );
    }
    for p in r.rotation.iter().filter(|p| !p.tool.note.is_empty()) {
        let _ = writeln!(o, "\n- window {}: {}", p.window, p.tool.note);
    }
}

/// The achieved false-positive rate of `--exact none` against the configured one.
fn fpr(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "\n## False-positive rate of `--exact none` (dataset `{}`)\n",
        r.fpr_dataset.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        o,
        "Achieved fpr = unique IDs wrongly dropped / unique IDs, from the truth file: each unique \
         ID is looked up once while it is new, so this is the per-lookup rate that `--fpr` configures.\n"
    );
    let _ = writeln!(o, "| configured fpr | unique IDs | emitted | wrongly dropped | achieved fpr | maybes (stats) | median s | peak RSS |");
    let _ = writeln!(o, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for p in &r.fpr {
        let s = p.tool.summary.as_ref();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            prob(p.configured),
            count(p.unique_ids),
            p.emitted.map_or("–".into(), count),
            p.wrongly_dropped.map_or("–".into(), count),
            p.achieved.map_or("–".into(), prob),
            s.and_then(|s| s.extras.get("maybes")).map_or("–".into(), |v| count(*v as u64)),
            s.map_or("–".into(), |s| format!("{:.3}", s.median_s)),
            s.map_or("–".into(), |s| bytes(s.pipeline_peak_rss_bytes)),
        );
    }
    for p in r.fpr.iter().filter(|p| !p.tool.note.is_empty()) {
        let _ = writeln!(o, "\n- fpr {}: {}", prob(p.configured), p.tool.note);
    }
}
