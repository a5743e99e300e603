//! A client process of the threads home: a [`Client`] over a
//! [`ChannelTransport`], plus access to the arena its addresses point into.

use super::arena::Arena;
use super::transport::ChannelTransport;
use nommu::client::Welcome;
use nommu::Client;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE};
use protocol::Errno;
use std::sync::Arc;

/// One process. Dropping the handle closes its connection, and memsrv
/// releases every mapping the process alone held. The handle may move to
/// another thread; concurrent calls through one handle are serialised.
pub struct Process {
    client: Client<ChannelTransport>,
    welcome: Welcome,
    arena: Arc<Arena>,
}

impl Process {
    /// Say Hello on a fresh connection (with the clone ticket, for a child).
    pub(crate) fn hello(
        transport: ChannelTransport,
        arena: Arc<Arena>,
        ticket: Option<u64>,
    ) -> Result<Self, Errno> {
        let client = Client::new(transport);
        let welcome = client.hello(ticket)?;
        Ok(Self {
            client,
            welcome,
            arena,
        })
    }

    /// The process id memsrv gave this process.
    pub fn pid(&self) -> u32 {
        self.welcome.pid
    }

    /// What the server said in its Hello reply.
    pub fn welcome(&self) -> Welcome {
        self.welcome
    }

    /// The client core: every call the protocol has.
    pub fn client(&self) -> &Client<ChannelTransport> {
        &self.client
    }

    /// `mmap(0, len, prot, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)`.
    pub fn mmap_anon(&self, len: u64, prot: u32) -> Result<u64, Errno> {
        self.client
            .mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    }

    /// `munmap(addr, len)`.
    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        self.client.munmap(addr, len)
    }

    /// `clone(flags)`: the child's pid and the ticket for
    /// [`super::ThreadsHome::attach`].
    pub fn clone_process(&self, flags: u64) -> Result<(u32, u64), Errno> {
        self.client.clone_process(flags)
    }

    /// The process exits; its connection closes with the handle.
    pub fn exit(self) -> Result<(), Errno> {
        self.client.exit()
    }

    /// Store `bytes` at `addr`. No MMU stands in the way: any address in
    /// the arena is reachable, mapped by this process or not (`EFAULT` only
    /// outside the arena).
    pub fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.arena.write(addr, bytes)
    }

    /// Load from `addr` into `buf` (`EFAULT` outside the arena).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.arena.read(addr, buf)
    }

    /// Set `len` bytes at `addr` to `byte` (`EFAULT` outside the arena).
    pub fn fill(&self, addr: u64, len: u64, byte: u8) -> Result<(), Errno> {
        self.arena.fill(addr, len, byte)
    }

    /// The raw pointer for `[addr, addr+len)`, if inside the arena.
    pub fn ptr(&self, addr: u64, len: u64) -> Option<*mut u8> {
        self.arena.ptr(addr, len)
    }
}
