//! Futexes and shared memory in the threads home, with real threads: the
//! seed's futex demonstration (two processes meeting on a SysV segment), a
//! ping-pong stress over shared segments, and processes that vanish while
//! waiting on a futex, attached to a segment, or holding a POSIX shm file.
//!
//! A futex wait blocks its connection until it is woken, so every waiter
//! here is a process (a connection) of its own. Where the test must know
//! that the wait reached the server before the waker acts, the waiter
//! starts it as a split call ([`ChannelTransport::begin`]): the threads
//! home's single inbox then orders it before anything sent afterwards, so
//! once the waker has made one server call after that, the wait is in
//! the server and a store to the word cannot overtake it.

use drivers::ramfs::Ramfs;
use drivers::MountPoint;
use hosted::threads::{Mount, Process, ThreadsHome};
use memsrv::{Config, Stats};
use protocol::linux::{
    FUTEX_WAIT, FUTEX_WAKE, IPC_CREAT, IPC_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
};
use protocol::{decode_reply, encode_request, Errno, ProcView, Reply, Request, MAX_FRAME};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const RW: u32 = PROT_READ | PROT_WRITE;
/// The tag of split calls (the client core counts from 1).
const SPLIT_TAG: u32 = u32::MAX;

fn start() -> ThreadsHome {
    let config = Config {
        arena_size: 16 << 20,
        ..Config::default()
    };
    ThreadsHome::start(config).expect("start the threads home")
}

/// A threads home with `/dev/shm` (ramfs) mounted.
fn start_with_shm() -> (ThreadsHome, Mount) {
    let home = start();
    let point = MountPoint::new("/dev/shm", (0, 0x11)).expect("a mount point");
    let mount = home
        .mount(Box::new(Ramfs::new(point)))
        .expect("mount /dev/shm");
    (home, mount)
}

fn wait_request(uaddr: u64, val: u32, timeout_ns: Option<u64>) -> Request {
    Request::Futex {
        uaddr,
        op: FUTEX_WAIT,
        val,
        timeout_ns,
        val2: 0,
        uaddr2: 0,
        val3: 0,
    }
}

/// Queue `FUTEX_WAIT(uaddr, val)` without waiting for the answer.
fn begin_wait(p: &Process, uaddr: u64, val: u32, timeout_ns: Option<u64>) -> Result<(), Errno> {
    let mut out = [0u8; MAX_FRAME];
    let len = encode_request(SPLIT_TAG, &wait_request(uaddr, val, timeout_ns), &mut out);
    p.client().transport().begin(&out[..len])
}

/// The answer to the wait [`begin_wait`] queued.
fn finish_wait(p: &Process) -> Result<i64, Errno> {
    let mut back = [0u8; MAX_FRAME];
    let got = p.client().transport().finish(&mut back)?;
    let frame = decode_reply(&back[..got]).map_err(|e| e.errno())?;
    if frame.tag != SPLIT_TAG {
        return Err(Errno::EPROTO);
    }
    match frame.message.into_result()? {
        Reply::Value(v) => Ok(v),
        _ => Err(Errno::EPROTO),
    }
}

fn wake(p: &Process, uaddr: u64, count: u32) -> Result<i64, Errno> {
    p.client().futex(uaddr, FUTEX_WAKE, count, None, 0, 0, 0)
}

/// The futex word at `addr` as the threads see it.
fn word(p: &Process, addr: u64) -> &AtomicU32 {
    let ptr = p.ptr(addr, 4).expect("the word lies in the arena");
    assert_eq!(ptr as usize % 4, 0, "the word is aligned");
    // SAFETY: `ptr` points at 4 aligned bytes inside the arena, which the
    // process's handle keeps alive (it holds the arena) for at least the
    // returned borrow; every access to the word, the server's futex-word
    // load included, is atomic, so sharing it between threads is sound.
    unsafe { &*(ptr as *const AtomicU32) }
}

/// Nothing is left: every page free (no driver storage either), no
/// object, no open file, no call waiting, no SysV segment. Drivers answer
/// `Release` after the processes are gone, so the server gets a moment.
fn assert_clean(home: &ThreadsHome) {
    let clean = |s: &Stats| {
        s.mmap_copy_pages == 0
            && s.free_pages == s.total_pages
            && s.open_files == 0
            && s.objects == 0
            && s.pending_ops == 0
            && s.shm_segments == 0
            && s.shm_pages == 0
            && s.processes == 0
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = home.stats().expect("stats");
        if clean(&stats) {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {stats:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    home.check_invariants().expect("memsrv's invariants");
    let p = home.spawn_process().expect("spawn");
    let mut text = vec![0u8; 4096];
    let len = p
        .client()
        .read_proc(ProcView::SysvShm, &mut text)
        .expect("/proc/sysvipc/shm");
    let text = String::from_utf8_lossy(&text[..len.min(text.len())]).into_owned();
    assert_eq!(text.lines().count(), 1, "segments left: {text:?}");
}

/// The seed's demonstration (the NOMMU futex patch): one process waits on
/// the word at the start of segment 23 while it is 0, the other increments
/// it and wakes one waiter: the waker is told 1, the waiter 0.
#[test]
fn the_seeds_futex_demo() {
    let home = start();
    let waiter = home.spawn_process().unwrap();
    let waker = home.spawn_process().unwrap();
    let (queued, is_queued) = mpsc::channel();
    let (f, n, waited) = std::thread::scope(|s| {
        let w = s.spawn(|| {
            let c = waiter.client();
            let shmid = c.shmget(23, 4, IPC_CREAT | 0o666).expect("shmget");
            let f = c.shmat(shmid, 0, 0).expect("shmat");
            let n = word(&waiter, f).load(Ordering::SeqCst);
            // A generous timeout only so that a broken wake fails the test
            // instead of hanging it.
            begin_wait(&waiter, f, n, Some(60_000_000_000)).expect("queue the wait");
            queued.send(f).unwrap();
            let waited = finish_wait(&waiter);
            c.shmdt(f).expect("shmdt");
            (f, n, waited)
        });
        let f_waiter = is_queued.recv().unwrap();
        let c = waker.client();
        let shmid = c.shmget(23, 4, IPC_CREAT | 0o666).expect("shmget");
        let f = c.shmat(shmid, 0, 0).expect("shmat");
        assert_eq!(f, f_waiter, "both processes attach at one address");
        word(&waker, f).fetch_add(1, Ordering::SeqCst);
        let woke = wake(&waker, f, 1);
        c.shmdt(f).expect("shmdt");
        assert_eq!(woke, Ok(1), "WOKE");
        c.shm_remove(shmid).expect("IPC_RMID");
        w.join().unwrap()
    });
    assert_eq!(n, 0, "WAIT: {f:#x}{{{n:x}}}");
    assert_eq!(waited, Ok(0), "WAITED");
    drop((waiter, waker));
    assert_clean(&home);
}

/// Round trips per pair in the stress.
const ROUND_TRIPS: u32 = 100_000;
const PAIRS: usize = 4;
/// A hung player means a lost wake-up; after this the test wakes
/// everybody, stops and fails (it is not a timing assertion: a healthy
/// run takes a small fraction of it).
const DEADLINE: Duration = Duration::from_secs(900);

/// One player of a pair: on its turns (the word is `2i + parity`) it
/// advances the word and wakes the other; otherwise it waits for the word
/// to change. Returns the waits it made.
fn play(p: &Process, addr: u64, parity: u32, stop: &AtomicBool) -> Result<u64, String> {
    let w = word(p, addr);
    let mut waits = 0;
    for i in 0..ROUND_TRIPS {
        let mine = 2 * i + parity;
        loop {
            let mut seen = w.load(Ordering::Acquire);
            // A short spin first, as futex users do.
            for _ in 0..64 {
                if seen == mine {
                    break;
                }
                std::hint::spin_loop();
                seen = w.load(Ordering::Acquire);
            }
            if seen == mine {
                break;
            }
            if stop.load(Ordering::Relaxed) {
                return Err(format!(
                    "player {parity} at {addr:#x} stopped in round {i}: the word is {seen}, waiting for {mine}"
                ));
            }
            waits += 1;
            match p.client().futex(addr, FUTEX_WAIT, seen, None, 0, 0, 0) {
                Ok(0) | Err(Errno::EAGAIN) => {}
                other => return Err(format!("FUTEX_WAIT: {other:?}")),
            }
        }
        w.store(mine + 1, Ordering::Release);
        match wake(p, addr, 1) {
            Ok(0 | 1) => {}
            other => return Err(format!("FUTEX_WAKE: {other:?}")),
        }
    }
    Ok(waits)
}

/// Counts a finished player when dropped.
struct Done<'a>(&'a AtomicU32);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// 8 threads in 4 pairs play futex ping-pong over one segment per pair,
/// 10^5 round trips each: nobody is left sleeping, and afterwards no
/// page, segment or waiter is left.
#[test]
fn futex_ping_pong_over_shared_segments() {
    let home = start();
    let began = Instant::now();
    let owner = home.spawn_process().unwrap();
    let mut words = Vec::new();
    let mut players = Vec::new();
    for _ in 0..PAIRS {
        let id = owner
            .client()
            .shmget(IPC_PRIVATE, 4, IPC_CREAT | 0o600)
            .expect("shmget");
        let pair: Vec<Process> = (0..2).map(|_| home.spawn_process().unwrap()).collect();
        let x = pair[0].client().shmat(id, 0, 0).expect("shmat");
        assert_eq!(pair[1].client().shmat(id, 0, 0), Ok(x));
        // Destroyed when both players are gone.
        owner.client().shm_remove(id).expect("IPC_RMID");
        words.push(x);
        players.push(pair);
    }
    let stop = AtomicBool::new(false);
    let done = AtomicU32::new(0);
    let results: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = players
            .iter()
            .zip(&words)
            .flat_map(|(pair, &x)| {
                let (stop, done) = (&stop, &done);
                pair.iter().zip(0..).map(move |(p, parity)| {
                    s.spawn(move || {
                        // Counted even if the player panics, so the
                        // watchdog loop ends.
                        let _done = Done(done);
                        play(p, x, parity, stop)
                    })
                })
            })
            .collect();
        // The watchdog: past the deadline, stop everybody and wake them.
        let alarm = home.spawn_process().unwrap();
        while done.load(Ordering::SeqCst) < 2 * PAIRS as u32 {
            if began.elapsed() > DEADLINE {
                stop.store(true, Ordering::SeqCst);
                for &x in &words {
                    let _ = wake(&alarm, x, u32::MAX);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = began.elapsed();
    let mut waits = 0;
    for result in &results {
        match result {
            Ok(n) => waits += n,
            Err(e) => panic!("{e}"),
        }
    }
    for (pair, &x) in players.iter().zip(&words) {
        assert_eq!(word(&pair[0], x).load(Ordering::SeqCst), 2 * ROUND_TRIPS);
        assert_eq!(
            wake(&pair[0], x, u32::MAX),
            Ok(0),
            "nobody waits at the end"
        );
    }
    eprintln!("{PAIRS} pairs × {ROUND_TRIPS} round trips in {elapsed:?}, {waits} futex waits");
    drop(players);
    drop(owner);
    assert_clean(&home);
}

/// A process that vanishes while waiting on a futex and attached to a
/// segment: its waiter and its attachment go with it, the segment (already
/// removed) lives on for the other attacher and dies with it.
#[test]
fn a_process_killed_while_waiting_and_attached() {
    let home = start();
    let a = home.spawn_process().unwrap();
    let b = home.spawn_process().unwrap();
    let id = a
        .client()
        .shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0o600)
        .expect("shmget");
    let x = a.client().shmat(id, 0, 0).expect("A: shmat");
    assert_eq!(b.client().shmat(id, 0, 0), Ok(x), "B: shmat");
    a.client().shm_remove(id).expect("IPC_RMID");
    b.fill(x + 4096, 4096, 0x77).unwrap();
    assert_eq!(b.client().shm_stat(id).map(|s| s.nattch), Ok(2));
    begin_wait(&a, x, 0, None).expect("A: queue FUTEX_WAIT");
    // Killed: the connection closes with the wait outstanding.
    drop(a);
    assert_eq!(wake(&b, x, u32::MAX), Ok(0), "A's waiter is gone");
    let stat = b.client().shm_stat(id).expect("IPC_STAT");
    assert_eq!(stat.nattch, 1, "A's attachment is gone");
    let mut page = vec![0u8; 4096];
    b.read(x + 4096, &mut page).unwrap();
    assert!(page.iter().all(|&v| v == 0x77), "the segment's data");
    // A second waiter, woken normally, still works.
    let c = home.spawn_process().unwrap();
    assert_eq!(c.client().shmat(id, 0, 0), Ok(x), "C: shmat by id");
    begin_wait(&c, x, 0, Some(60_000_000_000)).expect("C: queue FUTEX_WAIT");
    // A round trip of B's: C's wait, queued before it, is in the server.
    assert_eq!(b.client().shm_stat(id).map(|s| s.nattch), Ok(2));
    word(&b, x).store(1, Ordering::SeqCst);
    assert_eq!(wake(&b, x, 1), Ok(1));
    assert_eq!(finish_wait(&c), Ok(0));
    drop(c);
    assert_eq!(b.client().shm_stat(id).map(|s| s.nattch), Ok(1));
    drop(b);
    assert_clean(&home);
}

/// A process that vanishes while holding a POSIX shm file (`/dev/shm`,
/// ramfs): open `O_CREAT`, `ftruncate`, `mmap` shared; the file's data
/// survives `close` and `unlink` while another process maps it, and goes
/// when the last mapping does.
#[test]
fn a_process_killed_while_holding_a_posix_shm_file() {
    let (home, _shm) = start_with_shm();
    let a = home.spawn_process().unwrap();
    let b = home.spawn_process().unwrap();
    let path = "/dev/shm/killed";
    let fa = a
        .client()
        .open(path, O_CREAT | O_RDWR, 0o600)
        .expect("A: open");
    a.client().ftruncate(fa, 8192).expect("A: ftruncate from 0");
    let x = a
        .client()
        .mmap(0, 8192, RW, MAP_SHARED, fa, 0)
        .expect("A: mmap SHARED");
    a.fill(x, 8192, 0x3c).unwrap();
    let fb = b.client().open(path, O_RDWR, 0).expect("B: open");
    let y = b
        .client()
        .mmap(0, 8192, RW, MAP_SHARED, fb, 0)
        .expect("B: mmap SHARED");
    assert_eq!(y, x, "one address for both");
    // A second holder of the file that dies waiting on a futex in it.
    begin_wait(&a, x + 64, 0x3c3c_3c3c, None).expect("A: queue FUTEX_WAIT");
    drop(a);
    assert_eq!(wake(&b, y + 64, u32::MAX), Ok(0), "A's waiter is gone");
    b.client().close(fb).expect("B: close");
    b.client().unlink(path).expect("B: unlink");
    assert_eq!(
        b.client().open(path, O_RDWR, 0),
        Err(Errno::ENOENT),
        "the name is gone"
    );
    let mut all = vec![0u8; 8192];
    b.read(y, &mut all).unwrap();
    assert!(
        all.iter().all(|&v| v == 0x3c),
        "the data survives close and unlink"
    );
    b.fill(y, 16, 0x11).unwrap();
    b.client().munmap(y, 8192).expect("B: munmap");
    drop(b);
    assert_clean(&home);
}
