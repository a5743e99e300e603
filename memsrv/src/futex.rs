//! Futexes (spec §8.3: the Legacy contract of §8.2).
//!
//! A waiter is a client call whose reply is held: `FUTEX_WAIT` compares the
//! word when the server handles it and, when it still holds the expected
//! value, parks the caller's `(connection, tag)` under the futex's key. A
//! wake, a timeout ([`crate::MemoryServer::tick`]) or the end of the
//! waiting connection ends the wait; the first two push the held reply as
//! an [`Effect::Send`], the last one drops it (nobody is left to read it).
//!
//! Keys: the caller's mapping holding the word is looked up for every
//! operation, and for both words of a requeue or `FUTEX_WAKE_OP`: none or
//! unreadable → `EFAULT`. Without `FUTEX_PRIVATE_FLAG`, device memory
//! (`VM_IO`) → `EPERM` first. `FUTEX_PRIVATE_FLAG` then takes the cheap
//! `(address space, address)` key. Otherwise a shareable mapping keys on
//! what backs it (the object and its file page, or the region for a
//! shareable mapping without an object), so processes mapping one object
//! meet; anything else keys on `(address space, address)`.
//!
//! Server decision beside §8.3 (`docs/futex.md`): §8.2's legacy private
//! forms only checked `access_ok`, so a private-flag word in no mapping was
//! accepted (a wait slept, a wake found nobody), and §8.2 step 3 answers
//! `EACCES` for a mapping without read permission. MMU Linux answers
//! `EFAULT` for both, with or without the flag, and a port must meet the
//! same error (LTP's bad address is a `PROT_NONE` mapping), so here both
//! are `EFAULT` whatever the flag. An I/O mapping keeps §8.2's `EPERM`
//! without the flag and stays usable under the private key, which names
//! no page of it.
//!
//! `FUTEX_WAKE_OP` (Linux's `futex_wake_op`): both keys are looked up (the
//! second word must also be writable, `EFAULT` otherwise), the operation
//! encoded in `val3` is applied to the second word in one atomic step
//! ([`PhysicalMemory::update_u32`]), up to `val` waiters of the first word
//! wake, and, when the comparison holds for the word's old value, up to
//! `val2` of the second.
//!
//! Waiters of one key wake oldest first; a requeued waiter joins the tail
//! of its new queue. Each connection holds at most
//! [`crate::Config::max_pending_ops`] waits (`ENOMEM` beyond).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::mm::MmId;
use crate::process::{ProcState, ProcessTable};
use crate::region::{ObjectKey, RegionId};
use crate::vm_flags::{is_shareable, VM_IO, VM_READ, VM_WRITE};
use crate::{Answer, Caller, ClientId, Effect, FrameBuf, MemoryServer, PhysicalMemory};
use protocol::linux::{
    FUTEX_BITSET_MATCH_ANY, FUTEX_CLOCK_REALTIME, FUTEX_CMD_MASK, FUTEX_CMP_REQUEUE, FUTEX_OP_ADD,
    FUTEX_OP_ANDN, FUTEX_OP_CMP_EQ, FUTEX_OP_CMP_GE, FUTEX_OP_CMP_GT, FUTEX_OP_CMP_LE,
    FUTEX_OP_CMP_LT, FUTEX_OP_CMP_NE, FUTEX_OP_OPARG_SHIFT, FUTEX_OP_OR, FUTEX_OP_SET,
    FUTEX_OP_XOR, FUTEX_PRIVATE_FLAG, FUTEX_REQUEUE, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAKE,
    FUTEX_WAKE_BITSET, FUTEX_WAKE_OP,
};
use protocol::{Errno, Reply, PAGE_SIZE};

/// `ETIMEDOUT`.
pub const ETIMEDOUT: Errno = Errno(110);

/// What backs a shareable mapping: the identity two processes' mappings
/// of the same memory have in common.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backing {
    /// A file, device or segment object (Linux's inode).
    Object(ObjectKey),
    /// A shareable region with no object behind it.
    Region(RegionId),
}

/// A futex's identity (Linux `union futex_key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FutexKey {
    /// `(address space, address)`.
    Private { mm: MmId, addr: u64 },
    /// `(backing, page index, offset in page)`.
    Shared {
        backing: Backing,
        page: u64,
        offset: u32,
    },
}

/// When a wait times out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    Never,
    /// Relative, in ms, counted from the next tick.
    After(u64),
    /// Absolute, on the server's clock (ms).
    At(u64),
}

/// One held `FUTEX_WAIT`.
#[derive(Clone, Copy, Debug)]
pub struct Waiter {
    pub client: ClientId,
    pub tag: u32,
    pub pid: u32,
    pub key: FutexKey,
    pub bitset: u32,
    pub timeout: Timeout,
}

/// Every held wait, with its indexes.
#[derive(Default)]
pub struct Futexes {
    /// By arrival sequence (a requeued waiter gets a new one).
    waiters: BTreeMap<u64, Waiter>,
    /// Each key's waiters, oldest first.
    queues: BTreeMap<FutexKey, BTreeSet<u64>>,
    /// Waits per connection.
    by_client: BTreeMap<ClientId, BTreeSet<u64>>,
    /// Started timeouts: `(deadline, seq)`.
    deadlines: BTreeSet<(u64, u64)>,
    /// Relative timeouts waiting for the next tick to start.
    unstarted: BTreeSet<u64>,
    next_seq: u64,
}

impl Futexes {
    /// Number of held waits.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    fn insert(&mut self, w: Waiter) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.queues.entry(w.key).or_default().insert(seq);
        self.by_client.entry(w.client).or_default().insert(seq);
        match w.timeout {
            Timeout::Never => {}
            Timeout::After(_) => {
                self.unstarted.insert(seq);
            }
            Timeout::At(at) => {
                self.deadlines.insert((at, seq));
            }
        }
        self.waiters.insert(seq, w);
    }

    fn remove(&mut self, seq: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&seq)?;
        if let Some(q) = self.queues.get_mut(&w.key) {
            q.remove(&seq);
            if q.is_empty() {
                self.queues.remove(&w.key);
            }
        }
        if let Some(c) = self.by_client.get_mut(&w.client) {
            c.remove(&seq);
            if c.is_empty() {
                self.by_client.remove(&w.client);
            }
        }
        match w.timeout {
            Timeout::Never => {}
            Timeout::After(_) => {
                self.unstarted.remove(&seq);
            }
            Timeout::At(at) => {
                self.deadlines.remove(&(at, seq));
            }
        }
        Some(w)
    }

    fn waits_of(&self, client: ClientId) -> usize {
        self.by_client.get(&client).map_or(0, BTreeSet::len)
    }

    /// The oldest waiters of `key` whose bitset meets `bitset`, at most `n`.
    fn oldest(&self, key: &FutexKey, bitset: u32, n: usize) -> Vec<u64> {
        let Some(q) = self.queues.get(key) else {
            return Vec::new();
        };
        q.iter()
            .copied()
            .filter(|s| self.waiters.get(s).is_some_and(|w| w.bitset & bitset != 0))
            .take(n)
            .collect()
    }

    /// Start pending relative timeouts at `now`; take the waiters whose
    /// deadline has come.
    fn expire(&mut self, now: u64) -> Vec<Waiter> {
        for seq in core::mem::take(&mut self.unstarted) {
            if let Some(w) = self.waiters.get_mut(&seq) {
                if let Timeout::After(ms) = w.timeout {
                    let at = now.saturating_add(ms);
                    w.timeout = Timeout::At(at);
                    self.deadlines.insert((at, seq));
                }
            }
        }
        let due: Vec<u64> = self
            .deadlines
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .map(|&(_, seq)| seq)
            .collect();
        due.into_iter().filter_map(|s| self.remove(s)).collect()
    }

    /// Drop the waits of connections no longer bound to the waiting
    /// process (it exited, or the connection went).
    pub fn prune(&mut self, procs: &ProcessTable) {
        let gone: Vec<u64> = self
            .by_client
            .iter()
            .flat_map(|(client, seqs)| seqs.iter().map(move |s| (*client, *s)))
            .filter(|(client, seq)| {
                let pid = self.waiters.get(seq).map(|w| w.pid);
                !bound(procs, *client, pid)
            })
            .map(|(_, s)| s)
            .collect();
        for seq in gone {
            self.remove(seq);
        }
    }

    /// Index consistency, and every waiter belongs to a live process
    /// through a connection still bound to it.
    pub fn check(&self, procs: &ProcessTable, max_per_client: usize) -> Result<(), String> {
        let mut queued = 0usize;
        for (key, q) in &self.queues {
            if q.is_empty() {
                return Err(format!("futex queue {key:?} empty but kept"));
            }
            for seq in q {
                match self.waiters.get(seq) {
                    Some(w) if w.key == *key => {}
                    _ => return Err(format!("futex queue {key:?} holds stale waiter {seq}")),
                }
            }
            queued += q.len();
        }
        let mut by_client = 0usize;
        for (client, seqs) in &self.by_client {
            if seqs.is_empty() || seqs.len() > max_per_client {
                return Err(format!("{client:?} holds {} futex waits", seqs.len()));
            }
            for seq in seqs {
                match self.waiters.get(seq) {
                    Some(w) if w.client == *client => {}
                    _ => return Err(format!("{client:?} lists stale futex waiter {seq}")),
                }
            }
            by_client += seqs.len();
        }
        if queued != self.waiters.len() || by_client != self.waiters.len() {
            return Err(format!(
                "{} futex waiters, {queued} queued, {by_client} by connection",
                self.waiters.len()
            ));
        }
        let mut timed = 0usize;
        for (seq, w) in &self.waiters {
            if !bound(procs, w.client, Some(w.pid)) {
                return Err(format!(
                    "futex waiter {seq} of pid {} on {:?}, which no longer speaks for it",
                    w.pid, w.client
                ));
            }
            if w.bitset == 0 {
                return Err(format!("futex waiter {seq} with an empty bitset"));
            }
            if let FutexKey::Private { addr, .. } = w.key {
                if !addr.is_multiple_of(4) {
                    return Err(format!("futex waiter {seq} at unaligned {addr:#x}"));
                }
            }
            let indexed = match w.timeout {
                Timeout::Never => true,
                Timeout::After(_) => self.unstarted.contains(seq),
                Timeout::At(at) => self.deadlines.contains(&(at, *seq)),
            };
            if !indexed {
                return Err(format!("futex waiter {seq}'s timeout not indexed"));
            }
            if w.timeout != Timeout::Never {
                timed += 1;
            }
        }
        if timed != self.unstarted.len() + self.deadlines.len() {
            return Err("futex timeout index holds stale entries".into());
        }
        Ok(())
    }
}

/// Whether `client` still speaks for the live process `pid`.
fn bound(procs: &ProcessTable, client: ClientId, pid: Option<u32>) -> bool {
    let Some(pid) = pid else { return false };
    procs.conns.get(&client).and_then(|c| c.pid) == Some(pid)
        && procs
            .procs
            .get(&pid)
            .is_some_and(|p| p.state == ProcState::Live && p.connections.contains(&client))
}

/// The arguments of a `futex` call.
#[derive(Clone, Copy, Debug)]
pub struct FutexArgs {
    pub uaddr: u64,
    pub op: u32,
    pub val: u32,
    pub timeout_ns: Option<u64>,
    pub val2: u32,
    pub uaddr2: u64,
    pub val3: u32,
}

const NS_PER_MS: u64 = 1_000_000;

/// Nanoseconds to whole milliseconds, rounded up (a wait never ends early).
fn ns_to_ms(ns: u64) -> u64 {
    ns / NS_PER_MS + u64::from(!ns.is_multiple_of(NS_PER_MS))
}

/// How many a wake's `int` count lets wake: Linux's `futex_wake` and
/// `futex_wake_op` stop once `++woken >= nr_wake`, so 0 or a negative
/// count still wakes one waiter, `INT_MAX` wakes all.
fn wake_count(v: u32) -> usize {
    usize::try_from(i32::from_ne_bytes(v.to_ne_bytes())).map_or(1, |n| n.max(1))
}

/// Whether the word is written (`FUTEX_WAKE_OP`'s second word) or only
/// read (Linux's `FUTEX_WRITE` / `FUTEX_READ` of `get_futex_key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// What `FUTEX_WAKE_OP` does to the second word.
#[derive(Clone, Copy, Debug)]
enum WordOp {
    Set,
    Add,
    Or,
    AndNot,
    Xor,
}

/// `FUTEX_WAKE_OP`'s `val3`, decoded as Linux's `futex_atomic_op_inuser`.
#[derive(Clone, Copy, Debug)]
struct WakeOp {
    op: WordOp,
    oparg: u32,
    cmp: u32,
    cmparg: i32,
}

/// The low 12 bits of `v` as a signed number.
fn sign_extend_12(v: u32) -> i32 {
    i32::from_ne_bytes(((v & 0xfff) << 20).to_ne_bytes()) >> 20
}

impl WakeOp {
    /// `ENOSYS` for an operation Linux does not know (before the word is
    /// touched); the comparison is checked after, as Linux does.
    fn decode(encoded: u32) -> Result<Self, Errno> {
        let op = match (encoded >> 28) & 7 {
            FUTEX_OP_SET => WordOp::Set,
            FUTEX_OP_ADD => WordOp::Add,
            FUTEX_OP_OR => WordOp::Or,
            FUTEX_OP_ANDN => WordOp::AndNot,
            FUTEX_OP_XOR => WordOp::Xor,
            _ => return Err(Errno::ENOSYS),
        };
        let mut oparg = sign_extend_12(encoded >> 12);
        if encoded & (FUTEX_OP_OPARG_SHIFT << 28) != 0 {
            // Linux warns about a shift outside 0..=31 and masks it.
            oparg = 1i32 << (oparg & 31);
        }
        Ok(WakeOp {
            op,
            oparg: u32::from_ne_bytes(oparg.to_ne_bytes()),
            cmp: (encoded >> 24) & 0xf,
            cmparg: sign_extend_12(encoded),
        })
    }

    /// The word's new value.
    fn apply(self, old: u32) -> u32 {
        match self.op {
            WordOp::Set => self.oparg,
            WordOp::Add => old.wrapping_add(self.oparg),
            WordOp::Or => old | self.oparg,
            WordOp::AndNot => old & !self.oparg,
            WordOp::Xor => old ^ self.oparg,
        }
    }

    /// Whether the second word's waiters wake, from its old value (a
    /// signed `int`, as Linux compares it); `ENOSYS` for an unknown
    /// comparison.
    fn holds(self, old: u32) -> Result<bool, Errno> {
        let old = i32::from_ne_bytes(old.to_ne_bytes());
        let arg = self.cmparg;
        Ok(match self.cmp {
            FUTEX_OP_CMP_EQ => old == arg,
            FUTEX_OP_CMP_NE => old != arg,
            FUTEX_OP_CMP_LT => old < arg,
            FUTEX_OP_CMP_LE => old <= arg,
            FUTEX_OP_CMP_GT => old > arg,
            FUTEX_OP_CMP_GE => old >= arg,
            _ => return Err(Errno::ENOSYS),
        })
    }
}

/// A count the C call passes as an `int`: negative → `EINVAL`.
fn count(v: u32) -> Result<usize, Errno> {
    let n = i32::from_ne_bytes(v.to_ne_bytes());
    usize::try_from(n).map_err(|_| Errno::EINVAL)
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `futex(2)`: `Some(reply)` now, `None` for a wait whose reply is held.
    pub(crate) fn sys_futex(
        &mut self,
        who: &Caller,
        a: &FutexArgs,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let cmd = a.op & FUTEX_CMD_MASK;
        let private = a.op & FUTEX_PRIVATE_FLAG != 0;
        if a.op & FUTEX_CLOCK_REALTIME != 0 && cmd != FUTEX_WAIT_BITSET {
            return Err(Errno::ENOSYS);
        }
        match cmd {
            FUTEX_WAIT | FUTEX_WAIT_BITSET => {
                let (bitset, timeout) = if cmd == FUTEX_WAIT {
                    let t = a
                        .timeout_ns
                        .map_or(Timeout::Never, |ns| Timeout::After(ns_to_ms(ns)));
                    (FUTEX_BITSET_MATCH_ANY, t)
                } else {
                    let t = a
                        .timeout_ns
                        .map_or(Timeout::Never, |ns| Timeout::At(ns_to_ms(ns)));
                    (a.val3, t)
                };
                if bitset == 0 {
                    return Err(Errno::EINVAL);
                }
                self.futex_wait(who, a.uaddr, private, a.val, bitset, timeout)
            }
            FUTEX_WAKE | FUTEX_WAKE_BITSET => {
                let bitset = if cmd == FUTEX_WAKE {
                    FUTEX_BITSET_MATCH_ANY
                } else {
                    a.val3
                };
                if bitset == 0 {
                    return Err(Errno::EINVAL);
                }
                let key = self.futex_key(who.mm, a.uaddr, private, Access::Read)?;
                let woken = self.futex_wake(&key, bitset, wake_count(a.val), fx);
                Ok(Answer::Now(Reply::Value(woken as i64)))
            }
            FUTEX_WAKE_OP => self.futex_wake_op(who, a, private, fx),
            FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
                let nr_wake = count(a.val)?;
                let nr_requeue = count(a.val2)?;
                let key1 = self.futex_key(who.mm, a.uaddr, private, Access::Read)?;
                let key2 = self.futex_key(who.mm, a.uaddr2, private, Access::Read)?;
                if cmd == FUTEX_CMP_REQUEUE && self.memory.load_u32(a.uaddr) != a.val3 {
                    return Err(Errno::EAGAIN);
                }
                let n = self.futex_requeue(&key1, &key2, nr_wake, nr_requeue, fx);
                Ok(Answer::Now(Reply::Value(n as i64)))
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    /// The key of the word at `addr` for the address space `mm` (§8.2,
    /// with the mapping checks of the module docs; a word to be written
    /// needs a writable mapping). On success the word lies inside one of
    /// `mm`'s mappings and the arena.
    fn futex_key(
        &self,
        mm: MmId,
        addr: u64,
        private: bool,
        access: Access,
    ) -> Result<FutexKey, Errno> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let base = self.config.arena_base;
        let in_arena = addr >= base
            && addr
                .checked_add(4)
                .zip(base.checked_add(self.config.arena_size))
                .is_some_and(|(end, top)| end <= top);
        let space = self.nommu.mms.get(&mm).ok_or(Errno::EFAULT)?;
        let vkey = space.find_vma(addr).ok_or(Errno::EFAULT)?;
        let vma = space.get(&vkey).ok_or(Errno::EFAULT)?;
        if !private && vma.flags & VM_IO != 0 {
            return Err(Errno::EPERM);
        }
        // No read (or, to be written, write) permission, or memory outside
        // the arena the server cannot reach: MMU Linux's fault (module docs).
        let needs = match access {
            Access::Read => VM_READ,
            Access::Write => VM_READ | VM_WRITE,
        };
        if vma.flags & needs != needs || !in_arena {
            return Err(Errno::EFAULT);
        }
        if private {
            return Ok(FutexKey::Private { mm, addr });
        }
        if !is_shareable(vma.flags) {
            return Ok(FutexKey::Private { mm, addr });
        }
        let rel = addr.checked_sub(vkey.start).ok_or(Errno::EFAULT)?;
        let offset = u32::try_from(rel % PAGE_SIZE).map_err(|_| Errno::EFAULT)?;
        Ok(match &vma.backing {
            Some(obj) => FutexKey::Shared {
                backing: Backing::Object(obj.key),
                page: vma
                    .pgoff
                    .checked_add(rel / PAGE_SIZE)
                    .ok_or(Errno::EFAULT)?,
                offset,
            },
            // A region's memory never moves: its address names the word.
            None => FutexKey::Shared {
                backing: Backing::Region(vma.region),
                page: addr / PAGE_SIZE,
                offset: u32::try_from(addr % PAGE_SIZE).map_err(|_| Errno::EFAULT)?,
            },
        })
    }

    fn futex_wait(
        &mut self,
        who: &Caller,
        uaddr: u64,
        private: bool,
        val: u32,
        bitset: u32,
        timeout: Timeout,
    ) -> Result<Answer, Errno> {
        let key = self.futex_key(who.mm, uaddr, private, Access::Read)?;
        if self.memory.load_u32(uaddr) != val {
            return Err(Errno::EAGAIN);
        }
        if let (Timeout::At(at), Some(now)) = (timeout, self.ops.clock) {
            if at <= now {
                return Err(ETIMEDOUT);
            }
        }
        if self.futex.waits_of(who.client) >= self.config.max_pending_ops {
            return Err(Errno::ENOMEM);
        }
        self.futex.insert(Waiter {
            client: who.client,
            tag: who.tag,
            pid: who.pid,
            key,
            bitset,
            timeout,
        });
        Ok(Answer::Later)
    }

    /// Wake up to `n` waiters of `key` (oldest first); how many woke.
    fn futex_wake(&mut self, key: &FutexKey, bitset: u32, n: usize, fx: &mut Vec<Effect>) -> usize {
        let seqs = self.futex.oldest(key, bitset, n);
        let mut woken = 0usize;
        for seq in seqs {
            if let Some(w) = self.futex.remove(seq) {
                answer(&w, &Reply::Value(0), fx);
                woken = woken.saturating_add(1);
            }
        }
        woken
    }

    /// `FUTEX_WAKE_OP` (Linux's `futex_wake_op`, module docs): how many
    /// woke on both words.
    fn futex_wake_op(
        &mut self,
        who: &Caller,
        a: &FutexArgs,
        private: bool,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let key1 = self.futex_key(who.mm, a.uaddr, private, Access::Read)?;
        let key2 = self.futex_key(who.mm, a.uaddr2, private, Access::Write)?;
        let op = WakeOp::decode(a.val3)?;
        let old = self.memory.update_u32(a.uaddr2, &|v| op.apply(v));
        // As Linux, an unknown comparison fails after the word changed.
        let wake2 = op.holds(old)?;
        let any = FUTEX_BITSET_MATCH_ANY;
        let mut woken = self.futex_wake(&key1, any, wake_count(a.val), fx);
        if wake2 {
            woken = woken.saturating_add(self.futex_wake(&key2, any, wake_count(a.val2), fx));
        }
        Ok(Answer::Now(Reply::Value(woken as i64)))
    }

    /// Wake `nr_wake` waiters of `key1`, move up to `nr_requeue` more to
    /// `key2`; how many were woken or moved.
    fn futex_requeue(
        &mut self,
        key1: &FutexKey,
        key2: &FutexKey,
        nr_wake: usize,
        nr_requeue: usize,
        fx: &mut Vec<Effect>,
    ) -> usize {
        let total = nr_wake.saturating_add(nr_requeue);
        let seqs = self.futex.oldest(key1, FUTEX_BITSET_MATCH_ANY, total);
        let mut done = 0usize;
        for seq in seqs {
            if done < nr_wake {
                if let Some(w) = self.futex.remove(seq) {
                    answer(&w, &Reply::Value(0), fx);
                }
            } else if key1 != key2 {
                if let Some(mut w) = self.futex.remove(seq) {
                    w.key = *key2;
                    self.futex.insert(w);
                }
            }
            done = done.saturating_add(1);
        }
        done
    }

    /// The clock reached `now`: start relative timeouts, fail the waits
    /// whose time is up with `ETIMEDOUT`.
    pub(crate) fn futex_tick(&mut self, now: u64, fx: &mut Vec<Effect>) {
        for w in self.futex.expire(now) {
            answer(&w, &Reply::Error(ETIMEDOUT), fx);
        }
    }

    /// Forget the waits of connections that went or stopped speaking for
    /// their process.
    pub(crate) fn futex_prune(&mut self) {
        if self.futex.len() != 0 {
            self.futex.prune(&self.procs);
        }
    }
}

fn answer(w: &Waiter, reply: &Reply, fx: &mut Vec<Effect>) {
    fx.push(Effect::Send {
        to: w.client,
        frame: FrameBuf::reply(w.tag, reply),
    });
}

#[cfg(test)]
#[path = "tests/futex.rs"]
mod tests;
