//! The validated, typed configuration of a run: one sub-config per stage.
//!
//! The binary's clap `Args` is the low level; [`Config`] is what the library runs
//! on. Each documented default is defined once here as a constant and reused by
//! the command line, so `--help` and the library cannot disagree. Every parser in
//! this module returns a [`ConfigError`] that names the flag.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::key::{KeyPart, KeySpec};

/// Default of `--max-record-bytes`: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;
/// Default of `--fpr`: the bloom filter's target false-positive rate per lookup.
pub const DEFAULT_FPR: f64 = 1e-4;
/// Default of `--retain`: how many of the newest windows are kept.
pub const DEFAULT_RETAIN: u32 = 1;
/// Default size of one read from the input (and so of a batch). Large reads keep
/// syscalls rare and amortise the per-batch work; 512 KiB rather than 1 MiB lets
/// the queue between the threads hold twice the batches in the same memory (see
/// `CHANNEL_DEPTH` in the pipeline).
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 19;
/// Default number of keys the first bloom filter of a generation is sized for.
pub const DEFAULT_BLOOM_INITIAL_CAPACITY: u64 = 1 << 20;
/// The smallest `--fpr` accepted: below it the filter's size stops being sensible
/// (each key sets 16 bits, so a tinier rate needs ever sparser blocks).
pub const MIN_FPR: f64 = 1e-9;
/// The largest `--bloom-initial-capacity` accepted (4 Gi keys, ~12 GiB of filter).
pub const MAX_BLOOM_INITIAL_CAPACITY: u64 = 1 << 32;
/// The largest `--max-record-bytes` accepted: record offsets are kept as `u32`.
pub const MAX_MAX_RECORD_BYTES: usize = 1 << 30;
/// Default of `--checkpoint-every` with `--state-dir`: a stream that runs for
/// months must not lose all its state to a `kill -9`, and a snapshot every 30 s
/// bounds what a restart re-emits to about 30 s of records.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

/// What happens to a record: written to stdout, dropped, or written to the reject file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Disposition {
    /// Written to stdout (never lose a log).
    #[default]
    Emit,
    /// Dropped and counted.
    Drop,
    /// Written unchanged to --reject-file and counted.
    Reject,
}

/// `--on-unkeyed`: what to do with a record that has no key.
pub type OnUnkeyed = Disposition;
/// `--on-oversized`: what to do with a record longer than `--max-record-bytes`.
pub type OnOversized = Disposition;

/// `--on-late`: what to do with a record older than every retained window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnLate {
    /// Emit it (unchecked) and count it.
    #[default]
    Emit,
    /// Drop it and count it.
    Drop,
}

/// `--on-exact-error`: what to do with a record the exact tier could not confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnExactError {
    /// Emit it (a possible duplicate, never a lost log) and count it as unconfirmed.
    #[default]
    Open,
    /// Treat it as a duplicate (drop it) and count it as unconfirmed.
    Closed,
    /// Stop the run with exit code 2.
    Abort,
}

/// `--emit`: which records go to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EmitMode {
    /// The first occurrence of each ID, and records without a key, late or
    /// oversized, by their policies.
    #[default]
    New,
    /// Only the duplicates (nothing unkeyed, late or oversized).
    Dups,
    /// Every record (with --tag, JSON objects are marked).
    All,
}

/// `--local-bloom`: whether string IDs pass a bloom filter before the exact tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BloomMode {
    /// Where it pays for itself: with --exact none and remote exact tiers.
    ///
    /// Off in front of the in-process memory tier, where every new key is inserted
    /// into the exact set anyway and the bloom only adds a memory access.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never (not allowed with --exact none, which needs it).
    Off,
}

/// Framing stage settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FramingConfig {
    /// `--max-record-bytes`.
    pub max_record_bytes: usize,
    /// Bytes per read.
    pub chunk_bytes: usize,
}

impl Default for FramingConfig {
    fn default() -> Self {
        FramingConfig {
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

/// Event time: where it is and how it is written.
#[derive(Debug, Clone)]
pub struct TimeConfig {
    /// `--time-field`: which part of the record holds the time (same syntax as `--key`).
    pub field: KeySpec,
    /// `--time-format`: a strftime-style format; `None` means RFC 3339 or epoch numbers.
    pub format: Option<String>,
}

/// Window stage settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowConfig {
    /// `--window` in nanoseconds; `None` means one window for the whole stream.
    pub width_ns: Option<i64>,
    /// `--retain`.
    pub retain: u32,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig { width_ns: None, retain: DEFAULT_RETAIN }
    }
}

/// Local tier settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalConfig {
    /// `--fpr`.
    pub fpr: f64,
    /// `--local-bloom`.
    pub bloom: BloomMode,
    /// `--bloom-initial-capacity` (`--expected-ids`): keys the first window's
    /// filter is sized for. Without it the filter starts at
    /// [`DEFAULT_BLOOM_INITIAL_CAPACITY`] and grows as for an unknown count.
    pub bloom_initial_capacity: Option<u64>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig { fpr: DEFAULT_FPR, bloom: BloomMode::Auto, bloom_initial_capacity: None }
    }
}

/// `--exact`: the authority for every bloom *maybe*.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExactConfig {
    /// 128-bit fingerprints in process, per window (the embedded default).
    #[default]
    Memory,
    /// Trust the bloom filter.
    None,
    /// A Redis server or cluster, by URL.
    Redis(RedisConfig),
}

/// Where and how to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The URL as given (`redis://`, `rediss://`, `redis+unix://`, `redis+cluster://`).
    pub url: String,
    /// Response timeout per batch.
    pub timeout: Duration,
    /// Several instances over the same key space (`--shared`).
    pub shared: bool,
    /// `--shared`: how long an ID this process found new stays leased to it while
    /// its record is on the way out (`--shared-lease`). Another instance that meets
    /// the ID meanwhile waits for the record to be written (then it is a duplicate)
    /// or for the lease to lapse (the holder died: then it is new there).
    pub lease: Duration,
    /// One instance: the most IDs a window that already holds data may hold for
    /// the process to read it whole when it first meets it (then that window is
    /// decided in process, like one it owns); larger ones are asked ID by ID.
    pub preload_max: u64,
}

impl RedisConfig {
    /// The default [`RedisConfig::preload_max`]: 8Mi IDs (~30 B each in process).
    pub const DEFAULT_PRELOAD_MAX: u64 = 8 << 20;
    /// The default [`RedisConfig::lease`].
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
    /// The default [`RedisConfig::timeout`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
}

/// The record-level policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policies {
    /// `--on-unkeyed`.
    pub on_unkeyed: OnUnkeyed,
    /// `--on-oversized`.
    pub on_oversized: OnOversized,
    /// `--on-late`.
    pub on_late: OnLate,
    /// `--on-exact-error`.
    pub on_exact_error: OnExactError,
}

/// Sink settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitConfig {
    /// `--emit`.
    pub mode: EmitMode,
    /// `--tag FIELD` (with `--emit all`): JSON records get `"FIELD":true` when duplicate.
    pub tag: Option<String>,
    /// `--reject-file`.
    pub reject_file: Option<PathBuf>,
    /// `--flush-interval`: the longest a decided record waits in the output
    /// buffer while input keeps coming (zero: written after every batch).
    pub flush_interval: Duration,
}

impl EmitConfig {
    /// The default [`EmitConfig::flush_interval`]: short enough that a live
    /// stream's records come out at once to a person watching, long enough that
    /// a busy stream's output still goes out in large blocks.
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
}

impl Default for EmitConfig {
    fn default() -> Self {
        EmitConfig {
            mode: EmitMode::default(),
            tag: None,
            reject_file: None,
            flush_interval: EmitConfig::DEFAULT_FLUSH_INTERVAL,
        }
    }
}

/// `--checkpoint-every`: records or seconds between snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// Only on rotation and at the end.
    Never,
    /// After this many records.
    Records(u64),
    /// After this much time.
    Every(Duration),
}

/// State directory settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// `--state-dir`.
    pub dir: Option<PathBuf>,
    /// `--checkpoint-every`.
    pub checkpoint_every: Checkpoint,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { dir: None, checkpoint_every: Checkpoint::Every(DEFAULT_CHECKPOINT_EVERY) }
    }
}

/// Reporting settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportConfig {
    /// `--stats-json FILE`.
    pub stats_json: Option<PathBuf>,
    /// Print the summary on stderr at the end (`--quiet` turns it off).
    pub summary: bool,
    /// Show a progress line (only honoured when stderr is a terminal).
    pub progress: bool,
    /// `--stats-every DURATION`: rewrite `--stats-json` (and print the summary
    /// when stderr is not a terminal) at this interval while the run goes on.
    pub stats_every: Option<Duration>,
    /// `--metrics ADDR`: serve the counters to Prometheus on this `HOST:PORT`.
    pub metrics: Option<String>,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Framing.
    pub framing: FramingConfig,
    /// Key extraction (`--key`, `--key-type`, `--delimiter`).
    pub key: KeySpec,
    /// Event time, if `--time-field` is given.
    pub time: Option<TimeConfig>,
    /// Windows.
    pub window: WindowConfig,
    /// Local tier.
    pub local: LocalConfig,
    /// Exact tier.
    pub exact: ExactConfig,
    /// Policies.
    pub policies: Policies,
    /// Sink.
    pub emit: EmitConfig,
    /// State directory.
    pub state: StateConfig,
    /// Reporting.
    pub report: ReportConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            framing: FramingConfig::default(),
            key: KeySpec::line(),
            time: None,
            window: WindowConfig::default(),
            local: LocalConfig::default(),
            exact: ExactConfig::default(),
            policies: Policies::default(),
            emit: EmitConfig::default(),
            state: StateConfig::default(),
            report: ReportConfig::default(),
        }
    }
}

impl Config {
    /// `--reject-file`, when a policy can reject a record (`--on-unkeyed reject`,
    /// `--on-oversized reject`): only then is the file opened (created if missing).
    pub fn reject_file(&self) -> Option<&Path> {
        let rejects = self.policies.on_unkeyed == Disposition::Reject
            || self.policies.on_oversized == Disposition::Reject;
        self.emit.reject_file.as_deref().filter(|_| rejects)
    }

    /// `--tag FIELD` must not name a top-level member that the key or the time is
    /// read from: the tag, the last member, would replace it for every reader of
    /// the output (this program included).
    fn check_tag_is_not_read(&self, tag: &str) -> Result<(), ConfigError> {
        let time = self.time.iter().map(|t| ("--time-field", &t.field));
        for (flag, spec) in std::iter::once(("--key", &self.key)).chain(time) {
            for part in spec.parts() {
                if let KeyPart::Json(path) = part {
                    if path.segments()[0] == tag.as_bytes() {
                        return Err(ConfigError::new(
                            "--tag",
                            format!(
                                "'{tag}' is the field {flag} reads: the tag would replace it; \
                                 choose another name"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the combinations of flags that are valid one by one but not together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window.retain == 0 {
            return Err(ConfigError::new("--retain", "must be at least 1"));
        }
        if self.window.width_ns.is_none() && self.window.retain != 1 {
            return Err(ConfigError::new("--retain", "needs --window"));
        }
        if !(self.local.fpr >= MIN_FPR && self.local.fpr < 1.0) {
            return Err(ConfigError::new(
                "--fpr",
                format!(
                    "must be at least {MIN_FPR:e} and below 1, got {}",
                    show_f64(self.local.fpr)
                ),
            ));
        }
        if self
            .local
            .bloom_initial_capacity
            .is_some_and(|c| !(1..=MAX_BLOOM_INITIAL_CAPACITY).contains(&c))
        {
            return Err(ConfigError::new(
                "--bloom-initial-capacity",
                format!("must be between 1 and {MAX_BLOOM_INITIAL_CAPACITY}"),
            ));
        }
        if self.exact == ExactConfig::None && self.local.bloom == BloomMode::Off {
            return Err(ConfigError::new(
                "--local-bloom",
                "'off' needs an exact tier: with --exact none the bloom filter is the only memory",
            ));
        }
        if self.framing.max_record_bytes == 0
            || self.framing.max_record_bytes > MAX_MAX_RECORD_BYTES
        {
            return Err(ConfigError::new(
                "--max-record-bytes",
                format!("must be between 1 and {MAX_MAX_RECORD_BYTES}"),
            ));
        }
        let rejects = self.policies.on_unkeyed == Disposition::Reject
            || self.policies.on_oversized == Disposition::Reject;
        if rejects && self.emit.reject_file.is_none() {
            let flag = if self.policies.on_unkeyed == Disposition::Reject {
                "--on-unkeyed"
            } else {
                "--on-oversized"
            };
            return Err(ConfigError::new(flag, "'reject' needs --reject-file FILE"));
        }
        if self.time.is_some() && self.window.width_ns.is_none() {
            // Without windows the event time decides nothing, but a record whose
            // time cannot be read would still be unkeyed.
            return Err(ConfigError::new("--time-field", "needs --window"));
        }
        if self.emit.tag.is_some() && self.emit.mode != EmitMode::All {
            return Err(ConfigError::new("--tag", "only makes sense with --emit all"));
        }
        if let Some(tag) = &self.emit.tag {
            if tag.is_empty() || tag.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
                return Err(ConfigError::new(
                    "--tag",
                    "must be a non-empty field name without quotes, backslashes or control characters",
                ));
            }
            self.check_tag_is_not_read(tag)?;
        }
        if let ExactConfig::Redis(r) = &self.exact {
            if r.timeout.is_zero() {
                return Err(ConfigError::new("--exact-timeout", "must be more than zero"));
            }
        }
        Ok(())
    }
}

/// `v` for a message: as written when it is of a common size, else in scientific
/// notation (`1e-300`, not three hundred digits).
fn show_f64(v: f64) -> String {
    if v == 0.0 || (1e-6..1e6).contains(&v.abs()) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

/// Parses a duration such as `500ms`, `30s`, `10m`, `1h`, `1d`, `1w` or `1h30m`
/// (humantime's syntax). A bare number other than 0 is refused: `--window 1`
/// could mean seconds or minutes, and a wrong guess is a silently wrong window.
/// `flag` names the flag in the error.
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration, ConfigError> {
    let bad = || {
        ConfigError::new(
            flag,
            format!("invalid duration '{text}' (expected e.g. 500ms, 30s, 10m, 1h, 1d)"),
        )
    };
    let t = text.trim();
    let d = match t.parse::<u64>() {
        // Zero is zero in any unit (`--flush-interval 0`).
        Ok(0) if t.bytes().all(|b| b.is_ascii_digit()) => Duration::ZERO,
        Ok(n) if t.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(ConfigError::new(
                flag,
                format!("'{text}' needs a unit (e.g. {n}s, {n}m, {n}h, {n}d; also ms, w)"),
            ))
        }
        _ => humantime::parse_duration(t).map_err(|_| bad())?,
    };
    // Windows and deadlines are nanoseconds in an i64.
    if d.as_nanos() > i64::MAX as u128 {
        return Err(bad());
    }
    Ok(d)
}

/// A duration as [`parse_duration`] reads it back, in the largest unit that
/// holds it whole (`2s`, `10m`, `1500ms`): how `--help` shows a default.
pub fn show_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let units = [
        ("w", 7 * 86_400_000_000_000),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ];
    match units.iter().find(|&&(_, per)| ns > 0 && ns.is_multiple_of(per)) {
        Some((unit, per)) => format!("{}{unit}", ns / per),
        None => format!("{ns}ns"),
    }
}

/// A byte size as [`parse_size`] reads it back, in the largest binary unit that
/// holds it whole (`1MiB`, `64KiB`, `1000`): how `--help` shows a default.
pub fn show_size(bytes: usize) -> String {
    let units = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match units.iter().find(|&&(_, per)| bytes > 0 && bytes.is_multiple_of(per)) {
        Some((unit, per)) => format!("{}{unit}", bytes / per),
        None => bytes.to_string(),
    }
}

/// Parses a byte size such as `1048576`, `64KiB`, `1MiB`, `1M`, `2G`.
pub fn parse_size(flag: &str, text: &str) -> Result<usize, ConfigError> {
    let bad = || {
        ConfigError::new(flag, format!("invalid size '{text}' (expected e.g. 4096, 64KiB, 1MiB)"))
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let n: usize = num.parse().map_err(|_| bad())?;
    let mult: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Parses `--checkpoint-every`: a record count (`1000000`, `1M`) or a duration (`30s`).
pub fn parse_checkpoint(flag: &str, text: &str) -> Result<Checkpoint, ConfigError> {
    let t = text.trim();
    if t == "0" || t == "never" {
        return Ok(Checkpoint::Never);
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok(Checkpoint::Records(n));
    }
    let lower = t.to_ascii_lowercase();
    for (suffix, mult) in [("k", 1_000u64), ("m", 1_000_000)] {
        if let Some(num) = lower.strip_suffix(suffix) {
            if let Ok(n) = num.parse::<u64>() {
                // `10m` is ambiguous: minutes or millions. Units of time win, as in
                // --window; millions are written `10000000` or `10M` (upper case).
                if suffix == "m" && !t.ends_with('M') {
                    break;
                }
                return Ok(Checkpoint::Records(n * mult));
            }
        }
    }
    match parse_duration(flag, t) {
        Ok(d) => Ok(Checkpoint::Every(d)),
        Err(_) => Err(ConfigError::new(
            flag,
            format!("invalid value '{text}' (expected a record count like 1000000 or 1M, or a duration like 30s)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("--window", "10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("--window", "1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("--window", "1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("--window", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("--window", "7s").unwrap(), Duration::from_secs(7));
        assert_eq!(
            parse_duration("--window", "1").unwrap_err().to_string(),
            "--window: '1' needs a unit (e.g. 1s, 1m, 1h, 1d; also ms, w)"
        );
        let err = parse_duration("--window", "10x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--window: invalid duration '10x' (expected e.g. 500ms, 30s, 10m, 1h, 1d)"
        );
        assert!(parse_duration("--window", "").is_err());
        assert!(parse_duration("--window", "h").is_err());
        assert!(parse_duration("--window", "99999999999999999999d").is_err());
        // Every unit the hand-written parser took, read the same way.
        for (text, ns) in [
            ("5ns", 5),
            ("5us", 5_000),
            ("5µs", 5_000),
            ("5ms", 5_000_000),
            ("5s", 5_000_000_000),
            ("5m", 300_000_000_000),
            ("5min", 300_000_000_000),
            ("5h", 18_000_000_000_000),
            ("5d", 432_000_000_000_000),
            ("2w", 1_209_600_000_000_000),
            (" 30s ", 30_000_000_000),
            ("0", 0),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration("--window", text).unwrap().as_nanos(), ns, "{text}");
        }
        // humantime's compound and fractional forms.
        assert_eq!(parse_duration("--window", "1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("--window", "1.5s").unwrap(), Duration::from_millis(1500));
        // Still refused: negative, unknown units, beyond i64 nanoseconds.
        for text in ["-5m", "+5", "5x", "5 parsecs", "300y", "106752d"] {
            let e = parse_duration("--exact-timeout", text).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("--exact-timeout: invalid duration '{text}' (expected e.g. 500ms, 30s, 10m, 1h, 1d)")
            );
        }
        assert!(parse_duration("--window", "106751d").is_ok());
    }

    #[test]
    fn defaults_are_shown_as_they_are_read() {
        assert_eq!(show_duration(RedisConfig::DEFAULT_TIMEOUT), "2s");
        assert_eq!(show_duration(RedisConfig::DEFAULT_LEASE), "10s");
        assert_eq!(show_size(DEFAULT_MAX_RECORD_BYTES), "1MiB");
        let nanos = [1, 999, 1_000, 1_500_000, 250_000_000, 60_000_000_000, 90_000_000_000];
        for d in nanos.into_iter().chain([86_400_000_000_000, 604_800_000_000_000]) {
            let d = Duration::from_nanos(d);
            assert_eq!(parse_duration("--x", &show_duration(d)).unwrap(), d, "{d:?}");
        }
        assert_eq!(show_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(show_duration(Duration::from_millis(250)), "250ms");
        for b in [0, 1, 1000, 1 << 10, 3 << 20, (1 << 30) + 1, 5 << 30] {
            assert_eq!(parse_size("--x", &show_size(b)).unwrap(), b, "{b}");
        }
        assert_eq!(show_size(64 << 10), "64KiB");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("--max-record-bytes", "1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("--max-record-bytes", "64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("--max-record-bytes", "100").unwrap(), 100);
        assert!(parse_size("--max-record-bytes", "1TB")
            .unwrap_err()
            .to_string()
            .contains("--max-record-bytes"));
    }

    #[test]
    fn checkpoints() {
        assert_eq!(parse_checkpoint("-c", "1000").unwrap(), Checkpoint::Records(1000));
        assert_eq!(parse_checkpoint("-c", "2M").unwrap(), Checkpoint::Records(2_000_000));
        assert_eq!(
            parse_checkpoint("-c", "2m").unwrap(),
            Checkpoint::Every(Duration::from_secs(120))
        );
        assert_eq!(
            parse_checkpoint("-c", "30s").unwrap(),
            Checkpoint::Every(Duration::from_secs(30))
        );
        assert!(parse_checkpoint("-c", "soon").is_err());
    }

    #[test]
    fn validation_names_the_flag() {
        let mut c = Config::default();
        c.window.retain = 0;
        assert_eq!(c.validate().unwrap_err().flag, "--retain");
        let mut c = Config::default();
        c.policies.on_unkeyed = Disposition::Reject;
        assert_eq!(c.validate().unwrap_err().flag, "--on-unkeyed");
        let mut c = Config::default();
        c.local.fpr = 1.5;
        assert_eq!(c.validate().unwrap_err().flag, "--fpr");
        c.local.fpr = 1e-300;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "--fpr: must be at least 1e-9 and below 1, got 1e-300"
        );
        assert!(Config::default().validate().is_ok());
    }
}
