//! The spec's conformance vectors (`nommu::conformance`) through the
//! threads home: each on a fresh home, then all in sequence on one home (so
//! a vector that leaves state behind is caught too). Every failure is
//! reported, not just the first, and memsrv's invariants are checked after
//! every vector.

use hosted::threads::{Process, ThreadsHome};
use memsrv::Config;
use nommu::conformance::{Connection, Home, Vector, DEFERRED, VECTORS};
use nommu::Transport;
use protocol::Errno;

/// The threads home as the tables see it.
struct Threads(ThreadsHome);

/// A threads-home process as the tables see it.
struct Handle(Process);

impl Connection for Handle {
    fn pid(&self) -> u32 {
        self.0.pid()
    }

    fn transport(&self) -> &dyn Transport {
        self.0.client().transport()
    }
}

impl Home for Threads {
    fn spawn(&self) -> Result<Box<dyn Connection + '_>, Errno> {
        Ok(Box::new(Handle(self.0.spawn_process()?)))
    }

    fn attach(&self, ticket: u64) -> Result<Box<dyn Connection + '_>, Errno> {
        Ok(Box::new(Handle(self.0.attach(ticket)?)))
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.0.read(addr, buf)
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.0.write(addr, bytes)
    }
}

/// The spec's test environment (§14.0): nr_trim_pages 1, MAP_UNINITIALIZED
/// not permitted, order 10; 16 MiB of arena.
fn start() -> Threads {
    let config = Config {
        arena_size: 16 << 20,
        ..Config::default()
    };
    Threads(ThreadsHome::start(config).expect("start the threads home"))
}

/// The vectors that need no file or device: the test environment of
/// §14.0 is not built here yet.
fn without_files(vector: &&Vector) -> bool {
    matches!(vector.id, 1..=7 | 9 | 19 | 44 | 57..=68 | 70 | 71 | 108 | 111 | 113..=115)
}

/// Run one vector, then check the invariants and that everything it made
/// was released with its processes.
fn run(home: &mut Threads, vector: &Vector) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(failure) = (vector.run)(home) {
        failures.push(format!("{vector:?}: {failure}"));
    }
    if let Err(broken) = home.0.check_invariants() {
        failures.push(format!("{vector:?}: invariant broken: {broken}"));
    }
    match home.0.stats() {
        Ok(stats) if stats.free_pages == stats.total_pages && stats.mmap_copy_pages == 0 => {}
        other => failures.push(format!("{vector:?}: memory left behind: {other:?}")),
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
    for vector in VECTORS.iter().filter(without_files) {
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
        .0
        .spawn_process()
        .unwrap()
        .client()
        .read_sysctl(protocol::Sysctl::NrTrimPages);
    let mut failures = Vec::new();
    for vector in VECTORS.iter().filter(without_files) {
        failures.extend(run(&mut home, vector));
    }
    let after = home
        .0
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
