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
    pub fn assert_ok(&self) -> &Output {
        assert_eq!(self.code, 0, "exit code; stderr:\n{}", self.stderr);
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
        let stats = self.stats_file.as_ref().and_then(|f| {
            let text = std::fs::read_to_string(f.path()).ok()?;
            serde_json::from_str(&text).ok()
        });
        Output {
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
            stats,
        }
    }
}

/// The repository root (for `datasets/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
