//! `nommu-ctl`: read the memory server's `/proc` views from the shell.

use clap::{Parser, Subcommand, ValueEnum};
use nommu::transport::DaemonConnection;
use nommu::Client;
use protocol::{ProcView, Sysctl, PAGE_SIZE};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[path = "../ctl/arena.rs"]
mod arena;
#[path = "../ctl/records.rs"]
mod records;
#[path = "../ctl/users.rs"]
mod users;

/// `nommu-ctl`'s arguments; `--help` is generated from them.
#[derive(Parser, Debug)]
#[command(
    name = "nommu-ctl",
    version,
    about = "nommu-ctl - inspect a running memsrvd",
    after_help = "nommu-ctl connects as a process of its own (it maps the arena at the \
        daemon's address, so that range must be free here).",
    arg_required_else_help = true
)]
struct Args {
    /// The daemon's socket (default: $NOMMU_SOCKET, else /tmp/nommu.sock)
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    view: View,
}

/// The views `nommu-ctl` prints.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
enum View {
    /// /proc/maps (every region), or /proc/PID/maps of one process
    Maps {
        pid: Option<u32>,
        /// One JSON object per line of the text, in an array
        #[arg(long)]
        json: bool,
    },
    /// /proc/meminfo
    Meminfo {
        /// The fields as a JSON object, in kB
        #[arg(long)]
        json: bool,
    },
    /// /proc/buddyinfo (the arena's free blocks per order)
    Buddyinfo {
        /// The counts per order as JSON
        #[arg(long)]
        json: bool,
    },
    /// SysV shared memory segments, as `ipcs -m` lists them (key shmid owner
    /// perms bytes nattch status; status dest once IPC_RMID waits for the
    /// last detach)
    Ipcs,
    /// /proc/sysvipc/shm as the server writes it
    Sysvipc,
    /// Draw the arena: which process or file holds which pages, what is
    /// free, the largest free block
    Map {
        /// Write the picture as SVG to FILE (open it in a browser)
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// What to print on standard output
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Pages per character of the terminal picture (default: the
        /// arena in at most 16 rows of 64)
        #[arg(long, value_name = "N")]
        pages_per_char: Option<usize>,
        /// Holders, page counts, free blocks and the largest as JSON
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Usage per process (pid, mappings, bytes mapped), refreshed every
    /// second until interrupted
    Top {
        /// Print one frame and exit
        #[arg(long)]
        once: bool,
        /// The frame as JSON (with --once)
        #[arg(long, requires = "once")]
        json: bool,
    },
    /// What each user holds (mappings, SysV segments, memory-filesystem
    /// pages, processes, connections) against the daemon's limits
    Users {
        /// As a JSON object, sizes in bytes
        #[arg(long)]
        json: bool,
    },
    /// The mount points the server serves
    Mounts {
        /// As a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Read every /proc/sys/vm tunable, or one (NAME), or set one (NAME=VALUE)
    Sysctl {
        /// vm.nr_trim_pages (the "vm." may be left out), optionally =VALUE
        #[arg(value_name = "NAME[=VALUE]")]
        setting: Option<String>,
        /// As a JSON object
        #[arg(long)]
        json: bool,
    },
}

/// What `nommu-ctl map` prints.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// The terminal picture
    Text,
    /// The SVG document
    Svg,
}

/// The tunables, by their `sysctl` names.
const SYSCTLS: &[(&str, Sysctl)] = &[("vm.nr_trim_pages", Sysctl::NrTrimPages)];

fn main() -> ExitCode {
    hosted::cli::exit_quietly_on_closed_stdout();
    // `--help`, `--version` and usage errors print and exit (0 or 2) here.
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nommu-ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(Args { socket, view }: Args) -> Result<(), String> {
    let path = socket.unwrap_or_else(DaemonConnection::default_path);
    let client =
        DaemonConnection::connect(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let client = &client;
    match view {
        View::Maps { pid, json } => {
            let text = read_text(
                client,
                pid.map_or(ProcView::GlobalMaps, |pid| ProcView::ProcessMaps { pid }),
            )?;
            if json {
                print_json(&maps_json(&arena::parse_maps(&text)));
            } else {
                print!("{text}");
            }
        }
        View::Meminfo { json } => {
            let text = read_text(client, ProcView::Meminfo)?;
            if json {
                let fields: serde_json::Map<String, Value> = text
                    .lines()
                    .filter_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        let kb: u64 = v.split_whitespace().next()?.parse().ok()?;
                        Some((k.trim().to_string(), json!(kb)))
                    })
                    .collect();
                print_json(&Value::Object(fields));
            } else {
                print!("{text}");
            }
        }
        View::Buddyinfo { json } => {
            let text = read_text(client, ProcView::Buddyinfo)?;
            if json {
                let zones: Vec<Value> = text.lines().filter_map(buddyinfo_json).collect();
                print_json(&json!(zones));
            } else {
                print!("{text}");
            }
        }
        View::Ipcs => print!("{}", ipcs(&read_text(client, ProcView::SysvShm)?)),
        View::Sysvipc => print!("{}", read_text(client, ProcView::SysvShm)?),
        View::Map {
            svg,
            format,
            pages_per_char,
            json,
        } => {
            let map = arena_map(client)?;
            if let Some(file) = svg {
                std::fs::write(&file, map.svg()).map_err(|e| format!("{}: {e}", file.display()))?;
            }
            if json {
                print_json(&map_json(&map));
            } else if format == Format::Svg {
                print!("{}", map.svg());
            } else {
                let per_char = pages_per_char.unwrap_or_else(|| map.page.len().div_ceil(16 * 64));
                print!("{}", map.text(per_char));
            }
        }
        View::Top { once, json } => loop {
            let usage = arena::decode_usage(&read_bytes(client, ProcView::Usage)?)?;
            if json {
                print_json(&top_json(&usage));
            } else {
                if !once {
                    // Home the cursor and clear, as top redraws.
                    print!("\x1b[H\x1b[2J");
                }
                print!("{}", top_text(&usage));
            }
            if once {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        },
        View::Users { json } => {
            let view = users::decode_users(&read_bytes(client, ProcView::Users)?)?;
            if json {
                print_json(&users::users_json(&view));
            } else {
                print!("{}", users::users_text(&view));
            }
        }
        View::Mounts { json } => {
            let mounts: Vec<String> = client
                .list_mounts()
                .map_err(|e| format!("listing the mounts failed: {e}"))?
                .map(|m| m.to_string())
                .collect();
            if json {
                print_json(&json!(mounts));
            } else {
                for m in mounts {
                    println!("{m}");
                }
            }
        }
        View::Sysctl { setting, json } => sysctl(client, setting.as_deref(), json)?,
    }
    Ok(())
}

/// The bytes of a view, read in chunks until the whole is had.
fn read_bytes(client: &Client<DaemonConnection>, view: ProcView) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let total = client
            .read_proc(view, &mut buf)
            .map_err(|e| format!("reading the view failed: {e}"))?;
        if total <= buf.len() {
            buf.truncate(total);
            return Ok(buf);
        }
        buf.resize(total, 0);
    }
}

fn read_text(client: &Client<DaemonConnection>, view: ProcView) -> Result<String, String> {
    Ok(String::from_utf8_lossy(&read_bytes(client, view)?).into_owned())
}

fn print_json(value: &Value) {
    // Serializing a Value cannot fail.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn maps_json(lines: &[arena::MapsLine]) -> Value {
    json!(lines
        .iter()
        .map(|l| json!({
            "start": l.start,
            "end": l.end,
            "perms": l.perms,
            "offset": l.offset,
            "dev": l.dev,
            "inode": l.inode,
            "path": l.path,
        }))
        .collect::<Vec<_>>())
}

/// One `/proc/buddyinfo` line as `{node, zone, free_per_order}`.
fn buddyinfo_json(line: &str) -> Option<Value> {
    let (head, counts) = line.split_once("zone")?;
    let node: u32 = head
        .trim()
        .strip_prefix("Node")?
        .trim()
        .trim_end_matches(',')
        .parse()
        .ok()?;
    let mut f = counts.split_whitespace();
    let zone = f.next()?;
    let counts: Vec<u64> = f.map(|n| n.parse().ok()).collect::<Option<_>>()?;
    Some(json!({ "node": node, "zone": zone, "free_per_order": counts }))
}

/// The arena laid out from `/proc/maps`, each process's maps (those this
/// user may read) and the `Usage` view.
fn arena_map(client: &Client<DaemonConnection>) -> Result<arena::ArenaMap, String> {
    let usage = arena::decode_usage(&read_bytes(client, ProcView::Usage)?)?;
    let regions = arena::parse_maps(&read_text(client, ProcView::GlobalMaps)?);
    let mut process_maps = Vec::new();
    for p in &usage.processes {
        // A process of another user (EACCES) or one that just exited
        // (ESRCH) is left out of the owners.
        if let Ok(text) = read_text(client, ProcView::ProcessMaps { pid: p.pid }) {
            process_maps.push((p.pid, arena::parse_maps(&text)));
        }
    }
    Ok(arena::ArenaMap::build(&usage, &regions, &process_maps))
}

fn map_json(map: &arena::ArenaMap) -> Value {
    let holders: Vec<Value> = map
        .holders
        .iter()
        .enumerate()
        .map(|(i, h)| json!({ "holder": h.label(), "pages": map.pages_of(i) }))
        .collect();
    json!({
        "arena_base": map.base,
        "page_size": PAGE_SIZE,
        "total_pages": map.page.len(),
        "holders": holders,
        "largest_free_block": map.largest_free.map(|(start, pages)| json!({ "start": start, "pages": pages })),
    })
}

fn top_json(usage: &arena::Usage) -> Value {
    let a = &usage.arena;
    json!({
        "total_pages": a.total_pages,
        "free_pages": a.free_pages,
        "mmap_copy_pages": a.mmap_copy_pages,
        "backing_pages": a.backing_pages,
        "shm_pages": a.shm_pages,
        "regions": a.regions,
        "vmas": a.vmas,
        "processes": usage.processes.iter().map(|p| json!({
            "pid": p.pid, "mappings": p.mappings, "bytes": p.bytes,
        })).collect::<Vec<_>>(),
    })
}

/// One `top` frame: the arena's counts, then the processes by bytes
/// mapped, most first.
fn top_text(usage: &arena::Usage) -> String {
    let a = &usage.arena;
    let kib = |pages: u64| pages * PAGE_SIZE / 1024;
    let mut out = format!(
        "arena {} KiB: {} KiB free, {} KiB anonymous/copied, {} KiB driver storage, {} KiB SysV; {} regions, {} mappings, {} processes\n",
        kib(a.total_pages),
        kib(a.free_pages),
        kib(a.mmap_copy_pages),
        kib(a.backing_pages),
        kib(a.shm_pages),
        a.regions,
        a.vmas,
        a.processes
    );
    out.push_str(&format!(
        "{:>10} {:>9} {:>14}\n",
        "PID", "MAPPINGS", "BYTES"
    ));
    let mut processes = usage.processes.clone();
    processes.sort_by_key(|p| (std::cmp::Reverse(p.bytes), p.pid));
    for p in processes {
        out.push_str(&format!(
            "{:>10} {:>9} {:>14}\n",
            p.pid, p.mappings, p.bytes
        ));
    }
    out
}

/// `sysctl`: every tunable, one, or set one.
fn sysctl(
    client: &Client<DaemonConnection>,
    setting: Option<&str>,
    json: bool,
) -> Result<(), String> {
    let find = |name: &str| {
        let full = if name.starts_with("vm.") {
            name.to_string()
        } else {
            format!("vm.{name}")
        };
        SYSCTLS
            .iter()
            .find(|(n, _)| *n == full)
            .copied()
            .ok_or_else(|| {
                format!(
                    "no tunable {name:?} (known: {})",
                    SYSCTLS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    };
    let chosen = match setting {
        None => SYSCTLS.to_vec(),
        Some(s) => match s.split_once('=') {
            Some((name, value)) => {
                let (name, key) = find(name.trim())?;
                let value: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}: {value:?} is not a number"))?;
                client
                    .write_sysctl(key, value)
                    .map_err(|e| format!("setting {name} failed: {e}"))?;
                vec![(name, key)]
            }
            None => vec![find(s.trim())?],
        },
    };
    let mut values = serde_json::Map::new();
    for (name, key) in chosen {
        let value = client
            .read_sysctl(key)
            .map_err(|e| format!("reading {name} failed: {e}"))?;
        if json {
            values.insert(name.to_string(), json!(value));
        } else {
            println!("{name} = {value}");
        }
    }
    if json {
        print_json(&Value::Object(values));
    }
    Ok(())
}

/// `SHM_DEST`: removal waits for the last detach.
const SHM_DEST: u32 = 0o1000;
/// `SHM_LOCKED`.
const SHM_LOCKED: u32 = 0o2000;

/// `/proc/sysvipc/shm` text laid out as `ipcs -m` does. Columns are found
/// by the header's names; a row that cannot be read is skipped.
fn ipcs(proc_text: &str) -> String {
    let mut lines = proc_text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let mut out = String::from("\n------ Shared Memory Segments --------\n");
    out.push_str(&format!(
        "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10} {:<12}\n",
        "key", "shmid", "owner", "perms", "bytes", "nattch", "status"
    ));
    let (Some(key), Some(id), Some(perms), Some(size), Some(nattch), Some(uid)) = (
        col("key"),
        col("shmid"),
        col("perms"),
        col("size"),
        col("nattch"),
        col("uid"),
    ) else {
        return out;
    };
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let get = |i: usize| fields.get(i).copied();
        let (Some(k), Some(i), Some(p), Some(s), Some(n), Some(u)) = (
            get(key).and_then(|v| v.parse::<i64>().ok()),
            get(id),
            get(perms).and_then(|v| u32::from_str_radix(v, 8).ok()),
            get(size),
            get(nattch),
            get(uid),
        ) else {
            continue;
        };
        let mut status = Vec::new();
        if p & SHM_DEST != 0 {
            status.push("dest");
        }
        if p & SHM_LOCKED != 0 {
            status.push("locked");
        }
        out.push_str(&format!(
            "0x{:08x} {:<10} {:<10} {:<10o} {:<10} {:<10} {:<12}\n",
            k as u32,
            i,
            user_name(u),
            p & 0o777,
            s,
            n,
            status.join(" ")
        ));
    }
    out.push('\n');
    out
}

/// The login name of uid `uid` from /etc/passwd, else the number.
fn user_name(uid: &str) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}
