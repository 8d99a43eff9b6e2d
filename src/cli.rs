//! The command line: clap's derive `Args`, whose doc comments are the `--help`
//! text, and its translation into the library's validated [`Config`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use logdedup::config::{
    self, BloomMode, Config, Disposition, EmitConfig, EmitMode, ExactConfig, FramingConfig,
    LocalConfig, OnExactError, OnLate, Policies, RedisConfig, ReportConfig, StateConfig,
    TimeConfig, WindowConfig,
};
use logdedup::key::{parse_delimiter, KeySpec};
use logdedup::{ConfigError, KeyType};

/// Shown after the flags by both `-h` and `--help`.
const EXAMPLES: &str = "\
Examples:
  tail -F app.log | logdedup --key .request_id --window 1h
  logdedup --key 'regex:blk_(-?[0-9]+)' HDFS.log
  logdedup --key field:3 --key field:4 --delimiter '|' app.log";

/// Deduplicate log records in a stream: write each record whose ID was not
/// already seen in its time window.
///
/// Reads records (lines) from the FILEs or stdin, extracts an ID from each
/// (--key), and writes to stdout every record whose ID is new in its window,
/// byte for byte and in input order. Nothing is lost silently: every record is
/// written or counted (a summary goes to stderr at the end).
#[derive(Debug, Parser)]
#[command(
    name = "logdedup",
    version,
    verbatim_doc_comment,
    max_term_width = 100,
    after_help = EXAMPLES
)]
pub struct Args {
    /// Input files, read in order ('-' is stdin). Without any, stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// What identifies a record: 'line' (default, the whole line), a JSON path
    /// ('.request_id', '.http.request.id', '."id.orig_h"' for a name holding a
    /// dot; a record that is not valid JSON has none), 'regex:PATTERN' (first
    /// capture group, or the whole match), or
    /// 'field:N' (N-th field from 1, split on runs of blanks, or on --delimiter).
    /// An empty value (field, match or JSON string) is no key. Repeat for a
    /// composite key (user + order + batch).
    #[arg(short, long = "key", value_name = "SPEC")]
    pub key: Vec<String>,

    /// How a single-part key is typed.
    #[arg(long, value_enum, default_value_t = KeyType::Auto, value_name = "TYPE")]
    pub key_type: KeyType,

    /// Split fields on each occurrence of this byte (like cut -d) instead of
    /// on runs of blanks (like awk). '\t' for a tab.
    #[arg(short, long, value_name = "BYTE")]
    pub delimiter: Option<String>,

    /// Window length with its unit (e.g. 10m, 1h, 1d): a record is a duplicate only if its ID
    /// was seen in a retained window up to its own. Windows are epoch-aligned.
    /// Without it, one window spans the whole stream.
    #[arg(short, long, value_name = "DURATION", allow_hyphen_values = true)]
    pub window: Option<String>,

    /// How many of the newest windows are kept.
    #[arg(long, default_value_t = config::DEFAULT_RETAIN, value_name = "K", allow_hyphen_values = true)]
    pub retain: u32,

    /// Where the event time is (same syntax as --key, e.g. '.ts' or 'field:1');
    /// needs --window. Without it, the arrival time is used. Accepts RFC 3339 and epoch
    /// seconds/ms/µs/ns unless --time-format says otherwise.
    #[arg(long, value_name = "SPEC")]
    pub time_field: Option<String>,

    /// strftime-style format of the time field (e.g. '%y%m%d %H%M%S',
    /// '%b %e %T'; %Y %y %m %b %B %d %e %j %H %I %p %M %S %f %a %z %s %T %F %D %%).
    #[arg(long, value_name = "FORMAT", requires = "time_field")]
    pub time_format: Option<String>,

    /// What to do with a record older than every retained window.
    #[arg(long, value_enum, default_value_t = OnLate::Emit, value_name = "POLICY")]
    pub on_late: OnLate,

    /// What to do with a record that has no key (or no readable time).
    #[arg(long, value_enum, default_value_t = Disposition::Emit, value_name = "POLICY")]
    pub on_unkeyed: Disposition,

    /// What to do with a record longer than --max-record-bytes (it is never
    /// buffered whole, and never deduplicated).
    #[arg(long, value_enum, default_value_t = Disposition::Emit, value_name = "POLICY")]
    pub on_oversized: Disposition,

    /// Longest record that is deduplicated (e.g. 1MiB, 64KiB).
    #[arg(
        long,
        default_value_t = config::show_size(config::DEFAULT_MAX_RECORD_BYTES),
        value_name = "SIZE",
        allow_hyphen_values = true
    )]
    pub max_record_bytes: String,

    /// Target false-positive rate of the bloom filter per lookup.
    #[arg(long, default_value_t = config::DEFAULT_FPR, value_name = "P", allow_hyphen_values = true)]
    pub fpr: f64,

    /// Whether string IDs pass a bloom filter before the exact tier.
    #[arg(long, value_enum, default_value_t = BloomMode::Auto, value_name = "MODE")]
    pub local_bloom: BloomMode,

    /// Distinct IDs the first window's bloom filter is sized for before it grows
    /// (a capacity hint, like RedisBloom's BF.RESERVE capacity; later windows are
    /// sized from the window before). Without it the filter starts at 1048576
    /// keys and grows as for a count nobody knows.
    #[arg(
        long,
        visible_alias = "expected-ids",
        value_name = "N",
        hide_short_help = true,
        allow_hyphen_values = true
    )]
    pub bloom_initial_capacity: Option<u64>,

    /// The exact tier that confirms every bloom "maybe": 'memory' (in process),
    /// 'none' (trust the bloom: a unique record is dropped with probability at
    /// most --fpr), or a Redis URL: redis://[user:pass@]host:port/db,
    /// rediss://… (TLS), redis+unix:///path/to.sock,
    /// redis+cluster://h1:p1,h2:p2,….
    #[arg(long, default_value = "memory", value_name = "TIER")]
    pub exact: String,

    /// Response timeout of the exact tier per batch.
    #[arg(
        long,
        default_value_t = config::show_duration(RedisConfig::DEFAULT_TIMEOUT),
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub exact_timeout: String,

    /// Several instances over the same key space: the exact tier is the
    /// authority for every ID not known locally as seen.
    #[arg(long)]
    pub shared: bool,

    /// With --shared: how long an ID this instance found new is leased to it
    /// until its record is written. Another instance meeting the ID waits for
    /// the write or, if this one died (kill -9), for the lease to lapse, and
    /// then writes the record itself.
    #[arg(
        long,
        default_value_t = config::show_duration(RedisConfig::DEFAULT_LEASE),
        value_name = "DURATION",
        requires = "shared",
        allow_hyphen_values = true
    )]
    pub shared_lease: String,

    /// What to do with a record when the exact tier fails.
    #[arg(long, value_enum, default_value_t = OnExactError::Open, value_name = "POLICY")]
    pub on_exact_error: OnExactError,

    /// Which records to write.
    #[arg(long, value_enum, default_value_t = EmitMode::New, value_name = "MODE")]
    pub emit: EmitMode,

    /// With --emit all: add "FIELD":true (duplicate) or false (any other
    /// record) as the last member of each record that is a valid JSON object.
    /// Other records, and oversized ones, pass unchanged. FIELD may not be a
    /// field the key or the time is read from.
    #[arg(long, value_name = "FIELD")]
    pub tag: Option<String>,

    /// Append rejected records (--on-unkeyed reject, --on-oversized reject) to
    /// FILE, unchanged. Opened only when a policy is 'reject'.
    #[arg(long, value_name = "FILE")]
    pub reject_file: Option<PathBuf>,

    /// The longest a kept record waits in the output buffer, also while input
    /// keeps coming: output goes out in blocks, at least this often and when a
    /// window rotates. 0 writes after every batch read.
    #[arg(
        long,
        default_value_t = config::show_duration(EmitConfig::DEFAULT_FLUSH_INTERVAL),
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub flush_interval: String,

    /// Keep a snapshot here (on each rotation, every --checkpoint-every, on
    /// SIGINT/SIGTERM and at the end) and load it on start, so a restart does
    /// not re-emit what was already emitted.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Also snapshot every N records (1000000, 1M) or every DURATION (30s, the
    /// default); 'never' snapshots only on rotation and at the end.
    #[arg(long, value_name = "N|DURATION", requires = "state_dir", allow_hyphen_values = true)]
    pub checkpoint_every: Option<String>,

    /// Write the run's counters as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,

    /// While the run goes on, rewrite --stats-json (atomically: a reader sees
    /// the old file or the new one) every DURATION, and print the summary on
    /// stderr as often when stderr is not a terminal.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub stats_every: Option<String>,

    /// Serve the counters to Prometheus at http://ADDR/metrics while the run
    /// goes on (e.g. 127.0.0.1:9187; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,

    /// No summary (nor progress line) on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// No progress line (it is shown only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,

    /// Print a man page or a shell completion script to stdout and exit.
    #[arg(long, value_enum, value_name = "WHAT", exclusive = true)]
    pub generate: Option<GenerateArg>,
}

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateArg {
    /// The man page (roff).
    Man,
    /// A bash completion script.
    CompleteBash,
    /// A zsh completion script.
    CompleteZsh,
    /// A fish completion script.
    CompleteFish,
}

/// The man page or completion script `--generate` asks for, made from the same
/// clap definition as `--help`.
pub fn generate(what: GenerateArg) -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut cmd = Args::command();
    let mut out = Vec::new();
    let shell = match what {
        GenerateArg::Man => {
            clap_mangen::Man::new(cmd).render(&mut out)?;
            return Ok(out);
        }
        GenerateArg::CompleteBash => Shell::Bash,
        GenerateArg::CompleteZsh => Shell::Zsh,
        GenerateArg::CompleteFish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "logdedup", &mut out);
    Ok(out)
}

/// Parses `--exact`.
fn exact(text: &str, timeout: &str, shared: bool, lease: &str) -> Result<ExactConfig, ConfigError> {
    let timeout = config::parse_duration("--exact-timeout", timeout)?;
    let lease = config::parse_duration("--shared-lease", lease)?;
    if lease < Duration::from_millis(1) {
        return Err(ConfigError::new("--shared-lease", "must be at least 1ms"));
    }
    match text {
        "memory" => {
            if shared {
                return Err(ConfigError::new("--shared", "needs a shared exact tier (--exact redis://…)"));
            }
            Ok(ExactConfig::Memory)
        }
        "none" => {
            if shared {
                return Err(ConfigError::new("--shared", "needs a shared exact tier (--exact redis://…)"));
            }
            Ok(ExactConfig::None)
        }
        url if ["redis://", "rediss://", "redis+unix://", "unix://", "redis+cluster://", "rediss+cluster://"]
            .iter()
            .any(|p| url.starts_with(p)) =>
        {
            Ok(ExactConfig::Redis(RedisConfig {
                url: url.to_string(),
                timeout,
                shared,
                lease,
                preload_max: RedisConfig::DEFAULT_PRELOAD_MAX,
            }))
        }
        other => Err(ConfigError::new(
            "--exact",
            format!("unknown tier '{}' (expected memory, none, redis://…, rediss://…, redis+unix://…, redis+cluster://…)", logdedup::exact::redis::redact(other)),
        )),
    }
}

impl Args {
    /// `--stats-every`, which must be longer than zero.
    fn stats_every(&self) -> Result<Option<Duration>, ConfigError> {
        let Some(text) = &self.stats_every else { return Ok(None) };
        let d = config::parse_duration("--stats-every", text)?;
        if d.is_zero() {
            return Err(ConfigError::new("--stats-every", "must be longer than zero"));
        }
        Ok(Some(d))
    }

    /// The validated library configuration.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let delimiter = self.delimiter.as_deref().map(parse_delimiter).transpose()?;
        let checkpoint_every = match &self.checkpoint_every {
            Some(c) => config::parse_checkpoint("--checkpoint-every", c)?,
            None => StateConfig::default().checkpoint_every,
        };
        let config = Config {
            framing: FramingConfig {
                max_record_bytes: config::parse_size("--max-record-bytes", &self.max_record_bytes)?,
                ..FramingConfig::default()
            },
            key: KeySpec::parse(&self.key, delimiter, self.key_type)?,
            time: self.time(delimiter)?,
            window: WindowConfig { width_ns: self.window_ns()?, retain: self.retain },
            local: LocalConfig {
                fpr: self.fpr,
                bloom: self.local_bloom,
                bloom_initial_capacity: self.bloom_initial_capacity,
            },
            exact: exact(&self.exact, &self.exact_timeout, self.shared, &self.shared_lease)?,
            policies: Policies {
                on_unkeyed: self.on_unkeyed,
                on_oversized: self.on_oversized,
                on_late: self.on_late,
                on_exact_error: self.on_exact_error,
            },
            emit: EmitConfig {
                mode: self.emit,
                tag: self.tag.clone(),
                reject_file: self.reject_file.clone(),
                flush_interval: config::parse_duration("--flush-interval", &self.flush_interval)?,
            },
            state: StateConfig { dir: self.state_dir.clone(), checkpoint_every },
            report: ReportConfig {
                stats_json: self.stats_json.clone(),
                summary: !self.quiet,
                progress: !self.no_progress && !self.quiet,
                stats_every: self.stats_every()?,
                metrics: self.metrics.clone(),
            },
        };
        config.validate()?;
        Ok(config)
    }

    /// `--time-field` and `--time-format`.
    fn time(&self, delimiter: Option<u8>) -> Result<Option<TimeConfig>, ConfigError> {
        let Some(f) = &self.time_field else { return Ok(None) };
        let field = KeySpec::parse(std::slice::from_ref(f), delimiter, KeyType::Str)
            .map_err(|e| ConfigError::new("--time-field", e.message))?;
        if let Some(fmt) = &self.time_format {
            logdedup::time::TimeFormat::strftime(fmt)?;
        }
        Ok(Some(TimeConfig { field, format: self.time_format.clone() }))
    }

    /// `--window` in nanoseconds.
    fn window_ns(&self) -> Result<Option<i64>, ConfigError> {
        let Some(w) = &self.window else { return Ok(None) };
        let d = config::parse_duration("--window", w)?;
        if d.is_zero() {
            return Err(ConfigError::new("--window", "must be longer than zero"));
        }
        Ok(Some(d.as_nanos() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_debug_assert() {
        Args::command().debug_assert();
    }

    fn cfg(args: &[&str]) -> Result<Config, ConfigError> {
        let mut v = vec!["logdedup"];
        v.extend_from_slice(args);
        Args::try_parse_from(v).unwrap().to_config()
    }

    #[test]
    fn defaults_match_the_library() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.framing, FramingConfig::default());
        assert_eq!(c.window, WindowConfig::default());
        assert_eq!(c.local, LocalConfig::default());
        assert_eq!(c.exact, ExactConfig::Memory);
        assert_eq!(c.policies, Policies::default());
        assert!(c.key.is_line());
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(cfg(&["--window", "10x"]).unwrap_err().flag, "--window");
        assert_eq!(cfg(&["--key", "bogus"]).unwrap_err().flag, "--key");
        assert_eq!(cfg(&["--exact", "mysql://x"]).unwrap_err().flag, "--exact");
        assert_eq!(cfg(&["--shared"]).unwrap_err().flag, "--shared");
        assert_eq!(cfg(&["--max-record-bytes", "lots"]).unwrap_err().flag, "--max-record-bytes");
        assert_eq!(cfg(&["--time-field", "nope"]).unwrap_err().flag, "--time-field");
        assert_eq!(cfg(&["--delimiter", "ab"]).unwrap_err().flag, "--delimiter");
        assert_eq!(cfg(&["--on-unkeyed", "reject"]).unwrap_err().flag, "--on-unkeyed");
        assert_eq!(cfg(&["--tag", "dup"]).unwrap_err().flag, "--tag");
        assert_eq!(cfg(&["--window", "0s"]).unwrap_err().flag, "--window");
        assert_eq!(cfg(&["--stats-every", "0s"]).unwrap_err().flag, "--stats-every");
        assert_eq!(cfg(&["--stats-every", "often"]).unwrap_err().flag, "--stats-every");
        assert_eq!(cfg(&["--window", "-5m"]).unwrap_err().flag, "--window");
        assert_eq!(cfg(&["--fpr", "-1"]).unwrap_err().flag, "--fpr");
        assert_eq!(cfg(&["--fpr", "1e-30"]).unwrap_err().flag, "--fpr");
        assert_eq!(cfg(&["--max-record-bytes", "-1"]).unwrap_err().flag, "--max-record-bytes");
        assert_eq!(
            cfg(&["--bloom-initial-capacity", "18446744073709551615"]).unwrap_err().flag,
            "--bloom-initial-capacity"
        );
    }
}
