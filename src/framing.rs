//! Framing: turns a byte stream into records, without a copy per record.
//!
//! Reads land in a `BytesMut`; the bytes up to the last newline are frozen into one
//! `Bytes` and handed on with a [`Span`] per record, so a record is a range of a
//! shared buffer. Records end at `\n`; a `\r` before it belongs to the terminator
//! (not to the key); a last record without `\n` is still a record and keeps its
//! missing newline. A record longer than `--max-record-bytes` is never buffered
//! whole: it is handed on in parts ([`Frame::Oversized`]), so memory stays bounded
//! on a 100 MB line, and the pipeline passes, drops or rejects it by policy.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

/// One record inside a [`Records`] batch: byte offsets into its `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte of the record.
    pub start: u32,
    /// End of the content: before `\r\n` or `\n`, or the end of a last record without one.
    pub content_end: u32,
    /// End of the record including its terminator.
    pub end: u32,
}

/// A run of whole records sharing one buffer.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// The bytes of every record in the batch, terminators included.
    pub data: Bytes,
    /// One span per record, in input order.
    pub spans: Vec<Span>,
}

impl Records {
    /// A record's content (no terminator): what keys are extracted from.
    #[inline]
    pub fn content(&self, s: &Span) -> &[u8] {
        &self.data[s.start as usize..s.content_end as usize]
    }

    /// A record's bytes as read (terminator included): what is written out.
    #[inline]
    pub fn raw(&self, s: &Span) -> &[u8] {
        &self.data[s.start as usize..s.end as usize]
    }
}

/// What the framer hands on.
#[derive(Debug, Clone)]
pub enum Frame {
    /// Whole records of at most `--max-record-bytes` each.
    Records(Records),
    /// A part of a record longer than `--max-record-bytes`, in order. The record is
    /// complete at the part with `last` set (which may be empty).
    Oversized {
        /// The bytes of this part (terminator included in the last part).
        part: Bytes,
        /// Whether this is the first part of the record.
        first: bool,
        /// Whether this is the last part of the record.
        last: bool,
        /// The record was cut short by a stop ([`FrameReader::finish_input`]):
        /// this last part ends it without its terminator, and what follows in the
        /// input was not read.
        cut: bool,
    },
}

/// What a [`FrameReader`] reads: the program's own input, read straight into
/// spare buffer capacity and polled (so a stop is seen while the input is
/// quiet), or any other reader.
pub enum Input<'a> {
    /// Standard input or files, read with `read(2)`.
    Raw(RawInput),
    /// Any reader (tests, benches, library users).
    Reader(Box<dyn Read + Send + 'a>),
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Raw(r) => f.debug_tuple("Raw").field(r).finish(),
            Input::Reader(_) => f.write_str("Reader(..)"),
        }
    }
}

impl From<RawInput> for Input<'static> {
    fn from(r: RawInput) -> Input<'static> {
        Input::Raw(r)
    }
}

impl<'a, R: Read + Send + 'a> From<R> for Input<'a> {
    fn from(r: R) -> Input<'a> {
        Input::Reader(Box::new(r))
    }
}

impl Input<'_> {
    /// Whether a read returns within [`POLL_MS`] even when no data comes, so the
    /// reading thread can look for a stop by itself.
    pub fn polled(&self) -> bool {
        matches!(self, Input::Raw(_))
    }
}

/// Reads records from an [`Input`].
#[derive(Debug)]
pub struct FrameReader<'a> {
    inner: Input<'a>,
    chunk: usize,
    max_record: usize,
    /// Bytes after the last newline seen: an incomplete record.
    buf: BytesMut,
    /// Complete records not yet handed on.
    pending: Bytes,
    /// How many leading bytes of `buf` are known to hold no newline.
    clean: usize,
    /// Streaming the parts of an oversized record.
    oversized: bool,
    /// A stop came inside the oversized record being streamed: its last part is
    /// what was read of it.
    cut: bool,
    eof: bool,
    bytes_read: u64,
    /// Bytes offered to the next read (adapts between `MIN_READ` and `chunk`).
    want: usize,
}

/// The program's input, read with `read(2)`: standard input, or files one after
/// the other (`-` among them is standard input). `Read` needs initialised memory,
/// so a generic reader's buffer is zeroed before every read (a `memset` of every
/// byte of input: ~3 % of a keyed run, and a fifth of the CPU of a whole-line run
/// over 670-byte records); a [`FrameReader`] over a `RawInput` reads straight into
/// its buffer's spare capacity instead. A file whose last record has no newline
/// gets one when another file follows, so records of two files never merge. An
/// error names the file.
#[derive(Debug)]
pub struct RawInput {
    /// Files still to open, in order.
    paths: std::vec::IntoIter<PathBuf>,
    /// What is being read now.
    current: Option<Source>,
    /// The last byte read so far.
    last_byte: Option<u8>,
    /// A newline is owed before the next byte: the file before ended without one.
    newline_owed: bool,
}

/// One descriptor of a [`RawInput`].
#[derive(Debug)]
struct Source {
    fd: i32,
    /// Keeps a file open (and closes it when done); `None` for standard input.
    _file: Option<File>,
    /// How errors name it (`None`: plain standard input, no name).
    name: Option<String>,
}

impl Source {
    fn open(path: &Path) -> io::Result<Source> {
        let name = path.display().to_string();
        if name == "-" {
            return Ok(Source::fd(0, Some(name)));
        }
        // A named pipe is opened without waiting for its writer (`open(2)` would
        // block, and a stop could not end the wait); the reads wait in `poll`.
        let fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
        let flags = if fifo { libc::O_NONBLOCK } else { 0 };
        let f = File::options()
            .read(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| named(&name, e))?;
        let src = Source::fd(f.as_raw_fd(), Some(name));
        Ok(Source { _file: Some(f), ..src })
    }

    /// A descriptor, open for as long as the `Source` is (standard input).
    fn fd(fd: i32, name: Option<String>) -> Source {
        Source { fd, _file: None, name }
    }
}

fn named(name: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{name}: {e}"))
}

impl RawInput {
    /// Standard input.
    pub fn stdin() -> RawInput {
        RawInput::from_source(Source::fd(0, None))
    }

    /// The files in order (`-` is standard input). Each is checked first, so a
    /// file that cannot be read (missing, a directory, a socket, no read
    /// permission) fails the run before anything is read or written, not after
    /// the files before it. Each is opened when its turn comes. Only regular files
    /// are opened for the check (a pipe's permission is asked with `access`):
    /// opening a named pipe and closing it again could leave its writer without a
    /// reader.
    pub fn files(paths: Vec<PathBuf>) -> io::Result<RawInput> {
        for p in paths.iter().filter(|p| p.as_os_str() != "-") {
            let name = p.display().to_string();
            let meta = std::fs::metadata(p).map_err(|e| named(&name, e))?;
            if meta.is_dir() {
                return Err(named(&name, io::Error::from_raw_os_error(libc::EISDIR)));
            }
            if meta.is_file() {
                File::open(p).map_err(|e| named(&name, e))?;
            } else if meta.file_type().is_socket() {
                return Err(named(&name, io::Error::from_raw_os_error(libc::ENXIO)));
            } else {
                // A pipe or device: may this process read it? (`access(2)`, no open.)
                let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                    .map_err(|e| named(&name, io::Error::new(io::ErrorKind::InvalidInput, e)))?;
                // SAFETY: a valid C string.
                if unsafe { libc::access(c.as_ptr(), libc::R_OK) } != 0 {
                    return Err(named(&name, io::Error::last_os_error()));
                }
            }
        }
        Ok(RawInput {
            paths: paths.into_iter(),
            current: None,
            last_byte: None,
            newline_owed: false,
        })
    }

    fn from_source(s: Source) -> RawInput {
        RawInput {
            paths: Vec::new().into_iter(),
            current: Some(s),
            last_byte: None,
            newline_owed: false,
        }
    }

    /// Reads at most `len` (> 0) bytes into `buf`; 0 at the end of the last file.
    /// Waits for data at most [`POLL_MS`] (then `ErrorKind::TimedOut`, nothing
    /// consumed: call again).
    ///
    /// # Safety
    /// `buf` must point to `len` writable bytes.
    unsafe fn read_raw(&mut self, buf: *mut u8, len: usize) -> io::Result<usize> {
        loop {
            let Some(src) = &self.current else {
                let Some(path) = self.paths.next() else { return Ok(0) };
                if self.last_byte.is_some_and(|b| b != b'\n') {
                    self.newline_owed = true;
                }
                self.current = Some(Source::open(&path)?);
                continue;
            };
            // A newline owed goes in front of the next byte read, and only if
            // one comes: an empty file last adds nothing.
            let lead = usize::from(self.newline_owed);
            if lead == 1 && len == 1 {
                self.newline_owed = false;
                self.last_byte = Some(b'\n');
                // SAFETY: `len` > 0 writable bytes at `buf`.
                unsafe { buf.write(b'\n') };
                return Ok(1);
            }
            let with_name = |e: io::Error| match &src.name {
                Some(name) if e.kind() != io::ErrorKind::TimedOut => named(name, e),
                _ => e,
            };
            wait_readable(src.fd).map_err(with_name)?;
            // SAFETY: the caller's promise (`lead` < `len`).
            let n = match unsafe { read_fd(src.fd, buf.add(lead), len - lead) } {
                Ok(n) => n,
                // A non-blocking descriptor with nothing to read after all: as a
                // wait that timed out (nothing consumed, call again).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no input yet"))
                }
                Err(e) => return Err(with_name(e)),
            };
            if n == 0 {
                self.current = None;
                continue;
            }
            if lead == 1 {
                self.newline_owed = false;
                // SAFETY: `len` > 0 writable bytes at `buf`.
                unsafe { buf.write(b'\n') };
            }
            // SAFETY: `buf[..lead + n]` was written.
            self.last_byte = Some(unsafe { buf.add(lead + n - 1).read() });
            return Ok(lead + n);
        }
    }
}

/// One `read(2)` of `fd` into `len` bytes at `buf`. `EINTR` comes back as
/// `ErrorKind::Interrupted`.
///
/// # Safety
/// `buf` must point to `len` writable bytes.
unsafe fn read_fd(fd: i32, buf: *mut u8, len: usize) -> io::Result<usize> {
    // SAFETY: the caller's promise.
    let n = unsafe { libc::read(fd, buf as *mut libc::c_void, len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// How long a read of a [`RawInput`] waits for data before it gives the caller a
/// chance to stop: a shutdown must not find the reader inside a `read(2)` that
/// will take data in after the rest of the program stopped listening.
const POLL_MS: i32 = 100;

/// Waits until `fd` has data (or end of input). Returns `ErrorKind::TimedOut`
/// when none came within [`POLL_MS`] or a signal arrived: nothing was consumed,
/// and the caller may check for a shutdown and call again.
fn wait_readable(fd: i32) -> io::Result<()> {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    match unsafe { libc::poll(&mut p, 1, POLL_MS) } {
        0 => Err(io::Error::new(io::ErrorKind::TimedOut, "no input yet")),
        n if n > 0 => Ok(()),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Err(io::Error::new(io::ErrorKind::TimedOut, "interrupted"))
            } else {
                Err(e)
            }
        }
    }
}

/// The smallest read offered once reads come back short.
const MIN_READ: usize = 64 << 10;

/// Records per [`Frame::Records`] at most. Every record in flight costs ~60 bytes
/// beside its own (its [`Span`] and the pipeline's per-record item and verdict),
/// and up to ten batches are in flight: a 512 KiB batch of two-byte records
/// (`yes | logdedup`) was 262,144 records, 85-209 MiB RSS against 11 MiB for
/// 100-byte lines. At this bound a batch of records of 32 bytes or more is
/// limited by its bytes as before, and shorter ones by their count.
pub const MAX_BATCH_RECORDS: usize = 16 << 10;

impl<'a> FrameReader<'a> {
    /// A reader doing reads of `chunk` bytes, with records limited to `max_record` bytes.
    pub fn new(inner: impl Into<Input<'a>>, chunk: usize, max_record: usize) -> FrameReader<'a> {
        let chunk = chunk.max(1);
        FrameReader {
            inner: inner.into(),
            chunk,
            max_record: max_record.max(1),
            buf: BytesMut::with_capacity(chunk),
            pending: Bytes::new(),
            clean: 0,
            oversized: false,
            cut: false,
            eof: false,
            bytes_read: 0,
            want: MIN_READ.min(chunk),
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Stops reading: the input ends after the last complete record read. The
    /// bytes of a record not complete yet (no newline, and the input not at its
    /// end) are left out, and their number returned: such a record is neither
    /// written nor remembered, so a replay of the input (a file read again, a
    /// producer that sends it again) writes it once, whole. Written, its ID would
    /// make the replay skip the whole record, and its missing newline would join
    /// it to the next output line. A long record already handed on in parts ends
    /// with what was read of it, in a last part marked `cut`.
    pub fn finish_input(&mut self) -> Option<usize> {
        self.eof = true;
        let complete = memchr::memrchr(b'\n', &self.buf).map_or(0, |p| p + 1);
        if self.oversized && complete == 0 {
            self.cut = true;
            return None;
        }
        let left_out = self.buf.len() - complete;
        self.buf.truncate(complete);
        self.clean = 0;
        (left_out > 0).then_some(left_out)
    }

    /// The input underneath.
    pub fn input(&self) -> &Input<'a> {
        &self.inner
    }

    /// The next frame, or `None` at the end of the input. Over a [`RawInput`],
    /// `ErrorKind::TimedOut` means no data came for a while (nothing was lost):
    /// call again, or [`FrameReader::finish_input`] first to stop.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if !self.pending.is_empty() {
                return Ok(Some(self.frame_pending()));
            }
            if self.oversized {
                if let Some(p) = memchr::memchr(b'\n', &self.buf) {
                    self.oversized = false;
                    self.clean = 0; // what follows the record is not scanned yet
                    let part = self.buf.split_to(p + 1).freeze();
                    return Ok(Some(Frame::Oversized {
                        part,
                        first: false,
                        last: true,
                        cut: false,
                    }));
                }
                if self.eof {
                    self.oversized = false;
                    let part = self.buf.split().freeze();
                    let cut = std::mem::take(&mut self.cut);
                    return Ok(Some(Frame::Oversized { part, first: false, last: true, cut }));
                }
                if !self.buf.is_empty() {
                    let part = self.buf.split().freeze();
                    return Ok(Some(Frame::Oversized {
                        part,
                        first: false,
                        last: false,
                        cut: false,
                    }));
                }
                self.fill()?;
                continue;
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                // The last record has no newline: it is still a record.
                self.pending = self.buf.split().freeze();
                self.clean = 0;
                continue;
            }
            if self.clean == self.buf.len() {
                self.fill()?;
            }
            if let Some(p) = memchr::memrchr(b'\n', &self.buf[self.clean..]) {
                self.pending = self.buf.split_to(self.clean + p + 1).freeze();
                self.clean = self.buf.len();
                continue;
            }
            self.clean = self.buf.len();
            if self.buf.len() > self.max_record + 1 {
                // (+1: a `\r` that the coming `\n` may turn into a terminator.)
                // No newline within the limit: stream this record out in parts.
                self.oversized = true;
                let part = self.buf.split().freeze();
                self.clean = 0;
                return Ok(Some(Frame::Oversized { part, first: true, last: false, cut: false }));
            }
        }
    }

    /// Reads one chunk into `buf`, setting `eof` on end of input.
    fn fill(&mut self) -> io::Result<()> {
        let start = self.buf.len();
        // `Read` needs initialised memory, so the space offered is zeroed first
        // (unless the descriptor is read directly). A pipe hands out at most its
        // buffer (64 KiB by default) per read; zeroing a whole chunk for that cost
        // 16 % of the run. So the offer follows what reads return: doubling while
        // they fill it, up to one chunk (which also keeps the buffer within the
        // record limit plus one chunk).
        let want = self.want;
        let n = match &mut self.inner {
            Input::Raw(raw) => {
                self.buf.reserve(want);
                let spare = &mut self.buf.spare_capacity_mut()[..want];
                let n = loop {
                    // SAFETY: `spare` is `spare.len()` (> 0) writable, uninitialised bytes.
                    match unsafe { raw.read_raw(spare.as_mut_ptr() as *mut u8, spare.len()) } {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                // SAFETY: `read_raw` wrote the first `n <= want` bytes of the spare
                // capacity.
                unsafe { self.buf.set_len(start + n) };
                n
            }
            Input::Reader(r) => {
                self.buf.resize(start + want, 0);
                let n = loop {
                    match r.read(&mut self.buf[start..]) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            self.buf.truncate(start);
                            return Err(e);
                        }
                    }
                };
                self.buf.truncate(start + n);
                n
            }
        };
        self.bytes_read += n as u64;
        if n == want {
            self.want = (want * 2).min(self.chunk);
        } else if n < want / 4 {
            self.want = (want / 2).max(MIN_READ.min(self.chunk));
        }
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Splits whole records off `pending`, stopping before an oversized one (which
    /// is handed on alone, in one part) and after [`MAX_BATCH_RECORDS`].
    fn frame_pending(&mut self) -> Frame {
        let data = &self.pending;
        let mut spans = Vec::new();
        let mut pos = 0usize;
        let len = data.len();
        while pos < len && spans.len() < MAX_BATCH_RECORDS {
            let (content_end, end) = match memchr::memchr(b'\n', &data[pos..]) {
                Some(p) => {
                    let nl = pos + p;
                    let ce = if nl > pos && data[nl - 1] == b'\r' { nl - 1 } else { nl };
                    (ce, nl + 1)
                }
                None => (len, len),
            };
            if content_end - pos > self.max_record {
                if spans.is_empty() {
                    let part = self.pending.split_to(end);
                    return Frame::Oversized { part, first: true, last: true, cut: false };
                }
                break;
            }
            spans.push(Span {
                start: pos as u32,
                content_end: content_end as u32,
                end: end as u32,
            });
            pos = end;
        }
        let data = self.pending.split_to(pos);
        Frame::Records(Records { data, spans })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw descriptor: an idle pipe gives `TimedOut` (nothing consumed, call
    /// again); records that arrive later are framed as from any reader.
    #[test]
    fn raw_input_waits_without_consuming() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let (r, mut w) = std::io::pipe().unwrap();
        let input = RawInput::from_source(Source::fd(r.as_raw_fd(), None));
        let mut fr = FrameReader::new(input, 1 << 16, 1 << 10);
        let e = fr.next_frame().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        w.write_all(b"a\r\nb\nc").unwrap();
        drop(w);
        let mut got = Vec::new();
        while let Some(f) = fr.next_frame().unwrap() {
            let Frame::Records(rs) = f else { panic!("not oversized") };
            got.extend(rs.spans.iter().map(|s| rs.raw(s).to_vec()));
        }
        assert_eq!(got, [b"a\r\n".to_vec(), b"b\n".to_vec(), b"c".to_vec()]);
        assert_eq!(fr.bytes_read(), 6);
        drop(r);
    }

    /// Files through the raw path: in order, a newline added after a file that
    /// lacks one when more input follows (not when only empty files do), an empty
    /// file adding nothing; a file that cannot be read is named before anything is
    /// read.
    #[test]
    fn raw_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let paths = vec![
            write("a", "1\n2"),
            write("b", ""),
            write("c", "3\r\n"),
            write("d", "4"),
            write("e", ""),
        ];
        let input = RawInput::files(paths.clone()).unwrap();
        let mut fr = FrameReader::new(input, 1 << 16, 1 << 10);
        let mut got = Vec::new();
        while let Some(f) = fr.next_frame().unwrap() {
            let Frame::Records(rs) = f else { panic!("not oversized") };
            got.extend(rs.spans.iter().map(|s| rs.raw(s).to_vec()));
        }
        let want: [&[u8]; 4] = [b"1\n", b"2\n", b"3\r\n", b"4"];
        assert_eq!(got, want);
        assert_eq!(fr.bytes_read(), 8);

        // A stop over a file: the records split off go on, the cut one does not.
        let input = RawInput::files(vec![write("f", "r1\nr2\nr3-cut")]).unwrap();
        let mut fr = FrameReader::new(input, 1 << 16, 1 << 10);
        let Some(Frame::Records(rs)) = fr.next_frame().unwrap() else { panic!("records") };
        let mut got: Vec<Vec<u8>> = rs.spans.iter().map(|s| rs.raw(s).to_vec()).collect();
        assert_eq!(fr.finish_input(), Some(6), "the cut record's bytes");
        assert_eq!(fr.finish_input(), None, "once");
        while let Some(Frame::Records(rs)) = fr.next_frame().unwrap() {
            got.extend(rs.spans.iter().map(|s| rs.raw(s).to_vec()));
        }
        assert_eq!(got, [b"r1\n".to_vec(), b"r2\n".to_vec()]);

        let missing = dir.path().join("missing.log");
        let e = RawInput::files(vec![paths[0].clone(), missing]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("missing.log"), "{e}");
        let e = RawInput::files(vec![dir.path().to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("Is a directory"), "{e}");
    }

    /// A reader that returns at most `n` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// (content, raw) of each record, and oversized records as ("<oversized>", raw).
    fn frames(input: &[u8], read: usize, chunk: usize, max: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut r = FrameReader::new(Trickle(input, read), chunk, max);
        let mut out = Vec::new();
        let mut big = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            match f {
                Frame::Records(rs) => {
                    for s in &rs.spans {
                        out.push((rs.content(s).to_vec(), rs.raw(s).to_vec()));
                    }
                }
                Frame::Oversized { part, first, last, .. } => {
                    if first {
                        big.clear();
                    }
                    big.extend_from_slice(&part);
                    if last {
                        out.push((b"<oversized>".to_vec(), std::mem::take(&mut big)));
                    }
                }
            }
        }
        assert_eq!(r.bytes_read(), input.len() as u64);
        out
    }

    #[test]
    fn every_read_size_gives_the_same_records() {
        let input = b"a\r\nbb\n\n\rc\r\nlast";
        let expect: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"a".to_vec(), b"a\r\n".to_vec()),
            (b"bb".to_vec(), b"bb\n".to_vec()),
            (b"".to_vec(), b"\n".to_vec()),
            (b"\rc".to_vec(), b"\rc\r\n".to_vec()),
            (b"last".to_vec(), b"last".to_vec()),
        ];
        for read in [1, 2, 3, 7, 64, 1 << 16] {
            for chunk in [1, 5, 64, 1 << 16] {
                assert_eq!(
                    frames(input, read, chunk, 1 << 20),
                    expect,
                    "read {read} chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn last_record_keeps_its_missing_newline_and_cr() {
        assert_eq!(frames(b"x\r", 4, 4, 100), vec![(b"x\r".to_vec(), b"x\r".to_vec())]);
        assert!(frames(b"", 4, 4, 100).is_empty());
        assert_eq!(frames(b"\n", 4, 4, 100), vec![(b"".to_vec(), b"\n".to_vec())]);
    }

    #[test]
    fn oversized_records_are_streamed_in_parts() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 50));
        input.extend_from_slice(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', 30)); // oversized, no final newline
        for read in [1, 3, 8, 1000] {
            for chunk in [4, 8, 16, 1000] {
                let f = frames(&input, read, chunk, 10);
                assert_eq!(f.len(), 4, "read {read} chunk {chunk}");
                assert_eq!(f[0].1, b"ok\n");
                assert_eq!(f[1].0, b"<oversized>");
                assert_eq!(f[1].1.len(), 51);
                assert_eq!(f[2].1, b"after\n");
                assert_eq!(f[3].0, b"<oversized>");
                assert_eq!(f[3].1.len(), 30);
            }
        }
        // Exactly at the limit is not oversized; one more byte is.
        assert_eq!(frames(b"0123456789\n", 3, 4, 10)[0].0, b"0123456789");
        assert_eq!(frames(b"0123456789\r\n", 3, 4, 10)[0].0, b"0123456789");
        assert_eq!(frames(b"0123456789a\n", 3, 4, 10)[0].0, b"<oversized>");
    }

    /// A stop just after a long record ended: the whole records read with it
    /// still go on, only the cut one is left out; a stop inside a long record
    /// already handed on in parts ends it with what was read, marked `cut`.
    #[test]
    fn a_stop_keeps_whole_records_and_leaves_out_the_cut_one() {
        let input = [&[b'x'; 100][..], b"\nr1\nr2\ncut"].concat();
        let mut r = FrameReader::new(Trickle(&input, 64), 64, 10);
        let mut parts = Vec::new();
        while let Some(Frame::Oversized { part, last, cut, .. }) = r.next_frame().unwrap() {
            assert!(!cut, "ended by its newline");
            parts.push(part);
            if last {
                break;
            }
        }
        assert_eq!(parts.concat().len(), 101, "the long record, whole");
        assert_eq!(r.finish_input(), Some(3));
        let Some(Frame::Records(rs)) = r.next_frame().unwrap() else { panic!("records") };
        let got: Vec<&[u8]> = rs.spans.iter().map(|s| rs.raw(s)).collect();
        assert_eq!(got, [b"r1\n", b"r2\n"]);
        assert!(r.next_frame().unwrap().is_none());

        let input = [b'y'; 100];
        let mut r = FrameReader::new(Trickle(&input, 64), 64, 10);
        assert!(matches!(r.next_frame().unwrap(), Some(Frame::Oversized { last: false, .. })));
        assert_eq!(r.finish_input(), None, "not left out: a record already going out");
        let Some(Frame::Oversized { part, last: true, cut: true, .. }) = r.next_frame().unwrap()
        else {
            panic!("the long record's last part, marked cut")
        };
        assert!(!part.contains(&b'\n'));
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn memory_stays_bounded_on_a_huge_line() {
        // 8 MiB without a newline, limit 64 KiB: no part may exceed limit + chunk.
        let input = vec![b'z'; 8 << 20];
        let mut r = FrameReader::new(Trickle(&input, 1 << 16), 1 << 16, 1 << 16);
        let mut total = 0;
        while let Some(f) = r.next_frame().unwrap() {
            match f {
                Frame::Oversized { part, .. } => {
                    assert!(part.len() <= (1 << 16) * 2 + 1);
                    total += part.len();
                }
                Frame::Records(_) => panic!("no whole record expected"),
            }
        }
        assert_eq!(total, input.len());
    }
}
