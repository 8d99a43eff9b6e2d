//! A second thread for the memory tier's table work: [`Helper::share`] runs the
//! parts of a job on the calling thread and, when it is free, on the helper too.
//!
//! Why: on a file, the main thread's table work (inserts, growth, first touch of
//! the tables' pages) is the slowest stage, and nothing else runs beside it: one
//! core idles while the reader waits for room in the queue. The inserts are bound
//! by memory latency (a core keeps only so many cache misses in flight), so a
//! second core doubles how many are in flight. The tables are 16 shards and a
//! fingerprint's answer depends only on its own shard, so parts of the shards can
//! be filled by either thread (see `FingerprintSet::insert_all_split`).
//!
//! Both threads claim parts in turn until none is left, so the caller never waits
//! for a helper that has not started (the reader thread busy on the other core):
//! it runs every part itself then, at the cost of a lock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, Thread};

/// The helper thread, stopped and joined when dropped.
pub(crate) struct Helper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Helper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Helper")
    }
}

struct Shared {
    slot: Mutex<Slot>,
    wake: Condvar,
}

/// What the helper is asked to do. Whoever takes `job` out (under the lock) owns
/// the helper's side of it.
struct Slot {
    job: Option<JobRef>,
    stop: bool,
}

/// A [`Job`] on the stack of a [`Helper::share`] call, erased to a pointer.
struct JobRef {
    data: *const (),
    run: unsafe fn(*const ()),
}

// SAFETY: the job it points to is `Sync` (see `Helper::share`), and `share` does
// not return before the helper has left it or it has been taken back.
unsafe impl Send for JobRef {}

/// The parts `0..parts` of some work, claimed in turn by both threads.
struct Job<F> {
    work: F,
    parts: usize,
    next: AtomicUsize,
    /// The helper has left the job (it no longer touches it).
    left: AtomicBool,
    /// A part panicked on the helper.
    panicked: AtomicBool,
    caller: Thread,
}

impl<F: Fn(usize) + Sync> Job<F> {
    /// Runs unclaimed parts until none is left; false if one panicked (no more
    /// are claimed then, by either thread).
    fn claim_all(&self) -> bool {
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            if k >= self.parts {
                return true;
            }
            if catch_unwind(AssertUnwindSafe(|| (self.work)(k))).is_err() {
                self.next.store(usize::MAX / 2, Ordering::Relaxed);
                return false;
            }
        }
    }

    /// The helper's side of a job.
    ///
    /// # Safety
    ///
    /// `data` points to a live `Job<F>` whose caller waits for `left`.
    unsafe fn help(data: *const ()) {
        let job = &*(data as *const Job<F>);
        if !job.claim_all() {
            job.panicked.store(true, Ordering::Relaxed);
        }
        // The caller may return (and free the job) as soon as `left` is set.
        let caller = job.caller.clone();
        job.left.store(true, Ordering::Release);
        caller.unpark();
    }
}

impl Helper {
    /// Starts the helper thread.
    pub(crate) fn start() -> std::io::Result<Helper> {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot { job: None, stop: false }),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread =
            thread::Builder::new().name("logdedup-tables".into()).spawn(move || s.serve())?;
        Ok(Helper { shared, thread: Some(thread) })
    }

    /// Runs `work(k)` once for each part `k` in `0..parts`, on this thread and
    /// on the helper's, and returns when all are done. A panic in a part is
    /// raised here once neither thread runs any more.
    pub(crate) fn share<F: Fn(usize) + Sync>(&self, parts: usize, work: F) {
        let job = Job {
            work,
            parts,
            next: AtomicUsize::new(0),
            left: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            caller: thread::current(),
        };
        let data = &job as *const Job<F> as *const ();
        self.shared.lock().job = Some(JobRef { data, run: Job::<F>::help });
        self.shared.wake.notify_one();
        let ok = job.claim_all();
        // The job must not outlive this frame: take it back, or wait for the
        // helper to leave it.
        if self.shared.lock().job.take().is_none() {
            while !job.left.load(Ordering::Acquire) {
                thread::park();
            }
        }
        if !ok || job.panicked.load(Ordering::Relaxed) {
            panic!("a part of the memory tier's table work panicked");
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // Nothing panics under this lock; a poisoned one is still consistent.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The helper thread's loop: helps with jobs until stopped.
    fn serve(&self) {
        loop {
            let job = {
                let mut slot = self.lock();
                loop {
                    if slot.stop {
                        return;
                    }
                    if let Some(job) = slot.job.take() {
                        break job;
                    }
                    slot = self.wake.wait(slot).unwrap_or_else(|p| p.into_inner());
                }
            };
            // SAFETY: taken out of the slot under the lock, so its caller waits
            // for this thread to leave it.
            unsafe { (job.run)(job.data) };
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Waits until `flag` is set (true) or 10 s have passed (false).
    fn wait_for(flag: &AtomicBool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while !flag.load(Ordering::Acquire) {
            if Instant::now() > until {
                return false;
            }
            thread::yield_now();
        }
        true
    }

    #[test]
    fn each_part_runs_once_on_either_thread() {
        let h = Helper::start().unwrap();
        let me = thread::current().id();
        for round in 0..300 {
            let parts = 1 + round % 9;
            let runs: Vec<Mutex<Vec<thread::ThreadId>>> =
                (0..parts).map(|_| Mutex::new(Vec::new())).collect();
            let helped = AtomicBool::new(false);
            h.share(parts, |k| {
                let here = thread::current().id();
                runs[k].lock().unwrap().push(here);
                if here != me {
                    helped.store(true, Ordering::Release);
                } else if round % 2 == 0 && k == 0 && parts > 1 {
                    // Every other round the caller's first part waits for the
                    // helper to take one: the helper must take parts, not only
                    // leave them to the caller.
                    assert!(wait_for(&helped), "the helper never took a part");
                }
            });
            for (k, r) in runs.into_iter().enumerate() {
                assert_eq!(r.into_inner().unwrap().len(), 1, "round {round}, part {k}");
            }
        }
    }

    #[test]
    fn a_panic_on_either_thread_reaches_the_caller_and_the_helper_goes_on() {
        let h = Helper::start().unwrap();
        let me = thread::current().id();
        for panics_on_helper in [true, false] {
            // Each thread waits in its part for the other to start one, so each
            // runs one of the two.
            let (helped, called) = (AtomicBool::new(false), AtomicBool::new(false));
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                h.share(2, |_| {
                    if thread::current().id() != me {
                        helped.store(true, Ordering::Release);
                        assert!(wait_for(&called));
                        assert!(!panics_on_helper, "fails on the helper");
                    } else {
                        called.store(true, Ordering::Release);
                        assert!(wait_for(&helped));
                        assert!(panics_on_helper, "fails on the caller");
                    }
                })
            }));
            assert!(outcome.is_err(), "on the helper: {panics_on_helper}");
            assert!(helped.load(Ordering::Acquire), "the helper took no part");
        }
        // Still serving.
        let sum = AtomicUsize::new(0);
        h.share(4, |k| {
            sum.fetch_add(k, Ordering::Relaxed);
        });
        assert_eq!(sum.into_inner(), 6);
    }
}
