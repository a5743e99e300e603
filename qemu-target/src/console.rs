//! The kernel's console (the 16550 UART at 0x1000_0000) and the
//! `sifive_test` device that ends the run with a status QEMU reports.

use core::fmt;

const UART: usize = 0x1000_0000;
const UART_LSR: usize = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;
const TEST_DEVICE: usize = 0x10_0000;
const TEST_PASS: u32 = 0x5555;
const TEST_FAIL: u32 = 0x3333;

pub fn put_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            put_byte(b'\r');
        }
        put_byte(b);
    }
}

fn put_byte(b: u8) {
    // SAFETY: the UART's line status and transmit registers are MMIO at
    // fixed addresses on QEMU virt; volatile access is how they are used.
    unsafe {
        while core::ptr::read_volatile((UART + UART_LSR) as *const u8) & LSR_THR_EMPTY == 0 {}
        core::ptr::write_volatile(UART as *mut u8, b);
    }
}

/// `core::fmt` output straight to the UART (kernel only).
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        put_bytes(s.as_bytes());
        Ok(())
    }
}

/// End the run: QEMU exits 0 for `code` 0, else with a failure status.
pub fn power_off(code: u64) -> ! {
    let value = if code == 0 {
        TEST_PASS
    } else {
        ((code.min(0xffff) as u32) << 16) | TEST_FAIL
    };
    // SAFETY: the sifive_test device at 0x100000 takes one 32-bit store;
    // QEMU ends the machine on it.
    unsafe { core::ptr::write_volatile(TEST_DEVICE as *mut u32, value) };
    loop {
        crate::arch::wait_for_interrupt();
    }
}

#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Uart, $($arg)*);
    }};
}
