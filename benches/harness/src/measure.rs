//! Measuring runs: wall time, peak RSS and page faults of one pipeline, and the
//! interleaved A B A B schedule over a list of tools.
//!
//! Each run is `/usr/bin/time -f … sh -c COMMAND` with the harness reading the
//! tool's stdout through a pipe and counting its lines, as `wc -l` would: the tool
//! pays for writing into a pipe, not into `/dev/null` (which hides per-line write
//! costs). GNU time reports the largest `ru_maxrss` among the waited-for processes
//! of the pipeline (so the tool's, not `cat`'s) and the summed faults; the wall
//! time is the harness's own clock around spawn and exit.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::redis_server::{RedisServer, USED_MEMORY, USED_MEMORY_GROWTH};
use crate::report::{Expect, Sample, Status, ToolResult};
use crate::tools::{Output, Tool};

/// GNU time's output format: exit code, max RSS (KiB), minor and major faults,
/// user and system seconds.
const TIME_FORMAT: &str = "%x %M %R %F %U %S";

/// Where runs happen and what they see.
pub struct Runner {
    /// Scratch folder for time and stats files.
    pub scratch: PathBuf,
    /// The logdedup binary.
    pub logdedup: PathBuf,
    /// This harness's binary (for `setnx`).
    pub bench: PathBuf,
    /// A Redis server, when one could be started.
    pub redis: Option<RedisServer>,
    /// Print one line per run to stderr.
    pub verbose: bool,
}

/// The truth figures a tool is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    /// Records.
    pub records: u64,
    /// Distinct lines.
    pub unique_lines: u64,
    /// Distinct IDs.
    pub unique_ids: u64,
    /// Windowed emitted count (for the tool's window).
    pub windowed: u64,
}

impl Expected {
    /// The number `expect` refers to.
    pub fn get(&self, expect: Expect) -> u64 {
        match expect {
            Expect::Records => self.records,
            Expect::UniqueLines => self.unique_lines,
            Expect::UniqueIds | Expect::AtMostUniqueIds => self.unique_ids,
            Expect::Windowed => self.windowed,
        }
    }
}

/// Counts newlines in a chunk (vectorised by the compiler; several GB/s).
fn count_newlines(buf: &[u8]) -> u64 {
    buf.iter().filter(|&&b| b == b'\n').count() as u64
}

impl Runner {
    /// Runs `tool` once on `data`.
    pub fn run_once(&self, tool: &Tool, data: &Path, run: usize) -> Result<Sample> {
        let files = RunFiles::new(&self.scratch, tool, run);
        let _ = fs::remove_file(&files.stats);
        // What the flushed server holds before the run (its scripts, the Lua VM,
        // the client's buffers): the run's growth is measured from here.
        let mut redis_before = 0.0;
        if tool.redis {
            let r = self.redis.as_ref().ok_or(Error::NoRedis)?;
            r.flush()?;
            redis_before = r.memory_figures()?.get(USED_MEMORY).copied().unwrap_or(0.0);
        }
        let mut cmd = self.command(tool, data, &files)?;
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(Error::program("/usr/bin/time"))?;
        let (lines, head) = drain(child.stdout.take().expect("piped"), tool.output)?;
        let status = child.wait().map_err(Error::program("/usr/bin/time"))?;
        let mut sample = time_sample(&files.time, start.elapsed().as_secs_f64(), status.code());
        sample.output = match tool.output {
            Output::Count => String::from_utf8_lossy(&head).trim().parse().unwrap_or(0),
            _ => lines,
        };
        if sample.exit_code != 0 {
            return Err(Error::Exit { code: sample.exit_code, stderr: stderr_tail(&files.stderr) });
        }
        if tool.stats {
            sample.extras.extend(stats_figures(&files.stats));
        }
        if tool.redis {
            if let Some(r) = &self.redis {
                let after = r.memory_figures()?;
                let used = after.get(USED_MEMORY).copied().unwrap_or(0.0);
                sample.extras.insert(USED_MEMORY_GROWTH.into(), used - redis_before);
                sample.extras.extend(after);
            }
        }
        Ok(sample)
    }

    /// `/usr/bin/time … sh -c COMMAND`, with the tool's environment and files.
    fn command(&self, tool: &Tool, data: &Path, files: &RunFiles) -> Result<Command> {
        let mut cmd = Command::new("/usr/bin/time");
        cmd.arg("-f")
            .arg(TIME_FORMAT)
            .arg("-o")
            .arg(&files.time)
            .arg("sh")
            .arg("-c")
            .arg(&tool.command)
            .env("DATA", data)
            .env("LOGDEDUP", &self.logdedup)
            .env("BENCH", &self.bench)
            .env("STATS", &files.stats)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&files.stderr).map_err(Error::file(&files.stderr))?);
        if let Some(r) = &self.redis {
            cmd.env("REDIS_URL", r.url());
        }
        Ok(cmd)
    }

    /// Runs every tool `runs` times, interleaved (A B C A B C …) so drift in the
    /// machine's state spreads over all tools alike. Skips absent programs and stops
    /// running a tool after its first failure.
    pub fn interleaved(
        &self,
        tools: &[(Tool, Expected)],
        data: &Path,
        runs: usize,
    ) -> Vec<ToolResult> {
        let mut results: Vec<ToolResult> = tools
            .iter()
            .map(|(t, exp)| ToolResult {
                slug: t.slug.clone(),
                label: t.label.clone(),
                family: t.family.name().into(),
                command: t.command.clone(),
                expect: t.expect,
                expected: exp.get(t.expect),
                output: None,
                status: Status::Ok,
                note: String::new(),
                samples: Vec::new(),
                summary: None,
            })
            .collect();
        for (r, (t, _)) in results.iter_mut().zip(tools) {
            if let Some(p) = t.missing() {
                r.status = Status::Skipped;
                r.note = format!("{p} not found");
            }
        }
        for run in 0..runs {
            for (r, (t, _)) in results.iter_mut().zip(tools) {
                if matches!(r.status, Status::Skipped | Status::Failed) {
                    continue;
                }
                match self.run_once(t, data, run) {
                    Ok(s) => {
                        if self.verbose {
                            eprintln!(
                                "  run {}/{runs} {:<28} {:>8.3} s  {:>7} MiB  out {}",
                                run + 1,
                                t.slug,
                                s.wall_s,
                                s.max_rss_bytes >> 20,
                                s.output
                            );
                        }
                        r.output = Some(s.output);
                        let ok = match t.expect {
                            Expect::AtMostUniqueIds => s.output <= r.expected,
                            _ => s.output == r.expected,
                        };
                        if !ok {
                            r.status = Status::Mismatch;
                            r.note =
                                format!("emitted {} records, truth says {}", s.output, r.expected);
                        }
                        r.samples.push(s);
                    }
                    Err(e) => {
                        if self.verbose {
                            eprintln!("  run {}/{runs} {:<28} FAILED: {e}", run + 1, t.slug);
                        }
                        r.status = Status::Failed;
                        r.note = e.to_string();
                    }
                }
            }
        }
        results
    }
}

/// The scratch files of one run: GNU time's figures, logdedup's counters, stderr.
struct RunFiles {
    time: PathBuf,
    stats: PathBuf,
    stderr: PathBuf,
}

impl RunFiles {
    fn new(scratch: &Path, tool: &Tool, run: usize) -> RunFiles {
        let file = |ext: &str| scratch.join(format!("{}-{run}.{ext}", tool.slug));
        RunFiles { time: file("time"), stats: file("stats.json"), stderr: file("stderr") }
    }
}

/// Reads the tool's stdout to the end: its line count, and its first bytes when
/// the tool prints a count rather than records.
fn drain(mut out: impl Read, output: Output) -> Result<(u64, Vec<u8>)> {
    let mut buf = vec![0u8; 1 << 18];
    let (mut lines, mut head) = (0u64, Vec::new());
    loop {
        let n =
            out.read(&mut buf).map_err(|source| Error::Stream { what: "tool output", source })?;
        if n == 0 {
            return Ok((lines, head));
        }
        lines += count_newlines(&buf[..n]);
        if output == Output::Count && head.len() < 64 {
            head.extend_from_slice(&buf[..n.min(64)]);
        }
    }
}

/// The sample GNU time wrote to `time_file` (output not yet filled in).
fn time_sample(time_file: &Path, wall_s: f64, status: Option<i32>) -> Sample {
    let time = fs::read_to_string(time_file).unwrap_or_default();
    // GNU time prefixes "Command exited with non-zero status N" on failure;
    // the measurements are always on the last line.
    let f: Vec<&str> = time.lines().last().unwrap_or("").split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    Sample {
        wall_s,
        exit_code: f.first().and_then(|s| s.parse().ok()).unwrap_or(status.unwrap_or(-1)),
        max_rss_bytes: num(1) as u64 * 1024,
        minor_faults: num(2) as u64,
        user_s: num(4),
        sys_s: num(5),
        output: 0,
        extras: BTreeMap::new(),
    }
}

/// The last lines of a failed run's stderr, joined, at most 400 characters.
fn stderr_tail(path: &Path) -> String {
    let err = fs::read_to_string(path).unwrap_or_default();
    let mut tail: Vec<&str> = err.lines().rev().take(5).collect();
    tail.reverse();
    tail.join(" | ").chars().take(400).collect()
}

/// logdedup's numeric counters from its `--stats-json` file (none if missing).
fn stats_figures(path: &Path) -> BTreeMap<String, f64> {
    let map = match fs::read_to_string(path).map(|t| serde_json::from_str(&t)) {
        Ok(Ok(serde_json::Value::Object(map))) => map,
        _ => return BTreeMap::new(),
    };
    map.into_iter().filter_map(|(k, v)| Some((k, v.as_f64()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_count() {
        assert_eq!(count_newlines(b"a\nb\n\nc"), 3);
        assert_eq!(count_newlines(b""), 0);
    }
}
