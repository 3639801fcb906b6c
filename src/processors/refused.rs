//! [`RefusedIdentities`]: the series a processor would not create because
//! their gauges' labels break the exporter's label limits, remembered so
//! their later points are counted as skipped without their labels being
//! translated (and refused) again, and logged at most once a minute.

use parking_lot::Mutex;

use super::identity::ByIdentity;

/// How many refused identities are remembered; past it a refused series'
/// labels are translated (and refused) again at each of its points.
pub const MAX_REFUSED: usize = 4096;

/// Refused identities with when a point of each was last seen (seconds),
/// at most [`MAX_REFUSED`]; they expire like series, after a silence.
pub struct RefusedIdentities {
    seen: Mutex<ByIdentity<f64>>,
    /// When a refusal was last logged (seconds).
    logged: Mutex<f64>,
    /// What a refusal means for the series, as the warning says it.
    outcome: &'static str,
}

impl RefusedIdentities {
    /// An empty set whose warnings say `outcome` ("a series is not
    /// analysed").
    pub fn new(outcome: &'static str) -> Self {
        Self {
            seen: Mutex::default(),
            logged: Mutex::new(f64::NEG_INFINITY),
            outcome,
        }
    }

    /// Whether `identity` was refused before (its last point is then moved
    /// to `now`).
    pub fn seen_again(&self, identity: u64, now: f64) -> bool {
        match self.seen.lock().get_mut(&identity) {
            Some(seen) => {
                *seen = now;
                true
            }
            None => false,
        }
    }

    /// Remembers that `identity` was refused at `now`, while there is
    /// room, and warns `why` unless a refusal was logged in the last
    /// minute.
    pub fn refuse(&self, identity: u64, now: f64, why: &str) {
        {
            let mut refused = self.seen.lock();
            if refused.len() < MAX_REFUSED {
                refused.insert(identity, now);
            }
        }
        let mut logged = self.logged.lock();
        if now - *logged >= 60.0 {
            *logged = now;
            tracing::warn!(
                "{}: its gauges' labels break the exporter's limits: {why}",
                self.outcome
            );
        }
    }

    /// Forgets the identities without a point for longer than `ttl`.
    pub fn expire(&self, now: f64, ttl: f64) {
        self.seen.lock().retain(|_, seen| now - *seen <= ttl);
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.seen.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_until_silent_and_bounded() {
        let r = RefusedIdentities::new("a test series is dropped");
        assert!(!r.seen_again(1, 0.0));
        r.refuse(1, 0.0, "too long");
        assert!(r.seen_again(1, 50.0));
        r.expire(100.0, 60.0);
        assert!(r.seen_again(1, 100.0), "seen at 50, within 60 s");
        r.expire(200.0, 60.0);
        assert!(!r.seen_again(1, 200.0), "silent for 100 s");
        for id in 0..MAX_REFUSED as u64 + 10 {
            r.refuse(id, 300.0, "too long");
        }
        assert_eq!(r.len(), MAX_REFUSED);
    }
}
