//! How many connection threads may spin at once.
//!
//! A spinning daemon thread only helps while its client runs on another
//! CPU. With more spinners than spare CPUs they steal time from the very
//! clients they wait for, so at most `CPUs - 1` threads spin at a time (at
//! least one); the others go straight to sleep.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static SPINNING: AtomicUsize = AtomicUsize::new(0);

fn limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1).max(1))
            .unwrap_or(1)
    })
}

/// Leave to spin, given back on drop.
pub struct SpinPermit(());

impl SpinPermit {
    /// A permit, if fewer than the limit are spinning now.
    pub fn try_take() -> Option<Self> {
        let limit = limit();
        SPINNING
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| SpinPermit(()))
    }
}

impl Drop for SpinPermit {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, Ordering::AcqRel);
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
        assert_eq!(held.len(), limit());
        assert!(SpinPermit::try_take().is_none());
        drop(held);
        assert!(SpinPermit::try_take().is_some());
    }
}
