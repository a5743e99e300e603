//! What a driver's connection may reach in the arena: the runs of backing
//! storage the server gave that driver (`AllocBacking`, spec §11, the
//! backing contract), for a home that confines its drivers' memory
//! accesses (the board's PMP), as [`MemoryServer::mapped_ranges`] does for
//! a process; and which connections share a process's address space
//! (spec §14.11's `CLONE_VM`), so such a home names a change to each. No
//! Linux function: a Linux driver runs in the kernel and reaches
//! everything, and an MMU's page tables are shared by the threads of an
//! `mm` by construction.

use crate::{ClientId, MemoryServer, PhysicalMemory};
use alloc::vec::Vec;
use protocol::PAGE_SIZE;

impl<M: PhysicalMemory> MemoryServer<M> {
    /// The backing runs of the driver on connection `client`, `[start,
    /// end)`, ascending, with touching ones joined (empty if `client` is
    /// not a live driver).
    pub fn backing_ranges(&self, client: ClientId, out: &mut Vec<(u64, u64)>) {
        out.clear();
        let Some(driver) = self.files.driver_of(client) else {
            return;
        };
        let runs = self.nommu.backing.runs.iter();
        for (&start, run) in runs.filter(|(_, run)| run.driver == driver && !run.orphan) {
            let end = start + run.pages * PAGE_SIZE;
            match out.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => out.push((start, end)),
            }
        }
    }

    /// The address space (`mm`) `client`'s process uses, `None` for a
    /// client with no process: connections with the same one have the
    /// same [`MemoryServer::mapped_ranges`] (`CLONE_VM` siblings).
    pub fn address_space_of(&self, client: ClientId) -> Option<u64> {
        let (_, process) = self.procs.caller(client).ok()?;
        Some(process.mm.0)
    }
}
