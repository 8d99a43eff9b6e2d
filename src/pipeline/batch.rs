//! A batch of framed records and its classification, shared by the two threads.
//!
//! The reader thread classifies what it reads, but the cost per batch of the two
//! threads varies (table loads and growth on the main thread, the pipe and the
//! record shapes on the reader), so with a short queue each sometimes waits for
//! the other; on two cores a waiting main thread is an idle core. So a batch is
//! handed on as soon as the queue has room, and the two threads classify its
//! segments together, each claiming the next unclaimed one: the main thread,
//! having nothing else to do, helps with the batch it is about to decide, and
//! waits only for segments the reader has already begun.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::classify::Classifier;
use crate::framing::{Records, Span};

/// How a record's ID is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Id {
    /// No key, or no readable event time.
    Unkeyed,
    /// Integer ID for the roaring tier.
    Int(u64),
    /// String ID: bloom hash and exact fingerprint (each 0 when not needed).
    /// `int`: an integer ID that the (remote) exact tier keeps as itself; `fp`
    /// then holds the mapped integer instead of a fingerprint.
    Str { bloom: u64, fp: u128, int: bool },
}

/// A record after the reader thread's stages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Item {
    pub(super) id: Id,
    pub(super) time_ns: i64,
}

/// Records per segment of a [`Batch`]: the unit of classifying that either
/// thread may claim.
pub(super) const SEGMENT: usize = 512;

/// A batch of framed records, classified a segment at a time (see the module
/// docs).
pub(super) struct Batch {
    pub(super) records: Records,
    arrival_ns: i64,
    segments: Vec<OnceLock<Vec<Item>>>,
    /// The first segment no thread has claimed.
    next: AtomicUsize,
}

impl Batch {
    pub(super) fn new(records: Records, arrival_ns: i64) -> Batch {
        let segments =
            (0..records.spans.len().div_ceil(SEGMENT)).map(|_| OnceLock::new()).collect();
        Batch { records, arrival_ns, segments, next: AtomicUsize::new(0) }
    }

    /// The records of segment `k`.
    fn spans(&self, k: usize) -> &[Span] {
        let all = &self.records.spans;
        &all[k * SEGMENT..((k + 1) * SEGMENT).min(all.len())]
    }

    /// Claims and classifies segments until none is left unclaimed.
    pub(super) fn classify_unclaimed(&self, classifier: &Classifier, last_time: &mut Option<i64>) {
        loop {
            let s = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = self.segments.get(s) else { return };
            let claim = Claim(slot);
            let spans = self.spans(s);
            let mut items = Vec::with_capacity(spans.len());
            classifier.classify(&self.records, spans, self.arrival_ns, last_time, &mut items);
            // Claimed by this thread alone, so the slot is empty.
            let _ = claim.0.set(items);
        }
    }

    /// Every record's item, in order, once every segment is classified (waiting
    /// for those another thread is still on); `None` if a segment came back short
    /// (its thread panicked).
    pub(super) fn items(&self) -> Option<impl Iterator<Item = &Item>> {
        let whole =
            self.segments.iter().enumerate().all(|(k, s)| s.wait().len() == self.spans(k).len());
        whole.then(|| self.segments.iter().flat_map(|s| s.wait().iter()))
    }
}

/// A claimed segment: filled even if classifying it panics (with nothing, which
/// [`Batch::items`] reports), so the other thread never waits on it forever.
struct Claim<'a>(&'a OnceLock<Vec<Item>>);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let _ = self.0.set(Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;
    use std::thread;

    use super::*;
    use crate::framing::{Frame, FrameReader};
    use crate::pipeline::classify::tests::classifier;

    /// One batch of `n` records: string, integer and missing IDs, some cut.
    fn records(n: usize) -> Records {
        let mut data = Vec::new();
        for i in 0..n {
            let line = match i % 5 {
                0 => format!("{{\"id\":\"s{}\",\"t\":{}}}\n", i % 97, 1_700_000_000 + i),
                1 => format!("{{\"id\":{},\"t\":{}}}\n", i % 89, 1_700_000_000 + i),
                2 => format!("{{\"other\":{i}}}\n"),
                3 => format!("{{\"id\":\"cut{i}\",\"t\":1\n"),
                _ => format!("{{\"t\":{},\"id\":\"s{}\"}}\r\n", 1_700_000_000 + i, i % 13),
            };
            data.extend_from_slice(line.as_bytes());
        }
        let mut fr = FrameReader::new(io::Cursor::new(data), 1 << 24, 1 << 20);
        match fr.next_frame().unwrap() {
            Some(Frame::Records(rs)) => rs,
            _ => panic!("one batch of records expected"),
        }
    }

    #[test]
    fn two_threads_classify_a_batch_as_one_does() {
        for time in [None, Some(".t")] {
            let c = Arc::new(classifier(".id", time));
            assert!(c.shareable());
            let rs = records(20 * SEGMENT + 7);
            let mut alone = Vec::new();
            c.classify(&rs, &rs.spans, 5, &mut None, &mut alone);
            assert_eq!(alone.len(), rs.spans.len());
            for _ in 0..20 {
                let b = Arc::new(Batch::new(rs.clone(), 5));
                let (b2, c2) = (b.clone(), c.clone());
                let helper = thread::spawn(move || b2.classify_unclaimed(&c2, &mut None));
                b.classify_unclaimed(&c, &mut None);
                let shared: Vec<Item> =
                    b.items().expect("every segment classified").copied().collect();
                helper.join().unwrap();
                assert_eq!(shared.len(), alone.len());
                for (k, (x, y)) in shared.iter().zip(&alone).enumerate() {
                    assert!(x.id == y.id && x.time_ns == y.time_ns, "record {k}: {x:?} vs {y:?}");
                }
            }
            // The batch holds every kind of item, so the comparison above means something.
            assert!(alone.iter().any(|i| matches!(i.id, Id::Str { .. })));
            assert!(alone.iter().any(|i| matches!(i.id, Id::Int(_))));
            assert!(alone.iter().any(|i| i.id == Id::Unkeyed));
        }
    }

    #[test]
    fn a_segment_whose_thread_panicked_is_reported_not_waited_for() {
        let b = Arc::new(Batch::new(records(3 * SEGMENT), 0));
        // Another thread claims the second segment and panics while classifying it.
        b.next.store(3, Ordering::Relaxed);
        let b2 = b.clone();
        let failed = thread::spawn(move || {
            let _claim = Claim(&b2.segments[1]);
            panic!("classifying failed");
        })
        .join();
        assert!(failed.is_err());
        let c = classifier(".id", None);
        for k in [0, 2] {
            let mut items = Vec::new();
            c.classify(&b.records, b.spans(k), 0, &mut None, &mut items);
            b.segments[k].set(items).unwrap();
        }
        assert!(b.items().is_none());
    }
}
