//! A persistent, low-overhead thread pool for kernels (llama.cpp's threadpool design).
//!
//! Workers are created once. A job is one borrowed closure `f(thread_idx)` that every thread
//! runs exactly once; the calling thread takes part as thread 0, so an `n_threads` pool owns
//! `n_threads - 1` OS threads. Work inside a job is split by the closure itself, usually by
//! claiming chunks from an atomic counter.
//!
//! Protocol: the submitter stores a pointer to the job and the number of pending workers, then
//! bumps the `epoch` counter. Idle workers spin on `epoch` for [`SPIN`] and then park on a
//! condvar; the submitter only touches the condvar when some worker has registered as
//! sleeping. Completion is a countdown (`pending`) the submitter spins on. Nothing is
//! allocated per job.
//!
//! Invariants: one job at a time (a submit mutex); the job pointer is only dereferenced between
//! the epoch bump and the worker's `pending` decrement, while the submitter is still inside
//! [`Pool::run`] (it waits for `pending == 0` even when its own part panics), so the borrowed
//! closure outlives every use. A job that calls back into the pool runs the nested job on its
//! own thread.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker (or a waiting submitter) spins before parking (or yielding).
pub(crate) const SPIN: Duration = Duration::from_micros(100);

/// A job: called once on each thread with that thread's index.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// Keeps hot atomics on their own cache lines.
#[repr(align(128))]
struct Padded<T>(T);

struct Shared {
    epoch: Padded<AtomicU64>,
    pending: Padded<AtomicUsize>,
    /// Points at a `Job<'_>` on the submitter's stack while a job runs.
    job: AtomicPtr<()>,
    shutdown: AtomicBool,
    worker_panicked: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

thread_local! {
    /// True while this thread runs a pool job, so a nested `run` executes inline.
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is running a pool job right now.
pub(crate) fn in_job() -> bool {
    IN_JOB.get()
}

/// The persistent pool. Dropping it stops and joins the workers.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    submit: Mutex<()>,
}

impl Pool {
    /// A pool of `n_threads` threads (the caller plus `n_threads - 1` workers; 0 counts as 1).
    /// If the OS refuses to spawn a worker, the pool keeps the ones it got and logs a warning.
    pub(crate) fn new(n_threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            epoch: Padded(AtomicU64::new(0)),
            pending: Padded(AtomicUsize::new(0)),
            job: AtomicPtr::new(std::ptr::null_mut()),
            shutdown: AtomicBool::new(false),
            worker_panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut workers = Vec::with_capacity(n_threads.saturating_sub(1));
        for idx in 1..n_threads.max(1) {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("skiff-cpu-{idx}"))
                .spawn(move || worker_loop(&s, idx));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(err) => {
                    tracing::warn!(%err, n_threads = idx, "could not spawn a kernel thread");
                    break;
                }
            }
        }
        Pool {
            shared,
            workers,
            submit: Mutex::new(()),
        }
    }

    /// Threads taking part in a job, the caller included.
    pub(crate) fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` once for every thread index `i < n_threads()`, concurrently, and returns
    /// when all calls have finished. A panic in any call is re-raised here after all finish.
    pub(crate) fn run(&self, f: Job<'_>) {
        if self.workers.is_empty() || IN_JOB.get() {
            (0..self.n_threads()).for_each(f);
            return;
        }
        let _one_job_at_a_time = self.submit.lock().unwrap_or_else(PoisonError::into_inner);
        let shared = &*self.shared;
        let job: Job<'_> = f;
        shared
            .job
            .store((&raw const job).cast_mut().cast(), Ordering::Relaxed);
        shared
            .pending
            .0
            .store(self.workers.len(), Ordering::Relaxed);
        // SeqCst pairs with the sleepers check below and in `wait_for_epoch` (no lost wake-up);
        // it also releases `job` and `pending` to the workers.
        shared.epoch.0.fetch_add(1, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _held = shared.lock.lock().unwrap_or_else(PoisonError::into_inner);
            shared.wake.notify_all();
        }
        let caller_result = {
            let _wait = WaitForWorkers(shared);
            IN_JOB.set(true);
            let r = catch_unwind(AssertUnwindSafe(|| f(0)));
            IN_JOB.set(false);
            r
        };
        if let Err(payload) = caller_result {
            resume_unwind(payload);
        }
        if shared.worker_panicked.swap(false, Ordering::Relaxed) {
            panic!("a skiff-cpu kernel thread panicked while running a job");
        }
    }
}

/// Waits (on drop, so also while unwinding) until every worker has finished the current job.
struct WaitForWorkers<'a>(&'a Shared);

impl Drop for WaitForWorkers<'_> {
    fn drop(&mut self) {
        let start = Instant::now();
        let mut spins = 0u32;
        while self.0.pending.0.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                std::thread::yield_now();
            }
        }
    }
}

fn worker_loop(shared: &Shared, idx: usize) {
    let mut seen = 0u64;
    loop {
        seen = wait_for_epoch(shared, seen);
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        let job_ptr = shared
            .job
            .load(Ordering::Relaxed)
            .cast::<Job<'_>>()
            .cast_const();
        // SAFETY: the submitter stored a pointer to a live `Job` before bumping the epoch we
        // just observed (Acquire), and it stays inside `Pool::run` — keeping that `Job` and the
        // closure it borrows alive — until this worker decrements `pending` below.
        let job: Job<'_> = unsafe { *job_ptr };
        IN_JOB.set(true);
        if catch_unwind(AssertUnwindSafe(|| job(idx))).is_err() {
            shared.worker_panicked.store(true, Ordering::Relaxed);
        }
        IN_JOB.set(false);
        shared.pending.0.fetch_sub(1, Ordering::Release);
    }
}

/// Spins until `epoch != seen`, parking on the condvar after [`SPIN`]; returns the new epoch.
fn wait_for_epoch(shared: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let epoch = shared.epoch.0.load(Ordering::Acquire);
        if epoch != seen {
            return epoch;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && start.elapsed() > SPIN {
            return park_until_epoch(shared, seen);
        }
    }
}

fn park_until_epoch(shared: &Shared, seen: u64) -> u64 {
    let mut guard = shared.lock.lock().unwrap_or_else(PoisonError::into_inner);
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    loop {
        let epoch = shared.epoch.0.load(Ordering::SeqCst);
        if epoch != seen {
            shared.sleepers.fetch_sub(1, Ordering::SeqCst);
            return epoch;
        }
        guard = shared
            .wake
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.epoch.0.fetch_add(1, Ordering::SeqCst);
        {
            let _held = self
                .shared
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.shared.wake.notify_all();
        }
        for handle in self.workers.drain(..) {
            // A worker cannot panic outside `catch_unwind`; nothing useful to do if it did.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every thread index runs exactly once per job, across many jobs and after parking.
    #[test]
    fn each_thread_runs_once_per_job() {
        for n_threads in [1, 2, 3, 5] {
            let pool = Pool::new(n_threads);
            assert_eq!(pool.n_threads(), n_threads);
            for round in 0..200 {
                if round == 100 {
                    std::thread::sleep(SPIN * 5); // let the workers park
                }
                let hits: Vec<AtomicUsize> = (0..n_threads).map(|_| AtomicUsize::new(0)).collect();
                pool.run(&|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                let counts: Vec<usize> = hits.iter().map(|h| h.load(Ordering::Relaxed)).collect();
                assert_eq!(
                    counts,
                    vec![1; n_threads],
                    "n_threads={n_threads} round={round}"
                );
            }
        }
    }

    /// A job that submits to the same pool runs the nested job inline instead of deadlocking.
    #[test]
    fn nested_run_is_inline() {
        let pool = Pool::new(3);
        let total = AtomicUsize::new(0);
        pool.run(&|_| {
            pool.run(&|_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 9);
    }

    /// A panicking worker is reported to the submitter, and the pool keeps working after it.
    #[test]
    fn worker_panic_is_reraised_and_pool_survives() {
        let pool = Pool::new(2);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|i| assert!(i != 1, "boom on worker 1"));
        }));
        assert!(result.is_err());
        let ran = AtomicUsize::new(0);
        pool.run(&|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 2);
    }

    /// Concurrent submitters from several threads are serialized, each job complete.
    #[test]
    fn concurrent_submitters() {
        let pool = Pool::new(2);
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..100 {
                        pool.run(&|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 3 * 100 * 2);
    }
}
