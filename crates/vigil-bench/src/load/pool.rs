//! Running residents on a bounded pool of OS threads (the device API is
//! blocking): once each, or through the day's timetable.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::resident::{Ctx, Resident};

/// Locks `m`, carrying on past a panicked holder: one resident's panic must
/// not stop the others from being counted.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on every resident, from `threads` threads.
pub(crate) fn for_each(
    threads: usize,
    residents: &[Mutex<Resident>],
    f: impl Fn(&mut Resident) + Sync,
) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, residents.len().max(1)) {
            s.spawn(|| {
                while let Some(r) = residents.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(&mut lock(r));
                }
            });
        }
    });
}

/// Builds `n` values from `threads` threads.
pub(crate) fn build<T: Send>(
    threads: usize,
    n: usize,
    f: impl Fn(usize) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    let out: Vec<Mutex<Option<Result<T, String>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = out.get(i) else { break };
                    *lock(slot) = Some(f(i));
                }
            });
        }
    });
    out.into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err("not built".into()))
        })
        .collect()
}

/// Steps due: (when, slot, resident), earliest first.
type Queue = BinaryHeap<Reverse<(Instant, u32, usize)>>;

/// The day's timetable: every resident's next slot at its scheduled
/// instant, shared by the worker threads.
struct Timetable {
    start: Instant,
    slot_len: Duration,
    /// Each resident's offset within a slot, as a fraction of it.
    phases: Vec<f64>,
    queue: Mutex<Queue>,
    /// Residents with steps left.
    remaining: AtomicUsize,
    wake: Condvar,
}

impl Timetable {
    /// Every resident's first slot, the day starting now.
    fn new(residents: &[Mutex<Resident>], slots: u32, day: Duration) -> Timetable {
        let phases: Vec<f64> = residents.iter().map(|r| lock(r).plan.phase).collect();
        let mut t = Timetable {
            start: Instant::now(),
            slot_len: day / slots,
            phases,
            queue: Mutex::new(Queue::new()),
            remaining: AtomicUsize::new(residents.len()),
            wake: Condvar::new(),
        };
        let first: Queue = (0..residents.len())
            .map(|i| Reverse((t.due(0, i), 0, i)))
            .collect();
        t.queue = Mutex::new(first);
        t
    }

    fn due(&self, slot: u32, i: usize) -> Instant {
        self.start + self.slot_len.mul_f64(f64::from(slot) + self.phases[i])
    }

    /// Waits for the earliest step to fall due and takes it: (when it was
    /// due, resident); `None` once no resident has steps left.
    fn next(&self) -> Option<(Instant, usize)> {
        let mut q = lock(&self.queue);
        loop {
            if self.remaining.load(Ordering::Acquire) == 0 {
                return None;
            }
            let now = Instant::now();
            // Nothing queued while others still step: a step may come back.
            let wait = match q.peek() {
                Some(Reverse((at, _, _))) if *at <= now => {
                    let Some(Reverse((at, _, i))) = q.pop() else {
                        continue;
                    };
                    return Some((at, i));
                }
                Some(Reverse((at, _, _))) => *at - now,
                None => Duration::from_millis(50),
            };
            q = self
                .wake
                .wait_timeout(q, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Queues resident `i`'s `slot`.
    fn schedule(&self, slot: u32, i: usize) {
        lock(&self.queue).push(Reverse((self.due(slot, i), slot, i)));
        self.wake.notify_one();
    }

    /// Resident `i` has no steps left; the last one wakes every worker to
    /// leave.
    fn done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wake.notify_all();
        }
    }
}

/// The day: every resident's slots at their scheduled instants, from
/// `threads` threads, earliest due first.
pub(crate) fn run_day(residents: &[Mutex<Resident>], ctx: &Ctx<'_>, threads: usize, day: Duration) {
    let table = Timetable::new(residents, ctx.profile.syncs.max(1), day);
    let worker = || {
        while let Some((at, i)) = table.next() {
            ctx.stats.lag.push(at.elapsed());
            let mut r = lock(&residents[i]);
            let more = r.step(ctx);
            let slot = r.next_slot;
            drop(r);
            if more {
                table.schedule(slot, i);
            } else {
                table.done();
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, residents.len().max(1)) {
            s.spawn(worker);
        }
    });
}
