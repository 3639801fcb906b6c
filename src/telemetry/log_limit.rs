//! Rate limiting for warnings a sender can trigger at will (refusals):
//! at most one line per key per second; the lines in between are counted
//! and reported with the next one, so nothing is hidden and a flood of bad
//! requests cannot flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One limiter slot: the second of the last line written, and how many
/// were suppressed since.
#[derive(Default)]
pub struct LogLimit {
    last_second: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimit {
    /// `Some(suppressed_since_last)` when a line may be written now.
    pub fn admit(&self, epoch: Instant) -> Option<u64> {
        // +1 so that second 0 differs from the initial value.
        let now = epoch.elapsed().as_secs() + 1;
        let last = self.last_second.load(Ordering::Relaxed);
        if last != now
            && self
                .last_second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_second_and_counts_the_rest() {
        let limit = LogLimit::default();
        let epoch = Instant::now();
        assert_eq!(limit.admit(epoch), Some(0));
        assert_eq!(limit.admit(epoch), None);
        assert_eq!(limit.admit(epoch), None);
        let earlier = epoch - std::time::Duration::from_secs(1);
        assert_eq!(limit.admit(earlier), Some(2));
    }
}
