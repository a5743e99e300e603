//! The server thread's table of connections: where frames for a
//! [`ClientId`] go.
//!
//! A process's connection has one call outstanding, so its replies go to a
//! one-deep [`ReplySlot`]. A driver's connection also receives frames it did
//! not ask for (the server's driver requests, kind 3) and may get one while
//! it waits for the reply to its own request, so its frames go to an
//! unbounded queue the driver thread reads and sorts by kind.
//!
//! An id is a slot index (low 32 bits) and that slot's generation (high 32
//! bits). Slots are reused, generations never within a run of 2^32
//! connections per slot, so a late frame or effect for a closed connection
//! is recognised as stale instead of reaching the slot's next owner.

use super::packet::Packet;
use super::wait::ReplySlot;
use crossbeam_channel::Sender;
use memsrv::ClientId;
use std::sync::Arc;

/// Where one connection's frames go.
pub enum Sink {
    /// A process: the one reply to its one outstanding call.
    Slot(Arc<ReplySlot>),
    /// A driver: every frame, in order. Dropping the sender is how the
    /// driver learns the connection closed.
    Queue(Sender<Packet>),
}

impl Sink {
    /// The peer is told the connection is closed.
    fn close(self) {
        match self {
            Sink::Slot(reply) => reply.close(),
            Sink::Queue(queue) => drop(queue),
        }
    }
}

struct Slot {
    generation: u32,
    reply: Option<Sink>,
}

#[derive(Default)]
pub struct Routes {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Open connections with a [`Sink::Queue`] (drivers).
    queues: usize,
}

fn split(id: ClientId) -> (usize, u32) {
    ((id.0 & 0xffff_ffff) as usize, (id.0 >> 32) as u32)
}

impl Routes {
    /// Open a connection whose frames go to `reply`; returns its new id.
    pub fn open(&mut self, reply: Sink) -> ClientId {
        if matches!(reply, Sink::Queue(_)) {
            self.queues += 1;
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 1,
                    reply: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.reply = Some(reply);
        ClientId((u64::from(slot.generation) << 32) | u64::from(index))
    }

    /// How many connections are open.
    pub fn open_count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether any driver connection is open.
    pub fn has_queues(&self) -> bool {
        self.queues > 0
    }

    /// Where the frames of a live connection go.
    pub fn get(&self, id: ClientId) -> Option<&Sink> {
        let (index, generation) = split(id);
        let slot = self.slots.get(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.reply.as_ref()
    }

    /// Close a connection (the peer's waiting call, if any, fails with
    /// `ENOTCONN`; a driver's queue disconnects). Returns whether it was
    /// open.
    pub fn close(&mut self, id: ClientId) -> bool {
        let (index, generation) = split(id);
        match self.slots.get_mut(index) {
            Some(slot) if slot.generation == generation && slot.reply.is_some() => {
                if let Some(reply) = slot.reply.take() {
                    if matches!(reply, Sink::Queue(_)) {
                        self.queues -= 1;
                    }
                    reply.close();
                }
                slot.generation = slot.generation.wrapping_add(1).max(1);
                self.free.push(index as u32);
                true
            }
            _ => false,
        }
    }
}

impl Drop for Routes {
    /// The server is going away: every waiting client is told.
    fn drop(&mut self) {
        for reply in self.slots.iter_mut().filter_map(|slot| slot.reply.take()) {
            reply.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slots_get_new_generations() {
        let mut routes = Routes::default();
        let tx = Arc::new(ReplySlot::default());
        let a = routes.open(Sink::Slot(tx.clone()));
        let b = routes.open(Sink::Slot(tx.clone()));
        assert_ne!(a, b);
        assert!(routes.get(a).is_some());
        assert!(routes.close(a));
        assert!(!routes.close(a));
        assert!(routes.get(a).is_none());
        let c = routes.open(Sink::Slot(tx));
        assert_eq!(c.0 & 0xffff_ffff, a.0 & 0xffff_ffff);
        assert_ne!(c, a);
        assert!(routes.get(a).is_none());
        assert!(routes.get(c).is_some());
        assert!(routes.get(ClientId(u64::MAX)).is_none());
        assert_eq!(routes.open_count(), 2);
    }

    #[test]
    fn closing_a_queue_disconnects_its_reader() {
        let mut routes = Routes::default();
        let (queue, frames) = crossbeam_channel::unbounded();
        let d = routes.open(Sink::Queue(queue));
        assert!(routes.has_queues());
        assert!(matches!(routes.get(d), Some(Sink::Queue(_))));
        assert!(routes.close(d));
        assert!(!routes.has_queues());
        assert!(frames.recv().is_err());
    }
}
