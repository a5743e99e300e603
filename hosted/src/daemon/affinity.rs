//! Moving a connection thread off a CPU its client also runs on.
//!
//! The scheduler places a woken thread near its waker, so a client and its
//! connection thread tend to end up sharing one CPU, handing it back and
//! forth with a wake-up per call while the other CPU idles. Narrowing the
//! thread's affinity to "any CPU but this one" migrates it at once;
//! restoring the mask right after leaves it where it landed.

/// Move the calling thread to another allowed CPU than `cpu`; `false` if
/// there is none (or the kernel refused).
pub fn move_off(cpu: u32) -> bool {
    let size = core::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data (all zeroes is the empty set); the
    // calls read and write only the sets passed with their true size, and
    // the CPU_* helpers index within the set (cpu is checked against
    // CPU_SETSIZE first).
    unsafe {
        let mut allowed: libc::cpu_set_t = core::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return false;
        }
        if cpu as usize >= libc::CPU_SETSIZE as usize || !libc::CPU_ISSET(cpu as usize, &allowed) {
            return false;
        }
        let mut elsewhere = allowed;
        libc::CPU_CLR(cpu as usize, &mut elsewhere);
        if libc::CPU_COUNT(&elsewhere) == 0 {
            return false;
        }
        if libc::sched_setaffinity(0, size, &elsewhere) != 0 {
            return false;
        }
        libc::sched_setaffinity(0, size, &allowed);
    }
    true
}
