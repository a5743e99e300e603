//! The invariant checker (tests run it after every step): page ownership
//! (free, copies, copies being filled, driver storage, reserves — each
//! page exactly once), counters, region/VMA consistency and the per-object index,
//! object reference counts, descriptor tables, pending operations and
//! their driver calls, drivers and mounts, address-space users, tickets
//! and connections.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;

use crate::files::Files;
use crate::mm::MmId;
use crate::nommu::{Nommu, ObjectMaps};
use crate::ops::{OpKind, Operations};
use crate::process::{ProcState, ProcessTable};
use crate::region::{ObjectKey, RegionId};
use crate::shm::SHM_DRIVER;
use crate::vm_flags::{is_copy, is_shareable};
use protocol::PAGE_SIZE;

pub fn check(
    nommu: &Nommu,
    procs: &ProcessTable,
    files: &Files,
    ops: &Operations,
) -> Result<(), String> {
    check_pages(nommu, ops)?;
    crate::charge::check(nommu, ops)?;
    check_regions_and_vmas(nommu, ops)?;
    check_object_index(nommu)?;
    check_objects(nommu, files, ops)?;
    check_descriptors(procs, files)?;
    check_operations(files, ops)?;
    check_drivers(nommu, files)?;
    check_processes(nommu, procs)?;
    check_shm(nommu)
}

/// Every arena page is free, or owned exactly once: by a copy region's
/// `[start, top)`, by a copy still being filled, or by a driver's run.
/// The counters agree.
fn check_pages(nommu: &Nommu, ops: &Operations) -> Result<(), String> {
    nommu.pages.check()?;
    let total = nommu.pages.total_pages();
    let mut owner = vec![0u8; total as usize];
    let mut free = 0u64;
    for (first, order) in nommu.pages.free_blocks() {
        for p in first..first + (1 << order) {
            owner[p as usize] += 1;
        }
        free += 1 << order;
    }
    let mut claim = |what: String, start: u64, top: u64| -> Result<u64, String> {
        if !nommu.in_arena(start, top)
            || !start.is_multiple_of(PAGE_SIZE)
            || !top.is_multiple_of(PAGE_SIZE)
        {
            return Err(format!("{what} [{start:#x}, {top:#x}) misplaced"));
        }
        let first = u64::from(nommu.page_of(start));
        let count = (top - start) / PAGE_SIZE;
        for p in first..first + count {
            let slot = &mut owner[p as usize];
            if *slot != 0 {
                return Err(format!(
                    "page {p} of {what} is also free or owned elsewhere"
                ));
            }
            *slot = 1;
        }
        Ok(count)
    };
    let mut copy_pages = 0u64;
    for (id, r) in nommu.regions.iter_ordered() {
        if is_copy(r.flags) {
            copy_pages += claim(format!("copy region {id:?}"), r.start, r.top)?;
        }
    }
    for (id, op) in &ops.live {
        if let OpKind::Mmap(m) = &op.kind {
            if let Some((start, kept, _)) = m.copy {
                copy_pages += claim(format!("copy of {id:?}"), start, start + kept * PAGE_SIZE)?;
            }
        }
    }
    let mut windows = 0u64;
    for (client, &(start, _)) in &ops.windows {
        let top = start + protocol::BULK_WINDOW;
        windows += claim(format!("bulk window of {client:?}"), start, top)?;
    }
    let mut stages = 0u64;
    let live_stages = ops.live.values().filter_map(|op| match &op.kind {
        OpKind::Lease(l) => l.stage,
        _ => None,
    });
    for stage in live_stages.chain(ops.orphan_stages.values().flatten().copied()) {
        let top = stage.addr + stage.pages * PAGE_SIZE;
        stages += claim(
            format!("staging buffer at {:#x}", stage.addr),
            stage.addr,
            top,
        )?;
    }
    let mut shm_pages = 0u64;
    for (id, seg) in &nommu.shm.segs {
        shm_pages += claim(
            format!("shm segment {id}"),
            seg.addr,
            seg.addr + seg.pages * PAGE_SIZE,
        )?;
    }
    if shm_pages != nommu.shm.pages {
        return Err(format!(
            "shm_tot {} but segments hold {shm_pages}",
            nommu.shm.pages
        ));
    }
    let mut backing = 0u64;
    for (&start, run) in &nommu.backing.runs {
        if run.pages == 0 {
            return Err(format!("empty run at {start:#x}"));
        }
        backing += claim(
            format!("run of {:?}", run.driver),
            start,
            start + run.pages * PAGE_SIZE,
        )?;
    }
    let mut reserved = 0u64;
    for (first, pages) in nommu.reserves.held_runs() {
        let start = nommu.addr_of(first);
        let top = start + u64::from(pages) * PAGE_SIZE;
        reserved += claim(format!("reserve run at page {first}"), start, top)?;
    }
    if reserved != nommu.reserves.held_pages() {
        return Err(format!(
            "reserves count {} pages but hold {reserved}",
            nommu.reserves.held_pages()
        ));
    }
    if let Some(p) = owner.iter().position(|&o| o != 1) {
        return Err(format!("page {p} is owned {} times", owner[p]));
    }
    if free != nommu.pages.free_pages()
        || free + copy_pages + backing + shm_pages + reserved + windows + stages != total
    {
        return Err(format!(
            "free {free} (counter {}) + copies {copy_pages} + runs {backing} + shm {shm_pages} \
             + reserved {reserved} + bulk windows {windows} + staging {stages} != total {total}",
            nommu.pages.free_pages()
        ));
    }
    if copy_pages != nommu.mmap_copy_pages {
        return Err(format!(
            "MmapCopy {} but copies hold {copy_pages}",
            nommu.mmap_copy_pages
        ));
    }
    if backing != nommu.backing.pages {
        return Err(format!(
            "Shmem {} but runs hold {backing}",
            nommu.backing.pages
        ));
    }
    Ok(())
}

/// Regions are well formed; every VMA lies inside its region and names the
/// same object; usage counts the VMAs and the operations holding one;
/// anonymous regions have exactly one user; direct regions own no pages
/// (inside the arena they lie in their driver's storage).
fn check_regions_and_vmas(nommu: &Nommu, ops: &Operations) -> Result<(), String> {
    nommu.regions.check_index()?;
    let mut uses: BTreeMap<RegionId, u32> = BTreeMap::new();
    for (mm_id, mm) in &nommu.mms {
        mm.check_lengths()?;
        if mm.map_count() > nommu.tunables.max_map_count {
            return Err(format!("{mm_id:?} holds {} mappings", mm.map_count()));
        }
        for (key, vma) in mm.iter() {
            let r = nommu
                .regions
                .get(vma.region)
                .ok_or_else(|| format!("{mm_id:?} VMA {key:?} names a missing region"))?;
            // A region cut inside a page by truncation (§7.5) is still
            // shared by whole pages (§3.2 counts `pages(end − start)`), so
            // a mapping of it may reach to the end of its last page.
            let reach = r
                .start
                .saturating_add(crate::nommu::page_align(r.end - r.start).unwrap_or(u64::MAX));
            if key.start < r.start || key.end > reach {
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
            let vkey = vma.backing.as_ref().map(|b| b.key);
            let rkey = r.backing.as_ref().map(|b| b.key);
            if vkey != rkey {
                return Err(format!("VMA {key:?} names {vkey:?}, its region {rkey:?}"));
            }
            if is_copy(r.flags) != is_copy(vma.flags) {
                return Err(format!(
                    "VMA {key:?} and its region disagree on being a copy"
                ));
            }
            *uses.entry(vma.region).or_insert(0) += 1;
        }
    }
    let mut held: BTreeMap<RegionId, u32> = BTreeMap::new();
    for op in ops.live.values() {
        if let OpKind::Mmap(m) = &op.kind {
            if let Some(id) = m.reuse {
                *held.entry(id).or_insert(0) += 1;
            }
        }
    }
    for (id, r) in nommu.regions.iter_ordered() {
        if !(r.start < r.end && r.end <= r.top) {
            return Err(format!(
                "region {id:?} has start {:#x} end {:#x} top {:#x}",
                r.start, r.end, r.top
            ));
        }
        let used = uses.get(&id).copied().unwrap_or(0);
        let holds = held.get(&id).copied().unwrap_or(0);
        if r.usage != used + holds || r.usage == 0 {
            return Err(format!(
                "region {id:?} usage {} but {used} VMAs and {holds} operations",
                r.usage
            ));
        }
        if r.backing.is_none() && (r.usage != 1 || !is_copy(r.flags)) {
            return Err(format!("anonymous region {id:?} shared or not a copy"));
        }
        if let Some(b) = r.backing.as_ref().filter(|b| b.key.driver == SHM_DRIVER) {
            let seg = i32::try_from(b.key.object)
                .ok()
                .and_then(|i| nommu.shm.segs.get(&i))
                .ok_or_else(|| format!("region {id:?} of a gone shm segment"))?;
            if is_copy(r.flags)
                || r.start != seg.addr
                || r.top != seg.addr + seg.pages * PAGE_SIZE
                || seg.region != Some(id)
            {
                return Err(format!("region {id:?} is not its shm segment's"));
            }
        } else if let (Some(b), false) = (&r.backing, is_copy(r.flags)) {
            let arena_end = nommu.base + nommu.arena_size;
            let outside = r.top <= nommu.base || r.start >= arena_end;
            let inside_run = nommu
                .backing
                .covers(r.start, r.end.max(r.top), |run| run.driver == b.key.driver);
            if !outside && !inside_run {
                return Err(format!(
                    "direct region {id:?} [{:#x}, {:#x}) is not in its driver's storage",
                    r.start, r.top
                ));
            }
        }
    }
    for id in held.keys() {
        if nommu.regions.get(*id).is_none() {
            return Err(format!("an operation holds missing region {id:?}"));
        }
    }
    Ok(())
}

/// The per-object index holds exactly the file regions and mappings.
fn check_object_index(nommu: &Nommu) -> Result<(), String> {
    let mut expect: BTreeMap<ObjectKey, ObjectMaps> = BTreeMap::new();
    for (id, r) in nommu.regions.iter_ordered() {
        if let Some(b) = r.backing.as_ref().filter(|b| b.key.driver != SHM_DRIVER) {
            let maps = expect.entry(b.key).or_default();
            maps.regions.insert(id);
            if is_shareable(r.flags) {
                maps.shareable.insert((r.pgoff, id));
            }
        }
    }
    for (mm_id, mm) in &nommu.mms {
        for (vk, vma) in mm.iter() {
            if let Some(b) = vma.backing.as_ref().filter(|b| b.key.driver != SHM_DRIVER) {
                expect.entry(b.key).or_default().vmas.insert((*mm_id, *vk));
            }
        }
    }
    for (key, maps) in &nommu.files {
        if maps.is_empty() {
            return Err(format!("empty index entry for {key:?}"));
        }
        let want = expect.remove(key).unwrap_or_default();
        if want.regions != maps.regions
            || want.shareable != maps.shareable
            || want.vmas != maps.vmas
        {
            return Err(format!("object index of {key:?} out of date"));
        }
    }
    if let Some(key) = expect.keys().next() {
        return Err(format!("{key:?} has mappings but no index entry"));
    }
    Ok(())
}

/// An object's references are its descriptions, regions, mappings and the
/// operations holding it; nothing idle is kept; everything that names an
/// object names one that exists.
fn check_objects(nommu: &Nommu, files: &Files, ops: &Operations) -> Result<(), String> {
    let mut refs: BTreeMap<ObjectKey, u32> = BTreeMap::new();
    for f in files.open.values() {
        *refs.entry(f.key).or_insert(0) += 1;
    }
    for (key, maps) in &nommu.files {
        *refs.entry(*key).or_insert(0) += (maps.regions.len() + maps.vmas.len()) as u32;
    }
    for op in ops.live.values() {
        if op.holds_object {
            let key = op.object.ok_or("an operation holds no object")?;
            *refs.entry(key).or_insert(0) += 1;
        }
    }
    for (key, n) in &refs {
        let o = files
            .objects
            .get(key)
            .ok_or_else(|| format!("{key:?} is referred to but unknown"))?;
        if o.refs != *n {
            return Err(format!("{key:?} has {} references, {n} counted", o.refs));
        }
    }
    for (key, o) in &files.objects {
        if o.backing.key != *key || o.info.object != key.object {
            return Err(format!("object {key:?} names another"));
        }
        if !refs.contains_key(key) && o.refs != 0 {
            return Err(format!("{key:?} counts {} references to nothing", o.refs));
        }
        if o.idle() {
            return Err(format!("idle object {key:?} kept"));
        }
        let parked = files
            .drivers
            .get(&key.driver)
            .is_some_and(|d| d.parked_releases.contains(&key.object));
        if o.release_due != parked {
            return Err(format!("release of {key:?} left due"));
        }
    }
    if !ops.releases.is_empty() {
        return Err("releases left unsent".into());
    }
    // Regions and mappings share the object's face.
    for (_, r) in nommu.regions.iter_ordered() {
        if let Some(b) = r.backing.as_ref().filter(|b| b.key.driver != SHM_DRIVER) {
            if files
                .objects
                .get(&b.key)
                .is_none_or(|o| o.backing.key != b.key)
            {
                return Err(format!("region of unknown {:?}", b.key));
            }
        }
    }
    Ok(())
}

/// Descriptors are ≥ 3 and name descriptions whose counts match; tables
/// belong to processes.
fn check_descriptors(procs: &ProcessTable, files: &Files) -> Result<(), String> {
    let mut counted: BTreeMap<crate::files::FileId, u32> = BTreeMap::new();
    for (pid, table) in &files.fds {
        if !procs.procs.contains_key(pid) {
            return Err(format!("descriptor table of gone process {pid}"));
        }
        if table.is_empty() {
            return Err(format!("empty table kept for {pid}"));
        }
        for (&fd, id) in table {
            if fd < crate::files::FIRST_FD {
                return Err(format!("process {pid} holds descriptor {fd}"));
            }
            if !files.open.contains_key(id) {
                return Err(format!("fd {fd} of {pid} names a closed description"));
            }
            *counted.entry(*id).or_insert(0) += 1;
        }
    }
    for (id, f) in &files.open {
        if counted.get(id).copied().unwrap_or(0) != f.refs || f.refs == 0 {
            return Err(format!("description {id:?} counts {} descriptors", f.refs));
        }
    }
    if !procs.exited.is_empty() {
        return Err("exited processes not reaped".into());
    }
    Ok(())
}

/// Every operation either waits for exactly one call in flight (then it
/// is its object's active one, if it has an object) or waits in its
/// object's queue; calls name waiting operations of their driver; no
/// operation waits on a dead driver.
fn check_operations(files: &Files, ops: &Operations) -> Result<(), String> {
    if !ops.ready.is_empty() {
        return Err("operations left unstarted".into());
    }
    for (tag, call) in &ops.calls {
        match ops.live.get(&call.op) {
            Some(op) if op.call == Some(*tag) && op.driver == call.driver => {}
            _ => return Err(format!("call {tag} names no waiting operation")),
        }
    }
    let mut per_client: BTreeMap<crate::ClientId, usize> = BTreeMap::new();
    let mut queued: BTreeSet<crate::ops::OpId> = BTreeSet::new();
    for (key, o) in &files.objects {
        if let Some(id) = o.active {
            let op = ops
                .live
                .get(&id)
                .ok_or_else(|| format!("{key:?} held by a finished operation"))?;
            if op.object != Some(*key) || op.call.is_none() {
                return Err(format!("active {id:?} of {key:?} waits for nothing"));
            }
        }
        for id in &o.queue {
            match ops.live.get(id) {
                Some(op) if op.object == Some(*key) && op.call.is_none() => {}
                _ => return Err(format!("{key:?} queues a bad operation {id:?}")),
            }
            if !queued.insert(*id) || o.active == Some(*id) {
                return Err(format!("{id:?} queued twice"));
            }
        }
    }
    for (id, op) in &ops.live {
        if !files.alive(op.driver) {
            return Err(format!("{id:?} waits on a dead driver"));
        }
        let in_flight = op.call.is_some_and(|t| ops.calls.contains_key(&t));
        if in_flight == queued.contains(id) {
            return Err(format!("{id:?} neither in flight nor queued (or both)"));
        }
        if in_flight {
            if let Some(key) = op.object {
                if files.objects.get(&key).and_then(|o| o.active) != Some(*id) {
                    return Err(format!("{id:?} in flight without holding {key:?}"));
                }
            }
        }
        if let Some((client, _)) = op.client {
            *per_client.entry(client).or_insert(0) += 1;
        }
    }
    if per_client != ops.per_client {
        return Err("per-connection operation counts out of date".into());
    }
    Ok(())
}

/// Live drivers are mounted and listed by connection; dead ones hold no
/// exclusive objects and no live storage.
fn check_drivers(nommu: &Nommu, files: &Files) -> Result<(), String> {
    let mut live = 0;
    for (id, d) in &files.drivers {
        if d.alive {
            live += 1;
            if files.by_client.get(&d.client) != Some(id)
                || files.mounts.get(d.registration.mount.as_str()) != Some(id)
            {
                return Err(format!("live {id:?} not mounted or listed"));
            }
        } else if !d.exclusive.is_empty() {
            return Err(format!("dead {id:?} holds objects exclusive"));
        }
    }
    if live != files.by_client.len() || live != files.mounts.len() {
        return Err("mount table out of date".into());
    }
    for (start, run) in &nommu.backing.runs {
        if run.orphan == files.alive(run.driver) {
            return Err(format!("run at {start:#x}: orphan flag wrong"));
        }
    }
    Ok(())
}

/// Address-space users match the processes; tickets, pending children and
/// connections point at each other both ways.
fn check_processes(nommu: &Nommu, procs: &ProcessTable) -> Result<(), String> {
    let mut users: BTreeMap<MmId, u32> = BTreeMap::new();
    for (&pid, p) in &procs.procs {
        *users.entry(p.mm).or_insert(0) += 1;
        if !nommu.mms.contains_key(&p.mm) {
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
    for (id, mm) in &nommu.mms {
        let n = users.get(id).copied().unwrap_or(0);
        if mm.users != n || n == 0 {
            return Err(format!("{id:?} has {} users but {n} processes", mm.users));
        }
    }
    Ok(())
}

/// SysV segments: `shm_nattch` counts exactly the attachment mappings; a
/// segment marked for removal has attachments (else it would be gone);
/// public keys index exactly the live, unremoved keyed segments; every
/// attachment names a live segment at its pages.
fn check_shm(nommu: &Nommu) -> Result<(), String> {
    let mut attached: BTreeMap<i32, u64> = BTreeMap::new();
    for mm in nommu.mms.values() {
        for (key, vma) in mm.iter() {
            let Some(b) = vma.backing.as_ref().filter(|b| b.key.driver == SHM_DRIVER) else {
                continue;
            };
            let id = i32::try_from(b.key.object).map_err(|_| "bad shm id".to_string())?;
            let seg = nommu
                .shm
                .segs
                .get(&id)
                .ok_or_else(|| format!("attachment {key:?} of gone segment {id}"))?;
            if key.start != seg.addr || key.end != seg.addr + seg.pages * PAGE_SIZE {
                return Err(format!("attachment {key:?} is not segment {id}'s pages"));
            }
            *attached.entry(id).or_insert(0) += 1;
        }
    }
    for (id, seg) in &nommu.shm.segs {
        let n = attached.get(id).copied().unwrap_or(0);
        if seg.stat.nattch != n {
            return Err(format!(
                "segment {id}: nattch {} but {n} attachments",
                seg.stat.nattch
            ));
        }
        if n == 0 && seg.stat.mode & protocol::linux::SHM_DEST != 0 {
            return Err(format!("removed segment {id} kept without attachments"));
        }
        let public = seg.stat.key != protocol::linux::IPC_PRIVATE
            && seg.stat.mode & protocol::linux::SHM_DEST == 0;
        if public != (nommu.shm.by_key.get(&seg.stat.key) == Some(id)) {
            return Err(format!("key index wrong for segment {id}"));
        }
        if n > 0 && seg.region.is_none_or(|r| nommu.regions.get(r).is_none()) {
            return Err(format!("attached segment {id} without its region"));
        }
    }
    for (key, id) in &nommu.shm.by_key {
        if nommu.shm.segs.get(id).is_none_or(|s| s.stat.key != *key) {
            return Err(format!("key {key} indexes a wrong segment"));
        }
    }
    if nommu.shm.segs.len() > crate::shm::SHMMNI {
        return Err("too many segments".into());
    }
    Ok(())
}
