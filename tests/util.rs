//! `TestCommand`: runs the real binary with stdin bytes and captures stdout,
//! stderr, the exit code and the `--stats-json` counters.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_logdedup"))
}

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub code: i32,
    /// The `--stats-json` counters (when the run wrote them).
    pub stats: Option<serde_json::Value>,
    /// Why `stats` is `None` although the run was given `--stats-json`
    /// ([`TestCommand::new`]): the file was missing, empty or not JSON.
    pub stats_missing: Option<String>,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn lines(&self) -> Vec<String> {
        self.stdout_str().lines().map(str::to_string).collect()
    }

    /// A counter from `--stats-json`.
    pub fn stat(&self, name: &str) -> u64 {
        self.stats
            .as_ref()
            .and_then(|s| s[name].as_u64())
            .unwrap_or_else(|| panic!("no counter {name} in {:?}", self.stats))
    }

    /// Asserts exit 0, and that conservation holds (also for other emit modes).
    /// A run given `--stats-json` ([`TestCommand::new`]) must have written it:
    /// without the counters there is no conservation to check.
    pub fn assert_ok(&self) -> &Output {
        assert_eq!(self.code, 0, "exit code; stderr:\n{}", self.stderr);
        if let Some(why) = &self.stats_missing {
            panic!("--stats-json was not written: {why}; stderr:\n{}", self.stderr);
        }
        if let Some(s) = &self.stats {
            let g = |k: &str| s[k].as_u64().unwrap();
            assert_eq!(
                g("records_in"),
                g("emitted") + g("suppressed") + g("dropped") + g("rejected"),
                "conservation: {s}"
            );
        }
        self
    }
}

/// A run of the binary being set up.
pub struct TestCommand {
    cmd: Command,
    stdin: Vec<u8>,
    stats_file: Option<tempfile::NamedTempFile>,
}

impl TestCommand {
    /// `logdedup ARGS` with `--stats-json` into a temp file and no progress line.
    pub fn new(args: &[&str]) -> TestCommand {
        let stats = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(args).arg("--stats-json").arg(stats.path()).arg("--no-progress");
        TestCommand { cmd, stdin: Vec::new(), stats_file: Some(stats) }
    }

    /// `logdedup ARGS` exactly as given (no extra flags).
    pub fn raw(args: &[&str]) -> TestCommand {
        let mut cmd = Command::new(bin());
        cmd.args(args);
        TestCommand { cmd, stdin: Vec::new(), stats_file: None }
    }

    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> TestCommand {
        self.stdin = bytes.as_ref().to_vec();
        self
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> TestCommand {
        self.cmd.arg(a);
        self
    }

    pub fn current_dir(mut self, d: &Path) -> TestCommand {
        self.cmd.current_dir(d);
        self
    }

    pub fn run(mut self) -> Output {
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn logdedup");
        let mut stdin = child.stdin.take().unwrap();
        let input = std::mem::take(&mut self.stdin);
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        let read = self.stats_file.as_ref().map(|f| read_stats(f.path()));
        let (stats, stats_missing) = match read {
            Some(Ok(v)) => (Some(v), None),
            Some(Err(why)) => (None, Some(why)),
            None => (None, None),
        };
        Output {
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
            stats,
            stats_missing,
        }
    }
}

/// The counters a run wrote to `--stats-json` at `path`, or why there are none.
pub fn read_stats(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if text.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON ({e}): {text}", path.display()))
}

/// Whether `text` names `flag` as a whole flag: `--shared` is not named by
/// `--shared-lease`, nor `--key` by `--key-type`. A flag name is letters, digits,
/// `-` and `_`; the characters on either side of the match must not continue it.
pub fn names_flag(text: &str, flag: &str) -> bool {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(flag).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + flag.len()..].chars().next();
        !before.is_some_and(part_of_name) && !after.is_some_and(part_of_name)
    })
}

/// The repository root (for `datasets/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `Write` whose bytes the test reads back after the pipeline is done.
#[derive(Clone, Default)]
pub struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

/// A reader that returns at most `max` bytes per read (short reads, like a pipe).
pub struct ShortReads {
    data: Vec<u8>,
    pos: usize,
    max: usize,
}

impl ShortReads {
    pub fn new(data: Vec<u8>, max: usize) -> ShortReads {
        ShortReads { data, pos: 0, max: max.max(1) }
    }
}

impl std::io::Read for ShortReads {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.data.len() - self.pos).min(self.max).min(out.len());
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Runs the library's pipeline in process over `input`, `max_read` bytes per read
/// at most; returns stdout and the counters (conservation checked).
pub fn run_pipeline(
    config: logdedup::Config,
    input: Vec<u8>,
    max_read: usize,
) -> logdedup::Result<(Vec<u8>, logdedup::Stats)> {
    let out = SharedBuf::default();
    let stats = logdedup::Pipeline::new(config)
        .run(ShortReads::new(input, max_read), Box::new(out.clone()))?;
    stats.check_conservation().unwrap();
    assert_eq!(
        stats.records_in,
        stats.emitted + stats.suppressed + stats.dropped + stats.rejected,
        "conservation"
    );
    Ok((out.bytes(), stats))
}

/// A `KeySpec` from `--key` values.
pub fn key_spec(keys: &[&str], delimiter: Option<u8>, kt: logdedup::KeyType) -> logdedup::KeySpec {
    let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    logdedup::KeySpec::parse(&keys, delimiter, kt).unwrap()
}

/// Splits bytes into records as DESIGN says: each ends at `\n` (kept); a last
/// record without one is a record too.
pub fn split_records(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            Some(p) => {
                out.push(&rest[..=p]);
                rest = &rest[p + 1..];
            }
            None => {
                out.push(rest);
                rest = &[];
            }
        }
    }
    out
}

/// A record's content: without its `\n`, and without a `\r` right before that `\n`.
pub fn content(raw: &[u8]) -> &[u8] {
    match raw.strip_suffix(b"\n") {
        Some(r) => r.strip_suffix(b"\r").unwrap_or(r),
        None => raw,
    }
}

/// A seeded xorshift64 stream (Marsaglia's 13/7/17): deterministic test data from
/// a seed, with no dependency. Not for anything that needs good randomness.
pub struct XorShift(u64);

impl XorShift {
    /// The stream from `seed` (an odd state, so never the stuck state 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
