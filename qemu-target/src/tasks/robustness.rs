//! Bad input on the board: a task that faults is reported and ended while
//! everyone else goes on; a task that sends memsrv garbage loses its
//! connection, not the server; bad system-call arguments are errors; a
//! task that touches memory not its own is stopped (`isolation`,
//! `isolation_regions`, `isolation_statics`, `isolation_drivers`,
//! `isolation_driver_regions`, `isolation_devices`, `isolation_ranges`,
//! `isolation_range_pool`,
//! `isolation_clone_vm`;
//! `isolation_lent` runs
//! with the hardware checks).

use crate::memory;
use crate::println;
use crate::sys::{self, IpcTransport};
use alloc::format;
use alloc::string::String;
use nommu::Client;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use protocol::{Errno, MAX_FRAME};

/// The kernel's exit code for a task killed by a load access fault
/// (128 + scause 5).
const KILLED_BY_LOAD_FAULT: i64 = 128 + 5;

type Check = Result<(), String>;

/// One anonymous mapping made and undone by a fresh process: memsrv still
/// serves.
fn memsrv_serves(memsrv: usize) -> Check {
    let client = Client::new(IpcTransport::new(
        sys::connect(memsrv, 0, 0).map_err(|e| format!("connect: {e:?}"))?,
    ));
    client.hello(None).map_err(|e| format!("hello: {e:?}"))?;
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let a = client
        .mmap(0, 4096, PROT_READ | PROT_WRITE, flags, -1, 0)
        .map_err(|e| format!("mmap: {e:?}"))?;
    client.munmap(a, 4096).map_err(|e| format!("munmap: {e:?}"))
}

/// A task that loads from where nothing is is killed with a report; its
/// connection to memsrv closes with it.
fn a_faulting_task_ends_alone(memsrv: usize) -> Check {
    let task = sys::spawn("faulter", 16 << 10, move || {
        let _held = sys::connect(memsrv, 0, 0);
        memory::load_from_nothing() as i64
    })
    .map_err(|e| format!("spawn: {e:?}"))?;
    match task.join() {
        Ok(KILLED_BY_LOAD_FAULT) => memsrv_serves(memsrv),
        other => Err(format!("the faulting task ended with {other:?}")),
    }
}

/// Frames memsrv cannot read: it drops that connection and serves on.
fn garbage_costs_only_the_sender(memsrv: usize) -> Check {
    let conn = sys::connect(memsrv, 0, 0).map_err(|e| format!("connect: {e:?}"))?;
    let mut reply = [0u8; MAX_FRAME];
    let garbage = [0xA5u8; 64];
    let answer = sys::call(conn, &garbage, &mut reply);
    let _ = sys::close(conn);
    if answer.is_ok() {
        return Err(format!("garbage was answered: {answer:?}"));
    }
    memsrv_serves(memsrv)
}

/// Bad system-call arguments: errors, not faults (bad addresses are the
/// kernel's unit tests: a Rust slice cannot name one).
fn bad_arguments_are_errors(memsrv: usize) -> Check {
    if sys::connect(999, 0, 0) != Err(Errno::ESRCH) {
        return Err("a connection to no task".into());
    }
    if sys::close(0xdead_0001) != Err(Errno::EBADF) {
        return Err("closing a connection that is not there".into());
    }
    let mut reply = [0u8; MAX_FRAME];
    if sys::call(0xdead_0001, b"x", &mut reply) != Err(Errno::EBADF) {
        return Err("a call on a connection that is not there".into());
    }
    memsrv_serves(memsrv)
}

/// A clone ticket, printed so the board test can compare two boots: the
/// suites before this make the same clones in the same order every boot,
/// so only the per-boot secret can make the tickets differ. The child is
/// claimed and ends at once, so the printed ticket opens nothing.
fn clone_ticket(memsrv: usize) -> Check {
    let client = Client::new(IpcTransport::new(
        sys::connect(memsrv, 0, 0).map_err(|e| format!("connect: {e:?}"))?,
    ));
    client.hello(None).map_err(|e| format!("hello: {e:?}"))?;
    let (_, ticket) = client
        .clone_process(protocol::linux::SIGCHLD)
        .map_err(|e| format!("clone: {e:?}"))?;
    let child = Client::new(IpcTransport::new(
        sys::connect(memsrv, 0, 0).map_err(|e| format!("connect: {e:?}"))?,
    ));
    child
        .hello(Some(ticket))
        .map_err(|e| format!("hello with the ticket: {e:?}"))?;
    child.exit().map_err(|e| format!("child exit: {e:?}"))?;
    client.exit().map_err(|e| format!("exit: {e:?}"))?;
    println!("robustness: clone ticket {ticket:#018x}");
    Ok(())
}

/// Run the checks; the number that failed.
pub fn run(memsrv: usize) -> usize {
    let checks: [(&str, fn(usize) -> Check); 20] = [
        ("a clone ticket is made", clone_ticket),
        ("a faulting task ends alone", a_faulting_task_ends_alone),
        (
            "garbage costs only the sender",
            garbage_costs_only_the_sender,
        ),
        ("bad arguments are errors", bad_arguments_are_errors),
        (
            "a task reading another task's mapping is stopped",
            super::isolation::reading_another_tasks_mapping_is_stopped,
        ),
        (
            "a task reading a page it unmapped is stopped",
            super::isolation::reading_an_unmapped_page_is_stopped,
        ),
        (
            "a task with forty mappings reaches each and no gap between them",
            super::isolation_ranges::a_task_with_forty_mappings_reaches_each_and_no_gap,
        ),
        (
            "a task beyond the range pool gets ENOMEM and goes on",
            super::isolation_range_pool::a_task_beyond_the_range_pool_gets_enomem_and_goes_on,
        ),
        (
            "a CLONE_VM sibling sees a range change at once",
            super::isolation_clone_vm::a_clone_vm_sibling_sees_a_range_change_at_once,
        ),
        (
            "a task writing another task's stack or heap is stopped",
            super::isolation_regions::writing_another_tasks_stack_or_heap_is_stopped,
        ),
        (
            "a user or driver task writing a kernel static is stopped",
            super::isolation_regions::writing_a_kernel_static_is_stopped,
        ),
        (
            "a task writing another task's statics is stopped",
            super::isolation_statics::writing_another_tasks_statics_is_stopped,
        ),
        (
            "a driver touching arena pages not its own is stopped",
            super::isolation_drivers::a_driver_touching_arena_pages_not_its_own_is_stopped,
        ),
        (
            "a driver writing a user task's region is stopped",
            super::isolation_drivers::a_driver_writing_a_user_tasks_region_is_stopped,
        ),
        (
            "a driver writing memsrv's heap is stopped",
            super::isolation_driver_regions::a_driver_writing_memsrvs_heap_is_stopped,
        ),
        (
            "a driver stopped while it starts fails its mount",
            super::isolation_driver_regions::a_driver_stopped_while_it_starts_fails_its_mount,
        ),
        (
            "a driver writing another driver's region is stopped",
            super::isolation_driver_regions::a_driver_writing_another_drivers_region_is_stopped,
        ),
        (
            "a driver touching another driver's device is stopped",
            super::isolation_devices::a_driver_touching_another_drivers_device_is_stopped,
        ),
        (
            "a driver cannot take or give back another driver's device",
            super::isolation_devices::a_driver_cannot_take_or_give_back_another_drivers_device,
        ),
        (
            "a task naming another task's memory in a system call gets EFAULT",
            super::isolation_regions::another_tasks_buffer_is_refused,
        ),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        match check(memsrv) {
            Ok(()) => println!("robustness: ok {name}"),
            Err(e) => {
                failed += 1;
                println!("robustness: FAILED {name}: {e}");
            }
        }
    }
    failed
}
