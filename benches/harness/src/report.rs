//! The report's data model: everything a run measured, as plain serde structs.
//!
//! `run` fills a [`Report`] and saves it as the run folder's raw data; the
//! exporters (`export`) only read it. Derived figures (medians, ratios to the
//! floor, bytes per ID) are computed once by [`ToolResult::summarise`] so every
//! format shows the same numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::GenConfig;

/// The machine a run was measured on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs (`nproc`).
    pub nproc: usize,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu: String,
    /// Total memory in bytes (`/proc/meminfo`).
    pub mem_bytes: u64,
    /// Kernel release.
    pub kernel: String,
    /// Whether the CPU flags say this is a virtual machine.
    pub hypervisor: bool,
    /// Transparent huge pages setting.
    pub thp: String,
    /// Versions of the tools that ran, by name.
    pub tools: BTreeMap<String, String>,
}

/// What a tool's output count is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Every record (the floor: `cat | wc -l`).
    Records,
    /// Distinct whole lines.
    UniqueLines,
    /// Distinct IDs, no window.
    UniqueIds,
    /// The windowed truth (retain 1, late emitted).
    Windowed,
    /// At most the distinct IDs: a filter without an exact tier may drop a unique
    /// record with probability fpr, never keep a duplicate.
    AtMostUniqueIds,
}

/// Outcome of a tool on a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Output count equals the truth (or is within the bound for `AtMostUniqueIds`).
    Ok,
    /// Ran, but emitted a different number of records than the truth.
    Mismatch,
    /// Exited non-zero.
    Failed,
    /// Not run: the program is not installed (see `note`).
    Skipped,
}

/// One run of one tool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Wall time from spawn to exit, seconds.
    pub wall_s: f64,
    /// User CPU seconds (all processes of the pipeline).
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Largest peak RSS among the pipeline's processes, bytes.
    pub max_rss_bytes: u64,
    /// Minor page faults (first touches), all processes.
    pub minor_faults: u64,
    /// Exit code of the pipeline.
    pub exit_code: i32,
    /// Records the tool emitted (lines on stdout, or the printed count).
    pub output: u64,
    /// Tool-specific figures (logdedup's stats JSON, Redis memory), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extras: BTreeMap<String, f64>,
}

/// Medians and ratios over a tool's samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Median wall time, s.
    pub median_s: f64,
    /// Fastest run, s.
    pub min_s: f64,
    /// Slowest run, s.
    pub max_s: f64,
    /// Records in / median wall time.
    pub records_per_s: f64,
    /// Input bytes / median wall time, MB/s (10^6).
    pub mb_per_s: f64,
    /// Median wall time / the floor's median wall time.
    pub vs_floor: Option<f64>,
    /// Peak RSS of the pipeline's largest process as GNU time measures it
    /// (`Sample::max_rss_bytes`), the largest over the runs, bytes. Named apart
    /// from `extras.peak_rss_bytes`, logdedup's own figure from its stats JSON;
    /// reports written before the rename call this field `peak_rss_bytes`.
    #[serde(alias = "peak_rss_bytes")]
    pub pipeline_peak_rss_bytes: u64,
    /// Peak RSS / distinct IDs of the dataset.
    pub rss_bytes_per_id: f64,
    /// Median minor page faults.
    pub minor_faults: u64,
    /// Median of each extra.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extras: BTreeMap<String, f64>,
}

/// A tool's result on one dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// Short name.
    pub slug: String,
    /// What the reader sees.
    pub label: String,
    /// `floor`, `peer`, `logdedup` or `redis`.
    pub family: String,
    /// The shell command run (with `$DATA` etc.).
    pub command: String,
    /// What the output count is checked against.
    pub expect: Expect,
    /// The expected count.
    pub expected: u64,
    /// The count of the last run.
    pub output: Option<u64>,
    /// Outcome.
    pub status: Status,
    /// Why it was skipped or failed, or anything else worth knowing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Every run, in order.
    pub samples: Vec<Sample>,
    /// Medians and ratios (absent when nothing ran).
    pub summary: Option<Summary>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl ToolResult {
    /// Computes the summary from the samples; `floor_s` is the floor's median.
    pub fn summarise(&mut self, records: u64, bytes: u64, unique_ids: u64, floor_s: Option<f64>) {
        if self.samples.is_empty() {
            self.summary = None;
            return;
        }
        let walls: Vec<f64> = self.samples.iter().map(|s| s.wall_s).collect();
        let med = median(walls.clone());
        let peak = self.samples.iter().map(|s| s.max_rss_bytes).max().unwrap_or(0);
        let mut keys: Vec<&String> = self.samples.iter().flat_map(|s| s.extras.keys()).collect();
        keys.sort();
        keys.dedup();
        let extras = keys
            .into_iter()
            .map(|k| {
                let vals = self.samples.iter().filter_map(|s| s.extras.get(k).copied()).collect();
                (k.clone(), median(vals))
            })
            .collect();
        self.summary = Some(Summary {
            median_s: med,
            min_s: walls.iter().copied().fold(f64::INFINITY, f64::min),
            max_s: walls.iter().copied().fold(0.0, f64::max),
            records_per_s: if med > 0.0 { records as f64 / med } else { 0.0 },
            mb_per_s: if med > 0.0 { bytes as f64 / med / 1e6 } else { 0.0 },
            vs_floor: floor_s.filter(|f| *f > 0.0).map(|f| med / f),
            pipeline_peak_rss_bytes: peak,
            rss_bytes_per_id: if unique_ids > 0 { peak as f64 / unique_ids as f64 } else { 0.0 },
            minor_faults: median(self.samples.iter().map(|s| s.minor_faults as f64).collect())
                as u64,
            extras,
        });
    }
}

/// What the truth file says about a dataset, in brief.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthSummary {
    /// Records.
    pub records: u64,
    /// Bytes.
    pub bytes: u64,
    /// Distinct lines.
    pub unique_lines: u64,
    /// Distinct IDs.
    pub unique_ids: u64,
    /// Truth window.
    pub window: String,
    /// Windowed emitted count.
    pub window_emitted: u64,
    /// Late records under that window.
    pub window_late: u64,
    /// Window rotations.
    pub window_rotations: u64,
}

/// All tools on one dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetResult {
    /// Dataset slug.
    pub name: String,
    /// Why it is in the suite.
    pub about: String,
    /// The generator's knobs.
    pub spec: GenConfig,
    /// The truth, in brief.
    pub truth: TruthSummary,
    /// One entry per tool, skipped ones included.
    pub tools: Vec<ToolResult>,
}

/// One window length of the rotation experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RotationPoint {
    /// Window length.
    pub window: String,
    /// Window length, ms.
    pub window_ms: u64,
    /// Rotations in the truth for this window.
    pub rotations: u64,
    /// logdedup with this window.
    pub tool: ToolResult,
}

/// One configured fpr of the `--exact none` experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FprPoint {
    /// `--fpr`.
    pub configured: f64,
    /// Distinct IDs in the data (each looked up once while new).
    pub unique_ids: u64,
    /// Records emitted.
    pub emitted: Option<u64>,
    /// Unique IDs wrongly dropped: `unique_ids - emitted`.
    pub wrongly_dropped: Option<u64>,
    /// `wrongly_dropped / unique_ids`.
    pub achieved: Option<f64>,
    /// logdedup with this fpr.
    pub tool: ToolResult,
}

/// A whole run: what was measured, where, and how to reproduce it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Run name (the folder is `<date>-<name>`).
    pub name: String,
    /// UTC date of the run, `YYYY-MM-DD`.
    pub date: String,
    /// The command that reproduces it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// Interleaved runs per tool.
    pub runs: usize,
    /// Things the reader must know (skipped tools, missing binary).
    pub notes: Vec<String>,
    /// Results per dataset.
    pub datasets: Vec<DatasetResult>,
    /// Dataset of the rotation experiment.
    pub rotation_dataset: Option<String>,
    /// Throughput and RSS across window lengths.
    pub rotation: Vec<RotationPoint>,
    /// Dataset of the fpr experiment.
    pub fpr_dataset: Option<String>,
    /// Achieved vs configured fpr.
    pub fpr: Vec<FprPoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
