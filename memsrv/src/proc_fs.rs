//! The `/proc` texts, byte for byte in Linux's formats (spec §9):
//! `/proc/<pid>/maps` (`task_nommu.c`), `/proc/maps` (`fs/proc/nommu.c`)
//! `/proc/meminfo` (`fs/proc/meminfo.c`, no-MMU build) and
//! `/proc/buddyinfo` (`frag_show_print` in mm/vmstat.c).

use alloc::string::String;
use core::fmt::Write;

use crate::mm::Mm;
use crate::region::{BackingObject, RegionRegistry};
use crate::vm_flags::{VmFlags, VM_EXEC, VM_MAYSHARE, VM_READ, VM_SHARED, VM_WRITE};
use protocol::PAGE_SIZE;

/// The fields of one maps line.
pub struct MapsLine<'a> {
    pub start: u64,
    pub end: u64,
    pub flags: VmFlags,
    /// File offset in bytes.
    pub offset: u64,
    pub backing: Option<&'a BackingObject>,
}

/// Column the path is padded to: `25 + 6·sizeof(void*) − 1`.
pub fn path_column(word_size: u32) -> usize {
    25 + 6 * word_size as usize - 1
}

/// `%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu `, then for files the padding,
/// one space and the path; then a newline.
pub fn write_maps_line(out: &mut String, line: &MapsLine<'_>, word_size: u32) {
    let line_start = out.len();
    let f = line.flags;
    let (major, minor, inode) = match line.backing {
        Some(b) => (b.dev_major, b.dev_minor, b.inode),
        None => (0, 0, 0),
    };
    let share = if f & VM_MAYSHARE == 0 {
        'p'
    } else if f & VM_SHARED != 0 {
        'S'
    } else {
        's'
    };
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
        line.start,
        line.end,
        if f & VM_READ != 0 { 'r' } else { '-' },
        if f & VM_WRITE != 0 { 'w' } else { '-' },
        if f & VM_EXEC != 0 { 'x' } else { '-' },
        share,
        line.offset,
        major,
        minor,
        inode,
    );
    if let Some(b) = line.backing {
        let column = line_start + path_column(word_size);
        while out.len() < column {
            out.push(' ');
        }
        out.push(' ');
        out.push_str(&b.path);
    }
    out.push('\n');
}

/// `/proc/<pid>/maps`: one line per mapping, ascending.
pub fn process_maps(mm: &Mm, word_size: u32) -> String {
    let mut out = String::new();
    for (key, vma) in mm.iter() {
        let backing = vma.backing.as_deref();
        // Only file mappings show their offset.
        let offset = if backing.is_some() {
            vma.pgoff.wrapping_mul(PAGE_SIZE)
        } else {
            0
        };
        let line = MapsLine {
            start: key.start,
            end: key.end,
            flags: vma.flags,
            offset,
            backing,
        };
        write_maps_line(&mut out, &line, word_size);
    }
    out
}

/// `/proc/maps`: one line per region in registry order, with the region's
/// own extent (`end`, not `top`), flags and page offset.
pub fn global_maps(regions: &RegionRegistry, word_size: u32) -> String {
    let mut out = String::new();
    for (_, r) in regions.iter_ordered() {
        let line = MapsLine {
            start: r.start,
            end: r.end,
            flags: r.flags,
            offset: r.pgoff.wrapping_mul(PAGE_SIZE),
            backing: r.backing.as_deref(),
        };
        write_maps_line(&mut out, &line, word_size);
    }
    out
}

/// What `/proc/meminfo` reports, in pages.
pub struct MemCounts {
    pub total: u64,
    pub free: u64,
    pub mmap_copy: u64,
    /// Pages drivers keep their storage in.
    pub shmem: u64,
}

/// `/proc/meminfo` as a no-MMU kernel without highmem, swap devices, zswap,
/// hugepages or memory-failure support prints it. What the server does not
/// track is 0; `CommitLimit` is what Linux derives from the total
/// (`overcommit_ratio` 50, no swap).
pub fn meminfo(c: &MemCounts) -> String {
    let mut out = String::new();
    let mut kb = |label: &str, pages: u64| {
        let _ = writeln!(
            out,
            "{:<16}{:>8} kB",
            label,
            pages.saturating_mul(PAGE_SIZE / 1024)
        );
    };
    kb("MemTotal:", c.total);
    kb("MemFree:", c.free);
    kb("MemAvailable:", c.free);
    kb("Buffers:", 0);
    kb("Cached:", 0);
    kb("SwapCached:", 0);
    kb("Active:", 0);
    kb("Inactive:", 0);
    kb("Active(anon):", 0);
    kb("Inactive(anon):", 0);
    kb("Active(file):", 0);
    kb("Inactive(file):", 0);
    kb("Unevictable:", 0);
    kb("Mlocked:", 0);
    kb("MmapCopy:", c.mmap_copy);
    kb("SwapTotal:", 0);
    kb("SwapFree:", 0);
    kb("Dirty:", 0);
    kb("Writeback:", 0);
    kb("AnonPages:", 0);
    kb("Mapped:", 0);
    kb("Shmem:", c.shmem);
    kb("KReclaimable:", 0);
    kb("Slab:", 0);
    kb("SReclaimable:", 0);
    kb("SUnreclaim:", 0);
    kb("KernelStack:", 0);
    kb("PageTables:", 0);
    kb("SecPageTables:", 0);
    kb("NFS_Unstable:", 0);
    kb("Bounce:", 0);
    kb("WritebackTmp:", 0);
    kb("CommitLimit:", c.total / 2);
    kb("Committed_AS:", 0);
    kb("VmallocTotal:", 0);
    kb("VmallocUsed:", 0);
    kb("VmallocChunk:", 0);
    kb("Percpu:", 0);
    out
}

/// `/proc/buddyinfo` for the arena as one node with one zone: `Node 0,
/// zone   Normal` (`"Node %d, zone %8s "`), then the free blocks of each
/// order, smallest first, each `"%6lu "`, then a newline.
pub fn buddyinfo(free_per_order: &[u32]) -> String {
    let mut out = String::from("Node 0, zone   Normal ");
    for n in free_per_order {
        let _ = write!(out, "{n:6} ");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm_flags::{VM_MAPPED_COPY, VM_MAYEXEC, VM_MAYOVERLAY, VM_MAYREAD, VM_MAYWRITE};

    /// The maps line of an anonymous mapping, for a client whose words are
    /// `word_size` bytes.
    fn anonymous_line(start: u64, end: u64, flags: VmFlags, offset: u64, word_size: u32) -> String {
        let mut s = String::new();
        let line = MapsLine {
            start,
            end,
            flags,
            offset,
            backing: None,
        };
        write_maps_line(&mut s, &line, word_size);
        s
    }

    #[test]
    fn vector_108_anonymous_line() {
        let flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_MAPPED_COPY;
        assert_eq!(
            anonymous_line(0x00a4_0000, 0x00a4_2000, flags, 0, 4),
            "00a40000-00a42000 rw-p 00000000 00:00 0 \n"
        );
    }

    #[test]
    fn vector_109_file_line_pads_to_column_48() {
        let file = BackingObject::test_file();
        let line = MapsLine {
            start: 0x00a5_0000,
            end: 0x00a5_3000,
            flags: VM_READ | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_MAYOVERLAY | VM_MAPPED_COPY,
            offset: 0,
            backing: Some(&file),
        };
        let mut s = String::new();
        write_maps_line(&mut s, &line, 4);
        let head = "00a50000-00a53000 r--p 00000000 1f:02 37 ";
        let expect = alloc::format!("{head}{}/data/f\n", " ".repeat(49 - head.len()));
        assert_eq!(s, expect);
        assert_eq!(s.find('/'), Some(49));
        // 64-bit clients: the path starts at column 73.
        let mut s = String::new();
        write_maps_line(&mut s, &line, 8);
        assert_eq!(s.find('/'), Some(73));
    }

    #[test]
    fn shared_letters() {
        let flags = VM_READ | VM_WRITE | VM_SHARED | VM_MAYSHARE;
        assert_eq!(
            anonymous_line(0, 0x1000, flags, 0x2000, 8),
            "00000000-00001000 rw-S 00002000 00:00 0 \n"
        );
    }

    #[test]
    fn buddyinfo_in_linux_format() {
        let text = buddyinfo(&[3, 0, 12, 1, 0, 0, 0, 0, 0, 0, 15]);
        assert_eq!(
            text,
            "Node 0, zone   Normal      3      0     12      1      0      0      0      0      0      0     15 \n"
        );
    }

    #[test]
    fn buddyinfo_of_a_fresh_and_a_split_arena() {
        use crate::page_alloc::{PageAllocator, Placement};
        for placement in [Placement::Linux, Placement::Grouped] {
            let mut pages = PageAllocator::new(1024 + 8, 10, placement);
            let text = buddyinfo(&pages.free_counts());
            let counts: alloc::vec::Vec<&str> = text.split_whitespace().skip(4).collect();
            assert_eq!(
                counts,
                ["0", "0", "0", "1", "0", "0", "0", "0", "0", "0", "1"]
            );
            pages.alloc_copy(3, 1).unwrap();
            let text = buddyinfo(&pages.free_counts());
            let counts: alloc::vec::Vec<&str> = text.split_whitespace().skip(4).collect();
            // Linux splits the 8 pages at the end: 3 kept, 1 back, the 4
            // beside them free. Grouped cuts 3 from the top of its one run
            // of 1032, leaving 1029 = 1024 + 4 + 1.
            let expect = ["1", "0", "1", "0", "0", "0", "0", "0", "0", "0", "1"];
            assert_eq!(counts, expect, "{placement:?}");
        }
    }

    #[test]
    fn buddyinfo_is_served() {
        use crate::tests::sim::{hello, mmap, read_proc, server, ANON, P, RW};
        let mut s = server(64);
        hello(&mut s, 1, 0, None).unwrap();
        let counts = |s: &mut _| -> alloc::vec::Vec<u32> {
            let text = read_proc(s, 1, protocol::ProcView::Buddyinfo).unwrap();
            assert!(text.starts_with("Node 0, zone   Normal ") && text.ends_with(" \n"));
            text.split_whitespace()
                .skip(4)
                .map(|n| n.parse().unwrap())
                .collect()
        };
        assert_eq!(counts(&mut s), [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        mmap(&mut s, 1, 5 * P, RW, ANON).unwrap();
        // 59 pages left: 32 + 16 + 8 + 2 + 1.
        assert_eq!(counts(&mut s), [1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn vector_111_meminfo_mmapcopy_line() {
        let text = meminfo(&MemCounts {
            total: 256,
            free: 251,
            mmap_copy: 5,
            shmem: 0,
        });
        assert!(text.contains("\nMmapCopy:             20 kB\n"));
        assert!(text.starts_with("MemTotal:           1024 kB\nMemFree:            1004 kB\n"));
        let labels: alloc::vec::Vec<&str> =
            text.lines().map(|l| l.split(':').next().unwrap()).collect();
        let pos = |l: &str| labels.iter().position(|x| *x == l).unwrap();
        assert!(pos("Mlocked") + 1 == pos("MmapCopy") && pos("MmapCopy") + 1 == pos("SwapTotal"));
        for line in text.lines() {
            assert_eq!(line.len(), 16 + 8 + 3, "{line:?}");
        }
    }
}
