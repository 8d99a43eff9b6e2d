//! Report writers: one [`Exporter`] per format, each in its own file, each a pure
//! function of a [`Report`] (no clock, no machine access), so snapshot tests pin
//! their output byte for byte.

mod json;
mod markdown;
mod svg;

use std::fs;
use std::path::{Path, PathBuf};

pub use json::JsonExporter;
pub use markdown::MarkdownExporter;
pub use svg::SvgExporter;
pub(crate) use svg::{Doc, LineChart, Series};

use crate::error::{Error, Result};
use crate::report::Report;

/// Renders a report in one format.
pub trait Exporter {
    /// File name inside the run folder (`report.md`, …).
    fn file_name(&self) -> &'static str;
    /// The whole file.
    fn render(&self, report: &Report) -> String;
}

/// Every exporter, in the order the files are written.
pub fn all() -> Vec<Box<dyn Exporter>> {
    vec![Box::new(MarkdownExporter), Box::new(JsonExporter), Box::new(SvgExporter)]
}

/// Writes every format into `dir`; returns the paths written.
pub fn write_all(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    all()
        .into_iter()
        .map(|e| {
            let p = dir.join(e.file_name());
            fs::write(&p, e.render(report)).map_err(Error::file(&p))?;
            Ok(p)
        })
        .collect()
}

/// `1234567` → `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate with an SI prefix: `1.23 M`, `456.0 k`, `523`. The prefix, when there
/// is one, is followed directly by the unit the caller appends, and nothing is
/// appended when there is none: `1.23 M/s`, `523/s`.
pub(crate) fn si(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Bytes in binary units: `1.50 GiB`, `12.0 MiB`, `0.5 KiB`.
pub(crate) fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// A ratio of two times (`× floor`), the same precision in every format: `2.38×`.
pub(crate) fn ratio(r: f64) -> String {
    format!("{r:.2}×")
}

/// A probability in scientific notation, `0` for zero.
pub(crate) fn prob(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else {
        format!("{p:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(si(1_234_567.0), "1.23 M");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(ratio(2.375), "2.38×");
        assert_eq!(prob(0.0), "0");
        assert_eq!(prob(0.000123), "1.23e-4");
    }

    /// No prefix, no space: the unit follows the number as it follows a prefix.
    #[test]
    fn si_spaces_small_rates_like_large_ones() {
        assert_eq!(format!("{}/s", si(1.5e6)), "1.50 M/s");
        assert_eq!(format!("{}/s", si(523.0)), "523/s");
        assert_eq!(si(0.0), "0");
    }

    /// Under 1 MiB the size keeps a decimal, as MiB does.
    #[test]
    fn bytes_under_a_mib_keep_a_decimal() {
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(700 * 1024 + 307), "700.3 KiB");
        assert_eq!(bytes(512), "0.5 KiB");
        assert_eq!(bytes((5 << 20) + (1 << 19)), "5.5 MiB");
    }
}
