//! How many connection threads may spin at once.
//!
//! A spinning daemon thread only helps while its client runs on another
//! CPU. With more spinners than spare CPUs they steal time from the very
//! clients they wait for, so at most `CPUs - 1` threads spin at a time (at
//! least one); the others go straight to sleep. The gate is the shim's
//! [`SpinGate`], the one the threads home uses too; this module holds the
//! daemon's single instance of it.

use nommu::spin::{self, SpinGate};
use std::sync::OnceLock;

/// The daemon's gate, shared by every connection thread.
fn gate() -> &'static SpinGate {
    static GATE: OnceLock<SpinGate> = OnceLock::new();
    GATE.get_or_init(|| SpinGate::new(SpinGate::spare_cpus().max(1)))
}

/// Leave to spin, given back on drop.
pub struct SpinPermit {
    _held: spin::SpinPermit<'static>,
}

impl SpinPermit {
    /// A permit, if fewer than the limit are spinning now.
    pub fn try_take() -> Option<Self> {
        gate().try_take().map(|held| SpinPermit { _held: held })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_and_returned() {
        let held: Vec<_> = std::iter::from_fn(SpinPermit::try_take)
            .take(1000)
            .collect();
        assert_eq!(held.len(), SpinGate::spare_cpus().max(1));
        assert!(SpinPermit::try_take().is_none());
        drop(held);
        assert!(SpinPermit::try_take().is_some());
    }
}
