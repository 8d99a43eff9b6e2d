//! Dataset specs: the generator's knobs, shared by the `gen` flags and the JSON
//! spec files under `datasets/specs/`.
//!
//! One struct, [`GenConfig`], is both the clap argument group of `gen` and the
//! serde shape of a spec entry, so a spec file and a command line can never mean
//! different things. Every default is defined once, here.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// A count that may be written `10000000`, `10_000_000`, `1e7` or `10M`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub u64);

/// A flag or spec value that does not parse: the text, what was expected of it
/// and an example.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} '{text}' (expected {expected})")]
pub struct ParseError {
    /// What the value is (`count`, `duration`, `skew`).
    pub what: &'static str,
    /// The text as given.
    pub text: String,
    /// What it should look like.
    pub expected: &'static str,
}

impl ParseError {
    fn new(what: &'static str, text: &str, expected: &'static str) -> ParseError {
        ParseError { what, text: text.to_string(), expected }
    }
}

impl FromStr for Count {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let t = s.trim().replace('_', "");
        let (num, mult) = match t.chars().last() {
            Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
            Some('M') => (&t[..t.len() - 1], 1e6),
            Some('G' | 'B') => (&t[..t.len() - 1], 1e9),
            _ => (&t[..], 1.0),
        };
        if let Ok(n) = num.parse::<u64>() {
            return Ok(Count(n * mult as u64));
        }
        match num.parse::<f64>() {
            Ok(f) if f >= 0.0 && f.is_finite() => Ok(Count((f * mult).round() as u64)),
            _ => Err(ParseError::new("count", s, "e.g. 1000000, 1e6, 10M")),
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A duration in milliseconds, written `500ms`, `30s`, `10m`, `1h`, `1d`, as
/// logdedup's duration flags are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub u64);

/// A duration logdedup would refuse, said as logdedup says it. Clap puts the
/// flag in front (`invalid value '10' for '--window <WINDOW>': ...`); a spec
/// file's error gives the file, line and column.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DurError(String);

impl Dur {
    /// The duration in milliseconds.
    pub fn ms(self) -> u64 {
        self.0
    }
}

impl FromStr for Dur {
    type Err = DurError;
    /// What logdedup's flags accept, by its own parser
    /// ([`logdedup::config::parse_duration`]): humantime's syntax (`500ms`,
    /// `1.5s`, `1h30m`); a bare number other than `0` is refused (`10`: seconds
    /// or minutes?).
    fn from_str(s: &str) -> Result<Self, DurError> {
        let d = logdedup::config::parse_duration("duration", s).map_err(|e| DurError(e.message))?;
        Ok(Dur(d.as_millis() as u64))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

/// Which earlier record a duplicate repeats, as a law over the distance back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Skew {
    /// Every distance in `1..=burst` equally likely.
    Uniform,
    /// `P(d) ∝ d^-S`: recent records are repeated far more often (retry storms).
    Zipf(f64),
}

impl FromStr for Skew {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s == "uniform" {
            return Ok(Skew::Uniform);
        }
        match s.strip_prefix("zipf:").map(str::parse::<f64>) {
            Some(Ok(e)) if e > 0.0 && e < 10.0 => Ok(Skew::Zipf(e)),
            _ => Err(ParseError::new("skew", s, "uniform or zipf:S, e.g. zipf:1.1")),
        }
    }
}

impl fmt::Display for Skew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skew::Uniform => write!(f, "uniform"),
            Skew::Zipf(e) => write!(f, "zipf:{e}"),
        }
    }
}

/// Serde through `Display`/`FromStr`, so spec files read like the command line.
macro_rules! serde_as_string {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    S(String),
                    N(f64),
                }
                let text = match Raw::deserialize(d)? {
                    Raw::S(s) => s,
                    Raw::N(n) => n.to_string(),
                };
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_string!(Dur, Skew);

/// A count is written as a JSON number; a string (`"10M"`, as spec files and
/// reports written before this change have it) or a float (`1e7`) is read too.
impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            U(u64),
            S(String),
            N(f64),
        }
        match Raw::deserialize(d)? {
            Raw::U(n) => Ok(Count(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::N(n) => n.to_string().parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Output format of the generated records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// `TS LEVEL ID user=… msg`, whitespace-separated.
    Plain,
}

/// The shape of the record IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdKind {
    /// Sequential integers with random gaps (dense: roaring's best case).
    Seq,
    /// Random signed 64-bit integers, like HDFS block ids (roaring's worst case).
    I64,
    /// UUID v4 strings.
    Uuid,
    /// A business key of three fields: user + order + batch.
    Composite,
}

/// The event time a duplicate carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DupTime {
    /// A byte-identical copy of the earlier record (a redelivery): whole-line tools
    /// and keyed tools agree, and a copy that arrives after its window closed is late.
    Copy,
    /// The same record logged again at the current time (a retry): only keyed tools
    /// see it as a duplicate, and windows decide whether it still counts as one.
    Now,
}

/// How each window's record count departs from the mean (`--rate-pattern`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RatePattern {
    /// Drawn at random per window, uniformly within the swing.
    Random,
    /// A sine wave over 24 windows (a day of hourly windows).
    Wave,
}

/// Start of the generated event time: 2026-11-23T10:00:00Z, in ms since the epoch.
pub const START_MS: i64 = 1_795_428_000_000;

/// Default flag values, shared by clap and serde.
pub mod defaults {
    /// `--records`.
    pub const RECORDS: u64 = 1_000_000;
    /// `--dup-ratio`.
    pub const DUP_RATIO: f64 = 0.3;
    /// `--burst`: how far back (in records) a duplicate may reach.
    pub const BURST: u64 = 100_000;
    /// `--span`: event time covered by the whole file.
    pub const SPAN: &str = "1h";
    /// `--lateness`: how far behind an out-of-order record's time may be.
    pub const LATENESS: &str = "30s";
    /// `--record-bytes`.
    pub const RECORD_BYTES: usize = 180;
    /// `--window` of the truth file.
    pub const WINDOW: &str = "10m";
    /// `--seed`.
    pub const SEED: u64 = 20261123;
}

/// Every knob of the generator. Flags of `gen` and entries of a spec file alike.
#[derive(Clone, Debug, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenConfig {
    /// Number of records, e.g. 1000000, 1e7, 10M.
    #[arg(long, default_value_t = Count(defaults::RECORDS))]
    pub records: Count,
    /// Record format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Shape of the IDs.
    #[arg(long, value_enum, default_value_t = IdKind::Uuid)]
    pub id_kind: IdKind,
    /// Fraction of records that repeat an earlier ID (0 to 0.95).
    #[arg(long, default_value_t = defaults::DUP_RATIO)]
    pub dup_ratio: f64,
    /// Which earlier record a duplicate repeats: uniform or zipf:S over the distance.
    #[arg(long, default_value_t = Skew::Uniform)]
    pub skew: Skew,
    /// Maximum distance back, in records, of a repeat.
    #[arg(long, default_value_t = defaults::BURST)]
    pub burst: u64,
    /// Event time covered by the file (times grow evenly across it).
    #[arg(long, default_value_t = defaults::SPAN.parse().unwrap())]
    pub span: Dur,
    /// Fraction of fresh records whose event time lags behind (out of order).
    #[arg(long, default_value_t = 0.0)]
    pub out_of_order: f64,
    /// Maximum lag of an out-of-order record.
    #[arg(long, default_value_t = defaults::LATENESS.parse().unwrap())]
    pub lateness: Dur,
    /// Event time of a duplicate: copy (redelivery, byte-identical) or now (retry).
    #[arg(long, value_enum, default_value_t = DupTime::Copy)]
    pub dup_time: DupTime,
    /// Target size of a record in bytes, newline included (padded in `msg`).
    #[arg(long, default_value_t = defaults::RECORD_BYTES)]
    pub record_bytes: usize,
    /// Window length used for the truth file's per-window counts (and for
    /// --rate-swing).
    #[arg(long, default_value_t = defaults::WINDOW.parse().unwrap())]
    pub window: Dur,
    /// How far each window's record count may be from the mean, as a fraction
    /// (0.25: ±25 %); 0 spreads the records evenly over --span.
    #[arg(long, default_value_t = 0.0)]
    pub rate_swing: f64,
    /// How the window counts swing: random or wave.
    #[arg(long, value_enum, default_value_t = RatePattern::Random)]
    pub rate_pattern: RatePattern,
    /// Seed: the same seed and knobs give the same bytes.
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            records: Count(defaults::RECORDS),
            format: Format::Json,
            id_kind: IdKind::Uuid,
            dup_ratio: defaults::DUP_RATIO,
            skew: Skew::Uniform,
            burst: defaults::BURST,
            span: defaults::SPAN.parse().unwrap(),
            out_of_order: 0.0,
            lateness: defaults::LATENESS.parse().unwrap(),
            dup_time: DupTime::Copy,
            record_bytes: defaults::RECORD_BYTES,
            window: defaults::WINDOW.parse().unwrap(),
            rate_swing: 0.0,
            rate_pattern: RatePattern::Random,
            seed: defaults::SEED,
        }
    }
}

impl GenConfig {
    /// Checks the ranges, naming the flag at fault.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |flag, message: String| Err(Error::Usage { flag, message });
        if !(0.0..=0.95).contains(&self.dup_ratio) {
            return bad("--dup-ratio", format!("{} is outside 0..0.95", self.dup_ratio));
        }
        if !(0.0..=1.0).contains(&self.out_of_order) {
            return bad("--out-of-order", format!("{} is outside 0..1", self.out_of_order));
        }
        if !(0.0..=0.9).contains(&self.rate_swing) {
            return bad("--rate-swing", format!("{} is outside 0..0.9", self.rate_swing));
        }
        if self.burst == 0 {
            return bad("--burst", "must be at least 1".into());
        }
        if self.window.ms() == 0 {
            return bad("--window", "must be longer than 0".into());
        }
        Ok(())
    }

    /// The logdedup `--key` values that select this dataset's ID.
    pub fn key_specs(&self) -> Vec<String> {
        let v: &[&str] = match (self.format, self.id_kind) {
            (Format::Json, IdKind::Composite) => &[".user", ".order", ".batch"],
            (Format::Json, _) => &[".request_id"],
            (Format::Plain, IdKind::Composite) => &["field:3", "field:4", "field:5"],
            (Format::Plain, _) => &["field:3"],
        };
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The logdedup `--time-field` for this format, if the records carry one that
    /// a JSON path reaches.
    pub fn time_field(&self) -> Option<String> {
        (self.format == Format::Json).then(|| ".ts".to_string())
    }
}

/// One named dataset of a spec file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// Short slug used for file and report names.
    pub name: String,
    /// Why this dataset is in the suite (shown in the report).
    #[serde(default)]
    pub about: String,
    /// The generator's knobs.
    #[serde(flatten)]
    pub gen: GenConfig,
}

/// A spec file: the datasets of one suite and the knobs of its experiments.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    /// What the suite is for.
    #[serde(default)]
    pub about: String,
    /// Interleaved runs per tool.
    pub runs: usize,
    /// The datasets; every tool runs on every one.
    pub datasets: Vec<DatasetSpec>,
    /// Windows tried on the rotation experiment's dataset (named by `rotation_dataset`).
    #[serde(default)]
    pub rotation_windows: Vec<Dur>,
    /// Dataset used for the window-rotation experiment.
    #[serde(default)]
    pub rotation_dataset: Option<String>,
    /// Configured fprs tried with `--exact none`.
    #[serde(default)]
    pub fprs: Vec<f64>,
    /// Dataset used for the fpr experiment (string IDs, so the bloom is used).
    #[serde(default)]
    pub fpr_dataset: Option<String>,
}

impl SuiteSpec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<SuiteSpec, Error> {
        let spec: SuiteSpec = crate::suite::load_json(path)?;
        for d in &spec.datasets {
            d.gen.validate().map_err(|e| Error::Dataset {
                path: path.into(),
                dataset: d.name.clone(),
                source: Box::new(e),
            })?;
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_parse() {
        assert_eq!("1e9".parse::<Count>().unwrap(), Count(1_000_000_000));
        assert_eq!("10M".parse::<Count>().unwrap(), Count(10_000_000));
        assert_eq!("10_000".parse::<Count>().unwrap(), Count(10_000));
        assert!("ten".parse::<Count>().is_err());
        assert_eq!("1h".parse::<Dur>().unwrap(), Dur(3_600_000));
        assert_eq!("500ms".parse::<Dur>().unwrap(), Dur(500));
        assert_eq!("1.5s".parse::<Dur>().unwrap(), Dur(1500));
        assert_eq!("1s 500ms".parse::<Dur>().unwrap(), Dur(1500));
        assert_eq!("0".parse::<Dur>().unwrap(), Dur(0));
        // As logdedup's flags: a bare number needs a unit.
        let bare = "90".parse::<Dur>().unwrap_err().to_string();
        assert!(bare.contains("'90' needs a unit"), "{bare}");
        let bad = "10x".parse::<Dur>().unwrap_err().to_string();
        assert!(bad.starts_with("invalid duration '10x'"), "{bad}");
        assert_eq!("ten".parse::<Count>().unwrap_err().what, "count");
        assert_eq!("zipf:0".parse::<Skew>().unwrap_err().text, "zipf:0");
        assert_eq!(Dur(600_000).to_string(), "10m");
        assert_eq!(Dur(1500).to_string(), "1500ms");
    }

    #[test]
    fn skew_round_trips() {
        for s in ["uniform", "zipf:1.1"] {
            assert_eq!(s.parse::<Skew>().unwrap().to_string(), s);
        }
        assert!("zipf:".parse::<Skew>().is_err());
    }

    #[test]
    fn spec_entry_uses_flag_defaults() {
        let d: DatasetSpec = serde_json::from_str(r#"{"name":"x","records":"1e3"}"#).unwrap();
        assert_eq!(d.gen.records, Count(1000));
        assert_eq!(d.gen.dup_ratio, defaults::DUP_RATIO);
        assert!(serde_json::from_str::<GenConfig>(r#"{"recrods":1}"#).is_err());
    }

    /// `records` is a JSON number; the strings and floats of older files still read.
    #[test]
    fn records_serialise_as_a_number() {
        let v = serde_json::to_value(GenConfig { records: Count(2_000_000), ..Default::default() })
            .unwrap();
        assert_eq!(v["records"], serde_json::json!(2_000_000u64));
        for old in [r#""2000000""#, r#""2M""#, "2e6", "2000000"] {
            let g: GenConfig = serde_json::from_str(&format!(r#"{{"records":{old}}}"#)).unwrap();
            assert_eq!(g.records, Count(2_000_000), "{old}");
        }
        let big: GenConfig = serde_json::from_str(r#"{"records":9007199254740993}"#).unwrap();
        assert_eq!(big.records, Count(9_007_199_254_740_993));
    }

    #[test]
    fn clap_defaults_equal_serde_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct A {
            #[command(flatten)]
            g: GenConfig,
        }
        let from_flags = A::parse_from(["x"]).g;
        assert_eq!(
            serde_json::to_string(&from_flags).unwrap(),
            serde_json::to_string(&GenConfig::default()).unwrap()
        );
    }

    #[test]
    fn a_bad_spec_names_its_file_dataset_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        let text = r#"{"runs": 1, "datasets": [{"name": "skewed", "dup_ratio": 2.0}]}"#;
        std::fs::write(&path, text).unwrap();
        let err = SuiteSpec::load(&path).unwrap_err();
        assert!(matches!(&err, Error::Dataset { dataset, .. } if dataset == "skewed"), "{err:?}");
        let shown = err.to_string();
        assert!(shown.starts_with(&path.display().to_string()), "{shown}");
        assert!(shown.contains("dataset skewed: --dup-ratio: 2 is outside 0..0.95"), "{shown}");
        let missing = SuiteSpec::load(&dir.path().join("none.json")).unwrap_err();
        assert!(matches!(missing, Error::File { .. }), "{missing:?}");
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(SuiteSpec::load(&path).unwrap_err(), Error::Json { .. }));
    }
}
