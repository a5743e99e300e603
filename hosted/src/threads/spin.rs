//! Receive with a short spin before blocking.
//!
//! Waking a parked thread costs 4–10 µs on the machines this runs on, a
//! polled queue 0.1–0.7 µs; an mmap round trip is well under that. So both
//! ends poll their queue for a few microseconds before parking, which keeps
//! the hot path free of wake-ups without burning a core while idle.
//!
//! Spinning only pays while the peer has a core to answer on: with more
//! waiting clients than cores, spinners steal the server's time. A
//! [`SpinGate`] therefore lets only as many clients spin at once as there
//! are cores besides the server's; the others block at once.

use crossbeam_channel::{Receiver, RecvError, TryRecvError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many clients may spin at the same time.
#[derive(Debug)]
pub struct SpinGate {
    spinning: AtomicUsize,
    limit: usize,
}

impl SpinGate {
    /// A gate for `limit` concurrent spinners.
    pub fn new(limit: usize) -> Self {
        Self {
            spinning: AtomicUsize::new(0),
            limit,
        }
    }

    /// One spinner per core not taken by the server thread.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores.saturating_sub(1))
    }

    /// Receive from `rx`, spinning for up to `budget` if a spin slot is
    /// free, else blocking at once.
    pub fn recv<T>(&self, rx: &Receiver<T>, budget: Duration) -> Result<T, RecvError> {
        let taken = self.spinning.fetch_add(1, Ordering::Relaxed);
        let result = if taken < self.limit {
            recv_spinning(rx, budget)
        } else {
            rx.recv()
        };
        self.spinning.fetch_sub(1, Ordering::Relaxed);
        result
    }
}

/// Polls between clock reads: a clock read costs about as much as a
/// few dozen polls, so it is amortised.
const POLLS_PER_CLOCK_READ: u32 = 32;

/// Receive from `rx`, polling for up to `budget` before blocking.
pub fn recv_spinning<T>(rx: &Receiver<T>, budget: Duration) -> Result<T, RecvError> {
    if !budget.is_zero() {
        let start = Instant::now();
        loop {
            for _ in 0..POLLS_PER_CLOCK_READ {
                match rx.try_recv() {
                    Ok(value) => return Ok(value),
                    Err(TryRecvError::Disconnected) => return Err(RecvError),
                    Err(TryRecvError::Empty) => std::hint::spin_loop(),
                }
            }
            if start.elapsed() >= budget {
                break;
            }
        }
    }
    rx.recv()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    #[test]
    fn returns_queued_values_blocks_after_the_budget_and_sees_closure() {
        let (tx, rx) = bounded(1);
        tx.send(5).unwrap();
        assert_eq!(recv_spinning(&rx, Duration::from_micros(5)), Ok(5));
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(6).unwrap();
        });
        assert_eq!(recv_spinning(&rx, Duration::from_micros(5)), Ok(6));
        sender.join().unwrap();
        assert_eq!(recv_spinning(&rx, Duration::from_micros(5)), Err(RecvError));
        assert_eq!(recv_spinning(&rx, Duration::ZERO), Err(RecvError));
    }

    #[test]
    fn a_closed_gate_blocks_and_an_open_one_spins() {
        let (tx, rx) = bounded(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(SpinGate::new(0).recv(&rx, Duration::from_micros(5)), Ok(1));
        let gate = SpinGate::new(1);
        assert_eq!(gate.recv(&rx, Duration::from_micros(5)), Ok(2));
        assert_eq!(gate.spinning.load(Ordering::Relaxed), 0);
    }
}
