//! A user's C program on the board (feature `user-c`, the file built in
//! with `NOMMU_BOARD_C`, `scripts/board.sh run --c prog.c`): the servers
//! it can open files on start (a memory filesystem on `/tmp`, and `/rom`
//! in place from flash when bank 0 holds a romfs image), then its `main`
//! runs once as a process (a C task with its own memsrv connection, as
//! [`c_program`](super::c_program) runs the test program), its stdout on
//! the console. The run ends with `board: PROG exited N`, and init powers
//! off with N's status: pass for 0.

use super::c_program::as_process;
use super::driver::{mount_rom_in_place, mount_tmp};
use crate::c_runtime;
use crate::devices::romfs_in_bank0;
use crate::println;
use alloc::ffi::CString;
use protocol::Errno;

/// The program's file name (what `argv[0]` and the exit line say).
const PROGRAM: &str = env!("BOARD_C_PROGRAM");

/// The program's stack (picolibc's printf takes a few KiB).
const STACK: usize = 256 << 10;

/// Mount `/tmp` (ramfs) and, when flash bank 0 holds one, `/rom` (romfs).
fn start_servers(memsrv: usize) -> Result<(), Errno> {
    mount_tmp(memsrv)?;
    if let Some(rom) = romfs_in_bank0() {
        mount_rom_in_place(memsrv, rom.image, rom.addr)?;
    }
    Ok(())
}

/// The power-off code for `main`'s return value: 0 passes; QEMU exits
/// with the failure code's low byte, so a code it would turn into 0 (or
/// a negative one) becomes 255.
fn power_off_code(code: i64) -> u64 {
    match u8::try_from(code) {
        Ok(byte) => u64::from(byte),
        Err(_) => 255,
    }
}

/// Run the program's `main` once; the power-off code.
pub fn run(memsrv: usize) -> u64 {
    if let Err(e) = start_servers(memsrv) {
        println!("board: cannot start the file servers: {e:?}");
        return 1;
    }
    let spawned = c_runtime::spawn("c:user", STACK, move |task| {
        let argv0 = CString::new(PROGRAM).unwrap_or_default();
        as_process(task, memsrv, PROGRAM, || {
            task.main(core::slice::from_ref(&argv0))
        })
    });
    let task = match spawned {
        Ok(started) => started,
        Err(e) => {
            println!("board: cannot start {PROGRAM}: {e:?}");
            return 1;
        }
    };
    let joined = task.join();
    match joined {
        Ok(code) => {
            println!("board: {PROGRAM} exited {code}");
            power_off_code(code)
        }
        Err(e) => {
            println!("board: {PROGRAM} did not finish: {e:?}");
            1
        }
    }
}
