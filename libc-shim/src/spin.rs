//! Spin, then park: how one side of a request/reply pair waits for the
//! other, shared by the `memsrvd` channel page
//! ([`crate::transport::channel_page`]) and the threads home
//! (`hosted::threads::wait`).
//!
//! Waking a parked thread costs microseconds (tens of them on a virtual
//! machine whose other core went idle); a polled word well under one. So
//! a waiter polls for a short budget ([`spin_until`], [`spin_beside`])
//! before it parks. Spinning only pays while the peer runs on another
//! CPU: on the same CPU the peer cannot run until the spinner gives up. So
//! each side publishes the CPU it runs on, and a spinner that finds the
//! peer on its own CPU stops at once and parks, which lets the scheduler
//! place the peer elsewhere. With more spinners than spare CPUs they steal
//! time from the very peers they wait for, so a [`SpinGate`] bounds how
//! many spin at once.
//!
//! Parking uses one no-lost-wake-up handshake ([`park_unless`]): the
//! sleeper announces itself (an "asleep" or "waiting" flag), fences, looks
//! once more and only then sleeps; the waker publishes, fences, and wakes
//! only if it sees the announcement. Either the sleeper sees the news or
//! the waker sees the flag. Every park is bounded by its caller, so even a
//! bug here costs a delay, not a hang.

use core::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Polls between clock reads and looks at the peer's CPU (a clock read
/// costs about as much as a few dozen polls).
const POLLS_PER_ROUND: u32 = 32;

/// A published CPU number that says "not known".
pub const UNKNOWN_CPU: u32 = u32::MAX;

/// The CPU the calling thread runs on ([`UNKNOWN_CPU`] where the host
/// cannot tell).
pub fn current_cpu() -> u32 {
    crate::sys::current_cpu().unwrap_or(UNKNOWN_CPU)
}

/// Whether two published CPUs are known to be one and the same.
pub fn same_cpu(a: u32, b: u32) -> bool {
    a != UNKNOWN_CPU && a == b
}

/// How a spin ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spin {
    /// What we waited for is there.
    Ready,
    /// The budget ran out.
    Expired,
    /// The peer last ran on our CPU: it cannot run while we spin.
    SharedCpu(u32),
}

/// The one spin loop: poll `ready` in rounds for up to `budget`; after
/// each round `peer_here` may end the spin (the peer is on our CPU).
fn spin(
    budget: Duration,
    mut peer_here: impl FnMut() -> Option<u32>,
    mut ready: impl FnMut() -> bool,
) -> Spin {
    if budget.is_zero() {
        return if ready() { Spin::Ready } else { Spin::Expired };
    }
    let start = Instant::now();
    loop {
        for _ in 0..POLLS_PER_ROUND {
            if ready() {
                return Spin::Ready;
            }
            core::hint::spin_loop();
        }
        if let Some(cpu) = peer_here() {
            return Spin::SharedCpu(cpu);
        }
        if start.elapsed() >= budget {
            return if ready() { Spin::Ready } else { Spin::Expired };
        }
    }
}

/// Poll `ready` for up to `budget`; whether it became true. The caller has
/// already decided the peer is elsewhere (see [`same_cpu`]).
pub fn spin_until(budget: Duration, ready: impl FnMut() -> bool) -> bool {
    spin(budget, || None, ready) == Spin::Ready
}

/// Poll `ready` for up to `budget` beside a peer in another process:
/// publish our CPU in `mine` each round and stop as soon as the peer's
/// published CPU (`theirs`) is ours.
pub fn spin_beside(
    budget: Duration,
    mine: &AtomicU32,
    theirs: &AtomicU32,
    ready: impl FnMut() -> bool,
) -> Spin {
    mine.store(current_cpu(), Ordering::Relaxed);
    let peer_here = || {
        let cpu = current_cpu();
        mine.store(cpu, Ordering::Relaxed);
        same_cpu(cpu, theirs.load(Ordering::Relaxed)).then_some(cpu)
    };
    spin(budget, peer_here, ready)
}

/// The sleeper's half of the handshake: `announce` (set the flag the
/// waker reads), a full fence, one more look at `ready`, and `sleep` only
/// if it is still false. Returns whether `ready` was seen (then nothing
/// slept; the caller clears its flag).
pub fn park_unless(
    announce: impl FnOnce(),
    mut ready: impl FnMut() -> bool,
    sleep: impl FnOnce(),
) -> bool {
    announce();
    // Dekker: our flag store is ordered before our read of the news; the
    // waker's news store before its read of the flag.
    fence(Ordering::SeqCst);
    if ready() {
        return true;
    }
    sleep();
    false
}

/// How long a sleeping peer takes to answer once rung (its wake-up and
/// its work), learnt as calls go: the waiter that rang spins that long,
/// so the peer's wake-up is the only one — a waiter that parked sooner
/// would need waking too. When answers take longer than a spin is worth
/// (a loaded machine, a peer on a busy CPU), the budget falls back to the
/// short one; a parked waiter's measure (two wake-ups) brings it back once
/// the machine is quiet.
#[derive(Debug, Default)]
pub struct WakeEstimate {
    /// Moving average of rung-to-answered times, in ns (0: none yet).
    ns: AtomicU32,
}

impl WakeEstimate {
    pub const fn new() -> Self {
        Self {
            ns: AtomicU32::new(0),
        }
    }

    /// How long to spin after ringing: half as long again as answers
    /// have taken, within `[short, long]`; `short` if they take longer
    /// than `long`, `long` before anything was learnt.
    pub fn budget(&self, short: Duration, long: Duration) -> Duration {
        let ns = self.ns.load(Ordering::Relaxed);
        let estimate = Duration::from_nanos(u64::from(ns));
        if ns == 0 {
            long
        } else if estimate > long {
            short
        } else {
            (estimate * 3 / 2).clamp(short, long)
        }
    }

    /// One answer took `took` after the ring.
    pub fn learn(&self, took: Duration) {
        let took = u32::try_from(took.as_nanos()).unwrap_or(u32::MAX);
        let old = self.ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            took
        } else {
            // 7/8 of the old plus 1/8 of the new, in u64 so nothing wraps.
            ((u64::from(old) * 7 + u64::from(took)) / 8) as u32
        };
        self.ns.store(new.max(1), Ordering::Relaxed);
    }
}

/// A bound on how many waiters spin at once.
#[derive(Debug)]
pub struct SpinGate {
    spinning: AtomicUsize,
    limit: usize,
}

/// Leave to spin from a [`SpinGate`], given back on drop.
#[derive(Debug)]
pub struct SpinPermit<'a> {
    gate: &'a SpinGate,
}

impl SpinGate {
    /// A gate that lets at most `limit` spin at once (0: nobody spins).
    pub const fn new(limit: usize) -> Self {
        Self {
            spinning: AtomicUsize::new(0),
            limit,
        }
    }

    /// How many CPUs this machine has besides the one a server thread
    /// takes (0 on a single CPU).
    pub fn spare_cpus() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
    }

    /// One spinner per CPU not taken by the server thread.
    pub fn for_this_machine() -> Self {
        Self::new(Self::spare_cpus())
    }

    /// A permit, if fewer than the limit are spinning now.
    pub fn try_take(&self) -> Option<SpinPermit<'_>> {
        self.spinning
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| SpinPermit { gate: self })
    }

    /// [`spin_until`] if a permit is free; `false` at once otherwise.
    pub fn spin_until(&self, budget: Duration, ready: impl FnMut() -> bool) -> bool {
        self.try_take()
            .is_some_and(|_permit| spin_until(budget, ready))
    }

    /// How many hold a permit now.
    pub fn spinning(&self) -> usize {
        self.spinning.load(Ordering::Relaxed)
    }
}

impl Drop for SpinPermit<'_> {
    fn drop(&mut self) {
        self.gate.spinning.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    #[test]
    fn spin_until_sees_readiness_and_gives_up_after_the_budget() {
        assert!(spin_until(Duration::from_micros(5), || true));
        assert!(!spin_until(Duration::from_micros(5), || false));
        assert!(!spin_until(Duration::ZERO, || false));
        assert!(spin_until(Duration::ZERO, || true));
    }

    #[test]
    fn a_spin_beside_a_peer_on_our_cpu_stops_at_once() {
        let (mine, theirs) = (AtomicU32::new(UNKNOWN_CPU), AtomicU32::new(UNKNOWN_CPU));
        let long = Duration::from_secs(60);
        let here = current_cpu();
        if here != UNKNOWN_CPU {
            theirs.store(here, Ordering::Relaxed);
            let ended = spin_beside(long, &mine, &theirs, || {
                // The peer follows us if we migrate, so the test does not
                // depend on the scheduler.
                theirs.store(current_cpu(), Ordering::Relaxed);
                false
            });
            assert!(matches!(ended, Spin::SharedCpu(_)), "{ended:?}");
            assert_ne!(mine.load(Ordering::Relaxed), UNKNOWN_CPU);
        }
        let ended = spin_beside(
            Duration::from_micros(5),
            &mine,
            &AtomicU32::new(UNKNOWN_CPU),
            || false,
        );
        assert_eq!(ended, Spin::Expired);
        assert_eq!(
            spin_beside(long, &mine, &AtomicU32::new(UNKNOWN_CPU), || true),
            Spin::Ready
        );
    }

    #[test]
    fn cpus_are_compared_only_when_known() {
        assert!(same_cpu(1, 1));
        assert!(!same_cpu(1, 0));
        assert!(!same_cpu(UNKNOWN_CPU, UNKNOWN_CPU));
    }

    #[test]
    fn park_unless_sleeps_only_when_nothing_came() {
        let (announced, slept) = (Cell::new(false), Cell::new(false));
        let seen = park_unless(|| announced.set(true), || true, || slept.set(true));
        assert!(seen && announced.get() && !slept.get());
        let seen = park_unless(|| {}, || false, || slept.set(true));
        assert!(!seen && slept.get());
    }

    #[test]
    fn the_spin_after_a_ring_follows_how_long_answers_take() {
        let (short, long) = (Duration::from_micros(20), Duration::from_micros(200));
        let estimate = WakeEstimate::new();
        assert_eq!(estimate.budget(short, long), long, "nothing learnt yet");
        estimate.learn(Duration::from_micros(60));
        assert_eq!(estimate.budget(short, long), Duration::from_micros(90));
        estimate.learn(Duration::from_micros(2));
        let fast = estimate.budget(short, long);
        assert!(
            fast < Duration::from_micros(90) && fast >= short,
            "{fast:?}"
        );
        for _ in 0..64 {
            estimate.learn(Duration::from_millis(3));
        }
        assert_eq!(estimate.budget(short, long), short, "not worth a spin");
        for _ in 0..64 {
            estimate.learn(Duration::from_micros(1));
        }
        assert_eq!(estimate.budget(short, long), short, "never below the floor");
    }

    #[test]
    fn permits_are_bounded_and_returned() {
        let gate = SpinGate::new(2);
        let a = gate.try_take().unwrap();
        let _b = gate.try_take().unwrap();
        assert!(gate.try_take().is_none());
        assert!(!gate.spin_until(Duration::from_micros(5), || true));
        drop(a);
        assert!(gate.spin_until(Duration::from_micros(5), || true));
        assert_eq!(gate.spinning(), 1);
        assert!(!SpinGate::new(0).spin_until(Duration::from_micros(5), || true));
    }
}
