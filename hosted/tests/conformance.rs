//! The spec's conformance vectors (`nommu::conformance`) through the
//! threads home, with the test environment of spec §14.0 mounted (see
//! [`Env`]): each vector on a fresh home, then all in sequence on one home
//! (so a vector that leaves state behind is caught too). Every failure is
//! reported, not just the first; after every vector memsrv's invariants
//! are checked, and every page must be free again except the drivers' own
//! storage.

use drivers::copyfs::{CopyFs, MemStore};
use drivers::devmem::DevMem;
use drivers::devzero::DevZero;
use drivers::fbdev::Framebuffer;
use drivers::mtd::{Mtd, MtdType};
use drivers::pipe::Pipe;
use drivers::ramdisk::{Ramdisk, RamdiskMapping};
use drivers::ramfs::Ramfs;
use drivers::romfs::Romfs;
use drivers::socket::Socket;
use drivers::testdev::{TestDev, TestDevConfig};
use drivers::MountPoint;
use hosted::threads::{Arena, Mount, Process, ThreadsHome};
use memsrv::{Config, Credentials, Stats};
use nommu::conformance::env::{
    self, data_f_byte, rom_t_byte, DATA_DEV, DATA_F_INO, DATA_F_LEN, O_RDONLY, ROM_T_LEN,
};
use nommu::conformance::{
    Connection, Home, Landmark, TestDevice, TestDeviceConfig, TestDeviceCounters, Vector, DEFERRED,
    VECTORS,
};
use nommu::Transport;
use protocol::Errno;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A threads-home process as the tables see it.
struct Handle(Process);

impl Connection for Handle {
    fn pid(&self) -> u32 {
        self.0.pid()
    }

    fn transport(&self) -> &dyn Transport {
        self.0.client().transport()
    }

    fn begin(&self, request: &[u8]) -> Result<(), Errno> {
        self.0.client().transport().begin(request)
    }

    fn finish(&self, reply: &mut [u8; protocol::MAX_FRAME]) -> Result<usize, Errno> {
        self.0.client().transport().finish(reply)
    }
}

/// `/dev/tst`'s handle as the tables see it. A change resets the
/// counters; the runner lets every call of one vector settle (no call
/// waiting in memsrv) before the next vector configures the device.
struct TstHandle {
    config: TestDevConfig,
}

impl TestDevice for TstHandle {
    fn configure(&self, wanted: TestDeviceConfig) {
        self.config.configure(
            wanted.caps,
            wanted.get_unmapped_area,
            wanted.mmap,
            wanted.read,
            wanted.close,
        );
    }

    fn base(&self) -> u64 {
        self.config.base()
    }

    fn counters(&self) -> TestDeviceCounters {
        TestDeviceCounters {
            mmap_calls: self.config.mmap_calls(),
            close_calls: self.config.close_calls(),
        }
    }
}

/// The spec's test environment (§14.0) on one threads home: every mount
/// `nommu::conformance::env` names, each driver on its own thread.
///
/// * `/data` and `/data-noexec`: copy-only filesystems over in-memory
///   stores, each holding `f` (10000 bytes of `data_f_byte`, inode 37,
///   device `1f:02`). `/data-noexec` is mounted `noexec`: it stands for
///   `/data` remounted `noexec` (vector 18), which the protocol cannot
///   express; its copy of `f` is separate, so a `pwrite` to `/data/f`
///   does not reach it.
/// * `/tmp`, `/dev/shm`: ramfs, pages added by `write()` scattered.
/// * `/rom`: romfs over an image `genromfs` builds at test time holding
///   `t` (20000 bytes of `rom_t_byte`). The spec's `0x40001230` is the
///   image's arena address plus `t`'s data offset in it.
/// * `/dev/fb0` (1 MiB), `/dev/mtd0` (ROM type), `/dev/mtd1` (NOR flash),
///   `/dev/tst` (with a window of arena pages as its base), `/dev/zero`,
///   a FIFO and a socket object, `/dev/ram0` (default capabilities) and
///   `/dev/ram1` (`DIRECT`, vector 122).
/// * `/dev/mem` over a range of host memory outside the arena (memsrv
///   lets a driver hand out arena addresses only from its own storage;
///   device memory lies outside): its first page is the spec's
///   `0x20000000`.
struct Env {
    tst: TstHandle,
    rom_t: u64,
    screen: u64,
    ramdisk: u64,
    device_memory: Arena,
    _mounts: Vec<Mount>,
}

/// `/rom`'s image, built once per test run with `genromfs`.
fn rom_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nommu-threads-rom-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(&root).expect("a scratch directory for the romfs image");
        let t: Vec<u8> = (0..ROM_T_LEN).map(rom_t_byte).collect();
        std::fs::write(root.join("t"), t).expect("writing rom/t");
        let image = dir.join("rom.img");
        let status = std::process::Command::new("genromfs")
            .arg("-f")
            .arg(&image)
            .arg("-d")
            .arg(&root)
            .arg("-V")
            .arg("rom")
            .status()
            .expect("running genromfs (install it: apt-get install genromfs)");
        assert!(status.success(), "genromfs failed: {status}");
        let bytes = std::fs::read(&image).expect("reading the romfs image");
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    })
}

fn at(path: &str, dev: (u8, u8)) -> MountPoint {
    MountPoint::new(path, dev).expect("a valid mount point")
}

/// Bytes that are not a multiple of anything the vectors use.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 8) as u8)
        .collect()
}

impl Env {
    fn build(home: &ThreadsHome) -> Result<Self, String> {
        fn fail(what: &str) -> impl Fn(Errno) -> String + '_ {
            move |e| format!("mounting {what}: {e:?}")
        }
        let mut mounts = Vec::new();
        let data: Vec<u8> = (0..DATA_F_LEN).map(data_f_byte).collect();
        for (path, minor, noexec) in [("/data", DATA_DEV.1, false), ("/data-noexec", 0x03, true)] {
            let mut point = at(path, (DATA_DEV.0, minor));
            if noexec {
                point = point.noexec();
            }
            let store = MemStore::new().with_file("f", DATA_F_INO, &data);
            mounts.push(
                home.mount(Box::new(CopyFs::new(point, store)))
                    .map_err(fail(path))?,
            );
        }
        for (path, minor) in [("/tmp", 0x10), ("/dev/shm", 0x11)] {
            let fs = Ramfs::new(at(path, (0, minor))).scatter_written_pages(true);
            mounts.push(home.mount(Box::new(fs)).map_err(fail(path))?);
        }
        let rom = Romfs::mount(rom_image(), at("/rom", (0x1f, 0x00)))
            .map_err(|e| format!("indexing the romfs image: {e:?}"))?;
        let (mount, rom_t) = home
            .mount_with(rom, |rom| {
                Some(rom.image_base()? + u64::from(rom.data_offset("t")?))
            })
            .map_err(fail("/rom"))?;
        mounts.push(mount);
        let rom_t = rom_t.ok_or("romfs: no arena address for t")?;
        let fb = Framebuffer::new(at(env::FB0, (29, 0)), 512, 512);
        let (mount, screen) = home
            .mount_with(fb, |fb| fb.screen_base())
            .map_err(fail(env::FB0))?;
        mounts.push(mount);
        let screen = screen.ok_or("fbdev: no screen")?;
        let mtd0 = Mtd::new(
            at(env::MTD0, (90, 0)),
            MtdType::Rom,
            &pattern(64 << 10, 7),
            16 << 10,
        );
        let mtd1 = Mtd::new(
            at(env::MTD1, (90, 2)),
            MtdType::Nor,
            &pattern(64 << 10, 13),
            16 << 10,
        );
        mounts.push(home.mount(Box::new(mtd0)).map_err(fail(env::MTD0))?);
        mounts.push(home.mount(Box::new(mtd1)).map_err(fail(env::MTD1))?);
        let (tst, config) = TestDev::new(at(env::TST, (240, 0)));
        mounts.push(
            home.mount(Box::new(tst.with_window(16)))
                .map_err(fail(env::TST))?,
        );
        let device_memory = Arena::new(16 * 4096).map_err(|e| format!("device memory: {e:?}"))?;
        let valid = device_memory.base()..device_memory.base() + device_memory.size();
        let mem = DevMem::new(at(env::MEM, (1, 1)), valid);
        mounts.push(home.mount(Box::new(mem)).map_err(fail(env::MEM))?);
        let zero = DevZero::new(at(env::ZERO, (1, 5)));
        mounts.push(home.mount(Box::new(zero)).map_err(fail(env::ZERO))?);
        let pipe = Pipe::new(at(env::PIPE, (0, 0x12)));
        mounts.push(home.mount(Box::new(pipe)).map_err(fail(env::PIPE))?);
        let socket = Socket::new(at(env::SOCKET, (0, 0x13)));
        mounts.push(home.mount(Box::new(socket)).map_err(fail(env::SOCKET))?);
        let ram0 = Ramdisk::new(at(env::RAMDISK, (1, 0)), 64 << 10, RamdiskMapping::Copy);
        mounts.push(home.mount(Box::new(ram0)).map_err(fail(env::RAMDISK))?);
        let ram1 = Ramdisk::new(
            at(env::RAMDISK_DIRECT, (1, 1)),
            64 << 10,
            RamdiskMapping::Direct,
        );
        let (mount, ramdisk) = home
            .mount_with(ram1, |disk| disk.base())
            .map_err(fail(env::RAMDISK_DIRECT))?;
        mounts.push(mount);
        let ramdisk = ramdisk.ok_or("ramdisk: no array")?;
        Ok(Self {
            tst: TstHandle { config },
            rom_t,
            screen,
            ramdisk,
            device_memory,
            _mounts: mounts,
        })
    }
}

/// The threads home as the tables see it. The home is dropped before the
/// environment: its drivers then see their connections close and stop.
struct Threads {
    home: ThreadsHome,
    env: Env,
}

impl Home for Threads {
    fn spawn(&self) -> Result<Box<dyn Connection + '_>, Errno> {
        Ok(Box::new(Handle(self.home.spawn_process()?)))
    }

    fn spawn_as(&self, uid: u32, gid: u32) -> Result<Box<dyn Connection + '_>, Errno> {
        let credentials = Credentials {
            pid: None,
            uid,
            gid,
        };
        Ok(Box::new(Handle(self.home.spawn_process_as(credentials)?)))
    }

    fn attach(&self, ticket: u64) -> Result<Box<dyn Connection + '_>, Errno> {
        Ok(Box::new(Handle(self.home.attach(ticket)?)))
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.home.read(addr, buf)
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.home.write(addr, bytes)
    }

    fn test_device(&self) -> Option<&dyn TestDevice> {
        Some(&self.env.tst)
    }

    fn landmark(&self, which: Landmark) -> Option<u64> {
        Some(match which {
            Landmark::RomTData => self.env.rom_t,
            Landmark::FrameBuffer => self.env.screen,
            Landmark::DevMemWindow => self.env.device_memory.base(),
            Landmark::RamdiskArray => self.env.ramdisk,
        })
    }

    fn word_size(&self) -> u32 {
        Config::default().word_size
    }
}

/// The spec's test environment (§14.0): nr_trim_pages 1, MAP_UNINITIALIZED
/// not permitted, order 10; 16 MiB of arena; `mremap` never moves (the
/// strict profile §14.6 describes; the default is tested separately).
fn start() -> Threads {
    let config = Config {
        arena_size: 16 << 20,
        // §14.6 describes the strict profile (vector 75).
        strict_mremap: true,
        ..Config::default()
    };
    let home = ThreadsHome::start(config).expect("start the threads home");
    let env = Env::build(&home).unwrap_or_else(|e| panic!("the test environment: {e}"));
    Threads { home, env }
}

/// Nothing of the vector's is left: no copies, every page free except the
/// drivers' storage, no open file, no object, no call waiting, no SysV
/// segment. Drivers
/// answer `Release` and `close` after the vector's processes are gone, so
/// the server is given a moment to settle.
fn leftovers(home: &ThreadsHome) -> Option<String> {
    let clean = |s: &Stats| {
        s.mmap_copy_pages == 0
            && s.free_pages + s.backing_pages == s.total_pages
            && s.open_files == 0
            && s.objects == 0
            && s.pending_ops == 0
            && s.shm_segments == 0
            && s.shm_pages == 0
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match home.stats() {
            Ok(stats) if clean(&stats) => return None,
            Ok(stats) if Instant::now() >= deadline => return Some(format!("{stats:?}")),
            Err(e) => return Some(format!("no stats: {e:?}")),
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Run one vector, then check the invariants and that everything it made
/// was released with its processes.
fn run(home: &mut Threads, vector: &Vector) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(failure) = (vector.run)(home) {
        failures.push(format!("{vector:?}: {failure}"));
    }
    if let Err(broken) = home.home.check_invariants() {
        failures.push(format!("{vector:?}: invariant broken: {broken}"));
    }
    if let Some(left) = leftovers(&home.home) {
        failures.push(format!("{vector:?}: left behind: {left}"));
    }
    failures
}

fn report(failures: &[String]) {
    for failure in failures {
        eprintln!("FAILED {failure}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} vector checks failed (see above)",
        failures.len(),
        VECTORS.len()
    );
}

#[test]
fn every_vector_on_a_fresh_home() {
    let mut failures = Vec::new();
    for vector in VECTORS {
        let mut home = start();
        failures.extend(run(&mut home, vector));
    }
    eprintln!("{} vectors run, {} deferred", VECTORS.len(), DEFERRED.len());
    report(&failures);
}

#[test]
fn every_vector_in_sequence_on_one_home() {
    let mut home = start();
    let trim = home
        .home
        .spawn_process()
        .unwrap()
        .client()
        .read_sysctl(protocol::Sysctl::NrTrimPages);
    let mut failures = Vec::new();
    for vector in VECTORS {
        failures.extend(run(&mut home, vector));
    }
    let after = home
        .home
        .spawn_process()
        .unwrap()
        .client()
        .read_sysctl(protocol::Sysctl::NrTrimPages);
    if after != trim {
        failures.push(format!(
            "nr_trim_pages not restored: {trim:?} before, {after:?} after"
        ));
    }
    report(&failures);
}

/// The environment itself: every mount is listed, and `/data/f` and
/// `/rom/t` read back as written.
#[test]
fn the_environment_is_what_the_vectors_assume() {
    let home = start();
    let p = home.home.spawn_process().unwrap();
    let mounts: Vec<String> = p
        .client()
        .list_mounts()
        .unwrap()
        .map(|m| m.as_str().to_owned())
        .collect();
    for path in [
        "/data",
        "/data-noexec",
        "/tmp",
        "/dev/shm",
        "/rom",
        env::FB0,
        env::MTD0,
        env::MTD1,
        env::TST,
        env::MEM,
        env::ZERO,
        env::PIPE,
        env::SOCKET,
        env::RAMDISK,
        env::RAMDISK_DIRECT,
    ] {
        assert!(mounts.iter().any(|m| m == path), "{path} not in {mounts:?}");
    }
    for (path, len, byte) in [
        (env::DATA_F, DATA_F_LEN, data_f_byte as fn(u64) -> u8),
        (env::DATA_NOEXEC_F, DATA_F_LEN, data_f_byte),
        (env::ROM_T, ROM_T_LEN, rom_t_byte),
    ] {
        let fd = p.client().open(path, O_RDONLY, 0).unwrap();
        let mut buf = vec![0u8; len as usize + 100];
        assert_eq!(
            p.client().read(fd, &mut buf).unwrap(),
            len as usize,
            "{path}"
        );
        assert!(
            (0..len).all(|i| buf[i as usize] == byte(i)),
            "{path} has the wrong bytes"
        );
        let stat = p.client().fstat(fd).unwrap();
        assert_eq!(stat.size, len, "{path}");
    }
    let fd = p.client().open(env::DATA_F, O_RDONLY, 0).unwrap();
    let stat = p.client().fstat(fd).unwrap();
    assert_eq!((stat.dev, stat.ino), (DATA_DEV, DATA_F_INO));
    assert_ne!(home.env.rom_t % 4096, 0, "/rom/t's data is page aligned");
    drop(p);
    assert_eq!(leftovers(&home.home), None);
}

/// memsrv's default (not the strict profile §14.6 describes): a private
/// anonymous mapping grown past its region with `MREMAP_MAYMOVE` moves,
/// keeping its contents; without `MREMAP_MAYMOVE` it cannot grow.
#[test]
fn mremap_moves_a_grown_anonymous_mapping_by_default() {
    use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_MAYMOVE, PROT_READ, PROT_WRITE};
    const P: u64 = 4096;
    let config = Config {
        arena_size: 16 << 20,
        ..Config::default()
    };
    assert!(!config.strict_mremap, "moving is the default");
    let home = ThreadsHome::start(config).expect("start the threads home");
    let p = home.spawn_process().unwrap();
    let rw = PROT_READ | PROT_WRITE;
    let a = p
        .client()
        .mmap(0, 4 * P, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    let bytes: Vec<u8> = (0..4 * P).map(|i| (i % 251) as u8).collect();
    p.write(a, &bytes).unwrap();
    // Something right behind, so growing in place is impossible anyway.
    let _fence = p
        .client()
        .mmap(0, P, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    assert_eq!(p.client().mremap(a, 4 * P, 8 * P, 0, 0), Err(Errno::ENOMEM));
    let b = p
        .client()
        .mremap(a, 4 * P, 8 * P, MREMAP_MAYMOVE, 0)
        .expect("mremap with MREMAP_MAYMOVE");
    assert_ne!(b, a, "the mapping moved");
    let mut moved = vec![0u8; 4 * P as usize];
    p.read(b, &mut moved).unwrap();
    assert!(moved == bytes, "the contents moved with it");
    let mut tail = vec![1u8; 4 * P as usize];
    p.read(b + 4 * P, &mut tail).unwrap();
    assert!(tail.iter().all(|&v| v == 0), "the new pages are zero");
    assert_eq!(p.client().munmap(a, 4 * P), Err(Errno::EINVAL), "A is gone");
    p.client()
        .munmap(b, 8 * P)
        .expect("munmap of the moved mapping");
    drop(p);
    assert_eq!(leftovers(&home), None);
}
