//! A device's contents as one fixed run of arena bytes (a ramdisk array,
//! a screen, a flash window, register memory): reads and writes clip at
//! its end the way Linux's block and character devices do. [`Storage`]
//! is such contents allocated at start.

use crate::flags::{available, data_len, page_offset, pages};
use crate::DriverHost;
use protocol::{Bytes, Errno};

/// `len` bytes of the arena at `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub base: u64,
    pub len: u64,
}

impl Window {
    /// Zeroed, contiguous storage for `len` (> 0) bytes.
    pub fn allocate(host: &mut dyn DriverHost, len: u64) -> Result<Self, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let base = host.alloc_backing(pages(len))?;
        Ok(Self { base, len })
    }

    /// Storage for `len` bytes, filled by `fill` (given its address). When
    /// filling fails the storage goes back, best effort (it is useless
    /// unfilled), and the fill's error is the answer.
    pub fn allocate_filled(
        host: &mut dyn DriverHost,
        len: u64,
        fill: impl FnOnce(&mut dyn DriverHost, u64) -> Result<(), Errno>,
    ) -> Result<Self, Errno> {
        let window = Self::allocate(host, len)?;
        if let Err(e) = fill(host, window.base) {
            let _ = host.free_backing(window.base, pages(len));
            return Err(e);
        }
        Ok(window)
    }

    /// The address of `[pgoff·P, pgoff·P + len)`, which must be non-empty
    /// and lie inside (else `EINVAL`, a bad offset).
    pub fn range(&self, len: u64, pgoff: u64) -> Result<u64, Errno> {
        let offset = page_offset(pgoff)?;
        if len == 0 || offset >= self.len || len > self.len.saturating_sub(offset) {
            return Err(Errno::EINVAL);
        }
        self.addr(offset)
    }

    /// The arena address of byte `offset` (which must lie inside).
    pub fn addr(&self, offset: u64) -> Result<u64, Errno> {
        if offset > self.len {
            return Err(Errno::EINVAL);
        }
        self.base.checked_add(offset).ok_or(Errno::EFAULT)
    }

    /// `read()`: at most `len` bytes from `offset`, none at or past the end.
    pub fn read_data(
        &self,
        host: &mut dyn DriverHost,
        offset: u64,
        len: u32,
    ) -> Result<Bytes, Errno> {
        let want = data_len(len) as u64;
        let n = available(offset, want, self.len);
        let mut bytes = crate::flags::zeroed_bytes(usize::try_from(n).map_err(|_| Errno::EIO)?)?;
        if n > 0 {
            host.read_arena(self.addr(offset)?, &mut bytes)?;
        }
        Ok(bytes)
    }

    /// Fill a private copy at `dest` from `offset`; short at the end.
    pub fn read_into(
        &self,
        host: &mut dyn DriverHost,
        offset: u64,
        len: u64,
        dest: u64,
    ) -> Result<u64, Errno> {
        let n = available(offset, len, self.len);
        if n > 0 {
            host.copy_arena(self.addr(offset)?, dest, n)?;
        }
        Ok(n)
    }

    /// `write()`: short at the end; `ENOSPC` at or past it (as block and
    /// framebuffer devices answer).
    pub fn write_data(
        &self,
        host: &mut dyn DriverHost,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, Errno> {
        if data.is_empty() {
            return Ok(0);
        }
        let n = available(offset, data.len() as u64, self.len);
        if n == 0 {
            return Err(Errno::ENOSPC);
        }
        let part = data
            .get(..usize::try_from(n).map_err(|_| Errno::EIO)?)
            .ok_or(Errno::EIO)?;
        host.write_arena(self.addr(offset)?, part)?;
        Ok(n)
    }
}

/// A device's contents (a ramdisk array, a screen, register memory):
/// `size` bytes of arena, allocated once, at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Storage {
    /// `None` when the size did not fit in 64 bits.
    size: Option<u64>,
    window: Option<Window>,
}

impl Storage {
    pub fn new(size: Option<u64>) -> Self {
        Self { size, window: None }
    }

    #[cfg(test)]
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Allocate the contents, zeroed: `EBUSY` when started already,
    /// `EINVAL` without a size.
    pub fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        if self.window.is_some() {
            return Err(Errno::EBUSY);
        }
        let size = self.size.ok_or(Errno::EINVAL)?;
        self.window = Some(Window::allocate(host, size)?);
        Ok(())
    }

    /// The contents, or `EIO` before start.
    pub fn window(&self) -> Result<Window, Errno> {
        self.window.ok_or(Errno::EIO)
    }

    /// The contents' arena address, once started.
    pub fn base(&self) -> Option<u64> {
        self.window.map(|w| w.base)
    }
}
