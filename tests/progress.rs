//! The progress line through a real terminal: `script` (util-linux) runs
//! logdedup with a pty as its stderr, and the test reads what the terminal
//! got. The tests order events (a line seen before more input is sent); none
//! asserts a duration.
//!
//! [issue 27]: item 5

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util;

/// `logdedup ARGS FIFO > OUT` running under `script`.
struct Terminal {
    child: Child,
    /// What the terminal showed so far.
    shown: Arc<Mutex<Vec<u8>>>,
    /// Collects `shown`; ends when `script` has exited.
    collector: JoinHandle<()>,
}

impl Terminal {
    /// Waits for the run to end; whether it succeeded, and all the terminal showed.
    fn finish(mut self) -> (bool, String) {
        let ok = self.child.wait().unwrap().success();
        self.collector.join().unwrap();
        let shown = String::from_utf8_lossy(&self.shown.lock().unwrap()).into_owned();
        (ok, shown)
    }
}

/// `logdedup ARGS FIFO > OUT` under `script`, with what the terminal shows
/// collected as it comes; `None` (said on stderr) when `script` is missing.
fn on_a_terminal(args: &str, fifo: &Path, out: &Path) -> Option<Terminal> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (Debian's bsdutils, which .ci/test installs)");
        return None;
    }
    let cmd =
        format!("'{}' {args} '{}' > '{}'", util::bin().display(), fifo.display(), out.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let shown = Arc::new(Mutex::new(Vec::new()));
    let (mut from, to) = (child.stdout.take().unwrap(), shown.clone());
    let collector = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            to.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    Some(Terminal { child, shown, collector })
}

/// A named pipe in `dir`, opened for reading and writing so that the open does
/// not wait for logdedup, and logdedup sees its end when this is dropped.
fn fifo(dir: &Path) -> (std::path::PathBuf, std::fs::File) {
    let p = dir.join("in");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let f = std::fs::File::options().read(true).write(true).open(&p).unwrap();
    (p, f)
}

/// Waits (bounded) until the terminal has shown `want`.
fn wait_for(tty: &Mutex<Vec<u8>>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&tty.lock().unwrap()).contains(want) {
        let shown = String::from_utf8_lossy(&tty.lock().unwrap()).into_owned();
        assert!(Instant::now() < deadline, "the terminal never showed {want:?}: {shown:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The line counts what left the output buffer, follows the input (the last
/// counts it shows are the final ones), and is erased before the summary,
/// which starts on a clean line.
#[test]
fn the_progress_line_counts_what_was_written_and_is_cleared_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut input) = fifo(dir.path());
    let out = dir.path().join("out");
    let Some(tty) = on_a_terminal("", &path, &out) else { return };
    input.write_all(b"a\nb\na\n").unwrap();
    wait_for(&tty.shown, "logdedup: 3 in, 2 written, 1 duplicates");
    input.write_all(b"c\n").unwrap();
    wait_for(&tty.shown, "logdedup: 4 in, 3 written, 1 duplicates");
    drop(input);
    let (ok, shown) = tty.finish();
    assert!(ok, "{shown:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "a\nb\nc\n");
    let last = shown.rfind("logdedup: 4 in, 3 written").unwrap();
    let summary = shown.find("logdedup: 4 records in").expect("the summary");
    assert!(last < summary, "{shown:?}");
    // Erased right before the summary: back to the start of the row, and the
    // row cleared (all of it, or from the cursor on).
    let erased = &shown[..summary];
    let cleared = ["\r\x1b[2K", "\r\x1b[K"].iter().any(|e| erased.ends_with(e));
    assert!(cleared, "the line was not erased: {shown:?}");
}

/// `-q` and `--no-progress` silence the line (`-q` the summary too). The run
/// lasts well over the second after which a line would be drawn: the input is
/// held open that long after its records came out.
#[test]
fn quiet_and_no_progress_draw_no_line() {
    for (args, summary) in [("-q", false), ("--no-progress", true)] {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut input) = fifo(dir.path());
        let out = dir.path().join("out");
        let Some(tty) = on_a_terminal(args, &path, &out) else { return };
        input.write_all(b"a\nb\na\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read_to_string(&out).unwrap_or_default() != "a\nb\n" {
            assert!(Instant::now() < deadline, "{args}: the records never came out");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(2500));
        drop(input);
        let (ok, shown) = tty.finish();
        assert!(ok, "{args}: {shown:?}");
        assert!(!shown.contains(" in, "), "{args}: a progress line: {shown:?}");
        assert_eq!(shown.contains("logdedup: 3 records in"), summary, "{args}: {shown:?}");
    }
}
