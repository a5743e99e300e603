//! `memsrvd`'s command line: the daemon's settings ([`Options`]), the
//! arguments that set them (clap parses them and writes `--help` from the
//! same definitions), and the one list of mount kinds that `memsrvd` and
//! `nommu-driver` both accept and describe.

use clap::{CommandFactory, FromArgMatches};
use memsrv::Placement;
use nommu::transport::DEFAULT_SOCKET;
use std::path::PathBuf;

/// Where the arena appears in every process unless told otherwise: high in
/// the 47-bit user address space, far from where the host places heaps,
/// stacks and libraries.
pub const DEFAULT_ARENA_BASE: u64 = 0x2000_0000_0000;
/// The arena's size unless told otherwise.
pub const DEFAULT_ARENA_SIZE: u64 = 64 << 20;
/// Every local user may connect, also a process that dropped its
/// privileges before its first call: each call is checked against the
/// caller's credentials, not the socket's permissions.
pub const DEFAULT_SOCKET_MODE: u32 = 0o666;

/// The daemon's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub socket: PathBuf,
    /// The socket's permission bits: who may connect (the server checks
    /// each call's credentials itself).
    pub socket_mode: u32,
    /// The socket's group, if not the daemon's.
    pub socket_group: Option<u32>,
    pub arena_base: u64,
    pub arena_size: u64,
    pub nr_trim_pages: u32,
    pub allow_uninitialized: bool,
    /// Linux's `mremap` exactly: never move, never grow past the first
    /// size (memsrv `Config::strict_mremap`).
    pub strict_mremap: bool,
    pub max_clients: usize,
    /// Built-in backing devices, each served by a driver thread.
    pub mounts: Vec<MountSpec>,
    /// How long a driver may take to answer memsrv before the operation
    /// waiting for it fails `EIO`.
    pub driver_timeout_ms: u64,
    /// Make every connection a process of its own, numbered by memsrv,
    /// instead of joining the process of its host pid (a test speaking
    /// for many processes from one host process).
    pub process_per_connection: bool,
    /// Who besides root may serve a mount (`--drivers USER|:GROUP`).
    pub drivers: memsrv::DriverOwner,
    /// Where copies and anonymous memory go in the arena (memsrv
    /// `Config::placement`).
    pub placement: Placement,
    /// Most bytes of mappings one process may hold; `None`: no limit
    /// (memsrv `Config::max_process_memory`).
    pub max_process_memory: Option<u64>,
    /// Most bytes one uid may hold (memsrv `Config::max_user_memory`).
    pub max_user_memory: Option<u64>,
    /// Most connections of one uid at once.
    pub max_clients_per_user: Option<u32>,
    /// Most mappings one process may hold (`vm.max_map_count`).
    pub max_map_count: usize,
    /// Pages granted to a connection's page reserve at a time (0: none;
    /// memsrv `Config::reserve_pages`).
    pub reserve_pages: u32,
}

/// A kind of backing device `--mount` can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountKind {
    /// What follows `POINT=`: the driver's name.
    pub name: &'static str,
    /// The argument after `KIND:` as help shows it, if the kind needs one;
    /// `None`: the kind takes no argument.
    pub arg: Option<&'static str>,
    /// What the device is, for `--help`.
    pub about: &'static str,
}

/// Every kind `--mount` accepts, in the order `--help` lists them. A kind
/// is accepted only if it is here, and `mounts::build` builds each.
pub const MOUNT_KINDS: &[MountKind] = &[
    MountKind {
        name: "romfs",
        arg: Some("IMAGE"),
        about: "a genromfs image, read-only, direct (XIP) mappings",
    },
    MountKind {
        name: "ramfs",
        arg: None,
        about: "memory filesystem (/dev/shm, /tmp): open O_CREAT, ftruncate, MAP_SHARED",
    },
    MountKind {
        name: "tmpfs",
        arg: None,
        about: "the same as ramfs",
    },
    MountKind {
        name: "hostdir",
        arg: Some("DIR"),
        about: "copy-only filesystem over host directory DIR (MAP_PRIVATE copies, MAP_SHARED fails ENODEV)",
    },
    MountKind {
        name: "fbdev",
        arg: Some("WxH"),
        about: "a framebuffer of W x H 32-bit pixels",
    },
    MountKind {
        name: "mtd",
        arg: Some("IMAGE[,rom|ram|nor]"),
        about: "an MTD device holding IMAGE, of type rom (the default), ram or nor",
    },
    MountKind {
        name: "ramdisk",
        arg: Some("SIZE[,copy|direct]"),
        about: "a memory block device of SIZE bytes (suffixes K, M, G), copy-only unless direct",
    },
    MountKind {
        name: "devzero",
        arg: None,
        about: "/dev/zero",
    },
    MountKind {
        name: "devmem",
        arg: None,
        about: "/dev/mem over the arena",
    },
    MountKind {
        name: "pipe",
        arg: None,
        about: "a pipe (FIFO) device",
    },
    MountKind {
        name: "socket",
        arg: None,
        about: "a socket device",
    },
];

/// The kinds' names, comma-separated, for messages.
pub fn mount_kind_names() -> String {
    MOUNT_KINDS
        .iter()
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kinds as `--help` of `memsrvd` and `nommu-driver` lists them.
pub fn mount_kinds_help() -> String {
    let mut text = String::from("Mount kinds (--mount POINT=KIND[:ARG]):\n");
    for kind in MOUNT_KINDS {
        let usage = match kind.arg {
            Some(arg) => format!("{}:{arg}", kind.name),
            None => kind.name.to_string(),
        };
        text.push_str(&format!("  {usage:<26} {}\n", kind.about));
    }
    text.push_str("e.g. --mount /rom=romfs:rom.img --mount /dev/shm=ramfs");
    text
}

/// One `--mount POINT=KIND[:ARG]`: a backing device and where it sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// The mount point: a directory (`/rom`) or a device (`/dev/fb0`).
    pub point: String,
    /// The driver (`romfs`, `ramfs`, `hostdir`, ...).
    pub kind: String,
    /// The driver's argument (an image, a directory, a size), if any.
    pub arg: Option<String>,
}

impl MountSpec {
    /// Parse `POINT=KIND[:ARG]`. The point must be an absolute path of
    /// plain components (no `.`/`..`, no trailing `/`); the kind one of
    /// [`MOUNT_KINDS`], with an argument if and only if it takes one. What
    /// the argument names (an image, a geometry) is checked when the device
    /// is built.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (point, rest) = text
            .split_once('=')
            .ok_or_else(|| format!("bad mount {text:?}: POINT=KIND[:ARG]"))?;
        let plain = point.len() > 1
            && point.len() < 64
            && point.starts_with('/')
            && point[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !plain {
            return Err(format!(
                "bad mount point {point:?}: an absolute path like /rom or /dev/fb0"
            ));
        }
        let (kind, arg) = match rest.split_once(':') {
            Some((k, a)) => (k, Some(a.to_string())),
            None => (rest, None),
        };
        if kind.is_empty() {
            return Err(format!("bad mount {text:?}: no driver kind"));
        }
        let known = MOUNT_KINDS.iter().find(|k| k.name == kind).ok_or_else(|| {
            format!(
                "unknown driver kind {kind:?} (one of {})",
                mount_kind_names()
            )
        })?;
        match (known.arg, &arg) {
            (Some(what), None) => return Err(format!("{point}: {kind} needs :{what}")),
            (Some(what), Some(a)) if a.is_empty() => {
                return Err(format!("{point}: {kind} needs :{what}"))
            }
            (None, Some(_)) => return Err(format!("{point}: {kind} takes no argument")),
            _ => {}
        }
        if let Some(a) = &arg {
            argument_form(kind, a).map_err(|e| format!("{point}: {e}"))?;
        }
        Ok(Self {
            point: point.to_string(),
            kind: kind.to_string(),
            arg,
        })
    }
}

/// Whether a mount kind's argument has its form (what the command line
/// can judge; whether an image exists is found when the device is built).
fn argument_form(kind: &str, arg: &str) -> Result<(), String> {
    match kind {
        "fbdev" => geometry(arg)
            .map(|_| ())
            .ok_or_else(|| format!("bad geometry {arg:?} (WxH)")),
        "mtd" => match arg.rsplit_once(',') {
            Some((path, "rom" | "ram" | "nor")) if !path.is_empty() => Ok(()),
            Some((_, other)) => Err(format!("bad mtd type {other:?} (rom, ram or nor)")),
            None => Ok(()),
        },
        "ramdisk" => {
            let size = match arg.split_once(',') {
                Some((size, "direct" | "copy")) => size,
                Some(_) => return Err(format!("bad ramdisk {arg:?} (SIZE[,copy|direct])")),
                None => arg,
            };
            parse_size(size)
                .filter(|s| *s > 0)
                .map(|_| ())
                .ok_or_else(|| format!("bad ramdisk size {size:?}"))
        }
        _ => Ok(()),
    }
}

/// A framebuffer geometry `WxH` of at most 1 GiB of 32-bit pixels.
pub fn geometry(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once(['x', 'X'])?;
    let (w, h) = (w.parse().ok()?, h.parse().ok()?);
    (w > 0 && h > 0 && u64::from(w) * u64::from(h) * 4 <= 1 << 30).then_some((w, h))
}

impl Options {
    /// The defaults, with the socket from `$NOMMU_SOCKET` if set.
    pub fn from_env() -> Self {
        Self {
            socket: std::env::var_os("NOMMU_SOCKET")
                .map(Into::into)
                .unwrap_or_else(|| DEFAULT_SOCKET.into()),
            socket_mode: DEFAULT_SOCKET_MODE,
            socket_group: None,
            arena_base: DEFAULT_ARENA_BASE,
            arena_size: DEFAULT_ARENA_SIZE,
            nr_trim_pages: 1,
            allow_uninitialized: false,
            strict_mremap: false,
            max_clients: crate::threads::MAX_CLIENTS,
            mounts: Vec::new(),
            driver_timeout_ms: 2000,
            process_per_connection: false,
            drivers: memsrv::DriverOwner::Root,
            placement: Placement::Grouped,
            max_process_memory: None,
            max_user_memory: None,
            max_clients_per_user: None,
            max_map_count: memsrv::Config::default().max_map_count,
            reserve_pages: super::reserve::RESERVE_PAGES,
        }
    }
}

/// A number in decimal or `0x` hex, with an optional K/M/G suffix.
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 10),
        b'm' | b'M' => (&text[..text.len() - 1], 20),
        b'g' | b'G' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16).ok()?,
        None => digits.replace('_', "").parse().ok()?,
    };
    value.checked_mul(1u64 << shift)
}

/// `memsrvd`'s arguments as clap reads them: each overrides one field of
/// [`Options::from_env`]. `--help` is generated from these definitions.
#[derive(clap::Parser, Clone, Debug, Default)]
// A repeated option takes its last value (`--arena-size 1M --arena-size
// 16M`), as callers that add to a default command line rely on; `--mount`
// repeats to add mounts.
#[command(
    name = "memsrvd",
    version,
    args_override_self = true,
    about = "memsrvd - the nommu memory server for host processes",
    long_about = "memsrvd - the nommu memory server for host processes\n\n\
        Host processes linking libnommu connect over a Unix SOCK_SEQPACKET socket; \
        the arena (a memory file) is mapped at the same address in the daemon and \
        every client, so one address means the same bytes in every process."
)]
pub struct DaemonArgs {
    /// Listen on PATH (default: $NOMMU_SOCKET, else /tmp/nommu.sock)
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The socket's permission bits, octal (default: 0666: every local user
    /// may connect; each call is checked)
    #[arg(long, value_name = "MODE", value_parser = socket_mode)]
    pub socket_mode: Option<u32>,
    /// The socket's group, a name or a number (default: the daemon's)
    #[arg(long, value_name = "GROUP", value_parser = socket_group)]
    pub socket_group: Option<u32>,
    /// Arena size in bytes, a multiple of 4096; suffixes K, M, G (default: 64M)
    #[arg(long, value_name = "SIZE", value_parser = arena_size)]
    pub arena_size: Option<u64>,
    /// Arena address in every process, page aligned, decimal or 0x-hex
    /// (default: 0x200000000000)
    #[arg(long, value_name = "ADDR", value_parser = arena_base)]
    pub arena_base: Option<u64>,
    /// Initial /proc/sys/vm/nr_trim_pages (default: 1)
    #[arg(long, value_name = "N")]
    pub nr_trim_pages: Option<u32>,
    /// Honour MAP_UNINITIALIZED (CONFIG_MMAP_ALLOW_UNINITIALIZED)
    #[arg(long)]
    pub allow_uninitialized: bool,
    /// mremap exactly as no-MMU Linux: never move a mapping and never grow
    /// it past its first size (ENOMEM). Without it (the default)
    /// MREMAP_MAYMOVE moves a private anonymous mapping or private writable
    /// copy that cannot grow in place (contents copied)
    #[arg(long)]
    pub strict_mremap: bool,
    /// Every connection is a process of its own, numbered by the server
    /// (default: the connections of one host process share its process and
    /// pid); for tests that speak for many processes from one host process
    #[arg(long)]
    pub process_per_connection: bool,
    /// Most connections served at once (default: 1024)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_clients: Option<u64>,
    /// A driver that has not answered a request after MS milliseconds fails
    /// the waiting call with EIO (default: 2000)
    #[arg(long = "driver-timeout", value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub driver_timeout_ms: Option<u64>,
    /// Who besides root may serve a mount (RegisterDriver): a user, or with
    /// a leading colon a group's members, by name or number (default: root
    /// alone, and the daemon's own user when it does not run as root).
    /// Anyone else is refused EPERM; a mount point already served, or above
    /// or inside one, EBUSY
    #[arg(long, value_name = "USER|:GROUP", value_parser = parse_drivers)]
    pub drivers: Option<memsrv::DriverOwner>,
    /// Where copies and anonymous memory go in the arena: grouped (the
    /// default) takes only the pages a mapping keeps, from free runs by size,
    /// and keeps large runs free after long churn; linux is no-MMU Linux's
    /// buddy allocator exactly (2^order blocks, trimmed)
    #[arg(long, value_name = "KIND", value_parser = placement)]
    pub placement: Option<Placement>,
    /// Most memory one process may hold: its anonymous mappings and
    /// private copies; suffixes K, M, G. mmap and mremap beyond it fail
    /// ENOMEM. Applies to root too (default: no limit)
    #[arg(long, value_name = "SIZE", value_parser = limit_size)]
    pub max_process_memory: Option<u64>,
    /// Most memory one user may hold: its processes' mappings, the SysV
    /// segments and memory-filesystem pages it created; suffixes K, M, G.
    /// Beyond it mmap and mremap fail ENOMEM, shmget, write and ftruncate
    /// ENOSPC. Applies to root too (default: no limit)
    #[arg(long, value_name = "SIZE", value_parser = limit_size)]
    pub max_user_memory: Option<u64>,
    /// Most connections one user may hold at once; the next one's
    /// handshake is refused EAGAIN (default: no limit but --max-clients)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_clients_per_user: Option<u32>,
    /// Most mappings one process may hold (vm.max_map_count); mmap beyond
    /// it fails ENOMEM (default: 65530)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_map_count: Option<u64>,
    /// Pages granted to each connection's page reserve at a time, from
    /// which small anonymous mappings are made without a round trip; they
    /// count as free. 0 turns the reserve off (default: 256, the most)
    #[arg(long, value_name = "N", value_parser = reserve_pages)]
    pub reserve_pages: Option<u32>,
    /// Serve a backing device at POINT from a driver built into the daemon
    /// (repeat for more); the kinds are listed below. A driver can also run
    /// as a process of its own: nommu-driver --socket PATH --mount POINT=KIND[:ARG]
    #[arg(long = "mount", value_name = "POINT=KIND[:ARG]", value_parser = MountSpec::parse)]
    pub mounts: Vec<MountSpec>,
}

/// What `memsrvd --help` ends with.
const DAEMON_AFTER_HELP: &str = "\
Once ready to serve it prints one line to standard output:
  memsrvd: ready on PATH (arena BASE+SIZE, pid PID)
SIGINT or SIGTERM removes the socket and exits.";

fn socket_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| "octal, at most 0777".into())
}

fn socket_group(text: &str) -> Result<u32, String> {
    group_id(text).ok_or_else(|| "no such group".into())
}

/// A group's id from its number or its name (`getgrnam_r`).
pub fn group_id(text: &str) -> Option<u32> {
    id_from_text(text, libc::getgrnam_r, |group| group.gr_gid)
}

/// A user's id from its number or its name (`getpwnam_r`).
pub fn user_id(text: &str) -> Option<u32> {
    id_from_text(text, libc::getpwnam_r, |user| user.pw_uid)
}

/// The `getpwnam_r`/`getgrnam_r` shape: name, entry, buffer, its length,
/// where the found entry is put.
type LookupByName<E> = unsafe extern "C" fn(
    *const libc::c_char,
    *mut E,
    *mut libc::c_char,
    libc::size_t,
    *mut *mut E,
) -> libc::c_int;

/// An id from its number, or from the entry `lookup` finds by that name
/// (`id` reads it). `E` is `struct passwd` or `struct group`.
fn id_from_text<E>(text: &str, lookup: LookupByName<E>, id: impl FnOnce(&E) -> u32) -> Option<u32> {
    if let Ok(number) = text.parse() {
        return Some(number);
    }
    let name = std::ffi::CString::new(text).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: all-zero bytes are a valid `struct passwd` or `struct group`
    // (integers and null pointers); the lookup only fills it.
    let mut entry: E = unsafe { core::mem::zeroed() };
    let mut found: *mut E = core::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; `entry`, `buf` (its length passed)
    // and `found` are live and writable for the call.
    let rc = unsafe {
        lookup(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then(|| id(&entry))
}

/// `--drivers USER|:GROUP`.
fn parse_drivers(text: &str) -> Result<memsrv::DriverOwner, String> {
    match text.strip_prefix(':') {
        Some(group) => group_id(group)
            .map(memsrv::DriverOwner::Group)
            .ok_or_else(|| "no such group".into()),
        None => user_id(text)
            .map(memsrv::DriverOwner::User)
            .ok_or_else(|| "no such user".into()),
    }
}

fn placement(text: &str) -> Result<Placement, String> {
    match text {
        "linux" => Ok(Placement::Linux),
        "grouped" => Ok(Placement::Grouped),
        _ => Err("linux or grouped".into()),
    }
}

fn limit_size(text: &str) -> Result<u64, String> {
    parse_size(text)
        .filter(|s| *s > 0)
        .ok_or_else(|| "a non-zero size in bytes (suffixes K, M, G)".into())
}

/// `--reserve-pages`: at most what a reserve's window holds.
fn reserve_pages(text: &str) -> Result<u32, String> {
    let max = protocol::reserve::WINDOW_PAGES;
    match text.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("a number of pages from 0 to {max}")),
    }
}

fn arena_size(text: &str) -> Result<u64, String> {
    parse_size(text)
        .filter(|s| *s > 0 && s % protocol::PAGE_SIZE == 0)
        .ok_or_else(|| "a non-zero multiple of 4096 (suffixes K, M, G)".into())
}

fn arena_base(text: &str) -> Result<u64, String> {
    parse_size(text)
        .filter(|b| *b > 0 && b % protocol::PAGE_SIZE == 0)
        .ok_or_else(|| "a page-aligned address".into())
}

impl DaemonArgs {
    /// The settings these arguments ask for, over the defaults; an error
    /// is a usage error (arguments that contradict each other).
    pub fn into_options(self) -> Result<Options, String> {
        let mut options = Options::from_env();
        if let Some(socket) = self.socket {
            options.socket = socket;
        }
        if let Some(mode) = self.socket_mode {
            options.socket_mode = mode;
        }
        if self.socket_group.is_some() {
            options.socket_group = self.socket_group;
        }
        if let Some(size) = self.arena_size {
            options.arena_size = size;
        }
        if let Some(base) = self.arena_base {
            options.arena_base = base;
        }
        if let Some(n) = self.nr_trim_pages {
            options.nr_trim_pages = n;
        }
        options.allow_uninitialized |= self.allow_uninitialized;
        options.strict_mremap |= self.strict_mremap;
        options.process_per_connection |= self.process_per_connection;
        if let Some(drivers) = self.drivers {
            options.drivers = drivers;
        }
        if let Some(placement) = self.placement {
            options.placement = placement;
        }
        if let Some(n) = self.max_clients {
            options.max_clients = usize::try_from(n).map_err(|_| "too many --max-clients")?;
        }
        if self.max_process_memory.is_some() {
            options.max_process_memory = self.max_process_memory;
        }
        if self.max_user_memory.is_some() {
            options.max_user_memory = self.max_user_memory;
        }
        if self.max_clients_per_user.is_some() {
            options.max_clients_per_user = self.max_clients_per_user;
        }
        if let Some(n) = self.max_map_count {
            options.max_map_count = usize::try_from(n).map_err(|_| "too large --max-map-count")?;
        }
        if let Some(n) = self.reserve_pages {
            options.reserve_pages = n;
        }
        if let Some(ms) = self.driver_timeout_ms {
            options.driver_timeout_ms = ms;
        }
        for spec in self.mounts {
            if options.mounts.iter().any(|m| m.point == spec.point) {
                return Err(format!("{} is mounted twice", spec.point));
            }
            options.mounts.push(spec);
        }
        if options.arena_base.checked_add(options.arena_size).is_none() {
            return Err("the arena does not fit the address space".into());
        }
        Ok(options)
    }
}

/// `memsrvd`'s command: [`DaemonArgs`] with the mount kinds and the ready
/// line described after the options.
pub fn command() -> clap::Command {
    DaemonArgs::command().after_help(format!("{}\n\n{DAEMON_AFTER_HELP}", mount_kinds_help()))
}

/// Parse a whole command line (program name first). `--help`, `--version`
/// and usage errors come back as the [`clap::Error`] to `exit()` with:
/// it prints them and exits 0 or 2.
pub fn parse<I, T>(argv: I) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = command();
    let matches = command.try_get_matches_from_mut(argv)?;
    DaemonArgs::from_arg_matches(&matches)
        .map_err(|e| e.format(&mut command))?
        .into_options()
        .map_err(|e| command.error(clap::error::ErrorKind::ArgumentConflict, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::mounts::{self, ArenaRange};
    use clap::error::ErrorKind;

    fn parse_args(list: &[&str]) -> Result<Options, clap::Error> {
        parse(std::iter::once("memsrvd").chain(list.iter().copied()))
    }

    /// A usage error: clap prints it and the tool exits 2.
    fn usage_error(list: &[&str]) -> bool {
        parse_args(list).is_err_and(|e| e.exit_code() == 2 && e.use_stderr())
    }

    #[test]
    fn sizes_take_suffixes_and_hex() {
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("0x1000"), Some(4096));
        assert_eq!(parse_size("8k"), Some(8192));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn limits_are_unset_by_default_and_take_sizes() {
        let o = parse_args(&[]).unwrap();
        let unset = (
            o.max_process_memory,
            o.max_user_memory,
            o.max_clients_per_user,
        );
        assert_eq!(unset, (None, None, None));
        assert_eq!(o.max_map_count, 65530);
        let o = parse_args(&[
            "--max-process-memory=1M",
            "--max-user-memory",
            "0x20000",
            "--max-clients-per-user=3",
            "--max-map-count=100",
        ])
        .unwrap();
        assert_eq!(o.max_process_memory, Some(1 << 20));
        assert_eq!(o.max_user_memory, Some(0x20000));
        assert_eq!((o.max_clients_per_user, o.max_map_count), (Some(3), 100));
        assert!(usage_error(&["--max-user-memory=0"]));
        assert!(usage_error(&["--max-clients-per-user=0"]));
        assert!(usage_error(&["--max-process-memory=lots"]));
    }

    #[test]
    fn the_reserve_takes_up_to_a_window_of_pages() {
        assert_eq!(parse_args(&[]).unwrap().reserve_pages, 256);
        assert_eq!(parse_args(&["--reserve-pages=0"]).unwrap().reserve_pages, 0);
        assert_eq!(
            parse_args(&["--reserve-pages", "64"])
                .unwrap()
                .reserve_pages,
            64
        );
        assert!(usage_error(&["--reserve-pages=257"]));
        assert!(usage_error(&["--reserve-pages=-1"]));
    }

    #[test]
    fn the_definitions_are_consistent() {
        command().debug_assert();
    }

    #[test]
    fn options_parse() {
        let o = parse_args(&[
            "--socket",
            "/tmp/x.sock",
            "--arena-size=16M",
            "--arena-base",
            "0x300000000000",
            "--nr-trim-pages",
            "0",
            "--allow-uninitialized",
            "--strict-mremap",
            "--process-per-connection",
        ])
        .unwrap();
        assert!(o.process_per_connection);
        assert!(!Options::from_env().process_per_connection);
        assert_eq!(o.socket_mode, 0o666);
        assert_eq!(o.socket_group, None);
        let modes = parse_args(&["--socket-mode", "0600", "--socket-group", "65534"]).unwrap();
        assert_eq!(modes.socket_mode, 0o600);
        assert_eq!(modes.socket_group, Some(65534));
        assert_eq!(
            parse_args(&["--socket-group", "root"])
                .unwrap()
                .socket_group,
            Some(0)
        );
        assert!(usage_error(&["--socket-mode", "0999"]));
        assert!(usage_error(&["--socket-mode", "01777"]));
        assert!(usage_error(&["--socket-group", "no-such-group-here"]));
        assert_eq!(o.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(o.arena_size, 16 << 20);
        assert_eq!(o.arena_base, 0x3000_0000_0000);
        assert_eq!(o.nr_trim_pages, 0);
        assert!(o.allow_uninitialized);
        assert!(o.strict_mremap);
        assert_eq!(o.placement, Placement::Grouped);
        assert_eq!(
            parse_args(&["--placement", "linux"]).unwrap().placement,
            Placement::Linux
        );
        assert!(usage_error(&["--placement=first-fit"]));
        let last = parse_args(&["--arena-size", "1M", "--arena-size", "16M"]).unwrap();
        assert_eq!(last.arena_size, 16 << 20);
        let defaults = parse_args(&[]).unwrap();
        assert_eq!(defaults, Options::from_env());
        let help = parse_args(&["--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert_eq!(help.exit_code(), 0);
        let version = parse_args(&["--version"]).unwrap_err();
        assert_eq!(version.kind(), ErrorKind::DisplayVersion);
        assert_eq!(version.exit_code(), 0);
        assert!(usage_error(&["--arena-size", "100"]));
        assert!(usage_error(&["--bogus"]));
        assert!(usage_error(&["--socket"]));
        let o = parse_args(&[
            "--mount",
            "/rom=romfs:/x.img",
            "--mount=/dev/shm=ramfs",
            "--driver-timeout",
            "250",
        ])
        .unwrap();
        assert_eq!(o.driver_timeout_ms, 250);
        assert_eq!(o.mounts.len(), 2);
        assert_eq!(o.mounts[0].point, "/rom");
        assert_eq!(o.mounts[0].arg.as_deref(), Some("/x.img"));
        assert_eq!(o.mounts[1].kind, "ramfs");
        assert!(usage_error(&["--mount", "/a=ramfs", "--mount", "/a=tmpfs"]));
        assert!(usage_error(&["--mount", "rom=romfs"]));
        assert!(usage_error(&["--driver-timeout", "0"]));
        assert!(usage_error(&["--max-clients", "0"]));
        assert!(usage_error(&[
            "--arena-base",
            "0xfffffffffffff000",
            "--arena-size",
            "8K"
        ]));
    }

    #[test]
    fn mounts_of_unknown_kinds_or_wrong_arguments_are_usage_errors() {
        for bad in [
            "/x=bogus",
            "/dev/mtd0=nand",
            "/rom=romfs",
            "/rom=romfs:",
            "/tmp=ramfs:big",
            "/dev/zero=devzero:1",
        ] {
            assert!(usage_error(&["--mount", bad]), "{bad}");
        }
        let err = MountSpec::parse("/x=bogus").unwrap_err();
        assert!(err.contains(&mount_kind_names()), "{err}");
    }

    /// Every listed kind is one `mounts::build` builds: with a bad
    /// argument it fails on that argument, never as an unknown kind.
    #[test]
    fn every_listed_kind_is_built() {
        let arena = ArenaRange {
            base: 0x3d00_0000_0000,
            size: 1 << 20,
        };
        for kind in MOUNT_KINDS {
            // An argument of the right form, naming nothing where it names a file.
            let text = match (kind.name, kind.arg) {
                ("fbdev", _) => "/m=fbdev:4x4".to_string(),
                ("ramdisk", _) => "/m=ramdisk:64K".to_string(),
                (name, Some(_)) => format!("/m={name}:/nonexistent/x"),
                (name, None) => format!("/m={name}"),
            };
            let spec = MountSpec::parse(&text).unwrap();
            if let Err(e) = mounts::build(&spec, 0, arena) {
                assert!(!e.contains("unknown driver kind"), "{text}: {e}");
            }
        }
    }

    #[test]
    fn help_lists_every_kind_once() {
        let help = command().render_long_help().to_string();
        for kind in MOUNT_KINDS {
            let usage = match kind.arg {
                Some(arg) => format!("  {}:{arg} ", kind.name),
                None => format!("  {} ", kind.name),
            };
            assert_eq!(help.matches(&usage).count(), 1, "{usage}:\n{help}");
        }
        assert!(!help.contains("nand"), "{help}");
    }

    #[test]
    fn drivers_name_a_user_or_a_group() {
        use memsrv::DriverOwner;
        let drivers = |list: &[&str]| parse_args(list).unwrap().drivers;
        assert_eq!(drivers(&[]), DriverOwner::Root);
        assert_eq!(drivers(&["--drivers", "root"]), DriverOwner::User(0));
        assert_eq!(drivers(&["--drivers=1234"]), DriverOwner::User(1234));
        assert_eq!(drivers(&["--drivers", ":root"]), DriverOwner::Group(0));
        assert_eq!(drivers(&["--drivers", ":77"]), DriverOwner::Group(77));
        assert!(usage_error(&["--drivers", "no-such-user-here"]));
        assert!(usage_error(&["--drivers", ":no-such-group-here"]));
        assert!(usage_error(&["--drivers"]));
    }

    #[test]
    fn a_mount_argument_of_the_wrong_form_is_a_usage_error() {
        for bad in [
            "/dev/fb0=fbdev:640",
            "/dev/fb0=fbdev:0x480",
            "/dev/mtd0=mtd:x.img,nand",
            "/dev/ram0=ramdisk:lots",
            "/dev/ram0=ramdisk:1M,fast",
        ] {
            assert!(usage_error(&["--mount", bad]), "{bad}");
        }
        for good in [
            "/dev/fb0=fbdev:640x480",
            "/dev/mtd0=mtd:x.img,nor",
            "/dev/mtd0=mtd:x.img",
            "/dev/ram0=ramdisk:1M,direct",
        ] {
            assert!(parse_args(&["--mount", good]).is_ok(), "{good}");
        }
    }
}
