//! The live connections, by [`ClientId`].
//!
//! An id is a slot index (low 32 bits) and that slot's generation (high 32
//! bits). Slots are reused and each reuse bumps the generation, so a frame
//! or effect addressed to a connection that is gone never reaches its
//! successor in the same slot.

use memsrv::{ClientId, FrameBuf};
use nommu::sys::eventfd_ring;
use nommu::sys::socket::SeqPacket;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What other threads may do to a connection: hand it a reply to deliver
/// (a deferred answer produced by someone else's request) or cut it off.
/// Only the connection's own thread writes to its socket and channel.
pub struct Peer {
    pub id: ClientId,
    pub socket: SeqPacket,
    /// Wakes the connection's thread when it sleeps in `poll`.
    pub doorbell: OwnedFd,
    outbox: Mutex<Vec<FrameBuf>>,
    dropped: AtomicBool,
}

impl Peer {
    /// Queue a reply for the connection's thread to deliver.
    pub fn post(&self, frame: FrameBuf) {
        lock(&self.outbox).push(frame);
        eventfd_ring(self.doorbell.as_fd());
    }

    /// Take the queued replies (usually none).
    pub fn take_outbox(&self, into: &mut Vec<FrameBuf>) {
        let mut outbox = lock(&self.outbox);
        if !outbox.is_empty() {
            into.append(&mut outbox);
        }
    }

    /// Close the connection: its thread sees the hang-up and disconnects.
    pub fn cut(&self) {
        self.dropped.store(true, Ordering::Release);
        self.socket.shutdown();
        eventfd_ring(self.doorbell.as_fd());
    }

    pub fn is_cut(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole daemon with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Slot {
    generation: u32,
    peer: Option<Arc<Peer>>,
}

/// The table of connections.
pub struct Registry {
    slots: Mutex<Vec<Slot>>,
    limit: usize,
}

fn split(id: ClientId) -> (usize, u32) {
    ((id.0 & 0xffff_ffff) as usize, (id.0 >> 32) as u32)
}

impl Registry {
    /// A table of at most `limit` live connections.
    pub fn new(limit: usize) -> Self {
        Self {
            slots: Mutex::new(Vec::new()),
            limit,
        }
    }

    /// Give a new connection an id and record it; `None` when full.
    pub fn register(&self, socket: SeqPacket, doorbell: OwnedFd) -> Option<Arc<Peer>> {
        let mut slots = lock(&self.slots);
        let index = match slots.iter().position(|s| s.peer.is_none()) {
            Some(i) => i,
            None if slots.len() < self.limit => {
                slots.push(Slot::default());
                slots.len() - 1
            }
            None => return None,
        };
        let slot = &mut slots[index];
        slot.generation = slot.generation.wrapping_add(1).max(1);
        let id = ClientId((u64::from(slot.generation) << 32) | index as u64);
        let peer = Arc::new(Peer {
            id,
            socket,
            doorbell,
            outbox: Mutex::new(Vec::new()),
            dropped: AtomicBool::new(false),
        });
        slot.peer = Some(Arc::clone(&peer));
        Some(peer)
    }

    /// The live connection `id` names, if any.
    pub fn get(&self, id: ClientId) -> Option<Arc<Peer>> {
        let (index, generation) = split(id);
        let slots = lock(&self.slots);
        let slot = slots.get(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.peer.clone()
    }

    /// Forget `id` (its slot becomes reusable under a new generation).
    pub fn unregister(&self, id: ClientId) {
        let (index, generation) = split(id);
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get_mut(index) {
            if slot.generation == generation {
                slot.peer = None;
            }
        }
    }

    /// How many connections are live.
    pub fn len(&self) -> usize {
        lock(&self.slots)
            .iter()
            .filter(|s| s.peer.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nommu::sys::eventfd;

    fn pair() -> SeqPacket {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a live array of two ints for socketpair to fill.
        let ret = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(ret, 0);
        // SAFETY: both descriptors are fresh and owned once each here.
        unsafe {
            use std::os::fd::FromRawFd;
            drop(OwnedFd::from_raw_fd(fds[1]));
            SeqPacket::from_fd(OwnedFd::from_raw_fd(fds[0]))
        }
    }

    #[test]
    fn reused_slots_get_new_generations() {
        let registry = Registry::new(2);
        let a = registry.register(pair(), eventfd().unwrap()).unwrap().id;
        let b = registry.register(pair(), eventfd().unwrap()).unwrap().id;
        assert_ne!(a, b);
        assert!(registry.register(pair(), eventfd().unwrap()).is_none());
        registry.unregister(a);
        let c = registry.register(pair(), eventfd().unwrap()).unwrap().id;
        assert_ne!(a, c);
        assert_eq!(split(a).0, split(c).0);
        assert!(registry.get(a).is_none());
        assert!(registry.get(c).is_some());
        assert_eq!(registry.len(), 2);
    }
}
