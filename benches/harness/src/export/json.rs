//! JSON report: the full [`Report`] (every sample, the summaries, the machine),
//! pretty-printed, for other programs and for comparing runs.

use super::Exporter;
use crate::report::Report;

/// Writes `report.json`.
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn render(&self, report: &Report) -> String {
        let mut s = serde_json::to_string_pretty(report).expect("a report always serialises");
        s.push('\n');
        s
    }
}
