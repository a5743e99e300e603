//! The invariant checker (tests run it after every step): page ownership,
//! counters, region/VMA consistency, address-space users, tickets and
//! connections.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;

use crate::files::Files;
use crate::mm::MmId;
use crate::nommu::Nommu;
use crate::pending::Pending;
use crate::process::{ProcState, ProcessTable};
use crate::region::RegionId;
use crate::vm_flags::is_copy;
use protocol::PAGE_SIZE;

pub fn check(
    vm: &Nommu,
    procs: &ProcessTable,
    _files: &Files,
    _pending: &Pending,
) -> Result<(), String> {
    check_pages(vm)?;
    check_regions_and_vmas(vm)?;
    check_processes(vm, procs)
}

/// Every arena page is free or owned by exactly one copy region's
/// `[start, top)`; the counters agree.
fn check_pages(vm: &Nommu) -> Result<(), String> {
    vm.pages.check()?;
    let total = vm.pages.total_pages();
    let mut owner = vec![0u8; total as usize];
    let mut free = 0u64;
    for (first, order) in vm.pages.free_blocks() {
        for p in first..first + (1 << order) {
            owner[p as usize] += 1;
        }
        free += 1 << order;
    }
    let mut copy_pages = 0u64;
    for (id, r) in vm.regions.iter_ordered() {
        if !is_copy(r.flags) {
            continue;
        }
        if !vm.in_arena(r.start, r.top) || r.start % PAGE_SIZE != 0 || r.top % PAGE_SIZE != 0 {
            return Err(format!(
                "copy region {id:?} [{:#x}, {:#x}) misplaced",
                r.start, r.top
            ));
        }
        let first = vm.page_of(r.start);
        let count = (r.top - r.start) / PAGE_SIZE;
        for p in u64::from(first)..u64::from(first) + count {
            let slot = &mut owner[p as usize];
            if *slot != 0 {
                return Err(format!(
                    "page {p} of region {id:?} is also free or owned elsewhere"
                ));
            }
            *slot = 1;
        }
        copy_pages += count;
    }
    if let Some(p) = owner.iter().position(|&o| o != 1) {
        return Err(format!("page {p} is owned {} times", owner[p]));
    }
    if free != vm.pages.free_pages() || free + copy_pages != total {
        return Err(format!(
            "free {free} (counter {}) + owned {copy_pages} != total {total}",
            vm.pages.free_pages()
        ));
    }
    if copy_pages != vm.mmap_copy_pages {
        return Err(format!(
            "MmapCopy {} but copy regions hold {copy_pages}",
            vm.mmap_copy_pages
        ));
    }
    Ok(())
}

/// Regions are well formed; every VMA lies inside its region; usage counts
/// the VMAs; anonymous regions have exactly one user.
fn check_regions_and_vmas(vm: &Nommu) -> Result<(), String> {
    vm.regions.check_index()?;
    let mut uses: BTreeMap<RegionId, u32> = BTreeMap::new();
    for (mm_id, mm) in &vm.mms {
        mm.check_lengths()?;
        if mm.map_count() > vm.tunables.max_map_count {
            return Err(format!("{mm_id:?} holds {} mappings", mm.map_count()));
        }
        for (key, vma) in mm.iter() {
            let r = vm
                .regions
                .get(vma.region)
                .ok_or_else(|| format!("{mm_id:?} VMA {key:?} names a missing region"))?;
            if key.start < r.start || key.end > r.end {
                return Err(format!(
                    "VMA {key:?} outside its region [{:#x}, {:#x})",
                    r.start, r.end
                ));
            }
            // An anonymous mapping starts where its private region does
            // (its end may fall short once mremap can shrink it).
            if vma.backing.is_none() && key.start != r.start {
                return Err(format!("anonymous VMA {key:?} does not start its region"));
            }
            *uses.entry(vma.region).or_insert(0) += 1;
        }
    }
    for (id, r) in vm.regions.iter_ordered() {
        if !(r.start < r.end && r.end <= r.top) {
            return Err(format!(
                "region {id:?} has start {:#x} end {:#x} top {:#x}",
                r.start, r.end, r.top
            ));
        }
        let used = uses.get(&id).copied().unwrap_or(0);
        if r.usage != used || used == 0 {
            return Err(format!("region {id:?} usage {} but {used} VMAs", r.usage));
        }
        if r.backing.is_none() && r.usage != 1 {
            return Err(format!("anonymous region {id:?} has usage {}", r.usage));
        }
    }
    if uses.len() != vm.regions.len() {
        return Err("a VMA names a region outside the registry".into());
    }
    Ok(())
}

/// Address-space users match the processes; tickets, pending children and
/// connections point at each other both ways.
fn check_processes(vm: &Nommu, procs: &ProcessTable) -> Result<(), String> {
    let mut users: BTreeMap<MmId, u32> = BTreeMap::new();
    for (&pid, p) in &procs.procs {
        *users.entry(p.mm).or_insert(0) += 1;
        if !vm.mms.contains_key(&p.mm) {
            return Err(format!("process {pid} uses a missing address space"));
        }
        if let ProcState::Pending { ticket, parent } = p.state {
            if procs.tickets.get(&ticket) != Some(&pid) {
                return Err(format!("pending process {pid} has no ticket"));
            }
            let listed = procs
                .procs
                .get(&parent)
                .is_some_and(|pp| pp.pending_children.contains(&ticket));
            if !listed {
                return Err(format!("pending process {pid} is not its parent's"));
            }
            if !p.connections.is_empty() {
                return Err(format!("pending process {pid} has connections"));
            }
        } else if p.connections.is_empty() {
            return Err(format!("live process {pid} has no connection"));
        }
        for t in &p.pending_children {
            let child = procs.tickets.get(t).and_then(|c| procs.procs.get(c));
            match child.map(|c| c.state) {
                Some(ProcState::Pending { parent, .. }) if parent == pid => {}
                _ => return Err(format!("process {pid} lists a dangling ticket")),
            }
        }
        for c in &p.connections {
            if procs.conns.get(c).and_then(|c| c.pid) != Some(pid) {
                return Err(format!(
                    "process {pid} lists connection {c:?} not bound to it"
                ));
            }
        }
    }
    for (&ticket, &pid) in &procs.tickets {
        match procs.procs.get(&pid).map(|p| p.state) {
            Some(ProcState::Pending { ticket: t, .. }) if t == ticket => {}
            _ => return Err(format!("ticket for {pid} dangles")),
        }
    }
    for (client, conn) in &procs.conns {
        if let Some(pid) = conn.pid {
            if !procs
                .procs
                .get(&pid)
                .is_some_and(|p| p.connections.contains(client))
            {
                return Err(format!("{client:?} bound to {pid}, which does not list it"));
            }
        }
    }
    for (id, mm) in &vm.mms {
        let n = users.get(id).copied().unwrap_or(0);
        if mm.users != n || n == 0 {
            return Err(format!("{id:?} has {} users but {n} processes", mm.users));
        }
    }
    Ok(())
}
