//! What the server knows of where a memory filesystem's file pages lie
//! (Linux's `address_space` page tree, kept here for leases; spec §7,
//! docs/backing-devices.md "Reads and writes by lease"): the `Pages`
//! answers a lease got, so that a later lease of the same pages is copied
//! without asking the driver again.
//!
//! Only the driver changes where a file's bytes lie, and only when the
//! server asks it something, so the server knows when its knowledge goes
//! stale and forgets it then:
//! - a request naming the object other than `Stat`, `Read`, `ReadData`
//!   and `Pages` (truncate, mapping approval, `Release`, `WriteData`...)
//!   forgets the object;
//! - a `Lookup` with `O_TRUNC`, and the driver's own `FreeBacking`,
//!   `BeginExclusive` and `EndExclusive` calls, forget every object of the
//!   driver (storage may be given back or moved);
//! - the driver's death forgets everything of it.
//!
//! A `Pages` answer for `write` adds pages and grows the size to its end;
//! the server records both. Sizes are kept as a lower bound (`min_size`):
//! only truncation shrinks a file, and it is a request that forgets. A
//! lease is served from here only when every page of its range is known,
//! the range ends within `min_size`, and (for a write) no page is a hole;
//! anything else asks the driver. Unlinking a name changes nothing: the
//! object lives on while referenced, with its pages.

use alloc::collections::BTreeMap;

use crate::file_flags::O_TRUNC;
use crate::region::{DriverId, ObjectKey};
use protocol::{DriverRequest, PageList, PAGE_SIZE};

/// Most pages remembered per object (64 MiB of file): a larger file's
/// further pages are asked for each time.
const MAX_KNOWN_PAGES: usize = 16384;

/// One object's known pages.
#[derive(Debug, Default)]
struct KnownPages {
    /// The file holds at least this many bytes.
    min_size: u64,
    /// File page index → arena address (0: a hole).
    pages: BTreeMap<u64, u64>,
}

/// The known pages of every object leased from a driver that answers
/// `Pages`.
#[derive(Debug, Default)]
pub struct PageMaps {
    by_object: BTreeMap<ObjectKey, KnownPages>,
}

impl PageMaps {
    /// Forget everything of `driver`.
    pub fn forget_driver(&mut self, driver: DriverId) {
        self.by_object.retain(|key, _| key.driver != driver);
    }

    /// `request` goes to `driver`: forget what it may change.
    pub fn note_sent(&mut self, driver: DriverId, request: &DriverRequest) {
        let object = match *request {
            DriverRequest::Stat { .. }
            | DriverRequest::Read { .. }
            | DriverRequest::ReadData { .. }
            | DriverRequest::Pages { .. }
            | DriverRequest::Sync { .. }
            | DriverRequest::Unlink { .. } => return,
            DriverRequest::Lookup { flags, .. } if flags & O_TRUNC == 0 => return,
            DriverRequest::Lookup { .. } => return self.forget_driver(driver),
            DriverRequest::Transfer { object, .. }
            | DriverRequest::WriteData { object, .. }
            | DriverRequest::GetUnmappedArea { object, .. }
            | DriverRequest::Mmap { object, .. }
            | DriverRequest::CloseVma { object, .. }
            | DriverRequest::Truncate { object, .. }
            | DriverRequest::Release { object }
            | DriverRequest::SetAttributes { object, .. } => object,
        };
        self.by_object.remove(&ObjectKey { driver, object });
    }

    /// A checked `Pages` answer for `[offset, offset + asked)`.
    pub fn learn(&mut self, key: ObjectKey, offset: u64, list: &PageList) {
        let known = self.by_object.entry(key).or_default();
        known.min_size = known.min_size.max(offset.saturating_add(list.len));
        let first = offset / PAGE_SIZE;
        for (index, &page) in (first..).zip(list.pages.iter()) {
            if known.pages.len() < MAX_KNOWN_PAGES || known.pages.contains_key(&index) {
                known.pages.insert(index, page);
            }
        }
    }

    /// The answer the driver would give to `Pages` for `[offset, offset +
    /// len)` (`len` > 0), if it is known.
    pub fn lookup(&self, key: ObjectKey, offset: u64, len: u64, write: bool) -> Option<PageList> {
        let known = self.by_object.get(&key)?;
        let end = offset.checked_add(len)?;
        if end > known.min_size {
            return None;
        }
        let mut pages = heapless::Vec::new();
        for index in offset / PAGE_SIZE..=(end - 1) / PAGE_SIZE {
            let page = *known.pages.get(&index)?;
            if write && page == 0 {
                return None;
            }
            pages.push(page).ok()?;
        }
        Some(PageList { len, pages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: ObjectKey = ObjectKey {
        driver: DriverId(3),
        object: 9,
    };

    fn list(len: u64, pages: &[u64]) -> PageList {
        PageList {
            len,
            pages: heapless::Vec::from_slice(pages).unwrap(),
        }
    }

    #[test]
    fn known_ranges_within_the_size_are_answered() {
        let mut maps = PageMaps::default();
        maps.learn(KEY, 100, &list(5000, &[0x1000, 0x5000]));
        assert_eq!(
            maps.lookup(KEY, 4000, 1100, false),
            Some(list(1100, &[0x1000, 0x5000]))
        );
        // Past what is known to be in the file, or a page not known.
        assert_eq!(maps.lookup(KEY, 4000, 1101, false), None);
        assert_eq!(maps.lookup(KEY, 0, 9000, false), None);
        // A hole reads as zeros but is never written in place.
        maps.learn(KEY, 8192, &list(4096, &[0]));
        assert_eq!(maps.lookup(KEY, 8192, 10, false), Some(list(10, &[0])));
        assert_eq!(maps.lookup(KEY, 8192, 10, true), None);
    }

    #[test]
    fn requests_that_may_move_pages_forget() {
        let mut maps = PageMaps::default();
        let other = ObjectKey {
            driver: DriverId(3),
            object: 10,
        };
        maps.learn(KEY, 0, &list(4096, &[0x1000]));
        maps.learn(other, 0, &list(4096, &[0x2000]));
        maps.note_sent(KEY.driver, &DriverRequest::Stat { object: 9 });
        assert!(maps.lookup(KEY, 0, 1, true).is_some());
        maps.note_sent(KEY.driver, &DriverRequest::Truncate { object: 9, size: 0 });
        assert!(maps.lookup(KEY, 0, 1, false).is_none());
        assert!(maps.lookup(other, 0, 1, false).is_some(), "only the object");
        let lookup = DriverRequest::Lookup {
            path: protocol::Path::try_from("g").unwrap(),
            flags: O_TRUNC,
            mode: 0,
            caller: protocol::Owner { uid: 0, gid: 0 },
        };
        maps.note_sent(KEY.driver, &lookup);
        assert!(
            maps.lookup(other, 0, 1, false).is_none(),
            "the whole driver"
        );
        maps.learn(other, 0, &list(4096, &[0x2000]));
        maps.forget_driver(DriverId(4));
        assert!(maps.lookup(other, 0, 1, false).is_some());
        maps.forget_driver(DriverId(3));
        assert!(maps.lookup(other, 0, 1, false).is_none());
    }
}
