//! `nommu-ctl map`: the arena page by page — which process or file holds
//! each page, what is free, the largest free block — drawn as a terminal
//! picture and as SVG, from `/proc/maps`, each process's maps and the
//! server's `Usage` view.

use crate::records::Records;
use protocol::message::{ArenaUsage, FreeBlock, ProcessUsage};
use protocol::PAGE_SIZE;
use std::fmt::Write;

/// One line of a maps text: its range and, for a file, the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLine {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub dev: String,
    pub inode: u64,
    pub path: Option<String>,
}

/// The lines of a `/proc/maps` or `/proc/<pid>/maps` text; a line that
/// cannot be read is skipped.
pub fn parse_maps(text: &str) -> Vec<MapsLine> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (start, end) = f.next()?.split_once('-')?;
            let perms = f.next()?.to_string();
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let dev = f.next()?.to_string();
            let inode = f.next()?.parse().ok()?;
            let path: Vec<&str> = f.collect();
            Some(MapsLine {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                perms,
                offset,
                dev,
                inode,
                path: (!path.is_empty()).then(|| path.join(" ")),
            })
        })
        .collect()
}

/// The `Usage` view decoded.
pub struct Usage {
    pub arena: ArenaUsage,
    pub processes: Vec<ProcessUsage>,
    pub free: Vec<FreeBlock>,
}

/// Decode the bytes of `ProcView::Usage`.
pub fn decode_usage(bytes: &[u8]) -> Result<Usage, String> {
    let mut records = Records::new(bytes, "Usage");
    let arena: ArenaUsage = records.take()?;
    let processes = records.take_list(arena.processes)?;
    let free = records.take_list(arena.free_blocks)?;
    Ok(Usage {
        arena,
        processes,
        free,
    })
}

/// Who holds a run of pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    Free,
    /// Pages neither free nor in a region: drivers' storage.
    Server,
    /// A region: its file, or the processes mapping it.
    Region(String),
}

impl Holder {
    pub fn label(&self) -> &str {
        match self {
            Holder::Free => "free",
            Holder::Server => "server (driver storage)",
            Holder::Region(name) => name,
        }
    }
}

/// The arena page by page.
pub struct ArenaMap {
    pub base: u64,
    /// Distinct holders; `page[i]` indexes this. 0 is free, 1 the server.
    pub holders: Vec<Holder>,
    pub page: Vec<usize>,
    /// The largest free block: its start and pages.
    pub largest_free: Option<(u64, u64)>,
}

impl ArenaMap {
    /// Lay out the arena. `process_maps` is each readable process's maps.
    pub fn build(
        usage: &Usage,
        regions: &[MapsLine],
        process_maps: &[(u32, Vec<MapsLine>)],
    ) -> Self {
        let base = usage.arena.arena_base;
        let total = usage.arena.total_pages as usize;
        let mut holders = vec![Holder::Free, Holder::Server];
        let mut page = vec![1usize; total];
        let index = |addr: u64| ((addr.saturating_sub(base)) / PAGE_SIZE) as usize;
        for block in &usage.free {
            let from = index(block.start).min(total);
            let to = from
                .saturating_add(1usize << block.order.min(40))
                .min(total);
            page[from..to].fill(0);
        }
        for region in regions {
            let name = match &region.path {
                Some(path) => path.clone(),
                None => {
                    let pids: Vec<String> = process_maps
                        .iter()
                        .filter(|(_, maps)| {
                            maps.iter()
                                .any(|m| m.start < region.end && region.start < m.end)
                        })
                        .map(|(pid, _)| pid.to_string())
                        .collect();
                    if pids.is_empty() {
                        "anonymous (no process)".to_string()
                    } else {
                        format!("pid {}", pids.join(","))
                    }
                }
            };
            let holder = Holder::Region(name);
            let at = holders
                .iter()
                .position(|h| *h == holder)
                .unwrap_or_else(|| {
                    holders.push(holder);
                    holders.len() - 1
                });
            let from = index(region.start).min(total);
            let to = index(region.end.saturating_add(PAGE_SIZE - 1)).min(total);
            if from < to {
                page[from..to].fill(at);
            }
        }
        let largest_free = usage
            .free
            .iter()
            .max_by_key(|b| (b.order, std::cmp::Reverse(b.start)))
            .map(|b| (b.start, 1u64 << b.order.min(63)));
        Self {
            base,
            holders,
            page,
            largest_free,
        }
    }

    /// Pages each holder holds.
    pub fn pages_of(&self, holder: usize) -> usize {
        self.page.iter().filter(|&&h| h == holder).count()
    }

    /// The legend character of holder `i`: '.' for free, '#' for the
    /// server, then letters and digits (then '?').
    fn symbol(i: usize) -> char {
        const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        match i {
            0 => '.',
            1 => '#',
            n => SYMBOLS.get(n - 2).map_or('?', |&c| c as char),
        }
    }

    /// The terminal picture: one character per `per_char` pages (the
    /// holder of most of them), 64 a row, then the legend.
    pub fn text(&self, per_char: usize) -> String {
        let per_char = per_char.max(1);
        let mut out = String::new();
        let cells: Vec<char> = self
            .page
            .chunks(per_char)
            .map(|cell| {
                let mut count = vec![0usize; self.holders.len()];
                for &h in cell {
                    count[h] += 1;
                }
                let most = (0..count.len()).max_by_key(|&h| (count[h], h)).unwrap_or(0);
                Self::symbol(most)
            })
            .collect();
        let row_pages = 64 * per_char as u64;
        for (i, row) in cells.chunks(64).enumerate() {
            let addr = self.base + i as u64 * row_pages * PAGE_SIZE;
            let _ = writeln!(out, "{addr:012x} {}", row.iter().collect::<String>());
        }
        let _ = writeln!(
            out,
            "one character = {per_char} page(s) of {} KiB; {} pages in all",
            PAGE_SIZE / 1024,
            self.page.len()
        );
        for (i, holder) in self.holders.iter().enumerate() {
            let pages = self.pages_of(i);
            if pages == 0 && i != 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "  {}  {:<40} {pages:>8} pages",
                Self::symbol(i),
                holder.label()
            );
        }
        out.push_str(&self.largest_line());
        out.push('\n');
        out
    }

    fn largest_line(&self) -> String {
        match self.largest_free {
            Some((start, pages)) => format!(
                "largest free block: {pages} pages ({} KiB) at {start:#x}",
                pages * PAGE_SIZE / 1024
            ),
            None => "largest free block: none (the arena is full)".to_string(),
        }
    }

    /// The arena as SVG: 128 pages a row, one colour per holder, free in
    /// light grey, the largest free block outlined in red, and a legend.
    pub fn svg(&self) -> String {
        const ROW: usize = 128;
        const CELL: usize = 8;
        let rows = self.page.len().div_ceil(ROW).max(1);
        let legend_top = rows * CELL + 20;
        let shown: Vec<usize> = (0..self.holders.len())
            .filter(|&i| i == 0 || self.pages_of(i) > 0)
            .collect();
        let width = ROW * CELL + 20;
        let height = legend_top + 20 * (shown.len() + 1) + 10;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">"#
        );
        let _ = writeln!(
            out,
            r#"<rect width="{width}" height="{height}" fill="white"/>"#
        );
        let _ = writeln!(out, "<title>memsrv arena at {:#x}</title>", self.base);
        // One rectangle per run of a holder within a row.
        for row in 0..rows {
            let from = row * ROW;
            let to = (from + ROW).min(self.page.len());
            let mut at = from;
            while at < to {
                let h = self.page[at];
                let mut end = at;
                while end < to && self.page[end] == h {
                    end += 1;
                }
                let _ = writeln!(
                    out,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: pages {}-{}</title></rect>"#,
                    10 + (at - from) * CELL,
                    10 + row * CELL,
                    (end - at) * CELL,
                    CELL - 1,
                    colour(h),
                    escape(self.holders[h].label()),
                    at,
                    end - 1
                );
                at = end;
            }
        }
        if let Some((start, pages)) = self.largest_free {
            let first = (start.saturating_sub(self.base) / PAGE_SIZE) as usize;
            // The block as drawn: inside the arena.
            let last = (first + pages as usize - 1).min(self.page.len().saturating_sub(1));
            let first = first.min(last);
            // A block of whole rows gets one outline; else each row it
            // crosses gets its own.
            let whole_rows = first.is_multiple_of(ROW) && (last + 1).is_multiple_of(ROW);
            if whole_rows {
                let _ = writeln!(
                    out,
                    r#"<rect x="10" y="{}" width="{}" height="{}" fill="none" stroke="red" stroke-width="1.5"/>"#,
                    10 + first / ROW * CELL,
                    ROW * CELL,
                    (last + 1 - first) / ROW * CELL - 1
                );
            }
            for row in (first / ROW..=last / ROW).filter(|_| !whole_rows) {
                let a = first.max(row * ROW) - row * ROW;
                let b = last.min(row * ROW + ROW - 1) - row * ROW;
                let _ = writeln!(
                    out,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="red" stroke-width="1.5"/>"#,
                    10 + a * CELL,
                    10 + row * CELL,
                    (b - a + 1) * CELL,
                    CELL - 1
                );
            }
        }
        for (n, &i) in shown.iter().enumerate() {
            let y = legend_top + 20 * n;
            let _ = writeln!(
                out,
                r#"<rect x="10" y="{y}" width="14" height="14" fill="{}" stroke="black" stroke-width="0.5"/><text x="30" y="{}">{} — {} pages</text>"#,
                colour(i),
                y + 11,
                escape(self.holders[i].label()),
                self.pages_of(i)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="10" y="{}" fill="red">{}</text>"#,
            legend_top + 20 * shown.len() + 11,
            escape(&self.largest_line())
        );
        out.push_str("</svg>\n");
        out
    }
}

/// Holder `i`'s fill colour: free light grey, the server dark grey, then
/// hues spread around the wheel from blue (red marks the largest free
/// block).
fn colour(i: usize) -> String {
    match i {
        0 => "#e8e8e8".into(),
        1 => "#555555".into(),
        n => format!("hsl({}, 65%, 50%)", (210 + (n - 2) * 137) % 360),
    }
}

/// Text made safe inside SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
