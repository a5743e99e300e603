//! `nommu-ctl`'s reading commands against a daemon started here: each
//! output parses, `--json` is JSON, and `map --svg` renders (headless,
//! with rsvg-convert) to a picture that is not blank.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::Daemon;
use serde_json::Value;
use std::process::Command;

fn json(d: &Daemon, args: &[&str]) -> Value {
    let out = d.ctl(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("nommu-ctl {args:?}: {e}\n{out}"))
}

/// A daemon with one process holding two anonymous mappings (3 and 5
/// pages); returns the daemon, the client (kept alive) and its pid.
fn busy_daemon() -> (
    Daemon,
    nommu::Client<nommu::transport::DaemonConnection>,
    u32,
) {
    busy_daemon_with(&[])
}

/// [`busy_daemon`] started with `extra` options.
fn busy_daemon_with(
    extra: &[&str],
) -> (
    Daemon,
    nommu::Client<nommu::transport::DaemonConnection>,
    u32,
) {
    let d = Daemon::start_with(extra);
    let client = d.client();
    client.mmap(0, 3 * 4096, 3, 0x22, -1, 0).unwrap();
    client.mmap(0, 5 * 4096, 3, 0x22, -1, 0).unwrap();
    let pid = client.transport().welcome().pid;
    (d, client, pid)
}

#[test]
fn buddyinfo_counts_every_free_page() {
    // Without page reserves: reserved pages count in MemFree but not in
    // buddyinfo (Linux's per-CPU lists are in no buddy list).
    let (d, _client, _) = busy_daemon_with(&["--reserve-pages", "0"]);
    let text = d.ctl(&["buddyinfo"]);
    assert!(text.starts_with("Node 0, zone   Normal "), "{text}");
    let counts: Vec<u64> = text
        .split_whitespace()
        .skip(4)
        .map(|n| n.parse().unwrap())
        .collect();
    let free_pages: u64 = counts.iter().enumerate().map(|(o, n)| n << o).sum();
    let meminfo = d.ctl(&["meminfo"]);
    let free_kb = daemon::meminfo_field(&meminfo, "MemFree").unwrap();
    assert_eq!(free_pages * 4, free_kb, "{text}\n{meminfo}");
    let j = json(&d, &["buddyinfo", "--json"]);
    let orders: Vec<u64> = j[0]["free_per_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(orders, counts);
    assert_eq!(j[0]["zone"], "Normal");
}

#[test]
fn map_draws_holders_free_pages_and_the_largest_block() {
    let (d, _client, pid) = busy_daemon();
    let text = d.ctl(&["map", "--pages-per-char", "1"]);
    let legend = text
        .lines()
        .find(|l| l.contains(&format!("pid {pid}")))
        .unwrap_or_else(|| panic!("no legend line for pid {pid}:\n{text}"));
    // 3 + 5 pages, as regions of 4 and 8 (copies round up to a power of
    // two unless trimmed; whatever the server keeps, at least 8).
    let symbol = legend.trim().chars().next().unwrap();
    let pages: usize = legend
        .split_whitespace()
        .rev()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(pages >= 8, "{legend}");
    let drawn: usize = text
        .lines()
        .filter(|l| l.len() > 13 && l.as_bytes()[12] == b' ')
        .map(|l| l[13..].chars().filter(|&c| c == symbol).count())
        .sum();
    assert_eq!(drawn, pages, "{text}");
    assert!(text.contains('.'), "{text}");
    assert!(text.contains("largest free block: "), "{text}");

    let j = json(&d, &["map", "--json"]);
    let holders = j["holders"].as_array().unwrap();
    let free = holders.iter().find(|h| h["holder"] == "free").unwrap();
    let free_kb = daemon::meminfo_field(&d.ctl(&["meminfo"]), "MemFree").unwrap();
    assert_eq!(free["pages"].as_u64().unwrap() * 4, free_kb);
    let mine = holders
        .iter()
        .find(|h| h["holder"] == format!("pid {pid}"))
        .unwrap();
    assert_eq!(mine["pages"].as_u64().unwrap(), pages as u64);
    let largest = j["largest_free_block"]["pages"].as_u64().unwrap();
    assert!(largest.is_power_of_two() && largest * 4 <= free_kb);
}

#[test]
fn top_once_lists_each_process_usage() {
    let (d, _client, pid) = busy_daemon();
    let text = d.ctl(&["top", "--once"]);
    let row: Vec<u64> = text
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect::<Vec<u64>>()
        })
        .find(|f| f.len() == 3 && f[0] == u64::from(pid))
        .unwrap_or_else(|| panic!("no row for pid {pid}:\n{text}"));
    assert_eq!(row[1..], [2, 8 * 4096], "{text}");
    let j = json(&d, &["top", "--once", "--json"]);
    let me = j["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap()
        .clone();
    assert_eq!(me["mappings"], 2);
    assert_eq!(me["bytes"], 8 * 4096);
    assert!(j["free_pages"].as_u64().unwrap() < j["total_pages"].as_u64().unwrap());
}

#[test]
fn maps_meminfo_mounts_and_sysctl_as_json() {
    let (d, _client, _) = busy_daemon();
    let maps = json(&d, &["maps", "--json"]);
    let maps = maps.as_array().unwrap();
    assert_eq!(maps.len(), 2, "{maps:?}");
    for m in maps {
        assert!(m["end"].as_u64().unwrap() > m["start"].as_u64().unwrap());
        assert_eq!(m["perms"], "rw-p");
    }
    let meminfo = json(&d, &["meminfo", "--json"]);
    assert_eq!(meminfo["MemTotal"], daemon::ARENA_SIZE / 1024);
    let mounts = json(&d, &["mounts", "--json"]);
    let text: Vec<String> = d.ctl(&["mounts"]).lines().map(String::from).collect();
    let listed: Vec<String> = mounts
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, text);
    assert!(listed.iter().all(|m| m.starts_with('/')), "{listed:?}");
    assert_eq!(
        d.ctl(&["sysctl", "vm.nr_trim_pages"]),
        "vm.nr_trim_pages = 1\n"
    );
    let set = json(&d, &["sysctl", "nr_trim_pages=4", "--json"]);
    assert_eq!(set["vm.nr_trim_pages"], 4);
    assert_eq!(json(&d, &["sysctl", "--json"])["vm.nr_trim_pages"], 4);
}

#[test]
fn sysctl_refuses_an_unknown_name() {
    let d = Daemon::start();
    let out = d
        .ctl_command(&["sysctl", "vm.overcommit_memory"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tunable"));
}

/// Whether a tool the test needs may be missing: only when
/// NOMMU_REQUIRE_TOOLS is unset.
fn tool_missing(tool: &str) -> bool {
    let present = Command::new(tool).arg("--version").output().is_ok();
    if !present {
        assert!(
            std::env::var_os("NOMMU_REQUIRE_TOOLS").is_none(),
            "{tool} is not installed (Debian: apt-get install librsvg2-bin) and NOMMU_REQUIRE_TOOLS is set"
        );
        eprintln!("SKIPPED: {tool} is not installed (Debian: apt-get install librsvg2-bin)");
    }
    !present
}

#[test]
fn map_svg_renders_to_a_picture_that_is_not_blank() {
    if tool_missing("rsvg-convert") {
        return;
    }
    let (d, _client, _) = busy_daemon();
    let scratch = daemon::Scratch::new("map-svg");
    let svg = scratch.join("arena.svg");
    let png = scratch.join("arena.png");
    d.ctl(&["map", "--svg", svg.to_str().unwrap()]);
    // The same document on standard output.
    assert_eq!(
        d.ctl(&["map", "--format", "svg"]),
        std::fs::read_to_string(&svg).unwrap()
    );
    let out = Command::new("rsvg-convert")
        .arg(&svg)
        .arg("-o")
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rsvg-convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(keep) = std::env::var_os("NOMMU_KEEP_MAP_PNG") {
        std::fs::copy(&png, keep).unwrap();
    }
    let decoder = png::Decoder::new(std::fs::File::open(&png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert!(frame.width > 100 && frame.height > 20, "{frame:?}");
    let channels = frame.color_type.samples();
    let pixels = &pixels[..frame.buffer_size()];
    // The background is white: count pixels that are not (ink), and the
    // colourful ones (a holder's fill, not grey text or free pages).
    let (mut ink, mut colour) = (0, 0);
    for px in pixels.chunks(channels) {
        let rgb = &px[..3.min(channels)];
        if rgb.iter().any(|&c| c < 250) {
            ink += 1;
        }
        if rgb.len() == 3 && rgb.iter().max().unwrap() - rgb.iter().min().unwrap() > 60 {
            colour += 1;
        }
    }
    let total = pixels.len() / channels;
    assert!(ink > total / 20, "only {ink} of {total} pixels drawn");
    assert!(colour > 0, "no holder's colour in the picture");
}
