//! A persistent, low-overhead thread pool for kernels (llama.cpp's threadpool design, plus
//! work stealing of whole thread slots).
//!
//! Workers are created once. A job is one borrowed closure `f(thread_idx)` that runs exactly
//! once for every thread index; the calling thread runs index 0, so an `n_threads` pool owns
//! `n_threads - 1` OS threads. Work inside a job is split by the closure itself, usually by
//! claiming chunks from an atomic counter.
//!
//! Protocol: the submitter stores a pointer to the job, offers every worker its slot by writing
//! the new epoch into the slot's `ticket`, then bumps the global `epoch`. Idle workers spin on
//! `epoch` for [`SPIN`] and then park on a condvar (the submitter only touches the condvar when
//! some worker has registered as sleeping). A worker claims its slot with one compare-exchange
//! on its ticket, runs `f(idx)`, and publishes `done = epoch`. When the submitter has finished
//! index 0 it *steals* every slot not yet claimed (the same compare-exchange) and runs those
//! indices itself: a worker that is descheduled or parked when the job arrives costs nothing,
//! which matters on a busy machine where a spinning pool otherwise waits for the OS scheduler
//! (measured: hundreds of microseconds per job with more runnable threads than cores). The
//! submitter then waits only for the slots that workers did claim. Nothing is allocated per job.
//!
//! Invariants: one job at a time (a submit mutex); a worker dereferences the job pointer only
//! after claiming its slot for the current epoch, and the submitter stays inside [`Pool::run`]
//! until every claimed slot reports `done` (also when its own part panics), so the borrowed
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

/// Ticket low bits: the slot of epoch `ticket >> 2` was claimed by its worker...
const CLAIMED: u64 = 1;
/// ...or taken over by the submitter.
const STOLEN: u64 = 2;

/// Keeps hot atomics on their own cache lines.
#[repr(align(128))]
struct Padded<T>(T);

/// One worker's hand-off cell.
#[repr(align(128))]
struct Slot {
    /// `epoch << 2` when a job is offered, `| CLAIMED` or `| STOLEN` once taken.
    ticket: AtomicU64,
    /// The last epoch whose job this worker finished.
    done: AtomicU64,
}

struct Shared {
    epoch: Padded<AtomicU64>,
    slots: Vec<Slot>,
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
        let n_workers = n_threads.max(1) - 1;
        let shared = Arc::new(Shared {
            epoch: Padded(AtomicU64::new(0)),
            slots: (0..n_workers)
                .map(|_| Slot {
                    ticket: AtomicU64::new(STOLEN),
                    done: AtomicU64::new(0),
                })
                .collect(),
            job: AtomicPtr::new(std::ptr::null_mut()),
            shutdown: AtomicBool::new(false),
            worker_panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut workers = Vec::with_capacity(n_workers);
        for idx in 1..=n_workers {
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

    /// Runs `f(i)` once for every thread index `i < n_threads()` and returns when all calls
    /// have finished. Indices run concurrently on the workers, except those whose worker had
    /// not picked the job up by the time the caller finished index 0: the caller runs them.
    /// A panic in any call is re-raised here after all finish.
    pub(crate) fn run(&self, f: Job<'_>) {
        if self.workers.is_empty() || IN_JOB.get() {
            (0..self.n_threads()).for_each(f);
            return;
        }
        let _one_job_at_a_time = self.submit.lock().unwrap_or_else(PoisonError::into_inner);
        let shared = &*self.shared;
        let slots = &shared.slots[..self.workers.len()];
        let job: Job<'_> = f;
        shared
            .job
            .store((&raw const job).cast_mut().cast(), Ordering::Relaxed);
        let epoch = shared.epoch.0.load(Ordering::Relaxed) + 1;
        for slot in slots {
            // Release: a worker that claims this ticket sees the job pointer stored above.
            slot.ticket.store(epoch << 2, Ordering::Release);
        }
        // SeqCst pairs with the sleepers check below and in `park_until_epoch` (no lost wake-up).
        shared.epoch.0.store(epoch, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _held = shared.lock.lock().unwrap_or_else(PoisonError::into_inner);
            shared.wake.notify_all();
        }
        let caller_result = {
            let _wait = WaitForWorkers { slots, epoch };
            IN_JOB.set(true);
            let r = catch_unwind(AssertUnwindSafe(|| {
                f(0);
                for (i, slot) in slots.iter().enumerate() {
                    let offered = epoch << 2;
                    let steal = slot.ticket.compare_exchange(
                        offered,
                        offered | STOLEN,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    if steal.is_ok() {
                        f(i + 1);
                    }
                }
            }));
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

/// Waits (on drop, so also while unwinding) until every worker that claimed its slot of
/// `epoch` has finished, and takes over the slots nobody claimed (so a late worker skips them).
struct WaitForWorkers<'a> {
    slots: &'a [Slot],
    epoch: u64,
}

impl Drop for WaitForWorkers<'_> {
    fn drop(&mut self) {
        let start = Instant::now();
        let mut spins = 0u32;
        for slot in self.slots {
            let offered = self.epoch << 2;
            // After a panic in the caller's part, slots may still be unclaimed: close them.
            let claimed = match slot.ticket.compare_exchange(
                offered,
                offered | STOLEN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => false,
                Err(now) => now == offered | CLAIMED,
            };
            if !claimed {
                continue;
            }
            while slot.done.load(Ordering::Acquire) != self.epoch {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                    std::thread::yield_now();
                }
            }
        }
    }
}

fn worker_loop(shared: &Shared, idx: usize) {
    let slot = &shared.slots[idx - 1];
    let mut seen = 0u64;
    loop {
        seen = wait_for_epoch(shared, seen);
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        let ticket = slot.ticket.load(Ordering::Relaxed);
        if ticket & (CLAIMED | STOLEN) != 0 {
            continue; // the submitter already ran this slot
        }
        let claim = slot.ticket.compare_exchange(
            ticket,
            ticket | CLAIMED,
            Ordering::Acquire,
            Ordering::Relaxed,
        );
        if claim.is_err() {
            continue;
        }
        let job_ptr = shared
            .job
            .load(Ordering::Relaxed)
            .cast::<Job<'_>>()
            .cast_const();
        // SAFETY: we claimed the slot of epoch `ticket >> 2`, whose submitter stored a pointer
        // to a live `Job` before releasing the ticket (our Acquire claim sees it), and that
        // submitter stays inside `Pool::run` — keeping the `Job` and the closure it borrows
        // alive — until we publish `done` below.
        let job: Job<'_> = unsafe { *job_ptr };
        IN_JOB.set(true);
        if catch_unwind(AssertUnwindSafe(|| job(idx))).is_err() {
            shared.worker_panicked.store(true, Ordering::Relaxed);
        }
        IN_JOB.set(false);
        slot.done.store(ticket >> 2, Ordering::Release);
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
