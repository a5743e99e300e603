//! What each address space and each user holds, and the limits on it
//! (`memsrvd --max-process-memory`, `--max-user-memory`,
//! `--max-clients-per-user`). Spec §4.1 (the pages a private copy holds)
//! and §7.1 (SysV segments); it mirrors Linux's `may_expand_vm` (a mapping
//! beyond the address space's limit fails `ENOMEM`) and `newseg`'s
//! `shm_ctlall` check (a segment beyond a quota fails `ENOSPC`).
//!
//! Pages are charged where memsrv allocates them, to whoever caused the
//! allocation: a private copy or anonymous mapping to the address space
//! and the uid of the call that made it, a SysV segment to its creator
//! (`cuid`, which never changes), memory-filesystem pages a driver takes
//! (`AllocBacking`) to the uid of the one call it is serving when it asks
//! (a write or `ftruncate` growing a file; storage a driver takes on its
//! own, or while serving several uids at once, is charged to no one).
//! Each charge remembers whom it was charged to, so the release uncharges
//! the same address space and uid whatever the process's ids are by then.
//! Copies and filesystem pages are charged by page range
//! ([`Charges::uncharge_pages`] is called where either goes back:
//! `free_page_series`, `release_backing_pages`), so a region split or
//! trimmed later needs no bookkeeping of its own. A copy region other
//! processes share (a read-only private file mapping reused) stays charged
//! to its creator.

use alloc::collections::BTreeMap;
use alloc::string::String;
use protocol::{Errno, PAGE_SIZE};

use crate::mm::MmId;
use crate::page_alloc::PageIndex;
use crate::ClientId;

/// The limits, in pages and connections; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub process_pages: Option<u64>,
    pub user_pages: Option<u64>,
    pub clients_per_user: Option<u32>,
}

impl Limits {
    /// From the byte limits of [`crate::Config`] (a partial page counts
    /// as none: a limit never lets more through than it says).
    pub fn of(config: &crate::Config) -> Self {
        Self {
            process_pages: config.max_process_memory.map(|b| b / PAGE_SIZE),
            user_pages: config.max_user_memory.map(|b| b / PAGE_SIZE),
            clients_per_user: config.max_clients_per_user,
        }
    }
}

/// One run of copy or filesystem pages and whom it is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    pages: u64,
    /// Filesystem storage (`AllocBacking`), not a copy.
    store: bool,
    /// `None` once the address space is gone and others still map it.
    mm: Option<MmId>,
    uid: u32,
}

/// What one uid holds, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserCharge {
    /// Anonymous mappings and private copies its calls made.
    pub mapped: u64,
    /// SysV segments it created.
    pub shm: u64,
    /// Memory-filesystem pages its writes and truncates took.
    pub store: u64,
}

impl UserCharge {
    pub fn total(&self) -> u64 {
        self.mapped + self.shm + self.store
    }
}

/// One connection: the uid the transport reported at connect (the slot
/// stays charged to it) and the program's name, if the home told it.
#[derive(Default)]
struct Slot {
    uid: u32,
    name: String,
}

/// The charges of the whole server.
#[derive(Default)]
pub struct Charges {
    pub limits: Limits,
    /// Copy pages by first page.
    extents: BTreeMap<PageIndex, Extent>,
    /// Copy pages charged to each live address space.
    mms: BTreeMap<MmId, u64>,
    users: BTreeMap<u32, UserCharge>,
    /// Each connection's slot.
    clients: BTreeMap<ClientId, Slot>,
    /// The address space and uid of the call being served, for the
    /// mapping code that allocates on its behalf.
    pub actor: Option<(MmId, u32)>,
}

impl Charges {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Pages charged to `mm`.
    pub fn mm_pages(&self, mm: MmId) -> u64 {
        self.mms.get(&mm).copied().unwrap_or(0)
    }

    /// What each uid holds, and its connections.
    pub fn users(&self) -> impl Iterator<Item = (u32, UserCharge, u32)> + '_ {
        let mut uids: BTreeMap<u32, (UserCharge, u32)> = BTreeMap::new();
        for (&uid, &charge) in &self.users {
            uids.entry(uid).or_default().0 = charge;
        }
        for slot in self.clients.values() {
            uids.entry(slot.uid).or_default().1 += 1;
        }
        uids.into_iter()
            .filter(|(_, (c, n))| c.total() > 0 || *n > 0)
            .map(|(uid, (c, n))| (uid, c, n))
    }

    /// Whether `uid` may take `pages` more.
    fn user_fits(&self, uid: u32, pages: u64) -> bool {
        let held = self.users.get(&uid).map_or(0, UserCharge::total);
        self.limits
            .user_pages
            .is_none_or(|limit| held.saturating_add(pages) <= limit)
    }

    /// `may_expand_vm`: whether the actor's address space and uid may
    /// take `pages` more copy pages; `ENOMEM` if not.
    pub fn may_map(&self, pages: u64) -> Result<(), Errno> {
        let Some((mm, uid)) = self.actor else {
            return Ok(());
        };
        let fits_mm = self
            .limits
            .process_pages
            .is_none_or(|limit| self.mm_pages(mm).saturating_add(pages) <= limit);
        if fits_mm && self.user_fits(uid, pages) {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// `pages` copy pages from `first` were allocated for the actor.
    pub fn charge_pages(&mut self, first: PageIndex, pages: u64) {
        let Some((mm, uid)) = self.actor else {
            return;
        };
        if pages == 0 {
            return;
        }
        self.extents.insert(
            first,
            Extent {
                pages,
                store: false,
                mm: Some(mm),
                uid,
            },
        );
        *self.mms.entry(mm).or_default() += pages;
        self.users.entry(uid).or_default().mapped += pages;
    }

    /// `[first, first+count)` copy pages were freed: uncharge whoever each
    /// part was charged to, splitting runs freed in part.
    pub fn uncharge_pages(&mut self, first: PageIndex, count: u32) {
        // The common case, a whole run (an unmapped anonymous mapping),
        // costs one lookup and no allocation.
        if let Some(&extent) = self.extents.get(&first) {
            if extent.pages == u64::from(count) {
                self.extents.remove(&first);
                self.uncharge(&extent, extent.pages);
                return;
            }
        }
        let end = u64::from(first) + u64::from(count);
        let from = self
            .extents
            .range(..=first)
            .next_back()
            .map_or(first, |(&start, _)| start);
        let hit: alloc::vec::Vec<(PageIndex, Extent)> = self
            .extents
            .range(from..)
            .take_while(|(&start, _)| u64::from(start) < end)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (start, extent) in hit {
            let ext_end = u64::from(start) + extent.pages;
            let cut_from = u64::from(first).max(u64::from(start));
            let cut_to = end.min(ext_end);
            if cut_from >= cut_to {
                continue;
            }
            self.extents.remove(&start);
            let keep = |s: u64, e: u64| Extent {
                pages: e - s,
                ..extent
            };
            if cut_from > u64::from(start) {
                self.extents.insert(start, keep(u64::from(start), cut_from));
            }
            if cut_to < ext_end {
                // Below the page count of the arena, so it fits.
                self.extents
                    .insert(cut_to as PageIndex, keep(cut_to, ext_end));
            }
            self.uncharge(&extent, cut_to - cut_from);
        }
    }

    /// An address space's or uid's entry stays when it drops to zero (it
    /// goes with the address space, or when the uid's last client does):
    /// the common mmap/munmap pair then touches no allocator.
    fn uncharge(&mut self, extent: &Extent, pages: u64) {
        if let Some(mm) = extent.mm {
            if let Some(held) = self.mms.get_mut(&mm) {
                *held = held.saturating_sub(pages);
            }
        }
        if let Some(user) = self.users.get_mut(&extent.uid) {
            let held = if extent.store {
                &mut user.store
            } else {
                &mut user.mapped
            };
            *held = held.saturating_sub(pages);
        }
    }

    fn forget_if_idle(&mut self, uid: u32) {
        if self.users.get(&uid).is_some_and(|u| u.total() == 0) {
            self.users.remove(&uid);
        }
    }

    /// The address space `mm` is gone. What it still had charged is
    /// mapped by others (a shared copy region): the uid keeps paying, the
    /// address space no longer counts.
    pub fn mm_gone(&mut self, mm: MmId) {
        if self.mms.remove(&mm).is_none() {
            return;
        }
        for extent in self.extents.values_mut() {
            if extent.mm == Some(mm) {
                extent.mm = None;
            }
        }
    }

    /// Whether `uid` may create a SysV segment of `pages`. A quota, as
    /// `newseg`'s `shm_ctlall` check, answers `ENOSPC` (`ENOMEM` is for
    /// memory the kernel could not find).
    pub fn may_create_segment(&self, uid: u32, pages: u64) -> Result<(), Errno> {
        if self.user_fits(uid, pages) {
            Ok(())
        } else {
            Err(Errno::ENOSPC)
        }
    }

    /// Whether `uid` may take `pages` more filesystem pages: `ENOSPC`
    /// beyond its limit, tmpfs's answer when full (`shmem_inode_acct_blocks`).
    pub fn may_store(&self, uid: u32, pages: u64) -> Result<(), Errno> {
        if self.user_fits(uid, pages) {
            Ok(())
        } else {
            Err(Errno::ENOSPC)
        }
    }

    /// `pages` filesystem pages from `first` were taken on `uid`'s behalf.
    pub fn charge_store(&mut self, uid: u32, first: PageIndex, pages: u64) {
        if pages == 0 {
            return;
        }
        let extent = Extent {
            pages,
            store: true,
            mm: None,
            uid,
        };
        self.extents.insert(first, extent);
        self.users.entry(uid).or_default().store += pages;
    }

    pub fn charge_segment(&mut self, cuid: u32, pages: u64) {
        self.users.entry(cuid).or_default().shm += pages;
    }

    pub fn uncharge_segment(&mut self, cuid: u32, pages: u64) {
        if let Some(user) = self.users.get_mut(&cuid) {
            user.shm = user.shm.saturating_sub(pages);
            self.forget_if_idle(cuid);
        }
    }

    /// Whether a connection of `uid` may arrive: `EAGAIN` once `uid`
    /// holds its `--max-clients-per-user` slots (as `fork` answers at
    /// `RLIMIT_NPROC`).
    pub fn may_connect(&self, uid: u32) -> Result<(), Errno> {
        let held = self.clients.values().filter(|s| s.uid == uid).count();
        match self.limits.clients_per_user {
            Some(limit) if held >= limit as usize => Err(Errno::EAGAIN),
            _ => Ok(()),
        }
    }

    pub fn connect(&mut self, client: ClientId, uid: u32) {
        let name = String::new();
        self.clients.insert(client, Slot { uid, name });
    }

    pub fn name(&mut self, client: ClientId, name: &str) {
        if let Some(slot) = self.clients.get_mut(&client) {
            slot.name = String::from(name);
        }
    }

    pub fn name_of(&self, client: ClientId) -> Option<&str> {
        let name = &self.clients.get(&client)?.name;
        (!name.is_empty()).then_some(name.as_str())
    }

    pub fn disconnect(&mut self, client: ClientId) {
        if let Some(slot) = self.clients.remove(&client) {
            if !self.clients.values().any(|s| s.uid == slot.uid) {
                self.forget_if_idle(slot.uid);
            }
        }
    }

    /// The bookkeeping agrees with itself and with `copy_pages`
    /// (`mmap_copy_pages`), `store_pages` (the drivers' storage) and
    /// `shm_of` (each uid's segment pages).
    pub fn check(
        &self,
        copy_pages: u64,
        store_pages: u64,
        shm_of: &BTreeMap<u32, u64>,
    ) -> Result<(), String> {
        let mut mms: BTreeMap<MmId, u64> = BTreeMap::new();
        // Each uid's copy and filesystem pages, as the runs say.
        let mut runs: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        let (mut copies, mut stored) = (0, 0);
        let mut last_end = 0u64;
        for (&start, e) in &self.extents {
            if u64::from(start) < last_end || e.pages == 0 {
                return Err(alloc::format!(
                    "charged run at page {start} overlaps or is empty"
                ));
            }
            last_end = u64::from(start) + e.pages;
            let of_uid = runs.entry(e.uid).or_default();
            if e.store {
                stored += e.pages;
                of_uid.1 += e.pages;
            } else {
                copies += e.pages;
                of_uid.0 += e.pages;
            }
            if let Some(mm) = e.mm {
                *mms.entry(mm).or_default() += e.pages;
            }
        }
        if copies != copy_pages || stored > store_pages {
            return Err(alloc::format!(
                "charged {copies} copy and {stored} filesystem pages; {copy_pages} and {store_pages} held"
            ));
        }
        let charged: BTreeMap<MmId, u64> = self
            .mms
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(&m, &n)| (m, n))
            .collect();
        if mms != charged {
            return Err(alloc::format!(
                "address space charges {:?} ≠ runs {mms:?}",
                self.mms
            ));
        }
        for (&uid, user) in &self.users {
            let (mapped, store) = runs.get(&uid).copied().unwrap_or((0, 0));
            let segs = shm_of.get(&uid).copied().unwrap_or(0);
            if (user.mapped, user.store, user.shm) != (mapped, store, segs) {
                return Err(alloc::format!(
                    "uid {uid} charged {user:?}, holds {mapped}+{store}+{segs}"
                ));
            }
        }
        let holders = runs
            .keys()
            .chain(shm_of.iter().filter(|(_, &n)| n > 0).map(|(u, _)| u));
        if let Some(uid) = holders
            .into_iter()
            .find(|uid| !self.users.contains_key(uid))
        {
            return Err(alloc::format!("uid {uid} holds pages uncharged"));
        }
        Ok(())
    }
}

/// The invariant checker's part: the charges agree with the pages copies
/// and segments hold, and only live address spaces are charged.
pub fn check(nommu: &crate::nommu::Nommu) -> Result<(), String> {
    let mut shm_of: BTreeMap<u32, u64> = BTreeMap::new();
    for seg in nommu.shm.segs.values() {
        *shm_of.entry(seg.stat.cuid).or_default() += seg.pages;
    }
    let charges = &nommu.charges;
    if let Some(mm) = charges.mms.keys().find(|mm| !nommu.mms.contains_key(mm)) {
        return Err(alloc::format!("{mm:?} is gone but still charged"));
    }
    charges.check(nommu.mmap_copy_pages, nommu.backing.pages, &shm_of)
}

impl<M: crate::PhysicalMemory> crate::MemoryServer<M> {
    /// `AllocBacking` for `driver`, charged to the uid of the call it is
    /// serving (`ENOSPC` beyond that uid's limit).
    pub(crate) fn alloc_charged_backing(
        &mut self,
        driver: crate::region::DriverId,
        pages: u64,
    ) -> Result<u64, Errno> {
        let payer = self.backing_payer(driver);
        if let Some(uid) = payer {
            self.nommu.charges.may_store(uid, pages)?;
        }
        let addr = self.nommu.alloc_backing(driver, pages, &mut self.memory)?;
        if let Some(uid) = payer {
            let first = self.nommu.page_of(addr);
            self.nommu.charges.charge_store(uid, first, pages);
        }
        Ok(addr)
    }

    /// The uid of the one process whose calls `driver` is answering now,
    /// if there is exactly one.
    fn backing_payer(&self, driver: crate::region::DriverId) -> Option<u32> {
        let mut payer = None;
        for op in self.ops.live.values() {
            if op.driver != driver || op.call.is_none() || op.client.is_none() {
                continue;
            }
            let uid = self.procs.procs.get(&op.pid)?.uid;
            if payer.is_some_and(|p| p != uid) {
                return None;
            }
            payer = Some(uid);
        }
        payer
    }
}

impl<M: crate::PhysicalMemory> crate::MemoryServer<M> {
    /// [`Self::connect`] for a connection of the home itself (a driver
    /// built into it): it holds no user's slot.
    pub fn connect_builtin(&mut self, client: ClientId, credentials: crate::Credentials) {
        self.connect(client, credentials);
        self.nommu.charges.disconnect(client);
    }
}
