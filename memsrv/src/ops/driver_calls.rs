//! The driver side of connections: `RegisterDriver`, the storage calls
//! (`AllocBacking`, `FreeBacking`), the mode-change guard
//! (`BeginExclusive`, `EndExclusive`) and what a driver's death undoes.

use alloc::vec::Vec;

use crate::region::{DriverId, ObjectKey};
use crate::vm_flags::is_copy;
use crate::{Answer, ClientId, DriverOwner, Effect, MemoryServer, PhysicalMemory};
use protocol::{DriverRegistration, Errno, Reply, Request};

impl<M: PhysicalMemory> MemoryServer<M> {
    /// The calls a driver makes on its own connection (no process needed).
    #[inline(never)]
    pub(crate) fn driver_call(
        &mut self,
        client: ClientId,
        request: Request,
    ) -> Result<Answer, Errno> {
        if matches!(
            request,
            Request::FreeBacking { .. }
                | Request::BeginExclusive { .. }
                | Request::EndExclusive { .. }
        ) {
            // Storage given back or moved: what the server knew of where
            // the driver's files lie may be stale.
            if let Some(driver) = self.files.driver_of(client) {
                self.ops.page_maps.forget_driver(driver);
            }
        }
        match request {
            Request::RegisterDriver(registration) => {
                self.register_driver(client, registration).map(Answer::Now)
            }
            Request::AllocBacking { pages } => self.alloc_backing(client, pages).map(Answer::Now),
            Request::FreeBacking { addr, pages } => {
                self.free_backing(client, addr, pages).map(Answer::Now)
            }
            Request::BeginExclusive { object } => {
                self.begin_exclusive(client, object).map(Answer::Now)
            }
            Request::EndExclusive { object } => self.end_exclusive(client, object).map(Answer::Now),
            Request::ListMounts => {
                if !self.procs.conns.contains_key(&client) {
                    return Err(Errno::ENOTCONN);
                }
                Ok(Answer::Now(Reply::Mounts(self.files.mount_names())))
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// `RegisterDriver`: the connection serves `registration.mount` from
    /// now on. Only root or the [`DriverOwner`] the home configured may
    /// (`EPERM`), judged by the credentials the transport reported; a
    /// mount point already served, or above or inside one, is `EBUSY`.
    pub(crate) fn register_driver(
        &mut self,
        client: ClientId,
        registration: DriverRegistration,
    ) -> Result<Reply, Errno> {
        let conn = self.procs.conns.get(&client).ok_or(Errno::ENOTCONN)?;
        let (uid, gid) = (conn.credentials.uid, conn.credentials.gid);
        let allowed = uid == 0
            || match self.config.drivers {
                DriverOwner::Root => false,
                DriverOwner::User(u) => uid == u,
                DriverOwner::Group(g) => gid == g || conn.groups.contains(&g),
            };
        if !allowed {
            return Err(Errno::EPERM);
        }
        let owner = (uid, gid);
        let id = self.files.register(client, owner, registration)?;
        Ok(Reply::Registered { driver: id.0 })
    }

    /// The driver a connection is; `EPERM` for anyone else.
    fn calling_driver(&self, client: ClientId) -> Result<DriverId, Errno> {
        if !self.procs.conns.contains_key(&client) {
            return Err(Errno::ENOTCONN);
        }
        self.files.driver_of(client).ok_or(Errno::EPERM)
    }

    pub(crate) fn alloc_backing(&mut self, client: ClientId, pages: u64) -> Result<Reply, Errno> {
        let driver = self.calling_driver(client)?;
        let addr = self.alloc_charged_backing(driver, pages)?;
        Ok(Reply::Mapped { addr })
    }

    pub(crate) fn free_backing(
        &mut self,
        client: ClientId,
        addr: u64,
        pages: u64,
    ) -> Result<Reply, Errno> {
        let driver = self.calling_driver(client)?;
        self.nommu.free_backing(driver, addr, pages)?;
        Ok(Reply::Done)
    }

    /// `BeginExclusive`: granted only while no direct region of the object
    /// exists and no queued mapping of it may become one (`EBUSY`); held
    /// twice → `EBUSY`.
    pub(crate) fn begin_exclusive(
        &mut self,
        client: ClientId,
        object: u64,
    ) -> Result<Reply, Errno> {
        let driver = self.calling_driver(client)?;
        let key = ObjectKey { driver, object };
        let direct_region = self.nommu.files.get(&key).is_some_and(|maps| {
            maps.regions
                .iter()
                .filter_map(|id| self.nommu.regions.get(*id))
                .any(|r| !is_copy(r.flags))
        });
        let direct_coming = self.files.objects.get(&key).is_some_and(|o| {
            o.active
                .iter()
                .chain(o.queue.iter())
                .any(|id| self.op_may_map_direct(*id))
        });
        let d = self.files.drivers.get_mut(&driver).ok_or(Errno::EPERM)?;
        if direct_region || direct_coming || d.exclusive.contains(&object) {
            return Err(Errno::EBUSY);
        }
        d.exclusive.insert(object);
        Ok(Reply::Done)
    }

    /// `EndExclusive` (`EINVAL` if not held).
    pub(crate) fn end_exclusive(&mut self, client: ClientId, object: u64) -> Result<Reply, Errno> {
        let driver = self.calling_driver(client)?;
        let d = self.files.drivers.get_mut(&driver).ok_or(Errno::EPERM)?;
        if !d.exclusive.remove(&object) {
            return Err(Errno::EINVAL);
        }
        Ok(Reply::Done)
    }

    /// Whether `key` is in a mode change.
    pub(crate) fn exclusive(&self, key: ObjectKey) -> bool {
        self.files
            .drivers
            .get(&key.driver)
            .is_some_and(|d| d.exclusive.contains(&key.object))
    }

    /// A driver's connection closed: its mount goes, every request in
    /// flight to it fails `EIO` (operations queued behind fail when their
    /// turn comes), and its storage is freed where no region points into it.
    pub(crate) fn driver_died(&mut self, driver: DriverId, fx: &mut Vec<Effect>) {
        self.files.kill(driver);
        self.fail_driver_calls(driver, fx);
        self.free_orphan_stages(driver);
        self.ops.page_maps.forget_driver(driver);
        self.nommu.orphan_backing(driver);
        let idle: Vec<ObjectKey> = self
            .files
            .objects
            .iter()
            .filter(|(k, o)| k.driver == driver && o.idle())
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            self.files.objects.remove(&key);
        }
    }
}
