//! How the two ends wait for each other: poll briefly, then park.
//!
//! Waking a parked thread costs 4–10 µs on the machines this runs on, a
//! polled flag well under 1 µs, and an mmap round trip is shorter than a
//! wake-up. So each side polls for a short budget before parking. Parking
//! goes straight to `thread::park` (a futex), never through a `yield`:
//! with other processes on the machine, one `sched_yield` can hand the core
//! away for a whole time slice.
//!
//! Spinning only pays while the peer runs on another core. The scheduler
//! likes to put a woken thread on its waker's core, and other processes may
//! hold the second one; then a spinner only delays the peer it waits for.
//! So each side publishes the core it last ran on and does not spin when
//! the peer's core is its own (the rule adaptive mutexes follow). The
//! budget itself stays fixed: shrinking it after a failed spin was tried
//! and measured worse, because on a virtual machine waking a parked peer
//! whose core went idle costs tens of µs, so one miss cascaded into a run
//! of parks.
//!
//! Both wake-ups use the same no-lost-wake-up handshake
//! ([`nommu::spin::park_unless`]): the sleeper sets its "asleep" flag,
//! fences, and looks once more before parking; the waker publishes,
//! fences, and unparks only if the flag was set. Parks are also bounded
//! ([`PARK_SLICE`]), so even a bug here would cost a delay, not a hang.
//! The spin itself, the CPU rule and the [`SpinGate`] are the shim's
//! ([`nommu::spin`]), shared with the `memsrvd` channel page.

use super::packet::Packet;
use nommu::spin::park_unless;
use protocol::Errno;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::Duration;

/// Longest single park; the sleeper then looks again.
const PARK_SLICE: Duration = Duration::from_millis(50);

pub use nommu::spin::{current_cpu, same_cpu, spin_until, SpinGate};

/// The server thread's doorbell: clients ring it after queueing a message,
/// and it unparks the server only if the server said it was going to sleep.
#[derive(Debug, Default)]
pub struct Doorbell {
    asleep: AtomicBool,
    server: OnceLock<Thread>,
    /// The core the server last ran on, on a line of its own: clients
    /// read it on every call, the server writes it rarely.
    server_cpu: Padded<AtomicU32>,
}

/// A value alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded<T>(T);

impl Doorbell {
    /// Name the thread to wake (once, when it is spawned).
    pub fn set_server(&self, thread: Thread) {
        let _ = self.server.set(thread);
    }

    /// Server side: publish the core it runs on.
    pub fn set_server_cpu(&self, cpu: u32) {
        // Stored only on change: a store would pull the line from every
        // client that reads it.
        if self.server_cpu.0.load(Ordering::Relaxed) != cpu {
            self.server_cpu.0.store(cpu, Ordering::Relaxed);
        }
    }

    /// The core the server last ran on.
    pub fn server_cpu(&self) -> u32 {
        self.server_cpu.0.load(Ordering::Relaxed)
    }

    /// After queueing a message: wake the server if it sleeps.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        // Look before claiming: a swap would take the line exclusive on
        // every call, even while the server spins.
        if self.asleep.load(Ordering::SeqCst) && self.asleep.swap(false, Ordering::SeqCst) {
            if let Some(server) = self.server.get() {
                server.unpark();
            }
        }
    }

    /// Server side: park unless `ready` turns true once "asleep" is
    /// announced.
    pub fn sleep_unless(&self, ready: impl FnMut() -> bool) {
        self.sleep_unless_for(PARK_SLICE, ready);
    }

    /// As [`Doorbell::sleep_unless`], parking at most `limit` (a server
    /// with a clock to keep wakes on time without a message).
    pub fn sleep_unless_for(&self, limit: Duration, ready: impl FnMut() -> bool) {
        park_unless(
            || self.asleep.store(true, Ordering::SeqCst),
            ready,
            || std::thread::park_timeout(limit.min(PARK_SLICE)),
        );
        self.asleep.store(false, Ordering::Relaxed);
    }
}

/// One connection's reply: a single slot, because a connection has one
/// call outstanding at a time.
#[derive(Debug, Default)]
pub struct ReplySlot {
    full: AtomicBool,
    closed: AtomicBool,
    packet: Mutex<Option<Packet>>,
    waiting: AtomicBool,
    waiter: Mutex<Option<Thread>>,
    /// The core the client last waited on.
    client_cpu: AtomicU32,
}

impl ReplySlot {
    /// Server side: hand over a reply. `Err` if the previous one was never
    /// taken (the client is not reading its replies).
    pub fn deliver(&self, packet: Packet) -> Result<(), Packet> {
        {
            let mut slot = self.packet.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_some() {
                return Err(packet);
            }
            *slot = Some(packet);
        }
        self.full.store(true, Ordering::Release);
        self.wake();
        Ok(())
    }

    /// Server side: the connection is closed; the waiting call fails.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) && self.waiting.swap(false, Ordering::SeqCst) {
            let waiter = self.waiter.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(thread) = waiter.as_ref() {
                thread.unpark();
            }
        }
    }

    /// Client side: publish the core it waits on.
    pub fn set_client_cpu(&self, cpu: u32) {
        if self.client_cpu.load(Ordering::Relaxed) != cpu {
            self.client_cpu.store(cpu, Ordering::Relaxed);
        }
    }

    /// The core the client last waited on.
    pub fn client_cpu(&self) -> u32 {
        self.client_cpu.load(Ordering::Relaxed)
    }

    fn ready(&self) -> bool {
        self.full.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire)
    }

    /// Client side: wait for the reply, polling for `budget` if `may_spin`
    /// and the gate allow, then parking. `ENOTCONN` once the server closed
    /// the slot.
    pub fn take(&self, gate: &SpinGate, budget: Duration, may_spin: bool) -> Result<Packet, Errno> {
        if !(may_spin && gate.spin_until(budget, || self.ready())) {
            *self.waiter.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(std::thread::current());
            while !self.ready() {
                park_unless(
                    || self.waiting.store(true, Ordering::SeqCst),
                    || self.ready(),
                    || std::thread::park_timeout(PARK_SLICE),
                );
            }
            self.waiting.store(false, Ordering::Relaxed);
        }
        if self.full.load(Ordering::Acquire) {
            let packet = self
                .packet
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            self.full.store(false, Ordering::Relaxed);
            if let Some(packet) = packet {
                return Ok(packet);
            }
        }
        Err(Errno::ENOTCONN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_parked_client_gets_its_reply_and_sees_closure() {
        let slot = Arc::new(ReplySlot::default());
        let gate = SpinGate::new(0);
        let server = Arc::clone(&slot);
        let replier = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            assert!(server.deliver(Packet::copy_from(b"reply").unwrap()).is_ok());
        });
        let packet = slot.take(&gate, Duration::ZERO, true).unwrap();
        assert_eq!(packet.as_slice(), b"reply");
        replier.join().unwrap();
        assert!(slot.deliver(Packet::copy_from(b"1").unwrap()).is_ok());
        assert!(slot.deliver(Packet::copy_from(b"2").unwrap()).is_err());
        assert_eq!(
            slot.take(&gate, Duration::ZERO, true).unwrap().as_slice(),
            b"1"
        );
        slot.close();
        assert_eq!(
            slot.take(&gate, Duration::ZERO, true).unwrap_err(),
            Errno::ENOTCONN
        );
    }

    #[test]
    fn the_doorbell_wakes_a_sleeping_server() {
        let bell = Arc::new(Doorbell::default());
        let flag = Arc::new(AtomicBool::new(false));
        let (b, f) = (Arc::clone(&bell), Arc::clone(&flag));
        let server = std::thread::spawn(move || {
            let start = Instant::now();
            while !f.load(Ordering::Acquire) {
                b.sleep_unless(|| f.load(Ordering::Acquire));
            }
            start.elapsed()
        });
        bell.set_server(server.thread().clone());
        std::thread::sleep(Duration::from_millis(10));
        flag.store(true, Ordering::Release);
        bell.ring();
        assert!(server.join().unwrap() < Duration::from_secs(5));
    }
}
