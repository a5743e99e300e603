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
//! (`AllocBacking`) to the uid of the call it is serving when it asks
//! (a write or `ftruncate` growing a file: the oldest of its requests in
//! flight, as a driver serves them one at a time in order; storage a
//! driver takes on its own is charged to no one).
//! Each charge remembers whom it was charged to, so the release uncharges
//! the same address space and uid whatever the process's ids are by then:
//! a copy region keeps its [`Payer`] in its record ([`crate::region::Region`]),
//! a copy still being filled in its operation, a driver's run in
//! [`crate::backing::BackingRun`]. A region split or trimmed later keeps
//! its payer with no bookkeeping of its own, and the common mmap/munmap
//! pair touches no map here but the two counters. A copy region other
//! processes share (a read-only private file mapping reused) stays charged
//! to its creator.

use alloc::collections::BTreeMap;
use alloc::string::String;
use protocol::{Errno, PAGE_SIZE};

use crate::mm::MmId;
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

/// Whom a copy's pages are charged to: the address space and uid of the
/// call that made it. The address space may be gone by the time the pages
/// go (others still map a shared copy): a gone address space's share is
/// then no one's, as identities are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payer {
    pub mm: MmId,
    pub uid: u32,
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
        self.limits.user_pages.is_none_or(|limit| {
            let held = self.users.get(&uid).map_or(0, UserCharge::total);
            held.saturating_add(pages) <= limit
        })
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

    /// The actor, as the payer a new copy records.
    pub fn payer(&self) -> Option<Payer> {
        self.actor.map(|(mm, uid)| Payer { mm, uid })
    }

    /// `pages` copy pages were allocated for `payer` (none: no one pays).
    pub fn charge_copy(&mut self, payer: Option<Payer>, pages: u64) {
        let Some(Payer { mm, uid }) = payer else {
            return;
        };
        *self.mms.entry(mm).or_default() += pages;
        self.users.entry(uid).or_default().mapped += pages;
    }

    /// `pages` copy pages charged to `payer` were freed. An address
    /// space's or uid's entry stays when it drops to zero (it goes with
    /// the address space, or when the uid's last client does): the common
    /// mmap/munmap pair then touches no allocator.
    pub fn uncharge_copy(&mut self, payer: Option<Payer>, pages: u64) {
        let Some(Payer { mm, uid }) = payer else {
            return;
        };
        if let Some(held) = self.mms.get_mut(&mm) {
            *held = held.saturating_sub(pages);
        }
        if let Some(user) = self.users.get_mut(&uid) {
            user.mapped = user.mapped.saturating_sub(pages);
        }
    }

    fn forget_if_idle(&mut self, uid: u32) {
        if self.users.get(&uid).is_some_and(|u| u.total() == 0) {
            self.users.remove(&uid);
        }
    }

    /// The address space `mm` is gone. What it still had charged is
    /// mapped by others (a shared copy region): the uid keeps paying, the
    /// address space no longer counts (its payers' `mm` names no one now).
    pub fn mm_gone(&mut self, mm: MmId) {
        self.mms.remove(&mm);
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

    /// `pages` filesystem pages were taken on `uid`'s behalf.
    pub fn charge_store(&mut self, uid: u32, pages: u64) {
        self.users.entry(uid).or_default().store += pages;
    }

    /// `pages` filesystem pages charged to `uid` went back.
    pub fn uncharge_store(&mut self, uid: u32, pages: u64) {
        if let Some(user) = self.users.get_mut(&uid) {
            user.store = user.store.saturating_sub(pages);
        }
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

    /// The counters agree with what the records say is charged (`held`),
    /// with `copy_pages` (`mmap_copy_pages`), `store_pages` (the drivers'
    /// storage) and `shm_of` (each uid's segment pages).
    fn check(
        &self,
        held: &Held,
        copy_pages: u64,
        store_pages: u64,
        shm_of: &BTreeMap<u32, u64>,
    ) -> Result<(), String> {
        let stored: u64 = held.store.values().sum();
        if held.copies != copy_pages || stored > store_pages {
            return Err(alloc::format!(
                "charged {} copy and {stored} filesystem pages; {copy_pages} and {store_pages} held",
                held.copies
            ));
        }
        let charged: BTreeMap<MmId, u64> = self
            .mms
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(&m, &n)| (m, n))
            .collect();
        if held.mms != charged {
            return Err(alloc::format!(
                "address space charges {:?} ≠ records {:?}",
                self.mms,
                held.mms
            ));
        }
        for (&uid, user) in &self.users {
            let mapped = held.mapped.get(&uid).copied().unwrap_or(0);
            let store = held.store.get(&uid).copied().unwrap_or(0);
            let segs = shm_of.get(&uid).copied().unwrap_or(0);
            if (user.mapped, user.store, user.shm) != (mapped, store, segs) {
                return Err(alloc::format!(
                    "uid {uid} charged {user:?}, holds {mapped}+{store}+{segs}"
                ));
            }
        }
        let holders = held
            .mapped
            .keys()
            .chain(held.store.keys())
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

/// What the records (regions, copies being filled, drivers' runs) say is
/// charged, summed for the invariant checker.
#[derive(Default)]
struct Held {
    /// Copy pages some payer pays for.
    copies: u64,
    /// Copy pages by live address space.
    mms: BTreeMap<MmId, u64>,
    /// Copy pages by uid.
    mapped: BTreeMap<u32, u64>,
    /// Filesystem pages by uid.
    store: BTreeMap<u32, u64>,
}

impl Held {
    fn copy(&mut self, nommu: &crate::nommu::Nommu, payer: Option<Payer>, pages: u64) {
        if payer.is_some() {
            self.copies += pages;
        }
        self.window(nommu, payer, pages);
    }

    /// Pages charged like a copy's that `MmapCopy` does not count (a
    /// connection's bulk window).
    fn window(&mut self, nommu: &crate::nommu::Nommu, payer: Option<Payer>, pages: u64) {
        let Some(Payer { mm, uid }) = payer else {
            return;
        };
        // A gone address space's share is no one's.
        if nommu.mms.contains_key(&mm) {
            *self.mms.entry(mm).or_default() += pages;
        }
        *self.mapped.entry(uid).or_default() += pages;
    }
}

/// The invariant checker's part: the charges agree with the pages copies,
/// copies being filled (`ops`), drivers' runs and segments hold, and only
/// live address spaces are charged.
pub fn check(nommu: &crate::nommu::Nommu, ops: &crate::ops::Operations) -> Result<(), String> {
    let mut held = Held::default();
    for (_, r) in nommu.regions.iter_ordered() {
        if crate::vm_flags::is_copy(r.flags) {
            held.copy(nommu, r.payer, (r.top - r.start) / PAGE_SIZE);
        } else if r.payer.is_some() {
            return Err(alloc::format!(
                "direct region at {:#x} has a payer",
                r.start
            ));
        }
    }
    for op in ops.live.values() {
        if let crate::ops::OpKind::Mmap(m) = &op.kind {
            if let Some((_, kept, payer)) = m.copy {
                held.copy(nommu, payer, kept);
            }
        }
    }
    for &(_, payer) in ops.windows.values() {
        held.window(nommu, payer, protocol::BULK_WINDOW / PAGE_SIZE);
    }
    for run in nommu.backing.runs.values() {
        if let Some(uid) = run.payer {
            *held.store.entry(uid).or_default() += run.pages;
        }
    }
    let mut shm_of: BTreeMap<u32, u64> = BTreeMap::new();
    for seg in nommu.shm.segs.values() {
        *shm_of.entry(seg.stat.cuid).or_default() += seg.pages;
    }
    let charges = &nommu.charges;
    if let Some(mm) = charges.mms.keys().find(|mm| !nommu.mms.contains_key(mm)) {
        return Err(alloc::format!("{mm:?} is gone but still charged"));
    }
    charges.check(&held, nommu.mmap_copy_pages, nommu.backing.pages, &shm_of)
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
            if let Some(run) = self.nommu.backing.runs.get_mut(&addr) {
                run.payer = Some(uid);
                self.nommu.charges.charge_store(uid, run.pages);
            }
        }
        Ok(addr)
    }

    /// The uid of the process whose call `driver` is serving now: the
    /// caller of its oldest request in flight (a driver serves one request
    /// at a time, in the order sent). None when it serves memsrv's own
    /// request (a release) or nothing.
    fn backing_payer(&self, driver: crate::region::DriverId) -> Option<u32> {
        let call = self.ops.serving(driver)?;
        let op = self.ops.live.get(&call.op)?;
        op.client?;
        Some(self.procs.procs.get(&op.pid)?.uid)
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
