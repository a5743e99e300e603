//! What the vectors share: assertion macros that return a [`Failure`]
//! naming the line, a process wrapper over the client core, the set-up
//! steps several sections take (opening a file that must open, `/dev/tst`
//! configured for one vector), and readers for the `/proc` texts the
//! vectors measure with.

use super::env::{TestDevConfig, TestDevControl, TestDevCounters, O_CREAT, O_RDWR, O_TRUNC};
use super::{Failure, Harness, Landmark, ProcessConnection};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use nommu::{Client, Transport};
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
use protocol::{
    decode_reply, encode_request, Errno, ProcView, Reply, Request, Sysctl, MAX_FRAME, PAGE_SIZE,
};

/// The page size, `P` in the spec.
pub const P: u64 = PAGE_SIZE;
/// `PROT_READ | PROT_WRITE`.
pub const RW: u32 = PROT_READ | PROT_WRITE;
/// `MAP_PRIVATE | MAP_ANONYMOUS`.
pub const PRIVATE_ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

/// A failure at the caller's line.
pub fn failure(line: u32, message: String) -> Failure {
    Failure {
        message: format!("line {line}: {message}"),
    }
}

/// Fail unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::support::failure(line!(), alloc::format!($($fmt)+)));
        }
    };
}

/// Fail unless the two values are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($fmt:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err($crate::support::failure(
                line!(),
                alloc::format!("{}: got {:?}, expected {:?}", alloc::format!($($fmt)+), left, right),
            ));
        }
    }};
}

/// Fail unless the call failed with exactly this errno.
macro_rules! ensure_errno {
    ($result:expr, $errno:expr, $($fmt:tt)+) => {{
        let result = $result;
        if result.as_ref().err() != Some(&$errno) {
            return Err($crate::support::failure(
                line!(),
                alloc::format!("{}: got {:?}, expected Err({:?})", alloc::format!($($fmt)+), result, $errno),
            ));
        }
    }};
}

/// The value of a call that must succeed (a step of the set-up, say).
macro_rules! ok {
    ($result:expr, $($fmt:tt)+) => {
        match $result {
            Ok(value) => value,
            Err(error) => {
                return Err($crate::support::failure(
                    line!(),
                    alloc::format!("{}: unexpected error {:?}", alloc::format!($($fmt)+), error),
                ))
            }
        }
    };
}

/// A borrowed transport as a [`Transport`], so the client core can run
/// over whatever the home's connection is.
pub struct DynTransport<'a>(pub &'a dyn Transport);

impl Transport for DynTransport<'_> {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        self.0.call(request, reply)
    }

    fn exchange(
        &self,
        encode: &mut dyn FnMut(&mut [u8; MAX_FRAME]) -> usize,
        decode: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Errno> {
        self.0.exchange(encode, decode)
    }
}

/// A process as the vectors use it.
pub struct Process<'h> {
    connection: Box<dyn ProcessConnection + 'h>,
}

impl<'h> Process<'h> {
    /// A new process of `home`.
    pub fn spawn(harness: &'h dyn Harness) -> Result<Self, Failure> {
        let connection = harness
            .spawn()
            .map_err(|e| failure(line!(), format!("spawning a process: {e:?}")))?;
        Ok(Self { connection })
    }

    /// Two new processes of `home`, spawned in order (the vectors' A and
    /// B, or a debugger and its tracee).
    pub fn two(harness: &'h dyn Harness) -> Result<(Self, Self), Failure> {
        let first = Self::spawn(harness)?;
        Ok((first, Self::spawn(harness)?))
    }

    /// A new process of `home` running as `uid`/`gid`.
    pub fn spawn_as(harness: &'h dyn Harness, uid: u32, gid: u32) -> Result<Self, Failure> {
        let connection = harness.spawn_as(uid, gid).map_err(|e| {
            failure(
                line!(),
                format!("spawning a process as uid {uid}, gid {gid}: {e:?}"),
            )
        })?;
        Ok(Self { connection })
    }

    /// Start `request` without waiting for its answer (a futex wait);
    /// [`SplitCall::finish`] waits for it. Until then this process makes no
    /// other call.
    pub fn begin(&self, request: &Request) -> Result<SplitCall<'_, 'h>, Failure> {
        let mut out = [0u8; MAX_FRAME];
        let len = encode_request(PENDING_TAG, request, &mut out);
        self.connection
            .begin(&out[..len])
            .map_err(|e| failure(line!(), format!("starting {request:?}: {e:?}")))?;
        Ok(SplitCall { process: self })
    }

    /// The clone child named by `ticket`.
    pub fn attach(harness: &'h dyn Harness, ticket: u64) -> Result<Self, Failure> {
        let connection = harness
            .attach(ticket)
            .map_err(|e| failure(line!(), format!("attaching a clone child: {e:?}")))?;
        Ok(Self { connection })
    }

    /// `clone(flags)` of this process, `what` naming the call, and the
    /// child's connection (whose pid must be the one `clone` returned).
    pub fn clone_child(
        &self,
        harness: &'h dyn Harness,
        flags: u64,
        what: &str,
    ) -> Result<Self, Failure> {
        let (pid, ticket) = ok!(self.client().clone_process(flags), "{what}");
        let child = Self::attach(harness, ticket)?;
        ensure_eq!(child.pid(), pid, "the pid of the child of {what}");
        Ok(child)
    }

    pub fn pid(&self) -> u32 {
        self.connection.pid()
    }

    /// The client core over this process's connection.
    pub fn client(&self) -> Client<DynTransport<'_>> {
        super::client(&*self.connection)
    }

    /// `mmap(hint, len, prot, flags, -1, 0)`.
    pub fn mmap(&self, hint: u64, len: u64, prot: u32, flags: u32) -> Result<u64, Errno> {
        self.client().mmap(hint, len, prot, flags, -1, 0)
    }

    /// `mmap(0, len, RW, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)`.
    pub fn anon(&self, len: u64) -> Result<u64, Errno> {
        self.mmap(0, len, RW, PRIVATE_ANON)
    }

    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        self.client().munmap(addr, len)
    }

    /// `open(path, flags, 0600)`.
    pub fn open(&self, path: &str, flags: u32) -> Result<i32, Errno> {
        self.client().open(path, flags, 0o600)
    }

    /// `mmap(0, len, prot, flags, fd, offset)` with a byte offset.
    pub fn map_fd(
        &self,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i32,
        offset: u64,
    ) -> Result<u64, Errno> {
        self.client().mmap(0, len, prot, flags, fd, offset)
    }

    /// `mmap(0, len, prot, flags, fd, offset)`, `what` naming it, as a
    /// direct mapping: it lands at `at` and costs no copy (`MmapCopy`
    /// unchanged). Returns the address.
    pub fn map_direct(
        &self,
        fd: i32,
        (len, prot, flags, offset): (u64, u32, u32, u64),
        at: u64,
        what: &str,
    ) -> Result<u64, Failure> {
        let before = self.mmap_copy_kb()?;
        let x = ok!(self.map_fd(len, prot, flags, fd, offset), "{what}");
        ensure_eq!(x, at, "address of {what}");
        ensure_eq!(self.mc_delta(before)?, 0, "MC delta of {what}");
        Ok(x)
    }

    /// `open(path, flags)` then `mmap(0, len, prot, flags, fd, offset)`;
    /// the descriptor stays open (closed with the process).
    pub fn open_map(
        &self,
        path: &str,
        open_flags: u32,
        len: u64,
        prot: u32,
        flags: u32,
        offset: u64,
    ) -> Result<u64, Failure> {
        let fd = self
            .open(path, open_flags)
            .map_err(|e| failure(line!(), format!("open({path:?}, {open_flags:#o}): {e:?}")))?;
        self.map_fd(len, prot, flags, fd, offset).map_err(|e| {
            failure(
                line!(),
                format!("mmap of {path} (len {len:#x}, prot {prot:#x}, flags {flags:#x}, offset {offset:#x}): {e:?}"),
            )
        })
    }

    /// A memory-filesystem file truncated from 0 to `size` (the way to
    /// get one contiguous run, §7.5), opened `O_RDWR`; returns the fd.
    pub fn fresh_file(&self, path: &str, size: u64) -> Result<i32, Failure> {
        let fd = self.open(path, O_CREAT | O_RDWR | O_TRUNC).map_err(|e| {
            failure(
                line!(),
                format!("open({path:?}, O_CREAT|O_RDWR|O_TRUNC): {e:?}"),
            )
        })?;
        if size > 0 {
            self.client().ftruncate(fd, size).map_err(|e| {
                failure(line!(), format!("ftruncate({path}, {size}) from 0: {e:?}"))
            })?;
        }
        Ok(fd)
    }

    /// A [`Process::fresh_file`] of `size` bytes mapped whole, SHARED and
    /// read-write; returns the fd and the address.
    pub fn shared_fresh_file(&self, path: &str, size: u64) -> Result<(i32, u64), Failure> {
        let fd = self.fresh_file(path, size)?;
        let addr = self
            .map_fd(size, RW, MAP_SHARED, fd, 0)
            .map_err(|e| failure(line!(), format!("SHARED RW of {path}: {e:?}")))?;
        Ok((fd, addr))
    }

    /// `/proc/maps`: every region.
    pub fn global_maps(&self) -> Result<String, Failure> {
        self.proc_text(ProcView::GlobalMaps)
    }

    /// The whole text of a `/proc` view.
    pub fn proc_text(&self, view: ProcView) -> Result<String, Failure> {
        let mut buf = vec![0u8; 4096];
        loop {
            let total = self
                .client()
                .read_proc(view, &mut buf)
                .map_err(|e| failure(line!(), format!("reading {view:?}: {e:?}")))?;
            if total <= buf.len() {
                buf.truncate(total);
                break;
            }
            buf = vec![0u8; total];
        }
        String::from_utf8(buf).map_err(|_| failure(line!(), format!("{view:?} is not UTF-8")))
    }

    /// `/proc/<pid>/maps` of this process.
    pub fn maps(&self) -> Result<String, Failure> {
        self.proc_text(ProcView::ProcessMaps { pid: self.pid() })
    }

    /// The `MmapCopy` value of `/proc/meminfo`, in kB.
    pub fn mmap_copy_kb(&self) -> Result<u64, Failure> {
        let text = self.proc_text(ProcView::Meminfo)?;
        mmap_copy_kb(&text).ok_or_else(|| {
            failure(
                line!(),
                format!("no readable MmapCopy line in /proc/meminfo: {text:?}"),
            )
        })
    }

    /// How much `MmapCopy` (kB) changed since it read `before`.
    pub fn mc_delta(&self, before: u64) -> Result<i64, Failure> {
        Ok(self.mmap_copy_kb()? as i64 - before as i64)
    }

    /// `/proc/sys/vm/nr_trim_pages`.
    pub fn nr_trim_pages(&self) -> Result<i64, Failure> {
        self.client()
            .read_sysctl(Sysctl::NrTrimPages)
            .map_err(|e| failure(line!(), format!("reading nr_trim_pages: {e:?}")))
    }
}

/// The tag of split calls (the client core counts from 1 per client).
const PENDING_TAG: u32 = u32::MAX;

/// A call [`Process::begin`] started.
pub struct SplitCall<'p, 'h> {
    process: &'p Process<'h>,
}

impl SplitCall<'_, '_> {
    /// Wait for the answer; an error reply becomes `Err`.
    pub fn finish(self) -> Result<Reply, Errno> {
        let mut back = [0u8; MAX_FRAME];
        let got = self.process.connection.finish(&mut back)?;
        let frame = decode_reply(back.get(..got).ok_or(Errno::EPROTO)?).map_err(|e| e.errno())?;
        if frame.tag != PENDING_TAG {
            return Err(Errno::EPROTO);
        }
        frame.message.into_result()
    }
}

/// `nr_trim_pages` set for the life of the guard, then put back.
pub struct TrimPages<'p, 'h> {
    process: &'p Process<'h>,
    saved: i64,
}

impl<'p, 'h> TrimPages<'p, 'h> {
    pub fn set(process: &'p Process<'h>, value: i64) -> Result<Self, Failure> {
        let saved = process.nr_trim_pages()?;
        process
            .client()
            .write_sysctl(Sysctl::NrTrimPages, value)
            .map_err(|e| failure(line!(), format!("writing nr_trim_pages = {value}: {e:?}")))?;
        Ok(Self { process, saved })
    }
}

impl Drop for TrimPages<'_, '_> {
    fn drop(&mut self) {
        // Nothing to report to from here; a vector that depends on the
        // restored value reads it itself.
        let _ = self
            .process
            .client()
            .write_sysctl(Sysctl::NrTrimPages, self.saved);
    }
}

/// `/dev/tst` configured for the life of the guard, then put back to the
/// default device.
pub struct Tst<'h> {
    device: &'h TestDevControl,
}

impl<'h> Tst<'h> {
    /// The home's `/dev/tst`, configured as `config`.
    pub fn set(harness: &'h dyn Harness, config: TestDevConfig) -> Result<Self, Failure> {
        let device = harness
            .test_device()
            .ok_or_else(|| failure(line!(), "the harness has no /dev/tst".into()))?;
        device.configure(config);
        Ok(Self { device })
    }

    /// The home's `/dev/tst` configured as `config`, then a new process
    /// that opened it with `flags`: how the device vectors begin. The
    /// guard comes first so that it outlives the process.
    pub fn opened(
        harness: &'h dyn Harness,
        config: TestDevConfig,
        flags: u32,
    ) -> Result<(Self, Process<'h>, i32), Failure> {
        let tst = Self::set(harness, config)?;
        let p = Process::spawn(harness)?;
        let fd = open(&p, super::env::TST, flags)?;
        Ok((tst, p, fd))
    }

    /// Where the device's page 0 lives (the spec's `0x50000000`).
    pub fn base(&self) -> u64 {
        self.device.base()
    }

    pub fn counters(&self) -> TestDevCounters {
        self.device.counters()
    }

    /// Fail unless the device is told of exactly `closes` more removed
    /// mappings than `since` counted. memsrv does not wait for the device
    /// to answer a `close`, and queues each behind the object's earlier
    /// calls; an `fstat` of the object through `fd` is queued behind them
    /// too, so when it returns they have been served. The wait is bounded.
    pub fn expect_closes(
        &self,
        p: &Process<'_>,
        fd: i32,
        since: TestDevCounters,
        closes: u64,
    ) -> Result<(), Failure> {
        let mut seen = self.counters();
        for _ in 0..100 {
            let _ = p.client().fstat(fd);
            seen = self.counters();
            if seen.close_calls >= since.close_calls + closes {
                break;
            }
        }
        ensure_eq!(
            seen.close_calls - since.close_calls,
            closes,
            "driver close calls"
        );
        Ok(())
    }
}

impl Drop for Tst<'_> {
    fn drop(&mut self) {
        self.device.configure(TestDevConfig::default());
    }
}

/// `open(path, flags)` that must succeed.
pub fn open(p: &Process<'_>, path: &str, flags: u32) -> Result<i32, Failure> {
    Ok(ok!(p.open(path, flags), "open({path:?}, {flags:#o})"))
}

/// The home's address for a landmark of the test environment.
pub fn landmark(harness: &dyn Harness, which: Landmark) -> Result<u64, Failure> {
    harness
        .landmark(which)
        .ok_or_else(|| failure(line!(), format!("the harness does not place {which:?}")))
}

/// Fail unless `len` bytes at `addr` are `byte_at(0..len)`.
pub fn expect_bytes(
    harness: &dyn Harness,
    addr: u64,
    len: u64,
    byte_at: impl Fn(u64) -> u8,
    what: &str,
) -> Result<(), Failure> {
    let mut page = [0u8; P as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(P) as usize;
        harness.read(addr + done, &mut page[..n]).map_err(|e| {
            failure(
                line!(),
                format!("{what}: reading {:#x}: {e:?}", addr + done),
            )
        })?;
        for (i, &got) in page[..n].iter().enumerate() {
            let at = done + i as u64;
            if got != byte_at(at) {
                return Err(failure(
                    line!(),
                    format!(
                        "{what}: byte {at} (at {:#x}) is {got:#04x}, expected {:#04x}",
                        addr + at,
                        byte_at(at)
                    ),
                ));
            }
        }
        done += n as u64;
    }
    Ok(())
}

/// The lines of a maps text whose range is exactly `[start, end)`.
pub fn lines_for(maps: &str, start: u64, end: u64) -> Vec<&str> {
    let range = format!("{start:08x}-{end:08x} ");
    maps.lines().filter(|l| l.starts_with(&range)).collect()
}

/// The kB figure of the `MmapCopy:` line.
pub fn mmap_copy_kb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MmapCopy:"))?;
    let value = line.strip_prefix("MmapCopy:")?.trim().strip_suffix("kB")?;
    value.trim().parse().ok()
}

/// The address ranges of a maps text, in the order listed.
pub fn ranges(maps: &str) -> Result<Vec<(u64, u64)>, Failure> {
    maps.lines()
        .map(|line| {
            let field = line.split(' ').next().unwrap_or("");
            let (start, end) = field
                .split_once('-')
                .ok_or_else(|| failure(line!(), format!("maps line without a range: {line:?}")))?;
            let parse = |hex: &str| {
                u64::from_str_radix(hex, 16)
                    .map_err(|_| failure(line!(), format!("bad address in maps line {line:?}")))
            };
            Ok((parse(start)?, parse(end)?))
        })
        .collect()
}

/// The ranges of a maps text that overlap `[start, end)`.
pub fn ranges_within(maps: &str, start: u64, end: u64) -> Result<Vec<(u64, u64)>, Failure> {
    Ok(ranges(maps)?
        .into_iter()
        .filter(|&(s, e)| s < end && start < e)
        .collect())
}

/// The maps line of an anonymous private RW mapping, as §9.1 formats it.
pub fn anon_rw_line(start: u64, end: u64) -> String {
    format!("{start:08x}-{end:08x} rw-p 00000000 00:00 0 ")
}

/// Fail unless `len` bytes at `addr` all equal `byte`.
pub fn expect_filled(
    harness: &dyn Harness,
    addr: u64,
    len: u64,
    byte: u8,
    what: &str,
) -> Result<(), Failure> {
    let mut page = [0u8; P as usize];
    let mut at = addr;
    while at < addr + len {
        let n = (addr + len - at).min(P) as usize;
        harness
            .read(at, &mut page[..n])
            .map_err(|e| failure(line!(), format!("{what}: reading {at:#x}: {e:?}")))?;
        if let Some(i) = page[..n].iter().position(|&b| b != byte) {
            return Err(failure(
                line!(),
                format!(
                    "{what}: byte at {:#x} is {:#04x}, expected {byte:#04x}",
                    at + i as u64,
                    page[i]
                ),
            ));
        }
        at += n as u64;
    }
    Ok(())
}

/// Set `len` bytes at `addr` to `byte`.
pub fn fill(harness: &dyn Harness, addr: u64, len: u64, byte: u8) -> Result<(), Failure> {
    let page = [byte; P as usize];
    let mut at = addr;
    while at < addr + len {
        let n = (addr + len - at).min(P) as usize;
        harness
            .write(at, &page[..n])
            .map_err(|e| failure(line!(), format!("writing {at:#x}: {e:?}")))?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_maps_parse() {
        let meminfo = "MemTotal:          1024 kB\nMmapCopy:             20 kB\n";
        assert_eq!(mmap_copy_kb(meminfo), Some(20));
        assert_eq!(mmap_copy_kb("MemTotal: 1 kB\n"), None);
        let maps = "00a40000-00a42000 rw-p 00000000 00:00 0 \n7f0000001000-7f0000003000 rw-p 00000000 00:00 0 \n";
        assert_eq!(
            ranges(maps).unwrap(),
            [(0xa40000, 0xa42000), (0x7f0000001000, 0x7f0000003000)]
        );
        assert_eq!(
            ranges_within(maps, 0xa41000, 0xa50000).unwrap(),
            [(0xa40000, 0xa42000)]
        );
        assert!(ranges("garbage\n").is_err());
        assert_eq!(
            anon_rw_line(0xa40000, 0xa42000),
            "00a40000-00a42000 rw-p 00000000 00:00 0 "
        );
    }
}
