//! `memsrvd`'s command line.

use memsrv::Placement;
use nommu::host::DEFAULT_SOCKET;
use std::path::PathBuf;

/// Where the arena appears in every process unless told otherwise: high in
/// the 47-bit user address space, far from where the host places heaps,
/// stacks and libraries.
pub const DEFAULT_ARENA_BASE: u64 = 0x2000_0000_0000;
/// The arena's size unless told otherwise.
pub const DEFAULT_ARENA_SIZE: u64 = 64 << 20;

/// The daemon's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub socket: PathBuf,
    pub arena_base: u64,
    pub arena_size: u64,
    pub nr_trim_pages: u32,
    pub allow_uninitialized: bool,
    /// Linux's `mremap` exactly: never move, never grow past the first
    /// size (memsrv `Config::strict_mremap`).
    pub strict_mremap: bool,
    /// Where copies and anonymous memory go in the arena (memsrv
    /// `Config::placement`).
    pub placement: Placement,
    pub max_clients: usize,
    /// Built-in backing devices, each served by a driver thread.
    pub mounts: Vec<MountSpec>,
    /// How long a driver may take to answer memsrv before the operation
    /// waiting for it fails `EIO`.
    pub driver_timeout_ms: u64,
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
    /// plain components (no `.`/`..`, no trailing `/`); the kind a known
    /// driver name (checked when the device is built).
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
        Ok(Self {
            point: point.to_string(),
            kind: kind.to_string(),
            arg,
        })
    }
}

impl Options {
    /// The defaults, with the socket from `$NOMMU_SOCKET` if set.
    pub fn from_env() -> Self {
        Self {
            socket: std::env::var_os("NOMMU_SOCKET")
                .map(Into::into)
                .unwrap_or_else(|| DEFAULT_SOCKET.into()),
            arena_base: DEFAULT_ARENA_BASE,
            arena_size: DEFAULT_ARENA_SIZE,
            nr_trim_pages: 1,
            allow_uninitialized: false,
            strict_mremap: false,
            placement: Placement::Grouped,
            max_clients: 1024,
            mounts: Vec::new(),
            driver_timeout_ms: 2000,
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Serve(Options),
    Help,
}

/// `memsrvd --help`.
pub const HELP: &str = "\
memsrvd - the nommu memory server for host processes

Usage: memsrvd [OPTIONS]

Host processes linking libnommu connect over a Unix SOCK_SEQPACKET socket;
the arena (a memory file) is mapped at the same address in the daemon and
every client, so one address means the same bytes in every process.

Options:
  --socket PATH          listen on PATH (default: $NOMMU_SOCKET, else /tmp/nommu.sock)
  --arena-size SIZE      arena size in bytes, a multiple of 4096; suffixes K, M, G
                         (default: 64M)
  --arena-base ADDR      arena address in every process, page aligned, decimal or
                         0x-hex (default: 0x200000000000)
  --nr-trim-pages N      initial /proc/sys/vm/nr_trim_pages (default: 1)
  --allow-uninitialized  honour MAP_UNINITIALIZED (CONFIG_MMAP_ALLOW_UNINITIALIZED)
  --strict-mremap        mremap exactly as no-MMU Linux: never move a mapping
                         and never grow it past its first size (ENOMEM).
                         Without it (the default) MREMAP_MAYMOVE moves a
                         private anonymous mapping or private writable copy
                         that cannot grow in place (contents copied)
  --placement KIND       where copies and anonymous memory go in the arena:
                         grouped (the default) takes only the pages a mapping
                         keeps, from free runs by size, and keeps large runs
                         free after long churn; linux is no-MMU Linux's buddy
                         allocator exactly (2^order blocks, trimmed)
  --max-clients N        most connections served at once (default: 1024)
  --driver-timeout MS    a driver that has not answered a request after MS
                         milliseconds fails the waiting call with EIO
                         (default: 2000)
  --mount POINT=KIND[:ARG]
                         serve a backing device at POINT from a driver built
                         into the daemon (repeat for more); KIND[:ARG] is one of
                           romfs:IMAGE      a genromfs image, read-only, direct
                                            (XIP) mappings
                           ramfs            memory filesystem (/dev/shm, /tmp):
                                            open O_CREAT, ftruncate, MAP_SHARED
                           tmpfs            the same as ramfs
                           hostdir:DIR      copy-only filesystem over host
                                            directory DIR (MAP_PRIVATE copies,
                                            MAP_SHARED fails ENODEV)
                           fbdev:WxH        a framebuffer of W x H 32-bit pixels
                           mtd:IMAGE[,TYPE] an MTD device holding IMAGE; TYPE is
                                            rom (default), ram, nor or nand
                           ramdisk:SIZE     a memory block device of SIZE bytes
                                            (suffixes K, M, G)
                           devzero, devmem  /dev/zero, /dev/mem
                         e.g. --mount /rom=romfs:rom.img --mount /dev/shm=ramfs
                         A driver can also run as a process of its own:
                         nommu-driver --socket PATH --mount POINT=KIND[:ARG].
  -h, --help             print this help

Once ready to serve it prints one line to standard output:
  memsrvd: ready on PATH (arena BASE+SIZE, pid PID)
SIGINT or SIGTERM removes the socket and exits.
";

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

/// Parse the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options::from_env();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--socket" => options.socket = value("a path")?.into(),
            "--arena-size" => {
                let v = value("a size")?;
                options.arena_size = parse_size(&v)
                    .filter(|s| *s > 0 && s % protocol::PAGE_SIZE == 0)
                    .ok_or_else(|| {
                        format!("bad --arena-size {v:?}: a non-zero multiple of 4096")
                    })?;
            }
            "--arena-base" => {
                let v = value("an address")?;
                options.arena_base = parse_size(&v)
                    .filter(|b| *b > 0 && b % protocol::PAGE_SIZE == 0)
                    .ok_or_else(|| format!("bad --arena-base {v:?}: a page-aligned address"))?;
            }
            "--nr-trim-pages" => {
                let v = value("a number")?;
                options.nr_trim_pages = v
                    .parse()
                    .map_err(|_| format!("bad --nr-trim-pages {v:?}"))?;
            }
            "--max-clients" => {
                let v = value("a number")?;
                options.max_clients = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("bad --max-clients {v:?}"))?;
            }
            "--allow-uninitialized" => options.allow_uninitialized = true,
            "--strict-mremap" => options.strict_mremap = true,
            "--placement" => {
                let v = value("linux or grouped")?;
                options.placement = match v.as_str() {
                    "linux" => Placement::Linux,
                    "grouped" => Placement::Grouped,
                    _ => return Err(format!("bad --placement {v:?}: linux or grouped")),
                };
            }
            "--driver-timeout" => {
                let v = value("milliseconds")?;
                options.driver_timeout_ms = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("bad --driver-timeout {v:?}"))?;
            }
            "--mount" => {
                let spec = MountSpec::parse(&value("POINT=KIND[:ARG]")?)?;
                if options.mounts.iter().any(|m| m.point == spec.point) {
                    return Err(format!("{} is mounted twice", spec.point));
                }
                options.mounts.push(spec);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if options.arena_base.checked_add(options.arena_size).is_none() {
        return Err("the arena does not fit the address space".into());
    }
    Ok(Command::Serve(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sizes_take_suffixes_and_hex() {
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("0x1000"), Some(4096));
        assert_eq!(parse_size("8k"), Some(8192));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn options_parse() {
        let Command::Serve(o) = parse(args(&[
            "--socket",
            "/tmp/x.sock",
            "--arena-size=16M",
            "--arena-base",
            "0x300000000000",
            "--nr-trim-pages",
            "0",
            "--allow-uninitialized",
            "--strict-mremap",
        ]))
        .unwrap() else {
            panic!("expected Serve")
        };
        assert_eq!(o.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(o.arena_size, 16 << 20);
        assert_eq!(o.arena_base, 0x3000_0000_0000);
        assert_eq!(o.nr_trim_pages, 0);
        assert!(o.allow_uninitialized);
        assert!(o.strict_mremap);
        assert_eq!(o.placement, Placement::Grouped);
        assert_eq!(parse(args(&["--help"])).unwrap(), Command::Help);
        let Command::Serve(o) = parse(args(&["--placement", "linux"])).unwrap() else {
            panic!("expected Serve")
        };
        assert_eq!(o.placement, Placement::Linux);
        assert!(parse(args(&["--placement=first-fit"])).is_err());
        assert!(parse(args(&["--arena-size", "100"])).is_err());
        assert!(parse(args(&["--bogus"])).is_err());
        assert!(parse(args(&["--socket"])).is_err());
        let Command::Serve(o) = parse(args(&[
            "--mount",
            "/rom=romfs:/x.img",
            "--mount=/dev/shm=ramfs",
            "--driver-timeout",
            "250",
        ]))
        .unwrap() else {
            panic!("expected Serve")
        };
        assert_eq!(o.driver_timeout_ms, 250);
        assert_eq!(o.mounts.len(), 2);
        assert_eq!(o.mounts[0].point, "/rom");
        assert_eq!(o.mounts[0].arg.as_deref(), Some("/x.img"));
        assert_eq!(o.mounts[1].kind, "ramfs");
        assert!(parse(args(&["--mount", "/a=ramfs", "--mount", "/a=tmpfs"])).is_err());
        assert!(parse(args(&["--mount", "rom=romfs"])).is_err());
        assert!(parse(args(&["--driver-timeout", "0"])).is_err());
    }
}
