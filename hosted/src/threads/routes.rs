//! The server thread's table of connections: which reply slot a
//! [`ClientId`] names.
//!
//! An id is a slot index (low 32 bits) and that slot's generation (high 32
//! bits). Slots are reused, generations never within a run of 2^32
//! connections per slot, so a late frame or effect for a closed connection
//! is recognised as stale instead of reaching the slot's next owner.

use super::wait::ReplySlot;
use memsrv::ClientId;
use std::sync::Arc;

struct Slot {
    generation: u32,
    reply: Option<Arc<ReplySlot>>,
}

#[derive(Default)]
pub struct Routes {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

fn split(id: ClientId) -> (usize, u32) {
    ((id.0 & 0xffff_ffff) as usize, (id.0 >> 32) as u32)
}

impl Routes {
    /// Open a connection replying into `reply`; returns its new id.
    pub fn open(&mut self, reply: Arc<ReplySlot>) -> ClientId {
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

    /// The reply slot of a live connection.
    pub fn get(&self, id: ClientId) -> Option<&ReplySlot> {
        let (index, generation) = split(id);
        let slot = self.slots.get(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.reply.as_deref()
    }

    /// Close a connection (the peer's waiting call, if any, fails with
    /// `ENOTCONN`). Returns whether it was open.
    pub fn close(&mut self, id: ClientId) -> bool {
        let (index, generation) = split(id);
        match self.slots.get_mut(index) {
            Some(slot) if slot.generation == generation && slot.reply.is_some() => {
                if let Some(reply) = slot.reply.take() {
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
        let a = routes.open(tx.clone());
        let b = routes.open(tx.clone());
        assert_ne!(a, b);
        assert!(routes.get(a).is_some());
        assert!(routes.close(a));
        assert!(!routes.close(a));
        assert!(routes.get(a).is_none());
        let c = routes.open(tx);
        assert_eq!(c.0 & 0xffff_ffff, a.0 & 0xffff_ffff);
        assert_ne!(c, a);
        assert!(routes.get(a).is_none());
        assert!(routes.get(c).is_some());
        assert!(routes.get(ClientId(u64::MAX)).is_none());
    }
}
