//! Host tests of the check of a posted receive buffer when a frame is
//! delivered into it: a user task's buffer in an arena mapping that memsrv
//! unmapped while the task waited gets `EFAULT`, not the frame.

use super::*;
use crate::kernel::NEVER;
use std::vec;

/// Task memory for these tests: the two pages of [`Page`] at the task
/// heap's start, and the start of the arena, with copies between them.
struct Memory {
    heap: [u8; 0x2000],
    arena: Vec<u8>,
}

impl Memory {
    fn new() -> Self {
        Self {
            heap: [0; 0x2000],
            arena: vec![0; 0x1_0000],
        }
    }

    fn bytes(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let (base, mem): (u64, &mut [u8]) = if addr >= HEAP_END {
            (HEAP_END, &mut self.arena)
        } else {
            (HEAP_START, &mut self.heap)
        };
        let at = usize::try_from(addr.checked_sub(base)?).ok()?;
        mem.get_mut(at..at.checked_add(len)?)
    }
}

impl Machine for Memory {
    fn copy_out(&mut self, addr: u64, bytes: &[u8]) -> bool {
        self.bytes(addr, bytes.len())
            .map(|d| d.copy_from_slice(bytes))
            .is_some()
    }
    fn copy_in(&mut self, addr: u64, out: &mut [u8]) -> bool {
        self.bytes(addr, out.len())
            .map(|s| out.copy_from_slice(s))
            .is_some()
    }
    fn copy(&mut self, src: u64, dst: u64, len: usize) -> bool {
        let mut frame = vec![0; len];
        self.copy_in(src, &mut frame) && self.copy_out(dst, &frame)
    }
    fn contains(&self, addr: u64, len: usize) -> bool {
        let within = |base: u64, size: usize| {
            addr >= base && ((addr - base) as usize).saturating_add(len) <= size
        };
        within(HEAP_START, self.heap.len()) || within(HEAP_END, self.arena.len())
    }
    fn console(&mut self, _bytes: &[u8]) {}
}

/// memsrv (task 0) with its buffers at the task heap's start, a user task
/// (1) in its region after them, connected, and memsrv having named one
/// arena page for the connection: the kernel, its memory and the
/// connection.
fn connected() -> (Box<Kernel>, Memory, u64) {
    let (mut k, _) = kernel_with(["memsrv", "user", "init"]);
    let mut m = Memory::new();
    k.protection.set_region(1, (HEAP_START + 0x1000, 0x1000));
    let conn = call(&mut k, 1, Sys::Connect, &[0, 0, 0], &mut m) as u64;
    let receive = [HEAP_START, 64, NEVER];
    assert_eq!(call(&mut k, 0, Sys::Receive, &receive, &mut m), conn as i64);
    assert_eq!(k.tasks[0].frame.regs[reg::A2], Event::Open as u64);
    name_ranges(&mut k, &mut m, conn, &[page(0)]);
    (k, m, conn)
}

/// memsrv names `ranges` for `conn`, from a list at `HEAP_START + 0x100`.
fn name_ranges(k: &mut Kernel, m: &mut Memory, conn: u64, ranges: &[(u64, u64)]) {
    let list = HEAP_START + 0x100;
    for (i, (start, end)) in ranges.iter().enumerate() {
        let at = list + 16 * i as u64;
        assert!(m.copy_out(at, &start.to_le_bytes()) && m.copy_out(at + 8, &end.to_le_bytes()));
    }
    let n = ranges.len() as u64;
    assert_eq!(call(k, 0, Sys::Regions, &[conn, list, n], m), 0);
}

#[test]
fn a_reply_into_a_buffer_unmapped_while_its_task_waited_is_efault() {
    let (mut k, mut m, conn) = connected();
    let buf = page(0).0;
    // The client posts a receive into its arena page: fine while mapped.
    call(&mut k, 1, Sys::Recv, &[conn, buf, 64, NEVER], &mut m);
    assert!(matches!(k.tasks[1].state, TaskState::Recv { .. }));
    // memsrv unmaps it, then answers.
    name_ranges(&mut k, &mut m, conn, &[]);
    assert!(m.copy_out(HEAP_START + 0x200, b"late"));
    assert_eq!(
        call(
            &mut k,
            0,
            Sys::Reply,
            &[conn, HEAP_START + 0x200, 4],
            &mut m
        ),
        0
    );
    assert_eq!(k.tasks[1].state, TaskState::Ready);
    assert_eq!(
        k.tasks[1].frame.regs[reg::A0] as i64,
        -i64::from(Errno::EFAULT.0)
    );
    assert_eq!(m.bytes(buf, 4).unwrap(), [0; 4], "nothing written there");
}

#[test]
fn a_call_whose_reply_buffer_was_unmapped_meanwhile_ends_with_efault() {
    let (mut k, mut m, conn) = connected();
    let buf = page(0).0;
    // memsrv waits; the client's call reaches it and waits for the reply
    // in its arena page, which memsrv unmaps before answering.
    call(&mut k, 0, Sys::Receive, &[HEAP_START, 64, NEVER], &mut m);
    assert!(matches!(k.tasks[0].state, TaskState::Receive { .. }));
    let request = HEAP_START + 0x1000;
    assert!(m.copy_out(request, b"ask"));
    call(&mut k, 1, Sys::Call, &[conn, request, 3, buf, 64], &mut m);
    assert!(matches!(k.tasks[1].state, TaskState::Recv { .. }));
    assert_eq!(k.tasks[0].frame.regs[reg::A1], 3);
    name_ranges(&mut k, &mut m, conn, &[page(1)]);
    assert!(m.copy_out(HEAP_START + 0x200, b"answer"));
    let args = [conn, HEAP_START + 0x200, 6, HEAP_START, 64, NEVER];
    call(&mut k, 0, Sys::ReplyReceive, &args, &mut m);
    assert_eq!(
        k.tasks[1].frame.regs[reg::A0] as i64,
        -i64::from(Errno::EFAULT.0)
    );
    assert_eq!(m.bytes(buf, 6).unwrap(), [0; 6]);
    // Mapped, the same call gets its answer.
    name_ranges(&mut k, &mut m, conn, &[page(0)]);
    call(&mut k, 1, Sys::Call, &[conn, request, 3, buf, 64], &mut m);
    call(&mut k, 0, Sys::ReplyReceive, &args, &mut m);
    assert_eq!(k.tasks[1].frame.regs[reg::A0], 6);
    assert_eq!(m.bytes(buf, 6).unwrap(), b"answer");
}
