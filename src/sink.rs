//! The sink: writes kept records to stdout and rejected ones to `--reject-file`.
//!
//! One write per record (a line-buffered stdout) costs ~1.3 µs each into a pipe
//! here, more than everything else the pipeline does per record, so records are
//! written in blocks. A batch's kept records are runs of its read buffer (a record
//! not written breaks a run); a large batch is written straight from that buffer,
//! one slice per run in `writev` calls, and small ones are copied into a 256 KiB
//! block buffer. Output is the input records byte for byte, in input order; with
//! `--emit all --tag FIELD`, a JSON object record gets `"FIELD":true|false` as its
//! last member (always copied).

use std::fs::File;
use std::io::{self, BufWriter, IoSlice, Write};
use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Result};
use crate::key::json;

/// Bytes buffered before a write.
const BLOCK: usize = 256 << 10;
/// Runs of at least this many bytes in all are written from the batch's buffer.
const DIRECT: usize = 64 << 10;
/// Slices per `writev` (the Linux `IOV_MAX`).
const MAX_SLICES: usize = 1024;

/// Where records go.
pub struct Sink {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    reject: Option<BufWriter<File>>,
    tag: Option<Vec<u8>>,
    /// Something was written since the last [`Sink::flush`] (into the buffers
    /// or past them).
    dirty: bool,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("buffered", &self.buf.len()).finish()
    }
}

impl Sink {
    /// A sink writing to `out`, rejects to `reject_file`, and tagging with `tag`
    /// (the field name) when given. The reject file is appended to, never
    /// truncated: a restart with `--state-dir` continues the run before it, whose
    /// rejects are nowhere else.
    pub fn new(
        out: Box<dyn Write + Send>,
        reject_file: Option<&Path>,
        tag: Option<&str>,
    ) -> Result<Sink> {
        let reject = match reject_file {
            Some(p) => Some(BufWriter::with_capacity(
                BLOCK,
                File::options().create(true).append(true).open(p).map_err(|e| {
                    Error::io(format!("--reject-file: cannot open {}", p.display()), e)
                })?,
            )),
            None => None,
        };
        Ok(Sink {
            out,
            buf: Vec::with_capacity(BLOCK + (64 << 10)),
            reject,
            tag: tag.map(|t| format!("\"{t}\":").into_bytes()),
            dirty: false,
        })
    }

    /// Writes one record as read (terminator included).
    #[inline]
    pub fn write(&mut self, raw: &[u8], tag: Option<bool>) -> Result<()> {
        self.dirty = true;
        match (tag, &self.tag) {
            (Some(dup), Some(field)) => tag_json(&mut self.buf, raw, field, dup),
            _ => self.buf.extend_from_slice(raw),
        }
        if self.buf.len() >= BLOCK {
            self.drain()?;
        }
        Ok(())
    }

    /// Writes the records at `runs` of a batch's buffer `data`, in order: straight
    /// from `data` when they add up to [`DIRECT`] bytes or more, else by copying.
    pub fn write_runs(&mut self, data: &[u8], runs: &[Range<usize>]) -> Result<()> {
        let total: usize = runs.iter().map(|r| r.len()).sum();
        if total == 0 {
            return Ok(());
        }
        self.dirty = true;
        if total < DIRECT {
            for r in runs {
                self.write(&data[r.clone()], None)?;
            }
            return Ok(());
        }
        self.drain()?;
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(runs.len().min(MAX_SLICES));
        for group in runs.chunks(MAX_SLICES) {
            slices.clear();
            slices.extend(group.iter().map(|r| IoSlice::new(&data[r.clone()])));
            write_all_slices(&mut *self.out, &mut slices)
                .map_err(|e| Error::io("writing output", e))?;
        }
        Ok(())
    }

    /// Writes a part of an oversized record straight through.
    pub fn write_part(&mut self, part: &[u8]) -> Result<()> {
        self.dirty = true;
        self.drain()?;
        self.out.write_all(part).map_err(|e| Error::io("writing output", e))
    }

    /// Writes a record (or a part of one) to the reject file.
    pub fn reject(&mut self, raw: &[u8]) -> Result<()> {
        if let Some(r) = &mut self.reject {
            self.dirty = true;
            r.write_all(raw).map_err(|e| Error::io("writing --reject-file", e))?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf).map_err(|e| Error::io("writing output", e))?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Whether anything was written since the last [`Sink::flush`]: records that
    /// may still wait in a buffer.
    pub fn unflushed(&self) -> bool {
        self.dirty
    }

    /// Writes out everything buffered, to stdout and to the reject file.
    pub fn flush(&mut self) -> Result<()> {
        self.drain()?;
        self.out.flush().map_err(|e| Error::io("writing output", e))?;
        if let Some(r) = &mut self.reject {
            r.flush().map_err(|e| Error::io("writing --reject-file", e))?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// Adds the bytes `r` of a batch's buffer to the runs to write, extending the last
/// run when `r` follows it directly.
pub fn push_run(runs: &mut Vec<Range<usize>>, r: Range<usize>) {
    match runs.last_mut() {
        Some(last) if last.end == r.start => last.end = r.end,
        _ => runs.push(r),
    }
}

/// `write_all` for a list of slices (`Write::write_all_vectored` is unstable).
fn write_all_slices(out: &mut dyn Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends `raw` with `"FIELD":dup` added as the last member if `raw` is a valid
/// JSON object (white space around it allowed); other records, also those that
/// only look like one (`{not json}`), are appended unchanged. The last member,
/// because readers that meet a name twice (jq, serde_json, Python, JavaScript, and
/// this program's own key scanner) take the last one: a record that already has
/// FIELD reads as tagged.
fn tag_json(out: &mut Vec<u8>, raw: &[u8], field: &[u8], dup: bool) {
    if !json::is_object(raw) {
        out.extend_from_slice(raw);
        return;
    }
    let close = raw.iter().rposition(|&b| b == b'}').expect("an object ends with '}'");
    let body = &raw[..close];
    out.extend_from_slice(body);
    if body.iter().rfind(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        out.push(b',');
    }
    out.extend_from_slice(field);
    out.extend_from_slice(if dup { b"true" } else { b"false" });
    out.extend_from_slice(&raw[close..]);
}

/// A writer on the process's stdout that bypasses Rust's line buffering.
pub fn stdout_writer() -> io::Result<Box<dyn Write + Send>> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Box::new(File::from(fd)))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::new(io::stdout()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(raw: &str, dup: bool) -> String {
        let mut out = Vec::new();
        tag_json(&mut out, raw.as_bytes(), b"\"dup\":", dup);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tags_json_objects_only() {
        assert_eq!(tagged("{\"a\":1}\n", true), "{\"a\":1,\"dup\":true}\n");
        assert_eq!(tagged("  { \"a\":1 }\r\n", false), "  { \"a\":1 ,\"dup\":false}\r\n");
        assert_eq!(tagged("{\"a\":{}}", true), "{\"a\":{},\"dup\":true}");
        assert_eq!(tagged("{}\n", true), "{\"dup\":true}\n");
        assert_eq!(tagged("{ }", true), "{ \"dup\":true}");
        assert_eq!(tagged("{\"a\":1", true), "{\"a\":1", "no closing brace: not an object");
        assert_eq!(tagged("}{", true), "}{");
        assert_eq!(tagged("{", true), "{");
        assert_eq!(tagged("plain\n", true), "plain\n");
        assert_eq!(tagged("", true), "");
        // Only valid JSON: a record that merely looks like an object is left alone.
        assert_eq!(tagged("{not json}\n", true), "{not json}\n");
        assert_eq!(tagged("{\"a\":1,}\n", true), "{\"a\":1,}\n");
        assert_eq!(tagged("{\"a\":tru}", true), "{\"a\":tru}");
        assert_eq!(tagged("{\"a\":1} x", true), "{\"a\":1} x");
        assert_eq!(tagged("{\"a\":\"}\"}\r", false), "{\"a\":\"}\",\"dup\":false}\r");
    }

    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_in_order() {
        let out = Shared::default();
        let mut s = Sink::new(Box::new(out.clone()), None, None).unwrap();
        assert!(!s.unflushed());
        s.write_runs(b"none", &[]).unwrap();
        assert!(!s.unflushed(), "nothing written");
        s.write(b"a\n", None).unwrap();
        assert!(s.unflushed());
        s.write_part(b"big").unwrap();
        s.write(b"b", None).unwrap();
        s.flush().unwrap();
        assert!(!s.unflushed());
        assert_eq!(out.0.lock().unwrap().as_slice(), b"a\nbigb");
    }

    /// Takes at most 7 bytes per call, vectored or not: every partial write of a
    /// slice list is exercised.
    #[derive(Clone, Default)]
    struct Stingy(std::sync::Arc<std::sync::Mutex<(Vec<u8>, usize)>>);
    impl Write for Stingy {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(7);
            self.0.lock().unwrap().0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            g.1 += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(7 - n);
                g.0.extend_from_slice(&b[..take]);
                n += take;
                if n == 7 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn runs_are_written_in_order_small_ones_copied() {
        // A batch buffer of numbered lines; every third line is left out.
        let data: Vec<u8> = (0..30_000).flat_map(|i| format!("{i:05}\n").into_bytes()).collect();
        let runs: Vec<Range<usize>> = (0..30_000)
            .filter(|i| i % 3 != 1)
            .map(|i| i * 6..i * 6 + 6)
            .fold(Vec::new(), |mut v, r| {
                push_run(&mut v, r);
                v
            });
        let want: Vec<u8> = runs.iter().flat_map(|r| data[r.clone()].to_vec()).collect();
        assert!(want.len() >= DIRECT && runs.len() > MAX_SLICES);
        let out = Stingy::default();
        let mut s = Sink::new(Box::new(out.clone()), None, None).unwrap();
        s.write(b"first\n", None).unwrap();
        s.write_runs(&data, &runs[..3]).unwrap(); // small: copied
        assert_eq!(out.0.lock().unwrap().1, 0, "a small batch waits in the buffer");
        s.write_runs(&data, &runs[3..]).unwrap(); // large: straight from `data`
        assert!(out.0.lock().unwrap().1 > 0, "a large batch is written with writev");
        s.write(b"last\n", None).unwrap();
        s.flush().unwrap();
        let got = out.0.lock().unwrap().0.clone();
        assert_eq!(got, [&b"first\n"[..], &want, b"last\n"].concat());
    }
}
