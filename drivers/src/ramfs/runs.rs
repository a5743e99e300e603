//! The allocations a memory filesystem's pages came from, so that pages
//! go back to the server in the pieces it can take.

use crate::flags::P;
use crate::DriverHost;
use alloc::collections::BTreeMap;
use protocol::Errno;

/// The allocations the files' pages came from (start → pages). The
/// server takes back any part of one run, never a span across two runs
/// that happen to be adjacent, so frees are grouped by run.
#[derive(Default)]
pub(super) struct Runs(BTreeMap<u64, u64>);

impl Runs {
    pub fn add(&mut self, start: u64, pages: u64) {
        self.0.insert(start, pages);
    }

    /// The end address of the run holding `addr`.
    fn end_of(&self, addr: u64) -> Option<u64> {
        let (start, pages) = self.0.range(..=addr).next_back()?;
        let end = start.checked_add(pages.checked_mul(P)?)?;
        (addr < end).then_some(end)
    }

    /// Forget `[addr, addr + pages·P)`, which lies inside one run.
    fn remove(&mut self, addr: u64, pages: u64) {
        let Some((&start, &len)) = self.0.range(..=addr).next_back() else {
            return;
        };
        self.0.remove(&start);
        let before = addr.saturating_sub(start) / P;
        if before > 0 {
            self.0.insert(start, before);
        }
        let after = len.saturating_sub(before).saturating_sub(pages);
        if after > 0 {
            let at = addr.saturating_add(pages.saturating_mul(P));
            self.0.insert(at, after);
        }
    }

    /// Give pages back, one `FreeBacking` per stretch that is consecutive
    /// and inside one run; the first refusal is reported after trying
    /// them all.
    pub fn free(
        &mut self,
        host: &mut dyn DriverHost,
        pages: impl Iterator<Item = u64>,
    ) -> Result<(), Errno> {
        let mut result = Ok(());
        let mut group: Option<(u64, u64, Option<u64>)> = None;
        for page in pages {
            group = match group {
                Some((start, n, end))
                    if start.checked_add(n.saturating_mul(P)) == Some(page)
                        && end.is_some_and(|e| page < e) =>
                {
                    Some((start, n.saturating_add(1), end))
                }
                Some((start, n, _)) => {
                    result = result.and(self.free_one(host, start, n));
                    Some((page, 1, self.end_of(page)))
                }
                None => Some((page, 1, self.end_of(page))),
            };
        }
        if let Some((start, n, _)) = group {
            result = result.and(self.free_one(host, start, n));
        }
        result
    }

    fn free_one(&mut self, host: &mut dyn DriverHost, start: u64, pages: u64) -> Result<(), Errno> {
        host.free_backing(start, pages)?;
        self.remove(start, pages);
        Ok(())
    }
}
