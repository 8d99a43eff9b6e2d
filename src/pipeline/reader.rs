//! The reader thread: reads and frames the input and classifies the records
//! (see [`super::batch`]), then hands them to the main thread in order.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use bytes::Bytes;

use super::batch::Batch;
use super::classify::Classifier;
use crate::config::FramingConfig;
use crate::error::{Bug, Error, Result};
use crate::framing::{Frame, FrameReader, Input};
use crate::window::Clock;

/// Batches in flight between the reader thread and the main thread. Each holds a
/// read's worth of records (512 KiB by default): the queue absorbs the moments when
/// one thread runs slower than the other (a table growing, the pipe running dry).
/// 8 × 512 KiB against 4 × 1 MiB, 10M keyed lines, three loops: 4-7 % less wall
/// time, 2 MiB less peak RSS; 16 × 256 KiB and 12 × 512 KiB were no better than 4 ×
/// 1 MiB, and 8 × 1 MiB cost 6 MiB of RSS.
const CHANNEL_DEPTH: usize = 8;

/// What the reader thread sends.
pub(super) enum Work {
    Batch(Arc<Batch>),
    /// A part of a record longer than `--max-record-bytes` (see [`Frame::Oversized`]).
    Oversized {
        part: Bytes,
        first: bool,
        last: bool,
        cut: bool,
    },
    /// A record cut short by a stop, left out: its length.
    Incomplete(usize),
    /// A read failed. The thread then stops as at a stop, handing on the whole
    /// records it holds and the cut one, so that they are counted.
    Failed(io::Error),
}

/// The reader thread, seen from the main thread.
pub(super) struct Reader {
    pub(super) rx: Receiver<Work>,
    /// `None` once joined.
    handle: Option<JoinHandle<()>>,
    /// Both threads classify a batch (see [`Classifier::shareable`]).
    pub(super) shared: bool,
    /// The thread looks for a stop by itself while the input is quiet
    /// ([`Input::polled`]).
    pub(super) polled: bool,
    /// Set by the main thread when the run fails: the thread stops reading as at
    /// a stop (SIGINT/SIGTERM).
    halt: Arc<AtomicBool>,
}

impl Reader {
    /// Waits for the thread to end: a panic must not pass for the end of the input.
    pub(super) fn join(&mut self) -> Result<()> {
        match self.handle.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(Bug::Panicked("the reader thread").into()),
            _ => Ok(()),
        }
    }

    /// Whether the thread has ended.
    pub(super) fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Tells the thread to stop reading (the run failed): it hands on what it
    /// holds, then ends.
    pub(super) fn halt(&self) {
        self.halt.store(true, Ordering::Relaxed);
    }
}

/// What the reader thread works with.
pub(super) struct Source {
    pub(super) input: Input<'static>,
    pub(super) classifier: Arc<Classifier>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) shutdown: Arc<AtomicBool>,
    pub(super) framing: FramingConfig,
}

/// Starts the reader thread over `source`.
pub(super) fn spawn(source: Source) -> Result<Reader> {
    let shared = source.classifier.shareable();
    let polled = source.input.polled();
    let (tx, rx) = mpsc::sync_channel::<Work>(CHANNEL_DEPTH);
    let halt = Arc::new(AtomicBool::new(false));
    let halted = halt.clone();
    let handle = thread::Builder::new()
        .name("logdedup-reader".into())
        .spawn(move || read(source, &halted, shared, &tx))
        .map_err(|e| Error::io("starting the reader thread", e))?;
    Ok(Reader { rx, handle: Some(handle), shared, polled, halt })
}

/// The reader thread's loop: until the end of the input, a stop (a signal, the
/// run failing, a read error: what was read is still handed on) or the main
/// thread going away.
fn read(s: Source, halt: &AtomicBool, shared: bool, tx: &SyncSender<Work>) {
    let mut last_time = None;
    let (chunk, max_record) = (s.framing.chunk_bytes, s.framing.max_record_bytes);
    let mut fr = FrameReader::new(s.input, chunk, max_record);
    let mut stopped = false;
    let mut failed = false;
    loop {
        let stop = failed || s.shutdown.load(Ordering::Relaxed) || halt.load(Ordering::Relaxed);
        if !stopped && stop {
            stopped = true;
            if let Some(cut) = fr.finish_input() {
                if tx.send(Work::Incomplete(cut)).is_err() {
                    break;
                }
            }
        }
        let work = match fr.next_frame() {
            Ok(None) => break,
            Ok(Some(Frame::Records(rs))) => {
                let batch = Arc::new(Batch::new(rs, s.clock.now_ns()));
                if shared {
                    // Handed on first when there is room, so an idle main thread
                    // can help (see `Batch`).
                    match tx.try_send(Work::Batch(batch.clone())) {
                        Ok(()) => {
                            batch.classify_unclaimed(&s.classifier, &mut last_time);
                            continue;
                        }
                        Err(TrySendError::Full(_)) => {}
                        Err(TrySendError::Disconnected(_)) => break,
                    }
                }
                batch.classify_unclaimed(&s.classifier, &mut last_time);
                Work::Batch(batch)
            }
            Ok(Some(Frame::Oversized { part, first, last, cut })) => {
                Work::Oversized { part, first, last, cut }
            }
            // Idle input: look at the shutdown flag, then wait again.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            Err(e) if !stopped => {
                failed = true;
                Work::Failed(e)
            }
            // No read is made once stopped; should one fail, nothing is left.
            Err(_) => break,
        };
        if tx.send(work).is_err() {
            break;
        }
    }
}
